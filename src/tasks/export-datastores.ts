/**
 * Exports each datastore service with its plugin's own export command: a
 * copy of the service folder taken while it runs "may contain partially
 * written data" (seed, Datastores); the export is the consistent copy,
 * used when a copied service does not start.
 */
import { FerryError, RemoteError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { type Arg, P, rootOnlyDirs, runDir } from './common.js';
import { defineTask, type RuntimeOf } from './types.js';

/** Exports one service to `<dir>/<plugin>-<service>.dump`, 0600. */
export function exportCommand(dir: Arg, plugin: Arg, service: Arg): Command {
  return $`umask 077 && dokku ${plugin}:export ${service} > ${dir}/${plugin}-${service}.dump`;
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
  params: { type: 'object', additionalProperties: false, properties: {} },
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
  const services = rt.manifest().services;
  await rt.exec('exports-dir');
  for (const s of services) {
    rt.task.log(`exporting ${s.plugin} ${s.name}`);
    try {
      await rt.exec('export', { plugin: s.plugin, service: s.name });
    } catch (e) {
      rt.task.hostState(host.name, `unchanged but for ${dir} (partial exports)`);
      throw new FerryError(
        `${s.plugin}:export ${s.name} failed on ${host.name}${e instanceof RemoteError ? `: ${e.message}` : ''}`,
        {
          hint: `A datastore is exported while it runs. Check it with \`dokku ${s.plugin}:info ${s.name}\` on ${host.name} (start it with \`dokku ${s.plugin}:start ${s.name}\`), then run again with --resume.`,
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
  return { dir, exports: exports.map((e) => ({ ...e })) };
}

export default task.runs(run);
