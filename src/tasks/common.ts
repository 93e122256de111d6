/**
 * Paths and command builders the tasks share. Every builder takes its
 * untrusted parts as `Arg`: a real value (quoted by `$`) or a hole (shown as
 * `<name>` in a plan, bound to the real value at run time).
 */
import { ARCHIVED_PATHS, SERVICES_ROOT } from '../dokku/layout.js';
import type { Host, Inventory } from '../inventory/index.js';
import { $, Command, type Hole, hole } from '../ssh/shell.js';

/** A value for a command: a real string (quoted when built) or a run-time hole. */
export type Arg = string | Hole;

/** Where dokku-ferry keeps its own files on a host. */
export const FERRY_ROOT = '/var/lib/dokku-ferry';

/** What the seed's backup archives, relative to `/`, in its order (see dokku/layout). */
export const ARCHIVE_PATHS = ARCHIVED_PATHS;

/** Datastore plugins whose services are exported, started and checked (official dokku plugins); `ferry check` reports these. */
export const DATASTORE_PLUGINS = [
  'postgres',
  'mysql',
  'mariadb',
  'redis',
  'mongo',
  'rabbitmq',
  'elasticsearch',
  'memcached',
  'couchdb',
  'rethinkdb',
  'clickhouse',
  'nats',
  'meilisearch',
  'solr',
  'typesense',
] as const;

/** Compression of streams and archives; zstd -1 runs ~10x faster than gzip here. */
export const COMPRESSION = {
  zstd: { ext: 'zst', compress: $`zstd -q -1 -T0`, decompress: $`zstd -q -dc` },
  gzip: { ext: 'gz', compress: $`gzip -1`, decompress: $`gzip -dc` },
} as const;
export type Compression = keyof typeof COMPRESSION;

/** Schema fragment for a compression param. */
export const compressionParam = {
  enum: ['zstd', 'gzip'],
  default: 'zstd',
  description: 'zstd (fast; the default) or gzip (when zstd is not installed on a host).',
} as const;

/**
 * A host's folder for one run: manifest.json, exports/, and for a backup the
 * archive (`dokku.tar.zst` + `.sha256`). Named `<host>-<runId>`, so names sort by time.
 */
export function runDir(inventory: Inventory, host: Host | string, runId: string): string {
  const name = typeof host === 'string' ? host : host.name;
  return `${inventory.backup.dir.replace(/\/+$/, '')}/${name}-${runId}`;
}

/** A run id as a glob: `20261123T104500Z`. */
const RUN_ID_GLOB = Command.script(
  '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z',
);

/**
 * Prints the run folders (`<host>-<runId>`) of `host` in backup.dir that hold
 * a whole dokku-ferry archive, newest first. Not counted: a failed run's
 * `.part`, a migration's folder (no archive), a safety archive
 * (`<host>-pre-ferry-…`), another host whose name starts alike (`old-2`).
 */
export function archiveFoldersCommand(inventory: Inventory, host: Host): Command {
  const dir = inventory.backup.dir.replace(/\/+$/, '');
  // No backup.dir yet lists nothing (find's complaint would fail the pipe).
  return $`{ [ ! -d ${dir} ] || find ${dir} -mindepth 2 -maxdepth 2 -path ${`${dir}/${host.name}-`}'${RUN_ID_GLOB}/dokku.tar.*' ! -name '*.sha256' ! -name '*.part' -printf '%h\\n'; } | sort -ru`;
}

/** The file name of the archive inside a run folder. */
export function archiveFile(compression: Compression): string {
  return `dokku.tar.${COMPRESSION[compression].ext}`;
}

/**
 * A bash fragment that puts the existing archive paths into "$@" (relative to
 * /), so tar neither fails on a missing one nor needs the seed's `mkdir` on
 * the source (which must stay unchanged).
 */
export const EXISTING_PATHS = $`cd / && set -- && for p in ${ARCHIVE_PATHS}; do if [ -e "$p" ]; then set -- "$@" "$p"; fi; done`;

/**
 * tar of the Dokku paths to stdout; GNU tar's exit 1 (a file changed while
 * read) is not fatal. What ferry itself set aside inside them (`.ferry-pre-*`,
 * `.ferry-stage-*` in /home/dokku: a mount point's children can only move
 * within it) is left out, so a later backup never carries it.
 */
export const TAR_CREATE = $`{ tar --numeric-owner --anchored --exclude='home/dokku/.ferry-*' -cpf - "$@" || [ $? -eq 1 ]; }`;

/**
 * SHA-256 of stdin as bare hex. OpenSSL's digest uses the CPU's SHA
 * instructions (here 0.20 s of CPU for 200 MB against coreutils' 0.89 s), so
 * the checksum costs a copy next to nothing; sha256sum where there is no
 * openssl. Same algorithm either way: the sums compare with any sha256sum.
 */
