/**
 * The one fake for the task tests: the REAL runtime (action lookup by id,
 * hole binding, quoting) over a fake executor that answers each action by its
 * id (and item) and records the exact command line a host would have got.
 * Tests script answers by id and assert on decisions and on recorded commands.
 */
import { LocalError, RemoteError } from '../../src/errors.js';
import { type Inventory, validateInventory } from '../../src/inventory/index.js';
import { type Plan, plan } from '../../src/plan/index.js';
import { loadPlaybook } from '../../src/playbook/index.js';
import { createRuntime, type Executor } from '../../src/run/runtime.js';
import type { HostKey } from '../../src/ssh/host-keys.js';
import { getTask } from '../../src/tasks/index.js';
import type { Manifest } from '../../src/tasks/manifest.js';
import type {
  JournalView,
  PlanContext,
  PlannedAction,
  StepHandle,
  StepOutputs,
  TaskDefinition,
} from '../../src/tasks/types.js';

/** One command the fake was asked to run. */
export interface Call {
  id: string;
  item?: string;
  kind: 'remote' | 'local' | 'stream';
  /** The host it ran on (`controller` for local actions; the receiving host for streams). */
  host: string;
  /** The bound command line (for a stream: `send | receive`). */
  command: string;
  /** The values bound into its holes (`{ app: 'api' }`). */
  vars: Readonly<Record<string, string>>;
  stdin?: string;
  /** The time limit the task gave it. */
  timeoutMs?: number;
}

/** What an action answers. A code not allowed by the caller makes it fail as a host would. */
export interface Answer {
  code?: number;
  stdout?: string;
  stderr?: string;
  /** A stream's output (what its receiving command printed). */
  output?: string;
  /** Ends it without an exit code, as a host reports a kill or a time limit (`its N ms timeout`). */
  signal?: string;
}

/**
 * Answers by action id, or by `id item` when the same id runs for several items.
 * A function may answer later (a promise) and sees the signal the command ran with.
 */
export type Answers = Record<
  string,
  Answer | ((call: Call, signal?: AbortSignal) => Answer | Promise<Answer>)
>;

/** What the step did, for assertions. */
export interface Seen {
  calls: Call[];
  logs: string[];
  warnings: string[];
  /** `host: note`. */
  states: string[];
  titles: string[];
  skipped?: string;
}

function answerFor(answers: Answers, call: Call, signal?: AbortSignal): Answer | Promise<Answer> {
  const a =
    (call.item !== undefined ? answers[`${call.id} ${call.item}`] : undefined) ?? answers[call.id];
  if (a === undefined) return {};
  return typeof a === 'function' ? a(call, signal) : a;
}

/** An executor that records calls and answers them from `answers`. */
export function fakeExecutor(
  answers: Answers,
  seen: Seen,
  hostKey?: { key: HostKey; trust: string },
): Executor {
  return {
    async exec({ action, command, vars, opts }) {
      const call: Call = {
        id: action.id,
        ...(action.item === undefined ? {} : { item: action.item }),
        kind: action.kind,
        host: action.kind === 'remote' ? action.host : 'controller',
        command: command.render(),
        vars,
        ...(opts.stdin === undefined ? {} : { stdin: String(opts.stdin) }),
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      };
      seen.calls.push(call);
      const a = await answerFor(answers, call, opts.signal);
      const out = { stdout: a.stdout ?? '', stderr: a.stderr ?? '', code: a.code ?? 0 };
      if (a.signal !== undefined) {
        throw new RemoteError({
          host: call.host,
          ...out,
          command: call.command,
          code: null,
          signal: a.signal,
        });
      }
      if (!(opts.allowCodes ?? [0]).includes(out.code)) {
        if (action.kind === 'local') {
          throw new LocalError({ command: call.command, code: out.code, stderr: out.stderr });
        }
        throw new RemoteError({ host: call.host, command: call.command, ...out });
      }
      return out;
    },
    async stream({ action, send, receive, vars }) {
      const call: Call = {
        id: action.id,
        ...(action.item === undefined ? {} : { item: action.item }),
        kind: 'stream',
        host: action.to,
        command: `${send.render()} | ${receive.render()}`,
        vars,
      };
      seen.calls.push(call);
      const a = await answerFor(answers, call);
      if ((a.code ?? 0) !== 0) {
        throw new RemoteError({
          host: action.to,
          command: receive.render(),
          code: a.code ?? 1,
          stdout: '',
          stderr: a.stderr ?? 'scripted failure',
        });
      }
      return {
        route: 'relay',
        bytes: Number(a.stdout ?? 1000) || 1000,
        seconds: 1,
        output: a.output ?? '',
      };
    },
    async routeOf(action) {
      return action.from === 'controller' || action.to === 'controller' ? 'controller' : 'relay';
    },
    async hostKey(host) {
      if (!hostKey) throw new Error(`no host key scripted for ${host}`);
      return hostKey;
    },
  };
}

