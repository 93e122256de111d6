/**
 * proxy:* and the proxy plugin's triggers (D plugins/proxy at v0.38.27:
 * proxy.go, functions.go, report.go, subcommands.go, triggers.go; v0.37.9 for
 * the ENV era). Which proxy serves an app: the app's type, else the global
 * type, else nginx.
 *
 * Where the type lives depends on the release:
 * - 0.38.0+: properties `config/proxy/<app>/type`, `config/proxy/--global/type`,
 *   `config/proxy/<app>/disabled`; the install trigger migrates the old ENV keys.
 * - 0.33.0-0.37.x: `DOKKU_APP_PROXY_TYPE` in the app ENV, `DOKKU_PROXY_TYPE`
 *   in the global ENV, `DOKKU_DISABLE_PROXY` in the app ENV.
 * - before 0.33.0: only the app's `DOKKU_APP_PROXY_TYPE` (no global type).
 */
import {
  appEnvPath,
  type Command,
  DokkuExit,
  deleteProperty,
  fail,
  getProperty,
  globalEnvPath,
  hasProperty,
  info1,
  info2Quiet,
  isQuiet,
  listApps,
  println,
  readEnv,
  reportCommand,
  runDokku,
  runTrigger,
  setProperty,
  type Trigger,
  verifyApp,
  versionAtLeast,
  warn,
} from '../lib.js';
import { byteCompare, parseReportArgs, reportLines } from '../report.js';

/** The app's own proxy type ('' when unset). */
export function appProxyType(app: string): string {
  if (versionAtLeast('0.38.0')) return getProperty('proxy', app, 'type');
  const v = readEnv(appEnvPath(app)).get('DOKKU_APP_PROXY_TYPE') ?? '';
  // before 0.33.0 the app value defaulted to nginx itself (config.GetWithDefault)
  return v === '' && !versionAtLeast('0.33.0') ? 'nginx' : v;
}

/** The global proxy type ('' when unset; 0.33-0.37 default it to nginx). */
export function globalProxyType(): string {
  if (versionAtLeast('0.38.0')) return getProperty('proxy', '--global', 'type');
  if (!versionAtLeast('0.33.0')) return '';
  return readEnv(globalEnvPath()).get('DOKKU_PROXY_TYPE') || 'nginx';
}

/** The `proxy-type` trigger: app, else global, else nginx. */
export function computedProxyType(app: string): string {
  return appProxyType(app) || globalProxyType() || 'nginx';
}

/** The `proxy-is-enabled` trigger. */
export function proxyEnabled(app: string): boolean {
  if (versionAtLeast('0.38.0'))
    return (getProperty('proxy', app, 'disabled') || 'false') !== 'true';
  return (readEnv(appEnvPath(app)).get('DOKKU_DISABLE_PROXY') ?? '') === '';
}

// ---------------------------------------------------------------- flags

/** pflag as the Go subcommands use it: known boolean/int flags, `unknown flag` exits 2. */
function parseFlags(
  cmd: string,
  args: string[],
  known: { bools: string[]; ints: string[] },
): { pos: string[]; bools: Set<string>; ints: Map<string, number> } {
  const pos: string[] = [];
  const bools = new Set<string>();
  const ints = new Map<string, number>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') {
      pos.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '--') {
      pos.push(a);
      continue;
    }
    const [name = '', inline] = a.slice(2).split(/=(.*)/s, 2);
    if (known.bools.includes(name)) {
      if (inline === undefined || inline === 'true') bools.add(name);
      continue;
    }
    if (known.ints.includes(name)) {
      const v = inline ?? args[++i] ?? '';
      const n = Number.parseInt(v, 10);
      if (!/^-?[0-9]+$/.test(v)) {
        process.stderr.write(
          `invalid argument "${v}" for "--${name}" flag: strconv.ParseInt: parsing "${v}": invalid syntax\nUsage of ${cmd}:\n`,
        );
        throw new DokkuExit(2);
      }
      ints.set(name, n);
      continue;
    }
    process.stderr.write(`unknown flag: --${name}\nUsage of ${cmd}:\n`);
    throw new DokkuExit(2);
  }
  return { pos, bools, ints };
}

// ---------------------------------------------------------------- all apps

type AppAction = (app: string) => Promise<string | null>;

