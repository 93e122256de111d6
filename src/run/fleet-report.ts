/**
 * The one report of a fleet run: a line per host (done, with what it made;
 * or failed, where and why), each failure in full with its resume command,
 * `--json` with every host's own report inside, JUnit with a testsuite per
 * host; and the exit code the whole run ends with.
 */
import { ExitCode } from '../errors.js';
import { formatDuration } from '../util/format.js';
import { redact } from './redact.js';
import {
  formatFailure,
  type JsonReport,
  junitSuite,
  type ReportInput,
  seconds,
  toJsonReport,
  xmlEscape,
} from './report.js';

/** How one host's run ended. */
export interface FleetHost {
  host: string;
  /** The exit code a single run of this host would have had. */
  code: number;
  startedAt: string;
  durationMs: number;
  /** The run's report input, when its steps ran. */
  report?: ReportInput;
  /** Why the run could not start (or was not started), when it did not. */
  error?: { message: string; hint?: string };
}

/** A fleet run, host by host. */
export interface FleetResult {
  command: string;
  /** `--all`, or the group's name. */
  label: string;
  parallel: number;
  startedAt: string;
  durationMs: number;
  hosts: FleetHost[];
}

/** The fleet's status: every host done, some, none, or stopped by the user. */
export type FleetStatus = 'ok' | 'partial' | 'failed' | 'interrupted';

/** The status of a fleet run from its hosts'. */
export function fleetStatus(r: FleetResult): FleetStatus {
  if (r.hosts.some((h) => h.code === ExitCode.interrupted)) return 'interrupted';
  const ok = r.hosts.filter((h) => h.code === ExitCode.ok).length;
  if (ok === r.hosts.length) return 'ok';
  return ok === 0 ? 'failed' : 'partial';
}

/**
 * The exit code of a fleet run: 0 every host done; 3 some hosts failed and
 * the others finished; 1 every host failed; 130 interrupted.
 */
export function fleetExitCode(r: FleetResult): number {
  const s = fleetStatus(r);
  if (s === 'ok') return ExitCode.ok;
  if (s === 'partial') return ExitCode.partial;
  if (s === 'interrupted') return ExitCode.interrupted;
  return ExitCode.failed;
}

/** What a finished host made, for its line: the archive of a backup. */
function made(h: FleetHost): string {
  const facts = h.report?.facts ?? {};
  return facts.archive ? `archive ${facts.archive}` : '';
}

