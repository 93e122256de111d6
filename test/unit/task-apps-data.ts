/**
 * Data for the app-side task tests (rebuild-apps, verify-apps,
 * rewrite-remotes): a target host, an inventory around it, manifest apps,
 * Dokku's `ps:report` JSON, and the context a step of one task runs in.
 */
import type { Host, Inventory } from '../../src/inventory/index.js';
import type { Manifest, ManifestApp } from '../../src/tasks/manifest.js';
import type { PlanContext, TaskPlan } from '../../src/tasks/types.js';
import type { Answer, Call } from './task-fake.js';

/** The target host, `new`. */
export const HOST: Host = {
  name: 'new',
  address: '10.0.0.2',
  port: 22,
  user: 'root',
  identity: '/dev/null',
  known_hosts: '/dev/null',
  sudo: false,
};

/** An inventory of {@link HOST} alone, with `apps.order`. */
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

/** A manifest app deployed by git push and running, unless `extra` says otherwise. */
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

/** A manifest of `apps`. */
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

/** The context of a step of `def` on {@link HOST} (role `target`). */
export function contextOf<P>(
  def: TaskPlan<P>,
  params: P,
  inv: Inventory = inventory(),
): PlanContext<P> {
  return {
    step: { id: def.name, task: def.name, on: 'target', index: 0 },
    params,
    host: def.runsOn === 'controller' ? undefined : HOST,
    roles: { target: inv.hosts.new ?? HOST },
    inventory: inv,
    options: { runId: '20261123T010000Z' },
  };
}

/**
 * Answers one action (planned once, run per app) differently per app: by the
 * exact command line bound for it, which also proves the binding.
 */
export function perCommand(
  map: Record<string, Answer>,
  otherwise: Answer = {},
): (call: Call) => Answer {
  return (call) => map[call.command] ?? otherwise;
}
