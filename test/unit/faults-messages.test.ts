/**
 * What a failure says first is its cause: a full disk, a damaged archive, a
 * filesystem too small for what the run writes on it. Pure parts of issue 10's
 * fixes: the messages, the per-filesystem free-space arithmetic, the sweep's
 * output.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { knownCause, LocalError, RemoteError } from '../../src/errors.js';
import { parseSweep } from '../../src/ssh/pull-key.js';
import { needsOf, type PathSpace, shortfalls } from '../../src/tasks/check-target.js';
import { networkCommand } from '../../src/tasks/recreate-engine.js';
import { damageOf, errorText } from '../../src/tasks/transfer.js';

const MiB = 1024 * 1024;

test('a remote failure leads with the system error it met, not with the script', (t) => {
  const script = 'd=/tmp/x\nprintf a\n( ssh ... | tar -xpf - -C / )\nwait $!';
  const e = new RemoteError({
    host: 'new',
    command: script,
    code: 1,
    stdout: '',
    stderr:
      '4194304 bytes\ntar: var/lib/dokku/.ferry-stage-1/var/lib/dokku/data/x: Cannot write: No space left on device\ntar: Exiting with failure status due to previous errors\n',
  });
  const first = e.message.split('\n')[0]!;
  t.true(
    first.startsWith(
      'on new: tar: var/lib/dokku/.ferry-stage-1/var/lib/dokku/data/x: Cannot write: No space left on device (`d=/tmp/x …` exited 1)',
    ),
    first,
  );
  t.false(first.includes('wait $!'), 'the script is not in the first line');
  t.is(e.command, script, 'the whole command is kept for the report');
  // Without a known cause: the command (its first line) and how it ended, as before.
  const plain = new RemoteError({
    host: 'old',
    command: 'dokku ps:rebuild web',
    code: 1,
    stdout: '',
    stderr: 'boom\n',
  });
  t.is(plain.message.split('\n')[0], 'on old: `dokku ps:rebuild web` exited 1');
  const local = new LocalError({
    command: 'cat > x',
    code: 1,
    stderr: 'cat: write error: No space left on device\n',
  });
  t.regex(local.message, /^here: cat: write error: No space left on device \(`cat > x` exited 1\)/);
  t.is(knownCause('all fine\n'), undefined);
  t.is(
    knownCause('tar: ./a: Wrote only 2048 of 10240 bytes\n'),
    'tar: ./a: Wrote only 2048 of 10240 bytes',
  );
  t.is(
    knownCause('x\nmkdir: cannot create directory: Read-only file system\n'),
    'mkdir: cannot create directory: Read-only file system',
  );
});

test('a damaged archive is recognised by what zstd, gzip or tar say', (t) => {
  for (const said of [
    "zstd: /*stdin*\\ : Decoding error (36) : Restored data doesn't match checksum",
    'zstd: /*stdin*\\ : Decoding error (36) : Corrupted block detected',
    'zstd: /*stdin*\\ : unsupported format',
    'gzip: stdin: invalid compressed data--crc error',
    'gzip: stdin: unexpected end of file',
    'tar: Unexpected EOF in archive',
  ]) {
    const found = damageOf(`0 bytes\n    │ ${said}\n`);
    if (said.includes('unsupported format')) t.is(found, undefined, said);
    else t.is(found, said, said);
  }
  t.is(damageOf('ssh: connect to host 10.0.0.1 port 22: Connection refused'), undefined);
  const inner = new RemoteError({
    host: 'new',
    command: 'x',
    code: 1,
    stdout: '',
    stderr: 'gzip: stdin: invalid compressed data--format violated\n',
  });
  const outer = new Error('the transfer failed', { cause: inner });
  t.regex(
    damageOf(errorText(outer)) ?? '',
    /^gzip: stdin: invalid compressed data--format violated$/,
  );
});

const space = (path: string, device: string, freeMiB: number, mount: string): PathSpace => ({
  path,
  device,
  free: freeMiB * MiB,
  mount,
});

test('free space is checked per filesystem, adding up the paths that share one', (t) => {
  const sizes = new Map([
    ['/home/dokku', 20 * MiB],
    ['/var/lib/dokku/config', 1 * MiB],
    ['/var/lib/dokku/data', 150 * MiB],
    ['/var/lib/dokku/services', 60 * MiB],
    ['/var/lib/dokku/plugins', 10 * MiB],
  ]);
  const needs = needsOf(sizes);
  t.deepEqual(
    needs.map((n) => [n.path, n.bytes / MiB]),
    [
      ['/home/dokku', 20],
      ['/var/lib/dokku', 221],
      ['/var/lib/dokku-ferry', 60],
    ],
  );
  // The case: /home and /var/lib have room, but /var/lib/dokku is its own small mount.
  const small = shortfalls(
    [
      space('/home/dokku', '1', 50_000, '/'),
      space('/var/lib/dokku', '2', 26, '/var/lib/dokku'),
      space('/var/lib/dokku-ferry', '1', 50_000, '/'),
    ],
    needs,
  );
  t.is(small.length, 1);
  t.like(small[0], { mount: '/var/lib/dokku', paths: ['/var/lib/dokku'], free: 26 * MiB });
  t.true(small[0]!.need > 221 * MiB);
  // One filesystem for all three: it must hold them together (301 MiB and the margin).
  const one = (free: number) =>
    shortfalls(
      ['/home/dokku', '/var/lib/dokku', '/var/lib/dokku-ferry'].map((p) =>
        space(p, '9', free, '/'),
      ),
      needs,
    );
  t.is(one(300).length, 1);
  t.deepEqual(one(300)[0]!.paths, ['/home/dokku', '/var/lib/dokku', '/var/lib/dokku-ferry']);
  t.deepEqual(one(400), []);
  // --force: the safety archive of the target's own data goes to backup.dir too.
  const forced = needsOf(sizes, { safety: { dir: '/srv/ferry', bytes: 100 * MiB } });
  t.is(forced.at(-1)?.path, '/srv/ferry');
  t.is(
    shortfalls(
      [
        ...['/home/dokku', '/var/lib/dokku', '/var/lib/dokku-ferry', '/srv/ferry'].map((p) =>
          space(p, '9', 400, '/'),
        ),
      ],
      forced,
    ).length,
    1,
  );
});

test('the sweep output parses into what the report lists', (t) => {
  const out = parseSweep(
    [
      'ferry-swept-dir /tmp/ferry-direct.AbC123xy ferry-direct-0123456789abcdef',
      'ferry-live-dir /tmp/ferry-direct.Live0000',
      'ferry-swept-fifo /tmp/ferry-sum.QQQQ1111',
      'ferry-swept-key /root/my keys/authorized_keys ferry-direct-fedcba9876543210',
      'noise',
    ].join('\n'),
  );
  t.deepEqual(out, {
    dirs: [{ dir: '/tmp/ferry-direct.AbC123xy', marker: 'ferry-direct-0123456789abcdef' }],
    fifos: ['/tmp/ferry-sum.QQQQ1111'],
    live: ['/tmp/ferry-direct.Live0000'],
    keys: [{ file: '/root/my keys/authorized_keys', marker: 'ferry-direct-fedcba9876543210' }],
  });
});

test('a network that exists is not created again, however long the list (no SIGPIPE race)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-net-'));
  try {
    // A `dokku` that lists the wanted network first, then enough others to fill a pipe,
    // and refuses to create one that exists, as Docker does.
    writeFileSync(
      join(dir, 'dokku'),
      `#!/bin/bash
if [ "$2" = network:list ]; then echo ferry-net; for i in $(seq 20000); do echo "other-network-$i"; done; exit 0; fi
if [ "$1" = network:create ]; then echo " !     Unable to create network: Error response from daemon: network with name $2 already exists" >&2; exit 1; fi
exit 3
`,
      { mode: 0o755 },
    );
    const line = networkCommand('ferry-net').render();
    for (let i = 0; i < 5; i++) {
      const r = spawnSync('bash', ['-c', `set -euo pipefail\n${line}`], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
        encoding: 'utf8',
      });
      t.is(r.status, 0, r.stderr);
      t.is(r.stdout, 'network ferry-net exists\n');
    }
    // The form it replaces fails here: grep -q leaves at the first line, the list dies of SIGPIPE.
    const old = spawnSync(
      'bash',
      [
        '-c',
        'set -euo pipefail\ndokku --quiet network:list | grep -qxF -- ferry-net || dokku network:create ferry-net',
      ],
      { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' },
    );
    t.is(old.status, 1);
    t.regex(old.stderr, /already exists/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
