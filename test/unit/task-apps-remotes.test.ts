import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Inventory } from '../../src/inventory/index.js';
import { hostKeyOf } from '../../src/ssh/host-keys.js';
import rewriteRemotes, { run } from '../../src/tasks/rewrite-remotes.js';
import { app, fakeRuntime, HOST, inventory, manifest } from './task-apps-fake.js';

// git talks to a "host" through a fake ssh that runs the remote command
// (`git-upload-pack 'api'`) in a folder of bare repos: the real git client,
// the real URL rewrite, no network.
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
  process.env.GIT_SSH_COMMAND = ssh;
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

test.serial(
  'points each remote at the target, records the verified key once, keeps the old URL',
  async (t) => {
    const s = setup(t);
    const m = manifest([app('api', { deploySourceMetadata: s.sha }), app('web')]);
    const f = fakeRuntime(rewriteRemotes, { to: 'target' }, m, () => ({}), s.inv, {
      hostKey: KEY,
      hostKeyTrust: 'inventory',
    });
    const out = await run(f.rt);
    t.is(readFileSync(s.knownHosts, 'utf8'), `10.0.0.2 ssh-ed25519 ${KEY.base64}\n`);
    t.is(git(s.work, 'remote', 'get-url', 'dokku').trim(), 'dokku@10.0.0.2:api');
    t.is(git(s.bare, 'remote', 'get-url', 'dokku').trim(), 'dokku@10.0.0.2:web');
    t.deepEqual(out?.repos, [
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
    t.true(
      f.logs.some((l) => l.includes(`including the source's deployed commit ${s.sha.slice(0, 7)}`)),
    );
    t.deepEqual(f.warnings, [`${s.bare} (dokku): new answers but serves no branch of web`]);

    // again (a resumed run): nothing appended, the URL already right
    const again = fakeRuntime(rewriteRemotes, { to: 'target' }, m, () => ({}), s.inv, {
      hostKey: KEY,
      hostKeyTrust: 'known_hosts',
    });
    const out2 = await run(again.rt);
    t.is(readFileSync(s.knownHosts, 'utf8').split('\n').length, 2);
    t.like(out2, { hostKey: { recorded: false } });
    t.true(again.logs.some((l) => l.endsWith('already points at dokku@10.0.0.2:api')));
  },
);

test.serial(
  'another key on file for the address is never replaced: a warning says what to do',
  async (t) => {
    const s = setup(t);
    const other = hostKeyOf(keyBlob(9));
    writeFileSync(s.knownHosts, `10.0.0.2 ssh-ed25519 ${other.base64}\n`);
    const f = fakeRuntime(rewriteRemotes, { to: 'target' }, manifest([]), () => ({}), s.inv, {
      hostKey: KEY,
      hostKeyTrust: 'inventory',
    });
    await run(f.rt);
    t.is(readFileSync(s.knownHosts, 'utf8'), `10.0.0.2 ssh-ed25519 ${other.base64}\n`);
    t.true(
      f.warnings.some((w) => w.includes(`holds another key for 10.0.0.2 (${other.fingerprint})`)),
    );
    t.true(f.warnings.some((w) => w.includes("ssh-keygen -R '10.0.0.2'")));
  },
);

test.serial(
  'a repo the target does not serve fails the step, after every repo was tried',
  async (t) => {
    const s = setup(t);
    rmSync(join(s.dir, 'host', 'api'), { recursive: true, force: true });
    const f = fakeRuntime(rewriteRemotes, { to: 'target' }, manifest([]), () => ({}), s.inv, {
      hostKey: KEY,
      hostKeyTrust: 'inventory',
    });
    const e = await t.throwsAsync(run(f.rt));
    t.regex(e.message, /^1 of 2 repo\(s\) not proven against new/);
    t.regex(e.message, /ls-remote --heads dokku/);
    t.is(
      git(s.bare, 'remote', 'get-url', 'dokku').trim(),
      'dokku@10.0.0.2:web',
      'the next repo still done',
    );
  },
);
