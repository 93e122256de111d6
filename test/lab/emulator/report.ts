/**
 * Pure formatting shared by the emulated commands: Go `ReportSingleApp`
 * (reference §0.6), columnize, Go durations, build ids.
 */
import { randomBytes } from 'node:crypto';

/** `--git-computed-deploy-branch` → `Git computed deploy branch:` */
export function reportLabel(flag: string): string {
  const s = flag.replace(/^--/, '').replace(/[-.]/g, ' ');
  return `${s.charAt(0).toUpperCase()}${s.slice(1)}:`;
}

/** Byte-order comparison, as Go's sort.Strings. */
export function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The key lines of a report (no header): 7 spaces, padded label, value. */
export function reportLines(info: Record<string, string>): string[] {
  const flags = Object.keys(info).sort(byteCompare);
  const width = Math.max(31, ...flags.map((f) => f.length));
  return flags.map((f) => `       ${reportLabel(f).padEnd(width)}${info[f] ?? ''}`);
}

/** Parsed arguments of a `<plugin>:report` command. */
export interface ReportArgs {
  app: string;
  flags: string[];
  format: string;
  global: boolean;
}

/** Go `ParseReportArgs`: [app] [--flag…] [--format F] [--global]. */
export function parseReportArgs(args: string[]): ReportArgs {
  const r: ReportArgs = { app: '', flags: [], format: 'stdout', global: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format') {
      r.format = args[++i] ?? '';
    } else if (a.startsWith('--format=')) {
      r.format = a.slice('--format='.length);
    } else if (a === '--global') {
      r.global = true;
    } else if (a.startsWith('--')) {
      r.flags.push(a);
    } else if (r.app === '') {
      r.app = a;
    }
  }
  return r;
}

/**
 * JSON object of a report. Modern (0.38.8+, common.go ReportSingleAppInput):
 * keys lose `--<plugin>-` (TrimPrefix) and, with `emitLegacyPrefix`, keep the
 * `<plugin>-` form too. Before 0.38.8 every Go report passed trimPrefix=false:
 * keys only lose `--`.
 */
export function reportJson(
  plugin: string,
  info: Record<string, string>,
  emitLegacyPrefix: boolean,
  modern = true,
): string {
  const out: Record<string, string> = {};
  for (const [flag, value] of Object.entries(info)) {
    const bare = flag.replace(/^--/, '');
    if (!modern) {
      out[bare] = value;
      continue;
    }
    const trimmed = bare.startsWith(`${plugin}-`) ? bare.slice(plugin.length + 1) : bare;
    out[trimmed] = value;
    if (emitLegacyPrefix) out[bare] = value;
  }
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(out).sort(byteCompare)) sorted[k] = out[k] ?? '';
  return JSON.stringify(sorted);
}

/** Outcome of rendering a report: text for stdout, or an error message for fail(). */
export type ReportOutcome = { ok: true; text: string } | { ok: false; error: string };

/**
 * Render one app's (or the global) report as Go `ReportSingleApp` does.
 * `header` is the `<app> <plugin> information` text, suppressed when quiet.
 * `modern` is the 0.38.8+ shape (format validated, JSON keys trimmed);
 * before, any format but json prints the text report.
 */
export function renderReport(
  plugin: string,
  subject: string,
  info: Record<string, string>,
  flags: string[],
  format: string,
  quiet: boolean,
  emitLegacyPrefix: boolean,
  modern = true,
): ReportOutcome {
  if (modern && format !== 'stdout' && format !== 'json') {
    return { ok: false, error: `Format must be "stdout" or "json": "${format}"` };
  }
  if (flags.length > 0 && format !== 'stdout') {
    return { ok: false, error: '--format flag cannot be specified when specifying an info flag' };
  }
  if (flags.length === 1) {
    const f = flags[0] ?? '';
    if (!(f in info)) {
      const valid = Object.keys(info).sort(byteCompare).join(', ');
      return { ok: false, error: `Invalid flag passed, valid flags: ${valid}` };
    }
    return { ok: true, text: `${info[f] ?? ''}\n` };
  }
  if (flags.length > 1) return { ok: true, text: '' };
  if (format === 'json')
    return { ok: true, text: `${reportJson(plugin, info, emitLegacyPrefix, modern)}\n` };
  const header = quiet ? '' : `=====> ${subject} ${plugin} information\n`;
  return { ok: true, text: `${header}${reportLines(info).join('\n')}\n` };
}

