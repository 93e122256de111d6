/**
 * The core `plugin` plugin, per release: the commands of plugins/plugin.ts
 * (plugn's layout, install from the lab registry) with what differs between
 * releases layered on top (D plugins/plugin at v0.30.11, v0.34.9, v0.37.9,
 * v0.38.27):
 *
 * - `plugin:list` before 0.38.22 is `plugn list` and ignores its arguments,
 *   so `--format json` prints the text list (cmd-plugin-list, internal-functions);
 * - `plugin:update [NAME [COMMITTISH]]` (subcommands/update and plugn's update),
 *   fetching through the lab registry since the lab has no internet;
 * - `plugin` alone is the help (subcommands/default), printed by main.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Command,
  DOKKU_LIB_ROOT,
  exit,
  fail,
  info1Quiet,
  PLUGIN_PATH,
  println,
  runTrigger,
  versionAtLeast,
} from '../lib.js';
import { commands as base, triggers as baseTriggers, labPluginSource } from '../plugins/plugin.js';

const AVAILABLE = join(PLUGIN_PATH, 'available');
const ENABLED = join(PLUGIN_PATH, 'enabled');
const CORE_ENABLED = join(DOKKU_LIB_ROOT, 'core-plugins', 'enabled');

const isLink = (p: string): boolean => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

const list: Command = async (args) => {
  const baseList = base['plugin:list'];
  if (baseList === undefined) return 1;
  // before 0.38.22 the list is `plugn list`, whatever the arguments
  return baseList(versionAtLeast('0.38.22') ? args : []);
};

/** git in a plugin's clone, with its origin served from the lab registry. */
function pluginGit(dir: string, args: string[]): number {
  const origin =
    spawnSync('git', ['-C', dir, 'config', 'remote.origin.url'], { encoding: 'utf8' }).stdout ?? '';
  const url = origin.trim();
  const src = url === '' ? '' : labPluginSource(url);
  const via =
    src !== '' && src !== url && existsSync(src) ? ['-c', `url.${src}.insteadOf=${url}`] : [];
  return (
    spawnSync('git', ['-c', `safe.directory=${dir}`, ...via, '-C', dir, ...args], {
      stdio: 'ignore',
    }).status ?? 1
  );
}

/** plugn update: pull, or check out a committish and pin to it. */
function plugnUpdate(name: string, committish: string): void {
  const dir = join(AVAILABLE, name);
  if (!existsSync(dir)) {
    println(`Plugin (${name}) not installed`);
    exit(1);
  }
  if (!existsSync(join(dir, '.git'))) {
    println(`Plugin (${name}) not managed by git`);
    return;
  }
  const symbolic = spawnSync(
    'git',
    ['-c', `safe.directory=${dir}`, '-C', dir, 'symbolic-ref', 'HEAD'],
    {
      stdio: 'ignore',
    },
  );
  if (committish === '' && symbolic.status !== 0) {
    let pinned = '';
    try {
      pinned =
        spawnSync('cat', [join(dir, '.plugin_committish')], { encoding: 'utf8' }).stdout ?? '';
    } catch {
      pinned = '';
    }
    println(`Plugin pinned to ${pinned.trim()}`);
    return;
  }
  pluginGit(dir, ['fetch']);
  if (committish !== '') {
    pluginGit(dir, ['fetch', '--tags']);
    pluginGit(dir, ['checkout', committish]);
    pluginGit(dir, ['pull']);
    writeFileSync(join(dir, '.plugin_committish'), `${committish}\n`);
    println(`Plugin (${name}) updated and pinned to ${committish}`);
    return;
  }
  if (pluginGit(dir, ['pull']) !== 0) exit(1);
  println(`Plugin (${name}) updated`);
}

const update: Command = async (args) => {
  const [name = '', committish = ''] = args;
  if (name !== '') {
    if (!/^[0-9a-zA-Z_-]+$/.test(name)) fail('Invalid plugin name specified');
    if (!isLink(join(ENABLED, name))) fail('Specified plugin not enabled or installed');
    if (isLink(join(CORE_ENABLED, name))) {
      fail('Cannot trigger plugin:update against core plugin, please update Dokku instead');
    }
    plugnUpdate(name, committish);
  } else {
    let names: string[] = [];
    try {
      names = readdirSync(ENABLED).sort();
    } catch {
      names = [];
    }
    for (const p of names) {
      if (isLink(join(CORE_ENABLED, p))) continue;
      plugnUpdate(p, '');
    }
  }
  const code = await runTrigger('update');
  if (code !== 0) return code;
  info1Quiet('Priming bash-completion cache');
};

/** The subcommands main.ts dispatches to (root checks happen there, §0.4). */
export const commands: Record<string, Command> = {
  ...base,
  'plugin:list': list,
  'plugin:update': update,
};

/** The core plugin's triggers: `update` sets permissions as `install` does (plugins/plugin/update). */
export const triggers = {
  ...baseTriggers,
  update: baseTriggers.install,
};
