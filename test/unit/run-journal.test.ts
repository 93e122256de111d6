import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StopError } from '../../src/errors.js';
import {
  assertResumable,
  findResumable,
  foldJournal,
  hashText,
  Journal,
  type JournalStart,
  listRuns,
  newRunId,
  readJournal,
  resumeRun,
  runsDir,
} from '../../src/run/journal.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let tick = 0;
function start(dir: string, over: Partial<JournalStart> = {}): Journal {
  // Distinct, increasing start times so "latest" is well defined.
  const at = new Date(Date.UTC(2026, 10, 23, 22, 0, tick++));
  return Journal.create({
    dir,
    command: 'migrate',
    playbook: { path: 'playbooks/migrate.yml', hash: hashText('playbook v1') },
    inventory: { path: 'inventory/lab.yml', hash: hashText('inventory v1') },
    bindings: { source: 'old', target: 'new' },
    argv: ['migrate', 'old', 'new'],
    steps: ['check', 'archive', 'extract'],
    now: () => at,
    ...over,
  });
}

test('runsDir: FERRY_STATE_DIR, then XDG_STATE_HOME, then ~/.local/state', (t) => {
  t.is(runsDir({ FERRY_STATE_DIR: '/x' }, '/home/u'), '/x/runs');
  t.is(runsDir({ XDG_STATE_HOME: '/s' }, '/home/u'), '/s/dokku-ferry/runs');
  t.is(runsDir({}, '/home/u'), '/home/u/.local/state/dokku-ferry/runs');
});

test('run ids sort by time and name the command', (t) => {
  const a = newRunId('backup', new Date('2026-11-23T22:43:00.123Z'));
  t.regex(a, /^20261123T224300Z-backup-[0-9a-f]{4}$/);
  t.true(newRunId('x', new Date('2026-11-23T22:43:01Z')) > a.replace('backup', 'x'));
});

test('records are appended as JSON lines, file 0600 in a 0700 directory', (t) => {
  const dir = tmp(t);
  const j = start(dir);
  j.append({ type: 'step-started', step: 'check', host: 'old', title: 'Check', attempt: 1 });
  j.append({
    type: 'step-finished',
    step: 'check',
    host: 'old',
    durationMs: 12,
    outputs: { version: '0.38.27' },
    doneIn: j.runId,
  });
  j.close();
  t.throws(() => j.append({ type: 'warning', message: 'x' }));
  const rows = readFileSync(j.file, 'utf8').trimEnd().split('\n');
  t.is(rows.length, 3);
  const records = readJournal(j.file);
  t.is(records[0]!.type, 'run-started');
  t.is(records[2]!.type, 'step-finished');
  t.is(statSync(j.file).mode & 0o777, 0o600);
  t.is(statSync(join(dir, j.runId)).mode & 0o777, 0o700);
});

test('a torn last line (crash mid-write) is ignored; damage in the middle is reported', (t) => {
  const dir = tmp(t);
  const j = start(dir);
  j.append({ type: 'step-started', step: 'check', host: 'old', title: 'Check', attempt: 1 });
  j.close();
  appendFileSync(j.file, '{"type":"step-fini');
  t.is(readJournal(j.file).length, 2);
  appendFileSync(j.file, '\n{"type":"warning","message":"x","at":"2026"}\n');
  t.throws(() => readJournal(j.file), { instanceOf: StopError, message: /damaged at line 3/ });
});

test('foldJournal: finished steps, the failure, host states, in-progress step', (t) => {
  const dir = tmp(t);
  const j = start(dir);
  j.append({ type: 'step-started', step: 'check', host: 'old', title: 'Check', attempt: 1 });
  j.append({
    type: 'step-finished',
    step: 'check',
    host: 'old',
    durationMs: 1,
    outputs: {},
    doneIn: j.runId,
  });
  j.append({ type: 'step-started', step: 'archive', host: 'old', title: 'Archive', attempt: 1 });
  j.append({ type: 'host-state', host: 'old', note: 'apps stopped' });
  j.close();
  const s = foldJournal(j.file, readJournal(j.file));
  t.deepEqual([...s.finished.keys()], ['check']);
  t.is(s.inProgress, 'archive');
  t.is(s.failed, undefined);
  t.is(s.status, 'unfinished');
  t.deepEqual(s.hostStates, { old: 'apps stopped' });
});

