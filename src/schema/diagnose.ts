/**
 * ajv's errors in words a user understands, each placed at the file, line
 * and column of the value it is about.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import {
  APP_NAME,
  APP_NAME_RULE,
  EXISTING_APP_NAME,
  SERVICE_NAME,
  SERVICE_NAME_RULE,
} from '../dokku/names.js';
import type { Diagnostic } from '../errors.js';
import {
  ADDRESS_PATTERN,
  addressProblem,
  CONTROL_CHAR,
  describeChar,
  PATH_PATTERN,
  REMOTE_PATTERN,
  USER_PATTERN,
  userProblem,
} from './host-fields.js';
import {
  describePath,
  describeValue,
  type Path,
  pointerToPath,
  positionAt,
  type SourceFile,
} from './source.js';
import { closest, listWords } from './suggest.js';

/** One ajv instance for every schema: all errors at once, defaults filled in. */
export const ajv = new Ajv({
  allErrors: true,
  verbose: true,
  strict: true,
  useDefaults: true,
  allowUnionTypes: true,
});

/** Compiles a schema once and keeps it. */
export function compile(schema: object): ValidateFunction {
  return ajv.compile(schema);
}

/** Extra words for the patterns the schemas share. */
const PATTERN_RULES: Record<string, string> = {
  [APP_NAME.source]: `is not a name Dokku accepts for an app: ${APP_NAME_RULE}`,
  [EXISTING_APP_NAME.source]: `is not a name Dokku accepts for an app: ${APP_NAME_RULE} (an app made before Dokku 0.38.2 may also have underscores)`,
  [SERVICE_NAME.source]: `is not a name Dokku accepts for a service: ${SERVICE_NAME_RULE}`,
};

/**
 * Patterns whose failures are explained value by value: what the value is
 * not, why (from the value itself), and what would do.
 */
const PATTERN_EXPLAINED: Record<
  string,
  { what: string; why: (v: string) => string | undefined; hint: string }
> = {
  [ADDRESS_PATTERN]: {
    what: 'is not a host name or IP address',
    why: addressProblem,
    hint: 'An address is a DNS name (letters, digits, "-" and "."), an IPv4 address or an IPv6 address (brackets optional). It reaches ssh as an argument, so nothing else is allowed.',
  },
  [USER_PATTERN]: {
    what: 'is not a user name ferry accepts',
    why: userProblem,
    hint: 'A user name has letters, digits, ".", "_" and "-", starts with a letter or "_", and has at most 32 characters.',
  },
  [PATH_PATTERN]: {
    what: 'is not a usable path',
    why: (v) => {
      const c = CONTROL_CHAR.exec(v)?.[0];
      return v === '' ? 'it is empty' : c ? `it holds ${describeChar(c)}` : undefined;
    },
    hint: 'Write the path on one line, without control characters.',
  },
  [REMOTE_PATTERN]: {
    what: 'is not a git remote name ferry accepts',
    why: (v) =>
      v === ''
        ? 'it is empty'
        : /^[-.]/.test(v)
          ? `it starts with "${v[0]}"${v[0] === '-' ? ', so git would read it as an option' : ''}`
          : v.length > 100
            ? 'it is longer than 100 characters'
            : 'it holds characters other than letters, digits, ".", "_" and "-"',
    hint: 'For example dokku, or production.',
  },
};

interface SchemaLike {
  type?: string | string[];
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  const?: unknown;
  description?: string;
  properties?: Record<string, SchemaLike>;
  pattern?: string;
}

function typeWords(s: SchemaLike): string {
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  const range =
    s.minimum !== undefined && s.maximum !== undefined
      ? ` between ${s.minimum} and ${s.maximum}`
      : s.minimum !== undefined
        ? ` of at least ${s.minimum}`
        : '';
  switch (t) {
    case 'integer':
      return range ? `a number${range}` : 'a whole number';
    case 'number':
      return `a number${range}`;
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
      return 'a mapping (key: value lines)';
    default:
      return String(t);
  }
}