/** common.RunCommandAgainstAllApps (parallel.go): serial or a worker pool; errors counted. */
async function runAgainstAllApps(name: string, parallel: number, action: AppAction): Promise<void> {
  if (parallel < -1) fail(`Invalid value ${parallel} for --parallel flag`);
  let count = parallel;
  if (count === -1) {
    const { cpus } = await import('node:os');
    count = cpus().length;
    warn(`Setting --parallel=${parallel} value to CPU count of ${count}`);
  }
  const apps = listApps();
  const serial = count === 0 || count === 1;
  if (serial) warn(`Running ${name} in serial mode`);
  if (apps.length === 0) {
    warn("You haven't deployed any applications yet");
    return;
  }
  let errors = 0;
  if (serial) {
    for (const app of apps) {
      info1(`Running ${name} against app ${app}`);
      const e = await action(app);
      if (e !== null) {
        warn(`Error running ${name} against app ${app}: ${e}`);
        errors++;
      }
    }
    if (errors > 0) fail(`${name} command returned ${errors} errors`);
    return;
  }
  const queue = [...apps];
  const worker = async (): Promise<void> => {
    for (let app = queue.shift(); app !== undefined; app = queue.shift()) {
      info1(`Running command against ${app}`);
      const e = await action(app);
      if (e !== null) {
        warn(`Error running ${name} against ${app}: ${e}`);
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, apps.length) }, worker));
  if (errors > 0) fail(`Encountered ${errors} errors during parallel run`);
}

/** A trigger run as Go's CallPlugnTrigger: null on success, else the error text. */
async function trigger(name: string, ...args: string[]): Promise<string | null> {
  const code = await runTrigger(name, ...args);
  return code === 0 ? null : `exit status ${code}`;
}

// ---------------------------------------------------------------- commands

const setGo: Command = async (args) => {
  const f = parseFlags('proxy:set', args, {
    bools: versionAtLeast('0.33.0') ? ['global'] : [],
    ints: [],
  });
  const global = f.bools.has('global');
  let app = f.pos[0] ?? '';
  let property = f.pos[1] ?? '';
  let value = f.pos[2] ?? '';
  if (global) {
    app = '--global';
    property = f.pos[0] ?? '';
    value = f.pos[1] ?? '';
  }
  if (!versionAtLeast('0.38.0')) return setEnvEra(app, property);
  // subcommands.go CommandSet: `proxy:set <app> <type>` means `type`
  const valid = ['disabled', 'proxy-port', 'proxy-ssl-port', 'type'];
  const globalOk = ['proxy-port', 'proxy-ssl-port', 'type'];
  if (!valid.includes(property) && value === '') {
    if (property.includes(':')) {
      warn('Detected potential port mapping instead of proxy type');
      fail('Consider using ports:set command or specifying a valid proxy');
    }
    value = property;
    property = 'type';
  }
  // common.CommandPropertySet
  if (app !== '--global') verifyApp(app);
  if (app === '--global' && !globalOk.includes(property)) {
    fail('Property cannot be specified globally');
  }
  if (property === '') fail('No property specified');
  if (!valid.includes(property)) {
    fail(`Invalid property specified, valid properties include: ${valid.join(', ')}`);
  }
  if (value !== '') {
    info2Quiet(`Setting ${property} to ${value}`);
    setProperty('proxy', app, property, value);
  } else {
    info2Quiet(`Unsetting ${property}`);
    deleteProperty('proxy', app, property);
  }
  return 0;
};

/** ≤0.37 CommandSet: the type goes into the ENV through config.SetMany (no restart). */
function setEnvEra(app: string, proxyType: string): number {
  if (app !== '--global') verifyApp(app);
  if (proxyType.length < 2) fail('Please specify a proxy type');
  if (versionAtLeast('0.34.4') && proxyType.includes(':')) {
    warn('Detected potential port mapping instead of proxy type');
    fail('Consider using ports:set command or specifying a valid proxy');
  }
  const key = app === '--global' ? 'DOKKU_PROXY_TYPE' : 'DOKKU_APP_PROXY_TYPE';
  const target = app === '--global' ? ['--global'] : [app];
  const r = runDokku(['config:set', '--no-restart', ...target, `${key}=${proxyType}`]);
  return r.status;
}