/** A message in one line: a headline ending in ":" takes its first item along. */
export function oneLine(message: string): string {
  const [head = '', next = ''] = message.split('\n');
  const line = head.endsWith(':') && next ? `${head} ${next.trim().replace(/^- /, '')}` : head;
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/** Why a host failed, in one line. */
function why(h: FleetHost): string {
  const f = h.report?.result.failure;
  if (f) return `at ${f.stepId} on ${f.host}: ${oneLine(f.message)}`;
  return oneLine(h.error?.message ?? 'failed');
}

/** The summary on stdout: a headline, then a line per host. */
export function formatFleetSummary(r: FleetResult): string {
  const status = fleetStatus(r);
  const ok = r.hosts.filter((h) => h.code === ExitCode.ok).length;
  const failed = r.hosts.length - ok;
  const what =
    status === 'ok'
      ? `all ${r.hosts.length} host(s) done`
      : `${ok} of ${r.hosts.length} host(s) done, ${failed} ${status === 'interrupted' ? 'not finished (interrupted)' : 'FAILED'}`;
  const out = [
    `ferry ${r.command} ${r.label}: ${what} in ${formatDuration(r.durationMs)} (at most ${r.parallel} at once)`,
    '',
  ];
  const width = Math.max(4, ...r.hosts.map((h) => h.host.length));
  for (const h of r.hosts) {
    const mark = h.code === ExitCode.ok ? '✔' : '✖';
    const took = formatDuration(h.durationMs).padStart(8);
    const detail = h.code === ExitCode.ok ? made(h) : `FAILED ${why(h)}`;
    out.push(`  ${mark} ${h.host.padEnd(width)}  ${took}  ${detail}`.trimEnd());
  }
  out.push('');
  const code = fleetExitCode(r);
  out.push(
    code === ExitCode.ok
      ? 'exit 0: every host done'
      : code === ExitCode.partial
        ? `exit 3: ${failed} of ${r.hosts.length} host(s) failed, the others finished (failures below, on stderr)`
        : code === ExitCode.interrupted
          ? 'exit 130: interrupted; each host resumes with its own command below'
          : 'exit 1: every host failed (failures below, on stderr)',
  );
  return `${redact(out.join('\n'))}\n`;
}

/** Each failed host's failure in full (what ran, what it printed, where things are, how to resume). */
export function formatFleetFailures(r: FleetResult): string {
  const out: string[] = [];
  for (const h of r.hosts) {
    if (h.code === ExitCode.ok) continue;
    out.push(`── ${h.host} ──`);
    if (h.report) out.push(formatFailure(h.report));
    else {
      out.push(`✖ ${h.error?.message ?? 'failed'}`);
      if (h.error?.hint) out.push(`  hint: ${h.error.hint}`);
    }
    out.push('');
  }
  return out.length > 0 ? `${redact(out.join('\n'))}\n` : '';
}

/** `--json` of a fleet run. */
export interface FleetJsonReport {
  version: 1;
  command: string;
  fleet: string;
  parallel: number;
  status: FleetStatus;
  exitCode: number;
  startedAt: string;
  durationMs: number;
  hosts: {
    host: string;
    exitCode: number;
    startedAt: string;
    durationMs: number;
    report?: JsonReport;
    error?: { message: string; hint?: string };
  }[];
}

/** The machine-readable report: every host's own `--json` report inside. */
export function toFleetJson(r: FleetResult): FleetJsonReport {
  return {
    version: 1,
    command: r.command,
    fleet: r.label,
    parallel: r.parallel,
    status: fleetStatus(r),
    exitCode: fleetExitCode(r),
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    hosts: r.hosts.map((h) => ({
      host: h.host,
      exitCode: h.code,
      startedAt: h.startedAt,
      durationMs: h.durationMs,
      ...(h.report ? { report: toJsonReport(h.report) } : {}),
      ...(h.error ? { error: h.error } : {}),
    })),
  };
}

/** JUnit for CI: a testsuite per host (a host that could not start: one failing testcase). */
export function toFleetJunitXml(r: FleetResult): string {
  let tests = 0;
  let failures = 0;
  let skipped = 0;
  const suites = r.hosts.map((h) => {
    if (h.report) {
      const s = junitSuite({ ...h.report, suiteName: `ferry ${r.command} ${h.host}` });
      tests += s.tests;
      failures += s.failures;
      skipped += s.skipped;
      return s.xml;
    }
    tests += 1;
    failures += 1;
    const name = `ferry ${r.command} ${h.host}`;
    return `  <testsuite name="${xmlEscape(name)}" tests="1" failures="1" errors="0" skipped="0" time="${seconds(h.durationMs)}" timestamp="${xmlEscape(h.startedAt)}">
    <testcase classname="${xmlEscape(`${r.command}.${h.host}`)}" name="start" time="${seconds(h.durationMs)}">
      <failure message="${xmlEscape(h.error?.message ?? 'failed')}" type="NotStarted">${xmlEscape(h.error?.hint ?? '')}</failure>
    </testcase>
  </testsuite>`;
  });
  return `${redact(`<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${xmlEscape(`ferry ${r.command} ${r.label}`)}" tests="${tests}" failures="${failures}" skipped="${skipped}" time="${seconds(r.durationMs)}">
${suites.join('\n')}
</testsuites>`)}\n`;
}
