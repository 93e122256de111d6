/**
 * Moves the staged tree into place, one seed path at a time. What the host
 * had there (a fresh install's skeleton, or a forced target's data, archived
 * by check-target) is renamed `<path>.ferry-pre-<run>`, not deleted, so an
 * interrupted run can be rolled back by hand. Owners stay numeric (tar
 * --numeric-owner); check-quiet proved the dokku uid/gid match.
 */
import { ARCHIVE_PATHS, arg, stageDir } from './common.js';
import { defineTask } from './types.js';

/** Puts `/<rel>` from the stage in place, keeping the old one aside. */
export function moveIntoPlaceCommand(stage: string, rel: string, runId: string): string {
  const from = arg(`${stage}/root/${rel}`);
  const to = arg(`/${rel}`);
  const aside = arg(`/${rel}.ferry-pre-${runId}`);
  return `if [ -e ${from} ]; then if [ -e ${to} ]; then mv -T ${to} ${aside}; fi; mkdir -p "$(dirname ${to})" && mv -T ${from} ${to}; fi`;
}

export default defineTask({
  name: 'extract',
  summary: 'move the staged Dokku paths into place, keeping what was there aside',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  plan({ host, options }) {
    const stage = stageDir(options.runId);
    return ARCHIVE_PATHS.map((rel) => ({
      kind: 'remote' as const,
      host: host!.name,
      command: moveIntoPlaceCommand(stage, rel, options.runId),
      why: `/${rel}`,
      changes: true,
    }));
  },
});
