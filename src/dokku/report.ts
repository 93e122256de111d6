/**
 * The `:report` convention shared by Dokku's plugins (reference §0.6): a quiet-able
 * `=====> <app> <plugin> information` header, then 7-space lines of a padded
 * `Label:` and a value (empty values leave trailing spaces); `--format json` prints
 * one object; a single `--flag` prints the value alone.
 */
import {
  type CommandOutput,
  DokkuOutputError,
  expectObject,
  expectSuccess,
  headerText,
  isWarning,
  lines,
  parseJson,
} from './output.js';

/** One app's (or `--global`'s) block of a `:report`. */
export interface ReportSection {
  /** The app, `--global` (Go) or `global` (old bash); undefined under `--quiet`. */
  name?: string;
  /** The plugin named in the header (`ps`, `git`). */
  plugin?: string;
  /**
   * Values by key: the label lower-cased, spaces as `-` (`Ps computed restart policy`
   * → `ps-computed-restart-policy`). The label lost the flag's `.` and `-`, so
   * `status-web.1` is read as `status-web-1`.
   */
  entries: Record<string, string>;
}

/** `Ps can scale` → `ps-can-scale`. */
export function reportLabelToKey(label: string): string {
  return label.trim().toLowerCase().replace(/\s+/g, '-');
}

/** Parses a `:report` in stdout form: one section per header (one unnamed section under `--quiet`). */
export function parseReport(command: string, out: CommandOutput): ReportSection[] {
  expectSuccess(command, out);
  const sections: ReportSection[] = [];
  let current: ReportSection | undefined;
  for (const line of lines(out.stdout)) {
    if (line.trim() === '' || isWarning(line)) continue;
    const head = headerText(line);
    if (head !== undefined) {
      const m = /^(\S+) (\S+) information$/.exec(head);
      current = { entries: {} };
      if (m) {
        current.name = m[1]!;
        current.plugin = m[2]!;
      }
      sections.push(current);
      continue;
    }
    const m = /^\s*([A-Za-z0-9][A-Za-z0-9 ]*?):(?: +(.*))?$/.exec(line);
    if (!m) throw new DokkuOutputError(command, `unexpected line ${JSON.stringify(line)}`, 0);
    if (!current) {
      current = { entries: {} };
      sections.push(current);
    }
    current.entries[reportLabelToKey(m[1]!)] = (m[2] ?? '').trimEnd();
  }
  return sections;
}

/** Parses a `:report --format json` object (values are strings: Go `map[string]string`). */
export function parseReportJson(command: string, out: CommandOutput): Record<string, string> {
  expectSuccess(command, out);
  const o = expectObject(command, parseJson(command, out.stdout));
  const result: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    result[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return result;
}

/**
 * Parses `<plugin>:report <app> --flag`: the value plus `\n`, or just `\n` when
 * empty. Only the final newline is removed: the value is otherwise as stored.
 */
export function parseReportValue(command: string, out: CommandOutput): string {
  expectSuccess(command, out);
  return out.stdout.replace(/\r?\n$/, '');
}
