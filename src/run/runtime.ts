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
import type { Manifest } from '../tasks/manifest.js';
import type {
  ActionSpec,
  CommandResult,
  ExecOptions,
  JournalView,
  Json,
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
      return executor.exec({
        action: a,
        command: bindSome(a.command, b),
        vars: b,
        step: task.stepId,
        opts: opts ?? {},
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
      });
    },
    async routeOf(id, item) {
      const a = need(id, item);
      if (a.kind !== 'stream') throw new InternalError(`${task.stepId}: "${id}" is not a stream`);
      return executor.routeOf(a);
    },
    manifest() {
      // The inventory step's, else the one an archive brought (restore, drill).
      const m =
        (fields.outputs.inventory?.manifest as Json | undefined) ??
        Object.values(fields.outputs).find((o) => o.manifest !== undefined)?.manifest;
      if (!m || typeof m !== 'object') {
        throw new InternalError(`no earlier step left a manifest for ${task.stepId}`);
      }
      return m as unknown as Manifest;
    },
    hostKey: (host) => executor.hostKey(host),
    journal: () => fields.journal?.() ?? [],
  };
  return rt;
}

/** What a real run shares between its steps' executors. */
export interface SshShared {
  connections: Connections;
  /** Host pairs already probed for the direct route: "from→to" → reachable. */
  reach: Map<string, boolean>;
}

/** The executor of a real run: remote actions over the pooled SSH connections, local ones here. */
export function sshExecutor(shared: SshShared): Executor {
  const remote = (host: string) => shared.connections.get(host);
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
        });
      }
      const r = await remote(action.host);
      return r.run(command, {
        step,
        ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
        ...(opts.allowCodes ? { allowCodes: opts.allowCodes } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      });
    },
    async stream({ action, send, receive, step, signal, onProgress }) {
      const common = { onProgress, step, signal };
      if (action.from === 'controller' || action.to === 'controller') {
        return controllerStream(action, send, receive, remote, common);
      }
      const [from, to] = await Promise.all([remote(action.from), remote(action.to)]);
      const how = await chooseRoute(shared, action.route, from, to);
      if (action.duplex) {
        return how === 'direct'
          ? duplexDirect(from, send, to, receive, common)
          : duplexRelay(from, send, to, receive, common);
      }
      return how === 'direct'
        ? direct(from, send, to, receive, { ...common, counted: action.counts === true })
        : relay(from, send, to, receive, common);
    },
    routeOf: route,
    async hostKey(host) {
      const r = await remote(host);
      return { key: r.hostKey, trust: r.hostKeyTrust };
    },
  };
}

async function chooseRoute(
  shared: SshShared,
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
    await Promise.all([proc.done, local.done]);
    return {
      route: 'relay',
      bytes,
      seconds: (Date.now() - started) / 1000,
      output: output.text(),
    };
  } catch (e) {
    abort();
    throw e;
  } finally {
    opts.signal.removeEventListener('abort', abort);
  }
}
