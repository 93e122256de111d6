/**
 * Removes what an earlier ferry run could not: a direct transfer's pull key
 * in a source's authorized keys, its private key's temp dir on a target, a
 * checksum FIFO. A run cleans up after itself on every path it survives; this
 * step is for the ones it does not (the controller killed with SIGKILL, a host
 * that went down mid-transfer, a connection that could not be opened again).
 * It runs first in every shipped playbook, again on --resume, on every host
 * the run binds, and the report lists what it removed. What a pull still
 * running elsewhere needs is left alone (see ssh/pull-key.ts for the rules).
 */
import type { Host } from '../inventory/index.js';
import {
  PULL_MARKER,
  parseSweep,
  sweepPullDirsCommand,
  sweepPullKeysCommand,
} from '../ssh/pull-key.js';
import { defineTask, type PlannedAction, type RuntimeOf } from './types.js';

/** The hosts a step's roles bind, each once, in role order. */
function boundHosts(roles: Readonly<Record<string, Host | undefined>>): Host[] {
  const seen = new Map<string, Host>();
  for (const h of Object.values(roles)) if (h && !seen.has(h.name)) seen.set(h.name, h);
  return [...seen.values()];
}

const task = defineTask({
  name: 'sweep',
  summary: 'remove pull keys and temp files that earlier ferry runs left on these hosts',
  runsOn: 'controller',
  rerunOnResume: true,
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: {
    // item: the host
    'pull-dirs': [],
    // item: the host
    'pull-keys': [],
  },
  plan({ roles }) {
    const hosts = boundHosts(roles);
    const actions: PlannedAction[] = hosts.map((h) => ({
      kind: 'remote',
      id: 'pull-dirs',
      item: h.name,
      host: h.name,
      command: sweepPullDirsCommand(),
      why: 'a pull key whose transfer ended without its clean-up (controller killed, host down): its temp dir goes once the pull is gone',
      expect:
        'ferry-swept-dir DIR MARKER for each removed; ferry-live-dir for a pull still running',
      changes: true,
    }));
    for (const h of hosts) {
      actions.push({
        kind: 'remote',
        id: 'pull-keys',
        item: h.name,
        host: h.name,
        command: sweepPullKeysCommand(h.user),
        stdin: 'the markers of the temp dirs removed above, one a line',
        why: `pull key lines in ${h.user}'s authorized keys that no pull needs any more; every other line kept`,
        expect: 'ferry-swept-key FILE MARKER for each line removed',
        changes: true,
      });
    }
    return actions;
  },
});

async function run(rt: RuntimeOf<typeof task>) {
  const hosts = boundHosts(rt.ctx.roles);
  const swept: string[] = [];
  const dirs = await Promise.all(
    hosts.map(async (h) => ({
      host: h.name,
      out: parseSweep((await rt.exec('pull-dirs', {}, { item: h.name })).stdout),
    })),
  );
  const markers = new Set<string>();
  for (const d of dirs) {
    for (const x of d.out.dirs) {
      if (PULL_MARKER.test(x.marker)) markers.add(x.marker);
      swept.push(`${d.host}: pull key temp dir ${x.dir} (${x.marker})`);
    }
    for (const f of d.out.fifos) swept.push(`${d.host}: checksum FIFO ${f}`);
    for (const l of d.out.live) rt.task.log(`${d.host}: ${l} belongs to a pull still running`);
  }
  const stdin = [...markers].map((m) => `${m}\n`).join('');
  const keys = await Promise.all(
    hosts.map(async (h) => ({
      host: h.name,
      out: parseSweep((await rt.exec('pull-keys', {}, { item: h.name, stdin })).stdout),
    })),
  );
  for (const k of keys) {
    for (const x of k.out.keys) swept.push(`${k.host}: pull key ${x.marker} in ${x.file}`);
  }
  for (const s of swept) rt.task.warn(`swept what an earlier run left: ${s}`);
  rt.task.log(swept.length === 0 ? 'nothing left by earlier runs' : `${swept.length} swept`);
  return { swept };
}

export default task.runs(run);
