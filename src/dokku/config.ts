/**
 * `config:export --format json|json-list` (reference §4.4). The values are
 * secrets: callers must not log them (see `src/run/redact.ts`).
 */
import {
  type CommandOutput,
  DokkuOutputError,
  expectObject,
  expectSuccess,
  parseJson,
} from './output.js';

/** Parses `config:export --format json`: `{"A":"1"}`, `{}` when empty. */
export function parseConfigExportJson(out: CommandOutput): Record<string, string> {
  expectSuccess('config:export --format json', out);
  const o = expectObject('config:export', parseJson('config:export', out.stdout));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'string') {
      throw new DokkuOutputError('config:export', `value of ${k} is not a string`, 0);
    }
    env[k] = v;
  }
  return env;
}

/** Parses `config:export --format json-list`: `[{"name","value"}]`, and `null` when empty (Go nil slice). */
export function parseConfigExportJsonList(out: CommandOutput): Record<string, string> {
  expectSuccess('config:export --format json-list', out);
  const v = parseJson('config:export', out.stdout);
  if (v === null) return {};
  if (!Array.isArray(v)) throw new DokkuOutputError('config:export', 'expected a JSON list', 0);
  const env: Record<string, string> = {};
  for (const item of v) {
    const o = expectObject('config:export', item);
    if (typeof o.name !== 'string' || typeof o.value !== 'string') {
      throw new DokkuOutputError('config:export', 'expected {name, value} pairs', 0);
    }
    env[o.name] = o.value;
  }
  return env;
}

/** Parses `config:get <app> KEY`: the raw value, or undefined when unset (no output, exit 1). */
export function parseConfigGet(out: CommandOutput): string | undefined {
  if (out.code === 1 && out.stdout === '' && out.stderr.trim() === '') return undefined;
  expectSuccess('config:get', out);
  return out.stdout.replace(/\n$/, '');
}
