/**
 * What each command receives: options parsed and checked by `src/cli.ts`,
 * typed per command, and the parsers that check the values of its flags
 * (cli.ts reads argv and hands them the parsed values). Commands never see
 * argv or the environment.
 */
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
  return given.map((v) => {
    const r = String(v);
    const ok = normaliseRecipient(r);
    if (!ok) {
      throw new UsageError(
        `--encrypt ${JSON.stringify(r.length > 80 ? `${r.slice(0, 80)}…` : r)} is not an age recipient`,
        `Give ${AGE_RECIPIENT_HELP}.`,
      );
    }
    return ok;
  });
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