export const SHA256_HEX = $`{ if command -v openssl >/dev/null; then openssl dgst -sha256 -r; else sha256sum; fi; } | cut -d' ' -f1`;

/**
 * A pass-through hasher: copies stdin to stdout in reads of up to 1 MiB, with
 * both pipes grown to 1 MiB (F_SETPIPE_SZ), and writes the SHA-256 hex of
 * the bytes to argv[1] at the end. `tee` into a FIFO does the same job in
 * 8 KiB pieces through three more processes; on a busy 2-core host those
 * wake-ups cost more than the hashing (measured: 340 MB took 1.3 s that way,
 * 0.9 s this way, 0.45 s with no checksum at all). A closed output ends it
 * with SIGPIPE's status, as `tee` would, not a traceback.
 */
const PY_PASS = [
  'import fcntl, hashlib, os, sys, time',
  'def main():',
  '    h = hashlib.sha256(); n = 0; shown = 0.0; progress = len(sys.argv) > 2',
  '    for fd in (0, 1):',
  '        try: fcntl.fcntl(fd, 1031, 1 << 20)',
  '        except OSError: pass',
  '    b = bytearray(1 << 20); m = memoryview(b)',
  '    while True:',
  '        k = os.readv(0, [b])',
  '        if not k: break',
  '        h.update(m[:k]); v = m[:k]; n += k',
  '        while v: v = v[os.write(1, v):]',
  '        if progress and time.monotonic() - shown >= 1:',
  '            shown = time.monotonic(); os.write(2, b"%d bytes\\n" % n)',
  '    with open(sys.argv[1], "w") as f: f.write(h.hexdigest() + "\\n")',
  '    if progress: os.write(2, b"%d bytes\\n" % n)',
  'try: main()',
  'except BrokenPipeError: os._exit(141)',
].join('\n');

/**
 * Wraps a pipeline so the SHA-256 of the bytes passing through is written to
 * `sumFile` (hex only): complete when the command ends. `side` says whether
 * the bytes leave the pipeline (`out`: producer | hasher) or enter it (`in`:
 * hasher | consumer). Python 3 does it where there is one (Dokku's packages
 * bring it); else `tee` into a FIFO read by {@link SHA256_HEX}. With
 * `progress`, the bytes so far go to stderr about once a second as `<n>
 * bytes` lines, the form of `dd status=progress` (which the fallback uses),
 * and once more at the end: a direct transfer reads them there.
 */
export function hashed(
  pipeline: Command,
  sumFile: Arg | Command,
  side: 'in' | 'out',
  opts: { progress?: boolean } = {},
): Command {
  const py = $`python3 -c ${PY_PASS} ${sumFile}${opts.progress ? $` progress` : $``}`;
  const fast = side === 'out' ? $`${pipeline} | ${py}` : $`${py} | ${pipeline}`;
  const setup = $`f=$(mktemp -u /tmp/ferry-sum.XXXXXXXX) && mkfifo -m 600 "$f" && trap 'rm -f "$f"' EXIT && { { ${SHA256_HEX}; } <"$f" >${sumFile} & }`;
  const count = opts.progress ? $`dd bs=1M status=progress | ` : $``;
  const body =
    side === 'out' ? $`${pipeline} | ${count}tee "$f"` : $`${count}tee "$f" | ${pipeline}`;
  // Run once first: a python3 that is only a broken shim (pyenv without a version) falls back too.
  // umask 077: the sum file is ferry's own (0600); tar, as root, keeps its members' modes anyway.
  return $`umask 077 && if python3 -c "" 2>/dev/null; then ${fast}; else ${setup} && ${body} && wait $!; fi`;
}

/**
 * `install -d -m 0700` of each directory: root-only, as archives hold every
 * app's secrets. `install` gives the mode to the last component only, so for
 * a folder inside ferry's own ({@link FERRY_ROOT}) each folder from there down
 * is named too (an existing one is made 0700 again).
 */
export function rootOnlyDirs(...dirs: Arg[]): Command {
  const all: Arg[] = [];
  const add = (d: Arg) => {
    if (typeof d !== 'string' || !all.includes(d)) all.push(d);
  };
  for (const d of dirs) {
    if (typeof d === 'string' && d.startsWith(`${FERRY_ROOT}/`)) {
      let p = FERRY_ROOT;
      add(p);
      for (const part of d.slice(FERRY_ROOT.length + 1).split('/')) {
        if (part === '') continue;
        p = `${p}/${part}`;
        add(p);
      }
    } else add(d);
  }
  return $`install -d -m 0700 ${all}`;
}

/** The service's folder on a host. */
export function serviceDir(plugin: Arg, service: Arg): Command {
  return $`${SERVICES_ROOT}/${plugin}/${service}`;
}

/** Holes used across tasks. */
export const P = {
  app: hole('app'),
  plugin: hole('plugin'),
  service: hole('service'),
  network: hole('network'),
  image: hole('image'),
  archiveDir: hole('archive-dir'),
} as const;
