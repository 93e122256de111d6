/**
 * Exports each datastore service with its plugin's own export command: a
 * copy of the service folder taken while it runs "may contain partially
 * written data" (seed, Datastores); the export is the consistent copy,
 * used when a copied service does not start.
 */
import { canRun } from '../dokku/plugins.js';
import { FerryError, RemoteError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { type Arg, P, rootOnlyDirs, runDir } from './common.js';
import type { ManifestDatastore, ManifestService } from './manifest.js';
import { defineTask, type Json, type RuntimeOf } from './types.js';

/**
 * Why a service is not exported, or undefined when it is: its plugin has no
 * export (its files are the only copy), or it is stopped on the source (an
 * export needs it running; stopped, its files are consistent as they are).
 */
export function notExported(
  service: ManifestService,
  caps: ManifestDatastore | undefined,
): string | undefined {
  if (!canRun(caps, 'export')) return `dokku-${service.plugin} does not implement export`;
  // `unknown`: an older plugin without `info --status`; the export says whether it runs.
  if (service.status !== undefined && !['running', 'unknown'].includes(service.status)) {
    return `it is ${service.status}: its files are copied as they are`;
  }
  return undefined;
}

/** Exports one service to `<dir>/<plugin>-<service>.dump`, 0600, renamed into place only when whole. */
export function exportCommand(dir: Arg, plugin: Arg, service: Arg): Command {
  const file = $`${dir}/${plugin}-${service}.dump`;
  return $`umask 077 && dokku ${plugin}:export ${service} > ${file}.part && mv -f ${file}.part ${file}`;
}

/**
 * Checksums of every export, in `sha256sum -c` format, written 0600 and
 * printed (the runner reports each export's sum and size).
 */
export function exportSumsCommand(dir: Arg): Command {
  return $`cd ${dir} && find . -maxdepth 1 -name '*.dump' -printf '%P\\0' | sort -z | xargs -0r sha256sum -- > SHA256SUMS && chmod 0600 SHA256SUMS && cat SHA256SUMS && find . -maxdepth 1 -name '*.dump' -printf 'size %s %P\\n'`;
}

const task = defineTask({
  name: 'export-datastores',
  summary: 'dokku PLUGIN:export each service into the run folder, with checksums',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      timeout: {
        type: 'integer',
        minimum: 10,
        maximum: 86400,
        default: 3600,
        description:
          'Seconds one export may take; a service that hangs longer stops the run, named.',
      },
    },
  },
  actions: { 'exports-dir': [], export: ['plugin', 'service'], 'export-sums': [] },
  plan({ host, inventory, options }) {
    const dir = `${runDir(inventory, host!, options.runId)}/exports`;
    return [
      {
        kind: 'remote',
        id: 'exports-dir',
        host: host!.name,
        command: rootOnlyDirs(dir),
        changes: true,
      },
      {
        kind: 'remote',
        id: 'export',
        host: host!.name,
        command: exportCommand(dir, P.plugin, P.service),
        forEach: 'service',
        where:
          'running services whose plugin implements export (a stopped one is copied as it is; dokku-memcached has no export)',
        why: 'a consistent copy of each service, beside the live files',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'export-sums',
        host: host!.name,
        command: exportSumsCommand(dir),
        changes: true,
      },
    ];
  },
});

/** One export written by the step. */
export interface ExportRecord {
  plugin: string;
  service: string;
  /** File name inside `<run folder>/exports/`. */
  file: string;
  bytes: number;
  sha256: string;
}

/** Reads the output of {@link exportSumsCommand}: `<sha>  <file>` lines, then `size <n> <file>`. */
export function parseExportSums(stdout: string): Map<string, { sha256: string; bytes: number }> {
  const out = new Map<string, { sha256: string; bytes: number }>();
  const sizes = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const sum = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (sum) out.set(sum[2]!, { sha256: sum[1]!, bytes: 0 });
    const size = /^size (\d+) (.+)$/.exec(line);
    if (size) sizes.set(size[2]!, Number(size[1]));
  }
  for (const [file, bytes] of sizes) {
    const e = out.get(file);
    if (e) e.bytes = bytes;
  }
  return out;
}

async function run(rt: RuntimeOf<typeof task>) {
  const host = rt.ctx.host!;
  const dir = `${runDir(rt.ctx.inventory, host, rt.ctx.options.runId)}/exports`;
  const manifest = rt.manifest();
  const timeout = rt.ctx.params.timeout;
  await rt.exec('exports-dir');
  const services: ManifestService[] = [];
  const skipped: Json[] = [];
  for (const s of manifest.services) {
    const why = notExported(s, manifest.datastores?.[s.plugin]);
    if (why) {
      rt.task.log(`${s.plugin} ${s.name}: not exported (${why})`);
      skipped.push({ plugin: s.plugin, service: s.name, why });
      continue;
    }
    services.push(s);
    rt.task.log(`exporting ${s.plugin} ${s.name}`);
    try {
      await rt.exec('export', { plugin: s.plugin, service: s.name }, { timeoutMs: timeout * 1000 });
    } catch (e) {
      rt.task.hostState(host.name, `unchanged but for ${dir} (partial exports)`);
      const hung = e instanceof RemoteError && e.code === null && /timeout/.test(e.signal ?? '');
      throw new FerryError(
        hung
          ? `${s.plugin}:export ${s.name} on ${host.name} did not finish in ${timeout} s: the service hangs`
          : `${s.plugin}:export ${s.name} failed on ${host.name}${e instanceof RemoteError ? `: ${e.message.replace(`on ${e.host}: `, '')}` : ''}`,
        {
          hint: hung
            ? `Look at \`dokku ${s.plugin}:logs ${s.name}\` on ${host.name}; a large service may need a longer limit (the export-datastores step's timeout param), then run again with --resume.`
            : `A datastore is exported while it runs. Check it with \`dokku ${s.plugin}:info ${s.name}\` on ${host.name} (start it with \`dokku ${s.plugin}:start ${s.name}\`), then run again with --resume.`,
          cause: e,
        },
      );
    }
  }
  const sums = parseExportSums((await rt.exec('export-sums')).stdout);
  const exports: ExportRecord[] = services.map((s) => {
    const file = `${s.plugin}-${s.name}.dump`;
    const got = sums.get(file);
    if (!got) throw new FerryError(`${dir}/${file} is missing after its export on ${host.name}`);
    return { plugin: s.plugin, service: s.name, file, ...got };
  });
  const total = exports.reduce((n, e) => n + e.bytes, 0);
  rt.task.log(`${exports.length} exports, ${total} bytes, checksums in ${dir}/SHA256SUMS`);
  rt.task.hostState(host.name, `unchanged but for ${dir}`);
  return { dir, exports: exports.map((e) => ({ ...e })), notExported: skipped };
}

export default task.runs(run);
