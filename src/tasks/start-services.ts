/**
 * Starts each datastore service and proves it answers by exporting it (the
 * export reads every row). The seed: a copied service folder "may contain
 * partially written data"; `start` "may be enough … so long as the datastore
 * version does not change and the underlying data is not corrupt". When it is
 * not enough, the service is re-created with the same image, version and
 * password, and its export imported; the failed folder is kept aside.
 */
import { type Arg, arg, dokku, P, path, serviceDir, stageDir } from './common.js';
import type { RemoteAction } from './types.js';
import { defineTask } from './types.js';

/** Proves a service answers: a full export to nowhere. */
export function serviceAnswersCommand(plugin: Arg, service: Arg): string {
  return `${dokku(path(plugin, ':export'), service)} > /dev/null`;
}

/** The fallback: re-create a service from its export. */
export function recreateFromExportActions(
  host: string,
  plugin: Arg,
  service: Arg,
  stage: string,
  runId: string,
): RemoteAction[] {
  const dir = serviceDir(plugin, service);
  const aside = path(dir, `.ferry-failed-${runId}`);
  const dump = path(`${stage}/meta/exports/`, plugin, '-', service, '.dump');
  const r = (command: string, why?: string): RemoteAction => ({
    kind: 'remote',
    host,
    command,
    changes: true,
    ...(why ? { why } : {}),
  });
  return [
    r(`${dokku(path(plugin, ':stop'), service)} || true`, 'it may be half started'),
    r(`mv -T ${arg(dir)} ${arg(aside)}`, 'kept aside, not deleted'),
    r(
      `${dokku(path(plugin, ':create'), service)} --image "$(cat ${arg(aside)}/IMAGE)" --image-version "$(cat ${arg(aside)}/IMAGE_VERSION)" --password "$(cat ${arg(aside)}/PASSWORD)"`,
      'same image, version and password: linked apps keep their URL',
    ),
    r(`${dokku(path(plugin, ':import'), service)} < ${arg(dump)}`),
    r(`cp -- ${arg(aside)}/LINKS ${arg(dir)}/LINKS`, 'its links'),
    r(serviceAnswersCommand(plugin, service), 'answers now'),
  ];
}

export default defineTask({
  name: 'start-services',
  summary: 'start each datastore service and prove it answers; re-create it from its export if not',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  plan({ host, options }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        host: h,
        command: `${dokku(path(P.plugin, ':start'), P.service)} && ${serviceAnswersCommand(P.plugin, P.service)}`,
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
    ];
  },
});
