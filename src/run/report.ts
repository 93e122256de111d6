/**
 * The end-of-run report in three forms: a human summary, `--json` for
 * machines, JUnit XML for CI; and the failure message that says what broke,
 * where, what each host is left like, and how to resume. All built from a
 * {@link RunResult}, so every form tells the same story; all text passes
 * through {@link redact}.
 */
import { quoteArgv } from '../ssh/quote.js';
import { formatBytes, formatDuration, formatRate, rate } from '../util/format.js';
import { redact } from './redact.js';
import type { RunResult, StepFailure, StepRecord } from './runner.js';

/** Version of the `--json` report shape; bumped on incompatible change. */
export const REPORT_VERSION = 1;

/** A datastore service named in the report. */
export interface ServiceRef {
  /** Plugin: `postgres`, `redis`, … */
  plugin: string;
  name: string;
}

/** What the command adds to the runner's result to make a report. */
export interface ReportInput {
  /** `migrate`, `backup`, `restore`, `drill`. */
  command: string;
  /** The user's argv after `ferry`, for the resume command. */
  argv: string[];
  result: RunResult;
  apps?: string[];
  services?: ServiceRef[];
  /** Role → host (`source: old`). */
  bindings?: Record<string, string>;
  /** Host → Dokku version seen there. */
  dokkuVersions?: Record<string, string>;
  ferryVersion?: string;
  journalFile?: string;
  /** Extra facts for drills and backups (RTO, RPO, archive path…): key → text. */
  facts?: Record<string, string>;
  /** Measured numbers (`downtimeMs`): in `--json` and as JUnit properties. */
  metrics?: Record<string, number>;
  /** The JUnit testsuite's name, when not `ferry <command>` (a fleet names each host's). */
  suiteName?: string;
}

const MARK: Record<StepRecord['status'], string> = {
  ok: '✔',
  failed: '✖',
  skipped: '↷',
  resumed: '↺',
  'not-run': '·',
};

/** `ferry migrate old new --resume`: the argv with `--resume` added once, quoted for a shell. */
export function resumeCommand(argv: string[]): string {
  const rest = argv.filter((a) => a !== '--resume' && a !== '--dry-run');
  return `ferry ${quoteArgv([...rest, '--resume'])}`;
}

function stepDetail(s: StepRecord): string {
  const parts: string[] = [];
  if (s.durationMs !== undefined && (s.status === 'ok' || s.status === 'failed')) {
    parts.push(formatDuration(s.durationMs));
  }
  if (s.bytes !== undefined && s.bytes > 0) {
    const r = s.durationMs ? ` at ${formatRate(rate(s.bytes, s.durationMs))}` : '';
    parts.push(`${formatBytes(s.bytes)}${s.status === 'resumed' ? '' : r}`);
  }
  if (s.status === 'skipped' || s.status === 'resumed') parts.push(`skipped: ${s.reason ?? ''}`);
  if (s.status === 'failed') parts.push(`failed: ${s.error?.message ?? ''}`);
  if (s.status === 'not-run') parts.push('not run');
  if (s.attempts !== undefined && s.attempts > 1) parts.push(`${s.attempts} attempts`);
  return parts.join('  ');
}

function headline(input: ReportInput): string {
  const r = input.result;
  const what = r.status === 'ok' ? 'done' : r.status === 'interrupted' ? 'interrupted' : 'FAILED';
  const resumed = r.resumed ? `, resuming ${r.resumed}` : '';
  return `ferry ${input.command}: ${what} in ${formatDuration(r.durationMs)} (run ${r.runId}${resumed})`;
}

/** Bytes moved by steps that ran in this run (resumed steps excluded), and the time they took. */
function moved(r: RunResult): { bytes: number; ms: number } {
  let bytes = 0;
  let ms = 0;
  for (const s of r.steps) {
    if (s.status === 'ok' && s.bytes) {
      bytes += s.bytes;
      ms += s.durationMs ?? 0;
    }
  }
  return { bytes, ms };
}

