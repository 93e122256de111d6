/**
 * The cut-over on the source: freeze writes, take the final exports, stop
 * every datastore, so what is copied next is everything the source ever
 * acknowledged, and nothing more can arrive. A datastore's files copied while
 * it is stopped are consistent; the exports stay the fallback.
 *
 * Freezing an app: `maintenance:enable` where the source has dokku-maintenance
 * and the app answers HTTP through nginx (the plugin's include is nginx's:
 * a request is then answered with its page and a 503, proven by a request),
 * `ps:stop` otherwise (no plugin, no domain, a proxy that ignores the
 * include). Apps that did not run, or already were in maintenance, are left
 * as they are.
 *
 * Before the first change the source's state (each app's running state,
 * restore property and maintenance mode, each service's status) is written
 * to `<run folder>/freeze.json`; a rerun reads it back instead of the
 * half-frozen state. The undo (a failure before the target is verified, see
 * the playbook's `undo`) brings the source back to that state, services first.
 */
import { canRun } from '../dokku/plugins.js';
import { parsePsReportJson } from '../dokku/ps.js';
import { parseServiceInfoFlag } from '../dokku/services.js';
import { FerryError, RemoteError, StopError } from '../errors.js';
import type { Host, Inventory } from '../inventory/index.js';
import { $, type Command } from '../ssh/shell.js';
import { inBatches } from '../util/concurrency.js';
import { formatDuration } from '../util/format.js';
import { type Arg, DATASTORE_PLUGINS, P, runDir } from './common.js';
import { exportCommand, exportSumsCommand, parseExportSums } from './export-datastores.js';
import { restoreCommand, restoreEnvCommand, restoreInEnv } from './rebuild-apps.js';
import {
  defineTask,
  type Json,
  type PlannedAction,
  type RemoteAction,
  type RuntimeOf,
  type StepOutputs,
  type TaskRuntime,
} from './types.js';
import { httpCommand, parseHttpLine, serviceStatusCommand } from './verify-apps.js';

/** Where the source's state before the freeze is kept. */
export function freezeFile(inventory: Inventory, host: Host, runId: string): string {
  return `${runDir(inventory, host, runId)}/freeze.json`;
}

/** The saved state, or nothing (exit 0 either way). */
export function readFreezeCommand(file: string): Command {
  return $`cat ${file} 2>/dev/null || true`;
}

/** Writes the state (stdin) once: a rerun keeps the first one. */
export function saveFreezeCommand(file: string): Command {
  return $`umask 077 && if [ ! -s ${file} ]; then cat > ${file}; else cat > /dev/null; fi && cat ${file}`;
}

export function maintenanceStateCommand(app: Arg): Command {
  return $`dokku maintenance:report ${app} --maintenance-enabled`;
}
export function maintenanceOnCommand(app: Arg): Command {
  return $`dokku maintenance:enable ${app}`;
}
export function maintenanceOffCommand(app: Arg): Command {
  return $`dokku maintenance:disable ${app}`;
}
export function psStopCommand(app: Arg): Command {
  return $`dokku ps:stop ${app}`;
}
export function psStartCommand(app: Arg): Command {
  return $`dokku ps:start ${app}`;
}
export function serviceStopCommand(plugin: Arg, service: Arg): Command {
  return $`dokku ${plugin}:stop ${service}`;
}
export function serviceStartCommand(plugin: Arg, service: Arg): Command {
  return $`dokku ${plugin}:start ${service}`;
}

/** What the source looked like before the freeze (freeze.json). */
export interface FreezeRecord {
  version: 1;
  savedAt: string;
  apps: {
    name: string;
    running: 'true' | 'false' | 'mixed';
    restore: boolean;
    maintenance: boolean;
  }[];
  services: { plugin: string; name: string; status: string }[];
}

/** How each app was frozen (apps already in maintenance are in neither list). */
export interface FrozenApps {
  /** Put in maintenance by the cut-over: the target takes them out again. */
  maintenance: string[];
  stopped: string[];
}

/** The plugin name of dokku-maintenance once installed. */
export const MAINTENANCE_PLUGIN = 'maintenance';

