/**
 * Reads what is on the source and writes it down as the run's manifest: apps
 * and how each was deployed (git push, git:from-image, git:from-archive),
 * services per datastore plugin, plugins (core or custom), storage mounts
 * (warned when outside /var/lib/dokku/data/storage: the archive misses them),
 * networks, the Dokku version and the size of the data. Later steps act on it.
 */

import { parseAppsList } from '../dokku/apps.js';
import { PLUGIN_AVAILABLE, propertyDir } from '../dokku/layout.js';
import { isAppName, isServiceName, PLUGIN_NAME } from '../dokku/names.js';
import { type NetworkInfo, parseNetworkList, parseNetworkListJson } from '../dokku/network.js';
import { parsePluginCapabilities, parsePluginList } from '../dokku/plugins.js';
import { parsePsReport, parsePsReportJson } from '../dokku/ps.js';
import { parseServiceList } from '../dokku/services.js';
import { parseStorageList, parseStorageListJson } from '../dokku/storage.js';
import { formatVersion } from '../dokku/version.js';
import { StopError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { inBatches } from '../util/concurrency.js';
import { formatBytes } from '../util/format.js';
import { DEPLOY_LOCKS, HOST_FACTS, parseDeployLocks, parseHostFacts } from './check-quiet.js';
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
  ManifestDatastore,
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

/**
 * What a datastore plugin can do: its `subcommands/` files (`sub NAME`) and the
 * unimplemented ones its `config` lists (`unimplemented "A" "B"`).
 */
export function pluginCapabilitiesCommand(plugin: Arg): Command {
  const dir = $`${PLUGIN_AVAILABLE}/${plugin}`;
  return $`if [ -d ${dir}/subcommands ]; then for f in ${dir}/subcommands/*; do [ ! -e "$f" ] || printf 'sub %s\\n' "\${f##*/}"; done; fi; sed -n 's/^export PLUGIN_UNIMPLEMENTED_SUBCOMMANDS=(\\(.*\\))$/unimplemented \\1/p' ${dir}/config 2>/dev/null || true`;
}

/** Each app's scheduler property and the global one (`selected`, written by scheduler:set). */
export const SCHEDULERS = $`d=${propertyDir('scheduler')}; [ ! -d "$d" ] || for f in "$d"/*/selected; do [ ! -s "$f" ] || printf '%s %s\\n' "$(basename "$(dirname "$f")")" "$(cat "$f")"; done`;

/** The apps (of `apps`) that run on k3s: their own scheduler, else the global one. */
export function parseSchedulers(stdout: string, apps: readonly string[]): string[] {
  const selected = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) (\S+)$/.exec(line.trim());
    if (m) selected.set(m[1]!, m[2]!);
  }
  const global = selected.get('--global');
  return apps.filter((a) => (selected.get(a) ?? global) === 'k3s');
}

/**
 * The networks to create again: those Dokku manages (DokkuManaged from 0.38.22,
 * its label before), with their driver; before 0.35.3 (no JSON) every network
 * but the engine's own. A network Dokku did not create is left to its owner.
 */
