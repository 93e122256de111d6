/**
 * What a task's `run` receives: the same context its `plan` saw, the planned
 * actions themselves, and the means to carry them out (pooled SSH
 * connections, streams between hosts, the runner's step handle, earlier
 * steps' outputs). A `run` executes its own plan's actions through `exec` and
 * `stream`, binding the `<placeholders>` to real (quoted) values, so what
 * runs is what `ferry plan` printed.
 */
import { spawn } from 'node:child_process';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError, InternalError, RemoteError } from '../errors.js';
import type { StepOutputs } from '../run/journal.js';
import type { Json } from '../run/redact.js';
import type { RunContext, StepTask } from '../run/runner.js';
import type { Connections, Remote, RunResult } from '../ssh/connection.js';
import { canReach, direct } from '../ssh/direct.js';
import { quote } from '../ssh/quote.js';
import { relay, type TransferResult } from '../ssh/relay.js';
import type { Manifest } from './manifest.js';
import type { PlanContext, PlannedAction, Route } from './types.js';

/** What the command shares with every step of a run. */
export interface Shared {
  connections: Connections;
  /** Host pairs already probed for the direct route: "from→to" → reachable. */
  reach: Map<string, boolean>;
}

export type RemoteAction = Extract<PlannedAction, { kind: 'remote' }>;
export type LocalAction = Extract<PlannedAction, { kind: 'local' }>;
export type StreamAction = Extract<PlannedAction, { kind: 'stream' }>;

/** Values for `<placeholders>`; each is quoted when bound. */
export type Vars = Readonly<Record<string, string>>;

/** Options of {@link TaskRuntime.exec}. */
export interface ExecOptions {
  stdin?: string | Buffer;
  /** Exit codes that count as success (default [0]). */
  allowCodes?: number[];
  timeoutMs?: number;
}

/** The means a task's `run` works with. */
export interface TaskRuntime<P = unknown> {
  readonly ctx: PlanContext<P>;
  /** This step's planned actions, in order (with placeholders). */
  readonly actions: PlannedAction[];
  /** The runner's handle: log, progress, warn, hostState, skip. */
  readonly task: StepTask;
  /** Outputs of earlier steps (replayed on --resume). */
  readonly run: RunContext<Shared>;
  /** The pooled connection to an inventory host. */
  remote(host: string): Promise<Remote>;
  /** Runs a planned remote or local action with `vars` bound; rejects on failure. */
  exec(action: RemoteAction | LocalAction, vars?: Vars, opts?: ExecOptions): Promise<RunResult>;
  /** Runs a planned stream (route decided here: direct when the hosts reach each other). */
  stream(action: StreamAction, vars?: Vars): Promise<TransferResult>;
  /**
   * The route `stream` will take for `action` (probed once per host pair and
   * remembered): lets a task probe it alongside its other checks.
   */
  routeOf(action: StreamAction): Promise<'direct' | 'relay' | 'controller'>;
  /** The manifest of this run (from the `inventory` step, or the archive's). */
  manifest(): Manifest;
  /** Finds this step's action whose command contains `marker` (throws if none: a plan bug). */
  action<K extends PlannedAction['kind']>(
    kind: K,
    marker: string,
  ): Extract<PlannedAction, { kind: K }>;
}

/** A task's implementation. Returns outputs later steps need (journalled). */
export type TaskRun<P = unknown> = (rt: TaskRuntime<P>) => Promise<StepOutputs | undefined>;

const PLACEHOLDER = /<([a-z][a-z0-9-]*)>/g;

/**
 * Replaces each `<name>` of `command` by the quoted value of `vars[name]`.
 * A `<name>` that `vars` lacks is left alone only when it cannot be a
 * placeholder the plan made; one that is missing from `vars` but appears in
 * `required` is a bug, reported rather than sent to a shell.
 */
