/**
 * Compares the SHA-256 of what was sent with what arrived (a mismatch stops
 * the run before anything is moved into place), checks every datastore
 * export against its sum, and that the stage holds a Dokku tree.
 */
import { StopError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { runDir } from './common.js';
import { notExported } from './export-datastores.js';
import { discardStageCommand, stageDir, stagePaths } from './stage.js';
import { defineTask, type RuntimeOf } from './types.js';

/** Sanity of the staged tree: the folders every Dokku host has. */
export function stagedTreeCommand(runId: string): Command {
  const s = stagePaths(runId);
  return $`test -d ${s.home} && test -d ${`${s.libTree}/data`}`;
}

/**
 * Checks the exports that came with the data and lists them. An empty
 * SHA256SUMS (no services) is fine; a missing one is not.
 */
export function exportSumsCheckCommand(stage: string): Command {
  return $`cd ${`${stage}/meta/exports`} && { [ ! -s SHA256SUMS ] || sha256sum -c --quiet --strict SHA256SUMS; } && cut -c67- SHA256SUMS`;
}

const SHA256 = /^[0-9a-f]{64}$/;

const verifyArchive = defineTask({
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
  actions: {
    'sent-sum': [],
    'received-sum': [],
    'export-sums-check': [],
    'staged-tree': [],
    'discard-stage': [],
  },
  plan({ host, params, roles, options, inventory }) {
    const stage = stageDir(options.runId);
    const src = roles[params.from];
    const sent =
      params.data === 'live' && src
        ? {
            kind: 'remote' as const,
            id: 'sent-sum',
            host: src.name,
            command: $`cat ${`${runDir(inventory, src, options.runId)}/stream.sha256`}`,
            capture: 'sent-sha256',
            why: 'the sum the sender computed over the bytes it sent',
          }
        : {
            kind: 'remote' as const,
            id: 'sent-sum',
            host: host!.name,
            command: $`cut -d' ' -f1 ${`${stage}/meta/`}dokku.tar.*.sha256`,
            capture: 'sent-sha256',
            why: 'the sum written when the archive was made',
          };
    return [
      sent,
      {
        kind: 'remote',
        id: 'received-sum',
        host: host!.name,
        command: $`cat ${`${stage}/data.sha256`}`,
        capture: 'received-sha256',
        expect: 'equal to <sent-sha256>; else stop: nothing has been moved into place',
      },
      {
        kind: 'remote',
        id: 'export-sums-check',
        host: host!.name,
        command: exportSumsCheckCommand(stage),
        expect: 'exit 0 (every export whole); one export per service of the manifest',
      },
      {
        kind: 'remote',
        id: 'staged-tree',
        host: host!.name,
        command: stagedTreeCommand(options.runId),
        expect: 'exit 0',
      },
      {
        kind: 'remote',
        id: 'discard-stage',
        host: host!.name,
        command: discardStageCommand(options.runId),
        only: 'the sums differ: what arrived cannot be trusted',
        changes: true,
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof verifyArchive>) {
  const to = rt.ctx.host!.name;
  const s = stagePaths(rt.ctx.options.runId);
  const nothingMoved = `stage at ${s.home} and ${s.lib} (meta ${s.meta}); nothing moved into place`;
  // Four reads, asked at once (each is a round trip); judged in order below.
  const [sentR, receivedR, listedR, treeR] = await Promise.allSettled([
    rt.exec('sent-sum'),
    rt.exec('received-sum'),
    rt.exec('export-sums-check'),
    rt.exec('staged-tree'),
  ]);
  if (sentR.status === 'rejected') throw sentR.reason;
  if (receivedR.status === 'rejected') throw receivedR.reason;
  const sent = sentR.value.stdout.trim();
  const received = receivedR.value.stdout.trim();
  if (!SHA256.test(received) || !SHA256.test(sent) || sent !== received) {
    await rt.exec('discard-stage');
    rt.task.hostState(to, 'checksum mismatch: the stage was discarded; nothing moved into place');
    const from = rt.ctx.roles[rt.ctx.params.from]?.name ?? 'this machine';
    const archive = rt.ctx.options.archive?.path;
    throw new StopError(
      rt.ctx.params.data === 'live'
        ? `checksum mismatch: ${from} sent sha256 ${sent || '(none)'}, ${to} received ${received || '(none)'}`
        : `the archive${archive ? ` ${archive}` : ''} is damaged: its .sha256 file says ${sent || '(none)'}, the bytes that arrived hash to ${received || '(none)'}`,
      {
        hint: 'The data changed on the way or on disk, or the transfer was cut short. Nothing was moved into place; run the command again (--resume re-runs from here, a new run copies again), or restore another copy of the archive.',
      },
    );
  }
  rt.task.log(`sha256 ${received} at both ends`);
  if (listedR.status === 'rejected') {
    rt.task.hostState(to, nothingMoved);
    throw new StopError(`a datastore export does not match its checksum (or none came)`, {
      hint: `Nothing was moved into place. Look at ${s.meta}/exports on ${to}; run the command again to copy them again.`,
      cause: listedR.reason,
    });
  }
  const listed = listedR.value.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const manifest = rt.manifest();
  for (const svc of manifest.services) {
    const file = `${svc.plugin}-${svc.name}.dump`;
    if (listed.includes(file)) continue;
    const why = notExported(svc, manifest.datastores?.[svc.plugin]);
    if (why) rt.task.log(`${svc.plugin} ${svc.name} has no export: ${why}`);
    else {
      rt.task.warn(
        `no export ${file} came with the data: that service cannot be re-created if its copy does not start`,
      );
    }
  }
  if (treeR.status === 'rejected') {
    rt.task.hostState(to, nothingMoved);
    throw new StopError('the stage holds no Dokku tree (/home/dokku and /var/lib/dokku/data)', {
      hint: 'The source or archive did not hold Dokku data; nothing was moved into place.',
    });
  }
  rt.task.hostState(to, `verified stage at ${s.home} and ${s.lib}; nothing moved into place`);
  return { sha256: received, exports: listed.length };
}

export default verifyArchive.runs(run);
