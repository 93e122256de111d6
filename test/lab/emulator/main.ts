/**
 * Entry of the Dokku CLI emulator: `node main.js "$@"` from /usr/bin/dokku.
 * Mirrors the top-level `dokku` script: global flags, the ssh forced command,
 * version, root-only commands, dispatch to plugins, unknown commands.
 * The only place that sets the process exit code.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { finalizeBuildCapture, setupBuildCapture } from './deploy.js';
import {
  type Command,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  DokkuExit,
  dokkuVersion,
  ENGINE_ROOT,
  enabledPlugins,
  eprintln,
  fail,
  isQuiet,
  loadPluginModule,
  PLUGIN_PATH,
  pluginEnabled,
  println,
  versionAtLeast,
  warn,
} from './lib.js';
import { xargsSplit } from './report.js';

/** Core plugins implemented by the emulator, by command prefix → module. */
const CORE: Record<string, string> = {
  apps: './core/apps.js',
  config: './core/config.js',
  git: './core/git.js',
  'git-hook': './core/git.js',
  'git-receive-pack': './core/git.js',
  'git-upload-pack': './core/git.js',
  ps: './core/ps.js',
  storage: './core/storage.js',
  network: './core/network.js',
  builds: './core/builds.js',
  cron: './core/cron.js',
  'docker-options': './core/docker-options.js',
  domains: './core/domains.js',
  proxy: './core/proxy.js',
  caddy: './core/caddy-vhosts.js',
  nginx: './core/nginx-vhosts.js',
  'ssh-keys': './core/ssh-keys.js',
  url: './core/urls.js',
  urls: './core/urls.js',
  plugin: './core/plugin.js',
};

/** Commands that must run as root (D dokku:90-105). */
function needsRoot(cmd: string): boolean {
  if (cmd.startsWith('plugin:')) return cmd !== 'plugin:help' && cmd !== 'plugin:list';
  return [
    'ssh-keys:add',
    'ssh-keys:remove',
    'scheduler-k3s:initialize',
    'scheduler-k3s:uninstall',
  ].includes(cmd);
}

