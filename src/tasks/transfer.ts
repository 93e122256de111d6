/**
 * Streams the data to the host it runs on, into stage folders (layout:
 * stage.ts): never staged on the controller's disk, checksummed on both ends
 * (verify-archive compares). `data: live` sends the source's Dokku paths as
 * they are now (migrate), `latest` the newest archive in the source's
 * backup.dir (drill), `given` the archive named on the command line (restore:
 * here or on a host). A live stream carries the run folder's manifest and
 * exports at the end of its own tar; an archive's come first, in a second,
 * small stream. A member outside the seed's paths stays in the stage: nothing
 * reaches a live path before verify-archive.
 */
import { FerryError, InternalError, StopError } from '../errors.js';
import type { Host, Inventory } from '../inventory/index.js';
import { $, type Command } from '../ssh/shell.js';
import { formatBytes } from '../util/format.js';
import {
  type Arg,
  archiveFoldersCommand,
  COMPRESSION,
  type Compression,
  EXISTING_PATHS,
  hashed,
  P,
  rootOnlyDirs,
  runDir,
  TAR_CREATE,
} from './common.js';
import { type Manifest, parseManifest } from './manifest.js';
import { discardStageCommand, stagePaths } from './stage.js';
import {
  defineTask,
  type Json,
  type PlanContext,
  type PlannedAction,
  type Route,
  type RuntimeOf,
} from './types.js';

/** Compression param: `auto` picks zstd when both ends have it, else gzip. */
export type CompressionChoice = Compression | 'auto';

/**
 * Send side of a live transfer: tar | compress, its SHA-256 to `sumFile`.
 * The run folder's manifest.json and exports/ go at the end of the same tar
 * (members `manifest.json`, `exports/...`), so one stream, one SSH
 * connection and one pull key carry everything: a second connection costs
 * its handshake and a slow first second here.
 */
export function sendLiveCommand(sumFile: Arg, compression: Compression, metaDir: Arg): Command {
  const meta = $`m=${metaDir} && if [ -e "$m/manifest.json" ] || [ -e "$m/exports" ]; then set -- "$@" -C "$m"; for x in manifest.json exports; do if [ -e "$m/$x" ]; then set -- "$@" "$x"; fi; done; fi`;
  const send = hashed($`${TAR_CREATE} | ${COMPRESSION[compression].compress}`, sumFile, 'out');
  return $`${EXISTING_PATHS} && ${meta} && ${send}`;
}

/**
 * Receive side: SHA-256 of what arrives, decompress, untar with numeric
 * owners and modes. The first --transform puts every member under the
 * /var/lib/dokku stage, the second sends `home/dokku` on to the /home/dokku
 * stage, the last two send a live stream's `manifest.json` and `exports/` to
 * the root-only meta folder; symlink targets (S) are left as they are.
 */
export function receiveDataCommand(runId: string, compression: Compression): Command {
  const s = stagePaths(runId);
  const lib = s.lib.slice(1).replace(/\./g, '\\.');
  const all = `s,^,${s.lib.slice(1)}/,S`;
  const home = `s,^${lib}/home/dokku\\(/\\|$\\),${s.home.slice(1)}\\1,S`;
  const manifest = `s,^${lib}/manifest\\.json$,${s.meta.slice(1)}/manifest.json,S`;
  const exports = `s,^${lib}/exports\\(/\\|$\\),${s.meta.slice(1)}/exports\\1,S`;
  const [a, h, m, e] = [all, home, manifest, exports];
  return hashed(
    $`${COMPRESSION[compression].decompress} | tar --numeric-owner -xpf - -C / --transform ${a} --transform ${h} --transform ${m} --transform ${e}`,
    s.sum,
    'in',
    { progress: true },
  );
}

/** Send side of an archive transfer: the archive file as it is. */
export function sendArchiveCommand(file: Arg | Command): Command {
  return $`cat -- ${file}`;
}

/** Send side of the small stream of an archive: manifest, exports, cron entries and the archive's checksum. */
export function sendMetaCommand(dir: Arg): Command {
  return $`cd ${dir} && tar -cf - --ignore-failed-read manifest.json exports cron.d $(ls -1 dokku.tar.*.sha256 2>/dev/null)`;
}

/** Receive side of the small stream, into `<stage>/meta`. */
export function receiveMetaCommand(stage: string): Command {
  return $`tar -xf - -C ${stage}/meta`;
}

/**
 * Prepares empty, root-only stages (a resumed run starts the copy again) and
 * refuses early when a seed path below /var/lib/dokku is a mount point of its
 * own: extract's renames could not move it.
 */
