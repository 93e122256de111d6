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
import { FerryError, InternalError, knownCause, LocalError, StopError } from '../errors.js';
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

/** Compression param: `auto` measures the link first (see {@link chooseCodec}). */
export type CompressionChoice = LiveCodec | 'auto';

/**
 * How a live stream is sent. Where the CPUs are the limit (a fast link, or
 * hosts that share cores) compressing costs more than it saves; where the
 * link is, the better ratio of a higher level wins.
 */
export const LIVE_CODECS = {
  none: undefined,
  zstd: COMPRESSION.zstd,
  'zstd-3': { compress: $`zstd -q -3 -T0`, decompress: COMPRESSION.zstd.decompress },
  gzip: COMPRESSION.gzip,
} as const satisfies Record<string, { compress: Command; decompress: Command } | undefined>;
/** A live stream's codec: none, zstd (-1), zstd-3, gzip (-1). */
export type LiveCodec = keyof typeof LIVE_CODECS;

/** Link rates (bytes/s, as the probe measured them) at which the next-faster codec wins. */
export const CODEC_THRESHOLDS = { none: 120e6, zstd: 25e6 } as const;

/**
 * The codec for a link of `bytesPerSecond`: none at or above ~1 Gbit/s of
 * payload (tar and ssh already use the CPUs; zstd -1 compresses ~350 MB/s a
 * core and the hosts may share them), zstd -1 on a fast link, zstd -3 on a
 * slow one (100 Mbit/s: the ratio is worth the CPU). Without zstd on both
 * hosts: none on a fast link, gzip -1 on a slow one.
 */
export function chooseCodec(bytesPerSecond: number, zstd: boolean): LiveCodec {
  if (!(bytesPerSecond > 0)) return zstd ? 'zstd' : 'gzip';
  if (bytesPerSecond >= CODEC_THRESHOLDS.none) return 'none';
  if (!zstd) return 'gzip';
  return bytesPerSecond >= CODEC_THRESHOLDS.zstd ? 'zstd' : 'zstd-3';
}

/** The probe's send side: at most 64 MiB, at most half a second (cheap bytes: ssh does not compress). */
export const PROBE_SEND = $`{ timeout 0.5 yes || true; } | head -c 67108864`;

/** The probe's receive side: bytes and microseconds from the first byte to the end. */
export const PROBE_RECEIVE = $`{ IFS= read -r -n 1 _ || true; s=$(date +%s%N); n=$(wc -c); e=$(date +%s%N); echo "ferry-probe $n $(( (e - s) / 1000 ))"; }`;

/** Bytes per second from the probe's output; NaN when it said nothing usable. */
export function parseProbe(output: string): number {
  const m = /ferry-probe (\d+) (\d+)/.exec(output);
  if (!m) return Number.NaN;
  const [bytes, us] = [Number(m[1]), Number(m[2])];
  return bytes > 1e6 && us > 0 ? bytes / (us / 1e6) : Number.NaN;
}

/**
 * Send side of a live transfer: tar | compress, its SHA-256 to `sumFile`.
 * The run folder's manifest.json and exports/ go at the end of the same tar
 * (members `manifest.json`, `exports/...`), so one stream, one SSH
 * connection and one pull key carry everything: a second connection costs
 * its handshake and a slow first second here.
 */
export function sendLiveCommand(sumFile: Arg, codec: LiveCodec, metaDir: Arg): Command {
  const meta = $`m=${metaDir} && if [ -e "$m/manifest.json" ] || [ -e "$m/exports" ]; then set -- "$@" -C "$m"; for x in manifest.json exports; do if [ -e "$m/$x" ]; then set -- "$@" "$x"; fi; done; fi`;
  const c = LIVE_CODECS[codec];
  const send = hashed(c ? $`${TAR_CREATE} | ${c.compress}` : TAR_CREATE, sumFile, 'out');
  return $`${EXISTING_PATHS} && ${meta} && ${send}`;
}

