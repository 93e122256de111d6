/**
 * Keeps the newest `backup.keep` archives of this host and removes older
 * ones (the seed: "backups are regularly cleaned from the originating
 * server"). Only folders holding a dokku-ferry archive are counted.
 */
import type { Host, Inventory } from '../inventory/index.js';
import { arg } from './common.js';
import { defineTask } from './types.js';

export function retentionCommand(inventory: Inventory, host: Host, keep: number): string {
  const dir = inventory.backup.dir.replace(/\/+$/, '');
  return `find ${arg(dir)} -mindepth 2 -maxdepth 2 -path ${arg(`${dir}/${host.name}-`)}'*/dokku.tar.*' ! -name '*.sha256' -printf '%h\\n' | sort -r | tail -n +${keep + 1} | xargs -r -d '\\n' rm -rf --`;
}

export default defineTask({
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
  plan({ host, inventory, params }) {
    const keep = params.keep ?? inventory.backup.keep;
    return [
      {
        kind: 'remote',
        host: host!.name,
        command: retentionCommand(inventory, host!, keep),
        why: `keep the newest ${keep}`,
        changes: true,
      },
    ];
  },
});
