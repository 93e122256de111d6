/**
 * Runs a plan's steps with listr2: a live tree on a TTY (DefaultRenderer), plain
 * timestamped lines elsewhere (SimpleRenderer), the `test` renderer in tests.
 * What a playbook step can say maps onto listr2's own task options: `when`
 * (and an unbound optional role) onto `skip`, `retry` onto `retry`,
 * `continue_on_error` onto `exitOnError: false`. The runner adds the journal
 * (every step's start, outputs and failure, fsync'd), `--resume` (finished
 * steps are skipped with "done in run <id>" and their outputs replayed) and
 * the run result the report is built from. It reads no environment: the
 * caller decides the renderer.
 */
import {
  Listr,
  type ListrBaseClassOptions,
  ListrLogger,
  type ListrTask,
  PRESET_TIMESTAMP,
  ProcessOutput,
} from 'listr2';
import { FerryError, InternalError, LocalError, lastLines, RemoteError } from '../errors.js';
import { CONTROLLER } from '../playbook/index.js';
import type { Json, StepHandle, StepOutputs } from '../tasks/types.js';
import { formatProgress } from '../util/format.js';
import type { Journal, RunState, RunStatus } from './journal.js';
import { redact } from './redact.js';

export { CONTROLLER };

/** What every step receives: the run id, the command's shared state, earlier outputs. */
export interface RunContext<S = unknown> {
  readonly runId: string;
  /** Whatever the command shares with its steps: connections, plan, inventory. */
  readonly shared: S;
  /** Outputs of finished steps by step id (replayed from the journal on --resume). */
  readonly outputs: Readonly<Record<string, StepOutputs>>;
  /** Aborted on the first Ctrl-C: long steps should stop and fail. */
  readonly signal: AbortSignal;
  /** An output of an earlier step; throws an InternalError when missing (a plan bug). */
  need<T extends Json = Json>(stepId: string, key: string): T;
}

/** The handle a running step uses (see {@link StepHandle}). */
export type StepTask = StepHandle;

/** A reason to skip, or false to run. */
export type SkipValue = string | false;

/** One step of a run. */
export interface Step<S = unknown> {
  /** Unique within the run; the journal key. */
  id: string;
  title: string;
  /** Inventory host name, or {@link CONTROLLER}. */
  host: string;
  /** Does the work; returns outputs later steps need (recorded in the journal). */
  // biome-ignore lint/suspicious/noConfusingVoidType: a step that hands nothing on just returns.
  run(ctx: RunContext<S>, task: StepTask): Promise<StepOutputs | undefined | void>;
  /** Playbook `when` (or an unbound role): a reason to skip (shown and recorded) or false. */
  skip?: SkipValue | ((ctx: RunContext<S>) => SkipValue | Promise<SkipValue>);
  /** Playbook `retry`: extra tries after a failure (listr2 semantics). */
  retry?: number | { tries: number; delay?: number };
  /** Playbook `continue_on_error`: a failure is recorded but the run goes on. */
  continueOnError?: boolean;
  /** Run again on --resume even if it finished (checks, connections, "stop app"). */
  rerunOnResume?: boolean;
  /**
   * Brings back what the step changed when the run fails (or is interrupted)
   * after this step started and before the step `until` finished: the
   * playbook's `undo` range (a migration's cut-over until the target is verified).
   */
  undo?: StepUndo<S>;
}

/** A step's undo (see {@link Step.undo}). */
export interface StepUndo<S = unknown> {
  /** The step whose success ends the need to undo. */
  until: string;
  /** The first step of the range: a resumed run starts again from it. */
  from: string;
  run(ctx: RunContext<S>, task: StepTask): Promise<void>;
}

/** One undo the runner ran after a failure. */
export interface UndoRecord {
  step: string;
  host: string;
  ok: boolean;
  durationMs: number;
  message?: string;
}

/** How a step ended, for the report. */
export type StepStatus = 'ok' | 'failed' | 'skipped' | 'resumed' | 'not-run';

