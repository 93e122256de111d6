import test from 'ava';
import type { JournalRecord } from '../../src/run/journal.js';
import { formatDuration, restoreWindow } from '../../src/tasks/drill-report.js';
import { dokkuRemoteUrl, parseHeads, withoutPassword } from '../../src/tasks/rewrite-remotes.js';
import { HOST } from './task-apps-fake.js';

test('dokkuRemoteUrl: scp-like on 22, ssh:// elsewhere, IPv6 bracketed', (t) => {
  t.is(dokkuRemoteUrl(HOST, 'web'), 'dokku@10.0.0.2:web');
  t.is(dokkuRemoteUrl({ ...HOST, port: 2222 }, 'web'), 'ssh://dokku@10.0.0.2:2222/web');
  t.is(dokkuRemoteUrl({ ...HOST, address: 'fd00::2' }, 'web'), 'dokku@[fd00::2]:web');
});

test('parseHeads reads ls-remote --heads', (t) => {
  const out = 'aaa111\trefs/heads/master\nbbb222\trefs/heads/feature/x\nccc\trefs/tags/v1\n';
  t.deepEqual(parseHeads(out), [
    { sha: 'aaa111', branch: 'master' },
    { sha: 'bbb222', branch: 'feature/x' },
  ]);
  t.deepEqual(parseHeads(''), []);
});

test('withoutPassword masks a password in a URL, leaves ssh remotes alone', (t) => {
  t.is(
    withoutPassword('https://u:s3cret@git.example.com/x.git'),
    'https://u:***@git.example.com/x.git',
  );
  t.is(withoutPassword('dokku@10.0.0.1:web'), 'dokku@10.0.0.1:web');
  t.is(withoutPassword('ssh://dokku@h:2222/web'), 'ssh://dokku@h:2222/web');
});

const at = (s: number) => new Date(Date.UTC(2026, 10, 23, 1, 0, 0) + s * 1000).toISOString();

function journal(extra: JournalRecord[]): JournalRecord[] {
  return [
    {
      type: 'run-started',
      v: 1,
      at: at(0),
      runId: 'R',
      command: 'drill',
      playbook: { path: 'p', hash: 'h' },
      inventory: { path: 'i', hash: 'h' },
      bindings: {},
      argv: [],
      steps: ['check-scratch', 'transfer', 'extract', 'verify-apps', 'drill-report'],
    },
    ...extra,
  ];
}

test("restoreWindow: the restore steps' durations summed; checks, the report and retries handled", (t) => {
  const fin = (step: string, ms: number, doneIn = 'R') =>
    ({
      type: 'step-finished',
      step,
      host: 's',
      durationMs: ms,
      outputs: {},
      doneIn,
      at: at(0),
    }) as const;
  const recs = journal([
    fin('check-scratch', 5000),
    {
      type: 'step-failed',
      step: 'transfer',
      host: 's',
      durationMs: 4000,
      message: 'x',
      willRetry: true,
      at: at(0),
    },
    fin('transfer', 16000),
    fin('extract', 10000),
    fin('verify-apps', 4500),
    fin('drill-report', 99000),
  ]);
  t.deepEqual(restoreWindow(recs, 'drill-report'), {
    seconds: 34.5,
    steps: { transfer: 20, extract: 10, 'verify-apps': 4.5 },
    replayed: [],
  });
});

test('restoreWindow: replayed steps are named, not counted; nothing ran → undefined', (t) => {
  const recs = journal([
    {
      type: 'step-finished',
      step: 'transfer',
      host: 's',
      durationMs: 0,
      outputs: {},
      doneIn: 'EARLIER',
      at: at(1),
    },
    {
      type: 'step-finished',
      step: 'extract',
      host: 's',
      durationMs: 10000,
      outputs: {},
      doneIn: 'R',
      at: at(12),
    },
  ]);
  const w = restoreWindow(recs, 'drill-report');
  t.is(w?.seconds, 10);
  t.deepEqual(w?.replayed, ['transfer']);
  t.is(restoreWindow(journal([]), 'drill-report'), undefined);
});

test('formatDuration', (t) => {
  t.is(formatDuration(6.2), '6.2 s');
  t.is(formatDuration(245), '4 min 05 s');
  t.is(formatDuration(3723), '1 h 02 min 03 s');
});
