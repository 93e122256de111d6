/** config:* (reference §4; D plugins/config). */
import { existsSync, readFileSync } from 'node:fs';
import { isDeployed, releaseAndDeploy, setupBuildCapture } from '../deploy.js';
import { migrateEnvFiles } from '../install.js';
import {
  appEnvPath,
  type Command,
  eprintln,
  exit,
  fail,
  getProperty,
  globalEnvPath,
  info1,
  info1Quiet,
  info2Quiet,
  isQuiet,
  marshalEnv,
  parseEnv,
  println,
  readableByDokku,
  readEnv,
  runTrigger,
  type Trigger,
  verbose,
  verifyApp,
  versionAtLeast,
  warn,
  writeEnv,
} from '../lib.js';
import { byteCompare, columnizePairs } from '../report.js';

interface ConfigArgs {
  positional: string[];
  global: boolean;
  encoded: boolean;
  noRestart: boolean;
  merged: boolean;
  quoted: boolean;
  format: string;
  shell: boolean;
  export: boolean;
  replace: boolean;
}

function parse(args: string[]): ConfigArgs {
  const r: ConfigArgs = {
    positional: [],
    global: false,
    encoded: false,
    noRestart: false,
    merged: false,
    quoted: false,
    format: 'exports',
    shell: false,
    export: false,
    replace: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--global') r.global = true;
    else if (a === '--encoded') r.encoded = true;
    else if (a === '--no-restart') r.noRestart = true;
    else if (a === '--merged') r.merged = true;
    else if (a === '--quoted') r.quoted = true;
    else if (a === '--shell') r.shell = true;
    else if (a === '--export') r.export = true;
    else if (a === '--replace') r.replace = true;
    else if (a === '--format') r.format = args[++i] ?? '';
    else if (a.startsWith('--format=')) r.format = a.slice(9);
    else r.positional.push(a);
  }
  return r;
}

/** Resolve (<app>|--global) to the env file path, failing as config.go does. */
function target(c: ConfigArgs): { app: string; path: string } {
  if (c.global) return { app: '--global', path: globalEnvPath() };
  const app = c.positional.shift() ?? '';
  verifyApp(app);
  return { app, path: appEnvPath(app) };
}

function sortedEntries(env: Map<string, string>): Array<[string, string]> {
  return [...env.entries()].sort((a, b) => byteCompare(a[0], b[0]));
}

function readFor(app: string, path: string, merged: boolean): Map<string, string> {
  if (!merged || app === '--global') return readEnv(path);
  const m = readEnv(globalEnvPath());
  for (const [k, v] of readEnv(path)) m.set(k, v);
  return m;
}

/** 0.38: the ps restore property; before, DOKKU_APP_RESTORE in the app ENV (GetBoolDefault: "0" is false). */
function restoreDisabled(app: string): boolean {
  if (versionAtLeast('0.38.0')) return getProperty('ps', app, 'restore') === 'false';
  return readEnv(appEnvPath(app)).get('DOKKU_APP_RESTORE') === '0';
}

/**
 * SetMany/UnsetMany's restart (config.go triggerRestart): not for --global,
 * --no-restart or a disabled restore. Before 0.37.0 "Restarting app" is
 * printed for an app never deployed too (release_and_deploy then finds no
 * image and does nothing). A failed redeploy is only a warning: exit 0.
 */
async function maybeRestart(app: string, noRestart: boolean): Promise<number> {
  if (noRestart || app === '--global' || restoreDisabled(app)) return 0;
  if (versionAtLeast('0.37.0') && !isDeployed(app)) return 0;
  info1(`Restarting app ${app}`);
  setupBuildCapture(app, 'config-redeploy');
  const code = await releaseAndDeploy(app);
  if (code !== 0) warn(`Failure while restarting app: exit status ${code}`);
  return 0;
}

const KEY_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const set: Command = async (args) => {
  const c = parse(args);
  const { app, path } = target(c);
  if (c.positional.length === 0) fail('At least one env pair must be given');
  const updates = new Map<string, string>();
  for (const pair of c.positional) {
    const eq = pair.indexOf('=');
    if (eq < 0) fail(`Invalid env pair: ${pair}`);
    const key = pair.slice(0, eq);
    let value = pair.slice(eq + 1);
    if (!KEY_RE.test(key)) fail(`Invalid key name: '${key}'`);
    if (c.encoded) {
      const clean = value.replace(/\s/g, '');
      const bad = /[^A-Za-z0-9+/=]/.exec(clean);
      if (bad !== null) fail(`illegal base64 data at input byte ${bad.index} for key '${key}'`);
      value = Buffer.from(clean, 'base64').toString('utf8');
    }
    updates.set(key, value);
  }
  if (!isQuiet()) {
    info1('Setting config vars');
    const pairs = sortedEntries(updates).map(([k, v]): [string, string] => [k, v.trim()]);
    for (const line of columnizePairs(pairs)) verbose(line);
  }
  const env = readEnv(path);
  for (const [k, v] of updates) env.set(k, v);
  writeEnv(path, env);
  await runTrigger('post-config-update', app, 'set', ...updates.keys());
  return maybeRestart(app, c.noRestart);
};