/** Apps frozen at once (channels of the one connection). */
const AT_ONCE = 4;

/** The actions that bring the source back, in the order they run. */
export function thawActions(h: string, only: string, file: string): RemoteAction[] {
  const base = { kind: 'remote' as const, host: h, changes: true, only };
  return [
    {
      ...base,
      id: 'read-saved',
      command: readFreezeCommand(file),
      changes: false,
      why: 'the state before the freeze',
    },
    {
      ...base,
      id: 'start-service',
      command: serviceStartCommand(P.plugin, P.service),
      forEach: 'service',
      where: 'services that ran before the freeze',
    },
    {
      ...base,
      id: 'ps-start',
      command: psStartCommand(P.app),
      forEach: 'app',
      where: 'apps that ran before the freeze (a running one says so and stays)',
    },
    {
      ...base,
      id: 'restore-on',
      command: restoreCommand(P.app, true),
      forEach: 'app',
      where: 'apps whose restore property was true (ps:stop turned it off)',
    },
    {
      ...base,
      id: 'restore-off',
      command: restoreCommand(P.app, false),
      forEach: 'app',
      where: 'apps whose restore property was false',
    },
    {
      ...base,
      id: 'restore-on-env',
      command: restoreEnvCommand(P.app, true),
      forEach: 'app',
      where: 'the same on a Dokku before 0.38, where the restore flag lives in the app ENV',
    },
    {
      ...base,
      id: 'restore-off-env',
      command: restoreEnvCommand(P.app, false),
      forEach: 'app',
      where: 'the same on a Dokku before 0.38',
    },
    {
      ...base,
      id: 'maintenance-off',
      command: maintenanceOffCommand(P.app),
      forEach: 'app',
      where:
        'with dokku-maintenance installed: at the undo, apps not in maintenance before the freeze; at the freeze, apps whose page did not hold (stopped instead)',
    },
    {
      ...base,
      id: 'forget-saved',
      command: $`mv -f -- ${file} ${`${file}.thawed`}`,
      why: 'the source is as it was: a new cut-over reads its state afresh',
    },
  ];
}

/** The ids {@link thawActions} plans, with their holes. */
export const THAW_ACTIONS = {
  'read-saved': [],
  'start-service': ['plugin', 'service'],
  'ps-start': ['app'],
  'restore-on': ['app'],
  'restore-off': ['app'],
  'restore-on-env': ['app'],
  'restore-off-env': ['app'],
  'maintenance-off': ['app'],
  'forget-saved': [],
} as const;

