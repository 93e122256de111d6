import test from 'ava';
import { FerryError } from '../../src/errors.js';
import drillReport, { restoreWindow } from '../../src/tasks/drill-report.js';
import { dokkuRemoteUrl, parseHeads, withoutPassword } from '../../src/tasks/rewrite-remotes.js';
import type { JournalView } from '../../src/tasks/types.js';
import { formatDuration } from '../../src/util/format.js';
import { contextOf, HOST, manifest } from './task-apps-data.js';
import { runTask } from './task-fake.js';

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

/** A run's journal as a task reads it: the run-started record, then `extra`. */
function journal(extra: JournalView[]): JournalView[] {
  return [
    {
      type: 'run-started',
      runId: 'R',
      steps: ['check-scratch', 'transfer', 'extract', 'verify-apps', 'drill-report'],
    },
    ...extra,
  ];
}

const fin = (step: string, ms: number, doneIn = 'R'): JournalView => ({
  type: 'step-finished',
  step,
  durationMs: ms,
  doneIn,
});

/** A drill's journal: a check, a retried transfer, extract, verify-apps, and this report. */
const DRILL = journal([
  { type: 'other' },
  fin('check-scratch', 5000),
  { type: 'step-failed', step: 'transfer', durationMs: 4000 },
  fin('transfer', 16000),
  fin('extract', 10000),
  fin('verify-apps', 4500),
  fin('drill-report', 99000),
]);

test("restoreWindow: the restore steps' durations summed; checks, the report and retries handled", (t) => {
  t.deepEqual(restoreWindow(DRILL, 'drill-report'), {
    seconds: 34.5,
    steps: { transfer: 20, extract: 10, 'verify-apps': 4.5 },
    replayed: [],
  });
});

test('restoreWindow: replayed steps are named, not counted; nothing ran → undefined', (t) => {
  const recs = journal([fin('transfer', 0, 'EARLIER'), fin('extract', 10000)]);
  const w = restoreWindow(recs, 'drill-report');
  t.is(w?.seconds, 10);
  t.deepEqual(w?.replayed, ['transfer']);
  t.is(restoreWindow(journal([]), 'drill-report'), undefined);
});

test("drill-report: RTO from this run's journal, RPO from the manifest; objectives missed fail the step", async (t) => {
  const created = new Date(Date.now() - 3_600_000).toISOString();
  const m = manifest([], { createdAt: created });
  const ok = await runTask(drillReport, contextOf(drillReport, {}), {
    manifest: m,
    journal: DRILL,
  });
  t.is(ok.error, undefined);
  t.like(ok.result, {
    rtoSeconds: 34.5,
    restoreSteps: { transfer: 20, extract: 10, 'verify-apps': 4.5 },
    backupCreatedAt: created,
  });
  const rpo = (ok.result as { rpoSeconds: number }).rpoSeconds;
  t.true(rpo >= 3600 && rpo < 3660, `RPO ${rpo} s: the backup's age`);
  t.deepEqual(ok.seen.warnings, []);

  const over = await runTask(drillReport, contextOf(drillReport, { rto_max: 30, rpo_max: 60 }), {
    manifest: m,
    journal: DRILL,
  });
  const e = t.throws(
    () => {
      throw over.error;
    },
    { instanceOf: FerryError },
  );
  t.regex(e!.message, /RTO 34\.5s > rto_max 30\.0s/);
  t.regex(e!.message, /RPO 1h00m > rpo_max 1m00s/);

  const none = await runTask(drillReport, contextOf(drillReport, {}), { manifest: m });
  t.is(none.error, undefined);
  t.is((none.result as { rtoSeconds?: number }).rtoSeconds, undefined);
  t.true(none.seen.warnings.some((w) => w.startsWith('RTO unknown')));
});

test('durations print one way in every report (the drill too)', (t) => {
  t.is(formatDuration(6200), '6.2s');
  t.is(formatDuration(245_000), '4m05s');
  t.is(formatDuration(3_723_000), '1h02m');
});
