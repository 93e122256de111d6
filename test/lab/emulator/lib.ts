/**
 * Shared helpers of the Dokku CLI emulator: paths, log formatters, app checks,
 * the ENV file format, properties, sub-invocation and triggers.
 *
 * This file imports only node: builtins and this folder's own modules, because the lab
 * emulator folder on its own to /var/lib/ferry-lab/emulator/.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseReportArgs, renderBashReport, renderReport } from './report.js';

/** Dokku's home: bare repos and per-app files. */
export const DOKKU_ROOT = '/home/dokku';
/** Dokku's library root: config (properties, ENV), data, plugins, services. */
export const DOKKU_LIB_ROOT = '/var/lib/dokku';
/** The emulated container engine's state (images, containers, networks). Never in a backup. */
export const ENGINE_ROOT = '/var/lib/docker';
/** plugn's PLUGIN_PATH. */
export const PLUGIN_PATH = join(DOKKU_LIB_ROOT, 'plugins');
/** Folder holding the compiled emulator (main.js lives here). */
export const EMULATOR_DIR = dirname(fileURLToPath(import.meta.url));

/** What the lab writes to /var/lib/docker/lab.json for each host. */
export interface LabConfig {
  /** Host name in the inventory, e.g. "old". */
  host: string;
  /** The host's address on the lab bridge. */
  address: string;
  /** Shared image "registry" folder: `<repo>/<tag>/` holds an image's file tree. */
  registry: string;
  /** Folder of the PostgreSQL server binaries (initdb, pg_ctl, postgres). */
  pgBin: string;
  /** Full PostgreSQL version of those binaries, e.g. "15.18". */
  pgVersion: string;
}

let labConfigCache: LabConfig | undefined;

/** The host's lab.json; throws when not inside a lab host. */
export function labConfig(): LabConfig {
  if (labConfigCache === undefined) {
    const raw: unknown = JSON.parse(readFileSync(join(ENGINE_ROOT, 'lab.json'), 'utf8'));
    const o = (raw ?? {}) as Record<string, unknown>;
    const s = (k: string, d = ''): string => (typeof o[k] === 'string' ? (o[k] as string) : d);
    labConfigCache = {
      host: s('host', 'dokku'),
      address: s('address', '127.0.0.1'),
      registry: s('registry', '/var/lib/ferry-lab/registry'),
      pgBin: s('pgBin'),
      pgVersion: s('pgVersion'),
    };
  }
  return labConfigCache;
}

// ---------------------------------------------------------------- output

/** Where stderr-bound lines go; build capture (§0.5) merges them into stdout. */
let errToStdout = false;

/** Make warn/fail write to stdout, as Dokku's build capture (`exec &> >(tee …)`) does. */
export function mergeStderrIntoStdout(on = true): void {
  errToStdout = on;
}

function out(text: string): void {
  process.stdout.write(text);
}
function err(text: string): void {
  if (errToStdout) process.stdout.write(text);
  else process.stderr.write(text);
}

/** True when DOKKU_QUIET_OUTPUT is set (global --quiet). */
export function isQuiet(): boolean {
  const v = process.env.DOKKU_QUIET_OUTPUT;
  return v !== undefined && v !== '';
}

/** `-----> msg` on stdout. */
export function info1(msg: string): void {
  out(`-----> ${msg}\n`);
}
/** `=====> msg` on stdout. */
export function info2(msg: string): void {
  out(`=====> ${msg}\n`);
}
/** Seven spaces then msg, on stdout. */
export function verbose(msg: string): void {
  out(`       ${msg}\n`);
}
/** Quiet-able variants: print nothing under --quiet. */
export function info1Quiet(msg: string): void {
  if (!isQuiet()) info1(msg);
}
export function info2Quiet(msg: string): void {
  if (!isQuiet()) info2(msg);
}
export function verboseQuiet(msg: string): void {
  if (!isQuiet()) verbose(msg);
}
/** ` !     msg` on stderr. */
export function warn(msg: string): void {
  err(` !     ${msg}\n`);
}
/** ` !     msg` on stdout (Go's LogExclaim). */
export function exclaim(msg: string): void {
  out(` !     ${msg}\n`);
}
/** Plain line on stdout. */
export function println(msg = ''): void {
  out(`${msg}\n`);
}
/** Plain line on stderr (or stdout under build capture). */
export function eprintln(msg = ''): void {
  err(`${msg}\n`);
}

