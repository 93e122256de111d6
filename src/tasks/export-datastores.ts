/**
 * Exports each datastore service with its plugin's own export command: a
 * copy of the service folder taken while it runs "may contain partially
 * written data" (seed, Datastores); the export is the consistent copy,
 * used when a copied service does not start.
 */
import { type Arg, arg, dokku, P, path, rootOnlyDirs, runDir } from './common.js';
import { defineTask } from './types.js';

/** Exports one service to `<dir>/<plugin>-<service>.dump`, 0600. */
export function exportCommand(dir: Arg, plugin: Arg, service: Arg): string {
  const file = path(dir, '/', plugin, '-', service, '.dump');
  return `umask 077 && ${dokku(path(plugin, ':export'), service)} > ${arg(file)}`;
}

/** Checksums of every export, in `sha256sum -c` format. */
export function exportSumsCommand(dir: Arg): string {
  return `cd ${arg(dir)} && find . -maxdepth 1 -name '*.dump' -printf '%P\\0' | sort -z | xargs -0r sha256sum -- > SHA256SUMS && chmod 0600 SHA256SUMS`;
}

export default defineTask({
  name: 'export-datastores',
  summary: 'dokku PLUGIN:export each service into the run folder, with checksums',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  plan({ host, inventory, options }) {
    const dir = `${runDir(inventory, host!, options.runId)}/exports`;
    return [
      { kind: 'remote', host: host!.name, command: rootOnlyDirs(dir), changes: true },
      {
        kind: 'remote',
        host: host!.name,
        command: exportCommand(dir, P.plugin, P.service),
        forEach: 'service',
        why: 'a consistent copy of each service, beside the live files',
        changes: true,
      },
      { kind: 'remote', host: host!.name, command: exportSumsCommand(dir), changes: true },
    ];
  },
});
