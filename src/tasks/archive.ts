/**
 * The seed's backup, made safe: the same five paths, but tar → zstd into a
 * root-only folder (0700), the archive 0600 (it holds every app's secrets),
 * written under a temporary name and renamed when whole, then its SHA-256.
 */
import type { Host, Inventory } from '../inventory/index.js';
import {
  type Arg,
  archiveFile,
  arg,
  COMPRESSION,
  type Compression,
  compressionParam,
  EXISTING_PATHS,
  path,
  rootOnlyDirs,
  runDir,
  TAR_CREATE,
} from './common.js';
import type { PlannedAction } from './types.js';
import { defineTask } from './types.js';

/** Writes `<dir>/dokku.tar.<ext>` from the live Dokku paths. */
export function createArchiveCommand(dir: Arg, compression: Compression): string {
  const file = path(dir, `/${archiveFile(compression)}`);
  const part = path(dir, `/${archiveFile(compression)}.part`);
  return `${EXISTING_PATHS} && umask 077 && ${TAR_CREATE} | ${COMPRESSION[compression].compress} > ${arg(part)} && mv ${arg(part)} ${arg(file)}`;
}

/** Writes `<file>.sha256` in `sha256sum -c` format and makes both files 0600. */
export function checksumCommand(dir: Arg, compression: Compression): string {
  const f = archiveFile(compression);
  return `cd ${arg(dir)} && sha256sum ${f} > ${f}.sha256 && chmod 0600 ${f} ${f}.sha256`;
}

/** The three actions of an archive of `host` into `dir` (also used for check-target's safety archive). */
export function archiveActions(
  inventory: Inventory,
  host: Host,
  dir: string,
  compression: Compression,
): PlannedAction[] {
  return [
    {
      kind: 'remote',
      host: host.name,
      command: rootOnlyDirs(inventory.backup.dir, dir),
      why: "root-only folders: the archive holds every app's secrets",
      changes: true,
    },
    {
      kind: 'remote',
      host: host.name,
      command: createArchiveCommand(dir, compression),
      why: "the seed's five paths, numeric owners, written 0600 under a temporary name",
      changes: true,
    },
    {
      kind: 'remote',
      host: host.name,
      command: checksumCommand(dir, compression),
      why: 'checksum kept beside the archive, checked again wherever it is read',
      changes: true,
    },
  ];
}

export default defineTask({
  name: 'archive',
  summary: 'tar the Dokku paths into a root-only, 0600, checksummed archive on the host',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: { compression: compressionParam },
  },
  plan({ host, inventory, options, params }) {
    return archiveActions(
      inventory,
      host!,
      runDir(inventory, host!, options.runId),
      params.compression,
    );
  },
});
