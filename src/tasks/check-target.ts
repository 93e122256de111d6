/**
 * A target that already holds Dokku data (apps or services) is refused unless
 * `--force`, and then only after a safety archive of it. A scratch host (a
 * drill) is overwritten by design; its data is moved aside, not archived.
 * Also reads free space, compared with the source's size by the runner.
 */
import { StopError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { formatBytes } from '../util/format.js';
import { ARCHIVE_ACTIONS, archiveActions, writeArchive } from './archive.js';
import { ARCHIVE_PATHS, FERRY_ROOT, runDir } from './common.js';
import { DATA_SIZE } from './inventory.js';
import { defineTask, type PlannedAction, type RuntimeOf } from './types.js';

/** Lists apps (folders in /home/dokku) and services (<plugin>/<name>) already on a host. */
export const EXISTING_DATA = $`{ find /home/dokku -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf 'app %f\\n'; find /var/lib/dokku/services -mindepth 2 -maxdepth 2 -type d -printf 'service %P\\n'; } 2>/dev/null || true`;

/**
 * Where a transfer writes on a target: the stage inside /home/dokku and inside
 * /var/lib/dokku (stage.ts: it must be on their filesystems, to be renamed
 * into place), and the run's meta (manifest, exports) under ferry's root.
 */
export const WRITTEN_PATHS = ['/home/dokku', '/var/lib/dokku', FERRY_ROOT] as const;

/**
 * Free space of the filesystem of each path (its nearest existing parent):
 * `PATH<TAB>DEVICE<TAB>AVAIL_KIB<TAB>MOUNT POINT` a line. Two paths with the
 * same device number share one filesystem, and so one free space.
 */
export function freeSpaceCommand(paths: readonly string[]): Command {
  return $`for p in ${paths}; do q=$p; while [ ! -e "$q" ]; do q=$(dirname "$q"); done; printf '%s\t%s\t' "$p" "$(stat -c %d "$q")"; df -Pk -- "$q" | awk 'NR==2{print $4 "\t" $6}'; done`;
}

/** Sizes (KiB) of the source's Dokku paths, one `KIB<TAB>PATH` line each (the stage holds the same). */
export const SOURCE_SIZES = $`du -sk ${ARCHIVE_PATHS.map((p) => `/${p}`)} 2>/dev/null || true`;

const task = defineTask({
  name: 'check-target',
  summary: 'refuse a target holding Dokku data unless --force (then archive it first)',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      scratch: {
        type: 'boolean',
        default: false,
        description:
          'The host is a scratch host (a drill): existing data is replaced without --force and without a safety archive.',
      },
    },
  },
  actions: {
    'existing-data': [],
    'source-size': [],
    'own-size': [],
    'free-space': [],
    ...ARCHIVE_ACTIONS,
  },
  plan({ host, params, options, inventory, roles }) {
    const h = host!;
    // The source's size is read here, not taken from the inventory step: that runs later.
    const source = roles.source;
    const sourceSize: PlannedAction[] =
      source && source.name !== h.name
        ? [
            {
              kind: 'remote',
              id: 'source-size',
              host: source.name,
              command: SOURCE_SIZES,
              why: `size of each of ${source.name}'s Dokku paths, for the free-space check per filesystem (only read)`,
            },
          ]
        : [];
    const safety = options.force === true && !params.scratch;
    const written = [...WRITTEN_PATHS, ...(safety ? [inventory.backup.dir] : [])];
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        id: 'existing-data',
        host: h.name,
        command: EXISTING_DATA,
        capture: 'existing-data',
        expect: params.scratch
          ? 'anything (a scratch host is overwritten)'
          : options.force
            ? 'anything (--force: a safety archive is taken first)'
            : 'no output: no app or service yet (else stop: use --force)',
      },
      ...sourceSize,
      ...(safety
        ? [
            {
              kind: 'remote',
              id: 'own-size',
              host: h.name,
              command: DATA_SIZE,
              why: `size of ${h.name}'s own Dokku data: its safety archive goes to ${inventory.backup.dir}`,
            } satisfies PlannedAction,
          ]
        : []),
      {
        kind: 'remote',
        id: 'free-space',
        host: h.name,
        command: freeSpaceCommand(written),
        why: "free space of each filesystem the run writes to: the stage in /home/dokku and /var/lib/dokku, the exports in ferry's folder",
        expect:
          sourceSize.length > 0
            ? `on each filesystem, free space above what the run writes there (${source!.name}'s paths, 5% more)`
            : 'free space (reported)',
      },
    ];
    if (safety) {
      actions.push(
        ...archiveActions(
          inventory,
          h,
          runDir(inventory, `${h.name}-pre-ferry`, options.runId),
          'zstd',
        ).map((a) => ({ ...a, why: `safety archive before --force: ${a.why ?? ''}` })),
      );
    }
    return actions;
  },
});

