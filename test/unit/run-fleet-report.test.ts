/**
 * The one report of a fleet run, from hosts' results: the exit code (0 all,
 * 3 some, 1 none, 130 interrupted), the line per host, each failure in full
 * with its own resume command, `--json` with each host's report, JUnit with a
 * testsuite per host. The runs themselves are proven on the lab
 * (test/e2e/fleet.test.ts).
 */
import test from 'ava';
import { ExitCode } from '../../src/errors.js';
import {
  type FleetHost,
  type FleetResult,
  fleetExitCode,
  fleetStatus,
  formatFleetFailures,
  formatFleetSummary,
  oneLine,
  toFleetJson,
  toFleetJunitXml,
} from '../../src/run/fleet-report.js';
import type { ReportInput } from '../../src/run/report.js';
import type { RunResult } from '../../src/run/runner.js';

function run(host: string, ok: boolean): ReportInput {
  const result: RunResult = {
    runId: '20261128T020000Z',
    status: ok ? 'ok' : 'failed',
    startedAt: '2026-11-28T02:00:00.000Z',
    durationMs: 9000,
    steps: [
      {
        id: 'check-quiet',
        title: 'refuse while a deploy runs',
        host,
        status: ok ? 'ok' : 'failed',
        durationMs: 800,
        ...(ok
          ? {}
          : {
              error: {
                stepId: 'check-quiet',
                title: 'refuse while a deploy runs',
                host,
                message: `${host} is busy:\n  - a deploy of web is running`,
                hint: 'Wait until no deploy runs.',
              },
            }),
      },
      { id: 'archive', title: 'tar the Dokku paths', host, status: ok ? 'ok' : 'not-run' },
    ],
    outputs: {},
    warnings: [],
    hostStates: ok ? {} : { [host]: 'unchanged' },
    bytes: 0,
  };
  if (!ok) {
    result.failure = result.steps[0]!.error!;
  }
  return {
    command: 'backup',
    argv: ['backup', host, '-i', 'hosts.yml'],
    result,
    bindings: { source: host },
    facts: ok ? { archive: `/var/lib/dokku-ferry/archives/${host}-x/dokku.tar.zst, 4 MB` } : {},
  };
}

function host(name: string, code: number, over: Partial<FleetHost> = {}): FleetHost {
  return {
    host: name,
    code,
    startedAt: '2026-11-28T02:00:00.000Z',
    durationMs: 9000,
    ...(code === ExitCode.ok || code === ExitCode.failed
      ? { report: run(name, code === ExitCode.ok) }
      : {}),
    ...over,
  };
}

function fleet(hosts: FleetHost[]): FleetResult {
  return {
    command: 'backup',
    label: '--all',
    parallel: 2,
    startedAt: '2026-11-28T02:00:00.000Z',
    durationMs: 20_000,
    hosts,
  };
}

test('the exit code: 0 all done, 3 some failed, 1 all failed, 130 interrupted', (t) => {
  const ok = host('a', ExitCode.ok);
  const bad = host('b', ExitCode.failed);
  t.is(fleetExitCode(fleet([ok, host('c', ExitCode.ok)])), 0);
  t.is(fleetExitCode(fleet([ok, bad])), 3);
  t.is(fleetStatus(fleet([ok, bad])), 'partial');
  t.is(fleetExitCode(fleet([bad, host('c', ExitCode.failed)])), 1);
  const stopped = host('c', ExitCode.interrupted, { error: { message: 'not started' } });
  t.is(fleetExitCode(fleet([ok, bad, stopped])), 130);
  // A host that could not even start counts as failed.
  const bad2 = host('d', ExitCode.usage, { error: { message: 'journal busy' } });
  t.is(fleetExitCode(fleet([ok, bad2])), 3);
});

test('the summary: a line per host, what each made or where it failed, the exit code explained', (t) => {
  const text = formatFleetSummary(
    fleet([host('old', ExitCode.ok), host('new', ExitCode.ok), host('scratch', ExitCode.failed)]),
  );
  const lines = text.split('\n');
  t.regex(
    lines[0]!,
    /^ferry backup --all: 2 of 3 host\(s\) done, 1 FAILED in 20\.0s \(at most 2 at once\)$/,
  );
  t.regex(
    text,
    /✔ old +9\.0s +archive \/var\/lib\/dokku-ferry\/archives\/old-x\/dokku\.tar\.zst, 4 MB/,
  );
  t.regex(
    text,
    /✖ scratch +9\.0s +FAILED at check-quiet on scratch: scratch is busy: a deploy of web is running/,
  );
  t.regex(text, /^exit 3: 1 of 3 host\(s\) failed, the others finished/m);
});

test('each failure in full, with its own host command to resume', (t) => {
  const r = fleet([
    host('old', ExitCode.ok),
    host('scratch', ExitCode.failed),
    host('h4', ExitCode.usage, { error: { message: 'cannot resume', hint: 'start anew' } }),
  ]);
  const text = formatFleetFailures(r);
  t.notRegex(text, /── old ──/);
  t.regex(text, /── scratch ──\n✖ Step "check-quiet"/);
  t.regex(text, /ferry backup scratch -i hosts\.yml --resume/);
  t.regex(text, /── h4 ──\n✖ cannot resume\n {2}hint: start anew/);
  t.is(formatFleetFailures(fleet([host('old', ExitCode.ok)])), '');
});

test('--json holds every host with its own report; JUnit a testsuite per host', (t) => {
  const r = fleet([
    host('old', ExitCode.ok),
    host('scratch', ExitCode.failed),
    host('h4', ExitCode.usage, { error: { message: 'cannot <resume>' } }),
  ]);
  const json = toFleetJson(r);
  t.is(json.status, 'partial');
  t.is(json.exitCode, 3);
  t.deepEqual(
    json.hosts.map((h) => [h.host, h.exitCode, h.report?.status ?? h.error?.message]),
    [
      ['old', 0, 'ok'],
      ['scratch', 1, 'failed'],
      ['h4', 2, 'cannot <resume>'],
    ],
  );
  t.is(json.hosts[1]!.report!.failure!.resume, 'ferry backup scratch -i hosts.yml --resume');
  const xml = toFleetJunitXml(r);
  t.is((xml.match(/<testsuite /g) ?? []).length, 3);
  t.regex(xml, /<testsuites name="ferry backup --all" tests="5" failures="2" skipped="1"/);
  t.regex(xml, /<testsuite name="ferry backup scratch" tests="2" failures="1"/);
  t.regex(xml, /<failure message="cannot &lt;resume&gt;" type="NotStarted">/);
});

test('oneLine keeps a headline and its first item', (t) => {
  t.is(
    oneLine('x is busy:\n  - a deploy of web is running\n  - another'),
    'x is busy: a deploy of web is running',
  );
  t.is(oneLine('plain\nmore'), 'plain');
  t.is(oneLine('y'.repeat(300)).length, 200);
});
