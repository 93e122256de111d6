/**
 * What a built-in task is, and the one module tasks and the runner share.
 *
 * A task has a name, the kind of place it runs, a JSON Schema for its
 * parameters, the actions it may plan (each by a stable id, with the names of
 * the values it needs at run time), `plan`, which turns a step into those
 * actions exactly, and `run`, which carries them out by id through a
 * {@link TaskRuntime}. A task imports nothing that talks to a host: the
 * runtime is handed to it, so the planner loads every task without ssh2.
 */
import type { Host, Inventory } from '../inventory/index.js';
import type { FromSchema } from '../schema/from-schema.js';
import type { HostKey } from '../ssh/host-keys.js';
import type { Command } from '../ssh/shell.js';
import type { Manifest, Selection } from './manifest.js';
import type { Renames } from './selection.js';

/** JSON values (what step outputs and journal records hold). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** What a step hands on to later steps (journalled, replayed on --resume). */
export type StepOutputs = Record<string, Json>;

/** Which item a repeated action runs for; the names are discovered at run time. */
export type ForEach =
  | 'app'
  | 'service'
  | 'network'
  | 'plugin'
  | 'proxy'
  | 'repo'
  | 'link'
  | 'archive'
  | 'image';

/** Fields every planned action has. */
interface ActionBase {
  /** Stable within its step: the task's run asks for the action by it. */
  id: string;
  /** When one id is planned several times with values known at plan time: which one (a repo's path, a host). */
  item?: string;
  why?: string;
  /** The action changes the host (false: it only reads). */
  changes?: boolean;
  /** It runs only in this case, in words (a cleanup after a failure): not on the main line. */
  only?: string;
}

/**
 * A bash command line run on `host` as root (through `sudo -n` when the host
 * says `sudo: true`; the SSH layer adds that and `set -euo pipefail`). Its
 * holes (`<app>`) are values known only at run time.
 */
export interface RemoteAction extends ActionBase {
  kind: 'remote';
  host: string;
  command: Command;
  /** Run once per item of this kind (the hole `<app>`, `<service>` …). */
  forEach?: ForEach;
  /** The items already known while planning (for example apps.order), run first, in order. */
  items?: string[];
  /** Which items `forEach` covers, in words, when not all of them. */
  where?: string;
  /** The command's stdout (trimmed) is what later actions call `<capture>`. */
  capture?: string;
  /** What the runner writes to the command's stdin, in words (for example the manifest). */
  stdin?: string;
  /** What the runner checks in the output, in words (the run implements it). */
  expect?: string;
  /** Run instead when this action fails; then the step goes on. */
  fallback?: PlannedAction[];
}

/** A command run here, on the controller (git on the user's clones). */
export interface LocalAction extends ActionBase {
  kind: 'local';
  command: Command;
  forEach?: ForEach;
  items?: string[];
  expect?: string;
  /** Run instead when this action fails. */
  fallback?: PlannedAction[];
}

/**
 * Bytes piped from `send` (run on `from`) into `receive` (run on `to`), host
 * to host or through the controller (`route`). `controller` as `from` or `to`
 * means this machine.
 */
export interface StreamAction extends ActionBase {
  kind: 'stream';
  from: string;
  to: string;
  send: Command;
  receive: Command;
  route: Route;
  /**
   * The receive command prints `<n> bytes` lines on stderr itself (see
   * common's `hashed`), so a direct transfer puts no counter in the pipe.
   */
  counts?: boolean;
  /**
   * Two-way: `receive` is a client (rsync) that reaches `send`, a server, by
   * running `"$FERRY_RSH"`; the route provides it (an ssh with a one-stream
   * key, or a bridge through the controller). `send` reads the client's
   * request from `$FERRY_DUPLEX_REQUEST` (`-`: the first line of its stdin).
   */
  duplex?: boolean;
}

