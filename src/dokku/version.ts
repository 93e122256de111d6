/**
 * `dokku version` (reference §2) and comparisons between Dokku versions.
 * The value is STABLE_VERSION (`0.38.27`) or, failing that, VERSION from
 * `git describe` (`v0.38.27`, possibly `v0.38.27-33-g33896f5d7e`).
 */
import { type CommandOutput, DokkuOutputError, expectSuccess, lines } from './output.js';

/** A parsed Dokku version. `pre` holds anything after the patch number (`-33-g33896f5`). */
export interface DokkuVersion {
  major: number;
  minor: number;
  patch: number;
  pre: string;
  /** As printed, without the `dokku version ` head. */
  raw: string;
}

const VERSION = /^v?(\d+)\.(\d+)(?:\.(\d+))?([-+~][0-9A-Za-z.+~-]*)?$/;

/** Parses `0.38.27`, `v0.38.27`, `0.38`, `v0.38.27-33-gabc`. Undefined when it is not a version. */
export function parseVersionString(text: string): DokkuVersion | undefined {
  const raw = text.trim();
  const m = VERSION.exec(raw);
  if (!m) return undefined;
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: m[3] === undefined ? 0 : Number(m[3]),
    pre: m[4] ?? '',
    raw,
  };
}

/** Parses the output of `dokku version` (or `-v`/`--version`). */
export function parseDokkuVersion(out: CommandOutput): DokkuVersion {
  expectSuccess('version', out);
  for (const line of lines(out.stdout)) {
    const m = /^dokku version (\S+)\s*$/.exec(line.trim());
    if (!m) continue;
    const v = parseVersionString(m[1]!);
    if (v) return v;
  }
  throw new DokkuOutputError(
    'version',
    `no version in ${JSON.stringify(out.stdout.trim().slice(0, 80))}`,
    out.code,
  );
}

/**
 * Orders two versions: negative if a < b, 0 if equal, positive if a > b. Strings are
 * parsed first. A git-describe suffix (`-33-gabc`, commits after the tag) sorts after
 * the tag itself; other suffixes compare as text.
 */
export function compareDokkuVersions(a: DokkuVersion | string, b: DokkuVersion | string): number {
  const x = toVersion(a);
  const y = toVersion(b);
  return x.major - y.major || x.minor - y.minor || x.patch - y.patch || comparePre(x.pre, y.pre);
}

function comparePre(a: string, b: string): number {
  if (a === b) return 0;
  const describe = /^-(\d+)-g[0-9a-f]+/;
  const da = describe.exec(a);
  const db = describe.exec(b);
  if (a === '') return db ? -1 : 1;
  if (b === '') return da ? 1 : -1;
  if (da && db) return Number(da[1]) - Number(db[1]);
  return a < b ? -1 : 1;
}

/** True when `v` is `min` or newer. */
export function atLeast(v: DokkuVersion | string, min: DokkuVersion | string): boolean {
  return compareDokkuVersions(v, min) >= 0;
}

function toVersion(v: DokkuVersion | string): DokkuVersion {
  if (typeof v !== 'string') return v;
  const parsed = parseVersionString(v);
  if (!parsed) throw new DokkuOutputError('version', `not a version: ${JSON.stringify(v)}`);
  return parsed;
}

/** `0.38.27` (no `v`, no suffix): the form used in messages and reports. */
export function formatVersion(v: DokkuVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}