/** One step's record in the run result. */
export interface StepRecord {
  id: string;
  title: string;
  host: string;
  status: StepStatus;
  startedAt?: string;
  durationMs?: number;
  bytes?: number;
  /** Skip reason, or "done in run <id>" for resumed steps. */
  reason?: string;
  error?: StepFailure;
  attempts?: number;
}

/** Everything known about a failed step. */
export interface StepFailure {
  stepId: string;
  title: string;
  host: string;
  message: string;
  hint?: string;
  /** The remote command, when a RemoteError carried it (redacted). */
  command?: string;
  code?: number | null;
  /** Last lines of stderr (or stdout), redacted. */
  outputTail?: string;
}

/** A warning raised by a step. */
export interface RunWarning {
  message: string;
  step?: string;
  host?: string;
}

/** What {@link runSteps} returns. */
export interface RunResult {
  runId: string;
  status: RunStatus;
  startedAt: string;
  durationMs: number;
  steps: StepRecord[];
  outputs: Record<string, StepOutputs>;
  warnings: RunWarning[];
  /** Where each host is left, last note wins. */
  hostStates: Record<string, string>;
  /** Total bytes reported by steps. */
  bytes: number;
  failure?: StepFailure;
  /** The run this one resumed. */
  resumed?: string;
  /** Undos run after the failure (playbook `undo` range), in the order they ended. */
  undone?: UndoRecord[];
  /** When undos ran: the step a resumed run starts again at. */
  undoneFrom?: string;
}

/**
 * Watches a run from outside (a fleet shows many runs in one view): each
 * step's start and end, with its place in the run, and each line it shows.
 */
export interface RunObserver {
  step?(event: {
    id: string;
    title: string;
    host: string;
    /** 0-based place in the run, and the number of steps. */
    index: number;
    total: number;
    status: 'started' | 'ok' | 'failed' | 'skipped' | 'resumed';
    /** Why a step was skipped, or how it failed (redacted). */
    reason?: string;
  }): void;
  /** A line a step shows under it: a log line or a progress line (redacted). */
  output?(stepId: string, line: string): void;
}

/** Renderer: a live tree (a terminal), timestamped lines (CI, pipes), nothing, or test events. */
export type RendererChoice = 'default' | 'simple' | 'silent' | 'test';

/** Options of {@link runSteps}. */
export interface RunOptions<S> {
  shared: S;
  /** Where events go; absent only for dry wiring tests. */
  journal?: Journal;
  /** The run to continue (from `resumeRun`). */
  resume?: RunState;
  /** Default `simple`. */
  renderer?: RendererChoice;
  /** Stream for the live view (default process.stderr, so `--json` stdout stays clean). */
  stream?: NodeJS.WriteStream;
  /** A logger for the renderer (tests pass one that captures the `test` renderer's lines). */
  logger?: ListrLogger;
  /** Seconds between progress lines; default 0.25 for the live tree, 15 otherwise. */
  progressInterval?: number;
  /** Aborts the run from outside (the command's own SIGINT handling, a timeout). */
  signal?: AbortSignal;
  /** Told of every step's start, end and output (a fleet's view). */
  observer?: RunObserver;
  /** Install a SIGINT handler that aborts the run (default true; first ^C aborts, second kills). */
  handleSignals?: boolean;
  now?: () => number;
}

/** The runner's own bookkeeping, per step. */
interface Tracker {
  record: StepRecord;
  attempt: number;
  started: number;
}

/** Describes any thrown value as a {@link StepFailure}. */
export function describeFailure(
  step: { id: string; title: string; host: string },
  e: unknown,
): StepFailure {
  const failure: StepFailure = {
    stepId: step.id,
    title: step.title,
    host: step.host,
    message: redact(e instanceof Error ? e.message : String(e)),
  };
  if (e instanceof FerryError && e.hint) failure.hint = redact(e.hint);
  if (e instanceof RemoteError || e instanceof LocalError) {
    const where = e instanceof RemoteError ? e.host : CONTROLLER;
    failure.host = where;
    failure.command = redact(e.command);
    failure.code = e.code;
    const out = e instanceof RemoteError && !e.stderr.trim() ? e.stdout : e.stderr;
    const tail = lastLines(out, 20);
    if (tail) failure.outputTail = redact(tail);
    // The message repeats the tail; keep the first line for the summary.
    failure.message = redact(
      e.message.split('\n')[0]!.replace(e instanceof RemoteError ? `on ${e.host}: ` : 'here: ', ''),
    );
  }
  return failure;
}

