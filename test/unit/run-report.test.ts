import test from 'ava';
import {
  formatFailure,
  formatSummary,
  type ReportInput,
  resumeCommand,
  toJsonReport,
  toJunitXml,
  xmlEscape,
} from '../../src/run/report.js';
import type { RunResult } from '../../src/run/runner.js';

function result(over: Partial<RunResult> = {}): RunResult {
  return {
    runId: '20261123T224300Z-migrate-3fa9',
    status: 'failed',
    startedAt: '2026-11-23T22:43:00.000Z',
    durationMs: 75_000,
    steps: [
      {
        id: 'check-quiet',
        title: 'Check the source is quiet',
        host: 'old',
        status: 'ok',
        durationMs: 1200,
      },
      {
        id: 'transfer',
        title: 'Stream the archive to new',
        host: 'new',
        status: 'ok',
        durationMs: 48_000,
        bytes: 1_600_000_000,
      },
      {
        id: 'rewrite-remotes',
        title: 'Rewrite git remotes',
        host: 'controller',
        status: 'skipped',
        reason: 'no repos in the inventory',
      },
      {
        id: 'rebuild-apps',
        title: 'Rebuild apps',
        host: 'new',
        status: 'failed',
        durationMs: 3100,
        error: {
          stepId: 'rebuild-apps',
          title: 'Rebuild apps',
          host: 'new',
          message: '`dokku ps:rebuild web` exited 1',
          command: 'dokku ps:rebuild web',
          code: 1,
          outputTail:
            "-----> WARNING: Cannot build from 'master' <here> & DATABASE_URL=postgres://u:pw@h/d",
        },
      },
      { id: 'verify-apps', title: 'Verify apps answer', host: 'new', status: 'not-run' },
    ],
    outputs: {},
    warnings: [
      { message: 'web was deployed with git:from-image', step: 'check-quiet', host: 'old' },
    ],
    hostStates: { old: 'apps running again; archive kept at /var/lib/dokku-ferry/archives/a.tar' },
    bytes: 1_600_000_000,
    ...over,
  };
}

function input(over: Partial<ReportInput> = {}): ReportInput {
  const r = result();
  return {
    command: 'migrate',
    argv: ['migrate', 'old', 'new', '-i', 'inventory/lab.yml'],
    result: r,
    apps: ['api', 'web'],
    services: [{ plugin: 'postgres', name: 'db' }],
    bindings: { source: 'old', target: 'new' },
    dokkuVersions: { old: '0.38.27', new: '0.38.27' },
    journalFile: '/state/runs/x/journal.jsonl',
    ...over,
  };
}

test('resumeCommand adds --resume once and quotes', (t) => {
  t.is(resumeCommand(['migrate', 'old', 'new']), 'ferry migrate old new --resume');
  t.is(resumeCommand(['migrate', 'old', 'new', '--resume']), 'ferry migrate old new --resume');
  t.is(
    resumeCommand(['restore', './my backups/a.tar', 'new']),
    "ferry restore './my backups/a.tar' new --resume",
  );
});

test('human summary: steps, bytes and rate, apps, services, warnings, hosts, failure', (t) => {
  const text = formatSummary(input());
  t.regex(text, /^ferry migrate: FAILED in 1m15s \(run 20261123T224300Z-migrate-3fa9\)/);
  t.regex(text, /✔ check-quiet +old +1\.2s/);
  t.regex(text, /✔ transfer +new +48\.0s +1\.60 GB at 33\.3 MB\/s/);
  t.regex(text, /↷ rewrite-remotes +controller +skipped: no repos in the inventory/);
  t.regex(text, /✖ rebuild-apps +new +3\.1s +failed: `dokku ps:rebuild web` exited 1/);
  t.regex(text, /· verify-apps +new +not run/);
  t.regex(text, /Moved 1\.60 GB in 48\.0s \(33\.3 MB\/s\)/);
  t.regex(text, /Apps \(2\): api, web/);
  t.regex(text, /Services \(1\): postgres\/db/);
  t.regex(text, /! \[check-quiet\] web was deployed with git:from-image/);
  t.regex(text, /old: apps running again/);
  t.regex(text, /✖ Step "rebuild-apps" \(Rebuild apps\) failed on new/);
  t.regex(text, /ferry migrate old new -i inventory\/lab\.yml --resume/);
  t.false(text.includes(':pw@'));
});

