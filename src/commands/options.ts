/**
 * What each command receives: options parsed and checked by `src/cli.ts`,
 * typed per command. Commands never see argv or the environment.
 */
import type { RendererChoice } from '../run/runner.js';
import type { Selection } from '../tasks/manifest.js';
import type { Renames } from '../tasks/selection.js';
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
