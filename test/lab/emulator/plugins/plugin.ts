/**
 * The core `plugin` plugin of the emulator (reference §7): plugin:list,
 * plugin:installed, plugin:install, plugin:install-dependencies,
 * plugin:trigger, plugin:enable, plugin:disable, plugin:uninstall.
 *
 * plugn's layout is kept: /var/lib/dokku/plugins/available/<name>/ (a git
 * clone for plugins installed from a URL, with plugin.toml and executable
 * trigger files), enabled by a symlink in /var/lib/dokku/plugins/enabled/.
 * The lab has no internet: a plugin URL is cloned from the lab registry,
 * `<registry>/plugins/<host>/<path>.git` (the seed publishes the fixtures
 * there), and the clone's origin is then set back to the URL the user gave,
 * as a real clone would have it.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  type Command,
  chownDokku,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  DokkuExit,
  eprintln,
  fail,
  info1Quiet,
  labConfig,
  loadPluginModule,
  PLUGIN_PATH,
  println,
  type Trigger,
  warn,
} from '../lib.js';

const AVAILABLE = join(PLUGIN_PATH, 'available');
const ENABLED = join(PLUGIN_PATH, 'enabled');
const CORE_PATH = join(DOKKU_LIB_ROOT, 'core-plugins');

/** One entry of `plugin:list --format json` (D plugins/plugin/plugin.go PluginInfo). */
export interface PluginInfo {
  name: string;
  version: string;
  enabled: boolean;
  core: boolean;
  description: string;
  source_url: string;
  committish: string;
  branch: string;
}

function byteSort(list: string[]): string[] {
  return list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** plugn's `toml-get SECTION KEY` for the simple plugin.toml files plugins ship. */
function tomlGet(text: string, section: string, key: string): string {
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec !== null) {
      current = sec[1] ?? '';
      continue;
    }
    if (current !== section) continue;
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (kv === null || kv[1] !== key) continue;
    const v = (kv[2] ?? '').trim();
    const q = /^"((?:[^"\\]|\\.)*)"/.exec(v);
    return q !== null ? (q[1] ?? '').replace(/\\(.)/g, '$1') : v;
  }
  return '';
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** `plugn list` lines: every entry of available/ in glob order. */
function plugnList(): { name: string; version: string; enabled: boolean; description: string }[] {
  let names: string[];
  try {
    names = byteSort(readdirSync(AVAILABLE));
  } catch {
    return [];
  }
  return names.map((name) => {
    const toml = (() => {
      try {
        return readFileSync(join(AVAILABLE, name, 'plugin.toml'), 'utf8');
      } catch {
        return '';
      }
    })();
    return {
      name,
      version: tomlGet(toml, 'plugin', 'version'),
      enabled: exists(join(ENABLED, name)),
      description: tomlGet(toml, 'plugin', 'description'),
    };
  });
}

function printf(name: string, version: string, status: string, desc: string): string {
  return `  ${name.padEnd(20)} ${version.padEnd(5)} ${status.padEnd(10)} ${desc}`;
}

function git(dir: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', `safe.directory=${dir}`, ...args], { cwd: dir });
  if (r.status !== 0) return '';
  return (r.stdout?.toString() ?? '').trim();
}

function pluginInfos(): PluginInfo[] {
  return plugnList().map((p) => {
    const info: PluginInfo = {
      name: p.name,
      version: p.version,
      enabled: p.enabled,
      core: isSymlink(join(CORE_PATH, 'enabled', p.name)),
      // parsePlugnList joins the description's fields with single spaces
      description: p.description
        .split(/\s+/)
        .filter((w) => w !== '')
        .join(' '),
      source_url: '',
      committish: '',
      branch: '',
    };
    const dir = join(AVAILABLE, p.name);
    if (exists(join(dir, '.git'))) {
      info.source_url = git(dir, 'remote', 'get-url', 'origin');
      info.committish = git(dir, 'rev-parse', 'HEAD');
      const branch = git(dir, 'rev-parse', '--abbrev-ref', 'HEAD');
      if (branch !== 'HEAD') info.branch = branch;
    }
    return info;
  });
}

// ---------------------------------------------------------------- plugn trigger

/**
 * `plugn trigger HOOK ARGS` over one plugin path: every enabled plugin in glob
 * order, its executable `<plugin>/<hook>` if there is one, otherwise the
 * emulator's in-process handler. Stops at the first failure (set -e).
 */