/** Thrown to end the command with an exit code; main.ts turns it into the process exit code. */
export class DokkuExit extends Error {
  readonly code: number;
  constructor(code: number, message = '') {
    super(message);
    this.name = 'DokkuExit';
    this.code = code;
  }
}

/** Print ` !     msg` (stderr) and end the command with `code`. */
export function fail(msg: string, code = 1): never {
  warn(msg);
  throw new DokkuExit(code, msg);
}

/** End the command with `code`, printing nothing. */
export function exit(code: number): never {
  throw new DokkuExit(code);
}

// ---------------------------------------------------------------- version

/** The emulated Dokku version (no `v`), from STABLE_VERSION or VERSION; '' when unknown. */
export function dokkuVersion(): string {
  for (const f of ['STABLE_VERSION', 'VERSION']) {
    const p = join(DOKKU_LIB_ROOT, f);
    if (existsSync(p)) {
      const v = readFileSync(p, 'utf8').trim().replace(/^v/, '');
      if (v !== '') return v;
    }
  }
  return '';
}

/** Compare dotted versions numerically; returns <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split(/[.-]/);
  const pb = b.replace(/^v/, '').split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.parseInt(pa[i] ?? '0', 10) || 0;
    const y = Number.parseInt(pb[i] ?? '0', 10) || 0;
    if (x !== y) return x - y;
  }
  return 0;
}

/** True when the installed (emulated) Dokku is at least `v`. Unknown version counts as newest. */
export function versionAtLeast(v: string): boolean {
  const cur = dokkuVersion();
  if (cur === '') return true;
  return compareVersions(cur, v) >= 0;
}

// ---------------------------------------------------------------- users and files

interface Ids {
  uid: number;
  gid: number;
}
const idCache = new Map<string, Ids | null>();

/** uid/gid of a user from /etc/passwd, or null when it does not exist. */
export function userIds(name: string): Ids | null {
  const hit = idCache.get(name);
  if (hit !== undefined) return hit;
  let found: Ids | null = null;
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] !== undefined && f[3] !== undefined) {
        found = { uid: Number(f[2]), gid: Number(f[3]) };
        break;
      }
    }
  } catch {
    found = null;
  }
  idCache.set(name, found);
  return found;
}

/**
 * chown dokku:dokku. Dokku re-executes itself as the dokku user; the emulator
 * instead stays root and chowns what it writes (cheaper, same result on disk).
 */
export function chownDokku(path: string, recursive = false): void {
  const ids = userIds('dokku');
  if (ids === null || process.getuid?.() !== 0) return;
  try {
    chownSync(path, ids.uid, ids.gid);
    if (recursive && statSync(path).isDirectory()) {
      for (const e of readdirSync(path)) chownDokku(join(path, e), true);
    }
  } catch {
    // a vanished file is not worth failing a command for
  }
}

/** mkdir -p with mode, chowning every directory it creates to dokku. */
export function mkdirDokku(path: string, mode = 0o755): void {
  if (existsSync(path)) return;
  mkdirDokku(dirname(path), 0o755);
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    // Dokku commands run in parallel (the seed creates apps at once): another
    // one may have made it between the check and here.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  chmodSync(path, mode);
  chownDokku(path);
}

/** Write a file atomically (tmp + rename), with mode, owned by dokku. */
export function writeFileDokku(path: string, data: string | Buffer, mode = 0o644): void {
  mkdirDokku(dirname(path));
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  chownDokku(tmp);
  renameSync(tmp, path);
}

/**
 * Could the dokku user read this file? Dokku re-executes itself as dokku, so
 * a file only root may read (a `mktemp` file, 0600) is refused with EACCES
 * where the emulator, running as root, could read it.
 */
