/**
 * Streams the run's archive folder (archive, checksum, exports, manifest)
 * from the host to a folder here, then checks every checksum here: an
 * off-host copy, as the seed recommends ("moved offsite").
 */
import { quote } from '../ssh/quote.js';
import { runDir } from './common.js';
import { defineTask } from './types.js';

export function sendFolderCommand(dir: string): string {
  const parent = dir.replace(/\/[^/]+$/, '') || '/';
  const name = dir.slice(parent.length + 1);
  return `tar -C ${quote(parent)} -cf - ${quote(name)}`;
}
export function receiveFolderCommand(dest: string): string {
  return `mkdir -p ${quote(dest)} && chmod 0700 ${quote(dest)} && tar -C ${quote(dest)} -xf -`;
}
export function checkFetchedCommand(folder: string): string {
  return `cd ${quote(folder)} && sha256sum -c --quiet dokku.tar.*.sha256 && cd exports && sha256sum -c --quiet SHA256SUMS`;
}

export default defineTask({
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
  plan({ params, roles, inventory, options }) {
    const src = roles[params.from]!;
    const dir = runDir(inventory, src, options.runId);
    const dest = options.fetch ?? '<fetch-dir>';
    const name = dir.slice(dir.lastIndexOf('/') + 1);
    return [
      {
        kind: 'stream',
        from: src.name,
        to: 'controller',
        route: 'relay',
        send: sendFolderCommand(dir),
        receive: receiveFolderCommand(dest),
        changes: true,
      },
      {
        kind: 'local',
        command: checkFetchedCommand(`${dest}/${name}`),
        expect: 'exit 0: the copy here is whole',
      },
    ];
  },
});
