/**
 * Removes what described the old host's running state and is false here:
 * deploy locks (a deploy would refuse to start), CONTAINER/IP/PORT files
 * (ids of containers that do not exist on this engine), service container ID
 * files, running build records. Holds automatic restore off (ps restore
 * false) so nothing starts an app from stale state before its rebuild.
 */
import { dokku, P } from './common.js';
import { defineTask } from './types.js';

export const CLEAR_DEPLOY_LOCKS =
  'find /var/lib/dokku/data/apps /home/dokku -mindepth 2 -maxdepth 2 -name .deploy.lock -print -delete';
export const CLEAR_CONTAINER_FILES =
  "find /home/dokku -mindepth 2 -maxdepth 2 -type f \\( -name CONTAINER -o -name 'CONTAINER.*' -o -name 'IP.*' -o -name 'PORT.*' \\) -print -delete";
export const CLEAR_SERVICE_IDS =
  'find /var/lib/dokku/services -mindepth 3 -maxdepth 3 -type f -name ID -print -delete';
export const CLEAR_RUNNING_BUILDS =
  '[ ! -d /var/lib/dokku/data/builds ] || { grep -rlZ --include=\'*.json\' -E \'"status": *"running"\' /var/lib/dokku/data/builds || [ $? -eq 1 ]; } | xargs -0r rm -fv --';

export default defineTask({
  name: 'clear-stale',
  summary:
    'remove deploy locks, container ids, service ids and running build records; hold restore off',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  plan({ host }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        host: h,
        command: CLEAR_DEPLOY_LOCKS,
        why: 'a copied lock would block every deploy',
        changes: true,
      },
      {
        kind: 'remote',
        host: h,
        command: CLEAR_CONTAINER_FILES,
        why: 'ids of containers that exist only on the old engine',
        changes: true,
      },
      {
        kind: 'remote',
        host: h,
        command: CLEAR_SERVICE_IDS,
        why: 'service container ids of the old engine',
        changes: true,
      },
      {
        kind: 'remote',
        host: h,
        command: CLEAR_RUNNING_BUILDS,
        why: 'builds that were running there never finish here',
        changes: true,
      },
      {
        kind: 'remote',
        host: h,
        command: dokku('ps:set', P.app, 'restore', 'false'),
        forEach: 'app',
        why: 'nothing restarts an app from stale state before rebuild-apps deploys it',
        changes: true,
      },
    ];
  },
});