/**
 * Turns ajv errors into diagnostics. `base` is where the validated value sits
 * in the file (for a step's params, validated on their own).
 */
export function diagnose(source: SourceFile, errors: ErrorObject[], base: Path = []): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  const hinted = new Set<string>();
  const typed = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  for (const e of errors) {
    if (e.keyword === 'if' || e.keyword === 'anyOf' || e.keyword === 'propertyNames') continue;
    // Bad property names get their own, clearer message from the caller's rules.
    if ((e as { propertyName?: string }).propertyName !== undefined) continue;
    if (typed.has(e.instancePath) && e.keyword !== 'type') continue;
    const key = `${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const d = describe(source, e, base);
    if (!d) continue;
    // The same rule's hint once per file is enough.
    if (d.hint && e.keyword === 'pattern') {
      if (hinted.has(d.hint)) delete d.hint;
      else hinted.add(d.hint);
    }
    out.push(d);
  }
  return out;
}

function describe(source: SourceFile, e: ErrorObject, base: Path): Diagnostic | undefined {
  const path = [...base, ...pointerToPath(e.instancePath)];
  const where = describePath([...(source.label ?? []), ...path], source.subject);
  const parent = (e.parentSchema ?? {}) as SchemaLike;
  const at = (p: Path, which: 'key' | 'value' = 'value') => ({
    file: source.file,
    ...positionAt(source, p, which),
  });
  const got = describeValue(e.data);
  switch (e.keyword) {
    case 'type':
    case 'minimum':
    case 'maximum':
      return { ...at(path), message: `${where} must be ${typeWords(parent)}, got ${got}` };
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      const what = parent.properties?.[missing]?.description;
      return {
        ...at(path, 'key'),
        message: `${where} is missing "${missing}"`,
        ...(what ? { hint: `${missing}: ${what}` } : {}),
      };
    }
    case 'additionalProperties': {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys(parent.properties ?? {});
      const near = closest(extra, known);
      return {
        ...at([...path, extra], 'key'),
        message: `unknown key "${extra}" in ${where}`,
        hint: near ? `did you mean "${near}"?` : `known keys: ${listWords(known)}`,
      };
    }
    case 'enum': {
      const allowed = (parent.enum ?? []).map(String);
      const near = typeof e.data === 'string' ? closest(e.data, allowed) : undefined;
      return {
        ...at(path),
        message: `${where} must be one of ${listWords(allowed)}, got ${got}`,
        ...(near ? { hint: `did you mean "${near}"?` } : {}),
      };
    }
    case 'const':
      return {
        ...at(path),
        message: `${where} must be ${JSON.stringify(parent.const)}, got ${got}`,
      };
    case 'pattern': {
      const explained = PATTERN_EXPLAINED[parent.pattern ?? ''];
      if (explained && typeof e.data === 'string') {
        const why = explained.why(e.data);
        return {
          ...at(path),
          message: `${where}: ${got} ${explained.what}${why ? `: ${why}` : ''}`,
          hint: explained.hint,
        };
      }
      const rule = PATTERN_RULES[parent.pattern ?? ''];
      return {
        ...at(path),
        message: rule
          ? `${where}: ${got} ${rule}`
          : `${where} must be ${parent.description ?? `text matching ${parent.pattern}`}, got ${got}`,
      };
    }
    case 'minItems':
    case 'minProperties':
    case 'minLength':
      return { ...at(path), message: `${where} must not be empty` };
    case 'uniqueItems': {
      const { i, j } = e.params as { i: number; j: number };
      const items = Array.isArray(e.data) ? e.data : [];
      return {
        ...at([...path, Math.max(i, j)]),
        message: `${where} lists ${describeValue(items[i])} twice (items ${Math.min(i, j) + 1} and ${Math.max(i, j) + 1})`,
        hint: 'Remove one of them.',
      };
    }
    default:
      return { ...at(path), message: `${where} ${e.message ?? 'is not valid'}` };
  }
}