/** What every step's listr2 task shares within one run. */
interface Shared<S> {
  options: RunOptions<S>;
  now: () => number;
  journal: Journal | undefined;
  runId: string;
  controller: AbortController;
  warnings: RunWarning[];
  hostStates: Record<string, string>;
  replay: Map<string, { doneIn: string; outputs: StepOutputs; bytes?: number }>;
  trackers: Map<string, Tracker>;
  outputs: Record<string, StepOutputs>;
  /** Milliseconds between progress lines. */
  interval: number;
}

/**
 * Runs the steps in order and resolves with the {@link RunResult}; a failed step
 * does not reject (the result says `failed`), only a bug in the runner does.
 */
export async function runSteps<S>(steps: Step<S>[], options: RunOptions<S>): Promise<RunResult> {
  const now = options.now ?? Date.now;
  const journal = options.journal;
  const startedMs = now();
  const ids = new Set<string>();
  for (const s of steps) {
    if (ids.has(s.id)) throw new InternalError(`two steps share the id "${s.id}"`);
    ids.add(s.id);
  }
  const renderer = options.renderer ?? 'simple';
  const state: Shared<S> = {
    options,
    now,
    journal,
    runId: journal?.runId ?? `dry-${now()}`,
    controller: new AbortController(),
    warnings: [],
    hostStates: { ...(options.resume?.hostStates ?? {}) },
    replay: new Map(),
    trackers: new Map(
      steps.map((s) => [
        s.id,
        {
          record: { id: s.id, title: s.title, host: s.host, status: 'not-run' },
          attempt: 0,
          started: 0,
        },
      ]),
    ),
    outputs: {},
    interval: (options.progressInterval ?? (renderer === 'default' ? 0.25 : 15)) * 1000,
  };
  const { controller, outputs, trackers } = state;
  const outer = options.signal;
  const forward = (): void => controller.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener('abort', forward, { once: true });

  // Resumed steps: outputs come back before anything runs, so later steps see them.
  if (options.resume) {
    for (const s of steps) {
      const f = options.resume.finished.get(s.id);
      if (f && !s.rerunOnResume) {
        state.replay.set(s.id, f);
        outputs[s.id] = f.outputs;
      }
    }
  }

  const ctx: RunContext<S> = {
    runId: state.runId,
    shared: options.shared,
    outputs,
    signal: controller.signal,
    need<T extends Json = Json>(stepId: string, key: string): T {
      const value = outputs[stepId]?.[key];
      if (value === undefined) {
        throw new InternalError(`step output ${stepId}.${key} is missing (has "${stepId}" run?)`);
      }
      return value as T;
    },
  };

  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      controller.abort(new FerryError('interrupted by the user'));
      return;
    }
    // Second ^C: let the default handler end the process.
    process.removeListener('SIGINT', onSigint);
    process.kill(process.pid, 'SIGINT');
  };
  const handleSignals = options.handleSignals ?? true;
  if (handleSignals) process.on('SIGINT', onSigint);

  let status: RunStatus = 'ok';
  let failure: StepFailure | undefined;
  let undone: { from: string; records: UndoRecord[] } | undefined;
  try {
    try {
      await makeListr(
        steps.map((s, i) => toListrTask(s, state, { index: i, total: steps.length })),
        ctx,
        options,
      ).run(ctx);
    } catch (e) {
      status = controller.signal.aborted ? 'interrupted' : 'failed';
      const failed = [...trackers.values()].find((x) => x.record.status === 'failed');
      if (failed?.record.error) failure = failed.record.error;
      else if (status === 'failed') {
        failure = describeFailure({ id: '?', title: '?', host: CONTROLLER }, e);
      }
    }
    // Still under the SIGINT handler: a first ^C during the undo is ignored, a second ends the process.
    if (status !== 'ok') undone = await runUndos(steps, state, ctx);
  } finally {
    if (handleSignals) process.removeListener('SIGINT', onSigint);
    outer?.removeEventListener('abort', forward);
  }
  if (status === 'ok') {
    const failed = [...trackers.values()].find((x) => x.record.status === 'failed');
    if (failed?.record.error) failure = failed.record.error;
  }
  const durationMs = now() - startedMs;
  journal?.append({ type: 'run-finished', status, durationMs });

  const records = steps.map((s) => trackers.get(s.id)!.record);
  const result: RunResult = {
    runId: state.runId,
    status,
    startedAt: new Date(startedMs).toISOString(),
    durationMs,
    steps: records,
    outputs,
    warnings: state.warnings,
    hostStates: state.hostStates,
    bytes: records.reduce((sum, r) => sum + (r.status === 'ok' ? (r.bytes ?? 0) : 0), 0),
  };
  if (failure) result.failure = failure;
  if (options.resume) result.resumed = options.resume.start.runId;
  if (undone) {
    result.undone = undone.records;
    result.undoneFrom = undone.from;
  }
  return result;
}