/** One thing a step does. Commands are exact: every value is already quoted. */
export type PlannedAction = RemoteAction | LocalAction | StreamAction;

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
  /** `ferry migrate --leave-source-running`: the source serves again once the target is verified. */
  leaveSourceRunning?: boolean;
  /** `ferry migrate --forward [--forward-ttl]`: the source forwards its web traffic to the target. */
  forward?: { ttlSeconds: number };
  /** `--app`, `--exclude-app`, `--service`, `--exclude-service`: part of the source (see selection.ts). */
  selection?: Selection;
  /** `ferry restore --rename OLD=NEW`: names on the target. */
  rename?: Renames;
  /**
   * `ferry backup --fetch DIR --encrypt R...`: the age recipients the fetched
   * copy is encrypted to on the host (normalised); replaces the inventory's
   * `backup.encrypt`.
   */
  encrypt?: string[];
  /** `ferry restore ARCHIVE HOST --identity FILE`: the age identity file here (absolute) that decrypts ARCHIVE. */
  ageIdentity?: string;
  /** `ferry drill --domain-suffix`: the names a scratch host's apps answer under (`<app>.<suffix>`). */
  domainSuffix?: string;
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

/** Each action id a task may plan, with the names of the holes its commands may hold. */
export type ActionSpec = Readonly<Record<string, readonly string[]>>;

/** Values for an action's holes, by name. */
export type VarsOf<I extends readonly string[]> = { readonly [K in I[number]]: string };

/** Options of {@link TaskRuntime.exec}. */
export interface ExecOptions {
  stdin?: string | Buffer;
  /** Exit codes that count as success (default [0]). */
  allowCodes?: number[];
  timeoutMs?: number;
  /** Which of several actions planned under one id (its `item`). */
  item?: string;
  /**
   * Stops the command when aborted (a sibling of a batch failed; see
   * util/concurrency's inBatches). The step's own signal (^C) stops it anyway.
   */
  signal?: AbortSignal;
}

/** Options of {@link TaskRuntime.stream}. */
export interface StreamOptions {
  /** Bytes expected, so progress can show a share and an ETA. */
  total?: number;
  item?: string;
}

/** The arguments of `exec` for an action with holes `I`: values required only when it has holes. */
export type ExecArgs<I extends readonly string[]> = I extends readonly []
  ? [vars?: Record<string, never>, opts?: ExecOptions]
  : [vars: VarsOf<I>, opts?: ExecOptions];

/** The arguments of `stream` for an action with holes `I`. */
export type StreamArgs<I extends readonly string[]> = I extends readonly []
  ? [vars?: Record<string, never>, opts?: StreamOptions]
  : [vars: VarsOf<I>, opts?: StreamOptions];

/** What a finished command said. */
export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** How a stream ended. */
export interface StreamResult {
  route: 'relay' | 'direct';
  bytes: number;
  seconds: number;
  /** What the receiving command printed on stdout (its tail). */
  output: string;
  /** Why the route is not the one asked for (`auto` that fell back to the relay). */
  why?: string;
}

/** The handle a running step uses to talk to the user and the report. */
export interface StepHandle {
  readonly stepId: string;
  readonly host: string;
  /** 1 on the first try, 2 on the first retry, … */
  readonly attempt: number;
  readonly signal: AbortSignal;
  /** Changes the step's title in the live view. */
  setTitle(title: string): void;
  /** Shows one line under the step (redacted). */
  log(line: string): void;
  /**
   * Shows copy progress (bytes, total, rate, ETA) under the step, throttled; the
   * largest `bytes` seen is the step's byte count in the report.
   */
  progress(bytes: number, total?: number): void;
  /** Marks the step skipped with a reason (then return from `run`). */
  skip(reason: string): void;
  /** A warning for the end-of-run report (redacted). */
  warn(message: string): void;
  /** Where `host` is left, e.g. "apps stopped; archive at …" (for failure messages and the report). */
  hostState(host: string, note: string): void;
}

/** One record of this run's journal, as a task may read it (drill-report). */
export type JournalView =
  | { type: 'run-started'; runId: string; steps: string[] }
  | { type: 'step-finished'; step: string; durationMs: number; doneIn: string }
  | { type: 'step-failed'; step: string; durationMs: number }
  | { type: 'other' };

