/**
 * Runs a plan's steps with listr2: a live tree on a TTY (DefaultRenderer), plain
 * timestamped lines elsewhere (SimpleRenderer), the `test` renderer in tests.
 * Playbook fields map onto listr2's own task options (`skip`, `enabled`,
 * `retry`, `rollback`, `exitOnError`); the runner adds the journal (every step's
 * start, outputs and failure, fsync'd), `--resume` (finished steps are skipped
 * with "done in run <id>" and their outputs replayed) and the run result the
 * report is built from.
 */
import {
  Listr,
  type ListrBaseClassOptions,
  ListrLogger,
  type ListrTask,
  PRESET_TIMESTAMP,
  ProcessOutput,
} from 'listr2';
import { FerryError, InternalError, lastLines, RemoteError } from '../errors.js';
import { formatProgress } from './format.js';
import type { Journal, RunState, RunStatus, StepOutputs } from './journal.js';
import { type Json, redact } from './redact.js';

/** The host name used for steps that run on the controller itself. */
export const CONTROLLER = 'controller';

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

/** The handle a running step uses to talk to the user and the report. */
export interface StepTask {
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
  /** Playbook `skip`/`when`: a reason to skip (shown and recorded) or false. */
  skip?: SkipValue | ((ctx: RunContext<S>) => SkipValue | Promise<SkipValue>);
  /** Playbook `enabled`: a disabled step is not shown at all. */
  enabled?: boolean | ((ctx: RunContext<S>) => boolean | Promise<boolean>);
  /** Playbook `retry`: extra tries after a failure (listr2 semantics). */
  retry?: number | { tries: number; delay?: number };
  /** Undo after a failure (listr2 `rollback`); the run still stops afterwards. */
  rollback?: (ctx: RunContext<S>, task: StepTask) => Promise<void>;
  /** Playbook `continue_on_error`: a failure is recorded but the run goes on. */
  continueOnError?: boolean;
  /** Run again on --resume even if it finished (checks, connections, "stop app"). */
  rerunOnResume?: boolean;
}

/** How a step ended, for the report. */
export type StepStatus = 'ok' | 'failed' | 'skipped' | 'resumed' | 'disabled' | 'not-run';

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
}

/** Renderer choice: `auto` = live tree on a TTY, timestamped lines otherwise or under CI. */
export type RendererChoice = 'auto' | 'default' | 'simple' | 'silent' | 'test';

