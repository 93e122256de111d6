/** `apps:list [--format json]` (reference §3.2). */
import {
  bodyLines,
  type CommandOutput,
  DokkuOutputError,
  EXIT_APP_MISSING,
  expectArray,
  expectSuccess,
  parseJson,
  warnings,
} from './output.js';

/**
 * Parses `apps:list` in stdout form: with or without the `=====> My Apps` header
 * (`dokku --quiet`), and the no-apps case (header, warning on stderr, exit 0).
 */
export function parseAppsList(out: CommandOutput): string[] {
  expectSuccess('apps:list', out);
  return bodyLines(out.stdout).map((l) => l.trim());
}

/** Parses `apps:list --format json` (0.38.21+): `["a","b"]`, `[]` when none. */
export function parseAppsListJson(out: CommandOutput): string[] {
  expectSuccess('apps:list --format json', out);
  const list = expectArray('apps:list', parseJson('apps:list', out.stdout));
  return list.map((v) => {
    if (typeof v !== 'string') throw new DokkuOutputError('apps:list', 'expected app names', 0);
    return v;
  });
}

/**
 * Reads `apps:exists <app>`: exit 0 (no output) → true; exit 20 → false.
 * Anything else (exit 1 for a missing or invalid name) is an error.
 */
export function parseAppExists(out: CommandOutput): boolean {
  if (out.code === EXIT_APP_MISSING) return false;
  expectSuccess('apps:exists', out);
  return true;
}

/**
 * Reads `apps:locked <app>`: exit 0 (`Deploy lock exists`) → true; exit 1 with
 * ` !     Deploy lock does not exist` → false.
 */
export function parseAppLocked(out: CommandOutput): boolean {
  if (out.code === 1 && warnings(out.stderr).includes('Deploy lock does not exist')) return false;
  expectSuccess('apps:locked', out);
  return true;
}