const unset: Command = async (args) => {
  const c = parse(args);
  const { app, path } = target(c);
  if (c.positional.length === 0) fail('At least one key must be given');
  const env = readEnv(path);
  for (const k of c.positional) {
    info1Quiet(`Unsetting ${k}`);
    env.delete(k);
  }
  writeEnv(path, env);
  await runTrigger('post-config-update', app, 'unset', ...c.positional);
  return maybeRestart(app, c.noRestart);
};

/** config:clear (config.go UnsetAll): every key unset, "Unsetting K" for each, then the restart. */
const clear: Command = async (args) => {
  const c = parse(args);
  const { app, path } = target(c);
  const env = readEnv(path);
  const keys = [...env.keys()];
  for (const k of keys) info1Quiet(`Unsetting ${k}`);
  if (keys.length > 0) {
    writeEnv(path, new Map());
    await runTrigger('post-config-update', app, 'clear');
  }
  return maybeRestart(app, c.noRestart);
};

/** Read an import source: a file, or stdin for `-`; a missing file is an empty env (loadFromFile). */
function importSource(file: string, format: string): Map<string, string> {
  let text = '';
  // Dokku runs as the dokku user: a file it may not read is an error (os.Open's)
  if (file !== '-' && existsSync(file) && !readableByDokku(file)) {
    fail(`open ${file}: permission denied`);
  }
  try {
    text =
      file === '-' ? readFileSync(0, 'utf8') : existsSync(file) ? readFileSync(file, 'utf8') : '';
  } catch {
    text = '';
  }
  if (format === 'json') {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      fail(text.trim() === '' ? 'EOF' : 'invalid character in JSON input');
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      fail('json: cannot unmarshal array into Go value of type map[string]string');
    }
    const m = new Map<string, string>();
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v !== 'string') {
        fail(`json: cannot unmarshal ${typeof v} into Go value of type string`);
      }
      m.set(k, v);
    }
    return m;
  }
  return parseEnv(text);
}

/**
 * config:import [--no-restart] [--replace] [--format envfile|json] (<app>|--global) [FILE|-]
 * (0.37.0+, functions.go SubImport): "Setting config var K=V" per entry, then
 * as config:set; `--replace` clears the env first.
 */
const importCmd: Command = async (args) => {
  const c = parse(args);
  const { app, path } = target(c);
  const file = c.positional[0] ?? '';
  if (file === '-') info1Quiet('Reading config vars from stdin');
  const format = c.format === 'exports' ? 'envfile' : c.format;
  if (format !== 'envfile' && format !== 'json') fail(`Unknown format: ${format}`);
  const entries = importSource(file, format);
  for (const k of [...entries.keys()]) {
    if (!KEY_RE.test(k)) {
      info1(`Deleting invalid key ${k} from config for ${app}`);
      entries.delete(k);
    }
  }
  if (entries.size === 0) fail('No config vars to set');
  for (const [k, v] of entries) info1Quiet(`Setting config var ${k}=${v}`);
  if (!isQuiet()) {
    info1('Setting config vars');
    const pairs = sortedEntries(entries).map(([k, v]): [string, string] => [k, v.trim()]);
    for (const line of columnizePairs(pairs)) verbose(line);
  }
  const env = c.replace ? new Map<string, string>() : readEnv(path);
  for (const [k, v] of entries) env.set(k, v);
  writeEnv(path, env);
  await runTrigger('post-config-update', app, 'set', ...entries.keys());
  return maybeRestart(app, c.noRestart);
};

/** config:keys [--merged] (<app>|--global): the keys, sorted, one per line. */
const keys: Command = async (args) => {
  const c = parse(args);
  const { app, path } = target(c);
  for (const [k] of sortedEntries(readFor(app, path, c.merged))) println(k);
};

