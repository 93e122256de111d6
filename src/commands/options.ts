/**
 * What each command receives: options parsed and checked by `src/cli.ts`,
 * typed per command. Commands never see argv or the environment.
 */
import type { RendererChoice } from '../run/runner.js';
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

/** `ferry migrate SOURCE TARGET`. */
export interface MigrateOptions extends RunOptions {
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

/** `ferry backup HOST [--fetch DIR]`. */
export interface BackupOptions extends RunOptions {
  host: string;
  /** Absolute path of the folder here the archive is streamed to. */
  fetch?: string;
}

/** `ferry restore ARCHIVE HOST`. */
export interface RestoreOptions extends RunOptions {
  /** On `host` (an inventory host) when given as HOST:PATH, else here (absolute). */
  archive: { host?: string; path: string };
  target: string;
  force: boolean;
  route?: Route;
}

/** `ferry drill HOST --to SCRATCH`. */
export interface DrillOptions extends RunOptions {
  source: string;
  scratch: string;
  route?: Route;
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
