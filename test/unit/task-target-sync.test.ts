/**
 * sync (`ferry migrate --live`): the rsync sender the source runs refuses
 * anything but a read of its planned paths; a real rsync client pulls through
 * it (run here, over a local remote shell) and each later pass sends only
 * what changed; the task repeats passes until one is short, and its final
 * pass stops before anything moves when the stage differs from the source.
 */
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StopError } from '../../src/errors.js';
import type { Command } from '../../src/ssh/shell.js';
import { stagePaths } from '../../src/tasks/stage.js';
import sync, {
  parseRsyncStats,
  rsyncClientCommand,
  rsyncSenderCommand,
  treeListingCommand,
} from '../../src/tasks/sync.js';
import type { PlanContext, PlanOptions } from '../../src/tasks/types.js';
import { manifestOf, runTask, taskInventory } from './task-fake.js';

const RUN = '20261123T100000Z';
type SyncParams = Parameters<typeof sync.plan>[0]['params'];

function ctx(
  params: Partial<SyncParams>,
  options: Partial<PlanOptions> = {},
): PlanContext<SyncParams> {
  const inv = taskInventory();
  return {
    step: { id: 'sync', task: 'sync', on: 'target', index: 4 },
    params: {
      from: 'source',
      final: false,
      passes: 3,
      settle_seconds: 5,
      compression: 'none',
      route: 'auto',
      ...params,
    },
    host: inv.hosts.new,
    roles: { source: inv.hosts.old, target: inv.hosts.new },
    inventory: inv,
    options: { runId: RUN, ...options },
  };
}

