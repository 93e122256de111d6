/**
 * Starts each datastore service and proves it answers by exporting it (the
 * export reads every row). The seed: a copied service folder "may contain
 * partially written data"; `start` "may be enough … so long as the datastore
 * version does not change and the underlying data is not corrupt". When it is
 * not enough (the start or the export fails, or the service runs another
 * image than the source's), the service is re-created with the same image,
 * version and password, and its export imported; the failed folder is kept
 * aside, outside the plugin's folder so the plugin does not list it.
 */
import { FerryError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { type Arg, DATASTORE_PLUGINS, P, serviceDir } from './common.js';
import { stageDir } from './stage.js';
import { defineTask, type Json, type RemoteAction, type RuntimeOf } from './types.js';

/** Proves a service answers: a full export to nowhere. */
export function serviceAnswersCommand(plugin: Arg, service: Arg): Command {
  return $`dokku ${plugin}:export ${service} > /dev/null`;
}

/** The image a running service uses (`postgres:15.18`). */
export function serviceVersionCommand(plugin: Arg, service: Arg): Command {
  return $`dokku ${plugin}:info ${service} --version`;
}

/** Where a service that would not start is kept. */
export function failedServiceDir(plugin: Arg, service: Arg, runId: string): Command {
  return $`${`/var/lib/dokku/services/.ferry-failed-${runId}/`}${plugin}/${service}`;
}

/** The steps of re-creating a service from its export, in order (the fallback of `start`). */
export const RECREATE_STEPS = [
  'stop-half-started',
  'set-aside',
  'create-again',
  'import-export',
  'copy-links',
  'answers-again',
] as const;

/** The fallback: re-create a service from its export. */
export function recreateFromExportActions(
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
      $`dokku ${plugin}:create ${service} --image "$(cat ${aside}/IMAGE)" --image-version "$(cat ${aside}/IMAGE_VERSION)" --password "$(cat ${aside}/PASSWORD)"`,
      'same image, version and password: linked apps keep their URL',
    ),
    r('import-export', $`dokku ${plugin}:import ${service} < ${dump}`),
    r('copy-links', $`cp -- ${aside}/LINKS ${dir}/LINKS`, 'its links'),
    r('answers-again', serviceAnswersCommand(plugin, service), 'answers now'),
  ];
}

const startServices = defineTask({
  name: 'start-services',
  summary: 'start each datastore service and prove it answers; re-create it from its export if not',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: {
    start: ['plugin', 'service'],
    'service-version': ['plugin', 'service'],
    'stop-half-started': ['plugin', 'service'],
    'set-aside': ['plugin', 'service'],
    'create-again': ['plugin', 'service'],
    'import-export': ['plugin', 'service'],
    'copy-links': ['plugin', 'service'],
    'answers-again': ['plugin', 'service'],
    'stop-again': ['plugin', 'service'],
  },
  plan({ host, options }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        id: 'start',
        host: h,
        command: $`dokku ${P.plugin}:start ${P.service} && ${serviceAnswersCommand(P.plugin, P.service)}`,
        forEach: 'service',
        why: 'started on the copied data, then read in full',
        changes: true,
        fallback: recreateFromExportActions(
          h,
          P.plugin,
          P.service,
          stageDir(options.runId),
          options.runId,
        ),
      },
      {
        kind: 'remote',
        id: 'service-version',
        host: h,
        command: serviceVersionCommand(P.plugin, P.service),
        forEach: 'service',
        expect:
          "the manifest's IMAGE:IMAGE_VERSION; else the service is re-created from its export (the fallback above)",
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
  const report: Record<string, Json> = {};
  const recreated: string[] = [];
  for (const svc of rt.manifest().services) {
    const id = `${svc.plugin}:${svc.name}`;
    if (!known.includes(svc.plugin)) {
      rt.task.warn(`${id}: not an official datastore plugin; not started here`);
      report[id] = 'skipped';
      continue;
    }
    const vars = { plugin: svc.plugin, service: svc.name };
    const want = `${svc.image}:${svc.imageVersion}`;
    let why: string | undefined;
    try {
      await rt.exec('start', vars);
      const running = (await rt.exec('service-version', vars)).stdout.trim();
      if (running !== want) why = `it runs ${running || 'nothing'}, the source ran ${want}`;
    } catch (e) {
      why = e instanceof FerryError ? e.message.split('\n')[0] : String(e);
    }
    if (why === undefined) {
      rt.task.log(`${id}: started on the copied data and answers`);
      report[id] = 'started';
      continue;
    }
    rt.task.warn(`${id} did not come up from the copied data (${why}); re-created from its export`);
    rt.task.hostState(to, `re-creating ${id} from its export; the copied folder is kept aside`);
    for (const id of RECREATE_STEPS) {
      try {
        await rt.exec(id, vars);
      } catch (e) {
        rt.task.hostState(
          to,
          `${id}: re-creation from the export failed; the copied folder is in /var/lib/dokku/services/.ferry-failed-${rt.ctx.options.runId}/${svc.plugin}/${svc.name}`,
        );
        throw e;
      }
    }
    recreated.push(id);
    report[id] = 'recreated';
  }
  rt.task.hostState(
    to,
    recreated.length > 0
      ? `services up; re-created from exports: ${recreated.join(', ')}`
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
