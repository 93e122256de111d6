/**
 * Process formations (D plugins/ps functions.go): the `scale` property list
 * (config/ps/<app>/scale, `type=count` lines) and `scale.old`; the Procfile a
 * deploy extracts to data/ps/<app>/Procfile; ps:scale's report and update.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DOKKU_LIB_ROOT, fail, propertyPath, readOr, writeFileDokku } from '../lib.js';
import { byteCompare } from '../report.js';

/** One process type and how many of it run. */
export interface Formation {
  process_type: string;
  quantity: number;
}

/** PropertyListGet: the non-empty lines of a list property. */
function listGet(app: string, key: string): string[] {
  return readOr(propertyPath('ps', app, key))
    .split('\n')
    .filter((l) => l.trim() !== '');
}

function listWrite(app: string, key: string, lines: string[]): void {
  writeFileDokku(propertyPath('ps', app, key), lines.map((l) => `${l}\n`).join(''), 0o600);
}

/** parseProcessTuples: `type=count`, trimmed, the first of a type wins; errors as Dokku words them. */
export function parseTuples(tuples: string[]): Formation[] | string {
  const out: Formation[] = [];
  const seen = new Set<string>();
  for (const t of tuples) {
    const eq = t.indexOf('=');
    if (eq < 0) return `Missing count for process type ${t}`;
    const type = t.slice(0, eq).trim();
    const count = t.slice(eq + 1).trim();
    if (!/^[+-]?[0-9]+$/.test(count)) return `Invalid count for process type ${t.slice(0, eq)}`;
    if (seen.has(type)) continue;
    seen.add(type);
    out.push({ process_type: type, quantity: Number(count) });
  }
  return out;
}

/** getFormations: scale, then scale.old entries for types not in scale, sorted by type. */
export function getFormations(app: string): Formation[] {
  const now = parseTuples(listGet(app, 'scale'));
  const old = parseTuples(listGet(app, 'scale.old'));
  if (typeof now === 'string') fail(now);
  if (typeof old === 'string') fail(old);
  const seen = new Set(now.map((f) => f.process_type));
  for (const f of old) if (!seen.has(f.process_type)) now.push(f);
  return now.sort((a, b) => byteCompare(a.process_type, b.process_type));
}

/** data/ps/<app>/Procfile: the Procfile of the last deploy. */
export function procfilePath(app: string): string {
  return join(DOKKU_LIB_ROOT, 'data', 'ps', app, 'Procfile');
}

/** procfile-util's reading: `type: command` lines, comments and blank lines skipped, CRLF accepted. */
export function parseProcfile(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (/^\s*#/.test(line)) continue;
    const mm = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line.trim());
    if (mm?.[1] !== undefined && mm[2] !== undefined) m.set(mm[1], mm[2].trim());
  }
  return m;
}

/** The process types of the extracted Procfile (none without one). */
export function procfileTypes(app: string): Set<string> {
  const p = procfilePath(app);
  return existsSync(p) ? new Set(parseProcfile(readOr(p)).keys()) : new Set();
}

/**
 * updateScale: `updates` first, then the current scale, then every Procfile
 * type not yet listed at 0; types the Procfile lacks at 0 go to scale.old.
 * Returns an error message for scaling up a type the Procfile does not have.
 */
export function updateScale(
  app: string,
  updates: Formation[],
  clearExisting = false,
): string | null {
  const current = clearExisting ? [] : parseTuples(listGet(app, 'scale'));
  if (typeof current === 'string') return current;
  const hasProcfile = existsSync(procfilePath(app));
  const valid = procfileTypes(app);
  const seen = new Set<string>();
  const merged: Formation[] = [];
  for (const f of updates) {
    if (hasProcfile && !valid.has(f.process_type) && f.quantity !== 0) {
      return `${f.process_type} is not a valid process name to scale up`;
    }
    seen.add(f.process_type);
    merged.push(f);
  }
  for (const f of current) {
    if (seen.has(f.process_type)) continue;
    seen.add(f.process_type);
    merged.push(f);
  }
  for (const t of valid) {
    if (!seen.has(t)) merged.push({ process_type: t, quantity: 0 });
  }
  const values: string[] = [];
  const old: string[] = [];
  for (const f of merged) {
    const line = `${f.process_type}=${f.quantity}`;
    if (!valid.has(f.process_type) && f.quantity === 0) old.push(line);
    else values.push(line);
  }
  listWrite(app, 'scale.old', old);
  listWrite(app, 'scale', values);
  return null;
}
