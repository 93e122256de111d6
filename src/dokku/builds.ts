/**
 * `builds:list [<app>] [--format json]` (reference §10, new in 0.38.0). The text
 * form is columnize output with a header row and no `=====>` line; columns are
 * split on runs of 2+ spaces, and located by the header so the app and no-app
 * forms share one parser.
 */
import {
  type CommandOutput,
  DokkuOutputError,
  expectSuccess,
  isHeader,
  isWarning,
  jsonObjects,
  lines,
  str,
} from './output.js';

/** Build states Dokku records. */
export type BuildStatus = 'running' | 'succeeded' | 'failed' | 'canceled' | 'abandoned';

/** One build record. */
export interface BuildInfo {
  id: string;
  /** Present in the no-app form and in JSON. */
  app?: string;
  kind: string;
  /** The record's status: `running` in the no-app form, which lists running records only. */
  status: BuildStatus | string;
  /**
   * What Dokku shows the operator (JSON `display_status`, 0.38): `abandoned` for a
   * record left `running` by a deploy whose process is gone (a crash).
   */
  displayStatus?: string;
  pid: number | undefined;
  source: string;
  startedAt: string;
  /** `1m14s` as printed; absent in the no-app form. */
  duration?: string;
}

const EMPTY = [/^No builds currently running$/, /^No builds recorded for this app$/];

/** Parses `builds:list` text output (with or without an app). */
export function parseBuildsList(out: CommandOutput): BuildInfo[] {
  expectSuccess('builds:list', out);
  const rows = lines(out.stdout)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !isHeader(l) && !isWarning(l));
  if (rows.length === 0 || (rows.length === 1 && EMPTY.some((re) => re.test(rows[0]!.trim())))) {
    return [];
  }
  const header = rows[0]!;
  const head = header.trim().split(/ {2,}/);
  if (!head.includes('Build ID')) {
    throw new DokkuOutputError('builds:list', `no header row: ${JSON.stringify(header)}`, 0);
  }
  // columnize pads every column to its widest cell, header included, so the header's
  // column starts cut every row, even one with an empty cell.
  const starts: number[] = [];
  let from = 0;
  for (const name of head) {
    const at = header.indexOf(name, from);
    starts.push(at);
    from = at + name.length;
  }
  const col = (cells: string[], name: string): string | undefined => {
    const i = head.indexOf(name);
    return i === -1 ? undefined : cells[i];
  };
  return rows.slice(1).map((row) => {
    const cells = starts.map((at, i) => row.slice(at, starts[i + 1] ?? row.length).trim());
    const joined = row.trim().split(/ {2,}/);
    if (cells.some((c) => / {2,}/.test(c)) || joined.length > head.length) {
      throw new DokkuOutputError('builds:list', `unexpected row ${JSON.stringify(row)}`, 0);
    }
    const pid = col(cells, 'PID');
    const info: BuildInfo = {
      id: col(cells, 'Build ID') ?? '',
      kind: col(cells, 'Kind') ?? '',
      status: col(cells, 'Status') ?? 'running',
      pid: pid && /^\d+$/.test(pid) ? Number(pid) : undefined,
      source: col(cells, 'Source') ?? '',
      startedAt: col(cells, 'Started') ?? '',
    };
    const app = col(cells, 'App');
    if (app !== undefined) info.app = app;
    const duration = col(cells, 'Duration');
    if (duration !== undefined) info.duration = duration;
    return info;
  });
}

/** Parses `builds:list --format json`: `[]` when none. */
export function parseBuildsListJson(out: CommandOutput): BuildInfo[] {
  return jsonObjects('builds:list', out).map((o) => {
    const info: BuildInfo = {
      id: str(o, 'id'),
      kind: str(o, 'kind'),
      status: str(o, 'status'),
      pid: typeof o.pid === 'number' ? o.pid : undefined,
      source: str(o, 'source'),
      startedAt: str(o, 'started_at'),
    };
    if (str(o, 'app')) info.app = str(o, 'app');
    if (str(o, 'duration')) info.duration = str(o, 'duration');
    if (str(o, 'display_status')) info.displayStatus = str(o, 'display_status');
    return info;
  });
}