/** What {@link EXISTING_DATA} found on a host. */
export interface ExistingData {
  apps: string[];
  /** `<plugin>/<name>`. */
  services: string[];
}

/** Parses the `app X` / `service P/N` lines of {@link EXISTING_DATA}. */
export function parseExistingData(stdout: string): ExistingData {
  const apps: string[] = [];
  const services: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(app|service) (.+)$/.exec(line.trim());
    if (m?.[1] === 'app') apps.push(m[2]!);
    else if (m) services.push(m[2]!);
  }
  return { apps: apps.sort(), services: services.sort() };
}

/** The free space of one written path's filesystem, from {@link freeSpaceCommand}. */
export interface PathSpace {
  path: string;
  /** Its filesystem's device number: paths that share one share its free space. */
  device: string;
  /** Bytes available (df's Available: outside the filesystem's root reserve). */
  free: number;
  mount: string;
}

/** Parses {@link freeSpaceCommand}'s lines. */
export function parseFreeSpace(stdout: string): PathSpace[] {
  const out: PathSpace[] = [];
  for (const line of stdout.split('\n')) {
    const [path, device, avail, ...mount] = line.split('\t');
    const kib = Number(avail);
    if (path && device && avail !== undefined && avail !== '' && Number.isFinite(kib)) {
      out.push({ path, device, free: kib * 1024, mount: mount.join('\t') });
    }
  }
  return out;
}

/** Parses {@link SOURCE_SIZES}: bytes per absolute path. */
export function parseSizes(stdout: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const m = /^(\d+)\t(\/.*)$/.exec(line);
    if (m) out.set(m[2]!, Number(m[1]) * 1024);
  }
  return out;
}

/** What the run writes on one path of the target, in bytes, and why. */
export interface Need {
  path: string;
  bytes: number;
  what: string;
}

/**
 * What a transfer (and a safety archive) writes where, from the source's
 * sizes: /home/dokku's stage as big as the source's /home/dokku; /var/lib/dokku's
 * stage as its config, data, services and plugins; ferry's folder the
 * datastore exports, counted as big as the services' data (a dump is seldom
 * larger); backup.dir the target's own data (its safety archive, compressed, is smaller).
 */
export function needsOf(
  sizes: ReadonlyMap<string, number>,
  opts: { safety?: { dir: string; bytes: number } } = {},
): Need[] {
  const at = (p: string) => sizes.get(p) ?? 0;
  const lib = ['config', 'data', 'services', 'plugins'].map((p) => `/var/lib/dokku/${p}`);
  const needs: Need[] = [
    { path: '/home/dokku', bytes: at('/home/dokku'), what: 'the stage of /home/dokku' },
    {
      path: '/var/lib/dokku',
      bytes: lib.reduce((n, p) => n + at(p), 0),
      what: 'the stage of /var/lib/dokku/{config,data,services,plugins}',
    },
    { path: FERRY_ROOT, bytes: at('/var/lib/dokku/services'), what: 'the datastore exports' },
  ];
  if (opts.safety) {
    needs.push({ path: opts.safety.dir, bytes: opts.safety.bytes, what: 'the safety archive' });
  }
  return needs;
}

/** One filesystem too small for what the run writes on it. */
export interface Shortfall {
  mount: string;
  paths: string[];
  free: number;
  need: number;
  what: string[];
}

/**
 * The filesystems whose free space is below what the run writes on them
 * (the needs of paths sharing a filesystem add up), with a 5% margin and
 * 16 MiB for what the sizes do not count (directories, the tar's slack).
 */