export function bind(command: string, vars: Vars = {}): string {
  const out = command.replace(PLACEHOLDER, (whole, name: string) =>
    Object.hasOwn(vars, name) ? quote(vars[name]!) : whole,
  );
  const left = [...out.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  const unbound = left.filter((n) => PLACEHOLDERS.has(n));
  if (unbound.length > 0) {
    throw new InternalError(
      `a planned command still holds <${unbound.join('>, <')}> at run time: ${command}`,
    );
  }
  return out;
}

/** Placeholder names the tasks use (anything else in <…> is left as is). */
const PLACEHOLDERS = new Set([
  'app',
  'service',
  'plugin',
  'network',
  'repo',
  'link',
  'archive',
  'archive-dir',
  'image',
  'source',
  'url',
  'remote',
  'path',
  'sha',
  'host',
  'port',
  'vhost',
  'method',
]);

/** Builds the runtime for one step. */
export function createRuntime<P>(fields: {
  ctx: PlanContext<P>;
  actions: PlannedAction[];
  task: StepTask;
  run: RunContext<Shared>;
  manifestStep?: string;
}): TaskRuntime<P> {
  const { run, task } = fields;
  const shared = run.shared;
  const remote = (host: string) => shared.connections.get(host);
  const rt: TaskRuntime<P> = {
    ctx: fields.ctx,
    actions: fields.actions,
    task,
    run,
    remote,
    async exec(action, vars = {}, opts = {}) {
      const command = bind(action.command, vars);
      if (action.kind === 'local') return runLocal(command, opts);
      const r = await remote(action.host);
      return r.run(command, {
        step: task.stepId,
        ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
        ...(opts.allowCodes ? { allowCodes: opts.allowCodes } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      });
    },
    async stream(action, vars = {}) {
      const send = bind(action.send, vars);
      const receive = bind(action.receive, vars);
      const onProgress = (bytes: number) => task.progress(bytes);
      const common = { onProgress, step: task.stepId, signal: task.signal };
      if (action.from === 'controller' || action.to === 'controller') {
        return controllerStream(action, send, receive, remote, common);
      }
      const [from, to] = await Promise.all([remote(action.from), remote(action.to)]);
      const route = await chooseRoute(shared, action.route, from, to);
      task.log(`route: ${route} (${action.from} → ${action.to})`);
      return route === 'direct'
        ? direct(from, send, to, receive, { ...common, counted: action.counts === true })
        : relay(from, send, to, receive, common);
    },
    async routeOf(action) {
      if (action.from === 'controller' || action.to === 'controller') return 'controller';
      const [from, to] = await Promise.all([remote(action.from), remote(action.to)]);
      return chooseRoute(shared, action.route, from, to);
    },
    manifest() {
      // The inventory step's, else the one an archive brought (restore, drill).
      const step = fields.manifestStep ?? 'inventory';
      const m =
        (run.outputs[step]?.manifest as Json | undefined) ??
        Object.values(run.outputs).find((o) => o.manifest !== undefined)?.manifest;
      if (!m || typeof m !== 'object') {
        throw new InternalError(`no earlier step left a manifest for ${task.stepId}`);
      }
      return m as unknown as Manifest;
    },
    action(kind, marker) {
      const found = fields.actions.find(
        (a) =>
          a.kind === kind &&
          (a.kind === 'stream'
            ? a.send.includes(marker) || a.receive.includes(marker)
            : a.command.includes(marker)),
      );
      if (!found)
        throw new InternalError(`${task.stepId}: no planned ${kind} action with "${marker}"`);
      return found as Extract<PlannedAction, { kind: typeof kind }>;
    },
  };
  return rt;
}

async function chooseRoute(
  shared: Shared,
  route: Route,
  from: Remote,
  to: Remote,
): Promise<'direct' | 'relay'> {
  if (route === 'relay') return 'relay';
  const key = `${from.host.name}→${to.host.name}`;
  let ok = shared.reach.get(key);
  if (ok === undefined) {
    ok = await canReach(to, from);
    shared.reach.set(key, ok);
  }
  if (!ok && route === 'direct') {
    throw new FerryError(
      `${to.host.name} cannot reach ${from.host.name} (${from.host.address}:${from.host.port}) for the direct route`,
      { hint: 'Use --route relay to carry the data through this machine.' },
    );
  }
  return ok ? 'direct' : 'relay';
}

/**
 * A stream with this machine at one end: an archive here sent to a host
 * (restore), or a host's archive fetched here (backup --fetch). The local
 * command's stdio is piped, so nothing is held in memory.
 */
async function controllerStream(
  action: StreamAction,
  send: string,
  receive: string,
  remote: (host: string) => Promise<Remote>,
  opts: { onProgress: (bytes: number) => void; step: string; signal: AbortSignal },
): Promise<TransferResult> {
  const started = Date.now();
  const fromHere = action.from === 'controller';
  const r = await remote(fromHere ? action.to : action.from);
  // The remote end first: a local child that ran (and ended) while the channel
  // opened lost its output to the pipe here (seen: 0 bytes arrived).
  const proc = await r.spawn(fromHere ? receive : send, { step: opts.step });
  const local = spawn('bash', ['-c', `set -euo pipefail\n${fromHere ? send : receive}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let localErr = '';
  local.stderr.on('data', (d: Buffer) => {
    localErr += d.toString();
  });
  const localDone = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    local.on('close', (code, signal) => resolve({ code, signal })),
  );
  const abort = () => {
    proc.kill();
    local.kill();
  };
  opts.signal.addEventListener('abort', abort, { once: true });
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      opts.onProgress(bytes);
      cb(null, chunk);
    },
  });
  let output = '';
  try {
    if (fromHere) {
      local.stdin.end();
      proc.stdout.on('data', (d: Buffer) => {
        output = (output + d.toString()).slice(-65536);
      });
      await pipeline(local.stdout, counter, proc.stdin);
    } else {
      proc.stdin.end();
      local.stdout.on('data', (d: Buffer) => {
        output = (output + d.toString()).slice(-65536);
      });
      await pipeline(proc.stdout, counter, local.stdin);
    }
    const [remoteStatus, localStatus] = await Promise.all([proc.done, localDone]);
    if (localStatus.code !== 0) {
      throw new RemoteError({
        host: 'controller',
        command: fromHere ? send : receive,
        code: localStatus.code,
        signal: localStatus.signal,
        stdout: '',
        stderr: localErr,
      });
    }
    const [fromStatus, toStatus] = fromHere
      ? [localStatus, remoteStatus]
      : [remoteStatus, localStatus];
    return {
      route: 'relay',
      bytes,
      seconds: (Date.now() - started) / 1000,
      from: fromStatus,
      to: toStatus,
      output,
    };
  } catch (e) {
    abort();
    throw e;
  } finally {
    opts.signal.removeEventListener('abort', abort);
  }
}

/** Runs a command here (git on the user's clones); rejects like a remote one. */
export function runLocal(command: string, opts: ExecOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // Without input, stdin is closed: git's ssh must never sit waiting for an answer.
    const child = spawn('bash', ['-c', `set -euo pipefail\n${command}`], {
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const allowed = opts.allowCodes ?? [0];
      if (code !== null && allowed.includes(code)) resolve({ stdout, stderr, code });
      else reject(new RemoteError({ host: 'controller', command, code, signal, stdout, stderr }));
    });
    if (child.stdin) {
      // A command that exits before reading its input must not crash us with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.stdin);
    }
  });
}

/** The default `run`: carries out every action in order; forEach actions need their items planned. */
export async function runActions(rt: TaskRuntime): Promise<undefined> {
  for (const a of rt.actions) {
    if (a.kind === 'stream') {
      await rt.stream(a);
      continue;
    }
    if (a.forEach && !a.items) {
      throw new InternalError(
        `${rt.task.stepId}: a per-${a.forEach} action needs the task's own run`,
      );
    }
    const items = a.forEach ? (a.items ?? []) : [undefined];
    for (const item of items) {
      await rt.exec(a, item === undefined || !a.forEach ? {} : { [a.forEach]: item });
    }
  }
  return undefined;
}