async function plugnTrigger(pluginPath: string, hook: string, args: string[]): Promise<number> {
  let names: string[];
  try {
    names = byteSort(readdirSync(join(pluginPath, 'enabled')));
  } catch {
    return 0;
  }
  for (const name of names) {
    const file = join(pluginPath, 'enabled', name, hook);
    let st: ReturnType<typeof statSync> | null = null;
    try {
      st = statSync(file);
    } catch {
      st = null;
    }
    if (st?.isFile()) {
      if ((st.mode & 0o111) === 0) {
        eprintln(`Trigger '${hook}' is not executable, skipping plugin (${name})`);
        continue;
      }
      const r = spawnSync(file, args, {
        stdio: 'inherit',
        env: {
          ...process.env,
          PLUGIN_PATH: pluginPath,
          PLUGIN_AVAILABLE_PATH: join(PLUGIN_PATH, 'available'),
          PLUGIN_ENABLED_PATH: join(PLUGIN_PATH, 'enabled'),
          PLUGIN_CORE_PATH: CORE_PATH,
          PLUGIN_CORE_AVAILABLE_PATH: join(CORE_PATH, 'available'),
          DOKKU_ROOT,
          DOKKU_LIB_ROOT,
        },
      });
      const code = r.status ?? 1;
      if (code !== 0) return code;
      continue;
    }
    const mod = await loadPluginModule(name);
    const handler = mod?.triggers?.[hook];
    if (handler === undefined) continue;
    try {
      const code = (await handler(args)) ?? 0;
      if (code !== 0) return code;
    } catch (e) {
      if (!(e instanceof DokkuExit)) throw e;
      if (e.code !== 0) return e.code;
    }
  }
  return 0;
}

function primeCompletion(): void {
  info1Quiet('Priming bash-completion cache');
}

// ---------------------------------------------------------------- install from a URL

/** plugin_name: last path part, minus `.git` and a leading `dokku-`. */
function pluginNameOf(url: string): string {
  const last = url.split('/').pop() ?? '';
  return last.replace(/\.git$/, '').replace(/^dokku-/, '');
}

/** Where the lab keeps the repository a URL points at (the lab has no internet). */
export function labPluginSource(url: string): string {
  if (url.startsWith('file://')) return url.slice('file://'.length);
  const m =
    /^(?:https?|git|ssh):\/\/(?:[^@/]+@)?([^/:]+)(?::\d+)?\/(.+)$/.exec(url) ??
    /^(?:[^@/]+@)?([^:/]+):(.+)$/.exec(url);
  if (m === null) return url;
  const path = (m[2] ?? '').replace(/\/+$/, '');
  return join(
    labConfig().registry,
    'plugins',
    m[1] ?? '',
    path.endsWith('.git') ? path : `${path}.git`,
  );
}

/** plugn install URL NAME: a git clone into available/NAME. */
function plugnInstall(url: string, name: string): number {
  const dest = join(AVAILABLE, name);
  mkdirSync(AVAILABLE, { recursive: true });
  if (existsSync(dest)) {
    if (!existsSync(join(dest, '.git'))) {
      eprintln(`${name} is already installed, but it does not seem to be a git repository`);
      return 1;
    }
    if (git(dest, 'config', 'remote.origin.url') !== url) {
      eprintln(
        `Plugin '${name}' is already installed, but with a different url. To install anyway, uninstall it first.`,
      );
      return 1;
    }
    eprintln(`Plugin '${name}' is already installed.`);
    return 0;
  }
  const src = labPluginSource(url);
  if (!existsSync(src)) {
    // what git says without a route to the plugin's host
    eprintln(`Cloning into '${name}'...`);
    const host = /^[a-z]+:\/\/(?:[^@/]+@)?([^/:]+)/.exec(url)?.[1] ?? url;
    eprintln(`fatal: unable to access '${url}/': Could not resolve host: ${host}`);
    return 128;
  }
  const r = spawnSync('git', ['clone', src, name], {
    cwd: AVAILABLE,
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const said = (r.stderr?.toString() ?? '').split(src).join(url);
  if (said !== '') process.stderr.write(said);
  if (r.status !== 0) return r.status ?? 1;
  spawnSync('git', ['remote', 'set-url', 'origin', url], { cwd: dest });
  return 0;
}

function enablePlugin(name: string): void {
  if (exists(join(ENABLED, name))) fail('Plugin already enabled');
  if (!exists(join(AVAILABLE, name))) fail('Plugin does not exist');
  mkdirSync(ENABLED, { recursive: true });
  try {
    unlinkSync(join(ENABLED, name));
  } catch {
    // ln -fs replaces a dangling link, and there was none
  }
  symlinkSync(join(AVAILABLE, name), join(ENABLED, name));
  info1Quiet(`Plugin ${name} enabled`);
}

function disablePlugin(name: string): void {
  if (existsSync(join(CORE_PATH, 'available', name))) fail('Cannot disable a core plugin');
  if (!exists(join(ENABLED, name))) fail('Plugin already disabled');
  if (!exists(join(AVAILABLE, name))) fail('Plugin does not exist');
  unlinkSync(join(ENABLED, name));
  info1Quiet(`Plugin ${name} disabled`);
}

async function downloadAndEnable(url: string, rest: string[]): Promise<number> {
  let customName: string | undefined;
  let committish: string | undefined;
  let skipInstall = false;
  // getopts ":-:" stops at the first non-option word
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] ?? '';
    if (!a.startsWith('-')) break;
    if (a === '--name') customName = rest[++i];
    else if (a === '--committish') committish = rest[++i];
    else if (a === '--skip-install-trigger') skipInstall = true;
  }
  const name = customName ?? pluginNameOf(url);
  info1Quiet(`Cloning plugin repo ${url} to ${join(AVAILABLE, name)}`);
  const code = plugnInstall(url, name);
  if (code !== 0) return code;
  enablePlugin(name);
  if (committish !== undefined) {
    const dir = join(AVAILABLE, name);
    spawnSync('git', ['checkout', committish], { cwd: dir, stdio: 'ignore' });
    println(`Plugin (${name}) updated and pinned to ${committish}`);
  }
  if (!skipInstall) return plugnTrigger(PLUGIN_PATH, 'install', []);
  return 0;
}

