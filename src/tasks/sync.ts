/**
 * A delta-capable copy of the Dokku paths into the target's stage (the
 * layout of stage.ts, so extract moves it into place as after a transfer):
 * rsync, the target's client talking to a sender on the source over the
 * direct route (an ssh key for this one copy) or through the controller.
 * `ferry migrate --live` runs it twice. Phase 1, while the source serves:
 * passes until one is short (each copies only what changed since the last).
 * Phase 2 (`final`), after the cut-over froze and stopped everything: the
 * last delta, the run folder's manifest and final exports, then the check
 * that the stage is what the source holds.
 *
 * The sender on the source runs only an rsync sender of the planned paths:
 * it reads the client's request and refuses any other command, path or
 * option (no `--remove-source-files`), as rrsync does for read-only keys.
 */
import { StopError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { runDir } from './common.js';
import { stagePaths } from './stage.js';
import { defineTask, type PlannedAction, type Route, type RuntimeOf } from './types.js';
import { exportSumsCheckCommand } from './verify-archive.js';

/** The parts of /var/lib/dokku the seed archives (extract swaps these whole). */
const LIB_PARTS = ['config', 'data', 'services', 'plugins'] as const;

/** The options a sender accepts besides single-letter clusters. */
const SENDER_LONG_OPTIONS = [
  '--numeric-ids',
  '--inplace',
  '--ignore-missing-args',
  '--compress-choice=zstd',
  '--compress-choice=lz4',
  '--compress-choice=zlib',
] as const;

/**
 * The source's side: an rsync sender of exactly `paths`, and nothing else.
 * The request comes from `$FERRY_DUPLEX_REQUEST` (`-`: the first line of
 * stdin) or, on the direct route, from sshd's SSH_ORIGINAL_COMMAND.
 */
export function rsyncSenderCommand(paths: readonly string[]): Command {
  const longs = SENDER_LONG_OPTIONS.join('|');
  return $`req=\${FERRY_DUPLEX_REQUEST:-\${SSH_ORIGINAL_COMMAND:-}}
if [ "$req" = - ]; then IFS= read -r req; fi
read -ra w <<<"$req"
want=(${[...paths]})
longs=${longs}
ok=1
[ "\${w[0]:-}" = rsync ] && [ "\${w[1]:-}" = --server ] && [ "\${w[2]:-}" = --sender ] || ok=0
i=3
while [ "$ok" = 1 ] && [ "$i" -lt "\${#w[@]}" ] && [ "\${w[i]}" != . ]; do
  o=\${w[i]}
  if [[ $o =~ ^-[A-Za-z0-9.]+$ ]] || [[ $o =~ ^--compress-level=[0-9]+$ ]] || [[ "|$longs|" == *"|$o|"* ]]; then i=$((i + 1)); else ok=0; fi
done
if [ "$ok" != 1 ] || [ "\${w[i]:-}" != . ] || [ "\${w[*]:i+1}" != "\${want[*]}" ]; then echo "ferry: refused: $req" >&2; exit 1; fi
exec rsync "\${w[@]:1}"`;
}

/** Compression of a sync pass: none (the CPUs are the limit) or zstd (a slow link). */
export type SyncCompression = 'none' | 'zstd';

/** The target's side: an rsync client pulling `sources` into `dest` over `$FERRY_RSH`. */
export function rsyncClientCommand(
  sources: readonly string[],
  dest: string,
  opts: { relative?: boolean; compression?: SyncCompression; live?: boolean } = {},
): Command {
  const rel = opts.relative ? $` -R` : $``;
  const z = opts.compression === 'zstd' ? $` -z --zc=zstd --zl=1` : $``;
  const from = sources.map((p) => `ferry-source:${p}`);
  // Quick check to the nanosecond (rsync >= 3.1.3; the receiver's alone): by default rsync compares whole
  // seconds, so a same-size write in the second a pass read the file would be skipped by the next one.
  const cmd = $`rsync -aH --numeric-ids --delete --inplace --ignore-missing-args --modify-window=-1${rel}${z} --stats -e "$FERRY_RSH" ${from} ${dest}`;
  // While the source serves, a file may vanish between listing and sending (exit 24): the next pass sees.
  return opts.live ? $`{ ${cmd} || [ $? -eq 24 ]; }` : cmd;
}

/** One line a path under `dir` (type, a file's size and mtime, mode, owners, a link's target), sorted; `prefix` before each. */
export function treeLinesCommand(
  dir: string,
  parts: readonly string[] | undefined,
  prefix = '',
): Command {
  const what = parts === undefined ? $`.` : $`${[...parts]}`;
  // A folder's size is its filesystem's business (one that once held many entries stays large): not compared.
  // Nor the mtimes of folders and symlinks: no Dokku code reads them, and rsync 3.5 leaves them unset when
  // the sender's are within the current second (seen on Debian 12's 3.5.0), which a live pass meets often.
  const dirs = `${prefix}%p d - - %m %U %G\\n`;
  const links = `${prefix}%p l - - %m %U %G %l\\n`;
  const rest = `${prefix}%p %y %s %T@ %m %U %G\\n`;
  return $`cd ${dir} && { find ${what} \\( -type d -printf ${dirs} \\) -o \\( -type l -printf ${links} \\) -o -printf ${rest} 2>/dev/null || true; } | LC_ALL=C sort`;
}

/** What the stage holds, as the hash of {@link treeLinesCommand}'s lines: compared with the source. */
export function treeListingCommand(dir: string, parts: readonly string[] | undefined): Command {
  return $`${treeLinesCommand(dir, parts)} | sha256sum | cut -d' ' -f1`;
}

/** Both trees' lines (home, then lib), to name the paths that differ when the hashes do. */
function bothTreesLines(home: string, lib: string): Command {
  return $`{ ${treeLinesCommand(home, undefined, 'home/')}; ${treeLinesCommand(lib, [...LIB_PARTS], 'lib/')}; }`;
}

/** The existing parts of /var/lib/dokku among LIB_PARTS (the listing must name the same ones on both sides). */
const LIB_PARTS_HERE = $`cd /var/lib/dokku && for p in ${[...LIB_PARTS]}; do if [ -e "$p" ]; then echo "$p"; fi; done`;

/** Makes the stage if missing and keeps what it holds: the base of the next delta. */
export function keepStageCommand(runId: string): Command {
  const s = stagePaths(runId);
  const mounts = $`for p in ${[...LIB_PARTS]}; do if mountpoint -q "/var/lib/dokku/$p"; then echo "/var/lib/dokku/$p is a mount point: extract moves folders by renaming them" >&2; exit 1; fi; done`;
  return $`test -d /home/dokku && test -d /var/lib/dokku && ${mounts} && install -d -m 0700 ${s.dir} ${s.meta} ${s.lib} && install -d ${s.home} ${s.libTree} && rm -f ${`${s.dir}/extracted`}`;
}

const task = defineTask({
  name: 'sync',
  summary:
    "copy the Dokku paths into this host's stage with rsync: only what changed since the last pass",
  runsOn: 'host',
  roleParams: ['from'],
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: { type: 'string', description: 'The role that sends (the source).' },
      final: {
        type: 'boolean',
        default: false,
        description:
          'The last pass, after the cut-over: also the manifest and final exports, then the stage is checked against the source.',
      },
      passes: {
        type: 'integer',
        minimum: 1,
        maximum: 10,
        default: 3,
        description:
          'Passes at most (a pass that is not final is repeated while passes take long).',
      },
      settle_seconds: {
        type: 'number',
        minimum: 0,
        default: 5,
        description:
          'A pass shorter than this ends the repeats: the last delta will be about as short.',
      },
      compression: {
        enum: ['none', 'zstd'],
        default: 'none',
        description: 'none: the CPUs are the limit (a fast link); zstd: a slow link.',
      },
      route: {
        enum: ['auto', 'direct', 'relay'],
        default: 'auto',
        description:
          'direct: host to host; relay: through this machine; auto: direct when they reach each other. --route overrides it.',
      },
    },
  },
  actions: {
    'keep-stage': [],
    home: [],
    lib: [],
    meta: [],
    'source-parts': [],
    'source-home-listing': [],
    'stage-home-listing': [],
    'source-lib-listing': [],
    'stage-lib-listing': [],
    'export-sums-check': [],
    'source-lines': [],
    'stage-lines': [],
  },
  plan({ host, params, roles, options, inventory }) {
    const to = host!.name;
    const src = roles[params.from]!;
    const s = stagePaths(options.runId);
    const route: Route = options.route ?? params.route;
    const c = { compression: params.compression as SyncCompression, live: !params.final };
    const libSources = LIB_PARTS.map((p) => `/var/lib/dokku/./${p}`);
    const stream = (
      id: 'home' | 'lib' | 'meta',
      paths: string[],
      receive: Command,
      why: string,
    ): PlannedAction => ({
      kind: 'stream',
      id,
      from: src.name,
      to,
      route,
      duplex: true,
      send: rsyncSenderCommand(paths),
      receive,
      why,
      changes: true,
    });
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        id: 'keep-stage',
        host: to,
        command: keepStageCommand(options.runId),
        why: 'the stage an earlier pass filled is the base of this one',
        changes: true,
      },
      stream(
        'home',
        ['/home/dokku/'],
        rsyncClientCommand(['/home/dokku/'], `${s.home}/`, c),
        '/home/dokku, at once with the next',
      ),
      stream(
        'lib',
        libSources,
        rsyncClientCommand(libSources, `${s.libTree}/`, { ...c, relative: true }),
        '/var/lib/dokku/{config,data,services,plugins}',
      ),
    ];
    if (!params.final) return actions;
    const dir = runDir(inventory, src, options.runId);
    const metaPaths = [`${dir}/manifest.json`, `${dir}/exports`];
    actions.push(
      stream(
        'meta',
        metaPaths,
        rsyncClientCommand(metaPaths, `${s.meta}/`, c),
        'the manifest and the final exports (written after the freeze)',
      ),
      {
        kind: 'remote',
        id: 'source-parts',
        host: src.name,
        command: LIB_PARTS_HERE,
        capture: 'parts',
      },
      {
        kind: 'remote',
        id: 'source-home-listing',
        host: src.name,
        command: treeListingCommand('/home/dokku', undefined),
        capture: 'home-listing',
        why: 'every path with its type, size, mtime, mode and owners; rsync checked the content of each file it sent',
      },
      {
        kind: 'remote',
        id: 'stage-home-listing',
        host: to,
        command: treeListingCommand(s.home, undefined),
        expect: 'equal to <home-listing>; else stop before anything is moved into place',
      },
      {
        kind: 'remote',
        id: 'source-lib-listing',
        host: src.name,
        command: treeListingCommand('/var/lib/dokku', [...LIB_PARTS]),
        capture: 'lib-listing',
      },
      {
        kind: 'remote',
        id: 'stage-lib-listing',
        host: to,
        command: treeListingCommand(s.libTree, [...LIB_PARTS]),
        expect: 'equal to <lib-listing>',
      },
      {
        kind: 'remote',
        id: 'export-sums-check',
        host: to,
        command: exportSumsCheckCommand(s.dir),
        expect: 'exit 0 (every export whole)',
      },
      {
        kind: 'remote',
        id: 'source-lines',
        host: src.name,
        command: bothTreesLines('/home/dokku', '/var/lib/dokku'),
        only: 'when a listing differs: the paths that differ are named',
      },
      {
        kind: 'remote',
        id: 'stage-lines',
        host: to,
        command: bothTreesLines(s.home, s.libTree),
        only: 'when a listing differs',
      },
    );
    return actions;
  },
});