/** Options of {@link runSteps}. */
export interface RunOptions<S> {
  shared: S;
  /** Where events go; absent only for dry wiring tests. */
  journal?: Journal;
  /** The run to continue (from `resumeRun`). */
  resume?: RunState;
  renderer?: RendererChoice;
  /** Stream for the live view (default process.stderr, so `--json` stdout stays clean). */
  stream?: NodeJS.WriteStream;
  /** A logger for the renderer (tests pass one that captures the `test` renderer's lines). */
  logger?: ListrLogger;
  /** Seconds between progress lines; default 0.25 on a TTY, 15 otherwise. */
  progressInterval?: number;
  /** Aborts the run from outside (the command's own SIGINT handling, a timeout). */
  signal?: AbortSignal;
  /** Install a SIGINT handler that aborts the run (default true; first ^C aborts, second kills). */
  handleSignals?: boolean;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** The runner's own bookkeeping, per step. */
interface Tracker {
  record: StepRecord;
  enabled: boolean;
  attempt: number;
  started: number;
}

function isTty(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.CI && env.TERM !== 'dumb';
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
  if (e instanceof RemoteError) {
    failure.host = e.host;
    failure.command = redact(e.command);
    failure.code = e.code;
    const tail = lastLines(e.stderr.trim() ? e.stderr : e.stdout, 20);
    if (tail) failure.outputTail = redact(tail);
    // RemoteError's message repeats the tail; keep the first line for the summary.
    failure.message = redact(e.message.split('\n')[0]!.replace(`on ${e.host}: `, ''));
  }
  return failure;
}

/**
 * Runs the steps in order and resolves with the {@link RunResult}; a failed step
 * does not reject (the result says `failed`), only a bug in the runner does.
 */
export async function runSteps<S>(steps: Step<S>[], options: RunOptions<S>): Promise<RunResult> {
  const env = options.env ?? process.env;
  const now = options.now ?? Date.now;
  const stream = options.stream ?? process.stderr;
  const tty = isTty(stream, env);
  const journal = options.journal;
  const runId = journal?.runId ?? `dry-${now()}`;
  const startedMs = now();
  const controller = new AbortController();
  const outer = options.signal;
  const forward = (): void => controller.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener('abort', forward, { once: true });
  const outputs: Record<string, StepOutputs> = {};
  const warnings: RunWarning[] = [];
  const hostStates: Record<string, string> = { ...(options.resume?.hostStates ?? {}) };
  const ids = new Set<string>();
  for (const s of steps) {
    if (ids.has(s.id)) throw new InternalError(`two steps share the id "${s.id}"`);
    ids.add(s.id);
  }

  const ctx: RunContext<S> = {
    runId,
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

  // Resumed steps: outputs come back before anything runs, so later steps see them.
  const replay = new Map<string, { doneIn: string; outputs: StepOutputs; bytes?: number }>();
  if (options.resume) {
    for (const s of steps) {
      const f = options.resume.finished.get(s.id);
      if (f && !s.rerunOnResume) {
        replay.set(s.id, f);
        outputs[s.id] = f.outputs;
      }
    }
  }

  const trackers = new Map<string, Tracker>();
  for (const s of steps) {
    trackers.set(s.id, {
      record: { id: s.id, title: s.title, host: s.host, status: 'not-run' },
      enabled: true,
      attempt: 0,
      started: 0,
    });
  }

  const interval = (options.progressInterval ?? (tty ? 0.25 : 15)) * 1000;

  const toTask = (step: Step<S>): ListrTask<RunContext<S>> => {
    const t = trackers.get(step.id)!;
    const title = step.host === CONTROLLER ? step.title : `${step.title} [${step.host}]`;
    const task: ListrTask<RunContext<S>> = {
      title,
      skip: async (c: RunContext<S>) => {
        const done = replay.get(step.id);
        let reason: SkipValue = false;
        if (done) reason = `done in run ${done.doneIn}`;
        else if (typeof step.skip === 'function') reason = await step.skip(c);
        else if (step.skip) reason = step.skip;
        if (!reason) return false;
        t.record.status = done ? 'resumed' : 'skipped';
        t.record.reason = redact(reason);
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
        let bytes: number | undefined;
        let lastShown = 0;
        let skippedBy: string | undefined;
        const handle: StepTask = {
          stepId: step.id,
          host: step.host,
          attempt: t.attempt,
          signal: controller.signal,
          setTitle(text) {
            wrapper.title = step.host === CONTROLLER ? text : `${text} [${step.host}]`;
          },
          log(line) {
            wrapper.output = redact(line);
          },
          progress(n, total) {
            bytes = Math.max(bytes ?? 0, n);
            const at = now();
            const last = total !== undefined && n >= total;
            if (!last && at - lastShown < interval) return;
            lastShown = at;
            wrapper.output = formatProgress(n, total, t.started, at);
          },
          skip(reason) {
            skippedBy = redact(reason);
            wrapper.skip(skippedBy);
          },
          warn(message) {
            const w: RunWarning = { message: redact(message), step: step.id, host: step.host };
            warnings.push(w);
            journal?.append({ type: 'warning', ...w });
          },
          hostState(host, note) {
            hostStates[host] = redact(note);
            journal?.append({ type: 'host-state', host, note: hostStates[host]!, step: step.id });
          },
        };
        try {
          const produced = (await step.run(c, handle)) ?? {};
          const durationMs = now() - t.started;
          t.record.durationMs = durationMs;
          if (bytes !== undefined) t.record.bytes = bytes;
          if (skippedBy !== undefined) {
            t.record.status = 'skipped';
            t.record.reason = skippedBy;
            journal?.append({
              type: 'step-skipped',
              step: step.id,
              host: step.host,
              reason: skippedBy,
            });
            return;
          }
          outputs[step.id] = produced;
          t.record.status = 'ok';
          journal?.append({
            type: 'step-finished',
            step: step.id,
            host: step.host,
            durationMs,
            outputs: produced,
            ...(bytes === undefined ? {} : { bytes }),
            doneIn: runId,
          });
        } catch (e) {
          const tries = typeof step.retry === 'number' ? step.retry : (step.retry?.tries ?? 0);
          const willRetry = t.attempt <= tries && !controller.signal.aborted;
          const failure = describeFailure(step, e);
          const durationMs = now() - t.started;
          t.record.durationMs = durationMs;
          if (bytes !== undefined) t.record.bytes = bytes;
          if (!willRetry) {
            t.record.status = 'failed';
            t.record.error = failure;
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
    if (step.enabled !== undefined) {
      const enabled = step.enabled;
      task.enabled = async (c: RunContext<S>) => {
        t.enabled = typeof enabled === 'function' ? await enabled(c) : enabled;
        if (!t.enabled) t.record.status = 'disabled';
        else if (t.record.status === 'disabled') t.record.status = 'not-run';
        return t.enabled;
      };
    }
    if (step.retry !== undefined) task.retry = step.retry;
    if (step.continueOnError) task.exitOnError = false;
    if (step.rollback) {
      const rollback = step.rollback;
      task.rollback = async (c) => {
        await rollback(c, {
          stepId: step.id,
          host: step.host,
          attempt: t.attempt,
          signal: controller.signal,
          setTitle() {},
          log() {},
          progress() {},
          skip() {},
          warn(message) {
            warnings.push({ message: redact(message), step: step.id, host: step.host });
          },
          hostState(host, note) {
            hostStates[host] = redact(note);
            journal?.append({ type: 'host-state', host, note: hostStates[host]!, step: step.id });
          },
        });
      };
    }
    return task;
  };

  const logger =
    options.logger ??
    new ListrLogger({ useIcons: true, processOutput: new ProcessOutput(stream, stream) });
  const choice = options.renderer ?? 'auto';
  const listrOptions: ListrBaseClassOptions<RunContext<S>, 'default', 'simple'> = {
    ctx,
    concurrent: false,
    exitOnError: true,
    registerSignalListeners: false,
    rendererOptions: { logger, collapseSubtasks: false, showErrorMessage: true },
    fallbackRenderer: 'simple',
    fallbackRendererOptions: { logger, timestamp: PRESET_TIMESTAMP },
    fallbackRendererCondition: choice === 'simple' || (choice === 'auto' && !tty),
    silentRendererCondition: choice === 'silent',
  };
  const list =
    choice === 'test'
      ? new Listr<RunContext<S>, 'test', 'test'>(steps.map(toTask), {
          ctx,
          concurrent: false,
          exitOnError: true,
          registerSignalListeners: false,
          renderer: 'test',
          rendererOptions: { logger },
          fallbackRenderer: 'test',
          fallbackRendererOptions: { logger },
        })
      : new Listr<RunContext<S>, 'default', 'simple'>(steps.map(toTask), {
          ...listrOptions,
          renderer: 'default',
          forceTTY: tty,
        });

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
  try {
    await list.run(ctx);
  } catch (e) {
    status = controller.signal.aborted ? 'interrupted' : 'failed';
    const failed = [...trackers.values()].find((x) => x.record.status === 'failed');
    if (failed?.record.error) failure = failed.record.error;
    else if (status === 'failed') {
      failure = describeFailure({ id: '?', title: '?', host: CONTROLLER }, e);
    }
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
    runId,
    status,
    startedAt: new Date(startedMs).toISOString(),
    durationMs,
    steps: records,
    outputs,
    warnings,
    hostStates,
    bytes: records.reduce((sum, r) => sum + (r.status === 'ok' ? (r.bytes ?? 0) : 0), 0),
  };
  if (failure) result.failure = failure;
  if (options.resume) result.resumed = options.resume.start.runId;
  return result;
}
