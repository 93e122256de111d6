/**
 * Refuses to start while anything changes the source: a deploy (its lock), a
 * running build, a `dokku` process. The seed: "run … when not executing any
 * Dokku commands or app deployments". With `against`, also compares the two
 * hosts: a target older than the source, of another CPU architecture, or
 * whose `dokku` user has another uid/gid (the archive keeps numeric owners) is refused.
 */
import type { Host } from '../inventory/index.js';
import type { PlannedAction, RemoteAction } from './types.js';
import { defineTask } from './types.js';

/** Deploy locks of 0.34+ (data/apps) and of ≤0.33 (the app root). */
export const DEPLOY_LOCKS =
  'find /var/lib/dokku/data/apps /home/dokku -mindepth 2 -maxdepth 2 -name .deploy.lock -print 2>/dev/null || true';

/** Running builds (0.38+: `builds:list` with no app lists only running ones). */
export const RUNNING_BUILDS = 'dokku builds:list --format json';

/** Processes of the dokku CLI or plugn; the `[/]` keeps grep from matching itself. */
export const DOKKU_PROCESSES =
  "ps -eo pid=,args= | grep -E '[/]usr/bin/dokku|[p]lugn trigger' || true";

/** Facts compared between hosts: Dokku version, CPU architecture, dokku uid and gid. */
export const HOST_FACTS = 'dokku version && uname -m && id -u dokku && id -g dokku';

export function facts(host: Host, role: string): RemoteAction {
  return {
    kind: 'remote',
    host: host.name,
    command: HOST_FACTS,
    capture: `${role}-facts`,
    why: `${role}: Dokku version, CPU architecture, dokku uid/gid`,
  };
}

export default defineTask({
  name: 'check-quiet',
  summary:
    'refuse while a deploy or dokku command runs; compare version, arch and dokku uid with another host',
  runsOn: 'host',
  roleParams: ['against'],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      against: {
        type: 'string',
        description:
          'A role whose host must run the same or a newer Dokku, on the same CPU architecture, with the same dokku uid/gid.',
      },
    },
  },
  plan({ host, params, roles, step }) {
    const h = host!;
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        host: h.name,
        command: DEPLOY_LOCKS,
        expect:
          'no output; a lock holding a build id or pid means a deploy is running (an empty one is `apps:lock`)',
      },
      { kind: 'remote', host: h.name, command: RUNNING_BUILDS, expect: '[] (no build running)' },
      { kind: 'remote', host: h.name, command: DOKKU_PROCESSES, expect: 'no output' },
    ];
    const other = params.against ? roles[params.against] : undefined;
    if (other) {
      actions.push(facts(h, step.on), {
        ...facts(other, params.against!),
        expect: `version not older than ${h.name}'s, same architecture, same dokku uid and gid`,
      });
    }
    return actions;
  },
});
