/**
 * Streams the data to the host it runs on, into stage folders: never staged
 * on the controller's disk, checksummed on both ends (verify-archive compares).
 * `data: live` sends the source's Dokku paths as they are now (migrate),
 * `latest` the newest archive in the source's backup.dir (drill), `given` the
 * archive named on the command line (restore: here or on a host).
 * A live stream carries the run folder's manifest and exports at the end of its own tar;
 * an archive's come first, in a second, small stream.
 *
 * The tree is unpacked INSIDE the filesystems it goes to: /home/dokku and
 * /var/lib/dokku are often mount points (and always are in the lab), and a
 * mount point cannot be renamed, while a rename across filesystems is a copy.
 * So `home/dokku` lands in /home/dokku/.ferry-stage-RUN and everything else
 * in /var/lib/dokku/.ferry-stage-RUN (tar --transform), where extract moves
 * it into place with renames only. A member outside the seed's paths stays
 * in that stage: nothing reaches a live path before verify-archive.
 */
import { FerryError, InternalError, StopError } from '../errors.js';
import type { Host, Inventory } from '../inventory/index.js';
import type { Json } from '../run/redact.js';
import type { StepTask } from '../run/runner.js';
import { quote } from '../ssh/quote.js';
import {
  type Arg,
  archiveFoldersCommand,
  arg,
  COMPRESSION,
  type Compression,
  EXISTING_PATHS,
  hashed,
  P,
  path,
  rootOnlyDirs,
  runDir,
  stageDir,
  TAR_CREATE,
} from './common.js';
import { type Manifest, parseManifest } from './manifest.js';
import { createRuntime, type RemoteAction, type TaskRun, type TaskRuntime } from './runtime.js';
import type { PlanContext, PlannedAction, Route } from './types.js';
import { defineTask } from './types.js';

/** Where one run's transfer is staged on the target, and where extract keeps what it replaces. */
export interface StagePaths {
  /** Root-only: data.sha256 and meta/ (manifest, exports). */
  dir: string;
  meta: string;
  /** Checksum of the bytes that arrived. */
  sum: string;
  /** The staged /home/dokku (same filesystem as /home/dokku). */
  home: string;
  /** The stage inside /var/lib/dokku; anything unexpected in the archive stays here. */
  lib: string;
  /** The staged /var/lib/dokku/{config,data,services,plugins} live here. */
  libTree: string;
  /** What /home/dokku held before (its children), kept aside by extract. */
  homeAside: string;
  /** What /var/lib/dokku/{config,...} were before, kept aside by extract. */
  libAside: string;
}

/** The stage layout of a run (the run id names folders and appears in a tar --transform). */
export function stagePaths(runId: string): StagePaths {
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw new InternalError(`unexpected run id ${runId}`);
  const dir = stageDir(runId);
  const lib = `/var/lib/dokku/.ferry-stage-${runId}`;
  return {
    dir,
    meta: `${dir}/meta`,
    sum: `${dir}/data.sha256`,
    home: `/home/dokku/.ferry-stage-${runId}`,
    lib,
    libTree: `${lib}/var/lib/dokku`,
    homeAside: `/home/dokku/.ferry-pre-${runId}`,
    libAside: `/var/lib/dokku/.ferry-pre-${runId}`,
  };
}

/** Removes a stage whose content cannot be trusted (a failed or mismatched transfer). */
export function discardStageCommand(runId: string): string {
  const s = stagePaths(runId);
  return `rm -rf -- ${arg(s.home)} ${arg(s.lib)} ${arg(s.dir)}`;
}

/** The discard as an action (run only on failure, so not in the plan's main line). */
export function discardStageAction(host: string, runId: string): RemoteAction {
  return { kind: 'remote', host, command: discardStageCommand(runId), changes: true };
}

/** Compression param: `auto` picks zstd when both ends have it, else gzip. */
export type CompressionChoice = Compression | 'auto';