const task = defineTask({
  name: 'cut-over',
  summary:
    'freeze the apps (maintenance page or ps:stop), take the final exports, stop every datastore',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      freeze: {
        enum: ['auto', 'stop'],
        default: 'auto',
        description:
          'auto: maintenance:enable where dokku-maintenance is installed and its page answers, ps:stop otherwise; stop: ps:stop every running app.',
      },
      timeout: {
        type: 'integer',
        minimum: 10,
        maximum: 86400,
        default: 3600,
        description:
          'Seconds one final export may take; a service that hangs longer stops the run (and the source is brought back).',
      },
    },
  },
  actions: {
    'apps-now': [],
    'app-state': ['app'],
    'maintenance-state': ['app'],
    'service-state': ['plugin', 'service'],
    'save-state': [],
    'maintenance-on': ['app'],
    'frozen-probe': ['app'],
    'ps-stop': ['app'],
    'exports-dir': [],
    export: ['plugin', 'service'],
    'export-sums': [],
    'stop-service': ['plugin', 'service'],
    ...THAW_ACTIONS,
  },
  plan({ host, inventory, options, params }) {
    const h = host!.name;
    const dir = `${runDir(inventory, host!, options.runId)}/exports`;
    const file = freezeFile(inventory, host!, options.runId);
    const r = (
      id: string,
      command: Command,
      extra: Omit<Partial<RemoteAction>, 'kind' | 'id' | 'command'> = {},
    ): PlannedAction => ({ kind: 'remote', id, host: h, command, ...extra });
    const maint = params.freeze === 'auto';
    return [
      r('apps-now', $`dokku --quiet apps:list`, {
        expect: "the manifest's apps (else stop before freezing: an app came or went)",
      }),
      r('app-state', $`dokku ps:report ${P.app} --format json`, {
        forEach: 'app',
        why: 'running state and restore property, to bring back on failure',
      }),
      ...(maint
        ? [
            r('maintenance-state', maintenanceStateCommand(P.app), {
              forEach: 'app',
              where: 'when dokku-maintenance is installed',
            }),
          ]
        : []),
      r('service-state', serviceStatusCommand(P.plugin, P.service), { forEach: 'service' }),
      r('save-state', saveFreezeCommand(file), {
        stdin: 'the state above (JSON); a rerun keeps the first one and reads it back',
        changes: true,
      }),
      ...(maint
        ? [
            r('maintenance-on', maintenanceOnCommand(P.app), {
              forEach: 'app',
              where:
                'running web apps not yet in maintenance, when dokku-maintenance is installed: from here on the source is down',
              changes: true,
            }),
            r('frozen-probe', httpCommand(P.app, 5), {
              forEach: 'app',
              where: 'apps just put in maintenance',
              expect: '503 (the page answers); anything else: the app is stopped as well',
            }),
          ]
        : []),
      r('ps-stop', psStopCommand(P.app), {
        forEach: 'app',
        where: maint
          ? 'running apps not frozen by the maintenance page'
          : 'running apps: from here on the source is down',
        changes: true,
      }),
      r('exports-dir', $`install -d -m 0700 ${dir}`, { changes: true }),
      r('export', exportCommand(dir, P.plugin, P.service), {
        forEach: 'service',
        where: 'running services whose plugin implements export (dokku-memcached has none)',
        why: 'the final export, after the last write: the fallback if a copied service does not start',
        changes: true,
      }),
      r('export-sums', exportSumsCommand(dir), { changes: true }),
      r('stop-service', serviceStopCommand(P.plugin, P.service), {
        forEach: 'service',
        where: 'running services',
        why: 'a datastore copied stopped is consistent',
        changes: true,
      }),
      ...thawActions(h, 'a later step fails before the target is verified', file),
    ];
  },
});

type Runtime = RuntimeOf<typeof task>;

/** The cut-over's outputs, found among a run's (the step may have another id). */
export function cutoverOf(
  outputs: Readonly<Record<string, StepOutputs>>,
): { frozenAt: number; frozen: FrozenApps; servicesStopped: string[] } | undefined {
  const o = Object.values(outputs).find((x) => x.cutover === true);
  if (!o) return undefined;
  return o as unknown as { frozenAt: number; frozen: FrozenApps; servicesStopped: string[] };
}

/** Reads the state now (the first time) or the one a first attempt saved. */
async function readState(rt: Runtime, plugin: boolean): Promise<FreezeRecord> {
  const manifest = rt.manifest();
  const apps = await inBatches(manifest.apps, AT_ONCE, async (a) => {
    const ps = parsePsReportJson(await rt.exec('app-state', { app: a.name }));
    let maintenance = false;
    if (plugin && rt.has('maintenance-state')) {
      const m = await rt.exec('maintenance-state', { app: a.name }, { allowCodes: [0, 1] });
      maintenance = m.code === 0 && m.stdout.trim() === 'true';
    }
    return { name: a.name, running: ps.running, restore: ps.restore, maintenance };
  });
  const services = await inBatches(manifest.services, AT_ONCE, async (s) => {
    let status = 'unknown';
    try {
      status = parseServiceInfoFlag(
        await rt.exec('service-state', { plugin: s.plugin, service: s.name }),
        s.plugin,
      );
    } catch (e) {
      if (rt.task.signal.aborted) throw e;
    }
    return { plugin: s.plugin, name: s.name, status };
  });
  return { version: 1, savedAt: new Date().toISOString(), apps, services };
}

/** Parses freeze.json (undefined: none, or not ours). */
export function parseFreezeRecord(text: string): FreezeRecord | undefined {
  if (text.trim() === '') return undefined;
  try {
    const r = JSON.parse(text) as FreezeRecord;
    return r.version === 1 && Array.isArray(r.apps) && Array.isArray(r.services) ? r : undefined;
  } catch {
    return undefined;
  }
}

