/**
 * The seed's backup, made safe: the same five paths, but tar → zstd into a
 * root-only folder (0700), the archive 0600 (it holds every app's secrets),
 * written under a temporary name and renamed when whole, then its SHA-256.
 */

import { FerryError, InternalError } from '../errors.js';
import type { Host, Inventory } from '../inventory/index.js';
import {
  type Arg,
  archiveFile,
  arg,
  COMPRESSION,
  type Compression,
  compressionParam,
  EXISTING_PATHS,
  hashed,
  path,
  rootOnlyDirs,
  runDir,
  TAR_CREATE,
} from './common.js';
import type { RemoteAction, TaskRun, TaskRuntime } from './runtime.js';
import type { PlannedAction } from './types.js';
import { defineTask } from './types.js';

/**
 * Writes `<dir>/dokku.tar.<ext>` from the live Dokku paths, hashing the bytes
 * on their way to the disk (`<file>.hex`): reading a 340 MB archive back
 * with sha256sum cost about 1.5 s more.
 */
export function createArchiveCommand(dir: Arg, compression: Compression): string {
  const file = path(dir, `/${archiveFile(compression)}`);
  const part = path(dir, `/${archiveFile(compression)}.part`);
  const hex = path(dir, `/${archiveFile(compression)}.hex`);
  const write = hashed(`${TAR_CREATE} | ${COMPRESSION[compression].compress}`, hex, 'out');
  return `${EXISTING_PATHS} && umask 077 && { ${write}; } > ${arg(part)} && mv ${arg(part)} ${arg(file)}`;
}

/**
 * Writes `<file>.sha256` in `sha256sum -c` format from the sum taken while
 * writing (read again with sha256sum when there is none), makes both files
 * 0600, and prints the sum line and the archive's size in bytes.
 */
export function checksumCommand(dir: Arg, compression: Compression): string {
  const f = archiveFile(compression);
  return `cd ${arg(dir)} && umask 077 && h=$(cat ${f}.hex 2>/dev/null || true) && { [[ $h =~ ^[0-9a-f]{64}$ ]] || h=$(sha256sum ${f} | cut -d' ' -f1); } && printf '%s  %s\\n' "$h" ${f} | tee ${f}.sha256 && rm -f ${f}.hex && chmod 0600 ${f} ${f}.sha256 && stat -c %s ${f}`;
}

/** Answers a path when zstd is installed, nothing otherwise. */
export const ZSTD_PROBE = 'command -v zstd || true';

/**
 * Copies the host's Dokku cron entries (`dokku-*`: a datastore's scheduled
 * backups, letsencrypt's renewals) into `<dir>/cron.d`. They live in /etc,
 * outside the archived paths; restore puts them back from there.
 */
export function copyCronCommand(dir: Arg, cronDir = '/etc/cron.d'): string {
  const to = path(dir, '/cron.d');
  return `install -d -m 0700 ${arg(to)} && { [ ! -d ${arg(cronDir)} ] || find ${arg(cronDir)} -maxdepth 1 -type f -name 'dokku-*' -exec cp -p -t ${arg(to)} {} +; }`;
}

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
      host: host.name,
      command: createArchiveCommand(dir, c),
      why: `the seed's five paths, numeric owners, written 0600 under a temporary name${when}`,
      changes: true,
    },
    {
      kind: 'remote',
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
      host: host.name,
      command: rootOnlyDirs(inventory.backup.dir, dir),
      why: "root-only folders: the archive holds every app's secrets",
      changes: true,
    },
    {
      kind: 'remote',
      host: host.name,
      command: copyCronCommand(dir),
      why: 'cron entries (scheduled backups, certificate renewals) live in /etc, outside the archive',
      changes: true,
    },
    ...(compression === 'zstd'
      ? [
          {
            kind: 'remote',
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
 * Carries out {@link archiveActions} planned in `rt.actions` for `dir`: the
 * folder, the probe (zstd when installed, else gzip), the archive and its sum.
 */
export async function writeArchive<P>(
  rt: TaskRuntime<P>,
  dir: string,
  compression: Compression,
): Promise<ArchiveRecord> {
  const host = rt.ctx.host!.name;
  const find = (text: string): RemoteAction => {
    const a = rt.actions.find((x): x is RemoteAction => x.kind === 'remote' && x.command === text);
    if (!a) throw new InternalError(`${rt.task.stepId}: no planned action \`${text}\``);
    return a;
  };
  await rt.exec(find(rootOnlyDirs(rt.ctx.inventory.backup.dir, dir)));
  await rt.exec(find(copyCronCommand(dir)));
  let chosen = compression;
  if (compression === 'zstd') {
    const where = (await rt.exec(find(ZSTD_PROBE))).stdout.trim();
    if (where === '') {
      chosen = 'gzip';
      rt.task.warn(`${host} has no zstd: its archive is gzip-compressed (slower); install zstd`);
    }
  }
  const file = archiveFile(chosen);
  const started = Date.now();
  rt.task.log(`writing ${dir}/${file}`);
  await rt.exec(find(createArchiveCommand(dir, chosen)));
  const sum = parseChecksumOutput((await rt.exec(find(checksumCommand(dir, chosen)))).stdout, file);
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
  plan({ host, inventory, options, params }) {
    return archiveActions(
      inventory,
      host!,
      runDir(inventory, host!, options.runId),
      params.compression,
    );
  },
});
export default task;

type Params = Parameters<typeof task.plan>[0]['params'];

export const run: TaskRun<Params> = async (rt) => {
  const host = rt.ctx.host!;
  const dir = runDir(rt.ctx.inventory, host, rt.ctx.options.runId);
  const a = await writeArchive(rt, dir, rt.ctx.params.compression);
  rt.task.log(
    `${a.path}: ${(a.bytes / 1048576).toFixed(1)} MiB in ${a.seconds.toFixed(1)} s, sha256 ${a.sha256}`,
  );
  rt.task.hostState(host.name, `Dokku unchanged; archive at ${a.path} (0600, sha256 beside it)`);
  return { ...a };
};