export function prepareStageCommand(runId: string): Command {
  const s = stagePaths(runId);
  const mounts = $`for p in config data services plugins; do if mountpoint -q "/var/lib/dokku/$p"; then echo "/var/lib/dokku/$p is a mount point: extract moves folders by renaming them" >&2; exit 1; fi; done`;
  return $`test -d /home/dokku && test -d /var/lib/dokku && ${mounts} && rm -rf -- ${s.dir} ${s.home} ${s.lib} && ${rootOnlyDirs(s.meta, s.lib)}`;
}

/** Whether this host has zstd (exit 0) or not (exit 1). */
export const HAS_ZSTD = $`command -v zstd`;

/** The newest archive folder of `host` in backup.dir (see {@link archiveFoldersCommand}). */
export function latestArchiveCommand(inventory: Inventory, host: Host): Command {
  // sed reads it all: no SIGPIPE under pipefail
  return $`${archiveFoldersCommand(inventory, host)} | sed -n 1p`;
}

/** The archive file in a run folder: dokku.tar.zst or dokku.tar.gz, whichever is there. */
export function archiveNameCommand(dir: Arg): Command {
  return $`cd ${dir} && { ls -1 dokku.tar.zst dokku.tar.gz 2>/dev/null || true; } | head -n 1`;
}

/** Where the archive of a restore or drill is: its folder, its file (if named), and who holds it. */
export function archiveSource(ctx: PlanContext<{ data: string; from: string }>): {
  holder: string;
  dir: Arg;
  file: string | undefined;
} {
  const { params, roles, options } = ctx;
  const fromHost = roles[params.from];
  const given = options.archive;
  if (params.data === 'latest' || !given) {
    return { holder: fromHost?.name ?? 'controller', dir: P.archiveDir, file: undefined };
  }
  const holder = given.host ?? fromHost?.name ?? 'controller';
  const p = given.path.replace(/\/+$/, '');
  if (/\/dokku\.tar\.(zst|gz)$/.test(p)) return { holder, dir: p.replace(/\/[^/]+$/, ''), file: p };
  return { holder, dir: p, file: undefined };
}

/** The compression an archive file uses, from its name. */
export function compressionOf(file: string): Compression | undefined {
  if (file.endsWith('.gz')) return 'gzip';
  if (file.endsWith('.zst')) return 'zstd';
  return undefined;
}

