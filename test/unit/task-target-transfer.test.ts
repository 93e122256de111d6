/** transfer: compression chosen by both hosts, archive variants, and the staging tar (run for real here). */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StopError } from '../../src/errors.js';
import { $ } from '../../src/ssh/shell.js';
import { hashed, runDir } from '../../src/tasks/common.js';
import { discardStageCommand, stagePaths } from '../../src/tasks/stage.js';
import transfer, {
  chooseCodec,
  type LiveCodec,
  PROBE_RECEIVE,
  PROBE_SEND,
  parseProbe,
  receiveDataCommand,
  sendArchiveCommand,
  sendLiveCommand,
  type TransferParams,
} from '../../src/tasks/transfer.js';
import type { PlanContext, PlanOptions } from '../../src/tasks/types.js';
import { manifestOf, runTask, type Seen, taskInventory } from './task-fake.js';

const RUN = '20261123T100000Z';

function ctx(
  params: Partial<TransferParams>,
  options: Partial<PlanOptions> = {},
): PlanContext<TransferParams> {
  const inv = taskInventory();
  return {
    step: { id: 'transfer', task: 'transfer', on: 'target', index: 4 },
    params: { from: 'source', data: 'live', compression: 'auto', route: 'auto', ...params },
    host: inv.hosts.new,
    roles: { source: inv.hosts.old, target: inv.hosts.new },
    inventory: inv,
    options: { runId: RUN, ...options },
  };
}

/** The exact `send | receive` line of a live stream from old with `compression`. */
function liveLine(c: LiveCodec): string {
  const dir = runDir(taskInventory(), 'old', RUN);
  return `${sendLiveCommand(`${dir}/stream.sha256`, c, dir).render()} | ${receiveDataCommand(RUN, c).render()}`;
}

const streamsOf = (seen: Seen) => seen.calls.filter((c) => c.kind === 'stream');

/** Rethrows what a run failed with, for t.throws. */
const rethrow = (e: unknown) => () => {
  throw e;
};

test('live, auto: both hosts are asked for zstd; the probe and every compression are planned', (t) => {
  const actions = transfer.plan(ctx({}));
  const probes = actions.filter((a) => a.id === 'has-zstd');
  t.deepEqual(
    probes.map((a) => [a.kind === 'remote' && a.host, a.item]),
    [
      ['old', 'old'],
      ['new', 'new'],
    ],
  );
  t.true(probes.every((a) => a.kind === 'remote' && a.command.render() === 'command -v zstd'));
  const streams = actions.filter((a) => a.kind === 'stream');
  t.deepEqual(
    streams.map((a) => [a.id, a.item]),
    [
      ['probe', undefined],
      ['live', 'none'],
      ['live', 'zstd'],
      ['live', 'zstd-3'],
      ['live', 'gzip'],
    ],
    'a probe of the route, then one stream per compression: the manifest and exports ride along',
  );
  const [, none, zstd, zstd3, gzip] = streams.map((a) => (a.kind === 'stream' ? a : undefined));
  t.notRegex(none!.send.render(), /zstd|gzip/);
  t.notRegex(none!.receive.render(), /zstd|gzip/);
  t.regex(zstd3!.send.render(), /zstd -q -3 -T0/);
  t.regex(zstd!.receive.render(), /zstd -q -dc/);
  t.regex(gzip!.receive.render(), /gzip -dc/);
  t.regex(zstd!.send.render(), /zstd -q -1 -T0/);
  const discard = actions.find((a) => a.id === 'discard-stage');
  t.truthy(discard?.only, 'the discard is planned off the main line');
  t.is(discard?.kind === 'remote' && discard.command.render(), discardStageCommand(RUN).render());
});

test('live, gzip: no probe, one data stream', (t) => {
  const actions = transfer.plan(ctx({ compression: 'gzip' }));
  t.false(actions.some((a) => a.id === 'has-zstd'));
  t.false(actions.some((a) => a.kind === 'remote' && a.command.render() === 'command -v zstd'));
  t.deepEqual(
    actions.filter((a) => a.kind === 'stream').map((a) => [a.id, a.item]),
    [['live', 'gzip']],
  );
});

