/**
 * Reads what is on the source and writes it down as the run's manifest: apps
 * and how each was deployed (git push, git:from-image, git:from-archive),
 * services per datastore plugin, plugins (core or custom), storage mounts
 * (warned when outside /var/lib/dokku/data/storage: the archive misses them),
 * networks, the Dokku version and the size of the data. Later steps act on it.
 */

import { parseAppsList } from '../dokku/apps.js';
import { propertyDir } from '../dokku/layout.js';
import { isAppName, isServiceName, PLUGIN_NAME } from '../dokku/names.js';
import { parseNetworkList } from '../dokku/network.js';
import { parsePluginList } from '../dokku/plugins.js';
import { parsePsReport, parsePsReportJson } from '../dokku/ps.js';
import { parseServiceList } from '../dokku/services.js';
import { parseStorageList, parseStorageListJson } from '../dokku/storage.js';
import { formatVersion } from '../dokku/version.js';
import { $, type Command } from '../ssh/shell.js';
import { inBatches } from '../util/concurrency.js';
import { formatBytes } from '../util/format.js';
import { HOST_FACTS, parseHostFacts } from './check-quiet.js';
import {
  ARCHIVE_PATHS,
  type Arg,
  DATASTORE_PLUGINS,
  P,
  rootOnlyDirs,
  runDir,
  serviceDir,
} from './common.js';
import type {
  DeployMethod,
  Manifest,
  ManifestApp,
  ManifestPlugin,
  ManifestService,
} from './manifest.js';
import {
  type CommandResult,
  defineTask,
  type Json,
  type PlannedAction,
  type RuntimeOf,
} from './types.js';

/** How an app was deployed: `deploy-source` and its metadata (image or archive URL). */
export function deploySourceCommand(app: Arg): Command {
  return $`for f in deploy-source deploy-source-metadata; do printf '%s=' "$f"; cat ${propertyDir('apps')}/${app}/"$f" 2>/dev/null || true; echo; done`;
}

/** The files that describe a service (image, version, linked apps). */
export function serviceFactsCommand(plugin: Arg, service: Arg): Command {
  return $`for f in IMAGE IMAGE_VERSION LINKS; do printf '%s=' "$f"; tr '\\n' ' ' < ${serviceDir(plugin, service)}/"$f" 2>/dev/null || true; echo; done`;
}

/** The size (KiB) of the data the archive holds. */
export const DATA_SIZE = $`du -sck ${ARCHIVE_PATHS.map((p) => `/${p}`)} 2>/dev/null | tail -n 1`;

const task = defineTask({
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
  actions: {
    'host-facts': [],
    'apps-list': [],
    'deploy-source': ['app'],
    'ps-report': ['app'],
    'ps-report-text': ['app'],
    'storage-list': ['app'],
    'storage-list-text': ['app'],
    'plugin-list': [],
    'service-list': ['plugin'],
    'service-facts': ['plugin', 'service'],
    'network-list': [],
    'data-size': [],
    'run-dirs': [],
    'write-manifest': [],
  },
  plan({ host, inventory, options, params }) {
    const h = host!.name;
    const dir = runDir(inventory, host!, options.runId);
    const r = (id: string, command: Command, extra: Partial<PlannedAction> = {}): PlannedAction =>
      ({ kind: 'remote', id, host: h, command, ...extra }) as PlannedAction;
    return [
      r('host-facts', HOST_FACTS, {
        capture: 'dokku-version',
        why: 'Dokku version, CPU architecture, dokku uid/gid (owners travel as numbers)',
      }),
      r('apps-list', $`dokku --quiet apps:list`, { why: 'every app (one name a line)' }),
      r('deploy-source', deploySourceCommand(P.app), {
        forEach: 'app',
        why: 'git push, git:from-image or git:from-archive: decides how it is rebuilt',
      }),
      r('ps-report', $`dokku ps:report ${P.app} --format json`, {
        forEach: 'app',
        why: 'deployed, running, restore: which apps must run afterwards',
        fallback: [
          r('ps-report-text', $`dokku ps:report ${P.app}`, {
            why: 'a Dokku without --format json here',
          }),
        ],
      }),
      r('storage-list', $`dokku storage:list ${P.app} --format json`, {
        forEach: 'app',
        why: 'storage mounts: one outside /var/lib/dokku/data/storage is not in the archive (warned)',
        fallback: [
          r('storage-list-text', $`dokku storage:list ${P.app}`, {
            why: 'a Dokku before 0.38 (no --format)',
          }),
        ],
      }),
      r('plugin-list', $`dokku plugin:list`, {
        why: 'plugins, core or custom: custom ones must come across',
      }),
      r('service-list', $`dokku --quiet ${P.plugin}:list`, {
        forEach: 'plugin',
        where: `installed datastore plugins among ${params.datastores.join(', ')}`,
        why: 'services of each datastore plugin',
      }),
      r('service-facts', serviceFactsCommand(P.plugin, P.service), {
        forEach: 'service',
        why: 'image, version and linked apps of each service',
      }),
      r('network-list', $`dokku --quiet network:list`, {
        why: 'networks to create again on the target',
      }),
      r('data-size', DATA_SIZE, {
        capture: 'data-size',
        why: "size of the data, for the target's free-space check",
      }),
      r('run-dirs', rootOnlyDirs(inventory.backup.dir, dir), { changes: true }),
      r('write-manifest', $`umask 077 && cat > ${dir}/manifest.json`, {
        stdin: 'the manifest (JSON) assembled from the answers above',
        changes: true,
      }),
    ];
  },
});

