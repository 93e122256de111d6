/**
 * Re-creates what lives outside Dokku's folders, and so outside the archive:
 * the networks apps attach to and the images datastores run on (in the
 * container engine), and the cron entries of scheduled datastore backups
 * and certificate renewals (/etc/cron.d/dokku-*: dokku-postgres'
 * backup-schedule, letsencrypt's cron job). Images are pulled only when
 * missing, before services start, so a failed pull shows here and not as a
 * service that will not start.
 */
import { StopError } from '../errors.js';
import { type Arg, arg, dokku, P, stageDir } from './common.js';
import type { TaskRun } from './runtime.js';
import { defineTask, type PlannedAction } from './types.js';

/** Networks every Docker engine has; never created. */
export const BUILTIN_NETWORKS = ['bridge', 'host', 'none'] as const;

/** Creates a network unless it exists. */
export function networkCommand(network: Arg): string {
  return `dokku --quiet network:list | grep -qxF -- ${arg(network)} || ${dokku('network:create', network)}`;
}

/** Pulls an image only when the engine lacks it. */
export function ensureImageCommand(image: Arg): string {
  return `if docker image inspect ${arg(image)} >/dev/null 2>&1; then echo present; else docker image pull ${arg(image)}; fi`;
}

/** The source's cron files of Dokku and its plugins, as a base64 tar (small text files). */
export const READ_CRON =
  "find /etc/cron.d -maxdepth 1 -type f -name 'dokku-*' -printf '%f\\0' | tar -C /etc/cron.d --null -T - -cf - | base64 -w0";

/** Writes the cron files read by {@link READ_CRON} (stdin) and lists them. */
export const WRITE_CRON = 'base64 -d | tar -C /etc/cron.d --no-same-owner -xvf -';

/** Cron files an archive may carry in its meta folder (meta/cron.d). */
export function archivedCronCommand(runId: string): string {
  const dir = `${stageDir(runId)}/meta/cron.d`;
  return `if [ -d ${arg(dir)} ]; then find ${arg(dir)} -maxdepth 1 -type f -name 'dokku-*' -exec install -m 0644 -t /etc/cron.d {} + -printf '%f\\n'; else echo ferry-no-cron; fi`;
}

const recreateEngine = defineTask({
  name: 'recreate-engine',
  summary: "create the networks again, pull each datastore's image, copy the dokku cron entries",
  runsOn: 'host',
  roleParams: ['from'],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: {
        type: 'string',
        description:
          'The role whose /etc/cron.d/dokku-* entries are copied (migrate: source). Without it, those an archive carries, if any.',
      },
      cron: {
        type: 'boolean',
        default: true,
        description:
          'Copy the cron entries (scheduled backups, certificate renewals). A drill turns this off: a scratch host must not run them.',
      },
    },
  },
  plan({ host, params, roles, options }) {
    const h = host!.name;
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        host: h,
        command: networkCommand(P.network),
        forEach: 'network',
        where: `networks of the manifest but ${BUILTIN_NETWORKS.join(', ')}`,
        changes: true,
      },
      {
        kind: 'remote',
        host: h,
        command: ensureImageCommand(P.image),
        forEach: 'service',
        where: "<image> is the service's IMAGE:IMAGE_VERSION in the manifest",
        why: 'a service whose image is missing does not start',
        changes: true,
      },
    ];
    if (!params.cron) return actions;
    const from = params.from === undefined ? undefined : roles[params.from];
    if (from) {
      actions.push(
        {
          kind: 'remote',
          host: from.name,
          command: READ_CRON,
          why: 'cron entries live in /etc, outside the archive',
        },
        {
          kind: 'remote',
          host: h,
          command: WRITE_CRON,
          stdin: "the source's dokku-* cron files (a tar, base64)",
          changes: true,
        },
      );
    } else {
      actions.push({
        kind: 'remote',
        host: h,
        command: archivedCronCommand(options.runId),
        why: 'cron entries live in /etc, outside the Dokku paths',
        changes: true,
      });
    }
    return actions;
  },
});
export default recreateEngine;

type Params = Parameters<typeof recreateEngine.plan>[0]['params'];

export const run: TaskRun<Params> = async (rt) => {
  const to = rt.ctx.host!.name;
  const manifest = rt.manifest();
  const builtin: readonly string[] = BUILTIN_NETWORKS;
  const networks = manifest.networks.filter((n) => !builtin.includes(n));
  const net = rt.action('remote', 'network:create');
  for (const network of networks) await rt.exec(net, { network });

  const ensure = rt.action('remote', 'docker image inspect');
  const images = [...new Set(manifest.services.map((s) => `${s.image}:${s.imageVersion}`))];
  const pulled: string[] = [];
  for (const image of images) {
    try {
      const r = await rt.exec(ensure, { image });
      if (r.stdout.trim() !== 'present') pulled.push(image);
    } catch (e) {
      throw new StopError(`cannot pull ${image} on ${to}`, {
        hint: 'Check that the host reaches its registry (docker image pull by hand); services on it would not start.',
        cause: e,
      });
    }
  }
  rt.task.log(`${networks.length} network(s); ${images.length} image(s), ${pulled.length} pulled`);

  let cron: string[] = [];
  if (rt.ctx.params.cron) {
    const read = rt.actions.find((a) => a.kind === 'remote' && a.command === READ_CRON);
    if (read?.kind === 'remote') {
      const tar = (await rt.exec(read)).stdout.trim();
      const r = await rt.exec(rt.action('remote', WRITE_CRON), {}, { stdin: tar });
      cron = r.stdout.split('\n').filter((l) => l.trim() !== '');
    } else {
      const r = await rt.exec(rt.action('remote', '/meta/cron.d'));
      if (r.stdout.includes('ferry-no-cron')) {
        rt.task.warn(
          'the archive holds no cron entries: re-create scheduled backups (PLUGIN:backup-schedule) and certificate renewals (letsencrypt:cron-job --add) by hand',
        );
      } else cron = r.stdout.split('\n').filter((l) => l.trim() !== '');
    }
    if (cron.length > 0) rt.task.log(`cron: ${cron.join(', ')}`);
  }
  return { networks, images, pulled, cron };
};