const transfer = defineTask({
  name: 'transfer',
  summary:
    'stream the live data or an archive into stage folders on this host, checksummed at both ends',
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
      compression: {
        enum: ['auto', 'zstd', 'gzip'],
        default: 'auto',
        description:
          'Of a live stream: auto (zstd -1 when both hosts have it, else gzip -1), zstd or gzip. An archive is sent as it was written.',
      },
      route: {
        enum: ['auto', 'direct', 'relay'],
        default: 'auto',
        description:
          'direct: host to host; relay: through this machine; auto: direct when the hosts reach each other. --route overrides it.',
      },
    },
  },
  actions: {
    'prepare-stage': [],
    // item: the host asked
    'has-zstd': [],
    // item: the compression
    live: [],
    'latest-archive': [],
    'archive-name': ['archive-dir'],
    meta: ['archive-dir'],
    // item: the compression
    archive: ['archive-dir'],
    'read-manifest': [],
    'discard-stage': [],
  },
  plan(ctx) {
    const { host, params, roles, options, inventory } = ctx;
    const to = host!.name;
    const s = stagePaths(options.runId);
    const route: Route = options.route ?? params.route;
    const discard: PlannedAction = {
      kind: 'remote',
      id: 'discard-stage',
      host: to,
      command: discardStageCommand(options.runId),
      only: 'the transfer fails: what arrived is unverified',
      changes: true,
    };
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        id: 'prepare-stage',
        host: to,
        command: prepareStageCommand(options.runId),
        why: 'stages inside the filesystems the data goes to, so extract only renames',
        changes: true,
      },
    ];
    if (params.data === 'live') {
      const src = roles[params.from]!;
      const dir = runDir(inventory, src, options.runId);
      const choices: Compression[] =
        params.compression === 'auto' ? ['zstd', 'gzip'] : [params.compression];
      if (params.compression !== 'gzip') {
        for (const h of [src.name, to]) {
          actions.push({
            kind: 'remote',
            id: 'has-zstd',
            item: h,
            host: h,
            command: HAS_ZSTD,
            expect:
              params.compression === 'auto'
                ? 'exit 0: zstd is there; 1: not (then gzip)'
                : 'exit 0 (else stop: compression zstd needs zstd on both hosts)',
          });
        }
      }
      for (const c of choices) {
        actions.push({
          kind: 'stream',
          id: 'live',
          item: c,
          from: src.name,
          to,
          route,
          send: sendLiveCommand(`${dir}/stream.sha256`, c, dir),
          receive: receiveDataCommand(options.runId, c),
          counts: true,
          why:
            choices.length === 1
              ? "the seed's five paths with the manifest and exports, streamed: no archive file on either disk, nothing on the controller"
              : c === 'zstd'
                ? "the seed's five paths with the manifest and exports, streamed (nothing on either disk or the controller), when both hosts have zstd"
                : 'the same with gzip -1, instead, when either host lacks zstd',
          changes: true,
        });
      }
      actions.push(discard);
      return actions;
    }
    const where = archiveSource(ctx);
    const holderRoute: Route = where.holder === 'controller' ? 'relay' : route;
    if (params.data === 'latest') {
      actions.push({
        kind: 'remote',
        id: 'latest-archive',
        host: where.holder,
        command: latestArchiveCommand(inventory, roles[params.from]!),
        capture: 'archive-dir',
        expect: 'a folder (none: there is no backup to restore)',
      });
    }
    const known = where.file === undefined ? undefined : compressionOf(where.file);
    if (known !== 'gzip') {
      actions.push({
        kind: 'remote',
        id: 'has-zstd',
        item: to,
        host: to,
        command: HAS_ZSTD,
        expect: 'exit 0 when the archive is dokku.tar.zst (else stop: install zstd)',
      });
    }
    if (where.file === undefined) {
      const list = archiveNameCommand(where.dir);
      const expect = 'dokku.tar.zst or dokku.tar.gz (none: not an archive folder)';
      actions.push(
        where.holder === 'controller'
          ? { kind: 'local', id: 'archive-name', command: list, expect }
          : {
              kind: 'remote',
              id: 'archive-name',
              host: where.holder,
              command: list,
              capture: 'archive',
              expect,
            },
      );
    }
    actions.push({
      kind: 'stream',
      id: 'meta',
      from: where.holder,
      to,
      route: holderRoute,
      send: sendMetaCommand(where.dir),
      receive: receiveMetaCommand(s.dir),
      why: "the manifest, the datastore exports and the archive's checksum",
      changes: true,
    });
    const variants: Compression[] = known ? [known] : ['zstd', 'gzip'];
    for (const c of variants) {
      const file = where.file ?? $`${where.dir}/${`dokku.tar.${COMPRESSION[c].ext}`}`;
      actions.push({
        kind: 'stream',
        id: 'archive',
        item: c,
        from: where.holder,
        to,
        route: holderRoute,
        send: sendArchiveCommand(file),
        receive: receiveDataCommand(options.runId, c),
        counts: true,
        why:
          variants.length === 1
            ? 'the archive as it was written; its checksum is compared after'
            : `the archive as it was written, when it is dokku.tar.${COMPRESSION[c].ext}`,
        changes: true,
      });
    }
    actions.push(
      {
        kind: 'remote',
        id: 'read-manifest',
        host: to,
        command: $`cat ${`${s.meta}/manifest.json`}`,
        expect: "the archive's manifest (what later steps restore)",
      },
      discard,
    );
    return actions;
  },
});

type Runtime = RuntimeOf<typeof transfer>;

/** Does `host` have zstd? */
async function hasZstd(rt: Runtime, host: string): Promise<boolean> {
  if (!rt.has('has-zstd', host)) return false;
  const r = await rt.exec('has-zstd', {}, { allowCodes: [0, 1], item: host });
  return r.code === 0;
}

/** The manifest this run already has (migrate), if any. */
function knownManifest(rt: Runtime): Manifest | undefined {
  try {
    return rt.manifest();
  } catch {
    return undefined;
  }
}

/** The compressions planned for stream `id` (its items). */
function planned(rt: Runtime, id: 'live' | 'archive'): Compression[] {
  return rt.actions.filter((a) => a.id === id).map((a) => a.item as Compression);
}

