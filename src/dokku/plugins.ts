/**
 * `plugin:list [--format json]` (reference §7). The stdout form is plugn's
 * `printf "  %-20s %-5s %-10s %s\n"`; long names or versions push the columns
 * right with a single space, so fields are split on whitespace, not by column.
 */
import {
  type CommandOutput,
  DokkuOutputError,
  expectSuccess,
  isHeader,
  isWarning,
  jsonObjects,
  lines,
  str,
} from './output.js';

/** One installed plugin. */
export interface PluginInfo {
  name: string;
  version: string;
  enabled: boolean;
  /** Ships with Dokku. In stdout form derived from the description `dokku core … plugin`. */
  core: boolean;
  description: string;
  /** Git-installed third-party plugins only (JSON form, 0.38.22+). */
  sourceUrl?: string;
  committish?: string;
  branch?: string;
}

const CORE_DESCRIPTION = /^dokku core\b.*\bplugin$/;

/** True when a `plugin:list` description names a core plugin. */
export function isCoreDescription(description: string): boolean {
  return CORE_DESCRIPTION.test(description.trim());
}

/** Parses `plugin:list` stdout (any plugn version since the header was dropped; a stale `plugn: dev` header is skipped too). */
export function parsePluginList(out: CommandOutput): PluginInfo[] {
  expectSuccess('plugin:list', out);
  const result: PluginInfo[] = [];
  for (const line of lines(out.stdout)) {
    if (line.trim() === '' || isHeader(line) || isWarning(line)) continue;
    if (/^plugn: /.test(line.trim())) continue;
    const m = /^\s*(\S+)\s+(\S+)\s+(enabled|disabled)(?:\s+(.*))?$/.exec(line);
    if (!m) {
      throw new DokkuOutputError('plugin:list', `unexpected line ${JSON.stringify(line)}`, 0);
    }
    const description = (m[4] ?? '').trimEnd();
    result.push({
      name: m[1]!,
      version: m[2]!,
      enabled: m[3] === 'enabled',
      core: isCoreDescription(description),
      description,
    });
  }
  return result;
}

/** Parses `plugin:list --format json` (0.38.22+). */
export function parsePluginListJson(out: CommandOutput): PluginInfo[] {
  return jsonObjects('plugin:list', out).map((o) => {
    const info: PluginInfo = {
      name: str(o, 'name'),
      version: str(o, 'version'),
      enabled: o.enabled === true,
      core: o.core === true,
      description: str(o, 'description'),
    };
    if (info.name === '') throw new DokkuOutputError('plugin:list', 'a plugin without a name', 0);
    if (str(o, 'source_url')) info.sourceUrl = str(o, 'source_url');
    if (str(o, 'committish')) info.committish = str(o, 'committish');
    if (str(o, 'branch')) info.branch = str(o, 'branch');
    return info;
  });
}

/**
 * What a datastore plugin can do, read from its own files: every subcommand
 * it ships (`subcommands/<name>`, the layout of every official service plugin
 * since they moved to one script per subcommand) less those its `config`
 * lists in `PLUGIN_UNIMPLEMENTED_SUBCOMMANDS` (they answer "Not yet
 * implemented", exit 1: dokku-memcached has no export or import).
 */
export interface PluginCapabilities {
  /** Subcommands that do their job. Empty when the plugin has no `subcommands/` folder. */
  implemented: string[];
  unimplemented: string[];
  /** False when the plugin's files could not say (an old layout): then everything is tried. */
  known: boolean;
}

/**
 * Parses the answer of a probe printing `sub NAME` for each file in the
 * plugin's `subcommands/` and `unimplemented "A" "B"` for the config line.
 */
export function parsePluginCapabilities(stdout: string): PluginCapabilities {
  const subs: string[] = [];
  const unimplemented: string[] = [];
  for (const line of stdout.split('\n')) {
    const sub = /^sub ([a-z0-9][a-z0-9:_-]*)$/.exec(line.trim());
    if (sub) subs.push(sub[1]!);
    const un = /^unimplemented (.*)$/.exec(line.trim());
    if (un) {
      for (const m of un[1]!.matchAll(/"([^"]*)"|'([^']*)'|([^\s"']+)/g)) {
        const v = m[1] ?? m[2] ?? m[3];
        if (v) unimplemented.push(v);
      }
    }
  }
  return {
    implemented: subs.filter((s) => !unimplemented.includes(s)).sort(),
    unimplemented: unimplemented.sort(),
    known: subs.length > 0,
  };
}

/** Whether a plugin can run `subcommand` (unknown layouts are given the benefit of the doubt). */
export function canRun(caps: PluginCapabilities | undefined, subcommand: string): boolean {
  if (!caps?.known) return !caps?.unimplemented.includes(subcommand);
  return caps.implemented.includes(subcommand);
}