function hasMaintenance(rt: Runtime): boolean {
  return (
    rt.ctx.params.freeze === 'auto' &&
    rt.manifest().plugins.some((p) => p.name === MAINTENANCE_PLUGIN && p.enabled)
  );
}

const ran = (a: { running: string }) => a.running !== 'false';
const official: readonly string[] = DATASTORE_PLUGINS;

async function run(rt: Runtime) {
  const host = rt.ctx.host!;
  const { inventory, options } = rt.ctx;
  const manifest = rt.manifest();
  const file = freezeFile(inventory, host, options.runId);
  const dir = `${runDir(inventory, host, options.runId)}/exports`;
  const plugin = hasMaintenance(rt);

  const now = (await rt.exec('apps-now')).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .sort();
  // A selection took part of the host: the apps it left out are still the source's.
  const known = [
    ...manifest.apps.map((a) => a.name),
    ...(manifest.selection?.dropped.apps ?? []),
  ].sort();
  if (now.join(' ') !== known.join(' ')) {
    rt.task.hostState(host.name, 'unchanged: nothing was frozen');
    throw new StopError(
      `the apps of ${host.name} changed since the inventory (${known.join(', ') || 'none'} then, ${now.join(', ') || 'none'} now)`,
      { hint: 'Run the migration again: it reads the apps afresh.' },
    );
  }

  // The state before any change, saved first; a rerun gets the first attempt's back.
  const fresh = await readState(rt, plugin);
  const saved = parseFreezeRecord(
    (await rt.exec('save-state', {}, { stdin: `${JSON.stringify(fresh, null, 2)}\n` })).stdout,
  );
  const before = saved ?? fresh;
  if (saved && saved.savedAt !== fresh.savedAt) {
    rt.task.log(
      `an earlier attempt froze ${host.name}: its saved state (${saved.savedAt}) is kept`,
    );
  }

  const frozenAt = Date.now();
  rt.task.hostState(host.name, `freezing: its state before is in ${file}`);
  const frozen: FrozenApps = { maintenance: [], stopped: [] };
  const deployed = new Set(manifest.apps.filter((a) => a.deployed).map((a) => a.name));
  const toFreeze = before.apps.filter((a) => ran(a) && deployed.has(a.name));
  await inBatches(toFreeze, AT_ONCE, async (a) => {
    if (a.maintenance) {
      rt.task.log(`${a.name}: already in maintenance (and stays so on the target)`);
      return;
    }
    if (plugin) {
      await rt.exec('maintenance-on', { app: a.name });
      const answer = parseHttpLine((await rt.exec('frozen-probe', { app: a.name })).stdout);
      if (answer?.code === 503) {
        frozen.maintenance.push(a.name);
        rt.task.log(`${a.name}: maintenance page up`);
        return;
      }
      // The page would otherwise travel in the app's folder and put the target's app in maintenance.
      await rt.exec('maintenance-off', { app: a.name });
      rt.task.log(
        `${a.name}: the maintenance page does not hold (${answer ? `HTTP ${answer.code}` : 'no domain'}): stopped instead`,
      );
    }
    await rt.exec('ps-stop', { app: a.name });
    frozen.stopped.push(a.name);
  });
  rt.task.hostState(
    host.name,
    `frozen since ${new Date(frozenAt).toISOString()}: ${frozen.maintenance.length} app(s) in maintenance, ${frozen.stopped.length} stopped; state before in ${file}`,
  );

  // The final exports: every write is in. A service that did not run cannot be exported.
  await rt.exec('exports-dir');
  const running = before.services.filter(
    (s) => s.status === 'running' && official.includes(s.plugin),
  );
  for (const s of before.services.filter((x) => !running.includes(x))) {
    rt.task.warn(
      `${s.plugin} ${s.name} was ${s.status} on ${host.name}: not exported; its files are copied as they are`,
    );
  }
  // A plugin without export (dokku-memcached) is only stopped: its files are the copy.
  const exported = running.filter((s) => {
    if (canRun(manifest.datastores?.[s.plugin], 'export')) return true;
    rt.task.log(
      `${s.plugin} ${s.name}: not exported (dokku-${s.plugin} does not implement export)`,
    );
    return false;
  });
  for (const s of exported) {
    rt.task.log(`exporting ${s.plugin} ${s.name}`);
    try {
      await rt.exec(
        'export',
        { plugin: s.plugin, service: s.name },
        { timeoutMs: rt.ctx.params.timeout * 1000 },
      );
    } catch (e) {
      throw new FerryError(
        `${s.plugin}:export ${s.name} failed on ${host.name}${e instanceof RemoteError ? `: ${e.message.replace(`on ${e.host}: `, '')}` : ''}`,
        {
          hint: `Check it with \`dokku ${s.plugin}:info ${s.name}\` on ${host.name}. The source is brought back as it was.`,
          cause: e,
        },
      );
    }
  }
  const sums = parseExportSums((await rt.exec('export-sums')).stdout);
  const exports: Json[] = exported.map((s) => {
    const name = `${s.plugin}-${s.name}.dump`;
    const got = sums.get(name);
    if (!got) throw new FerryError(`${dir}/${name} is missing after its export on ${host.name}`);
    return { plugin: s.plugin, service: s.name, file: name, ...got };
  });

  await inBatches(running, AT_ONCE, (s) =>
    rt.exec('stop-service', { plugin: s.plugin, service: s.name }),
  );
  const servicesStopped = running.map((s) => `${s.plugin}/${s.name}`);
  const took = Date.now() - frozenAt;
  rt.task.log(
    `frozen: ${frozen.maintenance.length} in maintenance, ${frozen.stopped.length} stopped, ${exports.length} exports, ${servicesStopped.length} services stopped (${formatDuration(took)})`,
  );
  rt.task.hostState(
    host.name,
    `frozen since ${new Date(frozenAt).toISOString()}: ${frozen.maintenance.length} app(s) in maintenance, ${frozen.stopped.length} stopped, ${servicesStopped.length} service(s) stopped; state before in ${file}`,
  );
  return {
    cutover: true,
    frozenAt,
    frozen: { maintenance: frozen.maintenance, stopped: frozen.stopped },
    servicesStopped,
    exports,
    dir,
  };
}

