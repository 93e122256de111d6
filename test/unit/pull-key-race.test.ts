/**
 * sshd reads the authorized keys file at every login. A pull key's removal
 * must never show a concurrent reader a file without the lines it keeps:
 * here a reader counts the kept lines in a loop while removals (several at
 * once, as runs of ferry on one source would) and additions go on. With
 * the removal rewriting the file in place (truncate, then write), the reader
 * sees a short count within a few removals.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { addKeyScript, removeKeyScript } from '../../src/ssh/pull-key.js';
import type { Command } from '../../src/ssh/shell.js';
import { wrapCommand } from '../../src/ssh/wrap.js';

const KEPT = 20;
const REMOVALS = 40;

function bash(cmd: Command): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', wrapCommand(cmd, { sudo: false })], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code ?? -1));
  });
}

test('a reader never sees the kept lines go while pull keys are removed and added', async (t) => {
  t.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-keys-race-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'authorized_keys');
  const kept = Array.from({ length: KEPT }, (_, i) => `ssh-ed25519 AAAAkept${i} user${i}@laptop`);
  const marker = (i: number) => `ferry-direct-${i.toString(16).padStart(16, '0')}`;
  const pulls = Array.from(
    { length: REMOVALS },
    (_, i) => `restrict ssh-ed25519 AAAApull${i} ${marker(i)}`,
  );
  writeFileSync(f, `${[...kept, ...pulls].join('\n')}\n`, { mode: 0o600 });

  // The reader: counts the kept lines until told to stop; prints each short count.
  const stop = join(dir, 'stop');
  const reader = spawn(
    'bash',
    [
      '-c',
      'n=0; while [ ! -e "$2" ]; do c=$(grep -c "^ssh-ed25519 AAAAkept" "$1"); n=$((n+1)); [ "$c" = "$3" ] || echo "short $c"; done; echo "reads $n"',
      'reader',
      f,
      stop,
      String(KEPT),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let said = '';
  reader.stdout.on('data', (b: Buffer) => {
    said += b.toString();
  });
  const finished = new Promise<void>((resolve) => reader.on('exit', () => resolve()));

  // Four at a time; every fifth also adds a key line, as a run starting meanwhile would.
  const codes: number[] = [];
  for (let i = 0; i < REMOVALS; i += 4) {
    const batch = [i, i + 1, i + 2, i + 3].filter((j) => j < REMOVALS);
    const runs = batch.map((j) => bash(removeKeyScript(f, marker(j))));
    if (i % 5 === 0) {
      runs.push(
        bash(addKeyScript('root', f, 'restrict', `ssh-ed25519 AAAAadded${i}`, marker(0x1000 + i))),
      );
    }
    codes.push(...(await Promise.all(runs)));
  }
  writeFileSync(stop, '');
  await finished;

  t.deepEqual(
    codes.filter((c) => c !== 0),
    [],
    'every removal and addition succeeded',
  );
  const reads = Number(/reads (\d+)/.exec(said)?.[1] ?? 0);
  t.true(reads > 50, `the reader read while the removals ran (${reads} reads)`);
  t.deepEqual(said.match(/short \d+/g) ?? [], [], 'no read saw fewer kept lines');
  const lines = readFileSync(f, 'utf8').trimEnd().split('\n');
  t.deepEqual(
    lines.filter((l) => l.includes('AAAAkept')),
    kept,
  );
  t.false(
    lines.some((l) => l.includes('AAAApull')),
    'every pull key is gone',
  );
  t.is(lines.filter((l) => l.includes('AAAAadded')).length, Math.ceil(REMOVALS / 4 / 5));
  t.is(statSync(f).mode & 0o777, 0o600);
});