/**
 * Send side of a live transfer: tar | compress, its SHA-256 to `sumFile`.
 * The run folder's manifest.json and exports/ go at the end of the same tar
 * (members `manifest.json`, `exports/...`), so one stream, one SSH
 * connection and one pull key carry everything: a second connection costs
 * its handshake and a slow first second here.
 */
export function sendLiveCommand(sumFile: Arg, compression: Compression, metaDir: Arg): string {
  const meta = `m=${arg(metaDir)} && if [ -e "$m/manifest.json" ] || [ -e "$m/exports" ]; then set -- "$@" -C "$m"; for x in manifest.json exports; do if [ -e "$m/$x" ]; then set -- "$@" "$x"; fi; done; fi`;
  return `${EXISTING_PATHS} && ${meta} && ${hashed(`${TAR_CREATE} | ${COMPRESSION[compression].compress}`, sumFile, 'out')}`;
}

/**
 * Receive side: SHA-256 of what arrives, decompress, untar with numeric
 * owners and modes. The first --transform puts every member under the
 * /var/lib/dokku stage, the second sends `home/dokku` on to the /home/dokku
 * stage, the last two send a live stream's `manifest.json` and `exports/` to
 * the root-only meta folder; symlink targets (S) are left as they are.
 */
export function receiveDataCommand(runId: string, compression: Compression): string {
  const s = stagePaths(runId);
  const lib = s.lib.slice(1).replace(/\./g, '\\.');
  const all = `s,^,${s.lib.slice(1)}/,S`;
  const home = `s,^${lib}/home/dokku\\(/\\|$\\),${s.home.slice(1)}\\1,S`;
  const manifest = `s,^${lib}/manifest\\.json$,${s.meta.slice(1)}/manifest.json,S`;
  const exports = `s,^${lib}/exports\\(/\\|$\\),${s.meta.slice(1)}/exports\\1,S`;
  const tx = [all, home, manifest, exports].map((x) => `--transform ${quote(x)}`).join(' ');
  return hashed(
    `${COMPRESSION[compression].decompress} | tar --numeric-owner -xpf - -C / ${tx}`,
    s.sum,
    'in',
    { progress: true },
  );
}

/** Send side of an archive transfer: the archive file as it is. */
export function sendArchiveCommand(file: Arg): string {
  return `cat -- ${arg(file)}`;
}

/** What only the meta stream's send command holds (how the run finds it). */
const META_MARK = '--ignore-failed-read manifest.json';

/** Send side of the small stream of an archive: manifest, exports, cron entries and the archive's checksum. */
export function sendMetaCommand(dir: Arg): string {
  return `cd ${arg(dir)} && tar -cf - ${META_MARK} exports cron.d $(ls -1 dokku.tar.*.sha256 2>/dev/null)`;
}

/** Receive side of the small stream, into `<stage>/meta`. */
export function receiveMetaCommand(stage: Arg): string {
  return `tar -xf - -C ${arg(path(stage, '/meta'))}`;
}

/**
 * Prepares empty, root-only stages (a resumed run starts the copy again) and
 * refuses early when a seed path below /var/lib/dokku is a mount point of its
 * own: extract's renames could not move it.
 */
export function prepareStageCommand(runId: string): string {
  const s = stagePaths(runId);
  const mounts = `for p in config data services plugins; do if mountpoint -q "/var/lib/dokku/$p"; then echo "/var/lib/dokku/$p is a mount point: extract moves folders by renaming them" >&2; exit 1; fi; done`;
  return `test -d /home/dokku && test -d /var/lib/dokku && ${mounts} && rm -rf -- ${arg(s.dir)} ${arg(s.home)} ${arg(s.lib)} && ${rootOnlyDirs(s.meta, s.lib)}`;
}

/** Whether this host has zstd (exit 0) or not (exit 1). */
export const HAS_ZSTD = 'command -v zstd';