async function readNetworks(
  rt: RuntimeOf<typeof task>,
  warn: (m: string) => void,
): Promise<string[]> {
  let listed: NetworkInfo[] | undefined;
  try {
    listed = parseNetworkListJson(await rt.exec('network-list'));
  } catch {
    return parseNetworkList(await rt.exec('network-list-text')).filter(
      (n) => !ENGINE_NETWORKS.has(n),
    );
  }
  const managed = listed.filter(
    (n) => !ENGINE_NETWORKS.has(n.name) && (n.dokkuManaged ?? DOKKU_NETWORK_LABEL in n.labels),
  );
  for (const n of listed.filter((x) => !ENGINE_NETWORKS.has(x.name) && !managed.includes(x))) {
    rt.task.log(`network ${n.name} is not Dokku's (no ${DOKKU_NETWORK_LABEL} label): left alone`);
  }
  for (const n of managed.filter((x) => x.driver !== '' && x.driver !== 'bridge')) {
    warn(
      `network ${n.name} uses the ${n.driver} driver: network:create makes bridge networks, create it on the target yourself`,
    );
  }
  return managed.map((n) => n.name);
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
    'deploy-locks': [],
    'deploy-source': ['app'],
    'ps-report': ['app'],
    'ps-report-text': ['app'],
    'storage-list': ['app'],
    'storage-list-text': ['app'],
    'plugin-list': [],
    'service-list': ['plugin'],
    'plugin-capabilities': ['plugin'],
    'service-facts': ['plugin', 'service'],
    'service-status': ['plugin', 'service'],
    'network-list': [],
    'network-list-text': [],
    schedulers: [],
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
      r('deploy-locks', DEPLOY_LOCKS, {
        why: 'apps the user locked with apps:lock (an empty lock): the target keeps the freeze',
      }),
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
      r('plugin-capabilities', pluginCapabilitiesCommand(P.plugin), {
        forEach: 'plugin',
        where: 'datastore plugins with services',
        why: 'what each plugin implements (dokku-memcached has no export): nothing is called that is not there',
      }),
      r('service-facts', serviceFactsCommand(P.plugin, P.service), {
        forEach: 'service',
        why: 'image, version and linked apps of each service',
      }),
      r('service-status', $`dokku ${P.plugin}:info ${P.service} --status`, {
        forEach: 'service',
        why: 'running or stopped: a stopped service is carried as it is, not exported',
      }),
      r('network-list', $`dokku network:list --format json`, {
        why: 'networks to create again on the target: the Dokku-managed ones, with their driver',
        fallback: [
          r('network-list-text', $`dokku --quiet network:list`, {
            why: "a Dokku before 0.35.3 (no --format json): every network but the engine's own",
          }),
        ],
      }),
      r('schedulers', SCHEDULERS, {
        why: 'an app scheduled on k3s runs in a Kubernetes cluster, not on this host: refused before anything changes',
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

/** The label `network:create` puts on the networks Dokku makes (plugins/network, 0.38.27). */
const DOKKU_NETWORK_LABEL = 'com.dokku.network-name';

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
  const userLocked = new Set(
    parseDeployLocks((await rt.exec('deploy-locks')).stdout)
      .filter((l) => l.size === 0 && !l.held)
      .map((l) => l.app),
  );
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
      ...(userLocked.has(name) ? { locked: true } : {}),
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
  const capabilities: Record<string, ManifestDatastore> = {};
  const datastores = pluginInfos.filter(
    (p) => p.enabled && params.datastores.includes(p.name) && PLUGIN_NAME.test(p.name),
  );
  for (const p of datastores) {
    const names = parseServiceList(await rt.exec('service-list', { plugin: p.name }), p.name).map(
      (s) => s.name,
    );
    if (names.length > 0) {
      const caps = parsePluginCapabilities(
        (await rt.exec('plugin-capabilities', { plugin: p.name })).stdout,
      );
      capabilities[p.name] = caps;
      if (caps.unimplemented.length > 0) {
        rt.task.log(`${p.name} does not implement ${caps.unimplemented.join(', ')}`);
      }
    }
    for (const name of names) {
      if (!isServiceName(name)) {
        warn(`${p.name} service ${JSON.stringify(name)} has an unexpected name: left out`);
        continue;
      }
      const vars = { plugin: p.name, service: name };
      const f = parseFileValues((await rt.exec('service-facts', vars)).stdout);
      const status = await rt.exec('service-status', vars, { allowCodes: [0, 1] });
      const state = status.code === 0 ? status.stdout.trim() || 'unknown' : 'unknown';
      if (state !== 'running') {
        rt.task.log(`${p.name} ${name} is ${state} on ${host.name}: carried as it is`);
      }
      services.push({
        plugin: p.name,
        name,
        image: f.IMAGE ?? '',
        imageVersion: f.IMAGE_VERSION ?? '',
        links: (f.LINKS ?? '').split(/\s+/).filter((l) => l !== ''),
        status: state,
      });
    }
  }

  const networks = await readNetworks(rt, warn);
  const k3s = parseSchedulers(
    (await rt.exec('schedulers')).stdout,
    apps.map((a) => a.name),
  );
  if (k3s.length > 0) {
    throw new StopError(
      `${k3s.join(', ')} ${k3s.length === 1 ? 'is' : 'are'} scheduled on k3s: ${k3s.length === 1 ? 'its' : 'their'} containers run in a Kubernetes cluster, not on ${host.name}, and ferry moves what runs on the host`,
      {
        hint: `Move the k3s apps with the cluster's own tools, then switch them off here (dokku scheduler:set APP selected docker-local) or leave them out, and run again. Nothing was changed.`,
      },
    );
  }
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
    datastores: capabilities,
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
