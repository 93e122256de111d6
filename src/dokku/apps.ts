/** `apps:list [--format json]` (reference §3.2). */
import {
  bodyLines,
  type CommandOutput,
  DokkuOutputError,
  expectArray,
  expectSuccess,
  parseJson,
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