/** Docker's own networks: every engine has them, so none is created again. */
const ENGINE_NETWORKS = new Set(['bridge', 'host', 'none']);

/** Where Dokku wants persistent data; the archive holds it. */
const STORAGE_ROOT = '/var/lib/dokku/data/storage/';

/** Apps read at once (channels of the one connection; OpenSSH allows 10). */
const APPS_AT_ONCE = 4;

/** Reads the `name=value` lines of {@link deploySourceCommand} and {@link serviceFactsCommand}. */
export function parseFileValues(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  return out;
}

/**
 * How an app was deployed, from `deploy-source` (reference §5.4-5.6): `git-push`
 * (and `git-sync`) is git, `docker-image` an image, `tar`/`tar.gz`/`zip` an archive.
 * A deployed app without the property predates it: git push was the only way then.
 */
export function deployMethod(source: string, deployed: boolean): DeployMethod {
  if (source === 'docker-image') return 'image';
  if (source === 'tar' || source === 'tar.gz' || source === 'zip') return 'archive';
  if (source.startsWith('git')) return 'git';
  return deployed ? 'git' : 'none';
}

/** Why a mount is not carried by the archive, or undefined when it is. */
export function mountOutsideArchive(hostPath: string): string | undefined {
  if (!hostPath.startsWith('/')) {
    return `docker volume ${hostPath} lives in the container engine, not in the archive`;
  }
  const normal = `${hostPath.replace(/\/+$/, '')}/`;
  if (normal.startsWith(STORAGE_ROOT) && !normal.split('/').includes('..')) return undefined;
  return `host path ${hostPath} is outside ${STORAGE_ROOT.replace(/\/$/, '')}: not in the archive, copy it yourself`;
}

