/** ps:* (reference §6; D plugins/ps). */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  appContainers,
  containerIdOf,
  deployContainers,
  isDeployed,
  releaseAndDeploy,
  runningState,
  setRestore,
  stopApp,
} from '../deploy.js';
import { containerStatus } from '../engine.js';
import {
  appEnvPath,
  type Command,
  commandPropertySet,
  DokkuExit,
  fail,
  getGlobalProperty,
  getProperty,
  globalEnvPath,
  info1,
  info1Quiet,
  info2,
  isQuiet,
  listApps,
  parseFlags,
  println,
  readEnv,
  reportCommand,
  runTrigger,
  type Trigger,
  verifyApp,
  versionAtLeast,
  warn,
} from '../lib.js';
import { dockerOptions, setDockerOption } from './docker-options.js';
import { rebuildFromGit } from './git.js';
import { getFormations, parseProcfile, parseTuples, procfilePath, updateScale } from './scale.js';

type AppAction = (app: string) => Promise<number>;

/** Run an action on one app or on `--all`, serial or parallel (common/parallel.go). */
async function runForApps(cmd: string, args: string[], action: AppAction): Promise<number> {
  let all = false;
  let parallel = 0;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--all') all = true;
    else if (a === '--parallel') parallel = Number(args[++i] ?? '0');
    else if (a.startsWith('--parallel=')) parallel = Number(a.slice(11));
    else pos.push(a);
  }
  if (!all) {
    const app = pos[0];
    verifyApp(app);
    return action(app);
  }
  const apps = listApps();
  if (apps.length === 0) {
    warn("You haven't deployed any applications yet");
    return 0;
  }
  if (parallel === -1) {
    parallel = cpus().length;
    warn(`Setting --parallel=-1 value to CPU count of ${parallel}`);
  } else if (parallel < -1) fail(`Invalid value ${parallel} for --parallel flag`);
  const run = async (app: string): Promise<string | null> => {
    try {
      const code = await action(app);
      return code === 0 ? null : `exit status ${code}`;
    } catch (e) {
      if (e instanceof DokkuExit) return e.message || `exit status ${e.code}`;
      throw e;
    }
  };
  let errors = 0;
  if (parallel <= 1) {
    warn(`Running ${cmd} in serial mode`);
    for (const app of apps) {
      info1(`Running ${cmd} against app ${app}`);
      const e = await run(app);
      if (e !== null) {
        errors++;
        warn(`Error running ${cmd} against app ${app}: ${e}`);
      }
    }
    if (errors > 0) fail(`${cmd} command returned ${errors} errors`);
    return 0;
  }
  const queue = [...apps];
  const worker = async (): Promise<void> => {
    for (let app = queue.shift(); app !== undefined; app = queue.shift()) {
      info1(`Running command against ${app}`);
      const e = await run(app);
      if (e !== null) {
        errors++;
        warn(`Error running ${cmd} against ${app}: ${e}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, apps.length) }, worker));
  if (errors > 0) fail(`Encountered ${errors} errors during parallel run`);
  return 0;
}

async function stopOne(app: string): Promise<number> {
  if (!isDeployed(app)) {
    warn(`App ${app} has not been deployed`);
    return 0;
  }
  info1Quiet(`Stopping ${app}`);
  await stopApp(app);
  setRestore(app, false);
  return 0;
}

async function startOne(app: string): Promise<number> {
  if (!isDeployed(app)) {
    warn(`App ${app} has not been deployed`);
    return 0;
  }
  const state = runningState(app).running;
  if (state === 'mixed') warn('App is running in mixed mode, releasing');
  else if (state === 'false') warn('App has been detected as not running, releasing');
  if (state !== 'true') return releaseAndDeploy(app);
  warn(`App ${app} already running`);
  return 0;
}

async function restartOne(app: string): Promise<number> {
  if (!isDeployed(app)) {
    warn(`App ${app} has not been deployed`);
    return 0;
  }
  try {
    await deployContainers(app);
  } catch (e) {
    if (e instanceof DokkuExit) return e.code;
    throw e;
  }
  return 0;
}

async function rebuildOne(app: string): Promise<number> {
  return rebuildFromGit(app);
}

async function restoreOne(app: string): Promise<number> {
  info1('Clearing potentially invalid proxy configuration');
  if (!isDeployed(app)) {
    warn(`App ${app} has not been deployed`);
    return 0;
  }
  if (restoreValue(app) === 'false') {
    // ps.go Restore: the property since 0.38.0, DOKKU_APP_RESTORE before
    warn(
      versionAtLeast('0.38.0')
        ? `Skipping ps:restore for ${app} as restore property is false`
        : `Skipping ps:restore for ${app} as DOKKU_APP_RESTORE=0`,
    );
    return 0;
  }
  info1('Starting app');
  return startOne(app);
}

/** ps:restore [--all|<app>]: what Dokku runs at boot (pre-restore trigger, then start). */
const restore: Command = async (args) => {
  const pre = await runTrigger('pre-restore');
  if (pre !== 0) fail(`Error running pre-restore: exit status ${pre}`);
  const pos = args.filter((a) => !a.startsWith('--'));
  let rest = args;
  if (!args.includes('--all') && pos.length === 0) {
    warn('Restore specified without app, assuming --all');
    rest = [...args, '--all'];
  }
  return runForApps('restore', rest, restoreOne);
};

const stop: Command = (args) => runForApps('ps:stop', args, stopOne);
const start: Command = (args) => runForApps('ps:start', args, startOne);
const restart: Command = (args) => runForApps('ps:restart', args, restartOne);
const rebuild: Command = (args) => runForApps('ps:rebuild', args, rebuildOne);

/**
 * ps properties (ps.go DefaultProperties / GlobalProperties): 0.30-0.34
 * procfile-path and restart-policy; 0.37 adds stop-timeout-seconds; 0.38 adds
 * dockerfile-start-cmd, restore, skip-deploy and start-cmd, and restart-policy
 * becomes a property (before, `--restart=` in the deploy docker-options).
 */
function validKeys(): { app: string[]; global: string[] } {
  if (versionAtLeast('0.38.0')) {
    return {
      app: [
        'dockerfile-start-cmd',
        'procfile-path',
        'restart-policy',
        'restore',
        'skip-deploy',
        'start-cmd',
        'stop-timeout-seconds',
      ],
      global: ['procfile-path', 'restart-policy', 'skip-deploy', 'stop-timeout-seconds'],
    };
  }
  if (versionAtLeast('0.37.0')) {
    return {
      app: ['procfile-path', 'restart-policy', 'stop-timeout-seconds'],
      global: ['procfile-path', 'stop-timeout-seconds'],
    };
  }
  return { app: ['procfile-path', 'restart-policy'], global: ['procfile-path'] };
}

function validRestartPolicy(v: string): boolean {
  return (
    ['no', 'always', 'unless-stopped', 'on-failure'].includes(v) || v.startsWith('on-failure:')
  );
}

const set: Command = async (args) => {
  let global = false;
  const pos: string[] = [];
  for (const a of args) {
    if (a === '--global') global = true;
    else pos.push(a);
  }
  let [app = '', key = '', value = ''] = pos;
  if (global) [app, key, value] = ['--global', pos[0] ?? '', pos[1] ?? ''];
  if (key === 'restart-policy' && !versionAtLeast('0.38.0')) {
    // subcommands.go CommandSet before 0.38: a docker option of the deploy phase
    if (!validRestartPolicy(value)) fail('Invalid restart-policy specified');
    if (!isQuiet()) info2(`Setting ${key} to ${value}`);
    setDockerOption(app, 'deploy', 'restart', value);
    return;
  }
  if (key === 'restart-policy' && value !== '' && !validRestartPolicy(value)) {
    fail('Invalid restart-policy specified');
  }
  const keys = validKeys();
  commandPropertySet('ps', app, key, value, keys.app, keys.global);
};

/** The restore flag: 0.38 property; before, DOKKU_APP_RESTORE in the app ENV ("0" = false). */
function restoreValue(app: string): string {
  if (versionAtLeast('0.38.0')) return getProperty('ps', app, 'restore') || 'true';
  return readEnv(appEnvPath(app)).get('DOKKU_APP_RESTORE') === '0' ? 'false' : 'true';
}

/** `--restart=` of the deploy docker-options (ps/functions.go getRestartPolicy, ≤0.37). */
function restartPolicyOption(app: string): string {
  const opt = dockerOptions(app, 'deploy').find((o) => o.startsWith('--restart='));
  return opt === undefined ? '' : opt.slice('--restart='.length);
}

/** `--status-<proc>.<n>` keys: `<state> (CID: <11>)`, `missing` when the engine does not know it. */
function statusFlags(app: string): Record<string, string> {
  const info: Record<string, string> = {};
  for (const c of appContainers(app)) {
    const m = /^CONTAINER\.([^.]+\.[0-9]+)$/.exec(c.file);
    if (m === null) continue;
    const id = containerIdOf(app, c.file);
    const state = c.rec === null ? 'missing' : containerStatus(c.rec);
    info[`--status-${m[1]}`] = `${state} (CID: ${id.slice(0, 11)})`;
  }
  return info;
}

/** ps:report keys of each release (ps/report.go). */
function psInfo(app: string, global: boolean): Record<string, string> {
  const g = (k: string): string => getGlobalProperty('ps', k);
  const p = (k: string): string => getProperty('ps', app, k);
  if (!versionAtLeast('0.38.0')) {
    const state = runningState(app);
    const info: Record<string, string> = {
      '--deployed': isDeployed(app) ? 'true' : 'false',
      '--processes': String(state.count),
      '--ps-can-scale': (p('can-scale') || 'true') === 'true' ? 'true' : 'false',
      '--ps-computed-procfile-path': p('procfile-path') || g('procfile-path') || 'Procfile',
      '--ps-global-procfile-path': g('procfile-path') || 'Procfile',
      '--ps-procfile-path': p('procfile-path'),
      '--ps-restart-policy': restartPolicyOption(app) || 'on-failure:10',
      '--restore': restoreValue(app),
      '--running': state.running,
    };
    if (versionAtLeast('0.37.0')) {
      info['--global-stop-timeout-seconds'] = g('stop-timeout-seconds') || '30';
      info['--stop-timeout-seconds'] = p('stop-timeout-seconds') || '30';
      info['--computed-stop-timeout-seconds'] = info['--stop-timeout-seconds'];
    }
    return { ...info, ...statusFlags(app) };
  }
  const info: Record<string, string> = {
    '--ps-computed-procfile-path': g('procfile-path') || 'Procfile',
    '--ps-computed-restart-policy': g('restart-policy') || 'on-failure:10',
    '--ps-computed-skip-deploy': g('skip-deploy') || 'false',
    '--ps-computed-stop-timeout-seconds': g('stop-timeout-seconds') || '30',
    '--ps-global-procfile-path': g('procfile-path'),
    '--ps-global-restart-policy': g('restart-policy'),
    '--ps-global-skip-deploy': g('skip-deploy'),
    '--ps-global-stop-timeout-seconds': g('stop-timeout-seconds'),
  };
  if (global) return info;
  const state = runningState(app);
  Object.assign(info, {
    '--deployed': isDeployed(app) ? 'true' : 'false',
    '--processes': String(state.count),
    '--ps-can-scale': 'true',
    '--ps-computed-dockerfile-start-cmd': p('dockerfile-start-cmd'),
    '--ps-computed-procfile-path': p('procfile-path') || info['--ps-computed-procfile-path'],
    '--ps-computed-restart-policy': p('restart-policy') || info['--ps-computed-restart-policy'],
    '--ps-computed-skip-deploy': p('skip-deploy') || info['--ps-computed-skip-deploy'],
    '--ps-computed-start-cmd': p('start-cmd'),
    '--ps-computed-stop-timeout-seconds':
      p('stop-timeout-seconds') || info['--ps-computed-stop-timeout-seconds'],
    '--ps-dockerfile-start-cmd': p('dockerfile-start-cmd'),
    '--ps-procfile-path': p('procfile-path'),
    '--ps-restart-policy': p('restart-policy'),
    '--ps-skip-deploy': p('skip-deploy'),
    '--ps-start-cmd': p('start-cmd'),
    '--ps-stop-timeout-seconds': p('stop-timeout-seconds'),
    '--restore': restoreValue(app),
    '--running': state.running,
  });
  return { ...info, ...statusFlags(app) };
}

const report = reportCommand('ps', (s, global) => psInfo(s, global), true);

/**
 * ps:scale [--skip-deploy] [--format stdout|json] APP [TYPE=COUNT...]
 * (subcommands.go CommandScale; --format since 0.38): the formation report
 * (`Scaling for APP`, `proctype: qty` lines padded to 5), or an update that
 * redeploys the app unless --skip-deploy. Only web.1 runs in the lab.
 */
const scale: Command = async (argv) => {
  const f = parseFlags('ps:scale', argv, {
    bools: ['skip-deploy'],
    ...(versionAtLeast('0.38.0') ? { strings: { format: 'stdout' } } : {}),
  });
  const [app, ...tuples] = f.args;
  verifyApp(app);
  if (tuples.length === 0) {
    const formations = getFormations(app);
    if (f.values.format === 'json') {
      println(JSON.stringify(formations));
      return;
    }
    info1Quiet(`Scaling for ${app}`);
    const rows = isQuiet()
      ? []
      : [
          ['proctype', 'qty'],
          ['--------', '---'],
        ];
    for (const x of formations) rows.push([x.process_type, String(x.quantity)]);
    for (const [type, qty] of rows) println(`${`${type}:`.padEnd(5)} ${qty}`);
    return;
  }
  if (getProperty('ps', app, 'can-scale') === 'false') {
    fail(
      `App ${app} contains an app.json file with a formations key and cannot be manually scaled`,
    );
  }
  info1(`Scaling ${app} processes: ${tuples.join(' ')}`);
  const parsed = parseTuples(tuples);
  if (typeof parsed === 'string') fail(parsed);
  const err = updateScale(app, parsed);
  if (err !== null) fail(err);
  if (f.bools.has('skip-deploy') || !isDeployed(app)) return;
  try {
    await deployContainers(app);
  } catch (e) {
    if (e instanceof DokkuExit) return e.code;
    throw e;
  }
};

/** The ps plugin's triggers: procfile-get-command APP TYPE [PORT] (procfile-util show). */
export const triggers: Record<string, Trigger> = {
  'procfile-get-command': async (args) => {
    const [app = '', type = '', port = '5000'] = args;
    const p = procfilePath(app);
    if (!existsSync(p)) fail('No procfile found');
    const cmd = parseProcfile(readFileSync(p, 'utf8')).get(type);
    if (cmd === undefined) fail(`No command found for process type ${type}`);
    const env = readEnv(globalEnvPath());
    for (const [k, v] of readEnv(appEnvPath(app))) env.set(k, v);
    env.set('PORT', port);
    println(
      cmd.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (all, name: string) => env.get(name) ?? all),
    );
  },
};

export const commands: Record<string, Command> = {
  'ps:scale': scale,
  'ps:stop': stop,
  'ps:start': start,
  'ps:restart': restart,
  'ps:rebuild': rebuild,
  'ps:set': set,
  'ps:report': report,
  'ps:restore': restore,
};
