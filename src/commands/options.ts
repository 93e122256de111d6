/**
 * What each command receives: options parsed and checked by `src/cli.ts`,
 * typed per command, and the parsers that check the values of its flags
 * (cli.ts reads argv and hands them the parsed values). Commands never see
 * argv or the environment.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import type { RendererChoice } from '../run/runner.js';
import { AGE_RECIPIENT_HELP, normaliseRecipient } from '../schema/age.js';
import type { Selection } from '../tasks/manifest.js';
import {
  isEmptySelection,
  parseRenames,
  type Renames,
  selectionProblems,
} from '../tasks/selection.js';
import type { Route } from '../tasks/types.js';

/** Where a command writes. */
export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Options every command has. */
export interface CommonOptions {
  /** The inventory file (`-i`), default `inventory/hosts.yml`. */
  inventory: string;
  json: boolean;
  /**
   * The environment OpenSSH's configuration reads (SSH_AUTH_SOCK, `${VAR}`
   * in ssh_config paths), as ssh itself would see it.
   */
  sshEnv?: Readonly<Record<string, string | undefined>>;
}

/** Options of the commands that run a playbook (migrate, backup, restore, drill). */
export interface RunOptions extends CommonOptions {
  dryRun: boolean;
  resume: boolean;
  acceptNewHostKeys: boolean;
  /** `-p`: another playbook than the shipped one. */
  playbook?: string;
  /** `--junit FILE`. */
  junit?: string;
  /** The arguments after `ferry`, as given (the journal keeps them, the resume hint repeats them). */
  argv: string[];
  /** How progress shows on stderr (decided from the terminal and FERRY_RENDERER). */
  renderer: RendererChoice;
  /** Where run journals go (FERRY_STATE_DIR), when not the default. */
  stateDir?: string;
}

/** `--app`, `--exclude-app`, `--service`, `--exclude-service` (migrate, backup, restore). */
export interface SelectOptions {
  /** Absent when none of the four flags is given. */
  selection?: Selection;
}

/** `ferry migrate SOURCE TARGET`. */
export interface MigrateOptions extends RunOptions, SelectOptions {
  source: string;
  target: string;
  force: boolean;
  route?: Route;
  /** `--live`: copy while the source serves, freeze only for the last delta (migrate-live.yml). */
  live?: boolean;
  /** `--leave-source-running`: bring the source back once the target is verified. */
  leaveSourceRunning?: boolean;
  /** `--forward [--forward-ttl D]`: the source forwards web traffic to the target. */
  forward?: { ttlSeconds: number };
}

/** `ferry forward HOST --to TARGET [--ttl D]`, `ferry forward HOST --stop`. */
export interface ForwardOptions extends RunOptions {
  host: string;
  /** Where to forward (absent with `stop`). */
  target?: string;
  stop: boolean;
  ttlSeconds: number;
}

/** Hosts `ferry backup --all` runs at once unless `--parallel N` says otherwise. */
export const DEFAULT_PARALLEL = 4;

/** `ferry backup HOST|GROUP|--all [--fetch DIR] [--parallel N]`. */
export interface BackupOptions extends RunOptions, SelectOptions {
  /** An inventory host, or a group of them; absent with `all`. */
  host?: string;
  /** `--all`: every host of the inventory. */
  all: boolean;
  /** `--parallel N`: hosts backed up at once in a fleet. */
  parallel?: number;
  /** Absolute path of the folder here the archive is streamed to. */
  fetch?: string;
  /** `--encrypt R` (repeated): age recipients, normalised; only with `fetch`. Replaces backup.encrypt. */
  encrypt?: string[];
}

/** `ferry restore ARCHIVE HOST`. */
export interface RestoreOptions extends RunOptions, SelectOptions {
  /** `--rename OLD=NEW`: apps and services under new names on HOST. */
  rename?: Renames;
  /** On `host` (an inventory host) when given as HOST:PATH, else here (absolute). */
  archive: { host?: string; path: string };
  /** `--identity FILE`: the age identity (absolute) decrypting an encrypted ARCHIVE here. */
  identity?: string;
  target: string;
  force: boolean;
  route?: Route;
}

/** `ferry drill HOST --to SCRATCH`. */
export interface DrillOptions extends RunOptions {
  source: string;
  scratch: string;
  route?: Route;
  /** `--domain-suffix`: the scratch host's apps answer `<app>.<suffix>` (default: its own global VHOST). */
  domainSuffix?: string;
}

/** `ferry plan PLAYBOOK ROLE=HOST...`. */
export interface PlanCommandOptions extends CommonOptions {
  playbook: string;
  bindings: string[];
}

/** `ferry check [HOST...]`. */
export interface CheckOptions extends CommonOptions {
  hosts: string[];
  acceptNewHostKeys: boolean;
}

/** A command's flags as `parseArgs` gives them, by long name. */
export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** `--encrypt` values checked and normalised (an ssh key loses its comment); undefined when none. */
export function recipientsOf(given: FlagValues[string]): string[] | undefined {
  if (!Array.isArray(given) || given.length === 0) return undefined;
  return given.flatMap((v) => {
    const r = String(v);
    const ok = normaliseRecipient(r);
    if (ok) return [ok];
    const size = fileSize(r);
    if (size !== undefined) return recipientsFile(r, size);
    throw new UsageError(
      `--encrypt ${JSON.stringify(r.length > 80 ? `${r.slice(0, 80)}…` : r)} is not an age recipient, nor a file of them`,
      `Give ${AGE_RECIPIENT_HELP}, or a file of them one per line (a .pub file, as age -R reads).`,
    );
  });
}

