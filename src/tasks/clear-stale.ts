/**
 * Removes what described the old host's running state and is false here:
 * deploy locks (a deploy would refuse to start), CONTAINER/IP/PORT files
 * (ids of containers that do not exist on this engine), service container ID
 * files, running build records. Holds automatic restore off (ps restore
 * false) so nothing starts an app from stale state before its rebuild;
 * rebuild-apps turns it back on as the manifest says.
 */
import {
  BUILDS_ROOT,
  DEPLOY_LOCK_DIRS_ALL_RELEASES,
  DOKKU_ROOT,
  SERVICES_ROOT,
} from '../dokku/layout.js';
import { $, type Command } from '../ssh/shell.js';
import { P } from './common.js';
import { cutoverOf, maintenanceOffCommand } from './cut-over.js';
import { defineTask, type RuntimeOf } from './types.js';

/** `find` over the folders that exist (find fails on a missing one, and a fresh host may lack some). */
function findIn(dirs: string[], rest: Command): Command {
  return $`set -- && for d in ${dirs}; do if [ -d "$d" ]; then set -- "$@" "$d"; fi; done && if [ $# -gt 0 ]; then find "$@" ${rest}; fi`;
}

/**
 * Locks a deploy left behind (they hold its build id or pid). An empty one is
 * a user's `apps:lock`, a deploy freeze the target keeps.
 */
export const CLEAR_DEPLOY_LOCKS = findIn(
  [...DEPLOY_LOCK_DIRS_ALL_RELEASES],
  $`-mindepth 2 -maxdepth 2 -name .deploy.lock -size +0c -print -delete`,
);
export const CLEAR_CONTAINER_FILES = findIn(
  [DOKKU_ROOT],
  $`-mindepth 2 -maxdepth 2 -type f \\( -name CONTAINER -o -name 'CONTAINER.*' -o -name 'IP.*' -o -name 'PORT.*' \\) -print -delete`,
);
export const CLEAR_SERVICE_IDS = findIn(
  [SERVICES_ROOT],
  $`-mindepth 3 -maxdepth 3 -type f -name ID -print -delete`,
);
export const CLEAR_RUNNING_BUILDS = $`[ ! -d ${BUILDS_ROOT} ] || { grep -rlZ --include='*.json' -E '"status": *"running"' ${BUILDS_ROOT} || [ $? -eq 1 ]; } | xargs -0r rm -fv --`;

const task = defineTask({
  name: 'clear-stale',
  summary:
    'remove deploy locks, container ids, service ids and running build records; hold restore off',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: {
    'clear-locks': [],
    'clear-container-files': [],
    'clear-service-ids': [],
    'clear-running-builds': [],
    'hold-restore': ['app'],
    'hold-restore-env': ['app'],
    'maintenance-off': ['app'],
  },
  plan({ host }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        id: 'clear-locks',
        host: h,
        command: CLEAR_DEPLOY_LOCKS,
        why: "a dead deploy's lock would block every deploy (an empty one is the user's apps:lock, and stays)",
        changes: true,
      },
      {
        kind: 'remote',
        id: 'clear-container-files',
        host: h,
        command: CLEAR_CONTAINER_FILES,
        why: 'ids of containers that exist only on the old engine',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'clear-service-ids',
        host: h,
        command: CLEAR_SERVICE_IDS,
        why: 'service container ids of the old engine',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'clear-running-builds',
        host: h,
        command: CLEAR_RUNNING_BUILDS,
        why: 'builds that were running there never finish here',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'hold-restore',
        host: h,
        command: $`dokku ps:set ${P.app} restore false`,
        forEach: 'app',
        where: 'every app of the manifest',
        why: 'nothing restarts an app from stale state before rebuild-apps deploys it',
        changes: true,
        fallback: [
          {
            kind: 'remote',
            id: 'hold-restore-env',
            host: h,
            command: $`dokku config:set --no-restart ${P.app} DOKKU_APP_RESTORE=0`,
            why: 'Dokku before 0.38 keeps the restore flag in the app ENV',
            changes: true,
          },
        ],
      },
      {
        kind: 'remote',
        id: 'maintenance-off',
        host: h,
        command: maintenanceOffCommand(P.app),
        forEach: 'app',
        where: 'apps the cut-over put in maintenance on the source (a migration)',
        why: "the source's freeze came along in /home/dokku/APP/nginx.conf.d: it is not this host's",
        changes: true,
      },
    ];
  },
});

/** Counts the lines a `-print`/`rm -v` command printed. */
function count(stdout: string): number {
  return stdout.split('\n').filter((l) => l.trim() !== '').length;
}

async function run(rt: RuntimeOf<typeof task>) {
  const to = rt.ctx.host!.name;
  const removed: Record<string, number> = {};
  for (const [key, id] of [
    ['locks', 'clear-locks'],
    ['containerFiles', 'clear-container-files'],
    ['serviceIds', 'clear-service-ids'],
    ['runningBuilds', 'clear-running-builds'],
  ] as const) {
    const r = await rt.exec(id);
    removed[key] = count(r.stdout);
  }
  rt.task.log(
    `removed ${removed.locks} deploy lock(s), ${removed.containerFiles} container file(s), ${removed.serviceIds} service id(s), ${removed.runningBuilds} running build record(s)`,
  );
  const held: string[] = [];
  for (const app of rt.manifest().apps) {
    try {
      await rt.exec('hold-restore', { app: app.name });
    } catch (e) {
      if (!rt.has('hold-restore-env')) throw e;
      await rt.exec('hold-restore-env', { app: app.name });
    }
    held.push(app.name);
  }
  const unfrozen = cutoverOf(rt.outputs)?.frozen.maintenance ?? [];
  for (const app of unfrozen) await rt.exec('maintenance-off', { app });
  if (unfrozen.length > 0) rt.task.log(`out of maintenance here: ${unfrozen.join(', ')}`);
  rt.task.hostState(
    to,
    `Dokku paths in place; automatic restore held off for ${held.length} app(s) until rebuild-apps`,
  );
  return { ...removed, restoreHeld: held, maintenanceOff: unfrozen };
}

export default task.runs(run);