/**
 * After a failure: the undo of every step inside an undo range that started
 * (in this run or, resumed, in the one before) while the range's `until`
 * step has not finished. Each host's undos run in reverse step order, hosts
 * at once (the source is serving again without waiting for the target's
 * clean-up); one failing undo does not stop the others. Runs with a signal
 * of its own: the run's was aborted by the ^C that may have brought us here.
 */
async function runUndos<S>(
  steps: Step<S>[],
  state: Shared<S>,
  ctx: RunContext<S>,
): Promise<{ from: string; records: UndoRecord[] } | undefined> {
  const { trackers, journal, now } = state;
  const done = (id: string): boolean => {
    const st = trackers.get(id)?.record.status;
    return st === 'ok' || st === 'resumed';
  };
  const due = steps.filter((s) => {
    if (!s.undo || done(s.undo.until)) return false;
    const st = trackers.get(s.id)?.record.status;
    return st === 'ok' || st === 'resumed' || st === 'failed';
  });
  if (due.length === 0) return undefined;
  const from = due[0]!.undo!.from;
  journal?.append({ type: 'undo-started', from, steps: due.map((s) => s.id) });
  const byHost = new Map<string, Step<S>[]>();
  for (const s of due) byHost.set(s.host, [...(byHost.get(s.host) ?? []), s]);
  const records: UndoRecord[] = [];
  const own = new AbortController();
  const stream = state.options.stream ?? process.stderr;
  const quiet = state.options.renderer === 'silent' || state.options.renderer === 'test';
  const say = (line: string): void => {
    if (!quiet) stream.write(`${line}\n`);
  };
  await Promise.all(
    [...byHost.values()].map(async (list) => {
      for (const s of [...list].reverse()) {
        const t = trackers.get(s.id)!;
        const started = now();
        const wrapper = {
          title: s.title,
          output: '',
          skip() {},
        };
        const handle = makeHandle(s, t, wrapper, { ...state, controller: own });
        const api: StepTask = {
          ...handle.api,
          log(line) {
            say(`  ↶ ${s.id} [${s.host}]: ${redact(line)}`);
          },
        };
        say(`↶ undoing ${s.id} [${s.host}]`);
        try {
          await s.undo!.run(ctx, api);
          const r: UndoRecord = { step: s.id, host: s.host, ok: true, durationMs: now() - started };
          records.push(r);
          journal?.append({ type: 'step-undone', ...r });
        } catch (e) {
          const f = describeFailure(s, e);
          const r: UndoRecord = {
            step: s.id,
            host: f.host,
            ok: false,
            durationMs: now() - started,
            message: f.message,
          };
          records.push(r);
          journal?.append({ type: 'step-undone', ...r });
          say(`  ✖ undo of ${s.id} failed: ${f.message}`);
        }
      }
    }),
  );
  return { from, records };
}

