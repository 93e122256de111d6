/**
 * The runtime a task's `run` works with (the interface is in
 * src/tasks/types.ts): the step's planned actions, looked up by id, their
 * holes bound to run-time values, and carried out by an {@link Executor}.
 * The executor is the seam to the world: over SSH for a real run
 * ({@link sshExecutor}), a recording fake in the task tests.
 */

import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError, InternalError } from '../errors.js';
import { canReach, direct } from '../ssh/direct.js';
import { duplexDirect, duplexRelay } from '../ssh/duplex.js';
import type { HostKey } from '../ssh/host-keys.js';
import type { Connections } from '../ssh/pool.js';
import { relay } from '../ssh/relay.js';
import type { Remote } from '../ssh/remote.js';
import type { Bindings, Command } from '../ssh/shell.js';
import { latestManifest } from '../tasks/manifest.js';
import type {
  ActionSpec,
  CommandResult,
  ExecOptions,
  JournalView,
  LocalAction,
  PlanContext,
  PlannedAction,
  RemoteAction,
  Route,
  StepHandle,
  StepOutputs,
  StreamAction,
  StreamOptions,
  StreamResult,
  TaskRuntime,
} from '../tasks/types.js';
import { once } from '../util/concurrency.js';
import { Tail } from '../util/tail.js';
import { runLocal, spawnLocal } from './local.js';

/** What carries out a bound action. */
export interface Executor {
  /** Runs a remote or local action's bound command. */
  exec(req: {
    action: RemoteAction | LocalAction;
    /** The command with its holes bound to `vars`. */
    command: Command;
    vars: Bindings;
    step: string;
    opts: ExecOptions;
  }): Promise<CommandResult>;
  /** Runs a stream's bound commands. */
  stream(req: {
    action: StreamAction;
    send: Command;
    receive: Command;
    vars: Bindings;
    step: string;
    signal: AbortSignal;
    onProgress: (bytes: number) => void;
    /** A sentence for the report: what the stream could not clean up (a key left on a host). */
    warn?: (message: string) => void;
  }): Promise<StreamResult>;
  /** The route a stream takes between its hosts. */
  routeOf(action: StreamAction): Promise<'direct' | 'relay' | 'controller'>;
  /** The host key verified when connecting to `host`. */
  hostKey(host: string): Promise<{ key: HostKey; trust: string }>;
}

/** Everything one step's runtime needs. */
export interface RuntimeFields<P> {
  ctx: PlanContext<P>;
  actions: readonly PlannedAction[];
  task: StepHandle;
  outputs: Readonly<Record<string, StepOutputs>>;
  executor: Executor;
  /** This run's journal so far (drill-report reads the restore's step times). */
  journal?: () => JournalView[];
}

/** Every planned action of a step, fallbacks included. */
export function allActions(actions: readonly PlannedAction[]): PlannedAction[] {
  return actions.flatMap((a) => [a, ...allActions(a.kind === 'stream' ? [] : (a.fallback ?? []))]);
}

/** Binds the holes a command has among `vars`; a hole left open throws when rendered. */
function bindSome(cmd: Command, vars: Bindings): Command {
  const open = new Set(cmd.holes());
  return cmd.bind(Object.fromEntries(Object.entries(vars).filter(([k]) => open.has(k))));
}

