/**
 * `ps:report <app>` (reference §6): pad width 34 in 0.38.9+, other key names in
 * 0.38.0–0.38.6; only keys present in every 0.38 release are typed here.
 * `Status <proc> <n>:` lines come from the docker-local scheduler.
 */
import { type CommandOutput, DokkuOutputError } from './output.js';
import { parseReport, parseReportJson } from './report.js';

/** One container's state from a `Status web 1:` line. */
export interface ProcessStatus {
  process: string;
  index: number;
  /** `running`, `exited`, … or `missing` when the container is gone. */
  state: string;
  /** Short container id when printed. */
  cid?: string;
}

/** What a migration needs from `ps:report`. */
export interface PsReport {
  app?: string;
  deployed: boolean;
  processes: number;
  running: 'true' | 'false' | 'mixed';
  /** The `restore` property (default true). */
  restore: boolean;
  statuses: ProcessStatus[];
  /** Every key, as read (stdout keys or JSON keys). */
  entries: Record<string, string>;
}

/** Parses `running (CID: 0123456789a)` / `missing`. */
export function parseProcessStatus(process: string, index: number, value: string): ProcessStatus {
  const m = /^(\S+)(?:\s+\(CID:\s*([0-9a-f]+)\))?\s*$/.exec(value.trim());
  const status: ProcessStatus = { process, index, state: m ? m[1]! : value.trim() };
  if (m?.[2]) status.cid = m[2];
  return status;
}

function toRunning(command: string, v: string | undefined): PsReport['running'] {
  if (v === 'true' || v === 'false' || v === 'mixed') return v;
  throw new DokkuOutputError(command, `unexpected Running value ${JSON.stringify(v)}`, 0);
}

function build(
  entries: Record<string, string>,
  get: (k: string) => string | undefined,
  statuses: ProcessStatus[],
  app?: string,
): PsReport {
  const deployed = get('deployed');
  if (deployed === undefined) {
    throw new DokkuOutputError('ps:report', 'no Deployed line (is this a ps:report?)', 0);
  }
  const report: PsReport = {
    deployed: deployed === 'true',
    processes: Number(get('processes') ?? '0') || 0,
    running: toRunning('ps:report', get('running') ?? 'false'),
    restore: (get('restore') ?? 'true') !== 'false',
    statuses,
    entries,
  };
  if (app !== undefined) report.app = app;
  return report;
}

/** Parses `ps:report <app>` stdout (one app; with or without the header). */
export function parsePsReport(out: CommandOutput): PsReport {
  return parsePsReports(out)[0] ?? missing();
}

/** Parses `ps:report` stdout for all apps (one section per app). */
export function parsePsReports(out: CommandOutput): PsReport[] {
  return parseReport('ps:report', out).map((s) => {
    const statuses: ProcessStatus[] = [];
    for (const [k, v] of Object.entries(s.entries)) {
      const m = /^status-(.+)-(\d+)$/.exec(k);
      if (m) statuses.push(parseProcessStatus(m[1]!, Number(m[2]), v));
    }
    return build(s.entries, (k) => s.entries[k], sortStatuses(statuses), s.name);
  });
}

/** Parses `ps:report <app> --format json` (trimmed keys, with or without legacy `ps-*` duplicates). */
export function parsePsReportJson(out: CommandOutput): PsReport {
  const entries = parseReportJson('ps:report', out);
  const get = (k: string): string | undefined => entries[k] ?? entries[`ps-${k}`];
  const statuses: ProcessStatus[] = [];
  for (const [k, v] of Object.entries(entries)) {
    const m = /^status-(.+)\.(\d+)$/.exec(k);
    if (m) statuses.push(parseProcessStatus(m[1]!, Number(m[2]), v));
  }
  return build(entries, get, sortStatuses(statuses));
}

function sortStatuses(list: ProcessStatus[]): ProcessStatus[] {
  return list.sort((a, b) =>
    a.process === b.process ? a.index - b.index : a.process < b.process ? -1 : 1,
  );
}

function missing(): never {
  throw new DokkuOutputError('ps:report', 'empty report', 0);
}
