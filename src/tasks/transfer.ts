/**
 * Streams the data to the host it runs on, into a stage folder: never staged
 * on the controller's disk, checksummed on both ends (verify-archive compares).
 * `data: live` sends the source's Dokku paths as they are now (migrate),
 * `latest` the newest archive in the source's backup.dir (drill), `given` the
 * archive named on the command line (restore: here or on a host).
 * A second, small stream carries the manifest and datastore exports.
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
  hashed,
  P,
  path,
  rootOnlyDirs,
  runDir,
  stageDir,
  TAR_CREATE,
} from './common.js';
import type { PlanContext, PlannedAction, Route } from './types.js';
import { defineTask } from './types.js';

/** Send side of a live transfer: tar | compress, its SHA-256 to `sumFile`. */
export function sendLiveCommand(sumFile: Arg, compression: Compression): string {
  return `${EXISTING_PATHS} && ${hashed(`${TAR_CREATE} | ${COMPRESSION[compression].compress}`, sumFile, 'out')}`;
}

/** Receive side: SHA-256 of what arrives, decompress, untar with numeric owners into `<stage>/root`. */
export function receiveDataCommand(stage: Arg, compression: Compression): string {
  const root = path(stage, '/root');
  return hashed(
    `${COMPRESSION[compression].decompress} | tar --numeric-owner -xpf - -C ${arg(root)}`,
    path(stage, '/data.sha256'),
    'in',
  );
}

/** Send side of an archive transfer: the archive file as it is. */
export function sendArchiveCommand(file: Arg): string {
  return `cat -- ${arg(file)}`;
}

/** Send side of the small stream: manifest, exports (and the archive's checksum). */
export function sendMetaCommand(dir: Arg): string {
  return `cd ${arg(dir)} && tar -cf - --ignore-failed-read manifest.json exports $(ls -1 dokku.tar.*.sha256 2>/dev/null)`;
}

/** Receive side of the small stream, into `<stage>/meta`. */
export function receiveMetaCommand(stage: Arg): string {
  return `tar -xf - -C ${arg(path(stage, '/meta'))}`;
}

/** Prepares an empty, root-only stage. */
export function prepareStageCommand(stage: Arg): string {
  return `rm -rf -- ${arg(stage)} && ${rootOnlyDirs(path(stage, '/root'), path(stage, '/meta'))}`;
}

/** The newest archive folder of `host` in backup.dir (names sort by time). */
export function latestArchiveCommand(inventory: Inventory, host: Host): string {
  const dir = inventory.backup.dir.replace(/\/+$/, '');
  return `find ${arg(dir)} -mindepth 2 -maxdepth 2 -path ${arg(`${dir}/${host.name}-`)}'*/dokku.tar.*' ! -name '*.sha256' -printf '%h\\n' | sort | tail -n 1`;
}

/** Where the archive of a restore or drill is: its folder, its file, and who holds it. */
export function archiveSource(
  ctx: PlanContext<{ data: string; from: string; compression: Compression }>,
): { holder: string; dir: Arg; file: Arg } {
  const { params, roles, options } = ctx;
  const fromHost = roles[params.from];
  if (params.data === 'latest') {
    return {
      holder: fromHost?.name ?? 'controller',
      dir: P.archiveDir,
      file: path(P.archiveDir, `/${archiveFile(params.compression)}`),
    };
  }
  const given = options.archive;
  const holder = given?.host ?? fromHost?.name ?? 'controller';
  if (!given) {
    return {
      holder,
      dir: P.archiveDir,
      file: path(P.archiveDir, `/${archiveFile(params.compression)}`),
    };
  }
  const p = given.path.replace(/\/+$/, '');
  if (/\/dokku\.tar\.(zst|gz)$/.test(p)) return { holder, dir: p.replace(/\/[^/]+$/, ''), file: p };
  return { holder, dir: p, file: `${p}/${archiveFile(params.compression)}` };
}

/** The compression an archive file uses, from its name. */
export function compressionOf(file: Arg, fallback: Compression): Compression {
  if (typeof file === 'string' && file.endsWith('.gz')) return 'gzip';
  if (typeof file === 'string' && file.endsWith('.zst')) return 'zstd';
  return fallback;
}

export default defineTask({
  name: 'transfer',
  summary:
    'stream the live data or an archive into a stage folder on this host, checksummed at both ends',
  runsOn: 'host',
  roleParams: ['from'],
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: { type: 'string', description: 'The role that sends (the source).' },
      data: {
        enum: ['live', 'latest', 'given'],
        default: 'live',
        description:
          'live: the Dokku paths as they are now; latest: the newest archive in backup.dir on `from`; given: the archive named on the command line.',
      },
      compression: compressionParam,
      route: {
        enum: ['auto', 'direct', 'relay'],
        default: 'auto',
        description:
          'direct: host to host; relay: through this machine; auto: direct when the hosts reach each other. --route overrides it.',
      },
    },
  },
  plan(ctx) {
    const { host, params, roles, options, inventory } = ctx;
    const to = host!.name;
    const stage = stageDir(options.runId);
    const route: Route = options.route ?? params.route;
    const actions: PlannedAction[] = [
      { kind: 'remote', host: to, command: prepareStageCommand(stage), changes: true },
    ];
    if (params.data === 'live') {
      const src = roles[params.from]!;
      const dir = runDir(inventory, src, options.runId);
      actions.push(
        {
          kind: 'stream',
          from: src.name,
          to,
          route,
          send: sendLiveCommand(`${dir}/stream.sha256`, params.compression),
          receive: receiveDataCommand(stage, params.compression),
          why: "the seed's five paths, streamed: no archive file on either disk, nothing on the controller",
          changes: true,
        },
        {
          kind: 'stream',
          from: src.name,
          to,
          route,
          send: sendMetaCommand(dir),
          receive: receiveMetaCommand(stage),
          why: 'the manifest and the datastore exports',
          changes: true,
        },
      );
      return actions;
    }
    const where = archiveSource(ctx);
    const compression = compressionOf(where.file, params.compression);
    if (params.data === 'latest') {
      actions.unshift({
        kind: 'remote',
        host: where.holder,
        command: latestArchiveCommand(inventory, roles[params.from]!),
        capture: 'archive-dir',
        expect: 'a folder (none: there is no backup to restore)',
      });
    }
    actions.push(
      {
        kind: 'stream',
        from: where.holder,
        to,
        route: where.holder === 'controller' ? 'relay' : route,
        send: sendArchiveCommand(where.file),
        receive: receiveDataCommand(stage, compression),
        why: 'the archive as it was written; its checksum is compared after',
        changes: true,
      },
      {
        kind: 'stream',
        from: where.holder,
        to,
        route: where.holder === 'controller' ? 'relay' : route,
        send: sendMetaCommand(where.dir),
        receive: receiveMetaCommand(stage),
        why: "the manifest, the datastore exports and the archive's checksum",
        changes: true,
      },
    );
    return actions;
  },
});
