/**
 * The seed's backup, made safe: the same five paths, but tar → zstd into a
 * root-only folder (0700), the archive 0600 (it holds every app's secrets),
 * written under a temporary name and renamed when whole, then its SHA-256.
 */

import { FerryError } from '../errors.js';
import type { Host, Inventory } from '../inventory/index.js';
import { $, type Command } from '../ssh/shell.js';
import { formatBytes } from '../util/format.js';
import {
  type Arg,
  archiveFile,
  COMPRESSION,
  type Compression,
  compressionParam,
  EXISTING_PATHS,
  hashed,
  rootOnlyDirs,
  runDir,
  TAR_CREATE,
} from './common.js';
import { defineTask, type PlannedAction, type RuntimeOf, type TaskRuntime } from './types.js';

/**
 * Writes `<dir>/dokku.tar.<ext>` from the live Dokku paths, hashing the bytes
 * on their way to the disk (`<file>.hex`): reading a 340 MB archive back
 * with sha256sum cost about 1.5 s more.
 */
export function createArchiveCommand(dir: string, compression: Compression): Command {
  const name = archiveFile(compression);
  const file = $`${dir}/${name}`;
  const part = $`${dir}/${name}.part`;
  const pipe = $`${TAR_CREATE} | ${COMPRESSION[compression].compress}`;
  const write = hashed(pipe, $`${dir}/${name}.hex`, 'out');
  return $`${EXISTING_PATHS} && umask 077 && { ${write}; } > ${part} && mv ${part} ${file}`;
}

/**
 * Writes `<file>.sha256` in `sha256sum -c` format from the sum taken while
 * writing (read again with sha256sum when there is none), makes both files
 * 0600, and prints the sum line and the archive's size in bytes.
 */
export function checksumCommand(dir: string, compression: Compression): Command {
  const f = archiveFile(compression);
  return $`cd ${dir} && umask 077 && h=$(cat ${`${f}.hex`} 2>/dev/null || true) && { [[ $h =~ ^[0-9a-f]{64}$ ]] || h=$(sha256sum ${f} | cut -d' ' -f1); } && printf '%s  %s\\n' "$h" ${f} | tee ${`${f}.sha256`} && rm -f ${`${f}.hex`} && chmod 0600 ${f} ${`${f}.sha256`} && stat -c %s ${f}`;
}

/** Answers a path when zstd is installed, nothing otherwise. */
export const ZSTD_PROBE = $`command -v zstd || true`;

/**
 * Copies the host's Dokku cron entries (`dokku-*`: a datastore's scheduled
 * backups, letsencrypt's renewals) into `<dir>/cron.d`. They live in /etc,
 * outside the archived paths; restore puts them back from there.
 */
export function copyCronCommand(dir: Arg, cronDir = '/etc/cron.d'): Command {
  const to = $`${dir}/cron.d`;
  // The copies are 0600 like the rest of the archive; restore installs them 0644 again.
  return $`install -d -m 0700 ${to} && { [ ! -d ${cronDir} ] || find ${cronDir} -maxdepth 1 -type f -name 'dokku-*' -exec cp -p -t ${to} {} +; } && find ${to} -type f -exec chmod 0600 {} +`;
}

/** The actions of an archive (archive, and check-target's safety archive); `item` is the compression. */
export const ARCHIVE_ACTIONS = {
  'archive-dirs': [],
  'copy-cron': [],
  'zstd-probe': [],
  'create-archive': [],
  'archive-checksum': [],
} as const;

/**
 * The actions of an archive of `host` into `dir` (also used for check-target's
 * safety archive). With zstd asked for, a probe decides between the zstd
 * forms and the gzip forms (a host without zstd still gets its archive).
 */
