/** apps:* (reference §3; D plugins/apps). */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { deployLockPath, removeAppContainers } from '../deploy.js';
import { archiveContextPath, imagePath } from '../engine.js';
import {
  appEnvPath,
  appExists,
  appNameError,
  type Command,
  chownDokku,
  commandPropertySet,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  eprintln,
  exit,
  fail,
  getProperty,
  globalEnvPath,
  info1,
  info1Quiet,
  info2Quiet,
  isQuiet,
  listApps,
  mkdirDokku,
  println,
  readEnv,
  readOr,
  reportCommand,
  runDokku,
  runTrigger,
  type Trigger,
  verifyApp,
  versionAtLeast,
  warn,
  writeEnv,
  writeFileDokku,
} from '../lib.js';
import { createGitRepo, createHook } from './git.js';

/** Print pflag's unknown-flag error and exit 2, as Go subcommands do. */
export function unknownFlag(cmd: string, flag: string): never {
  eprintln(`unknown flag: ${flag}`);
  eprintln(`Usage of ${cmd}:`);
  exit(2);
}

/** The global vhosts ($DOKKU_ROOT/VHOST lines). */
export function globalVhosts(): string[] {
  return readOr(join(DOKKU_ROOT, 'VHOST'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** apps:create and the post-create triggers, shared with git's auto-create. */
export async function createApp(app: string, quiet = false): Promise<void> {
  const root = join(DOKKU_ROOT, app);
  mkdirDokku(root);
  writeFileDokku(
    join(DOKKU_LIB_ROOT, 'config', 'apps', app, 'created-at'),
    String(Math.floor(Date.now() / 1000)),
    0o600,
  );
  // post-create triggers making data/<plugin>/<app>: apps since 0.34.0
  // (CreateAppDataDirectory), scheduler-k3s since it exists (0.33)
  const dataDirs = ['app-json', 'logs', 'ps', 'scheduler-docker-local'];
  if (versionAtLeast('0.34.0')) dataDirs.push('apps', 'scheduler-k3s');
  for (const p of dataDirs) mkdirDokku(join(DOKKU_LIB_ROOT, 'data', p, app));
  if (versionAtLeast('0.38.0')) {
    mkdirDokku(join(DOKKU_LIB_ROOT, 'config', 'config', app));
    mkdirDokku(join(DOKKU_LIB_ROOT, 'config', app));
  }
  writeFileDokku(join(DOKKU_LIB_ROOT, 'config', 'ps', app, 'scale'), 'web=1\n', 0o600);
  writeFileDokku(join(DOKKU_LIB_ROOT, 'config', 'ps', app, 'scale.old'), '', 0o600);
  for (const p of ['caddy', 'haproxy', 'nginx', 'openresty', 'traefik', 'registry']) {
    mkdirDokku(join(DOKKU_LIB_ROOT, 'config', p, app));
  }
  createGitRepo(app);
  const vhosts = globalVhosts();
  if (vhosts.length > 0) {
    if (!quiet) info1('Creating new app virtual host file...');
    writeFileDokku(join(root, 'VHOST'), vhosts.map((v) => `${app}.${v}\n`).join(''), 0o644);
  } else {
    if (!quiet) info1('Global server virtual host not set, disabling app vhost...');
    runDokku(['--quiet', 'config:set', '--no-restart', app, 'NO_VHOST=1'], { capture: true });
  }
  await runTrigger('post-create', app);
}

const create: Command = async (args) => {
  const app = args.find((a) => !a.startsWith('-')) ?? '';
  if (app === '') fail('Please specify an app to run the command on');
  const bad = appNameError(app);
  if (bad !== null) fail(bad);
  if (appExists(app)) fail('Name is already taken');
  info1Quiet(`Creating ${app}...`);
  await createApp(app);
};

const list: Command = async (args) => {
  let format = 'stdout';
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format' || a.startsWith('--format=')) {
      if (!versionAtLeast('0.38.21')) unknownFlag('apps:list', a.split('=')[0] ?? a);
      format = a === '--format' ? (args[++i] ?? '') : a.slice(9);
    } else if (a.startsWith('-')) unknownFlag('apps:list', a);
  }
  const apps = listApps();
  if (format === 'json') {
    println(JSON.stringify(apps));
    return;
  }
  info2Quiet('My Apps');
  if (apps.length === 0) {
    warn("You haven't deployed any applications yet");
    return;
  }
  for (const a of apps) println(a);
};

const exists: Command = async (args) => {
  verifyApp(args[0]);
};

/** Read one line from stdin (fmt.Scanln), or null on EOF. */
function readLine(): string | null {
  const buf = Buffer.alloc(1);
  let line = '';
  let got = false;
  for (;;) {
    let n = 0;
    try {
      n = readSync(0, buf, 0, 1, null);
    } catch {
      n = 0;
    }
    if (n === 0) return got ? line : null;
    got = true;
    const c = buf.toString('utf8');
    if (c === '\n') return line;
    line += c;
  }
}

/** common.AskForDestructiveConfirmation: type the name back, or the command ends. */
export function confirmDestructive(name: string, kind: string): void {
  warn('WARNING: Potentially Destructive Action');
  warn(`This command will destroy ${kind} ${name}.`);
  warn(`To proceed, type "${name}"`);
  process.stdout.write('> ');
  const answer = readLine();
  if (answer === null) fail('EOF');
  if (answer.trim() === '') fail('unexpected newline');
  if (answer.trim() !== name) {
    // the Go code really prints the literal word "test"
    eprintln('Confirmation did not match test. Aborted.');
    exit(1);
  }
}

const destroy: Command = async (args) => {
  const app = args.find((a) => !a.startsWith('-'));
  verifyApp(app);
  await destroyApp(app, args.includes('--force'));
};

/** Go destroyApp (plugins/apps/functions.go): asks unless forced, then the delete triggers. */
async function destroyApp(app: string, forced: boolean): Promise<void> {
  const force = forced || process.env.DOKKU_APPS_FORCE_DELETE === '1';
  if (!force) confirmDestructive(app, 'app');
  info1(`Destroying ${app} (including all add-ons)`);
  const pre = await runTrigger('pre-delete', app);
  if (pre !== 0) exit(pre);
  info1('Retiring old containers and images');
  await removeAppContainers(app);
  rmSync(join(imagePath(`dokku/${app}:latest`), '..'), { recursive: true, force: true });
  rmSync(archiveContextPath(app), { recursive: true, force: true });
  await runTrigger('post-delete', app);
  for (const base of ['data', 'config']) {
    const dir = join(DOKKU_LIB_ROOT, base);
    let plugins: string[] = [];
    try {
      plugins = readdirSync(dir);
    } catch {
      plugins = [];
    }
    for (const p of plugins) rmSync(join(dir, p, app), { recursive: true, force: true });
  }
  rmSync(join(DOKKU_LIB_ROOT, 'config', app), { recursive: true, force: true });
  rmSync(join(DOKKU_ROOT, app), { recursive: true, force: true });
}

/** Entries of a directory, or none. */
function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The core plugins' post-app-rename-setup at v0.38.27, in one place: each
 * property plugin's PropertyClone + PropertyDestroy (common/properties.go),
 * CloneAppData of app-json, apps, logs and ps (common/data.go), config's ENV
 * merge (config/triggers.go), git's copy of the app root but for cache, VHOST
 * and URLS, then a new hook (git/post-app-rename-setup), domains' VHOST copy
 * with OLD.<global vhost> rewritten to NEW.<global vhost>
 * (domains/post-app-rename-setup). Plugins outside the core (the datastores)
 * get the trigger itself.
 */
async function renameSetup(oldApp: string, newApp: string): Promise<number> {
  const config = join(DOKKU_LIB_ROOT, 'config');
  for (const plugin of entries(config)) {
    const from = join(config, plugin, oldApp);
    // config/<app>/ENV (0.38) is the app's own folder, not a plugin's properties
    if (plugin === oldApp || plugin === newApp || !isDir(from)) continue;
    const to = join(config, plugin, newApp);
    mkdirDokku(to);
    cpSync(from, to, { recursive: true, preserveTimestamps: true });
    chownDokku(to, true);
    rmSync(from, { recursive: true, force: true });
  }
  for (const plugin of ['app-json', 'apps', 'logs', 'ps']) {
    const from = join(DOKKU_LIB_ROOT, 'data', plugin, oldApp);
    const to = join(DOKKU_LIB_ROOT, 'data', plugin, newApp);
    if (isDir(from)) {
      cpSync(from, to, { recursive: true, preserveTimestamps: true });
      chownDokku(to, true);
    } else mkdirDokku(to);
  }
  // builds/triggers.go: the builds folder is renamed, not copied
  const builds = join(DOKKU_LIB_ROOT, 'data', 'builds');
  if (isDir(join(builds, oldApp))) renameSync(join(builds, oldApp), join(builds, newApp));
  const env = readEnv(appEnvPath(newApp));
  for (const [k, v] of readEnv(appEnvPath(oldApp))) env.set(k, v);
  writeEnv(appEnvPath(newApp), env);

  const oldRoot = join(DOKKU_ROOT, oldApp);
  const newRoot = join(DOKKU_ROOT, newApp);
  for (const name of entries(oldRoot)) {
    if (['.cache', 'cache', 'VHOST', 'URLS'].includes(name) || name.startsWith('.')) continue;
    cpSync(join(oldRoot, name), join(newRoot, name), {
      recursive: true,
      preserveTimestamps: true,
      filter: (src) => !['.cache', 'cache', 'VHOST', 'URLS'].includes(src.split('/').pop() ?? ''),
    });
  }
  chownDokku(newRoot, true);
  createHook(newApp);

  if (existsSync(join(oldRoot, 'VHOST'))) {
    let vhost = readFileSync(join(oldRoot, 'VHOST'), 'utf8');
    for (const g of globalVhosts()) vhost = vhost.split(`${oldApp}.${g}`).join(`${newApp}.${g}`);
    writeFileDokku(join(newRoot, 'VHOST'), vhost, 0o644);
  }
  return runTrigger('post-app-rename-setup', oldApp, newApp);
}

/**
 * apps:rename [--skip-deploy] OLD NEW (Go CommandRename, plugins/apps/subcommands.go
 * at v0.38.27): create NEW, post-app-rename-setup, destroy OLD (forced), then
 * post-app-rename: builds' and the data folders' migration, and ps rebuilds NEW
 * unless --skip-deploy.
 */
const rename: Command = async (args) => {
  let skipDeploy = false;
  const names: string[] = [];
  for (const a of args) {
    if (a === '--skip-deploy' || a === '--skip-deploy=true') skipDeploy = true;
    else if (a === '--skip-deploy=false') skipDeploy = false;
    else if (a.startsWith('-')) {
      // Go's flag package (ExitOnError) prints this and exits 2
      eprintln(`flag provided but not defined: ${a}`);
      eprintln('Usage of apps:rename:');
      exit(2);
    } else names.push(a);
  }
  const [oldApp = '', newApp = ''] = names;
  if (oldApp === '') fail('Please specify an app to run the command on');
  if (newApp === '') fail('Please specify an new app name');
  verifyApp(oldApp);
  const bad = appNameError(newApp);
  if (bad !== null) fail(bad);
  if (appExists(newApp)) fail('Name is already taken');
  info1Quiet(`Renaming ${oldApp} to ${newApp}`);
  info1Quiet(`Creating ${newApp}...`);
  await createApp(newApp);
  const code = await renameSetup(oldApp, newApp);
  if (code !== 0) exit(code);
  await destroyApp(oldApp, true);
  const hasCode = existsSync(join(DOKKU_ROOT, newApp, 'refs', 'heads'));
  if (!skipDeploy && hasCode) {
    const r = runDokku(['ps:rebuild', newApp]);
    if (r.status !== 0) exit(r.status);
  }
};

/** App-root entries the git plugin's clone/rename copy leaves behind (post-app-*-setup), or others redo. */
const NOT_COPIED =
  /^(\.cache|cache|VHOST|URLS|hooks|tls|ENV\.migrated|\.deploy\.lock|(CONTAINER|IP|PORT)(\..*)?)$/;

/**
 * The post-app-clone-setup / post-app-rename-setup triggers of every plugin,
 * in one: each plugin's properties (config/<plugin>/<old>) and data
 * (data/<plugin>/<old>, but build records and the deploy lock) copied to the
 * new app, the ENV merged in, the app root (the git repository, docker
 * options) copied but for vhosts, TLS and container files, and a fresh hook.
 */
function copyAppState(oldApp: string, newApp: string): void {
  for (const base of ['config', 'data']) {
    const dir = join(DOKKU_LIB_ROOT, base);
    let plugins: string[] = [];
    try {
      plugins = readdirSync(dir);
    } catch {
      plugins = [];
    }
    for (const p of plugins) {
      if (p === oldApp || p === newApp || p === '--global' || (base === 'data' && p === 'builds'))
        continue;
      const src = join(dir, p, oldApp);
      if (!existsSync(src)) continue;
      mkdirDokku(join(dir, p, newApp));
      spawnSync('sh', [
        '-c',
        'cp -a "$1"/. "$2"/ && rm -f "$2/.deploy.lock"',
        'sh',
        src,
        join(dir, p, newApp),
      ]);
    }
  }
  if (versionAtLeast('0.38.0')) {
    const env = readEnv(appEnvPath(newApp));
    for (const [k, v] of readEnv(appEnvPath(oldApp))) env.set(k, v);
    if (env.size > 0) writeEnv(appEnvPath(newApp), env);
  }
  const from = join(DOKKU_ROOT, oldApp);
  for (const entry of readdirSync(from)) {
    if (NOT_COPIED.test(entry)) continue;
    spawnSync('cp', ['-a', join(from, entry), join(DOKKU_ROOT, newApp)]);
  }
  chownDokku(join(DOKKU_ROOT, newApp), true);
  createHook(newApp);
}

/** Parse `[--skip-deploy] [--ignore-existing] OLD NEW`. */
function cloneArgs(args: string[]): { from: string; to: string; skip: boolean; ignore: boolean } {
  const pos = args.filter((a) => !a.startsWith('--'));
  return {
    from: pos[0] ?? '',
    to: pos[1] ?? '',
    skip: args.includes('--skip-deploy'),
    ignore: args.includes('--ignore-existing'),
  };
}

/** Rebuild the new app unless told not to or it has no code (git-has-code, post-app-clone). */
async function rebuildCopy(app: string, skip: boolean): Promise<number> {
  if (skip) return 0;
  const branch =
    getProperty('git', app, 'deploy-branch') ||
    getProperty('git', '--global', 'deploy-branch') ||
    'master';
  if (!existsSync(join(DOKKU_ROOT, app, 'refs', 'heads', branch))) return 0;
  return runDokku(['ps:rebuild', app]).status;
}

/** apps:clone [--skip-deploy] [--ignore-existing] OLD NEW (subcommands.go CommandClone). */
const clone: Command = async (args) => {
  const a = cloneArgs(args);
  if (a.from === '') fail('Please specify an app to run the command on');
  if (a.to === '') fail('Please specify an new app name');
  verifyApp(a.from);
  const bad = appNameError(a.to);
  if (bad !== null) fail(bad);
  if (appExists(a.to)) {
    if (a.ignore) {
      warn('Name is already taken');
      return;
    }
    fail('Name is already taken');
  }
  info1Quiet(`Cloning ${a.from} to ${a.to}`);
  info1Quiet(`Creating ${a.to}...`);
  await createApp(a.to);
  copyAppState(a.from, a.to);
  return rebuildCopy(a.to, a.skip);
};

/**
 * apps:lock: os.Create of the lock path, i.e. an empty file (a running
 * deploy's holder line is truncated). No directory is made: an app whose
 * data/apps/<app>/ is missing cannot be locked (subcommands.go CommandLock).
 */
const lock: Command = async (args) => {
  const app = args[0];
  verifyApp(app);
  const path = deployLockPath(app);
  try {
    writeFileSync(path, '');
    chownDokku(path);
  } catch {
    fail('Unable to create deploy lock');
  }
  info1('Deploy lock created');
};

const locked: Command = async (args) => {
  const app = args[0];
  verifyApp(app);
  if (!existsSync(deployLockPath(app))) fail('Deploy lock does not exist');
  if (!isQuiet()) println('Deploy lock exists');
};

const unlock: Command = async (args) => {
  const app = args[0];
  verifyApp(app);
  const path = deployLockPath(app);
  if (!existsSync(path)) fail('Unable to remove deploy lock');
  warn('A deploy may be in progress.');
  warn('Removing the app lock will not stop in progress deploys.');
  rmSync(path, { force: true });
  info1('Deploy lock removed');
};

/**
 * Is auto-creation disabled? 0.38.0+: the apps property set by
 * `apps:set --global disable-autocreation true`; before, the global config
 * var DOKKU_DISABLE_APP_AUTOCREATION (functions.go maybeCreateApp).
 */
export function autocreationDisabled(): boolean {
  if (!versionAtLeast('0.38.0')) {
    return readEnv(globalEnvPath()).get('DOKKU_DISABLE_APP_AUTOCREATION') === 'true';
  }
  return (
    readOr(join(DOKKU_LIB_ROOT, 'config', 'apps', '--global', 'disable-autocreation')) === 'true'
  );
}

/** report.go: the global-disable-autocreation key since 0.38.12. */
function appInfo(app: string): Record<string, string> {
  const withGlobal = versionAtLeast('0.38.12');
  const global = getProperty('apps', '--global', 'disable-autocreation');
  if (app === '--global') return withGlobal ? { '--app-global-disable-autocreation': global } : {};
  const info: Record<string, string> = {
    '--app-created-at': getProperty('apps', app, 'created-at'),
    '--app-deploy-source': getProperty('apps', app, 'deploy-source'),
    '--app-deploy-source-metadata': getProperty('apps', app, 'deploy-source-metadata'),
    '--app-dir': join(DOKKU_ROOT, app),
    '--app-locked': existsSync(deployLockPath(app)) ? 'true' : 'false',
  };
  if (withGlobal) info['--app-global-disable-autocreation'] = global;
  return info;
}

/**
 * apps:set (0.38.0+, CommandSet over common.CommandPropertySet). Properties:
 * 0.38.0-0.38.11 deploy-source, deploy-source-metadata, disable-autocreation,
 * all global too; 0.38.12+ disable-autocreation is global only and the
 * deploy-source ones are app only.
 */
const set: Command = async (args) => {
  let global = false;
  const pos: string[] = [];
  for (const a of args) {
    if (a === '--global') global = true;
    else pos.push(a);
  }
  let [app = '', property = '', value = ''] = pos;
  if (global) [app, property, value] = ['--global', pos[0] ?? '', pos[1] ?? ''];
  const strict = versionAtLeast('0.38.12');
  if (strict && app !== '--global' && property === 'disable-autocreation') {
    fail('Property can only be specified globally');
  }
  commandPropertySet(
    'apps',
    app,
    property,
    value,
    ['deploy-source', 'deploy-source-metadata', 'disable-autocreation'],
    strict
      ? ['disable-autocreation']
      : ['deploy-source', 'deploy-source-metadata', 'disable-autocreation'],
  );
};

const report = reportCommand('app', (s) => appInfo(s), true);

/**
 * The apps plugin's install trigger (triggers.go TriggerInstall, v0.34.0 to
 * v0.38.27; 0.30 has none): SetupAppData("apps") makes data/apps and a
 * data/apps/<app> for every app, where the deploy lock (and apps:lock's) lives.
 */
export const triggers: Record<string, Trigger> = versionAtLeast('0.34.0')
  ? {
      install: async () => {
        mkdirDokku(join(DOKKU_LIB_ROOT, 'data', 'apps'));
        for (const app of listApps()) mkdirDokku(join(DOKKU_LIB_ROOT, 'data', 'apps', app));
      },
    }
  : {};

export const commands: Record<string, Command> = {
  'apps:report': report,
  'apps:create': create,
  'apps:list': list,
  'apps:exists': exists,
  'apps:destroy': destroy,
  'apps:rename': rename,
  'apps:lock': lock,
  'apps:locked': locked,
  'apps:unlock': unlock,
  'apps:clone': clone,
  ...(versionAtLeast('0.38.0') ? { 'apps:set': set } : {}),
  apps: list,
};
