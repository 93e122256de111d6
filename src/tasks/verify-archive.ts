/**
 * Compares the SHA-256 of what was sent with what arrived (a mismatch stops
 * the run before anything is moved into place), checks every datastore
 * export against its sum, and that the stage holds a Dokku tree.
 */
import { arg, path, runDir, stageDir } from './common.js';
import { defineTask } from './types.js';

/** Sanity of the staged tree: the folders every Dokku host has. */
export function stagedTreeCommand(stage: string): string {
  const root = `${stage}/root`;
  return `test -d ${arg(`${root}/home/dokku`)} && test -d ${arg(`${root}/var/lib/dokku/data`)}`;
}

/** Checks the exports that came with the data. */
export function exportSumsCheckCommand(stage: string): string {
  return `cd ${arg(`${stage}/meta/exports`)} && sha256sum -c --quiet SHA256SUMS`;
}

export default defineTask({
  name: 'verify-archive',
  summary: 'compare checksums of what was sent and what arrived; check the exports',
  runsOn: 'host',
  roleParams: ['from'],
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: { type: 'string', description: 'The role the data came from (as in transfer).' },
      data: {
        enum: ['live', 'latest', 'given'],
        default: 'live',
        description: 'As in the transfer step before it.',
      },
    },
  },
  plan({ host, params, roles, options, inventory }) {
    const stage = stageDir(options.runId);
    const src = roles[params.from];
    const sent =
      params.data === 'live' && src
        ? {
            kind: 'remote' as const,
            host: src.name,
            command: `cat ${arg(`${runDir(inventory, src, options.runId)}/stream.sha256`)}`,
            capture: 'sent-sha256',
            why: 'the sum the sender computed over the bytes it sent',
          }
        : {
            kind: 'remote' as const,
            host: host!.name,
            command: `cut -d' ' -f1 ${arg(path(`${stage}/meta/`))}dokku.tar.*.sha256`,
            capture: 'sent-sha256',
            why: 'the sum written when the archive was made',
          };
    return [
      sent,
      {
        kind: 'remote',
        host: host!.name,
        command: `cat ${arg(`${stage}/data.sha256`)}`,
        capture: 'received-sha256',
        expect: 'equal to <sent-sha256>; else stop: nothing has been moved into place',
      },
      {
        kind: 'remote',
        host: host!.name,
        command: exportSumsCheckCommand(stage),
        expect: 'exit 0 (every export whole)',
      },
      { kind: 'remote', host: host!.name, command: stagedTreeCommand(stage), expect: 'exit 0' },
    ];
  },
});
