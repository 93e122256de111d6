/**
 * Secrets never reach a log, the journal or a report (DESIGN "Promises").
 * Every text the run layer writes passes through {@link redact}; every
 * structured value through {@link redactJson}.
 */
import type { Json } from '../tasks/types.js';

/** What a masked secret is replaced with. */
export const MASK = '***';

// Whole segments of an env-var-like name that mark it secret (`DB_PASSWORD`,
// `SECRET_KEY_BASE`, `GITHUB_TOKEN`), matched per `_`-separated part so `MONKEY` is not.
const SECRET_PARTS = new Set([
  'PASS',
  'PASSWD',
  'PASSWORD',
  'PASSPHRASE',
  'PWD',
  'SECRET',
  'SECRETS',
  'TOKEN',
  'TOKENS',
  'KEY',
  'KEYS',
  'APIKEY',
  'PRIVATE',
  'CREDENTIAL',
  'CREDENTIALS',
  'AUTH',
  'SALT',
  'COOKIE',
  'SESSION',
  'SIGNATURE',
  'DSN',
]);
// Names that hold a URL with credentials more often than not.
const SECRET_NAMES = /^(?:DATABASE_URL|DOKKU_[A-Z]+_[A-Z]+_URL|[A-Z0-9_]*_DSN)$/;

/** True for keys whose values are treated as secrets. */
export function isSecretKey(key: string): boolean {
  const upper = key.toUpperCase();
  if (SECRET_NAMES.test(upper)) return true;
  const parts = upper.split(/[_.-]+/);
  // `KEY` marks a secret at the end (API_KEY, RAILS_MASTER_KEY), not inside (SSH_KEY_PATH).
  const last = parts.length - 1;
  if (parts.some((p, i) => SECRET_PARTS.has(p) && (i === last || !/^KEYS?$/.test(p)))) return true;
  // camelCase and run-together names: apiKey, secretKeyBase, dbPassword.
  return /PASSWORD|PASSWD|SECRET|TOKEN|APIKEY|PRIVATEKEY|CREDENTIAL/.test(upper);
}

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@'"`]*):([^\s@/'"`]+)@/gi;
const PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;
const ASSIGN =
  /(?<![A-Za-z0-9_-])([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'\\'')*'|[^\s'"]*)/g;
// `config:set` carries app env values: every value on such a line is masked, not just secret-looking ones.
const CONFIG_SET = /\bconfig:set\b[^\n]*/g;
const PASSWORD_FLAG = /(--(?:root-)?password|--passphrase)(=|\s+)(?:'[^'\n]*'|"[^"\n]*"|\S+)/g;
const JSON_PAIR = /"([A-Za-z_][A-Za-z0-9_.-]*)"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;
const COLON_PAIR = /^(\s*)([A-Za-z_][A-Za-z0-9_]*):([ \t]+)(\S.*)$/gm;

/**
 * Masks secrets in free text: passwords in URLs (`postgres://u:PASSWORD@h`),
 * every value on a `config:set` line, `--password X`,
 * `KEY=value` / `export KEY='value'` / `--env=KEY=value` for secret-looking keys,
 * `"key": "value"` JSON pairs, `KEY:  value` lines (config:show, config:set
 * output) and PEM private-key blocks.
 */
export function redact(text: string): string {
  return text
    .replace(CONFIG_SET, (line) =>
      line.replace(ASSIGN, (m, key: string, value: string) => {
        if (value === '') return m;
        const q = value[0] === '"' || value[0] === "'" ? value[0] : '';
        return `${key}=${q}${MASK}${q}`;
      }),
    )
    .replace(PASSWORD_FLAG, (_m, flag: string, sep: string) => `${flag}${sep}${MASK}`)
    .replace(PRIVATE_KEY, (_m, kind: string) => `-----BEGIN ${kind}PRIVATE KEY----- ${MASK}`)
    .replace(URL_USERINFO, (_m, head: string) => `${head}:${MASK}@`)
    .replace(ASSIGN, (m, key: string, value: string) => {
      if (!isSecretKey(key) || value === '') return m;
      const q = value[0] === '"' || value[0] === "'" ? value[0] : '';
      return `${key}=${q}${MASK}${q}`;
    })
    .replace(JSON_PAIR, (m, key: string, sep: string, value: string) =>
      isSecretKey(key) && value !== '' ? `"${key}"${sep}"${MASK}"` : m,
    )
    .replace(COLON_PAIR, (m, lead: string, key: string, gap: string) =>
      isSecretKey(key) ? `${lead}${key}:${gap}${MASK}` : m,
    );
}

/** A JSON-compatible value. */
export type { Json };

/**
 * Redacts a JSON value: values under secret-looking keys are masked, every value
 * of an object held under a key named `env` (any case) is masked, strings are
 * passed through {@link redact}.
 */
export function redactJson(value: Json, underEnv = false): Json {
  if (typeof value === 'string') return underEnv && value !== '' ? MASK : redact(value);
  if (value === null || typeof value !== 'object') return underEnv ? MASK : value;
  if (Array.isArray(value)) return value.map((v) => redactJson(v, underEnv));
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== null && typeof v === 'object') {
      out[k] = redactJson(v, underEnv || k.toLowerCase() === 'env');
    } else if (underEnv || isSecretKey(k)) {
      out[k] = v === '' || v === null ? v : MASK;
    } else {
      out[k] = redactJson(v, k.toLowerCase() === 'env');
    }
  }
  return out;
}