test('run picks zstd when both hosts have it, gzip when one lacks it', async (t) => {
  const c = ctx({});
  t.regex(receiveDataCommand(RUN, 'zstd').render(), /zstd -q -dc/);
  t.regex(
    sendLiveCommand('/x/stream.sha256', 'zstd', '/x').render(),
    /manifest\.json/,
    'the manifest rides in the data stream',
  );
  const both = await runTask(transfer, c, { manifest: manifestOf() });
  t.is(both.error, undefined);
  t.like(both.result, { compression: 'zstd' });
  t.deepEqual(
    streamsOf(both.seen)
      .filter((s) => s.id !== 'probe')
      .map((s) => [s.id, s.item, s.command]),
    [['live', 'zstd', liveLine('zstd')]],
    'one stream (the probe said nothing usable: zstd -1)',
  );

  const oldLacks = await runTask(transfer, c, {
    manifest: manifestOf(),
    answers: { 'has-zstd old': { code: 1 } },
  });
  t.like(oldLacks.result, { compression: 'gzip' });
  t.regex(sendLiveCommand('/x/stream.sha256', 'gzip', '/x').render(), /gzip -1/);
  t.regex(receiveDataCommand(RUN, 'gzip').render(), /gzip -dc/);
  t.deepEqual(
    streamsOf(oldLacks.seen)
      .filter((s) => s.id !== 'probe')
      .map((s) => [s.id, s.item, s.command]),
    [['live', 'gzip', liveLine('gzip')]],
  );
  t.true(oldLacks.seen.logs.some((l) => l.includes('zstd is missing on old')));
});

test('auto: the probed rate of the route picks the codec; the rate is reported', async (t) => {
  const c = ctx({});
  const cases: [string, boolean, string][] = [
    ['ferry-probe 64000000 200000', true, 'none'], // 320 MB/s: the CPUs are the limit
    ['ferry-probe 30000000 500000', true, 'zstd'], // 60 MB/s
    ['ferry-probe 6000000 500000', true, 'zstd-3'], // 12 MB/s: 100 Mbit/s
    ['ferry-probe 6000000 500000', false, 'gzip'], // a slow link without zstd
    ['ferry-probe 64000000 200000', false, 'none'],
  ];
  for (const [output, zstd, want] of cases) {
    const r = await runTask(transfer, c, {
      manifest: manifestOf(),
      answers: { probe: { output }, ...(zstd ? {} : { 'has-zstd new': { code: 1 } }) },
    });
    t.is(r.error, undefined, output);
    t.like(r.result, { compression: want }, `${output} zstd=${zstd}`);
    const streams = streamsOf(r.seen);
    t.deepEqual(
      streams.map((s) => [s.id, s.item]),
      [
        ['probe', undefined],
        ['live', want],
      ],
    );
    t.is(streams[1]!.command, liveLine(want as LiveCodec));
  }
  t.is(parseProbe('ferry-probe 64000000 200000'), 320e6);
  t.true(Number.isNaN(parseProbe('ferry-probe 10 200000')), 'too few bytes to say');
  t.true(Number.isNaN(parseProbe('')));
  t.is(chooseCodec(Number.NaN, true), 'zstd');
});

test('the probe sends at most 64 MiB in half a second and measures from the first byte, for real', async (t) => {
  const out = execFileSync(
    'bash',
    ['-c', `set -euo pipefail; ${PROBE_SEND.render()} | ${PROBE_RECEIVE.render()}`],
    { encoding: 'utf8' },
  );
  const bytes = Number(/ferry-probe (\d+) (\d+)/.exec(out)?.[1]);
  t.true(bytes > 0 && bytes <= 67108864, out);
  // A loaded machine may send too little in half a second to say anything: then no rate.
  t.is(Number.isFinite(parseProbe(out)), bytes > 1e6, out);
});

test('compression zstd stops when a host lacks it, before anything is streamed', async (t) => {
  const c = ctx({ compression: 'zstd' });
  const f = await runTask(transfer, c, {
    manifest: manifestOf(),
    answers: { 'has-zstd new': { code: 1 } },
  });
  const e = t.throws(rethrow(f.error), { instanceOf: StopError });
  t.regex(e!.message, /zstd is missing on new/);
  t.is(streamsOf(f.seen).length, 0);
});