async function run(rt: Runtime) {
  const { params, options, host } = rt.ctx;
  const to = host!.name;
  const s = stagePaths(options.runId);
  rt.task.hostState(to, `receiving into ${s.home} and ${s.lib}; nothing moved into place`);
  const live = params.data === 'live';
  const from = rt.ctx.roles[params.from]?.name;
  // The stage, the route and (live) both hosts' zstd are independent: asked at once.
  const stream = live ? 'live' : 'archive';
  const [, , zstdHere, zstdThere] = await Promise.all([
    rt.exec('prepare-stage'),
    // Every form of the stream goes the same way: the first one's route is the route.
    rt.routeOf(stream, planned(rt, stream)[0]),
    live && params.compression !== 'gzip' ? hasZstd(rt, to) : undefined,
    live && params.compression !== 'gzip' && from ? hasZstd(rt, from) : undefined,
  ]);

  let compression: Compression;
  const vars: Record<string, string> = {};
  if (live) {
    if (params.compression === 'gzip') compression = 'gzip';
    else {
      const [a, b] = [zstdThere === true, zstdHere === true];
      if (a && b) compression = 'zstd';
      else if (params.compression === 'zstd') {
        throw new StopError(`zstd is missing on ${a ? to : from}`, {
          hint: 'Install zstd there (apt-get install zstd), or set the transfer step\'s compression to "auto" or "gzip".',
        });
      } else {
        compression = 'gzip';
        rt.task.log(`zstd is missing on ${a ? to : from}: gzip -1 instead (slower)`);
      }
    }
  } else {
    const where = archiveSource(rt.ctx);
    vars['archive-dir'] = typeof where.dir === 'string' ? where.dir : '';
    if (rt.has('latest-archive')) {
      const dir = (await rt.exec('latest-archive')).stdout.trim();
      if (!dir.startsWith('/')) {
        throw new StopError(`no backup of ${params.from} found on ${where.holder}`, {
          hint: 'Run `ferry backup` first; drill restores the newest archive in backup.dir.',
        });
      }
      vars['archive-dir'] = dir;
    }
    const variants = planned(rt, 'archive');
    if (rt.has('archive-name')) {
      const name = (
        await rt.exec('archive-name', { 'archive-dir': vars['archive-dir']! })
      ).stdout.trim();
      const c = compressionOf(name);
      if (!c) {
        throw new StopError(`no dokku.tar.zst or dokku.tar.gz in the archive folder`, {
          hint: 'Name the folder `ferry backup` wrote (it holds manifest.json and dokku.tar.zst).',
        });
      }
      compression = c;
    } else if (variants.length === 1) {
      compression = variants[0]!;
    } else {
      throw new InternalError('transfer: no archive stream planned');
    }
    if (compression === 'zstd' && !(await hasZstd(rt, to))) {
      throw new StopError(`the archive is zstd-compressed and ${to} has no zstd`, {
        hint: `Install it there: apt-get install zstd`,
      });
    }
  }

  // A live stream carries the manifest and exports itself; an archive's come first, on their own.
  const dir = { 'archive-dir': vars['archive-dir'] ?? '' };
  if (!live) await rt.stream('meta', dir);
  let manifest = knownManifest(rt);
  const out: Record<string, Json> = { compression };
  if (!live) {
    try {
      manifest = parseManifest((await rt.exec('read-manifest')).stdout);
    } catch (e) {
      if (e instanceof FerryError) throw e;
      throw new StopError(`the archive's manifest.json is not a dokku-ferry manifest`, {
        hint: 'Restore only archives written by `ferry backup`.',
      });
    }
    out.manifest = manifest as unknown as Json;
  }

  const total = manifest?.dataBytes;
  rt.task.log(
    `streaming with ${compression}${total ? ` (about ${formatBytes(total)} before compression)` : ''}`,
  );
  let r: Awaited<ReturnType<Runtime['stream']>>;
  try {
    const opts = { item: compression, ...(total ? { total } : {}) };
    r = live ? await rt.stream('live', {}, opts) : await rt.stream('archive', dir, opts);
  } catch (e) {
    // What arrived is unverified: it goes, so nothing of it lingers in the Dokku paths.
    await rt.exec('discard-stage').catch(() => undefined);
    rt.task.hostState(to, 'the transfer failed; its stage was discarded, nothing moved into place');
    throw e;
  }
  rt.task.log(
    `${formatBytes(r.bytes)} on the wire in ${r.seconds.toFixed(1)} s (${formatBytes(r.bytes / Math.max(r.seconds, 0.001))}/s, ${r.route})`,
  );
  rt.task.hostState(
    to,
    `staged at ${s.home} and ${s.lib} (meta in ${s.meta}); nothing moved into place`,
  );
  return { ...out, route: r.route, bytes: r.bytes, seconds: r.seconds };
}

export default transfer.runs(run);

/** The params of a transfer step. */
export type TransferParams = Parameters<typeof transfer.plan>[0]['params'];