/** A recipients file is small: anything larger is not one (and is not read whole). */
const RECIPIENTS_FILE_MAX = 64 * 1024;

/** The size of the regular file at `path`; undefined when there is none. */
function fileSize(path: string): number | undefined {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The recipients of a file as `age -R` reads it: one per line, blank lines
 * and `#` comments skipped. Errors name the file and line but never echo a
 * line: a mistaken path may be a private key.
 */
function recipientsFile(path: string, size: number): string[] {
  const where = resolve(path);
  if (size > RECIPIENTS_FILE_MAX) {
    throw new UsageError(
      `--encrypt ${where}: over ${RECIPIENTS_FILE_MAX / 1024} KiB, not a recipients file`,
      `Give ${AGE_RECIPIENT_HELP}, or a file of them one per line.`,
    );
  }
  let text: string;
  try {
    text = readFileSync(where, 'utf8');
  } catch (e) {
    throw new UsageError(
      `--encrypt ${where}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  const found: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const ok = normaliseRecipient(line);
    if (ok) {
      found.push(ok);
      continue;
    }
    const secret = /PRIVATE KEY|^AGE-SECRET-KEY-/.test(line);
    throw new UsageError(
      `--encrypt ${where}:${i + 1}: ${secret ? 'a private key, not a recipient' : 'not an age recipient'}`,
      secret
        ? 'Give the public key: the .pub file beside it, or age-keygen -y IDENTITY_FILE.'
        : `Each line must be ${AGE_RECIPIENT_HELP}; blank lines and # comments are skipped.`,
    );
  }
  if (found.length === 0) {
    throw new UsageError(`--encrypt ${where}: no recipient in it`, `Give ${AGE_RECIPIENT_HELP}.`);
  }
  return found;
}

/** The words of a repeatable flag. */
function listOf(values: FlagValues, flag: string): string[] {
  const v = values[flag];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** `--app`, `--exclude-app`, `--service`, `--exclude-service`, checked; absent when none is given. */
export function selectionOf(values: FlagValues): { selection?: Selection } {
  const selection: Selection = {
    apps: listOf(values, 'app'),
    excludeApps: listOf(values, 'exclude-app'),
    services: listOf(values, 'service'),
    excludeServices: listOf(values, 'exclude-service'),
  };
  if (isEmptySelection(selection)) return {};
  const problems = selectionProblems(selection);
  if (problems.length > 0) {
    throw new UsageError(
      problems.join('; '),
      'Apps by name, services as PLUGIN/NAME (postgres/db).',
    );
  }
  return { selection };
}

/** `--rename OLD=NEW` (repeated), checked; absent when none is given. */
export function renamesOf(values: FlagValues): { rename?: Renames } {
  const given = listOf(values, 'rename');
  if (given.length === 0) return {};
  const { renames, problems } = parseRenames(given);
  problems.push(
    ...selectionProblems({ apps: [], excludeApps: [], services: [], excludeServices: [] }, renames),
  );
  if (problems.length > 0) {
    throw new UsageError(
      problems.join('; '),
      'Example: --rename notes=memo --rename postgres/notes-db=memo-db',
    );
  }
  return { rename: renames };
}

/** `--parallel N` of a fleet: 1 to 64 hosts at once. */
export function parallelOf(values: FlagValues): { parallel?: number } {
  const p = values.parallel;
  if (p === undefined) return {};
  const n = Number(p);
  if (typeof p !== 'string' || !/^[0-9]+$/.test(p) || n < 1 || n > 64) {
    throw new UsageError(`--parallel takes a number of hosts from 1 to 64, got "${String(p)}"`);
  }
  return { parallel: n };
}

/** A DNS name (RFC 1123 labels, lower case, at most 253 characters), as a scratch host's domain suffix. */
export function domainSuffixOf(values: FlagValues): { domainSuffix?: string } {
  const d = values['domain-suffix'];
  if (d === undefined) return {};
  const name = String(d).toLowerCase().replace(/\.$/, '');
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  if (name.length > 253 || !name.split('.').every((l) => label.test(l))) {
    throw new UsageError(
      `--domain-suffix must be a DNS name, got "${String(d)}"`,
      'Example: ferry drill old --to scratch --domain-suffix drill.example.com',
    );
  }
  return { domainSuffix: name };
}

/** Forwarding lasts a day unless told otherwise: long enough for DNS, short enough to be noticed. */
export const DEFAULT_FORWARD_TTL = 86400;

/** Seconds of a duration given as `90`, `90s`, `30m`, `12h` or `2d`. */
export function durationOf(v: FlagValues[string], flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new UsageError(`${flag} is given once`);
  const m = /^(\d+)([smhd]?)$/.exec(String(v).trim());
  if (!m || Number(m[1]) <= 0) {
    throw new UsageError(`${flag} must be a duration like 90s, 30m, 12h or 2d, got "${String(v)}"`);
  }
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** `--forward` and `--forward-ttl` of migrate. */
export function forwardOf(values: FlagValues): { forward?: { ttlSeconds: number } } {
  const ttl = durationOf(values['forward-ttl'], '--forward-ttl');
  if (values.forward !== true) {
    if (ttl !== undefined) throw new UsageError('--forward-ttl goes with --forward');
    return {};
  }
  return { forward: { ttlSeconds: ttl ?? DEFAULT_FORWARD_TTL } };
}
