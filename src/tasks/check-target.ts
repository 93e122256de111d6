/**
 * A target that already holds Dokku data (apps or services) is refused unless
 * `--force`, and then only after a safety archive of it. A scratch host (a
 * drill) is overwritten by design; its data is moved aside, not archived.
 * Also reads free space, compared with the source's size by the runner.
 */
import { archiveActions } from './archive.js';
import { runDir } from './common.js';
import type { PlannedAction } from './types.js';
import { defineTask } from './types.js';

/** Lists apps (folders in /home/dokku) and services (<plugin>/<name>) already on a host. */
export const EXISTING_DATA =
  "{ find /home/dokku -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf 'app %f\\n'; find /var/lib/dokku/services -mindepth 2 -maxdepth 2 -type d -printf 'service %P\\n'; } 2>/dev/null || true";

/** Free space (KiB) where the archive paths land and where the stage is written. */
export const FREE_SPACE = 'df -Pk /home /var/lib';

export default defineTask({
  name: 'check-target',
  summary: 'refuse a target holding Dokku data unless --force (then archive it first)',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      scratch: {
        type: 'boolean',
        default: false,
        description:
          'The host is a scratch host (a drill): existing data is replaced without --force and without a safety archive.',
      },
    },
  },
  plan({ host, params, options, inventory }) {
    const h = host!;
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        host: h.name,
        command: EXISTING_DATA,
        capture: 'existing-data',
        expect: params.scratch
          ? 'anything (a scratch host is overwritten)'
          : options.force
            ? 'anything (--force: a safety archive is taken first)'
            : 'no output: no app or service yet (else stop: use --force)',
      },
      {
        kind: 'remote',
        host: h.name,
        command: FREE_SPACE,
        expect: "free space above the source's Dokku data (measured by the inventory step)",
      },
    ];
    if (options.force && !params.scratch) {
      actions.push(
        ...archiveActions(
          inventory,
          h,
          runDir(inventory, `${h.name}-pre-ferry`, options.runId),
          'zstd',
        ).map((a) => ({ ...a, why: `safety archive before --force: ${a.why ?? ''}` })),
      );
    }
    return actions;
  },
});