async function run(rt: RuntimeOf<typeof task>) {
  const host = rt.ctx.host!;
  const { params, inventory, options } = rt.ctx;
  const dir = runDir(inventory, host, options.runId);
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    rt.task.warn(message);
  };
  // The JSON form, else its text fallback's output (an older Dokku without `--format json`).
  const withFallback = async (
    json: 'ps-report' | 'storage-list',
    text: 'ps-report-text' | 'storage-list-text',
    app: string,
    signal: AbortSignal,
  ): Promise<{ out: CommandResult; json: boolean }> => {
    try {
      return { out: await rt.exec(json, { app }, { signal }), json: true };
    } catch (e) {
      if (!rt.has(text) || signal.aborted) throw e;
      return { out: await rt.exec(text, { app }, { signal }), json: false };
    }
  };

  const facts = parseHostFacts((await rt.exec('host-facts')).stdout);
  const appNames = parseAppsList(await rt.exec('apps-list'));
  // Each app's three reads are independent of the others': a few apps at a time,
  // over channels of the one connection, each app's warnings kept in app order.
  // The first failure cancels the reads still running (their commands are killed).
  const readApp = async (
    name: string,
    signal: AbortSignal,
  ): Promise<{ app: ManifestApp; warnings: string[] }> => {
    const notes: string[] = [];
    const src = parseFileValues((await rt.exec('deploy-source', { app: name }, { signal })).stdout);
    const psOut = await withFallback('ps-report', 'ps-report-text', name, signal);
    const ps = psOut.json ? parsePsReportJson(psOut.out) : parsePsReport(psOut.out);
    const stOut = await withFallback('storage-list', 'storage-list-text', name, signal);
    const mounts = stOut.json ? parseStorageListJson(stOut.out) : parseStorageList(stOut.out);
    const deploySource = src['deploy-source'] || null;
    if (ps.deployed && deploySource === null) {
      notes.push(`${name} records no deploy-source: taken as deployed by git push`);
    }
    for (const m of mounts) {
      const why = mountOutsideArchive(m.hostPath);
      if (why) notes.push(`${name}: mount ${m.hostPath}:${m.containerPath}: ${why}`);
    }
    const app: ManifestApp = {
      name,
      method: deployMethod(deploySource ?? '', ps.deployed),
      deploySource,
      deploySourceMetadata: src['deploy-source-metadata'] || null,
      deployed: ps.deployed,
      running: ps.running,
      restore: ps.restore,
      mounts: mounts.map((m) => ({ hostPath: m.hostPath, containerPath: m.containerPath })),
    };
    return { app, warnings: notes };
  };
  for (const name of appNames.filter((n) => !isAppName(n))) {
    warn(`app ${JSON.stringify(name)} has a name Dokku no longer accepts: left out`);
  }
  const read = await inBatches(appNames.filter(isAppName), APPS_AT_ONCE, readApp, {
    signal: rt.task.signal,
  });
  const apps: ManifestApp[] = read.map((r) => r.app);
  for (const r of read) for (const w of r.warnings) warn(w);

  const pluginInfos = parsePluginList(await rt.exec('plugin-list'));
  const plugins: ManifestPlugin[] = pluginInfos.map((p) => ({
    name: p.name,
    version: p.version,
    enabled: p.enabled,
    core: p.core,
  }));
  const custom = plugins.filter((p) => !p.core).map((p) => p.name);
  if (custom.length > 0) rt.task.log(`custom plugins: ${custom.join(', ')}`);

  const services: ManifestService[] = [];
  const datastores = pluginInfos.filter(
    (p) => p.enabled && params.datastores.includes(p.name) && PLUGIN_NAME.test(p.name),
  );
  for (const p of datastores) {
    const names = parseServiceList(await rt.exec('service-list', { plugin: p.name }), p.name).map(
      (s) => s.name,
    );
    for (const name of names) {
      if (!isServiceName(name)) {
        warn(`${p.name} service ${JSON.stringify(name)} has an unexpected name: left out`);
        continue;
      }
      const f = parseFileValues(
        (await rt.exec('service-facts', { plugin: p.name, service: name })).stdout,
      );
      services.push({
        plugin: p.name,
        name,
        image: f.IMAGE ?? '',
        imageVersion: f.IMAGE_VERSION ?? '',
        links: (f.LINKS ?? '').split(/\s+/).filter((l) => l !== ''),
      });
    }
  }

  const networks = parseNetworkList(await rt.exec('network-list')).filter(
    (n) => !ENGINE_NETWORKS.has(n),
  );
  const kib = Number(/^(\d+)/.exec((await rt.exec('data-size')).stdout)?.[1]);
  const dataBytes = Number.isFinite(kib) ? kib * 1024 : 0;

  const manifest: Manifest = {
    version: 1,
    runId: options.runId,
    createdAt: new Date().toISOString(),
    source: {
      host: host.name,
      address: host.address,
      dokkuVersion: facts.version.raw,
      arch: facts.arch,
      dokkuUid: facts.uid,
      dokkuGid: facts.gid,
    },
    apps,
    services,
    plugins,
    networks,
    dataBytes,
    warnings,
  };
  await rt.exec('run-dirs');
  await rt.exec('write-manifest', {}, { stdin: `${JSON.stringify(manifest, null, 2)}\n` });
  const by = (m: DeployMethod) => apps.filter((a) => a.method === m).length;
  rt.task.log(
    `Dokku ${formatVersion(facts.version)} ${facts.arch}: ${apps.length} apps (git ${by('git')}, image ${by('image')}, archive ${by('archive')}, none ${by('none')}), ${services.length} services, ${custom.length} custom plugins, ${networks.length} networks, ${formatBytes(dataBytes)}`,
  );
  rt.task.hostState(host.name, `unchanged but for ${dir}/manifest.json`);
  return { manifest: manifest as unknown as Json, dir };
}

export default task.runs(run);