test('a failed stream discards its stage and says nothing was moved into place', async (t) => {
  const c = ctx({});
  const f = await runTask(transfer, c, {
    manifest: manifestOf(),
    answers: { 'live zstd': { code: 1, stderr: 'Connection reset' } },
  });
  t.truthy(f.error);
  t.deepEqual(
    f.seen.calls.filter((x) => x.id === 'discard-stage').map((x) => [x.host, x.command]),
    [['new', discardStageCommand(RUN).render()]],
  );
  t.is(f.seen.calls.at(-1)?.id, 'discard-stage', 'after the stream failed');
  t.regex(f.seen.states.at(-1)!, /^new: the transfer failed; its stage was discarded/);
  const ok = await runTask(transfer, c, { manifest: manifestOf() });
  t.false(
    ok.seen.calls.some((x) => x.id === 'discard-stage'),
    'a stream that went through keeps its stage',
  );
});

test('a full disk on the target: the message leads with the cause, then where', async (t) => {
  const f = await runTask(transfer, ctx({}), {
    manifest: manifestOf(),
    answers: {
      'live zstd': {
        code: 1,
        stderr:
          'lugins/available/redis/.git/objects/4c/4930: Cannot write: No space left on device\n',
      },
    },
  });
  const m = f.error instanceof Error ? f.error.message : '';
  // A progress line puts the step's title before it: the cause must come early.
  t.regex(m, /^new: No space left on device in its stage while receiving \(/);
  t.regex(m, /objects\/4c\/4930: Cannot write/);
});

test('a full disk that tar reports only as a short write is told as one', async (t) => {
  const f = await runTask(transfer, ctx({}), {
    manifest: manifestOf(),
    answers: {
      'live zstd': { code: 1, stderr: 'tar: ./notes/refs/x: Wrote only 2048 of 10240 bytes\n' },
    },
  });
  const m = f.error instanceof Error ? f.error.message : '';
  t.regex(
    m,
    /^new: No space left on device in its stage while receiving \(tar: .*Wrote only 2048 of 10240 bytes\)/,
  );
});

test('restore from a folder: the archive file decides the compression; the manifest comes from meta', async (t) => {
  const c = ctx({ data: 'given' }, { archive: { host: 'old', path: '/srv/ferry/old-1' } });
  const manifest = manifestOf({ dataBytes: 0, apps: [] });
  const f = await runTask(transfer, c, {
    manifest: manifestOf(),
    answers: {
      'archive-name': { stdout: 'dokku.tar.gz\n' },
      'read-manifest': { stdout: JSON.stringify(manifest) },
    },
  });
  t.is(f.error, undefined);
  t.like(f.result, { compression: 'gzip' });
  t.deepEqual((f.result as { manifest: unknown }).manifest, manifest as unknown);
  t.deepEqual(
    f.seen.calls.filter((x) => x.id === 'archive-name').map((x) => [x.host, x.command]),
    [
      [
        'old',
        'cd /srv/ferry/old-1 && { ls -1 dokku.tar.zst dokku.tar.gz 2>/dev/null || true; } | head -n 1',
      ],
    ],
  );
  t.deepEqual(
    streamsOf(f.seen).map((s) => [s.id, s.item]),
    [
      ['meta', undefined],
      ['archive', 'gzip'],
    ],
  );
  t.is(
    sendArchiveCommand('/srv/ferry/old-1/dokku.tar.gz').render(),
    'cat -- /srv/ferry/old-1/dokku.tar.gz',
  );
  t.regex(receiveDataCommand(RUN, 'gzip').render(), /gzip -dc/);
  t.is(
    streamsOf(f.seen)[1]!.command,
    `cat -- /srv/ferry/old-1/dokku.tar.gz | ${receiveDataCommand(RUN, 'gzip').render()}`,
  );
  const g = await runTask(transfer, c, {
    manifest: manifestOf(),
    answers: { 'archive-name': { stdout: '' } },
  });
  t.throws(rethrow(g.error), {
    instanceOf: StopError,
    message: /no dokku\.tar\.zst or dokku\.tar\.gz/,
  });
  t.is(streamsOf(g.seen).length, 0);
});

/** The --transform arguments of the receive command, as tar gets them. */
function transforms(command: string): string[] {
  // The pipeline appears twice (with python3 and without): each transform once.
  return [...new Set([...command.matchAll(/--transform '([^']*)'/g)].map((m) => m[1]!))];
}

test('the receive tar stages home/dokku and /var/lib/dokku inside their own trees; strays are quarantined', (t) => {
  const s = stagePaths(RUN);
  const tx = transforms(receiveDataCommand(RUN, 'zstd').render());
  t.is(tx.length, 4);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-xfer-'));
  try {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'home/dokku/app'), { recursive: true });
    mkdirSync(join(src, 'var/lib/dokku/config/app'), { recursive: true });
    mkdirSync(join(src, 'var/lib/dokku/plugins/enabled'), { recursive: true });
    mkdirSync(join(src, 'etc'), { recursive: true });
    writeFileSync(join(src, 'home/dokku/app/HEAD'), 'ref: refs/heads/main\n');
    linkSync(join(src, 'home/dokku/app/HEAD'), join(src, 'home/dokku/app/HEAD.hard'));
    writeFileSync(join(src, 'var/lib/dokku/config/app/ENV'), 'A="1"\n', { mode: 0o600 });
    symlinkSync('/var/lib/dokku/plugins/available/x', join(src, 'var/lib/dokku/plugins/enabled/x'));
    writeFileSync(join(src, 'etc/evil'), 'no');
    // What a live stream adds at its end: the run folder's manifest and exports.
    mkdirSync(join(src, 'exports'), { mode: 0o700 });
    writeFileSync(join(src, 'manifest.json'), '{}', { mode: 0o600 });
    writeFileSync(join(src, 'exports/postgres-db.dump'), 'dump', { mode: 0o600 });
    mkdirSync(join(src, 'var/lib/dokku/data/exports'), { recursive: true });
    writeFileSync(join(src, 'var/lib/dokku/data/exports/keep'), 'a Dokku path named exports');
    execFileSync('chown', ['-R', '4242:4343', join(src, 'var/lib/dokku/config')]);
    const tarFile = join(dir, 'a.tar');
    execFileSync('tar', [
      '--numeric-owner',
      '-cpf',
      tarFile,
      '-C',
      src,
      'home/dokku',
      'var/lib/dokku/config',
      'var/lib/dokku/plugins',
      'var/lib/dokku/data',
      'etc',
      'manifest.json',
      'exports',
    ]);
    const dst = join(dir, 'dst');
    mkdirSync(dst);
    execFileSync('tar', [
      '--numeric-owner',
      '-xpf',
      tarFile,
      '-C',
      dst,
      ...tx.flatMap((x) => ['--transform', x]),
    ]);
    const at = (p: string) => join(dst, p);
    t.true(existsSync(at(`${s.home}/app/HEAD`)));
    t.is(
      statSync(at(`${s.home}/app/HEAD`)).ino,
      statSync(at(`${s.home}/app/HEAD.hard`)).ino,
      'hard link kept',
    );
    const env = statSync(at(`${s.libTree}/config/app/ENV`));
    t.is(env.mode & 0o777, 0o600);
    if (process.getuid?.() === 0) t.is(env.uid, 4242, 'numeric owner kept');
    t.is(
      readlinkSync(at(`${s.libTree}/plugins/enabled/x`)),
      '/var/lib/dokku/plugins/available/x',
      'symlink target untouched',
    );
    t.true(existsSync(at(`${s.lib}/etc/evil`)), 'a stray member stays in the stage');
    t.false(existsSync(at('etc/evil')));
    t.is(readFileSync(at(`${s.meta}/manifest.json`), 'utf8'), '{}', 'the manifest goes to meta');
    t.is(readFileSync(at(`${s.meta}/exports/postgres-db.dump`), 'utf8'), 'dump');
    t.is(statSync(at(`${s.meta}/exports`)).mode & 0o777, 0o700, 'exports stay root-only');
    t.true(existsSync(at(`${s.libTree}/data/exports/keep`)), 'only the top-level names are meta');
    t.false(existsSync(at(`${s.lib}/manifest.json`)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the checksum is plain SHA-256, with python3 and without: what sha256sum says, on both sides of a pipe', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sum-'));
  try {
    const data = join(dir, 'data');
    writeFileSync(data, Buffer.alloc(3_000_000, 7));
    const want = execFileSync('sha256sum', [data], { encoding: 'utf8' }).split(' ')[0] ?? '';
    // A PATH without python3: the tee-and-FIFO way.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const tool of [
      'cat',
      'cut',
      'dd',
      'mkfifo',
      'mktemp',
      'openssl',
      'rm',
      'sha256sum',
      'tee',
    ]) {
      const where = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      symlinkSync(where, join(bin, tool));
    }
    for (const [way, PATH] of [
      ['python3', process.env.PATH ?? ''],
      ['tee', bin],
    ] as const) {
      const out = join(dir, `${way}-out.sum`);
      const inn = join(dir, `${way}-in.sum`);
      const copy = join(dir, `${way}-copy`);
      const receive = hashed($`cat > ${copy}`, inn, 'in', { progress: true }).render();
      const script = `set -euo pipefail\n( ${hashed($`cat ${data}`, out, 'out').render()} ) | ( ${receive} )`;
      const r = spawnSync('/bin/bash', ['-c', script], {
        env: { ...process.env, PATH },
        encoding: 'utf8',
      });
      t.is(r.status, 0, r.stderr);
      // The count a direct transfer reads: the last `<n> bytes` line is every byte.
      const counts = [...r.stderr.matchAll(/(?:^|[\r\n])(\d+) bytes\b/g)].map((m) => Number(m[1]));
      t.is(counts.at(-1), 3_000_000, `${way}: progress ends at the whole count`);
      t.is(readFileSync(out, 'utf8').trim(), want, `${way}: sent`);
      t.is(readFileSync(inn, 'utf8').trim(), want, `${way}: received`);
      t.is(readFileSync(copy).length, 3_000_000, `${way}: every byte passed`);
    }
    // A consumer that fails fails the whole pipe (pipefail), with no traceback.
    const r = spawnSync(
      '/bin/bash',
      [
        '-c',
        `set -euo pipefail; ${hashed($`cat ${data}`, join(dir, 'x.sum'), 'out').render()} | head -c 10 >/dev/null`,
      ],
      { encoding: 'utf8' },
    );
    t.not(r.status, 0);
    t.notRegex(r.stderr, /Traceback/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('live send | receive for real: the Dokku paths reach their stages, the run folder its meta, both sums agree', (t) => {
  const s = stagePaths(RUN);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-live-'));
  try {
    // The commands work from /; here they work from two temp roots instead.
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    const run = join(src, 'srv/run');
    mkdirSync(join(src, 'home/dokku/app'), { recursive: true });
    mkdirSync(join(src, 'var/lib/dokku/config/app'), { recursive: true });
    mkdirSync(join(run, 'exports'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dst, s.meta), { recursive: true });
    writeFileSync(join(src, 'home/dokku/app/HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(src, 'var/lib/dokku/config/app/ENV'), 'A="1"\n', { mode: 0o600 });
    writeFileSync(join(run, 'manifest.json'), '{"m":1}', { mode: 0o600 });
    writeFileSync(join(run, 'exports/postgres-db.dump'), 'dump', { mode: 0o600 });
    writeFileSync(join(run, 'stream.sha256'), 'not sent');
    const send = sendLiveCommand(join(run, 'stream.sha256'), 'gzip', run)
      .render()
      .replace(/^cd \/ &&/, `cd ${src} &&`);
    const receive = receiveDataCommand(RUN, 'gzip')
      .render()
      .replaceAll(' -C / ', ` -C ${dst} `)
      .replaceAll(s.sum, join(dst, s.sum));
    t.not(send, sendLiveCommand(join(run, 'stream.sha256'), 'gzip', run).render(), 'root replaced');
    t.not(receive, receiveDataCommand(RUN, 'gzip').render(), 'root and sum file replaced');
    execFileSync('bash', ['-c', `set -euo pipefail\n( ${send} ) | ( ${receive} )`]);
    t.is(readFileSync(join(dst, s.home, 'app/HEAD'), 'utf8'), 'ref: refs/heads/main\n');
    t.is(readFileSync(join(dst, s.libTree, 'config/app/ENV'), 'utf8'), 'A="1"\n');
    t.is(readFileSync(join(dst, s.meta, 'manifest.json'), 'utf8'), '{"m":1}');
    t.is(readFileSync(join(dst, s.meta, 'exports/postgres-db.dump'), 'utf8'), 'dump');
    t.false(existsSync(join(dst, s.meta, 'stream.sha256')), 'only the manifest and exports go');
    const sent = readFileSync(join(run, 'stream.sha256'), 'utf8').trim();
    t.regex(sent, /^[0-9a-f]{64}$/);
    t.is(readFileSync(join(dst, s.sum), 'utf8').trim(), sent);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