test('human summary of a successful, resumed run has no failure block', (t) => {
  const r = result({
    status: 'ok',
    resumed: '20261123T200000Z-migrate-0001',
    steps: [
      {
        id: 'transfer',
        title: 'T',
        host: 'new',
        status: 'resumed',
        reason: 'done in run 20261123T200000Z-migrate-0001',
        bytes: 10,
      },
      { id: 'verify', title: 'V', host: 'new', status: 'ok', durationMs: 10 },
    ],
  });
  delete r.failure;
  const text = formatSummary(input({ result: r }));
  t.regex(text, /done in 1m15s \(run .*, resuming 20261123T200000Z-migrate-0001\)/);
  t.regex(text, /↺ transfer +new +10 B +skipped: done in run 20261123T200000Z-migrate-0001/);
  t.notRegex(text, /Moved/, 'resumed bytes were not moved in this run');
  t.notRegex(text, /resume continues/);
});

test('--json report: version field, steps, timings, bytes, apps, services, warnings', (t) => {
  const r = result();
  r.failure = r.steps[3]!.error!;
  const j = toJsonReport(input({ result: r, ferryVersion: '0.1.0' }));
  t.is(j.version, 1);
  t.is(j.ferryVersion, '0.1.0');
  t.is(j.status, 'failed');
  t.is(j.finishedAt, '2026-11-23T22:44:15.000Z');
  t.is(j.bytes, 1_600_000_000);
  t.is(j.bytesPerSecond, 33_333_333);
  t.deepEqual(j.apps, ['api', 'web']);
  t.deepEqual(j.services, [{ plugin: 'postgres', name: 'db' }]);
  t.is(j.steps.length, 5);
  t.is(j.steps[1]!.durationMs, 48_000);
  t.is(j.warnings.length, 1);
  t.is(j.failure?.resume, 'ferry migrate old new -i inventory/lab.yml --resume');
  t.deepEqual(j.dokkuVersions, { old: '0.38.27', new: '0.38.27' });
  t.false(JSON.stringify(j).includes(':pw@'));
  t.notThrows(() => JSON.parse(JSON.stringify(j)));
});

test('JUnit XML: a testcase per step, failure with message, skipped with reason, escaped', (t) => {
  const xml = toJunitXml(input());
  t.true(
    xml.startsWith(
      '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="ferry migrate" tests="5" failures="1" skipped="2"',
    ),
  );
  t.is(xml.match(/<testcase /g)?.length, 5);
  t.regex(
    xml,
    /<testcase classname="migrate\.old" name="check-quiet: Check the source is quiet" time="1\.200"\/>/,
  );
  t.regex(
    xml,
    /<failure message="on new: `dokku ps:rebuild web` exited 1" type="StepFailed">command: dokku ps:rebuild web\nexit code: 1\n/,
  );
  t.regex(xml, /Cannot build from &apos;master&apos; &lt;here&gt; &amp; DATABASE_URL=\*\*\*/);
  t.regex(xml, /<skipped message="no repos in the inventory"\/>/);
  t.regex(xml, /<skipped message="not run: an earlier step failed"\/>/);
  t.regex(xml, /<property name="target" value="new"\/>/);
  // Balanced elements: every opened testcase closes (self-closing or explicit).
  const opened = (xml.match(/<testcase [^>]*[^/]>/g) ?? []).length;
  t.is(opened, (xml.match(/<\/testcase>/g) ?? []).length);
  t.is(xmlEscape(`a${String.fromCharCode(7)}b"<`), 'ab&quot;&lt;');
});

test('failure message: step, host, command, tail, host states, resume command', (t) => {
  const r = result();
  r.failure = r.steps[3]!.error!;
  const text = formatFailure(input({ result: r }));
  const lines = text.split('\n');
  t.is(
    lines[0],
    '✖ Step "rebuild-apps" (Rebuild apps) failed on new: `dokku ps:rebuild web` exited 1',
  );
  t.true(lines.includes('  ran:  dokku ps:rebuild web'));
  t.true(lines.includes('  exit: 1'));
  t.true(lines.some((l) => l.startsWith("    │ -----> WARNING: Cannot build from 'master'")));
  t.true(
    lines.includes(
      '  old: apps running again; archive kept at /var/lib/dokku-ferry/archives/a.tar',
    ),
  );
  t.true(lines.includes('  new: unchanged by this run, as far as ferry knows'));
  t.true(lines.includes('Finished 2 of 5 steps; resume continues at "rebuild-apps":'));
  t.true(lines.includes('  ferry migrate old new -i inventory/lab.yml --resume'));
  t.true(lines.includes('Journal: /state/runs/x/journal.jsonl'));
  t.false(text.includes(':pw@'));
});

test('failure message for an interrupt without a failed step', (t) => {
  const r = result({ status: 'interrupted', steps: result().steps.slice(0, 3) });
  delete r.failure;
  const text = formatFailure(input({ result: r, argv: ['backup', 'old'] }));
  t.regex(text, /was interrupted/);
  t.regex(text, /ferry backup old --resume/);
  t.regex(text, /Finished 2 of 3 steps; resume with:/);
});
