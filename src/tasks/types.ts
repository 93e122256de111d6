/**
 * What a built-in task is: a name, the kind of place it runs, a JSON Schema
 * for its parameters, and `plan`, which turns a step into the exact commands
 * it will run. The runner adds `run` beside `plan` in each task's file, built
 * from the same exported command builders, so what runs is what was planned.
 */
import type { Host, Inventory } from '../inventory/index.js';
import type { FromSchema } from '../schema/from-schema.js';

/** Which item a repeated action runs for; the names are discovered at run time. */
export type ForEach = 'app' | 'service' | 'network' | 'plugin' | 'repo' | 'link' | 'archive';

/**
 * One thing a step does. `command` is exact: every untrusted part is already
 * quoted. A `<name>` placeholder (never quoted, never valid shell) stands for
 * a value known only at run time: the item of `forEach`, or a `capture` of an
 * earlier action.
 */
export type PlannedAction =
  | {
      /**
       * A bash command line run on `host` as root (through `sudo -n` when the
       * host says `sudo: true`; the SSH layer adds that and `set -euo pipefail`).
       */
      kind: 'remote';
      host: string;
      command: string;
      why?: string;
      /** Run once per item of this kind (the placeholder `<app>`, `<service>` …). */
      forEach?: ForEach;
      /** The items already known while planning (for example apps.order), run first, in order. */
      items?: string[];
      /** Which items `forEach` covers, in words, when not all of them. */
      where?: string;
      /** The command's stdout (trimmed) becomes `<capture>` for later actions. */
      capture?: string;
      /** What the runner writes to the command's stdin, in words (for example the manifest). */
      stdin?: string;
      /** What the runner checks in the output, in words (the runner implements it). */
      expect?: string;
      /** Run instead when this action fails; then the step goes on. */
      fallback?: PlannedAction[];
      /** The action changes the host (false: it only reads). */
      changes?: boolean;
    }
  | {
      /** A command run here, on the controller (git on the user's clones). */
      kind: 'local';
      command: string;
      why?: string;
      forEach?: ForEach;
      items?: string[];
      expect?: string;
      changes?: boolean;
      /** Run instead when this action fails. */
      fallback?: PlannedAction[];
    }
  | {
      /**
       * Bytes piped from `send` (run on `from`) into `receive` (run on `to`),
       * host to host or through the controller (`route`). `controller` as
       * `from` or `to` means this machine.
       */
      kind: 'stream';
      from: string;
      to: string;
      send: string;
      receive: string;
      route: Route;
      /**
       * The receive command prints `<n> bytes` lines on stderr itself (see
       * common's `hashed`), so a direct transfer puts no counter in the pipe.
       */
      counts?: boolean;
      why?: string;
      changes?: boolean;
    };

/** How bytes travel between two hosts. `auto`: direct when they reach each other, else relay. */
export type Route = 'auto' | 'direct' | 'relay';

/** Options of the command line that change what a plan does. */
export interface PlanOptions {
  /** Names this run's files on the hosts; sortable (UTC timestamp). */
  runId: string;
  /** Allow a target that already holds Dokku data (a safety archive of it is taken first). */
  force?: boolean;
  /** Overrides every transfer step's route. */
  route?: Route;
  /** `ferry backup --fetch DIR`: also stream the archive here. Enables steps with `when: fetch`. */
  fetch?: string;
  /**
   * `ferry restore ARCHIVE HOST`: the archive directory (or its dokku.tar.* file),
   * on this machine, or on `host` (an inventory host name).
   */
  archive?: { host?: string; path: string };
}

/** What `plan` receives for one step. */
export interface PlanContext<P> {
  step: { id: string; task: string; on: string; index: number };
  /** The step's params, validated, with schema defaults filled in. */
  params: P;
  /** The host the step runs on; undefined for a controller task. */
  host: Host | undefined;
  /** Every role of the playbook, bound to its host (undefined: an optional role left unbound). */
  roles: Readonly<Record<string, Host | undefined>>;
  inventory: Inventory;
  options: PlanOptions;
}

/** A built-in task. */
export interface TaskDefinition<P = unknown> {
  name: string;
  /** One line: what the task does. */
  summary: string;
  /** `host`: runs on a host bound to a playbook role. `controller`: runs here. */
  runsOn: 'host' | 'controller';
  /** JSON Schema (draft-07) of the step's `params`. */
  params: object;
  /** Params whose value names another role of the playbook (checked when it loads). */
  roleParams: readonly string[];
  /** The exact actions of one step; pure: no I/O, no clock. */
  plan(ctx: PlanContext<P>): PlannedAction[];
}

/** Declares a task with its params type derived from its schema. */
export function defineTask<const S extends object>(def: {
  name: string;
  summary: string;
  runsOn: 'host' | 'controller';
  params: S;
  roleParams?: readonly string[];
  plan(ctx: PlanContext<FromSchema<S>>): PlannedAction[];
}): TaskDefinition<FromSchema<S>> {
  return { roleParams: [], ...def };
}

/** The `remote` variant of PlannedAction. */
export type RemoteAction = Extract<PlannedAction, { kind: 'remote' }>;
/** The `local` variant of PlannedAction. */
export type LocalAction = Extract<PlannedAction, { kind: 'local' }>;
/** The `stream` variant of PlannedAction. */
export type StreamAction = Extract<PlannedAction, { kind: 'stream' }>;
