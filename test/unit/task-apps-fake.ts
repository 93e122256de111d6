/**
 * A fake runtime for the app-side tasks: the real createRuntime (placeholder
 * binding, action lookup) over a fake connection whose commands are answered
 * by a responder, so the tests see the exact command lines a host would get.
 */
import { RemoteError } from '../../src/errors.js';
import type { Host, Inventory } from '../../src/inventory/index.js';
import type { RunContext, StepTask } from '../../src/run/runner.js';
import type { Connections, Remote, RunResult } from '../../src/ssh/connection.js';
import type { Manifest, ManifestApp } from '../../src/tasks/manifest.js';
import { createRuntime, type Shared, type TaskRuntime } from '../../src/tasks/runtime.js';
import type { PlanContext, TaskDefinition } from '../../src/tasks/types.js';

export type Reply = Partial<RunResult>;
export type Responder = (command: string) => Reply;

export const HOST: Host = {
  name: 'new',
  address: '10.0.0.2',
  port: 22,
  user: 'root',
  identity: '/dev/null',
  known_hosts: '/dev/null',
  sudo: false,
};

export function inventory(order: string[] = []): Inventory {
  return {
    file: '/x/inventory.yml',
    version: 1,
    hosts: { new: HOST },
    apps: { order },
    repos: [],
    backup: { dir: '/var/lib/dokku-ferry/archives', keep: 7 },
  } as Inventory;
}

export function app(name: string, extra: Partial<ManifestApp> = {}): ManifestApp {
  return {
    name,
    method: 'git',
    deploySource: 'git-push',
    deploySourceMetadata: 'abc123',
    deployed: true,
    running: 'true',
    restore: true,
    mounts: [],
    ...extra,
  };
}

export function manifest(apps: ManifestApp[], extra: Partial<Manifest> = {}): Manifest {
  return {
    version: 1,
    runId: '20261123T000000Z',
    createdAt: '2026-11-23T00:00:00.000Z',
    source: { host: 'old', address: '10.0.0.1', dokkuVersion: '0.38.27', arch: 'x86_64' },
    apps,
    services: [],
    plugins: [],
    networks: [],
    dataBytes: 0,
    warnings: [],
    ...extra,
  };
}

export interface Fake {
  rt: TaskRuntime;
  commands: string[];
  logs: string[];
  warnings: string[];
  titles: string[];
  states: string[];
}

export function fakeRuntime<P>(
  def: TaskDefinition<P>,
  params: P,
  m: Manifest,
  respond: Responder,
  inv: Inventory = inventory(),
  remoteExtra: Record<string, unknown> = {},
): Fake {
  const commands: string[] = [];
  const logs: string[] = [];
  const warnings: string[] = [];
  const titles: string[] = [];
  const states: string[] = [];
  const remote = {
    host: { name: HOST.name },
    ...remoteExtra,
    async run(cmd: string, opts: { allowCodes?: number[] } = {}): Promise<RunResult> {
      commands.push(cmd);
      const r = respond(cmd);
      const out = { stdout: r.stdout ?? '', stderr: r.stderr ?? '', code: r.code ?? 0 };
      if (!(opts.allowCodes ?? [0]).includes(out.code)) {
        throw new RemoteError({ host: HOST.name, command: cmd, ...out });
      }
      return out;
    },
  } as unknown as Remote;
  const connections = { get: async () => remote } as unknown as Connections;
  const ctx: PlanContext<P> = {
    step: { id: def.name, task: def.name, on: 'target', index: 0 },
    params,
    host: def.runsOn === 'controller' ? undefined : HOST,
    roles: { target: inv.hosts.new ?? HOST },
    inventory: inv,
    options: { runId: '20261123T010000Z' },
  };
  const task: StepTask = {
    stepId: def.name,
    host: HOST.name,
    attempt: 1,
    signal: new AbortController().signal,
    setTitle: (t) => titles.push(t),
    log: (l) => logs.push(l),
    progress: () => {},
    skip: () => {},
    warn: (w) => warnings.push(w),
    hostState: (_h, n) => states.push(n),
  };
  const run: RunContext<Shared> = {
    runId: '20261123T010000Z-migrate-test',
    shared: { connections, reach: new Map() },
    outputs: { inventory: { manifest: m as never } },
    signal: task.signal,
    need: () => {
      throw new Error('not used');
    },
  };
  const rt = createRuntime({
    ctx: ctx as PlanContext<unknown>,
    actions: def.plan(ctx),
    task,
    run,
  }) as TaskRuntime;
  return { rt, commands, logs, warnings, titles, states };
}

/** `ps:report --format json` as Dokku 0.38 prints it (trimmed keys plus legacy `ps-*`). */
export function psJson(running: 'true' | 'false' | 'mixed', web = true): string {
  const o: Record<string, string> = {
    deployed: 'true',
    processes: web ? '1' : '0',
    restore: 'true',
    running,
    'ps-deployed': 'true',
    'ps-running': running,
  };
  if (web) o['status-web.1'] = running === 'true' ? 'running (CID: 0123456789a)' : 'exited';
  return `${JSON.stringify(o)}\n`;
}