/** A step handle that records what the step says. */
export function fakeHandle(stepId: string, host: string, seen: Seen): StepHandle {
  return {
    stepId,
    host,
    attempt: 1,
    signal: new AbortController().signal,
    setTitle: (t) => seen.titles.push(t),
    log: (l) => seen.logs.push(l),
    progress: () => {},
    skip: (reason) => {
      seen.skipped = reason;
    },
    warn: (w) => seen.warnings.push(w),
    hostState: (h, n) => seen.states.push(`${h}: ${n}`),
  };
}

/** Runs one task's `run` over its planned actions; never throws (the error is returned). */
export async function runTask<P>(
  def: TaskDefinition<P>,
  ctx: PlanContext<P>,
  opts: {
    answers?: Answers;
    actions?: PlannedAction[];
    manifest?: Manifest;
    outputs?: Record<string, StepOutputs>;
    hostKey?: { key: HostKey; trust: string };
    journal?: JournalView[];
  } = {},
): Promise<{ result: StepOutputs | undefined; error?: unknown; seen: Seen }> {
  const seen: Seen = { calls: [], logs: [], warnings: [], states: [], titles: [] };
  const outputs: Record<string, StepOutputs> = {
    ...(opts.manifest ? { inventory: { manifest: opts.manifest as never } } : {}),
    ...(opts.outputs ?? {}),
  };
  const rt = createRuntime<P>({
    ctx,
    actions: opts.actions ?? def.plan(ctx),
    task: fakeHandle(ctx.step.id, ctx.host?.name ?? 'controller', seen),
    outputs,
    executor: fakeExecutor(opts.answers ?? {}, seen, opts.hostKey),
    journal: () => opts.journal ?? [],
  });
  try {
    return { result: (await def.run(rt as never)) ?? undefined, seen };
  } catch (error) {
    return { result: undefined, error, seen };
  }
}

/**
 * Plans a shipped playbook against `inventory` and runs one of its steps with
 * the fake: what ran is exactly what `ferry plan` shows for that step.
 */
export async function runPlannedStep(
  playbook: string,
  inventory: Inventory,
  bindings: Record<string, string>,
  stepId: string,
  opts: {
    answers?: Answers;
    options?: Partial<Plan['options']>;
    manifest?: Manifest;
    outputs?: Record<string, StepOutputs>;
  } = {},
): Promise<{ result: StepOutputs | undefined; error?: unknown; seen: Seen }> {
  const pb = await loadPlaybook(playbook);
  const thePlan = plan(pb, inventory, bindings, { runId: '20261123T104500Z', ...opts.options });
  const index = thePlan.steps.findIndex((s) => s.id === stepId);
  const planned = thePlan.steps[index];
  if (!planned) throw new Error(`no step ${stepId} in ${playbook}`);
  const def = getTask(planned.task)!;
  const roles: Record<string, Inventory['hosts'][string] | undefined> = {};
  for (const [role, b] of Object.entries(thePlan.bindings)) roles[role] = inventory.hosts[b.host];
  const ctx: PlanContext<unknown> = {
    step: { id: planned.id, task: planned.task, on: pb.steps[index]!.on, index },
    params: pb.steps[index]!.params,
    host: planned.host === 'controller' ? undefined : inventory.hosts[planned.host],
    roles,
    inventory,
    options: thePlan.options,
  };
  return runTask(def, ctx, {
    actions: planned.actions,
    ...(opts.answers ? { answers: opts.answers } : {}),
    ...(opts.manifest ? { manifest: opts.manifest } : {}),
    ...(opts.outputs ? { outputs: opts.outputs } : {}),
  });
}

/** Hosts old and new (and scratch), backups in /srv/ferry: what the task tests plan against. */
export function taskInventory(extra = ''): Inventory {
  return validateInventory(
    `version: 1
hosts:
  old: {address: 192.0.2.10}
  new: {address: 192.0.2.20}
  scratch: {address: 192.0.2.30}
backup:
  dir: /srv/ferry
  keep: 3
${extra}`,
    '/tmp/inv.yml',
    { home: '/home/u', fileExists: () => true },
  );
}

/** A manifest with defaults for everything the test does not care about. */
export function manifestOf(m: Partial<Manifest> = {}): Manifest {
  return {
    version: 1,
    runId: '20261123T100000Z',
    createdAt: '2026-11-23T10:00:00Z',
    source: { host: 'old', address: '192.0.2.10', dokkuVersion: '0.38.27', arch: 'x86_64' },
    apps: [],
    services: [],
    plugins: [],
    networks: [],
    dataBytes: 0,
    warnings: [],
    ...m,
  };
}

/** The commands of `seen` for one action id, in order. */
export function commandsOf(seen: Seen, id: string): string[] {
  return seen.calls.filter((c) => c.id === id).map((c) => c.command);
}
