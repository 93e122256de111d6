/**
 * A target that already holds Dokku data (apps or services) is refused unless
 * `--force`, and then only after a safety archive of it. A scratch host (a
 * drill) is overwritten by design; its data is moved aside, not archived.
 * Also reads free space, compared with the source's size by the runner.
 */
import { StopError } from '../errors.js';
import { $ } from '../ssh/shell.js';
import { formatBytes } from '../util/format.js';
import { ARCHIVE_ACTIONS, archiveActions, writeArchive } from './archive.js';
import { runDir } from './common.js';
import { DATA_SIZE } from './inventory.js';
import { defineTask, type PlannedAction, type RuntimeOf } from './types.js';

/** Lists apps (folders in /home/dokku) and services (<plugin>/<name>) already on a host. */
export const EXISTING_DATA = $`{ find /home/dokku -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf 'app %f\\n'; find /var/lib/dokku/services -mindepth 2 -maxdepth 2 -type d -printf 'service %P\\n'; } 2>/dev/null || true`;

/** Free space (KiB) where the archive paths land and where the stage is written. */
export const FREE_SPACE = $`df -Pk /home /var/lib`;

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
              command: DATA_SIZE,
              why: `size of ${source.name}'s Dokku data, for the free-space check (only read)`,
            },
          ]
        : [];
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
      {
        kind: 'remote',
        id: 'free-space',
        host: h.name,
        command: FREE_SPACE,
        expect:
          sourceSize.length > 0
            ? `free space above ${source!.name}'s Dokku data`
            : 'free space (reported)',
      },
    ];
    if (options.force && !params.scratch) {
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

/** Parses `df -Pk` output: available bytes per mount point. */
export function parseFreeSpace(stdout: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of stdout.trim().split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const avail = Number(f[3]);
    if (f.length >= 6 && Number.isFinite(avail)) out.set(f.slice(5).join(' '), avail * 1024);
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
  let need: number | undefined;
  if (source !== undefined) {
    const kib = Number(/^(\d+)/.exec((await rt.exec('source-size')).stdout)?.[1]);
    if (Number.isFinite(kib)) need = kib * 1024;
  }
  const free = parseFreeSpace((await rt.exec('free-space')).stdout);
  const least = Math.min(...free.values());
  if (Number.isFinite(least)) {
    rt.task.log(
      `free on ${h.name}: ${formatBytes(least)}${need === undefined ? '' : `; ${source}'s Dokku data: ${formatBytes(need)}`}`,
    );
    if (need !== undefined && least < need) {
      rt.task.hostState(h.name, 'unchanged');
      throw new StopError(
        `${h.name} has ${formatBytes(least)} free under /home or /var/lib, less than the ${formatBytes(need)} of ${source}'s Dokku data`,
        { hint: `Free space on ${h.name} (or grow its disk), then run again.` },
      );
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