export function shortfalls(space: readonly PathSpace[], needs: readonly Need[]): Shortfall[] {
  const byDevice = new Map<string, { s: PathSpace; needs: Need[] }>();
  for (const n of needs) {
    const s = space.find((x) => x.path === n.path);
    if (!s || n.bytes <= 0) continue;
    const entry = byDevice.get(s.device) ?? { s, needs: [] };
    entry.needs.push(n);
    byDevice.set(s.device, entry);
  }
  const out: Shortfall[] = [];
  for (const { s, needs: ns } of byDevice.values()) {
    const sum = ns.reduce((n, x) => n + x.bytes, 0);
    const need = Math.ceil(sum * 1.05) + 16 * 1024 * 1024;
    if (s.free < need) {
      out.push({
        mount: s.mount,
        paths: ns.map((x) => x.path),
        free: s.free,
        need,
        what: ns.map((x) => `${x.what} ${formatBytes(x.bytes)}`),
      });
    }
  }
  return out;
}

async function run(rt: RuntimeOf<typeof task>) {
  const h = rt.ctx.host!;
  const { options, params, inventory } = rt.ctx;
  const existing = parseExistingData((await rt.exec('existing-data')).stdout);
  const holds = existing.apps.length + existing.services.length > 0;
  const what = [
    existing.apps.length > 0 ? `apps ${existing.apps.join(', ')}` : '',
    existing.services.length > 0 ? `services ${existing.services.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  if (holds && !params.scratch && !options.force) {
    rt.task.hostState(h.name, 'unchanged');
    throw new StopError(`${h.name} already holds Dokku data (${what}); refusing to overwrite it`, {
      hint: `Pick a host without apps or services, or run again with --force: a safety archive of ${h.name} is taken first (in ${inventory.backup.dir}), then its data is replaced.`,
    });
  }
  if (holds) rt.task.log(`${h.name} holds ${what}`);

  const source = rt.has('source-size') ? rt.ctx.roles.source?.name : undefined;
  const sizes =
    source === undefined ? undefined : parseSizes((await rt.exec('source-size')).stdout);
  let safety: { dir: string; bytes: number } | undefined;
  if (holds && rt.has('own-size')) {
    const kib = Number(/^(\d+)/.exec((await rt.exec('own-size')).stdout)?.[1]);
    if (Number.isFinite(kib)) safety = { dir: inventory.backup.dir, bytes: kib * 1024 };
  }
  const space = parseFreeSpace((await rt.exec('free-space')).stdout);
  const mounts = [...new Map(space.map((x) => [x.device, x])).values()];
  rt.task.log(
    `free on ${h.name}: ${mounts.map((m) => `${formatBytes(m.free)} on ${m.mount}`).join(', ')}`,
  );
  if (sizes !== undefined) {
    const short = shortfalls(space, needsOf(sizes, safety ? { safety } : {}));
    if (short.length > 0) {
      rt.task.hostState(h.name, 'unchanged');
      const lines = short.map(
        (x) =>
          `${x.mount} (${x.paths.join(', ')}) has ${formatBytes(x.free)} free; the run writes about ${formatBytes(x.need)} there: ${x.what.join(', ')} (of ${source}'s data, with a margin)`,
      );
      throw new StopError(`not enough disk space on ${h.name}:\n  - ${lines.join('\n  - ')}`, {
        hint: `Free space on ${h.name} (or grow the filesystem${short.length > 1 ? 's' : ''} named), then run again; nothing was changed.`,
      });
    }
  }

  const outputs: Record<string, string | number | string[]> = {
    apps: existing.apps,
    services: existing.services,
  };
  if (holds && options.force && !params.scratch) {
    const dir = runDir(inventory, `${h.name}-pre-ferry`, options.runId);
    const a = await writeArchive(rt, dir, 'zstd');
    rt.task.log(
      `safety archive of ${h.name}: ${a.path} (${formatBytes(a.bytes)}, sha256 ${a.sha256})`,
    );
    rt.task.hostState(h.name, `safety archive of its former Dokku data at ${a.path}`);
    outputs.safetyArchive = a.path;
    outputs.safetySha256 = a.sha256;
  } else if (holds && params.scratch) {
    rt.task.log(`${h.name} is a scratch host: its data is replaced (set aside by extract)`);
  }
  return outputs;
}

export default task.runs(run);