/** The human summary printed at the end of a run. */
export function formatSummary(input: ReportInput): string {
  const r = input.result;
  const out: string[] = [headline(input), ''];
  const idWidth = Math.max(4, ...r.steps.map((s) => s.id.length));
  const hostWidth = Math.max(4, ...r.steps.map((s) => s.host.length));
  for (const s of r.steps) {
    out.push(
      `  ${MARK[s.status]} ${s.id.padEnd(idWidth)}  ${s.host.padEnd(hostWidth)}  ${stepDetail(s)}`.trimEnd(),
    );
  }
  out.push('');
  const m = moved(r);
  if (m.bytes > 0) {
    out.push(
      `Moved ${formatBytes(m.bytes)} in ${formatDuration(m.ms)} (${formatRate(rate(m.bytes, m.ms))})`,
    );
  }
  if (input.apps) out.push(`Apps (${input.apps.length}): ${input.apps.join(', ') || 'none'}`);
  if (input.services) {
    const names = input.services.map((s) => `${s.plugin}/${s.name}`);
    out.push(`Services (${names.length}): ${names.join(', ') || 'none'}`);
  }
  for (const [k, v] of Object.entries(input.facts ?? {})) out.push(`${k}: ${v}`);
  if (r.warnings.length > 0) {
    out.push(`Warnings (${r.warnings.length}):`);
    for (const w of r.warnings) out.push(`  ! ${w.step ? `[${w.step}] ` : ''}${w.message}`);
  }
  if (r.undone && r.undone.length > 0) out.push(...undoneLines(r));
  const hosts = Object.entries(r.hostStates);
  if (hosts.length > 0) {
    out.push('Hosts:');
    for (const [h, note] of hosts) out.push(`  ${h}: ${note}`);
  }
  if (r.status !== 'ok') out.push('', formatFailure(input));
  return `${redact(out.join('\n').trimEnd())}\n`;
}

/** What was undone after the failure, one line each. */
function undoneLines(r: RunResult): string[] {
  return [
    `Undone after the failure (steps ${r.undoneFrom ?? '?'} on):`,
    ...(r.undone ?? []).map(
      (u) =>
        `  ${u.ok ? '↶' : '✖'} ${u.step} on ${u.host}: ${u.ok ? `brought back in ${formatDuration(u.durationMs)}` : `could not be brought back: ${u.message ?? ''}`}`,
    ),
  ];
}

/** The `--json` report. */
export interface JsonReport {
  version: typeof REPORT_VERSION;
  ferryVersion?: string;
  command: string;
  runId: string;
  resumed?: string;
  status: RunResult['status'];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  bytes: number;
  bytesPerSecond: number;
  bindings: Record<string, string>;
  dokkuVersions: Record<string, string>;
  steps: StepRecord[];
  apps: string[];
  services: ServiceRef[];
  warnings: RunResult['warnings'];
  hosts: Record<string, string>;
  facts: Record<string, string>;
  failure?: StepFailure & { resume: string };
  journal?: string;
  /** Undos run after the failure, and the step a resumed run starts again at. */
  undone?: RunResult['undone'];
  undoneFrom?: string;
  /** Measured numbers (milliseconds, bytes): `downtimeMs`, … */
  metrics?: Record<string, number>;
}

/** Builds the machine-readable report (redacted). */
export function toJsonReport(input: ReportInput): JsonReport {
  const r = input.result;
  const m = moved(r);
  const report: JsonReport = {
    version: REPORT_VERSION,
    command: input.command,
    runId: r.runId,
    status: r.status,
    startedAt: r.startedAt,
    finishedAt: new Date(Date.parse(r.startedAt) + r.durationMs).toISOString(),
    durationMs: r.durationMs,
    bytes: m.bytes,
    bytesPerSecond: Math.round(rate(m.bytes, m.ms)),
    bindings: { ...(input.bindings ?? {}) },
    dokkuVersions: { ...(input.dokkuVersions ?? {}) },
    steps: r.steps,
    apps: input.apps ?? [],
    services: input.services ?? [],
    warnings: r.warnings,
    hosts: r.hostStates,
    facts: input.facts ?? {},
  };
  if (input.ferryVersion) report.ferryVersion = input.ferryVersion;
  if (r.resumed) report.resumed = r.resumed;
  if (r.failure) report.failure = { ...r.failure, resume: resumeCommand(input.argv) };
  if (input.journalFile) report.journal = input.journalFile;
  if (r.undone) report.undone = r.undone;
  if (r.undoneFrom) report.undoneFrom = r.undoneFrom;
  if (input.metrics && Object.keys(input.metrics).length > 0) report.metrics = { ...input.metrics };
  return JSON.parse(redact(JSON.stringify(report))) as JsonReport;
}

// XML 1.0 forbids most control characters even when escaped.
const XML_INVALID = new RegExp(
  `[${String.fromCharCode(0)}-${String.fromCharCode(8)}${String.fromCharCode(11)}${String.fromCharCode(12)}${String.fromCharCode(14)}-${String.fromCharCode(31)}]`,
  'g',
);