async function disableOne(app: string): Promise<string | null> {
  if (!proxyEnabled(app)) {
    info1('Proxy is already disable for app');
    return null;
  }
  info1('Disabling proxy for app');
  if (versionAtLeast('0.38.0')) setProperty('proxy', app, 'disabled', 'true');
  else {
    const r = runDokku(['config:set', '--no-restart', app, 'DOKKU_DISABLE_PROXY=1']);
    if (r.status !== 0) return `exit status ${r.status}`;
  }
  return trigger('proxy-disable', app);
}

async function enableOne(app: string): Promise<string | null> {
  if (proxyEnabled(app)) {
    info1('Proxy is already enabled for app');
    return null;
  }
  info1('Enabling proxy for app');
  if (versionAtLeast('0.38.0')) deleteProperty('proxy', app, 'disabled');
  else {
    const r = runDokku(['config:unset', '--no-restart', app, 'DOKKU_DISABLE_PROXY']);
    if (r.status !== 0) return `exit status ${r.status}`;
  }
  return trigger('proxy-enable', app);
}

const buildConfigOne: AppAction = (app) => trigger('proxy-build-config', app);

/** enable, disable, build-config: `[--all|<app>] [--parallel N]`. */
function forApps(cmd: string, name: string, action: AppAction): Command {
  return async (args) => {
    const f = parseFlags(cmd, args, { bools: ['all'], ints: ['parallel'] });
    if (f.bools.has('all')) {
      await runAgainstAllApps(name, f.ints.get('parallel') ?? 0, action);
      return 0;
    }
    const app = f.pos[0];
    verifyApp(app);
    const e = await action(app);
    if (e !== null) fail(e);
    return 0;
  };
}

const clearConfig: Command = async (args) => {
  const f = parseFlags('proxy:clear-config', args, { bools: ['all'], ints: [] });
  let app = '--all';
  if (!f.bools.has('all')) {
    app = f.pos[0] ?? '';
    verifyApp(app);
  }
  const e = await trigger('proxy-clear-config', app);
  if (e !== null) fail(e);
  return 0;
};

/** 0.38.27 report.go: global and app flag sets. */
function reportInfo(app: string, global: boolean): Record<string, string> {
  const g = (k: string): string => getProperty('proxy', '--global', k);
  const info: Record<string, string> = {
    '--proxy-computed-proxy-port': global ? g('proxy-port') : '',
    '--proxy-computed-proxy-ssl-port': global ? g('proxy-ssl-port') : '',
    '--proxy-computed-type': global ? computedProxyType('--global') : '',
    '--proxy-global-proxy-port': g('proxy-port'),
    '--proxy-global-proxy-ssl-port': g('proxy-ssl-port'),
    '--proxy-global-type': g('type'),
  };
  if (global) return info;
  const p = (k: string): string => getProperty('proxy', app, k);
  return {
    ...info,
    '--proxy-computed-disabled': p('disabled') || 'false',
    '--proxy-computed-proxy-port': p('proxy-port') || g('proxy-port'),
    '--proxy-computed-proxy-ssl-port': p('proxy-ssl-port') || g('proxy-ssl-port'),
    '--proxy-computed-type': computedProxyType(app),
    '--proxy-disabled': p('disabled'),
    '--proxy-enabled': proxyEnabled(app) ? 'true' : 'false',
    '--proxy-proxy-port': p('proxy-port'),
    '--proxy-proxy-ssl-port': p('proxy-ssl-port'),
    '--proxy-type': p('type'),
  };
}

const reportGo = reportCommand('proxy', (s, global) => reportInfo(s, global), true);

/** ≤0.37 report.go: trimPrefix false (JSON keys keep `proxy-`), no --global. */
function reportInfoEnvEra(app: string): Record<string, string> {
  const info: Record<string, string> = {
    '--proxy-enabled': proxyEnabled(app) ? 'true' : 'false',
    '--proxy-type': appProxyType(app),
  };
  if (!versionAtLeast('0.31.0')) {
    // 0.30 report.go: the port map, before the ports plugin took it (0.31.0)
    info['--proxy-port-map'] = (readEnv(appEnvPath(app)).get('DOKKU_PROXY_PORT_MAP') ?? '')
      .split(/\s+/)
      .filter((m) => /^[a-z]+:[0-9]+:[0-9]+$/.test(m))
      .join(' ');
  }
  if (versionAtLeast('0.33.0')) {
    // report.go of 0.33-0.37 computes global first: the global type always wins
    info['--proxy-computed-type'] = globalProxyType() || appProxyType(app);
    info['--proxy-global-type'] = globalProxyType();
  }
  return info;
}

