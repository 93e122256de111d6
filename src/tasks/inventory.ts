/**
 * Reads what is on the source and writes it down as the run's manifest: apps
 * and how each was deployed (git push, git:from-image, git:from-archive),
 * services per datastore plugin, plugins (core or custom), storage mounts
 * (warned when outside /var/lib/dokku/data/storage: the archive misses them),
 * networks, the Dokku version and the size of the data. Later steps act on it.
 */
import {
  ARCHIVE_PATHS,
  type Arg,
  arg,
  DATASTORE_PLUGINS,
  dokku,
  P,
  path,
  rootOnlyDirs,
  runDir,
} from './common.js';
import type { PlannedAction } from './types.js';
import { defineTask } from './types.js';

/** How an app was deployed: `deploy-source` and its metadata (image or archive URL). */
export function deploySourceCommand(app: Arg): string {
  const dir = path('/var/lib/dokku/config/apps/', app);
  return `for f in deploy-source deploy-source-metadata; do printf '%s=' "$f"; cat ${arg(dir)}/"$f" 2>/dev/null || true; echo; done`;
}

/** The files that describe a service (image, version, linked apps). */
export function serviceFactsCommand(plugin: Arg, service: Arg): string {
  const dir = path('/var/lib/dokku/services/', plugin, '/', service);
  return `for f in IMAGE IMAGE_VERSION LINKS; do printf '%s=' "$f"; tr '\\n' ' ' < ${arg(dir)}/"$f" 2>/dev/null || true; echo; done`;
}

/** The size (KiB) of the data the archive holds. */
export const DATA_SIZE = `du -sck ${ARCHIVE_PATHS.map((p) => `/${p}`).join(' ')} 2>/dev/null | tail -n 1`;

export default defineTask({
  name: 'inventory',
  summary:
    'list apps, deploy methods, services, plugins, mounts, networks, version into a manifest',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      datastores: {
        type: 'array',
        uniqueItems: true,
        items: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' },
        default: [...DATASTORE_PLUGINS],
        description: 'Plugins whose services are datastores (exported, started and checked).',
      },
    },
  },
  plan({ host, inventory, options, params }) {
    const h = host!.name;
    const dir = runDir(inventory, host!, options.runId);
    const r = (command: string, extra: Partial<PlannedAction> = {}): PlannedAction =>
      ({ kind: 'remote', host: h, command, ...extra }) as PlannedAction;
    return [
      r('dokku version', { capture: 'dokku-version' }),
      r('dokku --quiet apps:list', { why: 'every app (one name a line)' }),
      r(deploySourceCommand(P.app), {
        forEach: 'app',
        why: 'git push, git:from-image or git:from-archive: decides how it is rebuilt',
      }),
      r(dokku('ps:report', P.app, '--format', 'json'), {
        forEach: 'app',
        why: 'deployed, running, restore: which apps must run afterwards',
      }),
      r(dokku('storage:list', P.app, '--format', 'json'), {
        forEach: 'app',
        why: 'storage mounts: one outside /var/lib/dokku/data/storage is not in the archive (warned)',
      }),
      r('dokku plugin:list', { why: 'plugins, core or custom: custom ones must come across' }),
      r(`dokku --quiet ${arg(path(P.plugin, ':list'))}`, {
        forEach: 'plugin',
        where: `installed datastore plugins among ${params.datastores.join(', ')}`,
        why: 'services of each datastore plugin',
      }),
      r(serviceFactsCommand(P.plugin, P.service), {
        forEach: 'service',
        why: 'image, version and linked apps of each service',
      }),
      r('dokku --quiet network:list', { why: 'networks to create again on the target' }),
      r(DATA_SIZE, {
        capture: 'data-size',
        why: "size of the data, for the target's free-space check",
      }),
      r(rootOnlyDirs(inventory.backup.dir, dir), { changes: true }),
      r(`umask 077 && cat > ${arg(path(dir, '/manifest.json'))}`, {
        stdin: 'the manifest (JSON) assembled from the answers above',
        changes: true,
      }),
    ];
  },
});
