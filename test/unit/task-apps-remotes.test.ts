import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { FerryError } from '../../src/errors.js';
import type { Inventory } from '../../src/inventory/index.js';
import { runLocal } from '../../src/run/local.js';
import { createRuntime, type Executor } from '../../src/run/runtime.js';
import { type HostKey, hostKeyOf } from '../../src/ssh/host-keys.js';
import type { Manifest } from '../../src/tasks/manifest.js';
import rewriteRemotes, { repoItem } from '../../src/tasks/rewrite-remotes.js';
import { app, contextOf, HOST, inventory, manifest } from './task-apps-data.js';
import { fakeExecutor, fakeHandle, type Seen } from './task-fake.js';

// git talks to a "host" through a fake ssh (each clone's core.sshCommand) that
// runs the remote command (`git-upload-pack 'api'`) in a folder of bare repos:
// the real git client, the real URL rewrite, no network.
function keyBlob(fill: number): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(type.length);
  const klen = Buffer.alloc(4);
  klen.writeUInt32BE(32);
  return Buffer.concat([len, type, klen, Buffer.alloc(32, fill)]);
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  });
}

function setup(t: { teardown(fn: () => void): void }) {
  if (process.env.GIT_SSH_COMMAND || process.env.GIT_SSH) {
    throw new Error('unset GIT_SSH_COMMAND and GIT_SSH: git would use them, not the fake ssh');
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-remotes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const hostRoot = join(dir, 'host');
  mkdirSync(hostRoot);
  const work = join(dir, 'api');
  mkdirSync(work);
  git(work, 'init', '-q', '-b', 'master');
  writeFileSync(join(work, 'README'), 'x\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'one');
  const sha = git(work, 'rev-parse', 'HEAD').trim();
  git(dir, 'clone', '-q', '--bare', work, join(hostRoot, 'api'));
  git(work, 'remote', 'add', 'dokku', 'dokku@10.0.0.1:api');
  const bare = join(dir, 'web');
  mkdirSync(bare);
  git(bare, 'init', '-q');
  git(dir, 'init', '-q', '--bare', join(hostRoot, 'web'));
  const ssh = join(dir, 'fake-ssh');
  writeFileSync(
    ssh,
    `#!/bin/sh\nfor a; do last=$a; done\ncd ${JSON.stringify(hostRoot)} && eval "exec $last"\n`,
  );
  chmodSync(ssh, 0o755);
  for (const repo of [work, bare]) git(repo, 'config', 'core.sshCommand', ssh);
  const knownHosts = join(dir, 'known_hosts');
  const inv: Inventory = {
    ...inventory(),
    hosts: { new: { ...HOST, known_hosts: knownHosts } },
    repos: [
      { path: work, app: 'api', remote: 'dokku' },
      { path: bare, app: 'web', remote: 'dokku' },
    ],
  } as Inventory;
  return { dir, work, bare, sha, knownHosts, inv };
}

const KEY = hostKeyOf(keyBlob(7));

/**
 * Runs rewrite-remotes over the real runtime, its git commands run here for
 * real (as a run does: runLocal), recorded by id and item; the target's host
 * key is the one ferry "verified" when it connected.
 */
async function rewrite(
  inv: Inventory,
  m: Manifest,
  hostKey: { key: HostKey; trust: string },
): Promise<{ result: unknown; error?: unknown; seen: Seen }> {
  const seen: Seen = { calls: [], logs: [], warnings: [], states: [], titles: [] };
  const ctx = contextOf(rewriteRemotes, { to: 'target' }, inv);
  const executor: Executor = {
    ...fakeExecutor({}, seen, hostKey),
    async exec({ action, command, vars, opts }) {
      if (action.kind !== 'local')
        throw new Error(`a remote action ${action.id} on the controller`);
      seen.calls.push({
        id: action.id,
        ...(action.item === undefined ? {} : { item: action.item }),
        kind: 'local',
        host: 'controller',
        vars,
        command: command.render(),
      });
      return runLocal(command, opts.allowCodes ? { allowCodes: opts.allowCodes } : {});
    },
  };
  const rt = createRuntime<typeof ctx.params, typeof rewriteRemotes.actions>({
    ctx,
    actions: rewriteRemotes.plan(ctx),
    task: fakeHandle(ctx.step.id, 'controller', seen),
    outputs: { inventory: { manifest: m as never } },
    executor,
  });
  try {
    return { result: await rewriteRemotes.run(rt), seen };
  } catch (error) {
    return { result: undefined, error, seen };
  }
}

/** `[id, repo]` of each git command run, the repo named by its folder's last part. */
function gitCalls(seen: Seen): [string, string | undefined][] {
  return seen.calls.map((c) => [c.id, c.item?.replace(/^.*\/([^/]+):dokku$/, '$1')]);
}

test.serial(
  'points each remote at the target, records the verified key once, keeps the old URL',
  async (t) => {
    const s = setup(t);
    const m = manifest([app('api', { deploySourceMetadata: s.sha }), app('web')]);
    const f = await rewrite(s.inv, m, { key: KEY, trust: 'inventory' });
    t.is(f.error, undefined);
    const out = f.result as { repos: unknown };
    t.is(readFileSync(s.knownHosts, 'utf8'), `10.0.0.2 ssh-ed25519 ${KEY.base64}\n`);
    t.is(git(s.work, 'remote', 'get-url', 'dokku').trim(), 'dokku@10.0.0.2:api');
    t.is(git(s.bare, 'remote', 'get-url', 'dokku').trim(), 'dokku@10.0.0.2:web');
    t.deepEqual(out.repos, [
      {
        path: s.work,
        app: 'api',
        remote: 'dokku',
        oldUrl: 'dokku@10.0.0.1:api',
        newUrl: 'dokku@10.0.0.2:api',
        heads: 1,
      },
      {
        path: s.bare,
        app: 'web',
        remote: 'dokku',
        oldUrl: null,
        newUrl: 'dokku@10.0.0.2:web',
        heads: 0,
      },
    ]);
    t.deepEqual(gitCalls(f.seen), [
      ['get-url', 'api'],
      ['set-url', 'api'],
      ['ls-remote', 'api'],
      ['get-url', 'web'],
      ['add-remote', 'web'],
      ['ls-remote', 'web'],
    ]);
    t.is(
      f.seen.calls.find((c) => c.id === 'set-url')?.command,
      `git -C ${s.work} remote set-url dokku dokku@10.0.0.2:api`,
    );
    t.is(f.seen.calls[0]?.item, repoItem({ path: s.work, remote: 'dokku' }));
    t.true(
      f.seen.logs.some((l) =>
        l.includes(`including the source's deployed commit ${s.sha.slice(0, 7)}`),
      ),
    );
    t.deepEqual(f.seen.warnings, [`${s.bare} (dokku): new answers but serves no branch of web`]);

    // again (a resumed run): nothing appended, the URL already right
    const again = await rewrite(s.inv, m, { key: KEY, trust: 'known_hosts' });
    t.is(again.error, undefined);
    t.is(readFileSync(s.knownHosts, 'utf8').split('\n').length, 2);
    t.like(again.result, { hostKey: { recorded: false } });
    t.true(again.seen.logs.some((l) => l.endsWith('already points at dokku@10.0.0.2:api')));
    t.deepEqual(gitCalls(again.seen), [
      ['get-url', 'api'],
      ['ls-remote', 'api'],
      ['get-url', 'web'],
      ['ls-remote', 'web'],
    ]);
  },
);

test.serial(
  'another key on file for the address is never replaced: a warning says what to do',
  async (t) => {
    const s = setup(t);
    const other = hostKeyOf(keyBlob(9));
    writeFileSync(s.knownHosts, `10.0.0.2 ssh-ed25519 ${other.base64}\n`);
    const f = await rewrite(s.inv, manifest([]), { key: KEY, trust: 'inventory' });
    t.is(f.error, undefined);
    t.is(readFileSync(s.knownHosts, 'utf8'), `10.0.0.2 ssh-ed25519 ${other.base64}\n`);
    t.true(
      f.seen.warnings.some((w) =>
        w.includes(`holds another key for 10.0.0.2 (${other.fingerprint})`),
      ),
    );
    t.true(f.seen.warnings.some((w) => w.includes("ssh-keygen -R '10.0.0.2'")));
  },
);

test.serial(
  'a repo the target does not serve fails the step, after every repo was tried',
  async (t) => {
    const s = setup(t);
    rmSync(join(s.dir, 'host', 'api'), { recursive: true, force: true });
    const f = await rewrite(s.inv, manifest([]), { key: KEY, trust: 'inventory' });
    const e = t.throws(
      () => {
        throw f.error;
      },
      { instanceOf: FerryError },
    );
    t.regex(e!.message, /^1 of 2 repo\(s\) not proven against new/);
    t.regex(e!.message, /ls-remote --heads dokku/);
    t.regex(
      e!.message,
      /`git -C \S+\/api ls-remote --heads dokku` exited \d+/,
      'the failed command is named as a command run here',
    );
    t.is(
      git(s.bare, 'remote', 'get-url', 'dokku').trim(),
      'dokku@10.0.0.2:web',
      'the next repo still done',
    );
  },
);