/** Builds the runtime for one step. */
export function createRuntime<P, A extends ActionSpec = ActionSpec>(
  fields: RuntimeFields<P>,
): TaskRuntime<P, A> {
  const { task, executor } = fields;
  const all = allActions(fields.actions);
  const find = (id: string, item?: string): PlannedAction | undefined => {
    const found = all.filter((a) => a.id === id && (item === undefined || a.item === item));
    // One id planned for several items: the caller must say which (a forgotten item is a bug).
    if (item === undefined && new Set(found.map((a) => a.item)).size > 1) {
      throw new InternalError(
        `${task.stepId}: "${id}" is planned for ${found.map((a) => a.item).join(', ')}: name the item`,
      );
    }
    return found[0];
  };
  const need = (id: string, item?: string): PlannedAction => {
    const a = find(id, item);
    if (!a) {
      throw new InternalError(
        `${task.stepId}: no planned action "${id}"${item === undefined ? '' : ` for ${item}`}`,
      );
    }
    return a;
  };
  const rt: TaskRuntime<P, A> = {
    ctx: fields.ctx,
    actions: fields.actions,
    task,
    outputs: fields.outputs,
    has: (id, item) => find(id, item) !== undefined,
    action: (id, item) => need(id, item),
    async exec(id, ...[vars, opts]) {
      const a = need(id, opts?.item);
      if (a.kind === 'stream') throw new InternalError(`${task.stepId}: "${id}" is a stream`);
      const b = (vars ?? {}) as Bindings;
      // The step's signal (^C) stops every command it runs, not only its streams; but
      // not a clean-up planned for a failure (`only`): that one must run after a ^C.
      const own = a.only === undefined ? [task.signal] : [];
      const signals = [...own, ...(opts?.signal ? [opts.signal] : [])];
      const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
      return executor.exec({
        action: a,
        command: bindSome(a.command, b),
        vars: b,
        step: task.stepId,
        opts: { ...opts, ...(signal ? { signal } : {}) },
      });
    },
    async stream(id, ...[vars, opts]) {
      const a = need(id, (opts as StreamOptions | undefined)?.item);
      if (a.kind !== 'stream') throw new InternalError(`${task.stepId}: "${id}" is not a stream`);
      const total = (opts as StreamOptions | undefined)?.total;
      const b = (vars ?? {}) as Bindings;
      return executor.stream({
        action: a,
        send: bindSome(a.send, b),
        receive: bindSome(a.receive, b),
        vars: b,
        step: task.stepId,
        signal: task.signal,
        onProgress: (bytes) => task.progress(bytes, total),
        warn: (message) => task.warn(message),
      });
    },
    async routeOf(id, item) {
      const a = need(id, item);
      if (a.kind !== 'stream') throw new InternalError(`${task.stepId}: "${id}" is not a stream`);
      return executor.routeOf(a);
    },
    manifest() {
      // The last one an earlier step left: the inventory's or an archive's, then select's, rename's.
      const m = latestManifest(fields.outputs);
      if (!m) throw new InternalError(`no earlier step left a manifest for ${task.stepId}`);
      return m;
    },
    hostKey: (host) => executor.hostKey(host),
    journal: () => fields.journal?.() ?? [],
  };
  return rt;
}

/** What a real run shares between its steps' executors. */
export interface SshShared {
  connections: Connections;
  /** Host pairs probed for the direct route: "from→to" → reachable (streams started together share one probe). */
  reach: Map<string, Promise<boolean>>;
}