/**
 * A bash plugin's report (`cmd-<plugin>-report-single`): `printf "%-30s %-25s"`
 * of the label (with its colon) and the value, in the plugin's own order. With an
 * info flag: the value, "Invalid flag passed" for an unknown flag, and
 * "not deployed" (exit 1) for an empty value. `--format` is not a thing there:
 * it is an unknown info flag.
 */
export function renderBashReport(
  subject: string,
  plugin: string,
  flagMap: Array<[string, string]>,
  infoFlag: string,
  quiet: boolean,
): ReportOutcome {
  if (infoFlag === '') {
    const header = quiet ? '' : `=====> ${subject} ${plugin} information\n`;
    const lines = flagMap.map(([flag, value]) => {
      // `echo "${flag#--}" | cut -f1 -d' ' | tr - ' '` keeps the colon of "--x-y: value"
      const key = `${flag.replace(/^--/, '').replace(/-/g, ' ')}:`;
      const label = `${key.charAt(0).toUpperCase()}${key.slice(1)}`;
      return `       ${label.padEnd(30)} ${value.padEnd(25)}`;
    });
    return { ok: true, text: `${header}${lines.join('\n')}\n` };
  }
  const hit = flagMap.find(([flag]) => flag === infoFlag);
  if (hit === undefined) {
    const valid = flagMap.map(([flag]) => ` ${flag}`).join('');
    return { ok: false, error: `Invalid flag passed, valid flags:${valid}` };
  }
  if (hit[1] === '') return { ok: false, error: 'not deployed' };
  return { ok: true, text: `${hit[1]}\n` };
}

/** columnize.SimpleFormat: `|`-separated rows aligned with 2-space glue, last column unpadded. */
export function columnize(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      if (i < r.length - 1) widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join('  '))
    .join('\n');
}

/** Columnize `KEY:` / value pairs (config:set and config:show), keys in given order. */
export function columnizePairs(pairs: Array<[string, string]>): string[] {
  const w = Math.max(0, ...pairs.map(([k]) => k.length + 1));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w)}  ${v}`);
}

/** Go time.Duration.String() of a whole number of seconds. */
export function goDuration(seconds: number): string {
  let s = Math.max(0, Math.round(seconds));
  if (s === 0) return '0s';
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** Build id: 8 base36 chars of the ms timestamp + 6 of randomness (builds.go GenerateBuildID). */
export function generateBuildId(now = Date.now()): string {
  const ts = BigInt(now).toString(36).padStart(8, '0').slice(-8);
  const rnd = BigInt(`0x${randomBytes(6).toString('hex')}`)
    .toString(36)
    .padStart(6, '0')
    .slice(-6);
  return ts + rnd;
}

/** A UTC time as Go's JSON marshals it (RFC3339Nano: fraction without trailing zeros). */
export function goTime(d: Date): string {
  return d.toISOString().replace(/\.(\d*?)0*Z$/, (_m, f: string) => (f === '' ? 'Z' : `.${f}Z`));
}

/** RFC3339 without fractional seconds, UTC (Go's time.RFC3339 for a UTC time). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Split a command line like xargs -n 1 does (shell-ish quotes, backslashes). */
export function xargsSplit(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let have = false;
  let q: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (q !== null) {
      if (c === q) q = null;
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      q = c;
      have = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      have = true;
    } else if (/\s/.test(c)) {
      if (have) out.push(cur);
      cur = '';
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push(cur);
  return out;
}