test('findResumable: latest unfinished run of the same command and hosts', (t) => {
  const dir = tmp(t);
  const old = start(dir);
  old.append({ type: 'run-finished', status: 'failed', durationMs: 5 });
  old.close();
  const other = start(dir, { bindings: { source: 'old', target: 'scratch' } });
  other.close();
  const backup = start(dir, { command: 'backup', bindings: { source: 'old' } });
  backup.close();
  const latest = start(dir);
  latest.append({ type: 'run-finished', status: 'interrupted', durationMs: 5 });
  latest.close();
  t.is(listRuns(dir).length, 4);
  t.is(findResumable('migrate', { target: 'new', source: 'old' }, dir)?.start.runId, latest.runId);
  t.is(
    findResumable('migrate', { source: 'old', target: 'scratch' }, dir)?.start.runId,
    other.runId,
  );
  t.is(findResumable('migrate', { source: 'old' }, dir), undefined);
  t.is(findResumable('restore', { source: 'old', target: 'new' }, dir), undefined);
  const done = start(dir);
  done.append({ type: 'run-finished', status: 'ok', durationMs: 5 });
  done.close();
  t.is(
    findResumable('migrate', { source: 'old', target: 'new' }, dir),
    undefined,
    'the latest succeeded',
  );
  t.is(findResumable('migrate', { source: 'old' }, join(dir, 'missing')), undefined);
});

test('a changed playbook or inventory refuses resume, naming both hashes', (t) => {
  const dir = tmp(t);
  const j = start(dir);
  j.close();
  const run = findResumable('migrate', { source: 'old', target: 'new' }, dir)!;
  t.notThrows(() =>
    assertResumable(run, {
      playbookHash: hashText('playbook v1'),
      inventoryHash: hashText('inventory v1'),
    }),
  );
  const e = t.throws(
    () =>
      assertResumable(run, {
        playbookHash: hashText('playbook v2'),
        inventoryHash: hashText('inventory v1'),
      }),
    { instanceOf: StopError },
  );
  t.regex(
    e.message,
    /playbook playbooks\/migrate\.yml \([0-9a-f]{12} then, [0-9a-f]{12} now\) changed/,
  );
  t.notRegex(e.message, /inventory/);
  t.regex(e.hint ?? '', /without --resume/);
  t.throws(
    () =>
      resumeRun({
        command: 'migrate',
        bindings: { source: 'old', target: 'new' },
        playbookHash: hashText('playbook v1'),
        inventoryHash: hashText('inventory v2'),
        dir,
      }),
    { message: /the inventory inventory\/lab\.yml .* changed/ },
  );
  t.throws(
    () =>
      resumeRun({
        command: 'drill',
        bindings: { source: 'old', target: 'scratch' },
        playbookHash: '',
        inventoryHash: '',
        dir,
      }),
    {
      instanceOf: StopError,
      message: /nothing to resume: no unfinished `drill` run for source=old target=scratch/,
    },
  );
});

test('argv and events are redacted before they are written', (t) => {
  const dir = tmp(t);
  const j = start(dir, { argv: ['restore', 'https://u:topsecret@example.test/a.tar', 'new'] });
  j.append({ type: 'warning', message: 'export SECRET_KEY_BASE=abcdef123' });
  j.close();
  const text = readFileSync(j.file, 'utf8');
  t.false(text.includes('topsecret'));
  t.false(text.includes('abcdef123'));
  t.true(text.includes('SECRET_KEY_BASE=***'));
});

test('a finished step survives the process being killed right after it is recorded', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const dir = tmp(t);
  const journalUrl = new URL('../../src/run/journal.js', import.meta.url).href;
  const script = `
    const { Journal } = await import(${JSON.stringify(journalUrl)});
    const j = Journal.create({ dir: ${JSON.stringify(dir)}, command: 'backup', playbook: { path: 'p', hash: 'h' },
      inventory: { path: 'i', hash: 'h' }, bindings: { source: 'old' }, argv: ['backup', 'old'], steps: ['archive'] });
    j.append({ type: 'step-finished', step: 'archive', host: 'old', durationMs: 5,
      outputs: { path: '/a.tar', sha256: 'ab' }, bytes: 10, doneIn: j.runId });
    process.kill(process.pid, 'SIGKILL');
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  t.is(child.signal, 'SIGKILL', child.stderr);
  const run = findResumable('backup', { source: 'old' }, dir);
  t.deepEqual(run?.finished.get('archive')?.outputs, { path: '/a.tar', sha256: 'ab' });
  t.is(run?.status, 'unfinished');
});