function bash(cmd: Command | string, env: Record<string, string> = {}) {
  const text = typeof cmd === 'string' ? cmd : cmd.render();
  const r = spawnSync('bash', ['-c', text], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const hasRsync = bash('command -v rsync').code === 0;
const withRsync = hasRsync ? test : test.skip;

/** A source tree with a hard link, a symlink and a nested folder. */
function sourceTree(): string {
  const src = mkdtempSync(join(tmpdir(), 'ferry-sync-src-'));
  mkdirSync(join(src, 'app', 'cache'), { recursive: true });
  writeFileSync(join(src, 'app', 'ENV'), 'A=1\n');
  writeFileSync(join(src, 'app', 'cache', 'big'), 'x'.repeat(200_000));
  linkSync(join(src, 'app', 'ENV'), join(src, 'app', 'ENV.link'));
  symlinkSync('ENV', join(src, 'app', 'ENV.sym'));
  return src;
}

/** A remote shell that runs the sender here, as the routes do there: the request in FERRY_DUPLEX_REQUEST. */
function localRsh(dir: string, sender: Command): string {
  const rsh = join(dir, 'rsh');
  writeFileSync(join(dir, 'sender.sh'), sender.render());
  writeFileSync(
    rsh,
    `#!/bin/bash\nshift\nexport FERRY_DUPLEX_REQUEST="$*"\nexec bash ${dir}/sender.sh\n`,
    { mode: 0o700 },
  );
  return rsh;
}

withRsync(
  'a real rsync pulls through the sender; the next pass sends only the changed file',
  (t) => {
    const src = sourceTree();
    const work = mkdtempSync(join(tmpdir(), 'ferry-sync-dst-'));
    const dest = join(work, 'stage');
    mkdirSync(dest);
    const rsh = localRsh(work, rsyncSenderCommand([`${src}/`]));
    const client = rsyncClientCommand([`${src}/`], `${dest}/`, { live: true });
    const first = bash(client, { FERRY_RSH: rsh });
    t.is(first.code, 0, first.stderr);
    t.is(parseRsyncStats(first.stdout).files, 2, 'ENV (once for its two names) and big');
    const listing = (d: string) => bash(treeListingCommand(d, undefined)).stdout.trim();
    t.regex(listing(src), /^[0-9a-f]{64}$/);
    t.is(listing(dest), listing(src), 'types, sizes, mtimes, modes, owners and links alike');
    t.is(bash(`stat -c %h ${dest}/app/ENV`).stdout.trim(), '2', 'the hard link is kept');

    writeFileSync(join(src, 'app', 'ENV'), 'A=2\n');
    const second = bash(client, { FERRY_RSH: rsh });
    t.is(second.code, 0, second.stderr);
    const st = parseRsyncStats(second.stdout);
    t.is(st.files, 1, 'only the changed file');
    t.true(st.received < 50_000, `the big file is not sent again (${st.received} bytes)`);
    t.is(listing(dest), listing(src));
    t.is(bash(`cat ${dest}/app/ENV`).stdout, 'A=2\n');
  },
);

withRsync(
  'the sender refuses another path, a receiver, a deleting option or any other command',
  (t) => {
    const src = sourceTree();
    const sender = rsyncSenderCommand([`${src}/`]);
    const ask = (req: string) => bash(sender, { FERRY_DUPLEX_REQUEST: req });
    for (const req of [
      `rsync --server --sender -logDtpre.iLsfxCIvu . /etc/`,
      `rsync --server --sender -logDtpre.iLsfxCIvu . ${src}/ /etc/`,
      `rsync --server -logDtpre.iLsfxCIvu . ${src}/`,
      `rsync --server --sender -logDtpre.iLsfxCIvu --remove-source-files . ${src}/`,
      `rsync --server --sender -logDtpre.iLsfxCIvu --rsync-path=sh . ${src}/`,
      `bash -c id`,
      `rsync --server --sender -logDtpre.iLsfxCIvu . ${src}/;id`,
      '',
    ]) {
      const r = ask(req);
      t.is(r.code, 1, req);
      t.regex(r.stderr, /^ferry: refused: /, req);
      t.is(r.stdout, '', `${req}: nothing sent`);
    }
    // The request may also come as the first line of stdin (the relay).
    const r = spawnSync('bash', ['-c', sender.render()], {
      encoding: 'utf8',
      input: 'cat /etc/shadow\n',
      env: { ...process.env, FERRY_DUPLEX_REQUEST: '-' },
    });
    t.is(r.status, 1);
    t.regex(r.stderr, /refused: cat \/etc\/shadow/);
  },
);

test('rsync --stats are read for the bytes and files of a pass', (t) => {
  const out = `Number of files: 1,234 (reg: 1,000, dir: 234)
Number of regular files transferred: 1,017
Total bytes sent: 45,678
Total bytes received: 1,234,567
`;
  t.deepEqual(parseRsyncStats(out), { received: 1234567, sent: 45678, files: 1017 });
  t.deepEqual(parseRsyncStats(''), { received: 0, sent: 0, files: 0 });
});

test('phase 1 plans the stage and two streams; the final pass adds the run folder and the checks', (t) => {
  const s = stagePaths(RUN);
  const live = sync.plan(ctx({}));
  t.deepEqual(
    live.map((a) => a.id),
    ['keep-stage', 'home', 'lib'],
  );
  for (const a of live) {
    if (a.kind !== 'stream') continue;
    t.true(a.duplex, `${a.id} is two-way`);
    t.is(a.from, 'old');
    t.is(a.to, 'new');
    t.regex(
      a.receive.render(),
      /\|\| \[ \$\? -eq 24 \]/,
      'a file vanishing while the source serves',
    );
  }
  const final = sync.plan(ctx({ final: true }, { route: 'relay' }));
  t.deepEqual(
    final.map((a) => a.id),
    [
      'keep-stage',
      'home',
      'lib',
      'meta',
      'source-parts',
      'source-home-listing',
      'stage-home-listing',
      'source-lib-listing',
      'stage-lib-listing',
      'export-sums-check',
      'source-lines',
      'stage-lines',
    ],
  );
  const home = final.find((a) => a.id === 'home');
  t.true(home?.kind === 'stream' && home.route === 'relay', '--route decides');
  t.true(
    home?.kind === 'stream' && !/-eq 24/.test(home.receive.render()),
    'the final pass allows no vanished file',
  );
  t.true(
    final.some(
      (a) => a.kind === 'remote' && a.host === 'new' && a.command.render().includes(s.home),
    ),
  );
});

test('phase 1 repeats passes while they take longer than settle_seconds, at most `passes`', async (t) => {
  const repeated = await runTask(sync, ctx({ passes: 3, settle_seconds: 0 }));
  t.falsy(repeated.error);
  t.deepEqual(
    repeated.seen.calls.map((c) => c.id),
    ['keep-stage', 'home', 'lib', 'home', 'lib', 'home', 'lib'],
  );
  const short = await runTask(sync, ctx({ passes: 3, settle_seconds: 5 }));
  t.deepEqual(
    short.seen.calls.map((c) => c.id),
    ['keep-stage', 'home', 'lib'],
    'a short pass ends the repeats',
  );
  t.regex(short.seen.states.at(-1)!, /nothing moved into place/);
});

test('the final pass stops before anything moves when the stage differs from the source', async (t) => {
  const same = { stdout: 'a'.repeat(64) };
  const answers = {
    'source-parts': { stdout: 'config\ndata\n' },
    'source-home-listing': same,
    'stage-home-listing': same,
    'source-lib-listing': { stdout: 'b'.repeat(64) },
    'stage-lib-listing': { stdout: 'c'.repeat(64) },
  };
  const bad = await runTask(sync, ctx({ final: true }), {
    answers: {
      ...answers,
      'source-lines': { stdout: 'home/. d 1\nlib/config/x f 4 1.5\n' },
      'stage-lines': { stdout: 'home/. d 1\nlib/config/x f 4 1.2\n' },
    },
    manifest: manifestOf(),
  });
  t.true(bad.error instanceof StopError);
  t.regex(
    String((bad.error as Error).message),
    /differs from the source: \/var\/lib\/dokku\/\{config,data\}/,
  );
  t.regex(
    String((bad.error as Error).message),
    /2 line\(s\) differ, first: source: lib\/config\/x f 4 1\.5; stage: lib\/config\/x f 4 1\.2/,
  );
  t.regex(bad.seen.states.at(-1)!, /differs from the source; nothing moved into place/);

  const ok = await runTask(sync, ctx({ final: true }), {
    answers: { ...answers, 'stage-lib-listing': { stdout: 'b'.repeat(64) } },
  });
  t.falsy(ok.error);
  t.is(ok.result?.checked, true);
  t.deepEqual(
    ok.seen.calls.filter((c) => c.kind === 'stream').map((c) => c.id),
    ['home', 'lib', 'meta'],
    'one pass, the run folder with it',
  );

  const torn = await runTask(sync, ctx({ final: true }), {
    answers: {
      ...answers,
      'stage-lib-listing': { stdout: 'b'.repeat(64) },
      'export-sums-check': { code: 1, stderr: 'notes-db.dump: FAILED' },
    },
  });
  t.true(torn.error instanceof StopError);
  t.regex(String((torn.error as Error).message), /export does not match its checksum/);
});

test("the final pass's checks run at once on both hosts: none waits for another", async (t) => {
  const same = { stdout: 'a'.repeat(64) };
  const asked: string[] = [];
  let release: () => void = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  // source-parts answers only once every other check was asked: run in turn, the step would hang.
  const checks = [
    'source-home-listing',
    'stage-home-listing',
    'source-lib-listing',
    'stage-lib-listing',
    'export-sums-check',
  ];
  const note = (id: string, answer: { stdout: string }) => () => {
    asked.push(id);
    if (checks.every((c) => asked.includes(c))) release();
    return answer;
  };
  const r = await runTask(sync, ctx({ final: true }), {
    answers: {
      'source-parts': async () => {
        await Promise.race([held, new Promise((res) => setTimeout(res, 2000))]);
        asked.push('source-parts');
        return { stdout: 'config\ndata\n' };
      },
      ...Object.fromEntries(
        checks.map((c) => [c, note(c, c === 'export-sums-check' ? { stdout: '' } : same)]),
      ),
    },
  });
  t.falsy(r.error);
  t.is(r.result?.checked, true);
  t.is(
    asked.at(-1),
    'source-parts',
    `every check was asked before source-parts answered: ${asked.join()}`,
  );
});