const reportEnvEra: Command = async (args) => {
  const r = parseReportArgs(args);
  const infoFlags = [...r.flags, ...(r.global ? ['--global'] : [])];
  if (infoFlags.length > 1) fail('proxy:report command allows only a single flag');
  const flag = infoFlags[0] ?? '';
  const apps = r.app !== '' ? [r.app] : listApps();
  if (apps.length === 0) {
    warn("You haven't deployed any applications yet");
    return;
  }
  for (const app of apps) {
    verifyApp(app);
    const info = reportInfoEnvEra(app);
    if (r.format !== 'stdout' && flag !== '') {
      fail('--format flag cannot be specified when specifying an info flag');
    }
    if (r.format === 'json') {
      const data: Record<string, string> = {};
      for (const k of Object.keys(info).sort(byteCompare)) data[k.slice(2)] = info[k] ?? '';
      println(JSON.stringify(data));
      continue;
    }
    if (flag === '') {
      if (!isQuiet()) println(`=====> ${app} proxy information`);
      println(reportLines(info).join('\n'));
      continue;
    }
    if (!(flag in info)) {
      fail(`Invalid flag passed, valid flags: ${Object.keys(info).sort(byteCompare).join(', ')}`);
    }
    println(info[flag] ?? '');
  }
};

const report: Command = (args) => (versionAtLeast('0.38.0') ? reportGo(args) : reportEnvEra(args));

// ---------------------------------------------------------------- triggers

/**
 * triggers.go TriggerInstall (0.38.0+): the ENV keys of the older releases
 * become properties (common MigrateConfigToProperties), once.
 */
const install: Trigger = async () => {
  if (!versionAtLeast('0.38.0')) return;
  const entries: Array<{
    app: string;
    global: string;
    property: string;
    t?: (v: string) => string;
  }> = [
    { app: 'DOKKU_APP_PROXY_TYPE', global: 'DOKKU_PROXY_TYPE', property: 'type' },
    {
      app: 'DOKKU_DISABLE_PROXY',
      global: '',
      property: 'disabled',
      t: (v) => (v !== '' ? 'true' : v),
    },
    { app: 'DOKKU_PROXY_PORT', global: 'DOKKU_PROXY_PORT', property: 'proxy-port' },
    { app: 'DOKKU_PROXY_SSL_PORT', global: 'DOKKU_PROXY_SSL_PORT', property: 'proxy-ssl-port' },
  ];
  const migrate = (app: string, key: string, property: string, t?: (v: string) => string): void => {
    if (hasProperty('proxy', app, property)) return;
    const path = app === '--global' ? globalEnvPath() : appEnvPath(app);
    let value = readEnv(path).get(key) ?? '';
    if (value === '') return;
    if (t !== undefined) value = t(value);
    if (app === '--global') {
      info1(
        `Migrating deprecated global ${key} to proxy ${property} property. Use 'dokku proxy:set --global ${property} <value>' to manage this going forward.`,
      );
    } else {
      info1(
        `Migrating deprecated ${key} to proxy ${property} property for ${app}. Use 'dokku proxy:set ${app} ${property} <value>' to manage this going forward.`,
      );
    }
    setProperty('proxy', app, property, value);
    const target = app === '--global' ? ['--global'] : [app];
    const r = runDokku(['--quiet', 'config:unset', '--no-restart', ...target, key], {
      capture: true,
    });
    if (r.status !== 0) warn(r.stderr.trim().replace(/^ !\s+/, ''));
  };
  for (const e of entries) {
    if (e.global !== '') migrate('--global', e.global, e.property, e.t);
    for (const app of listApps()) migrate(app, e.app, e.property, e.t);
  }
};

/** The proxy plugin's in-process triggers. */
export const triggers: Record<string, Trigger> = { install };

export const commands: Record<string, Command> = {
  'proxy:set': setGo,
  'proxy:report': report,
  'proxy:enable': forApps('proxy:enable', 'enable', enableOne),
  'proxy:disable': forApps('proxy:disable', 'disable', disableOne),
  'proxy:build-config': forApps('proxy:build-config', 'build-config', buildConfigOne),
  'proxy:clear-config': clearConfig,
};
