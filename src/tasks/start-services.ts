/**
 * Starts each datastore service that ran on the source and checks it runs
 * (`PLUGIN:info --status`, the plugin's own health word: reading every row
 * with an export cost a full dump per service). The seed: a copied service
 * folder "may contain partially written data"; `start` "may be enough … so
 * long as the datastore version does not change and the underlying data is
 * not corrupt". When it is not enough (the start fails, the service does not
 * run, or it runs another image than the source's), the service is re-created
 * as it was: same image and version, password and root password, config
 * options, memory and shm limits, custom ENV, exposed ports, links and backup
 * settings, its export imported where its plugin has one. The failed folder is
 * kept aside outside the archived paths (a later backup never carries it). A
 * service stopped on the source stays stopped.
 */

import { DOKKU_LIB_ROOT } from '../dokku/layout.js';
import { FerryError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { type Arg, DATASTORE_PLUGINS, P, serviceDir } from './common.js';
import { notExported } from './export-datastores.js';
import { stageDir } from './stage.js';
import { defineTask, type Json, type RemoteAction, type RuntimeOf } from './types.js';

/** The plugin's own word for a service's state: `running` when it answers. */
export function serviceStatusCommand(plugin: Arg, service: Arg): Command {
  return $`dokku ${plugin}:info ${service} --status`;
}

/** The image a running service uses (`postgres:15.18`). */
export function serviceVersionCommand(plugin: Arg, service: Arg): Command {
  return $`dokku ${plugin}:info ${service} --version`;
}

/** Where a service that would not start is kept: beside, not inside, the archived paths. */
export function failedServiceDir(plugin: Arg, service: Arg, runId: string): Command {
  return $`${`${DOKKU_LIB_ROOT}/.ferry-failed-${runId}/`}${plugin}/${service}`;
}

/**
 * `PLUGIN:create` with the settings the old service folder recorded (the
 * official plugins' create flags, from the files their create wrote).
 */
export function createAgainCommand(plugin: Arg, service: Arg, aside: Command): Command {
  return $`a=${aside}; set --
for f in IMAGE:--image IMAGE_VERSION:--image-version PASSWORD:--password ROOTPASSWORD:--root-password CONFIG_OPTIONS:--config-options SERVICE_MEMORY:--memory SHM_SIZE:--shm-size; do
  v=$(cat "$a/\${f%%:*}" 2>/dev/null || true); [ -z "$v" ] || set -- "$@" "\${f#*:}" "$v"
done
e=$(grep -v '^$' "$a/ENV" 2>/dev/null | paste -sd ';' || true); [ -z "$e" ] || set -- "$@" --custom-env "$e"
dokku ${plugin}:create ${service} "$@"`;
}

/** The steps of re-creating a service as it was (the fallback of `start`), in order. */
export const RECREATE_STEPS = [
  'stop-half-started',
  'set-aside',
  'create-again',
  'import-export',
  'copy-links',
  'expose-again',
  'copy-backup-settings',
  'running-again',
] as const;

/** The fallback: re-create a service as it was, from its export where there is one. */
export function recreateActions(
  host: string,
  plugin: Arg,
  service: Arg,
  stage: string,
  runId: string,
): RemoteAction[] {
  const dir = serviceDir(plugin, service);
  const aside = failedServiceDir(plugin, service, runId);
  const dump = $`${`${stage}/meta/exports/`}${plugin}-${service}.dump`;
  const r = (
    id: (typeof RECREATE_STEPS)[number],
    command: Command,
    why?: string,
  ): RemoteAction => ({
    kind: 'remote',
    id,
    host,
    command,
    changes: true,
    ...(why ? { why } : {}),
  });
  return [
    r('stop-half-started', $`dokku ${plugin}:stop ${service} || true`, 'it may be half started'),
    r(
      'set-aside',
      $`mkdir -p "$(dirname ${aside})" && mv -T ${dir} ${aside}`,
      'kept aside, not deleted',
    ),
    r(
      'create-again',
      createAgainCommand(plugin, service, aside),
      'same image, version, passwords (linked apps keep their URL), config options, memory, shm, custom ENV',
    ),
    r(
      'import-export',
      $`if [ -s ${dump} ]; then dokku ${plugin}:import ${service} < ${dump}; else echo ferry-no-export; fi`,
      'the export, where the plugin has one (else the service comes back empty)',
    ),
    r('copy-links', $`cp -- ${aside}/LINKS ${dir}/LINKS`, 'its links'),
    r(
      'expose-again',
      $`p=$(cat ${aside}/PORT 2>/dev/null || true); [ -z "$p" ] || dokku ${plugin}:expose ${service} $p`,
      'the ports it was exposed on',
    ),
    r(
      'copy-backup-settings',
      $`[ ! -d ${aside}/backup ] || cp -a -- ${aside}/backup ${dir}/`,
      "its scheduled backups' credentials and settings",
    ),
    r('running-again', serviceStatusCommand(plugin, service), 'runs now'),
  ];
}

const startServices = defineTask({
  name: 'start-services',
  summary: 'start each datastore service and check it runs; re-create it as it was if not',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: {
    start: ['plugin', 'service'],
    'service-status': ['plugin', 'service'],
    'service-version': ['plugin', 'service'],
    'stop-half-started': ['plugin', 'service'],
    'set-aside': ['plugin', 'service'],
    'create-again': ['plugin', 'service'],
    'import-export': ['plugin', 'service'],
    'copy-links': ['plugin', 'service'],
    'expose-again': ['plugin', 'service'],
    'copy-backup-settings': ['plugin', 'service'],
    'running-again': ['plugin', 'service'],
    'stop-again': ['plugin', 'service'],
  },
  plan({ host, options }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        id: 'start',
        host: h,
        command: $`dokku ${P.plugin}:start ${P.service}`,
        forEach: 'service',
        where: 'services that ran on the source (a stopped one stays stopped)',
        why: 'started on the copied data',
        changes: true,
        fallback: recreateActions(h, P.plugin, P.service, stageDir(options.runId), options.runId),
      },
      {
        kind: 'remote',
        id: 'service-status',
        host: h,
        command: serviceStatusCommand(P.plugin, P.service),
        forEach: 'service',
        expect: 'running; else the service is re-created as it was (the fallback above)',
      },
      {
        kind: 'remote',
        id: 'service-version',
        host: h,
        command: serviceVersionCommand(P.plugin, P.service),
        forEach: 'service',
        expect:
          "the manifest's IMAGE:IMAGE_VERSION; else the service is re-created as it was (the fallback above)",
      },
      {
        kind: 'remote',
        id: 'stop-again',
        host: h,
        command: $`dokku ${P.plugin}:stop ${P.service}`,
        forEach: 'service',
        only: "a later step fails before the target is verified (the playbook's undo range)",
        why: 'nothing runs on data that goes back into the stage',
        changes: true,
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof startServices>) {
  const to = rt.ctx.host!.name;
  const known: readonly string[] = DATASTORE_PLUGINS;
  const manifest = rt.manifest();
  const report: Record<string, Json> = {};
  const recreated: string[] = [];
  for (const svc of manifest.services) {
    const id = `${svc.plugin}:${svc.name}`;
    if (!known.includes(svc.plugin)) {
      rt.task.warn(`${id}: not an official datastore plugin; not started here`);
      report[id] = 'skipped';
      continue;
    }
    if (svc.status !== undefined && !['running', 'unknown'].includes(svc.status)) {
      rt.task.log(`${id}: ${svc.status} on the source; left ${svc.status} here`);
      report[id] = `left ${svc.status}`;
      continue;
    }
    const vars = { plugin: svc.plugin, service: svc.name };
    const want = `${svc.image}:${svc.imageVersion}`;
    let why: string | undefined;
    try {
      await rt.exec('start', vars);
      const status = (await rt.exec('service-status', vars)).stdout.trim();
      const running = (await rt.exec('service-version', vars)).stdout.trim();
      if (status !== 'running') why = `its status is ${status || 'empty'}`;
      else if (running !== want) why = `it runs ${running || 'nothing'}, the source ran ${want}`;
    } catch (e) {
      why = e instanceof FerryError ? e.message.split('\n')[0] : String(e);
    }
    if (why === undefined) {
      rt.task.log(`${id}: started on the copied data and running`);
      report[id] = 'started';
      continue;
    }
    const noExport = notExported({ ...svc, status: 'running' }, manifest.datastores?.[svc.plugin]);
    rt.task.warn(
      `${id} did not come up from the copied data (${why}); re-created as it was${noExport ? `, EMPTY: ${noExport}` : ' from its export'}`,
    );
    rt.task.hostState(to, `re-creating ${id}; the copied folder is kept aside`);
    for (const step of RECREATE_STEPS) {
      try {
        const r = await rt.exec(step, vars);
        if (step === 'running-again' && r.stdout.trim() !== 'running') {
          throw new FerryError(
            `${id} was re-created but its status is ${r.stdout.trim() || 'empty'}`,
          );
        }
      } catch (e) {
        rt.task.hostState(
          to,
          `${id}: re-creation failed at ${step}; the copied folder is in ${DOKKU_LIB_ROOT}/.ferry-failed-${rt.ctx.options.runId}/${svc.plugin}/${svc.name}`,
        );
        throw e;
      }
    }
    recreated.push(id);
    report[id] = noExport ? 'recreated empty' : 'recreated';
  }
  rt.task.hostState(
    to,
    recreated.length > 0
      ? `services up; re-created: ${recreated.join(', ')}`
      : 'services up on the copied data',
  );
  return { services: report, recreated };
}

async function undo(rt: RuntimeOf<typeof startServices>) {
  const known: readonly string[] = DATASTORE_PLUGINS;
  const services = rt.manifest().services.filter((s) => known.includes(s.plugin));
  const failed: string[] = [];
  for (const s of services) {
    try {
      await rt.exec('stop-again', { plugin: s.plugin, service: s.name });
    } catch {
      failed.push(`${s.plugin}/${s.name}`);
    }
  }
  if (failed.length > 0) throw new FerryError(`could not stop ${failed.join(', ')}`);
  rt.task.log(`${services.length} service(s) stopped`);
}

export default startServices.runs(run, { undo });