export function readableByDokku(path: string): boolean {
  const ids = userIds('dokku');
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return false;
  }
  if (ids === null) return true;
  if (st.uid === ids.uid) return (st.mode & 0o400) !== 0;
  if (st.gid === ids.gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/** Read a file, or return `fallback` when it does not exist. */
export function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

// ---------------------------------------------------------------- apps

/**
 * `IsValidAppName`, the rule a new app's name must pass (common.go). Since
 * 0.38.2 lowercase alphanumerics, dots and hyphens; before, anything but
 * slashes, colons, underscores and upper case after a lowercase alphanumeric.
 */
export function appNameError(app: string): string | null {
  if (versionAtLeast('0.38.2')) {
    if (/^[a-z0-9][a-z0-9.-]*$/.test(app)) return null;
    return 'App name must begin with lowercase alphanumeric character, and may only contain lowercase alphanumerics, dots, and hyphens';
  }
  if (/^[a-z0-9][^/:_A-Z]*$/.test(app)) return null;
  return 'App name must begin with lowercase alphanumeric character, and cannot include uppercase characters, colons, or underscores';
}

/**
 * `isValidAppNameOld` / `IsValidAppNameOld` (common.go): the looser rule an
 * existing app's name may pass instead, so apps named before a rule change
 * (e.g. `test_app`) keep working. 0.38.2+: `^[a-z0-9][a-z0-9._-]*$`; before:
 * `^[a-z0-9][^/:A-Z]*$`.
 */
export function oldAppNameOk(app: string): boolean {
  return versionAtLeast('0.38.2')
    ? /^[a-z0-9][a-z0-9._-]*$/.test(app)
    : /^[a-z0-9][^/:A-Z]*$/.test(app);
}

/** True when $DOKKU_ROOT/<app> is a directory. */
export function appExists(app: string): boolean {
  if (app === '' || app.includes('/')) return false;
  try {
    return statSync(join(DOKKU_ROOT, app)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Go `VerifyAppName`: missing name (1); a name failing both the new and the
 * old rule (1, with the new rule's message); missing app (20).
 */
export function verifyApp(app: string | undefined): asserts app is string {
  if (app === undefined || app === '') fail('Please specify an app to run the command on');
  const bad = appNameError(app);
  if (bad !== null && !oldAppNameOk(app)) fail(bad);
  if (!appExists(app)) fail(`App ${app} does not exist`, 20);
}

/** Bash `verify_app_name`: any failure is exit 20 with "App <x> does not exist". */
export function verifyAppBash(app: string | undefined): asserts app is string {
  const a = app ?? '';
  if (!appExists(a)) fail(`App ${a} does not exist`, 20);
}

/** apps:list discovery: directories of $DOKKU_ROOT (symlinks followed), byte order, no dot start. */
export function listApps(): string[] {
  let names: string[];
  try {
    names = readdirSync(DOKKU_ROOT);
  } catch {
    return [];
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // names starting with an upper-case letter are skipped since 0.36.7 (common.go UnfilteredDokkuApps)
  const skipUpper = versionAtLeast('0.36.7');
  return names.filter((n) => {
    if (n.startsWith('.') || (skipUpper && /^[A-Z]/.test(n))) return false;
    try {
      return statSync(join(DOKKU_ROOT, n)).isDirectory();
    } catch {
      return false;
    }
  });
}

// ---------------------------------------------------------------- ENV files

/** ENV file of an app, for the emulated version: ≥0.38 in config/<app>/ENV, before in $DOKKU_ROOT/<app>/ENV. */
export function appEnvPath(app: string): string {
  if (app === '--global') return globalEnvPath();
  return versionAtLeast('0.38.0')
    ? join(DOKKU_LIB_ROOT, 'config', app, 'ENV')
    : join(DOKKU_ROOT, app, 'ENV');
}

/** Global ENV file for the emulated version. */
export function globalEnvPath(): string {
  return versionAtLeast('0.38.0')
    ? join(DOKKU_LIB_ROOT, 'config', '--global', 'ENV')
    : join(DOKKU_ROOT, 'ENV');
}

/** Go strconv.Atoi on a 64-bit platform: the normalised integer text, or null. */
export function atoi(v: string): string | null {
  if (!/^[+-]?[0-9]+$/.test(v)) return null;
  const n = BigInt(v);
  if (n > 9223372036854775807n || n < -9223372036854775808n) return null;
  return n.toString();
}

/** godotenv doubleQuoteEscape (v1.2.0 and v1.5.1 agree). */
export function envEscape(value: string): string {
  let s = value;
  for (const c of ['\\', '\n', '\r', '"', '!', '$', '`']) {
    const rep = c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\${c}`;
    s = s.split(c).join(rep);
  }
  return s;
}

/**
 * godotenv.Marshal: sorted `K=V` lines; v1.5.1 writes integers unquoted (normalised),
 * v1.2.0 quotes everything. Returned without the trailing newline Write adds.
 */
export function marshalEnv(env: Map<string, string>, v15 = true): string {
  const lines: string[] = [];
  for (const [k, v] of env) {
    const n = v15 ? atoi(v) : null;
    lines.push(n !== null ? `${k}=${n}` : `${k}="${envEscape(v)}"`);
  }
  lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return lines.join('\n');
}

/** The bytes godotenv.Write puts on disk: v1.5.1 adds a final newline, v1.2.0 does not. */
export function formatEnvFile(env: Map<string, string>, v15 = true): string {
  const body = marshalEnv(env, v15);
  return v15 ? `${body}\n` : body;
}

function expandVariables(v: string, m: Map<string, string>): string {
  return v.replace(/(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?/g, (all, bs, _d, paren, name) => {
    if (bs === '\\' || paren === '(') return all.slice(1);
    if (name !== undefined && name !== '') return m.get(name) ?? process.env[name] ?? '';
    return all;
  });
}

/** Parse env file text as godotenv v1.5.1 does (export prefix, quotes, escapes, comments, expansion). */
export function parseEnv(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let src = text.replace(/\r\n/g, '\n');
  while (src.length > 0) {
    // skip blank lines and comments
    const lead = /^[\s]*/.exec(src);
    src = src.slice(lead ? lead[0].length : 0);
    if (src.length === 0) break;
    if (src.startsWith('#')) {
      const nl = src.indexOf('\n');
      src = nl < 0 ? '' : src.slice(nl + 1);
      continue;
    }
    if (src.startsWith('export ')) src = src.slice(7).trimStart();
    const km = /^([A-Za-z0-9_.-]+)[ \t]*[=:][ \t]*/.exec(src);
    if (km === null) {
      const nl = src.indexOf('\n');
      src = nl < 0 ? '' : src.slice(nl + 1);
      continue;
    }
    const key = km[1] ?? '';
    src = src.slice(km[0].length);
    let value: string;
    const q = src[0];
    if (q === '"' || q === "'") {
      let i = 1;
      while (i < src.length) {
        if (src[i] === '\\' && q === '"') {
          i += 2;
          continue;
        }
        if (src[i] === q) break;
        i++;
      }
      const inner = src.slice(1, i);
      src = src.slice(i + 1);
      const nl = src.indexOf('\n');
      src = nl < 0 ? '' : src.slice(nl + 1);
      if (q === "'") {
        value = inner;
      } else {
        const unescaped = inner.replace(/\\([^$])/g, (_a, c: string) =>
          c === 'n' ? '\n' : c === 'r' ? '\r' : c,
        );
        value = expandVariables(unescaped, m);
      }
    } else {
      const nl = src.indexOf('\n');
      let line = nl < 0 ? src : src.slice(0, nl);
      src = nl < 0 ? '' : src.slice(nl + 1);
      const hash = line.search(/[ \t]#/);
      if (hash >= 0) line = line.slice(0, hash);
      value = expandVariables(line.trim(), m);
    }
    m.set(key, value);
  }
  return m;
}

/** Read an ENV file; a missing file is an empty env. */
export function readEnv(path: string): Map<string, string> {
  if (!existsSync(path)) return new Map();
  return parseEnv(readFileSync(path, 'utf8'));
}

/** Write an ENV file in the godotenv format of the emulated version; 0600 dokku:dokku. */
export function writeEnv(path: string, env: Map<string, string>): void {
  writeFileDokku(path, formatEnvFile(env, versionAtLeast('0.37.8')), 0o600);
}

// ---------------------------------------------------------------- properties

/** Path of a property file: config/<plugin>/<app>/<key>. */
export function propertyPath(plugin: string, app: string, key: string): string {
  return join(DOKKU_LIB_ROOT, 'config', plugin, app, key);
}

/** A property's value, or '' when unset. */
export function getProperty(plugin: string, app: string, key: string): string {
  return readOr(propertyPath(plugin, app, key), '');
}

/** True when the property file exists. */
export function hasProperty(plugin: string, app: string, key: string): boolean {
  return existsSync(propertyPath(plugin, app, key));
}

/** Write a property (no newline), file 0600, dirs 0755, dokku:dokku. */
export function setProperty(plugin: string, app: string, key: string, value: string): void {
  writeFileDokku(propertyPath(plugin, app, key), value, 0o600);
}

/** Remove a property. */
export function deleteProperty(plugin: string, app: string, key: string): void {
  rmSync(propertyPath(plugin, app, key), { force: true });
}

/**
 * common.CommandPropertySet: verify the app (unless `--global`), refuse a
 * property that is not global for `--global`, list the valid ones for an
 * unknown property, then set (`=====> Setting P to V`) or, for an empty
 * value, unset it (`=====> Unsetting P`), both quiet-able.
 */
export function commandPropertySet(
  plugin: string,
  app: string,
  property: string,
  value: string,
  valid: string[],
  validGlobal: string[],
): void {
  if (app !== '--global') verifyApp(app);
  if (app === '--global' && !validGlobal.includes(property))
    fail('Property cannot be specified globally');
  if (property === '') fail('No property specified');
  const all = [...new Set([...valid, ...validGlobal])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (!all.includes(property)) {
    fail(`Invalid property specified, valid properties include: ${all.join(', ')}`);
  }
  if (value !== '') {
    if (!isQuiet()) println(`=====> Setting ${property} to ${value}`);
    setProperty(plugin, app, property, value);
  } else {
    if (!isQuiet()) println(`=====> Unsetting ${property}`);
    deleteProperty(plugin, app, property);
  }
}

/** Global property (Dokku stores them under the app name `--global`). */
export function getGlobalProperty(plugin: string, key: string): string {
  return getProperty(plugin, '--global', key);
}

// ---------------------------------------------------------------- sub-invocation

/** Options of runDokku. */
export interface RunDokkuOptions {
  /** Extra environment for the child. */
  env?: NodeJS.ProcessEnv;
  /** Capture stdout/stderr instead of passing them through. */
  capture?: boolean;
  /** Data for the child's stdin (otherwise stdin is inherited unless capture). */
  input?: string | Buffer;
}

/** Result of runDokku. */
export interface RunDokkuResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run `dokku ARGS…` as a sub-process of the emulator, as Dokku's plugins do. */
export function runDokku(args: string[], opts: RunDokkuOptions = {}): RunDokkuResult {
  const env = { ...process.env, ...(opts.env ?? {}) };
  delete env.SSH_ORIGINAL_COMMAND;
  const capture = opts.capture === true;
  const stdin = opts.input !== undefined ? 'pipe' : capture ? 'ignore' : 'inherit';
  // Under build capture our stderr is already merged; keep the child's in line with it.
  const stderrMode = capture ? 'pipe' : errToStdout ? 'pipe' : 'inherit';
  const r = spawnSync(process.execPath, [join(EMULATOR_DIR, 'main.js'), ...args], {
    env,
    input: opts.input,
    stdio: [stdin, capture ? 'pipe' : 'inherit', stderrMode],
    maxBuffer: 1024 * 1024 * 1024,
  });
  const stderr = r.stderr ? r.stderr.toString() : '';
  if (!capture && errToStdout && stderr !== '') process.stdout.write(stderr);
  return {
    status: r.status ?? 1,
    stdout: r.stdout ? r.stdout.toString() : '',
    stderr,
  };
}

// ---------------------------------------------------------------- commands, plugins, triggers

/** A subcommand: gets the arguments after the command name; returns the exit code (void = 0). */
// biome-ignore lint/suspicious/noConfusingVoidType: a command may simply return (exit 0)
export type Command = (args: string[]) => Promise<number | void>;

/**
 * A Go `<plugin>:report [APP|--global] [--format json] [--FLAG]` command
 * (§0.6): every app when none is named, each app verified, one report per
 * subject. With no app at all: a warning and exit 0 since 0.35.16, a failure
 * before (common.go NoAppsExist). `--global` is a subject since 0.38.0; before
 * it is one more info flag. `info` gives a subject's flags and values;
 * `legacyPrefix` is renderReport's; the 0.38.8 JSON/format rules apply from then.
 */
export function reportCommand(
  plugin: string,
  info: (subject: string, global: boolean) => Record<string, string>,
  legacyPrefix: boolean,
): Command {
  return async (args) => {
    const r = parseReportArgs(args);
    if (r.global && !versionAtLeast('0.38.0')) {
      r.global = false;
      r.flags.push('--global');
    }
    const subjects = r.global ? ['--global'] : r.app !== '' ? [r.app] : listApps();
    if (subjects.length === 0) {
      if (!versionAtLeast('0.35.16')) fail("You haven't deployed any applications yet");
      warn("You haven't deployed any applications yet");
      return;
    }
    for (const s of subjects) {
      if (s !== '--global') verifyApp(s);
      const global = s === '--global';
      const out = renderReport(
        plugin,
        s,
        info(s, global),
        r.flags,
        r.format,
        isQuiet(),
        legacyPrefix,
        versionAtLeast('0.38.8'),
      );
      if (!out.ok) fail(out.error);
      process.stdout.write(out.text);
    }
  };
}

/**
 * A bash `<plugin>:report [APP] [--FLAG]` (cmd-<plugin>-report): every app
 * when none is named (a failing app does not stop the others), else one;
 * `flagMap` gives a subject's `--flag` and value pairs in the plugin's order.
 */
export function bashReportCommand(
  plugin: string,
  flagMap: (app: string) => Array<[string, string]>,
): Command {
  return async (args) => {
    let app = args[0] ?? '';
    let infoFlag = args[1] ?? '';
    if (app.startsWith('--')) {
      infoFlag = app;
      app = '';
    }
    const one = (a: string): void => {
      verifyAppBash(a);
      const out = renderBashReport(a, plugin, flagMap(a), infoFlag, isQuiet());
      if (!out.ok) fail(out.error);
      process.stdout.write(out.text);
    };
    if (app !== '') {
      one(app);
      return;
    }
    // `for app in $(dokku_apps)`: dokku_apps fails in its subshell, the loop runs zero times
    const apps = listApps();
    if (apps.length === 0) warn("You haven't deployed any applications yet");
    for (const a of apps) {
      try {
        one(a);
      } catch (e) {
        if (!(e instanceof DokkuExit)) throw e;
      }
    }
  };
}

/** What a Go subcommand's flag set accepts (spf13/pflag, as Dokku's Go plugins use it). */
export interface FlagSpec {
  /** `--name value` / `--name=value` flags, with their defaults. */
  strings?: Record<string, string>;
  /** `--name` flags. */
  bools?: string[];
}

/** Parsed flags and the operands around them (pflag parses them interspersed). */
export interface ParsedFlags {
  values: Record<string, string>;
  bools: Set<string>;
  args: string[];
}

/**
 * pflag with ExitOnError: flags anywhere, `--` ends them; `-h`/`--help`
 * prints `Usage of <cmd>:` and exits 0; an unknown flag or a string flag
 * without its value prints pflag's error and `Usage of <cmd>:` and exits 2.
 */
export function parseFlags(cmd: string, argv: string[], spec: FlagSpec): ParsedFlags {
  const values: Record<string, string> = { ...(spec.strings ?? {}) };
  const bools = new Set<string>();
  const args: string[] = [];
  const usage = (code: number, message?: string): never => {
    if (message !== undefined) eprintln(message);
    eprintln(`Usage of ${cmd}:`);
    throw new DokkuExit(code);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-h' || a === '--help') usage(0);
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    if (!a.startsWith('--')) usage(2, `unknown shorthand flag: '${a.charAt(1)}' in ${a}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (spec.bools?.includes(name)) {
      bools.add(name);
      continue;
    }
    if (spec.strings !== undefined && name in spec.strings) {
      if (eq > 0) values[name] = a.slice(eq + 1);
      else if (i + 1 < argv.length) values[name] = argv[++i] ?? '';
      else usage(2, `flag needs an argument: --${name}`);
      continue;
    }
    usage(2, `unknown flag: --${name}`);
  }
  return { values, bools, args };
}

/** A trigger handler implemented inside the emulator; same shape as a command. */
// biome-ignore lint/suspicious/noConfusingVoidType: a trigger may simply return (exit 0)
export type Trigger = (args: string[]) => Promise<number | void>;

/**
 * What a plugin module of the emulator exports. `commands` maps full command
 * names (`postgres:create`); `triggers` maps trigger names (`pre-delete`).
 */
export interface PluginModule {
  commands: Record<string, Command>;
  triggers?: Record<string, Trigger>;
}

/** Names of the enabled plugins, in plugn's glob order. */
export function enabledPlugins(): string[] {
  try {
    return readdirSync(join(PLUGIN_PATH, 'enabled')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch {
    return [];
  }
}

/** True when /var/lib/dokku/plugins/enabled/<name> exists. */
export function pluginEnabled(name: string): boolean {
  return existsSync(join(PLUGIN_PATH, 'enabled', name));
}

/**
 * Load the emulator's own module for a plugin: core/<name>.js (core plugins),
 * else plugins/<name>.js (the others); null when there is none.
 */
export async function loadPluginModule(name: string): Promise<PluginModule | null> {
  if (!/^[a-z0-9_-]+$/.test(name)) return null;
  // core/ first: core/plugin.js layers the per-release behaviour over plugins/plugin.js
  for (const dir of ['core', 'plugins']) {
    const file = join(EMULATOR_DIR, dir, `${name}.js`);
    if (!existsSync(file)) continue;
    const mod = (await import(file)) as Partial<PluginModule>;
    if (mod.commands === undefined) return null;
    return { commands: mod.commands, triggers: mod.triggers };
  }
  return null;
}

/**
 * plugn trigger: for each enabled plugin (sorted), run its executable
 * `<plugin>/<name>` if present, else the emulator's in-process handler from
 * plugins/<plugin>.js `triggers[name]`. Stops at the first failure and returns its code.
 */
export async function runTrigger(name: string, ...args: string[]): Promise<number> {
  for (const plugin of enabledPlugins()) {
    const exe = join(PLUGIN_PATH, 'enabled', plugin, name);
    let isExe = false;
    try {
      const st = statSync(exe);
      isExe = st.isFile() && (st.mode & 0o111) !== 0;
    } catch {
      isExe = false;
    }
    if (isExe) {
      const r = spawnSync(exe, args, {
        stdio: ['inherit', 'inherit', errToStdout ? 'pipe' : 'inherit'],
        env: {
          ...process.env,
          PLUGIN_PATH,
          PLUGIN_AVAILABLE_PATH: join(PLUGIN_PATH, 'available'),
          PLUGIN_ENABLED_PATH: join(PLUGIN_PATH, 'enabled'),
          PLUGIN_CORE_PATH: join(DOKKU_LIB_ROOT, 'core-plugins'),
          DOKKU_ROOT,
          DOKKU_LIB_ROOT,
        },
      });
      if (errToStdout && r.stderr) process.stdout.write(r.stderr);
      const code = r.status ?? 1;
      if (code !== 0) return code;
      continue;
    }
    const mod = await loadPluginModule(plugin);
    const handler = mod?.triggers?.[name];
    if (handler !== undefined) {
      try {
        const code = (await handler(args)) ?? 0;
        if (code !== 0) return code;
      } catch (e) {
        if (e instanceof DokkuExit) {
          if (e.code !== 0) return e.code;
        } else throw e;
      }
    }
  }
  return 0;
}
