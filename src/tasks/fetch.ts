/**
 * Streams the run's archive folder (archive, checksum, exports, manifest)
 * from the host to a folder here, then checks every checksum here: an
 * off-host copy, as the seed recommends ("moved offsite"). The bytes pass
 * through pipes (ssh channel → local tar), never held whole in memory.
 */
import { FerryError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { formatBytes } from '../util/format.js';
import { runDir } from './common.js';
import { defineTask, type Json, type RuntimeOf } from './types.js';

export function sendFolderCommand(dir: string): Command {
  const parent = dir.replace(/\/[^/]+$/, '') || '/';
  const name = dir.slice(parent.length + 1);
  return $`tar -C ${parent} -cf - ${name}`;
}

/** Unpacks the folder under `dest`; the folder itself is made root-only (it holds secrets). */
export function receiveFolderCommand(dest: string, name: string): Command {
  return $`mkdir -p -m 0700 ${dest} && tar -C ${dest} --no-same-owner -xf - && chmod 0700 ${`${dest}/${name}`}`;
}

/**
 * Checks the archive against its `.sha256` and every export against
 * SHA256SUMS (none when the host has no datastore), then prints the archive's sum line.
 */
export function checkFetchedCommand(folder: string): Command {
  return $`cd ${folder} && sha256sum -c --quiet dokku.tar.*.sha256 && { [ ! -s exports/SHA256SUMS ] || (cd exports && sha256sum -c --quiet SHA256SUMS); } && cat dokku.tar.*.sha256`;
}

const task = defineTask({
  name: 'fetch',
  summary: 'stream the archive, exports and manifest here; check their checksums here',
  runsOn: 'controller',
  roleParams: ['from'],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: { type: 'string', default: 'source', description: 'The role holding the archive.' },
    },
  },
  actions: { fetch: [], 'check-here': [] },
  plan({ params, roles, inventory, options }) {
    const src = roles[params.from]!;
    const dir = runDir(inventory, src, options.runId);
    const dest = options.fetch ?? '<fetch-dir>';
    const name = dir.slice(dir.lastIndexOf('/') + 1);
    return [
      {
        kind: 'stream',
        id: 'fetch',
        from: src.name,
        to: 'controller',
        route: 'relay',
        send: sendFolderCommand(dir),
        receive: receiveFolderCommand(dest, name),
        changes: true,
      },
      {
        kind: 'local',
        id: 'check-here',
        command: checkFetchedCommand(`${dest}/${name}`),
        expect: "exit 0: the copy here is whole; its sum is the archive step's",
      },
    ];
  },
});
async function run(rt: RuntimeOf<typeof task>) {
  const { params, roles, inventory, options } = rt.ctx;
  const src = roles[params.from]!;
  const dir = runDir(inventory, src, options.runId);
  const name = dir.slice(dir.lastIndexOf('/') + 1);
  if (!options.fetch) throw new FerryError('fetch needs --fetch DIR');
  const here = `${options.fetch}/${name}`;
  const moved = await rt.stream('fetch');
  rt.task.log(`${formatBytes(moved.bytes)} from ${src.name} in ${moved.seconds.toFixed(1)} s`);
  const said = (await rt.exec('check-here')).stdout;
  const sha256 = /^([0-9a-f]{64}) /m.exec(said)?.[1];
  // The archive step's sum, journalled when it was computed on the host.
  const expected = Object.values(rt.outputs).find(
    (o) =>
      typeof o.path === 'string' && o.path.startsWith(`${dir}/`) && typeof o.sha256 === 'string',
  )?.sha256;
  if (!sha256 || (typeof expected === 'string' && expected !== sha256)) {
    throw new FerryError(
      `the copy in ${here} does not match the archive on ${src.name} (sha256 ${sha256 ?? 'unknown'}, expected ${String(expected)})`,
      { hint: `Remove ${here} and run the backup again.` },
    );
  }
  rt.task.log(`checked here: archive sha256 ${sha256}, exports match SHA256SUMS`);
  rt.task.hostState('controller', `copy at ${here}`);
  const out: Record<string, Json> = {
    dir: here,
    bytes: moved.bytes,
    seconds: moved.seconds,
    sha256,
  };
  return out;
}

export default task.runs(run);