/**
 * Receive side: SHA-256 of what arrives, decompress, untar with numeric
 * owners and modes. The first --transform puts every member under the
 * /var/lib/dokku stage, the second sends `home/dokku` on to the /home/dokku
 * stage, the last two send a live stream's `manifest.json` and `exports/` to
 * the root-only meta folder; symlink targets (S) are left as they are.
 */
export function receiveDataCommand(runId: string, compression: LiveCodec): Command {
  const s = stagePaths(runId);
  const lib = s.lib.slice(1).replace(/\./g, '\\.');
  const all = `s,^,${s.lib.slice(1)}/,S`;
  const home = `s,^${lib}/home/dokku\\(/\\|$\\),${s.home.slice(1)}\\1,S`;
  const manifest = `s,^${lib}/manifest\\.json$,${s.meta.slice(1)}/manifest.json,S`;
  const exports = `s,^${lib}/exports\\(/\\|$\\),${s.meta.slice(1)}/exports\\1,S`;
  const [a, h, m, e] = [all, home, manifest, exports];
  const untar = $`tar --numeric-owner -xpf - -C / --transform ${a} --transform ${h} --transform ${m} --transform ${e}`;
  const c = LIVE_CODECS[compression];
  return hashed(c ? $`${c.decompress} | ${untar}` : untar, s.sum, 'in', { progress: true });
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

/** The encrypted archive in a fetched folder: dokku.tar.zst.age or dokku.tar.gz.age. */
export function encryptedArchiveNameCommand(dir: Arg): Command {
  return $`cd ${dir} && { ls -1 dokku.tar.zst.age dokku.tar.gz.age 2>/dev/null || true; } | head -n 1`;
}

/**
 * Checks the ciphertexts against the SHA256SUMS the fetch wrote (exit 1 and
 * `<file>: FAILED` when one differs); says so when there is none.
 */
export function ciphertextSumsCommand(dir: Arg): Command {
  return $`cd ${dir} && if [ -e SHA256SUMS ]; then sha256sum -c --strict SHA256SUMS; else echo 'no SHA256SUMS'; fi`;
}

/**
 * age decrypting `file` with `identity` to stdout: each 64 KiB chunk is
 * authenticated before it is written out, and the wrong key fails on the
 * header, before any byte.
 */
export function ageDecryptCommand(identity: string, file: Arg | Command): Command {
  return $`age --decrypt -i ${identity} -- ${file}`;
}

/**
 * Decrypts `file` to nowhere: exit 0 only when every chunk authenticated
 * under `identity`. Run over the whole file before a byte is sent, so a
 * wrong key or a damaged file stops the restore before anything reaches the
 * target, even its stage.
 */
export function authenticateCommand(identity: string, file: Arg | Command): Command {
  return $`age --decrypt -i ${identity} -o /dev/null -- ${file}`;
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
  if (/\/dokku\.tar\.(zst|gz)(\.age)?$/.test(p)) {
    return { holder, dir: p.replace(/\/[^/]+$/, ''), file: p };
  }
  return { holder, dir: p, file: undefined };
}

/** The compression an archive file uses, from its name. */
export function compressionOf(file: string): Compression | undefined {
  const f = file.replace(/\.age$/, '');
  if (f.endsWith('.gz')) return 'gzip';
  if (f.endsWith('.zst')) return 'zstd';
  return undefined;
}

/**
 * The line of a failed stream's output saying the compressed data is damaged
 * (zstd's frame checksum and block checks, gzip's CRC, tar's framing), or
 * undefined when it says no such thing.
 */
export function damageOf(output: string): string | undefined {
  const line = output
    .split('\n')
    .map((l) => l.replace(/^\s*│\s?/, ''))
    .find((l) =>
      /Corrupted block|Data corruption|doesn't match checksum|Unknown frame descriptor|Frame requires too much memory|invalid compressed data|crc error|unexpected end of file|Unexpected EOF in archive|does not look like a tar archive|Skipping to next header|Damaged tar archive/i.test(
        l,
      ),
    );
  return line?.trim().slice(0, 240);
}