// ---------------------------------------------------------------- commands

const list: Command = async (args) => {
  let format = 'stdout';
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format') {
      format = i + 1 < args.length ? (args[++i] ?? '') : '';
    } else if (a.startsWith('--format=')) format = a.slice('--format='.length);
  }
  if (format !== 'stdout' && format !== 'json') {
    fail('Invalid output format specified, supported formats: json, stdout');
  }
  if (format === 'json') {
    println(JSON.stringify(pluginInfos()));
    return 0;
  }
  for (const p of plugnList()) {
    println(printf(p.name, p.version, p.enabled ? 'enabled' : 'disabled', p.description));
  }
};

const installed: Command = async (args) => {
  const name = args[0] ?? '';
  return plugnList().some((p) => p.name === name) && name !== '' ? 0 : 1;
};

const install: Command = async (args) => {
  const flag = args[0] ?? '';
  let code = 0;
  if (flag === '--core') {
    if (args.length > 1)
      info1Quiet('Cannot install additional core plugins, running core plugin install trigger');
    code = await plugnTrigger(CORE_PATH, 'install', []);
  } else if (/^(https:|git|ssh:|file:)/.test(flag) || /\.(tar\.gz|tgz)$/.test(flag)) {
    code = await downloadAndEnable(flag, args.slice(1));
  } else {
    if (flag !== '') {
      warn('First argument must be --core or url to plugin');
      warn('Valid prefixes: https:, git:, ssh:, file:');
      warn('Valid suffixes: .tar.gz, .tgz');
      fail('Please retry with valid arguments');
    }
    code = await plugnTrigger(PLUGIN_PATH, 'install', []);
  }
  if (code !== 0) return code;
  primeCompletion();
};

const installDependencies: Command = async (args) => {
  const path = args[0] === '--core' ? CORE_PATH : PLUGIN_PATH;
  return plugnTrigger(path, 'dependencies', []);
};

const trigger: Command = async (args) => {
  const [hook, ...rest] = args;
  if (hook === undefined || hook === '') return 0;
  return plugnTrigger(PLUGIN_PATH, hook, rest);
};

const enable: Command = async (args) => {
  const name = args[0] ?? '';
  if (name === '') fail('Please specify a plugin to enable');
  enablePlugin(name);
  primeCompletion();
};

const disable: Command = async (args) => {
  const name = args[0] ?? '';
  if (name === '') fail('Please specify a plugin to disable');
  disablePlugin(name);
  primeCompletion();
};

const uninstall: Command = async (args) => {
  const name = args[0] ?? '';
  if (name === '') fail('Please specify a plugin to uninstall');
  if (existsSync(join(CORE_PATH, 'available', name))) fail('Cannot uninstall a core plugin');
  if (!exists(join(AVAILABLE, name))) fail(`Plugin (${name}) is not currently installed`);
  const code = await plugnTrigger(PLUGIN_PATH, 'uninstall', [name]);
  if (code !== 0) return code;
  rmSync(join(ENABLED, name), { recursive: true, force: true });
  rmSync(join(AVAILABLE, name), { recursive: true, force: true });
  info1Quiet(`Plugin ${name} uninstalled`);
  primeCompletion();
};

/** The subcommands main.ts dispatches to (root checks happen there, §0.4). */
export const commands: Record<string, Command> = {
  plugin: list,
  'plugin:disable': disable,
  'plugin:enable': enable,
  'plugin:install': install,
  'plugin:install-dependencies': installDependencies,
  'plugin:installed': installed,
  'plugin:list': list,
  'plugin:trigger': trigger,
  'plugin:uninstall': uninstall,
};

/** fn-plugin-set-permissions: the core plugin's `install` trigger chowns every plugin to dokku. */
const installTrigger: Trigger = async () => {
  // the enabled/ folders hold only symlinks into these
  for (const dir of [join(CORE_PATH, 'available'), AVAILABLE]) {
    if (existsSync(dir)) chownDokku(dir, true);
  }
};

/** In-process triggers of the core `plugin` plugin. */
export const triggers: Record<string, Trigger> = {
  install: installTrigger,
};
