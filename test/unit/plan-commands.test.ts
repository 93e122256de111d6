/**
 * The checksumming stream wrapper of a transfer (`hashed`), run here with bash on temporary folders
 * (no host): the checksum written on each end is the SHA-256 of the bytes
 * that travelled, and the tree lands in the stage with its content.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { $, type Command } from '../../src/ssh/shell.js';
import { COMPRESSION, hashed } from '../../src/tasks/common.js';
import { sendArchiveCommand } from '../../src/tasks/transfer.js';

const hasZstd = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function bash(cmd: Command, input?: Buffer, tmp?: string): Buffer {
  const script = cmd.render();
  return execFileSync('bash', ['-c', `set -euo pipefail\n${script}`], {
    input: input ?? Buffer.alloc(0),
    env: { ...process.env, ...(tmp ? { TMPDIR: tmp } : {}) },
  });
}

(hasZstd ? test : test.skip)(
  'send | receive: both sums equal the bytes sent; the tree is staged',
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-stream-'));
    try {
      mkdirSync(join(dir, 'src/home/dokku/web'), { recursive: true });
      writeFileSync(join(dir, 'src/home/dokku/web/ENV'), "SECRET='x y'\n");
      const stage = join(dir, 'stage with space');
      mkdirSync(join(stage, 'root'), { recursive: true });
      const send = hashed(
        $`tar -C ${join(dir, 'src')} -cf - home | ${COMPRESSION.zstd.compress}`,
        join(dir, 'sent.sum'),
        'out',
      );
      const fifos = join(dir, 'fifos');
      mkdirSync(fifos);
      const bytes = bash(send, undefined, fifos);
      const receive = hashed(
        $`${COMPRESSION.zstd.decompress} | tar -xf - -C ${join(stage, 'root')}`,
        join(stage, 'data.sha256'),
        'in',
      );
      bash(receive, bytes, fifos);
      const sum = createHash('sha256').update(bytes).digest('hex');
      t.is(readFileSync(join(dir, 'sent.sum'), 'utf8').trim(), sum);
      t.is(readFileSync(join(stage, 'data.sha256'), 'utf8').trim(), sum);
      t.is(readFileSync(join(stage, 'root/home/dokku/web/ENV'), 'utf8'), "SECRET='x y'\n");
      t.deepEqual(readdirSync(fifos), [], 'the FIFOs are removed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a failing sender fails the command (pipefail), not a silent short archive', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-stream-'));
  try {
    const send = hashed(
      $`tar -C ${join(dir, 'missing')} -cf - home | gzip -1`,
      join(dir, 'sent.sum'),
      'out',
    );
    t.throws(() => bash(send));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an archive is sent as it is, its path quoted', (t) => {
  const dir = mkdtempSync(join(tmpdir(), "ferry it's "));
  try {
    writeFileSync(join(dir, 'dokku.tar.zst'), 'bytes');
    t.is(bash(sendArchiveCommand(join(dir, 'dokku.tar.zst'))).toString(), 'bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
