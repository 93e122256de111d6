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
import { $, type Command } from '../ssh/shell.js';
import { type Arg, P } from './common.js';
import { stageDir } from './stage.js';
import { defineTask, type PlannedAction, type RuntimeOf } from './types.js';

/** Networks every Docker engine has; never created. */
export const BUILTIN_NETWORKS = ['bridge', 'host', 'none'] as const;

/**
 * Creates a network unless it exists (a `--force` target may have it from
 * before). The list is read whole before it is searched: `network:list |
 * grep -q` let grep leave early, the list died of SIGPIPE, pipefail failed
 * the pipe, and `network:create` ran on a network that was there.
 */
export function networkCommand(network: Arg): Command {
  return $`n=${network}; have=$(dokku --quiet network:list); if grep -qxF -- "$n" <<<"$have"; then echo "network $n exists"; else dokku network:create "$n"; fi`;
}

/** Pulls an image only when the engine lacks it. */
export function ensureImageCommand(image: Arg): Command {
  return $`if docker image inspect ${image} >/dev/null 2>&1; then echo present; else docker image pull ${image}; fi`;
}

/** The source's cron files of Dokku and its plugins, as a base64 tar (small text files). */
export const READ_CRON = $`find /etc/cron.d -maxdepth 1 -type f -name 'dokku-*' -printf '%f\\0' | tar -C /etc/cron.d --null -T - -cf - | base64 -w0`;

/** Writes the cron files read by {@link READ_CRON} (stdin) with the source's modes (0644, as the plugin writes them) and lists them. */
export const WRITE_CRON = $`base64 -d | tar -C /etc/cron.d --no-same-owner -xvf -`;

/** The dokku-* cron files this host has now, one name a line. */
export const LIST_CRON = $`find /etc/cron.d -maxdepth 1 -type f -name 'dokku-*' -printf '%f\\n'`;

/** Removes the dokku-* cron files named on stdin (one a line). */
export const REMOVE_CRON = $`while IFS= read -r f; do case $f in dokku-*) [ "\${f#*/}" = "$f" ] && rm -f -- "/etc/cron.d/$f" && echo "$f" ;; esac; done`;

/**
 * Cron files an archive may carry in its meta folder (meta/cron.d), installed
 * root:root 0644: the mode dokku-postgres' backup-schedule (common-functions)
 * gives them, which the source's own entries have (the archive keeps them 0600).
 */
export function archivedCronCommand(runId: string): Command {
  const dir = `${stageDir(runId)}/meta/cron.d`;
  return $`if [ -d ${dir} ]; then find ${dir} -maxdepth 1 -type f -name 'dokku-*' -exec install -m 0644 -t /etc/cron.d {} + -printf '%f\\n'; else echo ferry-no-cron; fi`;
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
  actions: {
    network: ['network'],
    image: ['image'],
    'read-cron': [],
    'write-cron': [],
    'archived-cron': [],
    'cron-before': [],
    'cron-remove': [],
  },
  plan({ host, params, roles, options }) {
    const h = host!.name;
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        id: 'network',
        host: h,
        command: networkCommand(P.network),
        forEach: 'network',
        where: `networks of the manifest but ${BUILTIN_NETWORKS.join(', ')}`,
        changes: true,
      },
      {
        kind: 'remote',
        id: 'image',
        host: h,
        command: ensureImageCommand(P.image),
        forEach: 'service',
        where: "<image> is the service's IMAGE:IMAGE_VERSION in the manifest",
        why: 'a service whose image is missing does not start',
        changes: true,
      },
    ];
    if (!params.cron) return actions;
    actions.push(
      {
        kind: 'remote',
        id: 'cron-before',
        host: h,
        command: LIST_CRON,
        why: 'the entries this host had: only the ones added here are taken back by an undo',
      },
      {
        kind: 'remote',
        id: 'cron-remove',
        host: h,
        command: REMOVE_CRON,
        stdin: 'the entries this step added',
        only: "a later step fails before the target is verified (the playbook's undo range)",
        changes: true,
      },
    );
    const from = params.from === undefined ? undefined : roles[params.from];
    if (from) {
      actions.push(
        {
          kind: 'remote',
          id: 'read-cron',
          host: from.name,
          command: READ_CRON,
          why: 'cron entries live in /etc, outside the archive',
        },
        {
          kind: 'remote',
          id: 'write-cron',
          host: h,
          command: WRITE_CRON,
          stdin: "the source's dokku-* cron files (a tar, base64)",
          changes: true,
        },
      );
    } else {
      actions.push({
        kind: 'remote',
        id: 'archived-cron',
        host: h,
        command: archivedCronCommand(options.runId),
        why: 'cron entries live in /etc, outside the Dokku paths',
        changes: true,
      });
    }
    return actions;
  },
});
async function run(rt: RuntimeOf<typeof recreateEngine>) {
  const to = rt.ctx.host!.name;
  const manifest = rt.manifest();
  const builtin: readonly string[] = BUILTIN_NETWORKS;
  const networks = manifest.networks.filter((n) => !builtin.includes(n));
  for (const network of networks) await rt.exec('network', { network });

  const images = [...new Set(manifest.services.map((s) => `${s.image}:${s.imageVersion}`))];
  const pulled: string[] = [];
  for (const image of images) {
    try {
      const r = await rt.exec('image', { image });
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
  let had: string[] = [];
  if (rt.ctx.params.cron) {
    had = lines((await rt.exec('cron-before')).stdout);
    if (rt.has('read-cron')) {
      const tar = (await rt.exec('read-cron')).stdout.trim();
      const r = await rt.exec('write-cron', {}, { stdin: tar });
      cron = r.stdout.split('\n').filter((l) => l.trim() !== '');
    } else {
      const r = await rt.exec('archived-cron');
      if (r.stdout.includes('ferry-no-cron')) {
        rt.task.warn(
          'the archive holds no cron entries: re-create scheduled backups (PLUGIN:backup-schedule) and certificate renewals (letsencrypt:cron-job --add) by hand',
        );
      } else cron = r.stdout.split('\n').filter((l) => l.trim() !== '');
    }
    if (cron.length > 0) rt.task.log(`cron: ${cron.join(', ')}`);
  }
  const added = cron.map((f) => f.replace(/^\.\//, '')).filter((f) => !had.includes(f));
  return { networks, images, pulled, cron, cronAdded: added };
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

async function undo(rt: RuntimeOf<typeof recreateEngine>) {
  if (!rt.has('cron-remove')) return;
  const mine = Object.values(rt.outputs).find((o) => Array.isArray(o.cronAdded))?.cronAdded;
  const added = Array.isArray(mine) ? mine.filter((x): x is string => typeof x === 'string') : [];
  if (added.length === 0) return;
  const r = await rt.exec('cron-remove', {}, { stdin: `${added.join('\n')}\n` });
  rt.task.log(`cron entries taken back: ${lines(r.stdout).join(', ')}`);
}

export default recreateEngine.runs(run, { undo });