/** The executor of a real run: remote actions over the pooled SSH connections, local ones here. */
export function sshExecutor(shared: SshShared): Executor {
  // A connect to a host that never answers its handshake takes its whole timeout:
  // a stopped step (^C, a failed sibling) must not wait for it.
  const remote = (host: string, signal?: AbortSignal) =>
    untilAborted(shared.connections.get(host), signal);
  const route = async (action: StreamAction): Promise<'direct' | 'relay' | 'controller'> => {
    if (action.from === 'controller' || action.to === 'controller') return 'controller';
    const [from, to] = await Promise.all([remote(action.from), remote(action.to)]);
    return chooseRoute(shared, action.route, from, to);
  };
  return {
    async exec({ action, command, step, opts }) {
      if (action.kind === 'local') {
        return runLocal(command, {
          ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
          ...(opts.allowCodes ? { allowCodes: opts.allowCodes } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      }
      let r = await remote(action.host, opts.signal);
      // A clean-up planned for a failure runs over a new connection when the step's is gone.
      if (!r.connected && action.only !== undefined)
        r = await shared.connections.fresh(action.host);
      return r.run(command, {
        step,
        ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
        ...(opts.allowCodes ? { allowCodes: opts.allowCodes } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    },
    async stream({ action, send, receive, step, signal, onProgress, warn }) {
      const common = { onProgress, step, signal };
      if (action.from === 'controller' || action.to === 'controller') {
        return controllerStream(action, send, receive, (h) => remote(h, signal), common);
      }
      const [from, to] = await Promise.all([
        remote(action.from, signal),
        remote(action.to, signal),
      ]);
      const how = await chooseRoute(shared, action.route, from, to);
      if (action.duplex) {
        return how === 'direct'
          ? duplexDirect(from, send, to, receive, common)
          : duplexRelay(from, send, to, receive, common);
      }
      if (how === 'direct') {
        return direct(from, send, to, receive, {
          ...common,
          counted: action.counts === true,
          reconnect: (h) => shared.connections.fresh(h),
          ...(warn ? { onLeftover: warn } : {}),
        });
      }
      const r = await relay(from, send, to, receive, common);
      const why = action.route === 'auto' ? relayReason(from, to) : undefined;
      return why ? { ...r, why } : r;
    },
    routeOf: route,
    async hostKey(host) {
      const r = await remote(host);
      return { key: r.hostKey, trust: r.hostKeyTrust };
    },
  };
}

/** `p`, or a rejection as soon as `signal` aborts (`p` itself goes on; its result is dropped). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(stopped(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(stopped(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** The error of a step stopped while it waited: the reason it was stopped with. */
function stopped(signal: AbortSignal): unknown {
  return signal.reason instanceof Error ? signal.reason : new FerryError('stopped');
}

async function chooseRoute(
  shared: SshShared,
  route: Route,
  from: Remote,
  to: Remote,
): Promise<'direct' | 'relay'> {
  if (route === 'relay') return 'relay';
  const key = `${from.host.name}→${to.host.name}`;
  const ok = await once(shared.reach, key, () => canReach(to, from));
  if (!ok && route === 'direct') {
    throw new FerryError(
      `${to.host.name} cannot reach ${from.host.name} (${from.host.address}:${from.host.port}) for the direct route`,
      { hint: `${bastionNote(from)}Use --route relay to carry the data through this machine.` },
    );
  }
  return ok ? 'direct' : 'relay';
}

/** Why an `auto` stream went through this machine (the hosts do not reach each other). */
function relayReason(from: Remote, to: Remote): string {
  return `through this machine: ${to.host.name} cannot reach ${from.host.address}:${from.host.port}. ${bastionNote(from)}`.trim();
}

/**
 * Why a pull does not go through the bastions ferry itself passes: the
 * target would have to log in to each of them, which takes either agent
 * forwarding (a host could use the user's keys) or a key of ferry's in each
 * bastion's authorized_keys (a change on machines ferry only passes through,
 * often without a shell there); the relay needs neither.
 */
function bastionNote(from: Remote): string {
  const hops = from.host.jump ?? [];
  if (hops.length === 0) return '';
  return `${from.host.name} is reached through ${hops.map((h) => h.address).join(', ')} (ProxyJump); a pull is not routed through bastions, which would need the user's keys forwarded or a key of ferry's on each bastion. `;
}

function isPrematureClose(e: unknown): boolean {
  return (e as { code?: string } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** Whether both ends exit 0 within a few seconds (a stuck one counts as not). */
async function bothEndedWell(...ends: Promise<unknown>[]): Promise<boolean> {
  const ok = Promise.all(ends).then(
    () => true,
    () => false,
  );
  const late = new Promise<boolean>((r) => setTimeout(() => r(false), 3000).unref());
  return Promise.race([ok, late]);
}

/**
 * A stream with this machine at one end: an archive here sent to a host
 * (restore), or a host's archive fetched here (backup --fetch). The local
 * command's stdio is piped, so nothing is held in memory.
 */
export async function controllerStream(
  action: StreamAction,
  send: Command,
  receive: Command,
  remote: (host: string) => Promise<Remote>,
  opts: { onProgress: (bytes: number) => void; step: string; signal: AbortSignal },
): Promise<StreamResult> {
  const started = Date.now();
  const fromHere = action.from === 'controller';
  const r = await remote(fromHere ? action.to : action.from);
  // The remote end first: a local child that ran (and ended) while the channel
  // opened lost its output to the pipe here (seen: 0 bytes arrived).
  const proc = await r.spawn(fromHere ? receive : send, { step: opts.step });
  const local = spawnLocal(fromHere ? send : receive);
  const abort = () => {
    void proc.kill();
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
  const output = new Tail();
  // Which end failed first is the story ("zstd: Corrupted block"); the pipe's own
  // "Premature close" and the other end's broken pipe are its consequences.
  let first: unknown;
  const note = (e: unknown) => {
    first ??= e;
  };
  proc.done.catch(note);
  local.done.catch(note);
  const result = (): StreamResult => ({
    route: 'relay',
    bytes,
    seconds: (Date.now() - started) / 1000,
    output: output.text(),
  });
  try {
    try {
      if (fromHere) {
        local.stdin.end();
        output.collect(proc.stdout);
        await pipeline(local.stdout, counter, proc.stdin);
      } else {
        proc.stdin.end();
        output.collect(local.stdout);
        await pipeline(proc.stdout, counter, local.stdin);
      }
    } catch (e) {
      // A receiver may end as soon as it has what it needs (tar -x at its end-of-archive
      // blocks, before the record's padding or the channel's EOF arrive): the pipe then
      // closes early though both ends did their work. Their exit statuses decide.
      if (!isPrematureClose(e) || !(await bothEndedWell(proc.done, local.done))) throw e;
      return result();
    }
    await Promise.all([proc.done, local.done]);
    return result();
  } catch (e) {
    abort();
    // Both ends end quickly once stopped; their errors say more than the pipe's.
    await Promise.race([
      Promise.allSettled([proc.done, local.done]),
      new Promise((r) => setTimeout(r, 2000).unref()),
    ]);
    throw opts.signal.aborted ? e : (first ?? e);
  } finally {
    opts.signal.removeEventListener('abort', abort);
  }
}