/** Escapes text for XML attributes and content. */
export function xmlEscape(text: string): string {
  return text
    .replace(XML_INVALID, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Milliseconds as JUnit's seconds. */
export function seconds(ms: number | undefined): string {
  return ((ms ?? 0) / 1000).toFixed(3);
}

/** One run as a JUnit `<testsuite>` (one testcase per step), with its counts. */
export function junitSuite(input: ReportInput): {
  xml: string;
  tests: number;
  failures: number;
  skipped: number;
  ms: number;
} {
  const r = input.result;
  const name = `ferry ${input.command}`;
  const failures = r.steps.filter((s) => s.status === 'failed').length;
  const skipped = r.steps.filter((s) => s.status !== 'ok' && s.status !== 'failed').length;
  const cases = r.steps.map((s) => {
    const head = `    <testcase classname="${xmlEscape(`${input.command}.${s.host}`)}" name="${xmlEscape(`${s.id}: ${s.title}`)}" time="${seconds(s.durationMs)}"`;
    if (s.status === 'ok') return `${head}/>`;
    if (s.status === 'failed') {
      const e = s.error;
      const body = [
        e?.command ? `command: ${e.command}` : '',
        e?.code !== undefined && e.code !== null ? `exit code: ${e.code}` : '',
        e?.outputTail ?? '',
        e?.hint ? `hint: ${e.hint}` : '',
      ]
        .filter(Boolean)
        .join('\n');
      return `${head}>\n      <failure message="${xmlEscape(`on ${e?.host ?? s.host}: ${e?.message ?? 'failed'}`)}" type="StepFailed">${xmlEscape(redact(body))}</failure>\n    </testcase>`;
    }
    const reason =
      s.status === 'not-run' ? 'not run: an earlier step failed' : (s.reason ?? s.status);
    return `${head}>\n      <skipped message="${xmlEscape(reason)}"/>\n    </testcase>`;
  });
  const metrics = Object.fromEntries(
    Object.entries(input.metrics ?? {}).map(([k, v]) => [k, String(v)]),
  );
  const props = Object.entries({
    runId: r.runId,
    status: r.status,
    ...(input.bindings ?? {}),
    ...metrics,
  })
    .map(([k, v]) => `      <property name="${xmlEscape(k)}" value="${xmlEscape(v)}"/>`)
    .join('\n');
  const suiteName = input.suiteName ?? name;
  const xml =
    redact(`  <testsuite name="${xmlEscape(suiteName)}" tests="${r.steps.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds(r.durationMs)}" timestamp="${xmlEscape(r.startedAt)}">
    <properties>
${props}
    </properties>
${cases.join('\n')}
  </testsuite>`);
  return { xml, tests: r.steps.length, failures, skipped, ms: r.durationMs };
}

/** JUnit XML for CI: one testsuite per run, one testcase per step. */
export function toJunitXml(input: ReportInput): string {
  const suite = junitSuite(input);
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${xmlEscape(`ferry ${input.command}`)}" tests="${suite.tests}" failures="${suite.failures}" skipped="${suite.skipped}" time="${seconds(suite.ms)}">
${suite.xml}
</testsuites>\n`;
}

/**
 * The message after a failed run: which step failed on which host, what ran,
 * what it printed, where each host is left, and the exact resume command.
 */
export function formatFailure(input: ReportInput): string {
  const r = input.result;
  const f = r.failure ?? r.steps.find((s) => s.status === 'failed')?.error;
  const out: string[] = [];
  if (f) {
    out.push(`✖ Step "${f.stepId}" (${f.title}) failed on ${f.host}: ${f.message}`);
    if (f.command) out.push(`  ran:  ${f.command}`);
    if (f.code !== undefined)
      out.push(`  exit: ${f.code === null ? 'killed by a signal' : f.code}`);
    if (f.outputTail) {
      out.push('  it printed (last lines):');
      for (const l of f.outputTail.split('\n')) out.push(`    │ ${l}`);
    }
    if (f.hint) out.push(`  hint: ${f.hint}`);
  } else {
    out.push(`✖ The run ${r.status === 'interrupted' ? 'was interrupted' : 'failed'}.`);
  }
  if (r.status === 'interrupted') out.push('  (interrupted by the user)');
  const hosts = new Set<string>([
    ...Object.values(input.bindings ?? {}),
    ...Object.keys(r.hostStates),
  ]);
  if (hosts.size > 0) {
    out.push('Where things are left:');
    for (const h of hosts) {
      out.push(`  ${h}: ${r.hostStates[h] ?? 'unchanged by this run, as far as ferry knows'}`);
    }
  }
  if (r.undone && r.undone.length > 0) out.push(...undoneLines(r));
  const done = r.steps.filter((s) => s.status === 'ok' || s.status === 'resumed').length;
  const at = r.undoneFrom ?? f?.stepId ?? firstUnfinished(r);
  out.push(
    `Finished ${done} of ${r.steps.length} steps; ${at ? `resume continues at "${at}":` : 'resume with:'}`,
  );
  out.push(`  ${resumeCommand(input.argv)}`);
  if (input.journalFile) out.push(`Journal: ${input.journalFile}`);
  return redact(out.join('\n'));
}

function firstUnfinished(r: RunResult): string | undefined {
  return r.steps.find((s) => s.status === 'failed' || s.status === 'not-run')?.id;
}
