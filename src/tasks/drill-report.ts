/**
 * Reports a drill's result: RTO (how long the restore took, from the first
 * step to the end of verify-apps) and RPO (how old the restored backup was:
 * its run id is its time). Computed by the runner from its journal; no commands.
 */
import { defineTask } from './types.js';

export default defineTask({
  name: 'drill-report',
  summary: 'report RTO (restore duration) and RPO (age of the restored backup)',
  runsOn: 'controller',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      rto_max: {
        type: 'integer',
        minimum: 1,
        description: 'Fail the drill when the restore took longer (seconds).',
      },
      rpo_max: {
        type: 'integer',
        minimum: 1,
        description: 'Fail the drill when the backup was older (seconds).',
      },
    },
  },
  plan() {
    return [];
  },
});