const get: Command = async (args) => {
  const c = parse(args);
  const { app, path } = target(c);
  if (c.positional.length === 0) fail('Expected: key');
  if (c.positional.length > 1) fail(`Unexpected argument(s): [${c.positional.slice(1).join(' ')}]`);
  const env = readFor(app, path, c.merged);
  const v = env.get(c.positional[0] ?? '');
  if (v === undefined) exit(1);
  println(c.quoted ? `'${v.replace(/'/g, "'\\''")}'` : v);
};

function show(c: ConfigArgs): void {
  const { app, path } = target(c);
  const env = readFor(app, path, c.merged);
  info2Quiet(app === '--global' ? 'global env vars' : `${app} env vars`);
  const entries = sortedEntries(env);
  if (entries.length === 0) {
    println('');
    return;
  }
  for (const line of columnizePairs(entries)) println(line);
}

const showCmd: Command = async (args) => {
  show(parse(args));
};

const sq = (v: string): string => `'${v.replace(/'/g, "'\\''")}'`;

const exportCmd: Command = async (args) => {
  const c = parse(args);
  const { app, path } = target(c);
  const entries = sortedEntries(readFor(app, path, c.merged));
  const out = process.stdout;
  switch (c.format) {
    case 'exports':
      out.write(`${entries.map(([k, v]) => `export ${k}=${sq(v)}`).join('\n')}\n`);
      return;
    case 'envfile':
      out.write(`${marshalEnv(new Map(entries), versionAtLeast('0.37.8'))}\n`);
      return;
    case 'docker-args':
      out.write(`${entries.map(([k, v]) => `--env=${k}=${sq(v)}`).join(' ')}\n`);
      return;
    case 'docker-args-keys':
      out.write(`${entries.map(([k]) => `--env=${k}`).join(' ')}\n`);
      return;
    case 'pack-keys':
      out.write(`${entries.map(([k]) => `--env ${k}`).join(' ')}\n`);
      return;
    case 'shell':
      out.write(entries.map(([k, v]) => `${k}=${sq(v)} `).join(''));
      return;
    case 'json': {
      const o: Record<string, string> = {};
      for (const [k, v] of entries) o[k] = v;
      out.write(`${JSON.stringify(o)}\n`);
      return;
    }
    case 'json-list':
      out.write(
        `${entries.length === 0 ? 'null' : JSON.stringify(entries.map(([name, value]) => ({ name, value })))}\n`,
      );
      return;
    case 'pretty':
      for (const line of columnizePairs(entries)) println(line);
      return;
    default:
      fail(`Unknown export format: ${c.format}`);
  }
};

const bare: Command = async (args) => {
  // before 0.31.0 the bare command was config:show's deprecated alias (commands.go)
  if (!versionAtLeast('0.31.0')) {
    warn("Deprecated: Use the 'config:show' command instead");
    if (args.some((a) => ['-h', '-help', '--help', '--h'].includes(a))) {
      // Go's flag package: the default usage of the config:show flag set, exit 0
      const flags: Array<[string, string]> = [
        ['export', '--export: print the env as eval-compatible exports [deprecated]'],
        ['global', '--global: use the global environment'],
        ['merged', "--merged: display the app's environment merged with the global environment"],
        ['shell', '--shell: in a single-line for usage in command-line utilities [deprecated]'],
      ];
      eprintln('Usage of config:show:');
      for (const [f, usage] of flags) eprintln(`  -${f}\n    \t${usage}`);
      return 0;
    }
  }
  const c = parse(args);
  if (c.shell) {
    warn("Deprecated: Use 'config:export --format shell' instead");
    c.format = 'shell';
    return exportCmd(args.filter((a) => a !== '--shell').concat(['--format', 'shell']));
  }
  if (c.export) {
    warn("Deprecated: Use 'config:export --format exports' instead");
    return exportCmd(args.filter((a) => a !== '--export'));
  }
  show(c);
};

/** The config plugin's triggers: `install` migrates ≤0.37 ENV files (0.38.0+). */
export const triggers: Record<string, Trigger> = {
  install: async () => {
    migrateEnvFiles();
  },
  // plugins installing before config force the migration through it (0.38.26+)
  ...(versionAtLeast('0.38.26')
    ? {
        'config-migrate-env': async () => {
          migrateEnvFiles();
        },
      }
    : {}),
};

export const commands: Record<string, Command> = {
  config: bare,
  'config:set': set,
  'config:unset': unset,
  'config:get': get,
  'config:show': showCmd,
  'config:export': exportCmd,
  'config:clear': clear,
  'config:keys': keys,
  ...(versionAtLeast('0.37.0') ? { 'config:import': importCmd } : {}),
};