/** The one Listr of a run, with the chosen renderer. */
function makeListr<S>(
  tasks: ListrTask<RunContext<S>>[],
  ctx: RunContext<S>,
  options: RunOptions<S>,
): Listr<RunContext<S>, 'default' | 'simple' | 'silent' | 'test', 'simple' | 'test'> {
  const stream = options.stream ?? process.stderr;
  const logger =
    options.logger ??
    new ListrLogger({ useIcons: true, processOutput: new ProcessOutput(stream, stream) });
  const choice = options.renderer ?? 'simple';
  const base = { ctx, concurrent: false, exitOnError: true, registerSignalListeners: false };
  if (choice === 'test') {
    return new Listr<RunContext<S>, 'test', 'test'>(tasks, {
      ...base,
      renderer: 'test',
      rendererOptions: { logger },
      fallbackRenderer: 'test',
      fallbackRendererOptions: { logger },
    });
  }
  const opts: ListrBaseClassOptions<RunContext<S>, 'default', 'simple'> = {
    ...base,
    renderer: 'default',
    rendererOptions: { logger, collapseSubtasks: false, showErrorMessage: true },
    fallbackRenderer: 'simple',
    fallbackRendererOptions: { logger, timestamp: PRESET_TIMESTAMP },
    fallbackRendererCondition: choice === 'simple',
    silentRendererCondition: choice === 'silent',
    forceTTY: choice === 'default',
  };
  return new Listr<RunContext<S>, 'default', 'simple'>(tasks, opts);
}

/** One step as a listr2 task: its skip (or replay), its run with a handle, retry and exitOnError. */
function toListrTask<S>(
  step: Step<S>,
  state: Shared<S>,
  place: { index: number; total: number },
): ListrTask<RunContext<S>> {
  const t = state.trackers.get(step.id)!;
  const { journal, controller, now } = state;
  const observe = (status: 'started' | StepStatus, reason?: string): void => {
    if (status === 'not-run') return;
    state.options.observer?.step?.({
      id: step.id,
      title: step.title,
      host: step.host,
      ...place,
      status,
      ...(reason === undefined ? {} : { reason }),
    });
  };
  const task: ListrTask<RunContext<S>> = {
    title: step.host === CONTROLLER ? step.title : `${step.title} [${step.host}]`,
    skip: async (c: RunContext<S>) => {
      const done = state.replay.get(step.id);
      let reason: SkipValue = false;
      if (done) reason = `done in run ${done.doneIn}`;
      else if (typeof step.skip === 'function') reason = await step.skip(c);
      else if (step.skip) reason = step.skip;
      if (!reason) return false;
      t.record.status = done ? 'resumed' : 'skipped';
      t.record.reason = redact(reason);
      observe(t.record.status, t.record.reason);
      if (done) {
        if (done.bytes !== undefined) t.record.bytes = done.bytes;
        journal?.append({
          type: 'step-finished',
          step: step.id,
          host: step.host,
          durationMs: 0,
          outputs: done.outputs,
          ...(done.bytes === undefined ? {} : { bytes: done.bytes }),
          doneIn: done.doneIn,
        });
      } else {
        journal?.append({
          type: 'step-skipped',
          step: step.id,
          host: step.host,
          reason: t.record.reason,
        });
      }
      return t.record.reason;
    },
    task: async (c, wrapper) => {
      // A step that ignored the abort finished; nothing new starts after a ^C.
      if (controller.signal.aborted) throw new FerryError('not started: the run was interrupted');
      t.attempt++;
      t.started = now();
      t.record.startedAt ??= new Date(t.started).toISOString();
      t.record.attempts = t.attempt;
      journal?.append({
        type: 'step-started',
        step: step.id,
        host: step.host,
        title: step.title,
        attempt: t.attempt,
      });
      observe('started');
      const handle = makeHandle(step, t, wrapper, state);
      try {
        const produced = (await step.run(c, handle.api)) ?? {};
        const durationMs = now() - t.started;
        t.record.durationMs = durationMs;
        if (handle.bytes() !== undefined) t.record.bytes = handle.bytes();
        const skippedBy = handle.skippedBy();
        if (skippedBy !== undefined) {
          t.record.status = 'skipped';
          t.record.reason = skippedBy;
          observe('skipped', skippedBy);
          journal?.append({
            type: 'step-skipped',
            step: step.id,
            host: step.host,
            reason: skippedBy,
          });
          return;
        }
        state.outputs[step.id] = produced;
        t.record.status = 'ok';
        observe('ok');
        journal?.append({
          type: 'step-finished',
          step: step.id,
          host: step.host,
          durationMs,
          outputs: produced,
          ...(handle.bytes() === undefined ? {} : { bytes: handle.bytes()! }),
          doneIn: state.runId,
        });
      } catch (e) {
        const tries = typeof step.retry === 'number' ? step.retry : (step.retry?.tries ?? 0);
        const willRetry = t.attempt <= tries && !controller.signal.aborted;
        const failure = describeFailure(step, e);
        const durationMs = now() - t.started;
        t.record.durationMs = durationMs;
        if (handle.bytes() !== undefined) t.record.bytes = handle.bytes();
        if (!willRetry) {
          t.record.status = 'failed';
          t.record.error = failure;
          observe('failed', failure.message);
        }
        journal?.append({
          type: 'step-failed',
          step: step.id,
          host: failure.host,
          durationMs,
          message: failure.message,
          ...(failure.command === undefined ? {} : { command: failure.command }),
          ...(failure.code === undefined ? {} : { code: failure.code }),
          ...(failure.outputTail === undefined ? {} : { stderrTail: failure.outputTail }),
          ...(willRetry ? { willRetry } : {}),
        });
        if (controller.signal.aborted) throw new FerryError('interrupted', { cause: e });
        throw e;
      }
    },
    rendererOptions: { outputBar: 1, persistentOutput: false },
  };
  if (step.retry !== undefined) task.retry = step.retry;
  if (step.continueOnError) task.exitOnError = false;
  return task;
}

