/**
 * A fake TaskRuntime for the target-side tasks' unit tests: commands are bound
 * with the real `bind` (so quoting is what runs), answered by scripted rules,
 * and recorded; streams are recorded and answered without any host.
 */
import { RemoteError } from '../../src/errors.js';
import { type Inventory, validateInventory } from '../../src/inventory/index.js';
import type { StepTask } from '../../src/run/runner.js';
import type { Manifest } from '../../src/tasks/manifest.js';
import { bind, type TaskRuntime } from '../../src/tasks/runtime.js';
import type { PlanContext, PlannedAction } from '../../src/tasks/types.js';

/** The inventory the target-side tests plan against: hosts old and new, backups in /srv/ferry. */
export function targetInventory(): Inventory {
  return validateInventory(
    `version: 1
hosts:
  old: {address: 192.0.2.10}
  new: {address: 192.0.2.20}
backup:
  dir: /srv/ferry
  keep: 3
`,
    '/tmp/inv.yml',
    { home: '/home/u', fileExists: () => true },
  );
}

/** One scripted answer: the first rule whose `match` is in the bound command answers. */
export interface Rule {
  host?: string;
  match: string;
  code?: number;
  stdout?: string;
}

/** What the fake saw. */
export interface Seen {
  execs: { host: string; command: string; stdin?: string }[];
  streams: { from: string; to: string; send: string; receive: string }[];
  warnings: string[];
  hostStates: string[];
  logs: string[];
}

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

export function fakeRuntime<P>(
  ctx: PlanContext<P>,
  actions: PlannedAction[],
  rules: Rule[],
  manifest: Manifest,
): { rt: TaskRuntime<P>; seen: Seen } {
  const seen: Seen = { execs: [], streams: [], warnings: [], hostStates: [], logs: [] };
  const controller = new AbortController();
  const task: StepTask = {
    stepId: ctx.step.id,
    host: ctx.host?.name ?? 'controller',
    attempt: 1,
    signal: controller.signal,
    setTitle() {},
    log(line) {
      seen.logs.push(line);
    },
    progress() {},
    skip() {},
    warn(message) {
      seen.warnings.push(message);
    },
    hostState(host, note) {
      seen.hostStates.push(`${host}: ${note}`);
    },
  };
  const rt: TaskRuntime<P> = {
    ctx,
    actions,
    task,
    run: {
      runId: 'r',
      shared: { connections: undefined as never, reach: new Map() },
      outputs: {},
      signal: controller.signal,
    } as unknown as TaskRuntime<P>['run'],
    remote: () => Promise.reject(new Error('no hosts in unit tests')),
    async exec(action, vars = {}, opts = {}) {
      const command = bind(action.command, vars);
      const host = action.kind === 'remote' ? action.host : 'controller';
      seen.execs.push({
        host,
        command,
        ...(opts.stdin === undefined ? {} : { stdin: String(opts.stdin) }),
      });
      const rule = rules.find(
        (r) => command.includes(r.match) && (r.host === undefined || r.host === host),
      );
      const code = rule?.code ?? 0;
      const stdout = rule?.stdout ?? '';
      if (!(opts.allowCodes ?? [0]).includes(code)) {
        throw new RemoteError({ host, command, code, stdout, stderr: 'scripted failure' });
      }
      return { stdout, stderr: '', code };
    },
    async stream(action, vars = {}) {
      const s = {
        from: action.from,
        to: action.to,
        send: bind(action.send, vars),
        receive: bind(action.receive, vars),
      };
      seen.streams.push(s);
      const st = { code: 0, signal: null };
      return { route: 'relay', bytes: 1000, seconds: 1, from: st, to: st, output: '' };
    },
    async routeOf(action) {
      return action.from === 'controller' || action.to === 'controller' ? 'controller' : 'relay';
    },
    manifest: () => manifest,
    action(kind, marker) {
      const found = actions.find(
        (a) =>
          a.kind === kind &&
          (a.kind === 'stream'
            ? a.send.includes(marker) || a.receive.includes(marker)
            : a.command.includes(marker)),
      );
      if (!found) throw new Error(`no planned ${kind} action with "${marker}"`);
      return found as never;
    },
  };
  return { rt, seen };
}
