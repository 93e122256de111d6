/**
 * Re-creates what Dokku keeps outside its own folders, in the container
 * engine, and so outside the archive: networks apps attach to, and the images
 * datastores run on (pulled before services start, so a failed pull shows
 * here and not as a service that will not start). Cron entries are written by
 * each app's deploy, so rebuild-apps re-creates them.
 */
import { type Arg, arg, dokku, P, serviceDir } from './common.js';
import { defineTask } from './types.js';

/** Creates a network unless it exists. */
export function networkCommand(network: Arg): string {
  return `dokku --quiet network:list | grep -qxF -- ${arg(network)} || ${dokku('network:create', network)}`;
}

/** Pulls the image a service runs on, as its IMAGE and IMAGE_VERSION files say. */
export function pullServiceImageCommand(plugin: Arg, service: Arg): string {
  const dir = arg(serviceDir(plugin, service));
  return `docker image pull "$(cat ${dir}/IMAGE):$(cat ${dir}/IMAGE_VERSION)"`;
}

export default defineTask({
  name: 'recreate-engine',
  summary: "create the networks again and pull each datastore's image",
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  plan({ host }) {
    return [
      {
        kind: 'remote',
        host: host!.name,
        command: networkCommand(P.network),
        forEach: 'network',
        where: 'networks of the manifest',
        changes: true,
      },
      {
        kind: 'remote',
        host: host!.name,
        command: pullServiceImageCommand(P.plugin, P.service),
        forEach: 'service',
        changes: true,
      },
    ];
  },
});
