/**
 * A command of the user's own, on a host: what a copied playbook adds around
 * the built-in steps (a maintenance page before the cut-over, a notification,
 * a check of one's own). The text is the playbook author's shell, run as is;
 * it is never built from a remote's output or from names in the inventory.
 */
import { Command } from '../ssh/shell.js';
import { defineTask, type RuntimeOf } from './types.js';

const task = defineTask({
  name: 'command',
  summary: "run a command of the playbook's own on the host",
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['run'],
    properties: {
      run: {
        type: 'string',
        minLength: 1,
        description: 'Shell text, run with bash as root (through sudo -n where the host says so).',
      },
      changes: {
        type: 'boolean',
        default: true,
        description: 'Whether the command changes the host (false: it only reads).',
      },
    },
  },
  actions: { run: [] },
  plan({ host, params }) {
    return [
      {
        kind: 'remote',
        id: 'run',
        host: host!.name,
        command: Command.script(params.run),
        changes: params.changes,
      },
    ];
  },
});

/** The command as planned: nothing to bind, nothing to decide. */
async function run(rt: RuntimeOf<typeof task>) {
  await rt.exec('run');
  return undefined;
}

export default task.runs(run);