/** Everything an error says: its message and its output, its causes' too (for {@link damageOf}). */
export function errorText(e: unknown): string {
  const parts: string[] = [];
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 5; depth++) {
    const o = x as Error & { stderr?: unknown; stdout?: unknown };
    if (typeof o.stderr === 'string') parts.push(o.stderr);
    if (typeof o.stdout === 'string') parts.push(o.stdout);
    parts.push(x.message);
    x = x.cause;
  }
  return parts.join('\n');
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
        enum: ['auto', 'none', 'zstd', 'zstd-3', 'gzip'],
        default: 'auto',
        description:
          'Of a live stream: auto (a half-second probe of the route decides: none on a fast link, zstd -1, zstd -3 on a slow one; gzip -1 without zstd), none, zstd (-1), zstd-3 or gzip (-1). An archive is sent as it was written.',
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
    probe: [],
    // item: the compression
    live: [],
    'latest-archive': [],
    'archive-name': ['archive-dir'],
    meta: ['archive-dir'],
    // item: the compression
    archive: ['archive-dir'],
    'read-manifest': [],
    'expected-sum': [],
    'actual-sum': ['archive-dir'],
    'discard-stage': [],
    // encrypted (restore --identity): the ciphertexts' sums, then age over each whole file (item: meta or the compression)
    'ciphertext-sums': [],
    authenticate: [],
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
      const choices: LiveCodec[] =
        params.compression === 'auto' ? ['none', 'zstd', 'zstd-3', 'gzip'] : [params.compression];
      if (params.compression !== 'gzip' && params.compression !== 'none') {
        for (const h of [src.name, to]) {
          actions.push({
            kind: 'remote',
            id: 'has-zstd',
            item: h,
            host: h,
            command: HAS_ZSTD,
            expect:
              params.compression === 'auto'
                ? 'exit 0: zstd is there; 1: not (then none or gzip)'
                : 'exit 0 (else stop: compression zstd needs zstd on both hosts)',
          });
        }
      }
      if (params.compression === 'auto') {
        actions.push({
          kind: 'stream',
          id: 'probe',
          from: src.name,
          to,
          route,
          send: PROBE_SEND,
          receive: PROBE_RECEIVE,
          why: 'the rate of this route, measured (at most 64 MiB, at most half a second): it decides the compression of the stream',
        });
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
              : c === 'none'
                ? "the seed's five paths with the manifest and exports, streamed (nothing on either disk or the controller), uncompressed when the probe saw a fast link"
                : c === 'zstd'
                  ? 'the same with zstd -1 when the link is slower (both hosts have zstd)'
                  : c === 'zstd-3'
                    ? 'the same with zstd -3 on a slow link (a WAN: the ratio pays for the CPU)'
                    : 'the same with gzip -1 on a slow link when either host lacks zstd',
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
    const identity = options.ageIdentity;
    if (identity !== undefined && where.holder !== 'controller') {
      throw new FerryError('--identity decrypts an archive on this machine, not on a host');
    }
    const enc = identity === undefined ? '' : '.age';
    if (where.file === undefined) {
      const list =
        identity === undefined
          ? archiveNameCommand(where.dir)
          : encryptedArchiveNameCommand(where.dir);
      const expect = `dokku.tar.zst${enc} or dokku.tar.gz${enc} (none: not an archive folder)`;
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
    const variants: Compression[] = known ? [known] : ['zstd', 'gzip'];
    const fileOf = (c: Compression) =>
      where.file ?? $`${where.dir}/${`dokku.tar.${COMPRESSION[c].ext}${enc}`}`;
    const metaFile = $`${where.dir}/meta.tar.age`;
    if (identity !== undefined) {
      actions.push(
        {
          kind: 'local',
          id: 'ciphertext-sums',
          command: ciphertextSumsCommand(where.dir),
          expect: 'every file OK (a FAILED one: stop, nothing sent)',
        },
        ...[['meta', metaFile] as const, ...variants.map((c) => [c, fileOf(c)] as const)].map(
          ([item, file]): PlannedAction => ({
            kind: 'local',
            id: 'authenticate',
            item,
            command: authenticateCommand(identity, file),
            expect:
              'exit 0: every chunk authenticated under the identity (else stop: wrong key or damaged, nothing sent)',
          }),
        ),
      );
    }
    actions.push({
      kind: 'stream',
      id: 'meta',
      from: where.holder,
      to,
      route: holderRoute,
      send:
        identity === undefined ? sendMetaCommand(where.dir) : ageDecryptCommand(identity, metaFile),
      receive: receiveMetaCommand(s.dir),
      why: "the manifest, the datastore exports and the archive's checksum",
      changes: true,
    });
    for (const c of variants) {
      const file = fileOf(c);
      actions.push({
        kind: 'stream',
        id: 'archive',
        item: c,
        from: where.holder,
        to,
        route: holderRoute,
        send: identity === undefined ? sendArchiveCommand(file) : ageDecryptCommand(identity, file),
        receive: receiveDataCommand(options.runId, c),
        counts: true,
        why:
          variants.length === 1
            ? 'the archive as it was written; its checksum is compared after'
            : `the archive as it was written, when it is dokku.tar.${COMPRESSION[c].ext}`,
        changes: true,
      });
    }
    const damaged =
      'the archive does not decompress: it is damaged; which file and checksum, for the message';
    const file = where.file ?? $`${where.dir}/$(${archiveNameCommand(where.dir)})`;
    const actualSum = $`sha256sum -- ${file} | cut -d' ' -f1`;
    actions.push(
      {
        kind: 'remote',
        id: 'read-manifest',
        host: to,
        command: $`cat ${`${s.meta}/manifest.json`}`,
        expect: "the archive's manifest (what later steps restore)",
      },
      {
        kind: 'remote',
        id: 'expected-sum',
        host: to,
        command: $`cat ${`${s.meta}/`}dokku.tar.*.sha256`,
        only: damaged,
      },
      where.holder === 'controller'
        ? { kind: 'local', id: 'actual-sum', command: actualSum, only: damaged }
        : {
            kind: 'remote',
            id: 'actual-sum',
            host: where.holder,
            command: actualSum,
            only: damaged,
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

/** The archive's name in its folder (archive-name), else its compression as planned. */
async function archiveCompression(rt: Runtime, dir: string): Promise<Compression> {
  const variants = planned(rt, 'archive');
  if (rt.has('archive-name')) {
    const name = (await rt.exec('archive-name', { 'archive-dir': dir })).stdout.trim();
    const c = compressionOf(name);
    if (!c) {
      throw new StopError(`no dokku.tar.zst or dokku.tar.gz in the archive folder`, {
        hint: rt.ctx.options.ageIdentity
          ? 'With --identity, name the folder `ferry backup --fetch DIR --encrypt` wrote (it holds meta.tar.age and dokku.tar.zst.age).'
          : 'Name the folder `ferry backup` wrote (it holds manifest.json and dokku.tar.zst); an encrypted copy (dokku.tar.zst.age) needs --identity FILE.',
      });
    }
    return c;
  }
  if (variants.length === 1) return variants[0]!;
  throw new InternalError('transfer: no archive stream planned');
}

/**
 * Restore of an encrypted copy: before a byte leaves this machine, the
 * ciphertexts must match their SHA256SUMS (a damaged file, named) and age
 * must authenticate every chunk of both under the identity (a wrong key, or
 * damage the sums cannot see). The streams after decrypt again, chunk by
 * chunk authenticated: a file changed in between fails there, and its stage
 * is discarded; extract runs only after verify-archive.
 */
async function authenticateEncrypted(rt: Runtime, dir: string, c: Compression): Promise<void> {
  const to = rt.ctx.host!.name;
  const identity = rt.ctx.options.ageIdentity!;
  const nothing = `Nothing was sent to ${to}.`;
  const sums = await rt.exec('ciphertext-sums', {}, { allowCodes: [0, 1] });
  const failed = sums.stdout
    .split('\n')
    .map((l) => /^(.*): FAILED/.exec(l)?.[1])
    .filter((f): f is string => f !== undefined);
  if (sums.code !== 0 || failed.length > 0) {
    throw new StopError(
      `${failed.map((f) => `${dir}/${f}`).join(', ') || dir} is damaged: its sha256 is not the one in ${dir}/SHA256SUMS`,
      {
        hint: `${nothing} Restore from another copy (the archive on the host, HOST:PATH, or another fetch).`,
      },
    );
  }
  if (/^no SHA256SUMS/m.test(sums.stdout)) {
    rt.task.warn(`${dir} has no SHA256SUMS: only age's authentication checks the files`);
  }
  for (const item of ['meta', c]) {
    const name = item === 'meta' ? 'meta.tar.age' : `dokku.tar.${COMPRESSION[c].ext}.age`;
    try {
      await rt.exec('authenticate', {}, { item });
    } catch (e) {
      const said = e instanceof LocalError ? e.stderr : String(e);
      if (e instanceof LocalError && e.code === 127) {
        throw new StopError('age is not installed on this machine: it decrypts the copy here', {
          hint: 'Install it (apt-get install age, brew install age), then run the restore again.',
        });
      }
      if (/no identity matched any of the recipients/.test(said)) {
        throw new StopError(
          `${identity} cannot decrypt ${dir}/${name}: it is not a key the copy was encrypted to`,
          {
            hint: `${nothing} Give --identity the private key of one of the recipients the backup was encrypted to (backup.encrypt or --encrypt).`,
          },
        );
      }
      const why = said.split('\n').find((l) => l.startsWith('age: error:')) ?? said.trim();
      throw new StopError(
        `${dir}/${name} is damaged or was altered: age could not authenticate it (${why.replace(/^age: error: /, '')})`,
        { hint: `${nothing} Restore from another copy.` },
      );
    }
  }
  rt.task.log(`${dir}: sums match and age authenticated every chunk under ${identity}`);
}

async function run(rt: Runtime) {
  const { params, options, host } = rt.ctx;
  const to = host!.name;
  const s = stagePaths(options.runId);
  // Encrypted: judged here, before the stage exists or anything is sent.
  let encrypted: Compression | undefined;
  if (options.ageIdentity !== undefined && params.data === 'given') {
    const dir = archiveSource(rt.ctx).dir;
    const d = typeof dir === 'string' ? dir : '';
    encrypted = await archiveCompression(rt, d);
    await authenticateEncrypted(rt, d, encrypted);
  }
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

  let compression: LiveCodec;
  const vars: Record<string, string> = {};
  let probed: number | undefined;
  if (live) {
    if (params.compression === 'gzip' || params.compression === 'none') {
      compression = params.compression;
    } else {
      const [a, b] = [zstdThere === true, zstdHere === true];
      if (params.compression !== 'auto' && !(a && b)) {
        throw new StopError(`zstd is missing on ${a ? to : from}`, {
          hint: 'Install zstd there (apt-get install zstd), or set the transfer step\'s compression to "auto", "none" or "gzip".',
        });
      }
      if (params.compression !== 'auto') compression = params.compression;
      else {
        probed = parseProbe((await rt.stream('probe')).output);
        compression = chooseCodec(probed, a && b);
        rt.task.log(
          `${Number.isFinite(probed) ? `the route carries ${formatBytes(probed)}/s` : 'the probe measured nothing'}: ${compression === 'none' ? 'no compression' : compression}${a && b ? '' : ` (zstd is missing on ${a ? to : from})`}`,
        );
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
    compression = encrypted ?? (await archiveCompression(rt, vars['archive-dir']!));
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
  const out: Record<string, Json> = {
    compression,
    ...(probed !== undefined && Number.isFinite(probed)
      ? { probeBytesPerSecond: Math.round(probed) }
      : {}),
  };
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
    // Told by its cause (read before the stage goes: it holds the archive's own checksum).
    const told = await causeOf(
      rt,
      e,
      live || (compression !== 'zstd' && compression !== 'gzip')
        ? undefined
        : { ...dir, file: `dokku.tar.${COMPRESSION[compression].ext}` },
    );
    // What arrived is unverified: it goes, so nothing of it lingers in the Dokku paths.
    const discarded = await rt.exec('discard-stage').then(
      () => true,
      () => false,
    );
    rt.task.hostState(
      to,
      discarded
        ? 'the transfer failed; its stage was discarded, nothing moved into place'
        : `the transfer failed; nothing moved into place; its stage (${s.home}, ${s.lib}) could not be removed: the next run's transfer replaces it`,
    );
    throw told;
  }
  rt.task.log(
    `${formatBytes(r.bytes)} on the wire in ${r.seconds.toFixed(1)} s (${formatBytes(r.bytes / Math.max(r.seconds, 0.001))}/s, ${r.route})${r.why ? `; ${r.why}` : ''}`,
  );
  rt.task.hostState(
    to,
    `staged at ${s.home} and ${s.lib} (meta in ${s.meta}); nothing moved into place`,
  );
  return { ...out, route: r.route, bytes: r.bytes, seconds: r.seconds };
}

/**
 * The failure of the stream, told by its cause when it has a known one: the
 * target's disk full, or a damaged archive (with the file and both checksums).
 */
async function causeOf(
  rt: Runtime,
  e: unknown,
  archive: { 'archive-dir': string; file: string } | undefined,
): Promise<unknown> {
  if (rt.task.signal.aborted) return e;
  const to = rt.ctx.host!.name;
  const s = stagePaths(rt.ctx.options.runId);
  const text = errorText(e);
  const full = knownCause(text);
  // tar's short write ("Wrote only 2048 of 10240 bytes") is how a full disk often shows up in a stream.
  const enospc = full
    ? (/No space left on device|Disk quota exceeded/.exec(full)?.[0] ??
      (/Wrote only \d+ of \d+ bytes/.test(full) ? 'No space left on device' : undefined))
    : undefined;
  if (full && enospc) {
    // The cause first: a progress line already leads with the step's title.
    return new StopError(`${to}: ${enospc} in its stage while receiving (${full})`, {
      hint: `Free space on ${to} where the stage is written (${s.home}, ${s.lib}, ${s.dir}) or grow its disk, then run the same command with --resume. Nothing was moved into place.`,
      cause: e,
    });
  }
  const damage = damageOf(text);
  if (damage && archive) {
    const where = archiveSource(rt.ctx);
    const hex = (r: Promise<{ stdout: string }>): Promise<string> =>
      r.then(
        (x) => /^[0-9a-f]{64}/.exec(x.stdout.trim())?.[0] ?? '(unknown)',
        () => '(unknown)',
      );
    const [expected, actual] = await Promise.all([
      hex(rt.exec('expected-sum', {}, { timeoutMs: 60_000 })),
      hex(rt.exec('actual-sum', { 'archive-dir': archive['archive-dir'] }, { timeoutMs: 60_000 })),
    ]);
    const file = where.file ?? `${archive['archive-dir']}/${archive.file}`;
    const on = where.holder === 'controller' ? 'here' : `on ${where.holder}`;
    return new StopError(
      `the archive ${file} (${on}) is damaged: it does not decompress (${damage}); its sha256 is ${actual}, its .sha256 file says ${expected}`,
      {
        hint: `Nothing was extracted on ${to}. Restore another copy of this archive (\`ferry backup\` keeps one on the host and, with --fetch, one here), or take a new backup.`,
        cause: e,
      },
    );
  }
  return e;
}

export default transfer.runs(run);

/** The params of a transfer step. */
export type TransferParams = Parameters<typeof transfer.plan>[0]['params'];
