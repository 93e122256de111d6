/**
 * Keeps the newest `backup.keep` archives of this host and removes older
 * ones (the seed: "backups are regularly cleaned from the originating
 * server"). Only run folders (`<host>-<runId>`) holding a whole dokku-ferry
 * archive are counted: a folder of a failed run (a `.part` only), one of a
 * migration (no archive) and a safety archive (`<host>-pre-ferry-…`) are left alone.
 */
import type { Host, Inventory } from '../inventory/index.js';
import { $, type Command } from '../ssh/shell.js';
import { archiveFoldersCommand } from './common.js';
import { defineTask, type RuntimeOf } from './types.js';

/** Removes all but the newest `keep` archive folders of `host`; prints `removed <folder>` for each. */
export function retentionCommand(inventory: Inventory, host: Host, keep: number): Command {
  return $`${archiveFoldersCommand(inventory, host)} | tail -n +${keep + 1} | while IFS= read -r d; do rm -rf -- "$d" && printf 'removed %s\\n' "$d"; done`;
}

const task = defineTask({
  name: 'retention',
  summary: 'keep the newest backup.keep archives on the host, remove older ones',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      keep: {
        type: 'integer',
        minimum: 1,
        maximum: 10000,
        description: "Overrides the inventory's backup.keep.",
      },
    },
  },
  actions: { prune: [] },
  plan({ host, inventory, params }) {
    const keep = params.keep ?? inventory.backup.keep;
    return [
      {
        kind: 'remote',
        id: 'prune',
        host: host!.name,
        command: retentionCommand(inventory, host!, keep),
        why: `keep the newest ${keep}`,
        changes: true,
      },
    ];
  },
});

/** The folders a {@link retentionCommand} removed. */
export function parseRemoved(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => /^removed (.+)$/.exec(l)?.[1])
    .filter((d): d is string => d !== undefined);
}

async function run(rt: RuntimeOf<typeof task>) {
  const keep = rt.ctx.params.keep ?? rt.ctx.inventory.backup.keep;
  const removed = parseRemoved((await rt.exec('prune')).stdout);
  for (const d of removed) rt.task.log(`removed ${d}`);
  rt.task.log(
    removed.length > 0
      ? `kept the newest ${keep}, removed ${removed.length}`
      : `${keep} or fewer archives: nothing removed`,
  );
  return { keep, removed };
}

export default task.runs(run);