export function archiveActions(
  inventory: Inventory,
  host: Host,
  dir: string,
  compression: Compression,
): PlannedAction[] {
  const forms = (c: Compression, when: string): PlannedAction[] => [
    {
      kind: 'remote',
      id: 'create-archive',
      item: c,
      host: host.name,
      command: createArchiveCommand(dir, c),
      why: `the seed's five paths, numeric owners, written 0600 under a temporary name${when}`,
      changes: true,
    },
    {
      kind: 'remote',
      id: 'archive-checksum',
      item: c,
      host: host.name,
      command: checksumCommand(dir, c),
      why: `checksum kept beside the archive, checked again wherever it is read${when}`,
      expect: '<sha256>  <file>, then the size in bytes',
      changes: true,
    },
  ];
  return [
    {
      kind: 'remote',
      id: 'archive-dirs',
      host: host.name,
      command: rootOnlyDirs(inventory.backup.dir, dir),
      why: "root-only folders: the archive holds every app's secrets",
      changes: true,
    },
    {
      kind: 'remote',
      id: 'copy-cron',
      host: host.name,
      command: copyCronCommand(dir),
      why: 'cron entries (scheduled backups, certificate renewals) live in /etc, outside the archive',
      changes: true,
    },
    ...(compression === 'zstd'
      ? [
          {
            kind: 'remote',
            id: 'zstd-probe',
            host: host.name,
            command: ZSTD_PROBE,
            expect: 'a path: the zstd forms below run; nothing: the gzip forms run instead',
          } satisfies PlannedAction,
          ...forms('zstd', ' (zstd installed)'),
          ...forms('gzip', ' (instead, when zstd is not installed)'),
        ]
      : forms('gzip', '')),
  ];
}

/** What an archive step leaves on its host. */
export interface ArchiveRecord {
  /** The archive file. */
  path: string;
  dir: string;
  compression: Compression;
  bytes: number;
  sha256: string;
  seconds: number;
}

/** Reads the output of {@link checksumCommand}. */
export function parseChecksumOutput(
  stdout: string,
  file: string,
): { sha256: string; bytes: number } {
  const lines = stdout.trim().split('\n');
  const sum = /^([0-9a-f]{64}) [ *](.+)$/.exec(lines[0] ?? '');
  const size = /^(\d+)$/.exec((lines[1] ?? '').trim());
  if (!sum || sum[2] !== file || !size) {
    throw new FerryError(`unexpected checksum output for ${file}: ${JSON.stringify(stdout)}`);
  }
  return { sha256: sum[1]!, bytes: Number(size[1]) };
}

/**
 * Carries out {@link archiveActions} planned in this step for `dir`: the
 * folder, the probe (zstd when installed, else gzip), the archive and its sum.
 */
export async function writeArchive(
  rt: TaskRuntime<unknown, typeof ARCHIVE_ACTIONS>,
  dir: string,
  compression: Compression,
): Promise<ArchiveRecord> {
  const host = rt.ctx.host!.name;
  await rt.exec('archive-dirs');
  await rt.exec('copy-cron');
  let chosen = compression;
  if (compression === 'zstd') {
    const where = (await rt.exec('zstd-probe')).stdout.trim();
    if (where === '') {
      chosen = 'gzip';
      rt.task.warn(`${host} has no zstd: its archive is gzip-compressed (slower); install zstd`);
    }
  }
  const file = archiveFile(chosen);
  const started = Date.now();
  rt.task.log(`writing ${dir}/${file}`);
  await rt.exec('create-archive', {}, { item: chosen });
  const sum = parseChecksumOutput(
    (await rt.exec('archive-checksum', {}, { item: chosen })).stdout,
    file,
  );
  const seconds = (Date.now() - started) / 1000;
  rt.task.progress(sum.bytes);
  return { path: `${dir}/${file}`, dir, compression: chosen, ...sum, seconds };
}

const task = defineTask({
  name: 'archive',
  summary: 'tar the Dokku paths into a root-only, 0600, checksummed archive on the host',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: { compression: compressionParam },
  },
  actions: ARCHIVE_ACTIONS,
  plan({ host, inventory, options, params }) {
    return archiveActions(
      inventory,
      host!,
      runDir(inventory, host!, options.runId),
      params.compression,
    );
  },
});

async function run(rt: RuntimeOf<typeof task>) {
  const host = rt.ctx.host!;
  const dir = runDir(rt.ctx.inventory, host, rt.ctx.options.runId);
  const a = await writeArchive(rt, dir, rt.ctx.params.compression);
  rt.task.log(
    `${a.path}: ${formatBytes(a.bytes)} in ${a.seconds.toFixed(1)} s, sha256 ${a.sha256}`,
  );
  rt.task.hostState(host.name, `Dokku unchanged; archive at ${a.path} (0600, sha256 beside it)`);
  return { ...a };
}

export default task.runs(run);