/** The handle one attempt of a step works with, and what it gathered. */
function makeHandle<S>(
  step: Step<S>,
  t: Tracker,
  wrapper: { title?: string | undefined; output?: string | undefined; skip(reason?: string): void },
  state: Shared<S>,
): { api: StepHandle; bytes(): number | undefined; skippedBy(): string | undefined } {
  const { journal, now } = state;
  let bytes: number | undefined;
  let lastShown = 0;
  let skippedBy: string | undefined;
  const api: StepHandle = {
    stepId: step.id,
    host: step.host,
    attempt: t.attempt,
    signal: state.controller.signal,
    setTitle(text) {
      wrapper.title = step.host === CONTROLLER ? text : `${text} [${step.host}]`;
    },
    log(line) {
      wrapper.output = redact(line);
      state.options.observer?.output?.(step.id, redact(line));
    },
    progress(n, total) {
      bytes = Math.max(bytes ?? 0, n);
      const at = now();
      const last = total !== undefined && n >= total;
      if (!last && at - lastShown < state.interval) return;
      lastShown = at;
      wrapper.output = formatProgress(n, total, t.started, at);
      state.options.observer?.output?.(step.id, wrapper.output);
    },
    skip(reason) {
      skippedBy = redact(reason);
      wrapper.skip(skippedBy);
    },
    warn(message) {
      const w: RunWarning = { message: redact(message), step: step.id, host: step.host };
      state.warnings.push(w);
      journal?.append({ type: 'warning', ...w });
    },
    hostState(host, note) {
      state.hostStates[host] = redact(note);
      journal?.append({ type: 'host-state', host, note: state.hostStates[host]!, step: step.id });
    },
  };
  return { api, bytes: () => bytes, skippedBy: () => skippedBy };
}