type Runtime = RuntimeOf<typeof task>;

/** rsync's `--stats`: the bytes the client received (what crossed the link). */
export function parseRsyncStats(output: string): { received: number; sent: number; files: number } {
  const num = (re: RegExp) => Number((re.exec(output)?.[1] ?? '0').replace(/[,.]/g, ''));
  return {
    received: num(/Total bytes received: ([\d,.]+)/),
    sent: num(/Total bytes sent: ([\d,.]+)/),
    files: num(/Number of regular files transferred: ([\d,.]+)/),
  };
}

/** One pass: home and lib at once (and meta when final); returns its seconds and bytes. */
async function pass(
  rt: Runtime,
  final: boolean,
): Promise<{ seconds: number; bytes: number; files: number }> {
  const started = Date.now();
  const ids = final ? (['home', 'lib', 'meta'] as const) : (['home', 'lib'] as const);
  const results = await Promise.all(ids.map((id) => rt.stream(id)));
  let bytes = 0;
  let files = 0;
  for (const r of results) {
    const st = parseRsyncStats(r.output);
    bytes += st.received || r.bytes;
    files += st.files;
  }
  return { seconds: (Date.now() - started) / 1000, bytes, files };
}

async function run(rt: Runtime) {
  const { params, options } = rt.ctx;
  const to = rt.ctx.host!.name;
  const s = stagePaths(options.runId);
  await rt.exec('keep-stage');
  const passes: { seconds: number; bytes: number; files: number }[] = [];
  const max = params.final ? 1 : params.passes;
  for (let i = 0; i < max; i++) {
    if (rt.task.signal.aborted) throw new StopError('interrupted');
    const p = await pass(rt, params.final);
    passes.push(p);
    rt.task.progress(passes.reduce((n, x) => n + x.bytes, 0));
    rt.task.log(
      `pass ${i + 1}: ${p.files} file(s), ${p.bytes} bytes in ${p.seconds.toFixed(1)} s${params.final ? ' (final)' : ''}`,
    );
    if (p.seconds < params.settle_seconds) break;
  }
  rt.task.hostState(to, `stage at ${s.home} and ${s.lib} synced; nothing moved into place`);
  if (!params.final) return { passes, checked: false };

  // Every check at once, on both hosts: this is downtime.
  const [sp, sh, th, sl, tl, ex] = await Promise.allSettled([
    rt.exec('source-parts'),
    rt.exec('source-home-listing'),
    rt.exec('stage-home-listing'),
    rt.exec('source-lib-listing'),
    rt.exec('stage-lib-listing'),
    rt.exec('export-sums-check'),
  ]);
  const val = (r: PromiseSettledResult<{ stdout: string }>) =>
    r.status === 'fulfilled' ? r.value.stdout.trim() : `(failed: ${String(r.reason)})`;
  const parts = val(sp)
    .split('\n')
    .filter((l) => l.trim() !== '');
  const mismatched: string[] = [];
  if (val(sh) !== val(th)) mismatched.push(`/home/dokku (${val(sh)} there, ${val(th)} here)`);
  if (val(sl) !== val(tl))
    mismatched.push(`/var/lib/dokku/{${parts.join(',')}} (${val(sl)} there, ${val(tl)} here)`);
  if (mismatched.length > 0) {
    const [a, b] = await Promise.all([rt.exec('source-lines'), rt.exec('stage-lines')]);
    const there = new Set(a.stdout.split('\n'));
    const here = new Set(b.stdout.split('\n'));
    const differ = [
      ...[...there].filter((l) => !here.has(l)).map((l) => `source: ${l}`),
      ...[...here].filter((l) => !there.has(l)).map((l) => `stage: ${l}`),
    ];
    for (const l of differ.slice(0, 20)) rt.task.log(l);
    mismatched.push(`${differ.length} line(s) differ, first: ${differ.slice(0, 3).join('; ')}`);
    rt.task.hostState(to, `the stage differs from the source; nothing moved into place`);
    throw new StopError(`the synced stage differs from the source: ${mismatched.join('; ')}`, {
      hint: 'Something changed the source after the cut-over froze it, or the copy broke. Nothing was moved into place; run again (--resume syncs again from the stage).',
    });
  }
  if (ex.status === 'rejected') {
    throw new StopError('a datastore export does not match its checksum (or none came)', {
      hint: `Nothing was moved into place. Look at ${s.meta}/exports on ${to}.`,
      cause: ex.reason,
    });
  }
  rt.task.log(
    `stage listing ${val(th).slice(0, 12)}… / ${val(tl).slice(0, 12)}… equal to the source's`,
  );
  rt.task.hostState(
    to,
    `stage at ${s.home} and ${s.lib} synced and checked; nothing moved into place`,
  );
  return { passes, checked: true };
}

export default task.runs(run);