/** Brings the source back to freeze.json (also after a crash half-way through the freeze). */
export async function thaw(
  rt: TaskRuntime<unknown, typeof THAW_ACTIONS>,
  host: string,
  plugin: boolean,
): Promise<boolean> {
  const saved = parseFreezeRecord((await rt.exec('read-saved')).stdout);
  if (!saved) {
    rt.task.log(`no saved state on ${host}: nothing was frozen`);
    return false;
  }
  const services = saved.services.filter((s) => s.status === 'running');
  await inBatches(services, AT_ONCE, (s) =>
    rt.exec('start-service', { plugin: s.plugin, service: s.name }),
  );
  const apps = saved.apps.filter(ran);
  const env = restoreInEnv(rt.manifest().source.dokkuVersion);
  await inBatches(apps, AT_ONCE, async (a) => {
    await rt.exec('ps-start', { app: a.name });
    const flag = a.restore
      ? env
        ? 'restore-on-env'
        : 'restore-on'
      : env
        ? 'restore-off-env'
        : 'restore-off';
    await rt.exec(flag, { app: a.name });
    if (plugin && !a.maintenance) await rt.exec('maintenance-off', { app: a.name });
  });
  await rt.exec('forget-saved');
  rt.task.log(
    `${apps.length} app(s) and ${services.length} service(s) running again, as before the freeze`,
  );
  return true;
}

async function undo(rt: Runtime) {
  const host = rt.ctx.host!.name;
  let plugin = false;
  try {
    plugin = hasMaintenance(rt);
  } catch {
    plugin = false;
  }
  // Apps and services not in freeze.json never changed; those in it come back.
  const done = await thaw(rt, host, plugin);
  rt.task.hostState(
    host,
    done
      ? 'brought back as it was before the cut-over: apps, services and maintenance mode'
      : 'unchanged (the cut-over had not frozen anything)',
  );
}

export default task.runs(run, { undo });