/** The means a task's `run` works with; `A` is the task's {@link ActionSpec}. */
export interface TaskRuntime<P = unknown, A extends ActionSpec = ActionSpec> {
  readonly ctx: PlanContext<P>;
  /** This step's planned actions, in order (with holes). */
  readonly actions: readonly PlannedAction[];
  /** The runner's handle: log, progress, warn, hostState, skip. */
  readonly task: StepHandle;
  /** Outputs of earlier steps (replayed on --resume). */
  readonly outputs: Readonly<Record<string, StepOutputs>>;
  /** Whether this step planned the action `id` (plans differ with params and options). */
  has(id: keyof A & string, item?: string): boolean;
  /** The planned action `id` (a fallback included); a missing one is a plan bug and throws. */
  action(id: keyof A & string, item?: string): PlannedAction;
  /** Runs the planned remote or local action `id` with its holes bound; rejects on failure. */
  exec<K extends keyof A & string>(id: K, ...args: ExecArgs<A[K]>): Promise<CommandResult>;
  /** Runs the planned stream `id` (route decided here: direct when the hosts reach each other). */
  stream<K extends keyof A & string>(id: K, ...args: StreamArgs<A[K]>): Promise<StreamResult>;
  /** The route stream `id` will take (probed once per host pair and remembered). */
  routeOf(id: keyof A & string, item?: string): Promise<'direct' | 'relay' | 'controller'>;
  /** The manifest of this run (from the `inventory` step, or the archive's). */
  manifest(): Manifest;
  /** The host key ferry verified when it connected to `host`, and how it was trusted. */
  hostKey(host: string): Promise<{ key: HostKey; trust: string }>;
  /** This run's journal so far. */
  journal(): JournalView[];
}

/** A task's implementation. Returns outputs later steps need (journalled). */
export type TaskRun<P = unknown, A extends ActionSpec = ActionSpec> = (
  rt: TaskRuntime<P, A>,
) => Promise<StepOutputs | undefined>;

/** The pure half of a task: what the planner needs. */
export interface TaskPlan<P = unknown, A extends ActionSpec = ActionSpec> {
  name: string;
  /** One line: what the task does. */
  summary: string;
  /** `host`: runs on a host bound to a playbook role. `controller`: runs here. */
  runsOn: 'host' | 'controller';
  /** JSON Schema (draft-07) of the step's `params`. */
  params: object;
  /** Params whose value names another role of the playbook (checked when it loads). */
  roleParams: readonly string[];
  /** Every action id `plan` may give, with its holes. */
  actions: A;
  /** Runs again on --resume although it finished (a check, a sweep): what it found may have changed. */
  rerunOnResume?: boolean;
  /** The exact actions of one step; pure: no I/O, no clock. */
  plan(ctx: PlanContext<P>): PlannedAction[];
  /**
   * Why the step has nothing to do with these options (`ferry plan` shows it
   * skipped, and the run skips it), or undefined. Pure, like `plan`.
   */
  skip?(ctx: PlanContext<P>): string | undefined;
}

/** A built-in task: its plan and its run. */
export interface TaskDefinition<P = unknown, A extends ActionSpec = ActionSpec>
  extends TaskPlan<P, A> {
  run: TaskRun<P, A>;
  /**
   * Brings back what `run` changed, with the actions its plan marks `only`
   * for that case: run when a later step of the playbook's `undo` range fails
   * (the step's outputs are not there when its own run failed half-way).
   */
  undo?: (rt: TaskRuntime<P, A>) => Promise<void>;
}

/** The runtime a task's run gets, from its plan's type. */
export type RuntimeOf<T> = T extends TaskPlan<infer P, infer A> ? TaskRuntime<P, A> : never;

/** A task's plan with `runs` to attach its run: `export default plan.runs(run)`. */
export type PlanBuilder<P, A extends ActionSpec> = TaskPlan<P, A> & {
  runs(run: TaskRun<P, A>, more?: Pick<TaskDefinition<P, A>, 'undo'>): TaskDefinition<P, A>;
};

/** Declares a task's plan, its params type derived from its schema. */
export function defineTask<const S extends object, const A extends ActionSpec>(def: {
  name: string;
  summary: string;
  runsOn: 'host' | 'controller';
  params: S;
  roleParams?: readonly string[];
  actions: A;
  rerunOnResume?: boolean;
  plan(ctx: PlanContext<FromSchema<S>>): PlannedAction[];
  skip?(ctx: PlanContext<FromSchema<S>>): string | undefined;
}): PlanBuilder<FromSchema<S>, A> {
  const plan: TaskPlan<FromSchema<S>, A> = { roleParams: [], ...def };
  return { ...plan, runs: (run, more) => ({ ...plan, run, ...more }) };
}

/** The params type of a task plan. */
export type ParamsOf<T> = T extends TaskPlan<infer P, ActionSpec> ? P : never;