/** dokku:211-215: the message quotes every argument (`$*`), not only the command. */
function notACommand(words: string[]): never {
  warn(`\`${words.join(' ')}\` is not a dokku command.`);
  fail('See `dokku help` for a list of available commands.');
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function isExecutable(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Third-party bash plugins: `<plugin>/subcommands/<sub>`, else every enabled
 * plugin's `commands` script until one does not answer
 * DOKKU_NOT_IMPLEMENTED_EXIT (10). null when nobody implements the command.
 */
function runPluginExecutables(prefix: string, cmd: string, rest: string[]): number | null {
  const env = {
    ...process.env,
    PLUGIN_PATH,
    PLUGIN_AVAILABLE_PATH: join(PLUGIN_PATH, 'available'),
    PLUGIN_ENABLED_PATH: join(PLUGIN_PATH, 'enabled'),
    PLUGIN_CORE_AVAILABLE_PATH: join(DOKKU_LIB_ROOT, 'core-plugins', 'available'),
    DOKKU_ROOT,
    DOKKU_LIB_ROOT,
    DOKKU_NOT_IMPLEMENTED_EXIT: '10',
  };
  const sub = cmd.includes(':') ? cmd.slice(cmd.indexOf(':') + 1) : 'default';
  const subPath = join(PLUGIN_PATH, 'enabled', prefix, 'subcommands', sub);
  if (/^[a-z0-9_-]+$/.test(prefix) && /^[a-z0-9_-]+$/.test(sub) && isExecutable(subPath)) {
    return spawnSync(subPath, [cmd, ...rest], { stdio: 'inherit', env }).status ?? 1;
  }
  for (const p of enabledPlugins()) {
    const file = join(PLUGIN_PATH, 'enabled', p, 'commands');
    if (!isExecutable(file)) continue;
    // core plugins' `commands` only answer "not implemented" here (install.ts)
    if (realpathOr(file).startsWith(join(DOKKU_LIB_ROOT, 'core-plugins'))) continue;
    const code = spawnSync(file, [cmd, ...rest], { stdio: 'inherit', env }).status ?? 1;
    if (code !== 10) return code;
  }
  return null;
}

/**
 * Bare plugin commands that print the plugin's help: bash plugins' default
 * subcommand (git, plugin, storage before 0.37.5) and Go plugins whose main()
 * maps the bare name to usage() (network, ps, builds, storage). `apps` did
 * until 0.31.0 and lists apps since, like `config` shows the env; both parse
 * their flags with usage() as Usage, so `--help` prints the help.
 */
function bareIsHelp(prefix: string, cmd: string, rest: string[]): boolean {
  if (cmd !== prefix) return false;
  if (['git', 'plugin', 'network', 'ps', 'builds', 'storage'].includes(prefix)) return true;
  const asksHelp = rest.some((a) => ['-h', '-help', '--help', '--h'].includes(a));
  if (prefix === 'apps') return !versionAtLeast('0.31.0') || asksHelp;
  if (prefix === 'config') return versionAtLeast('0.31.0') && asksHelp;
  return false;
}

async function dispatch(argv: string[]): Promise<number> {
  const args = [...argv];
  // leading global flags only (D dokku:70-87)
  let appFlag: string | undefined;
  while (args.length > 0) {
    const a = args[0] ?? '';
    if (a === '--quiet') process.env.DOKKU_QUIET_OUTPUT = '1';
    else if (a === '--trace') process.env.DOKKU_TRACE = '1';
    else if (a === '--force') process.env.DOKKU_APPS_FORCE_DELETE = '1';
    else if (a === '--app') {
      args.shift();
      appFlag = args[0] ?? '';
      process.env.DOKKU_APP_NAME = appFlag;
    } else if (a.startsWith('--app=')) {
      appFlag = a.slice(6);
      process.env.DOKKU_APP_NAME = appFlag;
    } else if (a === '--rm' || a === '--rm-container' || a === '--detach' || a === '--no-restart') {
      // accepted and ignored by the emulator (run flags)
    } else break;
    args.shift();
  }

  const cmd = args[0] ?? '';
  if (needsRoot(cmd) && process.getuid?.() !== 0) fail('This command must be run as root');

  const ssh = process.env.SSH_ORIGINAL_COMMAND;
  if (ssh !== undefined && ssh !== '') {
    // D dokku:107-123: the forced command's own argv is dropped and the original
    // command re-run; `[[ $1 =~ git-* ]]` is a regex, so any $1 containing "git" matches
    delete process.env.SSH_ORIGINAL_COMMAND;
    const split = (t: string): string[] => t.split(/\s+/).filter((w) => w !== '');
    // before 0.34.0 only $1 matching config-*/docker-options* went through xargs
    // (quotes honoured); every other command was split on whitespace
    const quoted = versionAtLeast('0.34.0') ? !/git/.test(cmd) : /config|docker-option/.test(cmd);
    return dispatch(quoted ? xargsSplit(ssh) : split(ssh));
  }

  if (cmd === '' || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    // the dokku script's help opens so (dokku_log_quiet: not without a tty, `! has_tty &&
    // DOKKU_QUIET_OUTPUT=1`); the command list (each plugin's `commands help`) is left out
    if (process.stdout.isTTY && !isQuiet()) {
      println('Usage: dokku [--quiet|--trace|--force] COMMAND <app> [command-specific-options]');
      println('');
      println(
        'Primary help options, type "dokku COMMAND:help" for more details, or dokku help --all to see all commands.',
      );
    }
    return 0;
  }
  if (cmd === 'version' || cmd === '-v' || cmd === '--version') {
    const v = dokkuVersion();
    if (v === '') fail("Unable to determine dokku's version");
    println(`dokku version ${v}`);
    return 0;
  }
  if (cmd === '--lab-install') {
    const { labInstall } = await import('./install.js');
    return labInstall(args[1] ?? '');
  }
  if (cmd === '--lab-proxy') {
    const { labProxy } = await import('./proxy.js');
    return labProxy(args.slice(1));
  }

  const prefix = cmd.includes(':') ? cmd.slice(0, cmd.indexOf(':')) : cmd;
  if (prefix in CORE && !(prefix === 'builds' && !versionAtLeast('0.38.0'))) {
    const help = await import('./core/help.js');
    if (cmd === `${prefix}:help` || bareIsHelp(prefix, cmd, args.slice(1))) {
      if (help.printPluginHelp(prefix)) return 0;
    }
  }
  let commands: Record<string, Command> | null = null;
  let core = false;
  // builds:* is new in 0.38.0, cron:set in 0.34.0
  const tooOld =
    (prefix === 'builds' && !versionAtLeast('0.38.0')) ||
    (prefix === 'cron' && !versionAtLeast('0.34.0'));
  const coreModule = tooOld ? undefined : CORE[prefix];
  if (coreModule !== undefined) {
    core = true;
    const mod = (await import(coreModule)) as { commands: Record<string, Command> };
    commands = mod.commands;
  } else if (/^[a-z0-9_-]+$/.test(prefix) && pluginEnabled(prefix)) {
    commands = (await loadPluginModule(prefix))?.commands ?? null;
  }
  const fn = commands?.[cmd];
  if (fn === undefined) {
    if (!core) {
      const code = runPluginExecutables(prefix, cmd, args.slice(1));
      if (code !== null) return code;
    }
    notACommand(args);
  }

  let rest = args.slice(1);
  if (core && appFlag !== undefined && appFlag !== '') rest = [appFlag, ...rest];

  // dokku:191-193: build capture before the subcommand runs, keyed on the literal $2
  if (cmd === 'git-hook' || cmd === 'ps:rebuild' || cmd === 'ps:restart') {
    const source = cmd === 'git-hook' ? 'git-hook' : cmd;
    setupBuildCapture(args[1] ?? '', source);
  }
  let code = 0;
  try {
    code = (await fn(rest)) ?? 0;
  } catch (e) {
    if (e instanceof DokkuExit) code = e.code;
    else {
      finalizeBuildCapture(1);
      throw e;
    }
  }
  finalizeBuildCapture(code);
  return code;
}

async function main(): Promise<void> {
  // a closed pipe (`dokku … | head`) ends the command quietly, as bash's SIGPIPE would
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(141);
      throw e;
    });
  }
  if (process.getuid?.() === 0 && process.env.GIT_CONFIG_GLOBAL === undefined) {
    // Dokku re-executes itself as the dokku user; the emulator stays root and chowns
    // instead, so git (and the upload-pack of a local clone) must accept dokku-owned repos
    const cfg = join(ENGINE_ROOT, 'tmp', '.gitconfig-root');
    try {
      if (!existsSync(cfg)) {
        mkdirSync(dirname(cfg), { recursive: true });
        writeFileSync(cfg, '[safe]\n\tdirectory = *\n');
      }
      process.env.GIT_CONFIG_GLOBAL = cfg;
    } catch {
      // outside a lab host; git will complain on its own
    }
  }
  let code: number;
  try {
    code = await dispatch(process.argv.slice(2));
  } catch (e) {
    if (e instanceof DokkuExit) code = e.code;
    else {
      eprintln(` !     ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      code = 1;
    }
  }
  process.exitCode = code;
}

await main();