/** The newest archive folder of `host` in backup.dir (see {@link archiveFoldersCommand}). */
export function latestArchiveCommand(inventory: Inventory, host: Host): string {
  return `${archiveFoldersCommand(inventory, host)} | sed -n 1p`; // sed reads it all: no SIGPIPE under pipefail
}

/** The archive file in a run folder: dokku.tar.zst or dokku.tar.gz, whichever is there. */
export function archiveNameCommand(dir: Arg): string {
  return `cd ${arg(dir)} && { ls -1 dokku.tar.zst dokku.tar.gz 2>/dev/null || true; } | head -n 1`;
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
  plan(ctx) {
    const { host, params, roles, options, inventory } = ctx;
    const to = host!.name;
    const s = stagePaths(options.runId);
    const route: Route = options.route ?? params.route;
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
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
      return actions;
    }
    const where = archiveSource(ctx);
    const holderRoute: Route = where.holder === 'controller' ? 'relay' : route;
    if (params.data === 'latest') {
      actions.push({
        kind: 'remote',
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
        host: to,
        command: HAS_ZSTD,
        expect: 'exit 0 when the archive is dokku.tar.zst (else stop: install zstd)',
      });
    }
    if (where.file === undefined) {
      const list = archiveNameCommand(where.dir);
      actions.push(
        where.holder === 'controller'
          ? {
              kind: 'local',
              command: list,
              expect: 'dokku.tar.zst or dokku.tar.gz (none: not an archive folder)',
            }
          : {
              kind: 'remote',
              host: where.holder,
              command: list,
              capture: 'archive',
              expect: 'dokku.tar.zst or dokku.tar.gz (none: not an archive folder)',
            },
      );
    }
    actions.push({
      kind: 'stream',
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
      const file = where.file ?? path(where.dir, `/dokku.tar.${COMPRESSION[c].ext}`);
      actions.push({
        kind: 'stream',
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
    actions.push({
      kind: 'remote',
      host: to,
      command: `cat ${arg(`${s.meta}/manifest.json`)}`,
      expect: "the archive's manifest (what later steps restore)",
    });
    return actions;
  },
});
export default transfer;

/** The params of a transfer step. */
export type TransferParams = Parameters<typeof transfer.plan>[0]['params'];

/** Runs a stream whose progress shows against `total` (the runtime reports bytes only). */
function streamWithTotal(
  rt: TaskRuntime<TransferParams>,
  total: number | undefined,
): TaskRuntime<TransferParams>['stream'] {
  if (!total) return rt.stream.bind(rt);
  const task: StepTask = Object.create(rt.task) as StepTask;
  task.progress = (bytes: number) => rt.task.progress(bytes, total);
  return createRuntime({ ctx: rt.ctx, actions: rt.actions, task, run: rt.run }).stream;
}

/** Does `host` have zstd? */
async function hasZstd(rt: TaskRuntime<TransferParams>, host: string): Promise<boolean> {
  const probe = rt.actions.find(
    (a) => a.kind === 'remote' && a.host === host && a.command === HAS_ZSTD,
  );
  if (probe?.kind !== 'remote') return false;
  const r = await rt.exec(probe, {}, { allowCodes: [0, 1] });
  return r.code === 0;
}

/** The manifest this run already has (migrate), if any. */
function knownManifest(rt: TaskRuntime<TransferParams>): Manifest | undefined {
  try {
    return rt.manifest();
  } catch {
    return undefined;
  }
}

export const run: TaskRun<TransferParams> = async (rt) => {
  const { params, options, host } = rt.ctx;
  const to = host!.name;
  const s = stagePaths(options.runId);
  const vars: Record<string, string> = {};
  rt.task.hostState(to, `receiving into ${s.home} and ${s.lib}; nothing moved into place`);
  // The stage, the route and (live) both hosts' zstd are independent: asked at once.
  const firstStream = rt.actions.find((a) => a.kind === 'stream');
  const [, , zstdHere, zstdThere] = await Promise.all([
    rt.exec(rt.action('remote', 'mountpoint -q')),
    firstStream?.kind === 'stream' ? rt.routeOf(firstStream) : undefined,
    params.data === 'live' && params.compression !== 'gzip' ? hasZstd(rt, to) : undefined,
    params.data === 'live' && params.compression !== 'gzip'
      ? hasZstd(rt, rt.ctx.roles[params.from]!.name)
      : undefined,
  ]);

  let compression: Compression;
  if (params.data === 'live') {
    const from = rt.ctx.roles[params.from]!.name;
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
    const latest = rt.actions.find((a) => a.kind === 'remote' && a.capture === 'archive-dir');
    if (latest?.kind === 'remote') {
      const dir = (await rt.exec(latest)).stdout.trim();
      if (!dir.startsWith('/')) {
        throw new StopError(`no backup of ${params.from} found on ${latest.host}`, {
          hint: 'Run `ferry backup` first; drill restores the newest archive in backup.dir.',
        });
      }
      vars['archive-dir'] = dir;
    }
    const list = rt.actions.find(
      (a) => (a.kind === 'remote' || a.kind === 'local') && a.command.includes('ls -1 dokku.tar'),
    );
    const dataStreams = rt.actions.filter(
      (a) => a.kind === 'stream' && !a.send.includes(META_MARK),
    );
    const only = dataStreams.length === 1 ? dataStreams[0] : undefined;
    if (list && (list.kind === 'remote' || list.kind === 'local')) {
      const name = (await rt.exec(list, vars)).stdout.trim();
      const c = compressionOf(name);
      if (!c) {
        throw new StopError(`no dokku.tar.zst or dokku.tar.gz in the archive folder`, {
          hint: 'Name the folder `ferry backup` wrote (it holds manifest.json and dokku.tar.zst).',
        });
      }
      compression = c;
    } else if (only?.kind === 'stream') {
      compression = only.receive.includes(COMPRESSION.gzip.decompress) ? 'gzip' : 'zstd';
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
  if (params.data !== 'live') await rt.stream(rt.action('stream', META_MARK), vars);
  let manifest = knownManifest(rt);
  const out: Record<string, Json> = { compression };
  if (params.data !== 'live') {
    const cat = rt.action('remote', '/meta/manifest.json');
    try {
      manifest = parseManifest((await rt.exec(cat)).stdout);
    } catch (e) {
      if (e instanceof FerryError) throw e;
      throw new StopError(`the archive's manifest.json is not a dokku-ferry manifest`, {
        hint: 'Restore only archives written by `ferry backup`.',
      });
    }
    out.manifest = manifest as unknown as Json;
  }

  const data = rt.action('stream', COMPRESSION[compression].decompress);
  const total = manifest?.dataBytes;
  rt.task.log(
    `streaming with ${compression}${total ? ` (about ${(total / 1e6).toFixed(0)} MB before compression)` : ''}`,
  );
  let r: Awaited<ReturnType<TaskRuntime['stream']>>;
  try {
    r = await streamWithTotal(rt, total)(data, vars);
  } catch (e) {
    // What arrived is unverified: it goes, so nothing of it lingers in the Dokku paths.
    await rt.exec(discardStageAction(to, options.runId)).catch(() => undefined);
    rt.task.hostState(to, 'the transfer failed; its stage was discarded, nothing moved into place');
    throw e;
  }
  const mb = r.bytes / 1e6;
  rt.task.log(
    `${mb.toFixed(1)} MB on the wire in ${r.seconds.toFixed(1)} s (${(mb / Math.max(r.seconds, 0.001)).toFixed(1)} MB/s, ${r.route})`,
  );
  rt.task.hostState(
    to,
    `staged at ${s.home} and ${s.lib} (meta in ${s.meta}); nothing moved into place`,
  );
  return { ...out, route: r.route, bytes: r.bytes, seconds: r.seconds };
};
