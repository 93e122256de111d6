/**
 * What the official datastore plugins share: dokku-postgres, dokku-mysql,
 * dokku-redis and dokku-memcached ship one identical `common-functions` (and
 * subcommand scripts that differ only in their help text), and differ in
 * their `config` (names, ports, aliases, the unimplemented subcommands) and
 * `functions` (create, the container, export, import, connect, the URL).
 * This module is that common part; each plugin module gives a
 * {@link ServiceSpec} for the rest and gets its `commands` and `triggers`
 * from {@link ServicePlugin}.
 *
 * Read at: dokku-postgres 1.48.0, dokku-mysql 1.44.3, dokku-redis 1.43.0,
 * dokku-memcached 1.37.4 (`common-functions`, `subcommands/*`, `install`,
 * `pre-start`, `pre-restore`, `pre-delete`).
 *
 * The engine side (what the plugins do with docker):
 * - a service container is a record in /var/lib/docker/containers/<id>/
 *   (kind `<plugin>-service`) whose process is the real server, started in a
 *   PID namespace of its own as the image's user, on 127.0.0.1 and a host
 *   port of its own;
 * - the link alias `dokku-<plugin>-<svc>` resolves through
 *   /var/lib/docker/dns.json (`{"alias": "127.0.0.1:<port>"}`);
 * - `<plugin>:expose` runs the ambassador container as a real TCP forwarder
 *   (plugins/ambassador.js) on the exposed host port of every interface.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ContainerRecord,
  containerLogTail,
  containerRunning,
  containerStatus,
  copyTree,
  imageExists,
  imagePath,
  listContainers,
  readContainer,
} from '../engine.js';
import {
  appEnvPath,
  type Command,
  chownDokku,
  DOKKU_LIB_ROOT,
  DokkuExit,
  EMULATOR_DIR,
  ENGINE_ROOT,
  eprintln,
  fail,
  info1,
  info2,
  info2Quiet,
  isQuiet,
  labConfig,
  mkdirDokku,
  PLUGIN_PATH,
  println,
  readEnv,
  runDokku,
  type Trigger,
  userIds,
  verbose,
  verboseQuiet,
  verifyAppBash,
  warn,
  writeFileDokku,
} from '../lib.js';

/** Where the emulated link aliases resolve (see the module comment). */
export const DNS_FILE = join(ENGINE_ROOT, 'dns.json');

// ---------------------------------------------------------------- small helpers

/** A file minus one trailing newline; '' when missing. */
export function readTrim(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\n$/, '');
  } catch {
    return '';
  }
}

/** Read a file, or `fallback` when it does not exist. */
export function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** `$(cat FILE)`: the file minus trailing newlines; cat's complaint on stderr when missing. */
export function catSubst(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\n+$/, '');
  } catch {
    eprintln(`cat: ${path}: No such file or directory`);
    return '';
  }
}

/** Write as the plugins do (`echo x >file` as dokku): 0644 dokku:dokku unless told. */
export function writeServiceFile(path: string, data: string, mode = 0o644): void {
  writeFileSync(path, data, { mode });
  chmodSync(path, mode);
  chownDokku(path);
}

/** Sort in byte order (bash globs and `sort` under LC_ALL=C). */
export function byteSort(list: string[]): string[] {
  return list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `openssl rand -hex N`. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** /proc/<pid>/stat start time, '' when the process is gone. */
export function pidStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** The first child of a process (the unshare shim's PID-1 server), or 0. */
export function childOf(pid: number): number {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    const k = Number(kids[0]);
    return Number.isFinite(k) && k > 0 ? k : 0;
  } catch {
    return 0;
  }
}

/** `read -rp "> "`: the prompt on stderr, one line from stdin. */
export function readLine(): string {
  process.stderr.write('> ');
  const buf = Buffer.alloc(1);
  let line = '';
  for (;;) {
    let n = 0;
    try {
      n = readSync(0, buf);
    } catch {
      break;
    }
    if (n === 0) break;
    const ch = buf.toString('utf8');
    if (ch === '\n') break;
    line += ch;
  }
  return line;
}

/** A sub-process's result. */
export interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run a program as an OS user (the image's user inside a container); root only. */
export function runAs(
  user: string,
  argv: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): Ran {
  const uid = process.getuid?.() ?? -1;
  const me = userIds(user);
  let file: string;
  let args: string[];
  if (uid === 0) {
    file = 'runuser';
    args = ['-u', user, '--', ...argv];
  } else if (me !== null && uid === me.uid) {
    file = argv[0] ?? '';
    args = argv.slice(1);
  } else {
    return {
      status: 126,
      stdout: '',
      stderr: `the emulator must run as root to act as the ${user} user\n`,
    };
  }
  const r = spawnSync(file, args, {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', ...env },
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    cwd: '/',
  });
  return {
    status: r.status ?? 1,
    stdout: r.stdout?.toString() ?? '',
    stderr: r.stderr?.toString() ?? '',
  };
}

/** Spawn a client with our stdio; resolves to its exit code (127 when it cannot start). */
export function spawnInherit(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin: 'inherit' | 'ignore',
): Promise<number> {
  return new Promise((res) => {
    const child = spawn(file, args, { env, stdio: [stdin, 'inherit', 'inherit'] });
    child.on('error', () => res(127));
    child.on('close', (code) => res(code ?? 1));
  });
}

/**
 * Dokku's `suppress_output`: run `fn` with our stdout and stderr held back,
 * and write them out only when it fails (a non-zero code or an exit).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: the commands and service functions it wraps return void for 0
export async function suppressOutput(fn: () => Promise<number | void>): Promise<number> {
  const held: [NodeJS.WriteStream, string | Uint8Array][] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const hold =
    (stream: NodeJS.WriteStream) =>
    (chunk: string | Uint8Array): boolean => {
      held.push([stream, chunk]);
      return true;
    };
  process.stdout.write = hold(process.stdout) as typeof process.stdout.write;
  process.stderr.write = hold(process.stderr) as typeof process.stderr.write;
  let code = 0;
  try {
    code = (await fn()) ?? 0;
  } catch (e) {
    if (!(e instanceof DokkuExit)) throw e;
    code = e.code;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  if (code !== 0) {
    for (const [stream, chunk] of held) (stream === process.stdout ? out : err)(chunk);
  }
  return code;
}

/** Server binaries and versions the lab found on the machine (lab.json, written by test/lab/lab.ts). */
export function labBinary(key: string): string {
  try {
    const o = JSON.parse(readFileSync(join(ENGINE_ROOT, 'lab.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const v = o[key];
    return typeof v === 'string' ? v : '';
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- flags (service_parse_args)

/** The flags of service_parse_args, after getopts "na:c:C:d:i:I:m:n:N:p:P:q:R:r:s:S:u:". */
export interface ServiceFlags {
  alias?: string;
  configOptions?: string;
  customEnv?: string;
  database?: string;
  image?: string;
  imageVersion?: string;
  memory?: string;
  noRestart?: boolean;
  initialNetwork?: string;
  password?: string;
  postCreateNetwork?: string;
  querystring?: string;
  restartApps?: string;
  rootPassword?: string;
  shmSize?: string;
  postStartNetwork?: string;
  user?: string;
}

const LONG_TO_SHORT: Record<string, string> = {
  '--alias': '-a',
  '--config-options': '-c',
  '--custom-env': '-C',
  '--database': '-d',
  '--image-version': '-I',
  '--initial-network': '-N',
  '--image': '-i',
  '--memory': '-m',
  '--no-restart': '-n',
  '--password': '-p',
  '--post-create-network': '-P',
  '--post-start-network': '-S',
  '--querystring': '-q',
  '--restart-apps': '-R',
  '--root-password': '-r',
  '--shm-size': '-s',
  '--user': '-u',
};
const WITH_VALUE = new Set('acCdiImNpPqRrsSu'.split(''));

/** service_parse_args (common-functions): long flags mapped to short ones, then getopts. */
export function parseServiceArgs(argv: string[]): ServiceFlags {
  const args = argv.map((a) => LONG_TO_SHORT[a] ?? a);
  const f: ServiceFlags = {};
  let i = 0;
  // getopts stops at the first argument that is not an option
  while (i < args.length) {
    const a = args[i] ?? '';
    if (a === '--') break;
    if (!a.startsWith('-') || a === '-') break;
    let j = 1;
    i++;
    while (j < a.length) {
      const c = a[j] ?? '';
      j++;
      let val: string | undefined;
      if (WITH_VALUE.has(c)) {
        if (j < a.length) {
          val = a.slice(j);
          j = a.length;
        } else {
          val = args[i];
          i++;
        }
        if (val === undefined) continue;
      }
      const v = val ?? '';
      switch (c) {
        case 'a':
          f.alias = v.toUpperCase().replace(/_URL$/, '');
          break;
        case 'c':
          f.configOptions = v;
          break;
        case 'C':
          f.customEnv = v;
          break;
        case 'd':
          f.database = v;
          break;
        case 'i':
          f.image = v;
          break;
        case 'I':
          f.imageVersion = v;
          break;
        case 'm':
          f.memory = v;
          break;
        case 'n':
          f.noRestart = true;
          break;
        case 'N':
          f.initialNetwork = v;
          break;
        case 'p':
          f.password = v;
          break;
        case 'P':
          f.postCreateNetwork = v;
          break;
        case 'q':
          f.querystring = v.replace(/^\?/, '');
          break;
        case 'R':
          f.restartApps = v;
          break;
        case 'r':
          f.rootPassword = v;
          break;
        case 's':
          f.shmSize = v;
          break;
        case 'S':
          f.postStartNetwork = v;
          break;
        case 'u':
          f.user = v;
          break;
        default:
          // unknown letters: reported by getopts, ignored by the plugin
          break;
      }
    }
  }
  return f;
}

// ---------------------------------------------------------------- engine: images

/** `docker image pull IMAGE`: copy the tree from the lab registry. Prints docker's lines. */
export function pullImage(image: string): boolean {
  const at = image.lastIndexOf(':');
  const repo = image.slice(0, at);
  const tag = image.slice(at + 1);
  const src = join(labConfig().registry, repo, tag);
  const library = repo.includes('/') ? repo : `library/${repo}`;
  if (!existsSync(src)) {
    eprintln(
      `Error response from daemon: manifest for ${image} not found: manifest unknown: manifest unknown`,
    );
    return false;
  }
  println(`${tag}: Pulling from ${library}`);
  const dst = imagePath(image);
  copyTree(src, dst);
  // the engine's folders belong to dokku (deploys run as dokku write app images beside these)
  for (let d = dst; d.startsWith(`${join(ENGINE_ROOT, 'image')}/`); d = dirname(d)) chownDokku(d);
  chownDokku(dst, true);
  const digest = spawnSync('sh', [
    '-c',
    'cd "$1" && find . -type f | sort | xargs -r cat | sha256sum',
    'sh',
    src,
  ]);
  const hex = (digest.stdout?.toString() ?? '').split(' ')[0] || randomBytes(32).toString('hex');
  println(`Digest: sha256:${hex}`);
  println(`Status: Downloaded newer image for ${image}`);
  println(`docker.io/${library}:${tag}`);
  return true;
}

// ---------------------------------------------------------------- engine: containers

/** A service container: the engine's record plus what its server needs. */
export interface ServiceContainer extends ContainerRecord {
  /** `<plugin>-service`. */
  kind: string;
  service: string;
  ip: string;
  dataDir: string;
  hostname: string;
  labels: Record<string, string>;
  binds: string[];
  configOptions: string;
  exitCode: number;
}

/** The ambassador container of an exposed service (`dokku.<plugin>.<svc>.ambassador`). */
export interface AmbassadorContainer extends ContainerRecord {
  kind: 'ambassador';
  /** The link alias it forwards to, resolved through dns.json at each connection. */
  target: string;
  /** The datastore port inside the service container (docker's `-p host:container`). */
  containerPort: number;
  labels: Record<string, string>;
  exitCode: number;
}

export function containerDir(id: string): string {
  return join(ENGINE_ROOT, 'containers', id);
}

export function writeRecord(c: ContainerRecord): void {
  const d = containerDir(c.id);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json.tmp'), JSON.stringify(c, null, 2));
  renameSync(join(d, 'config.json.tmp'), join(d, 'config.json'));
}

function isServiceRecord(c: ContainerRecord): c is ServiceContainer {
  const k = (c as Partial<ServiceContainer>).kind;
  return typeof k === 'string' && k.endsWith('-service');
}

/** `docker container ps -aq --filter name=^/NAME$` (any kind). */
export function recordByName(name: string): ContainerRecord | null {
  for (const c of listContainers()) if (c.name === name) return c;
  return null;
}

function readDns(): Record<string, string> {
  try {
    return JSON.parse(readFileSync(DNS_FILE, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** Where a link alias resolves: `127.0.0.1:<port>`, or null. */
export function resolveAlias(alias: string): string | null {
  return readDns()[alias] ?? null;
}

export function setDns(alias: string, target: string | null): void {
  const m = readDns();
  if (target === null) delete m[alias];
  else m[alias] = target;
  mkdirSync(ENGINE_ROOT, { recursive: true });
  const tmp = `${DNS_FILE}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(m, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, DNS_FILE);
}

export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, host, () => srv.close(() => res(true)));
  });
}

/** A host port no container of this engine holds, and free now, from `first` on. */
export async function allocatePort(first: number): Promise<number> {
  const taken = new Set(listContainers().map((c) => c.port));
  for (let p = first; p < first + 1000; p++) {
    if (!taken.has(p) && (await portFree(p))) return p;
  }
  throw new Error(`no free port from ${first}`);
}

/**
 * Run `fn` holding the engine's allocation lock, so two services created side
 * by side never get the same port or address (mkdir is atomic).
 */
export async function withAllocLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(ENGINE_ROOT, '.service-alloc.lock');
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        // a lock left by a killed command
        if (Date.now() - statSync(lock).mtimeMs > 30_000)
          rmSync(lock, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
      if (Date.now() > until) throw new Error(`could not take ${lock}`);
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The next bridge address no service container holds (docker's default bridge, 172.17.0.0/16). */
export function allocateIp(): string {
  const taken = new Set(
    listContainers()
      .filter(isServiceRecord)
      .map((c) => c.ip),
  );
  for (let n = 2; n < 255; n++) {
    const ip = `172.17.0.${n}`;
    if (!taken.has(ip)) return ip;
  }
  return '172.17.0.254';
}

export function appendLog(c: ContainerRecord, text: string): void {
  const p = join(containerDir(c.id), 'container.log');
  try {
    writeFileSync(p, text, { flag: 'a' });
  } catch {
    // the log is a courtesy
  }
}

/** What a server process needs to start (the container's entrypoint + command). */
export interface Launch {
  /** The image's user the server runs as. */
  user: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

/**
 * Start a server in a PID namespace of its own, as `launch.user`, its output
 * in the container log, and wait until `ready()` says so (60 s at most).
 * A server's PID is 1 in its namespace, as in a container, so a pid file
 * copied from another host names a PID the server takes for stale.
 * Returns the server's pid (in our namespace), or 0 when it did not become ready.
 */
export async function launchServer(
  c: ContainerRecord,
  launch: Launch,
  ready: (pid: number) => Promise<boolean>,
): Promise<number> {
  const log = openSync(join(containerDir(c.id), 'container.log'), 'a');
  const child = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--',
      'setpriv',
      `--reuid=${launch.user}`,
      `--regid=${launch.user}`,
      '--init-groups',
      '--',
      ...launch.argv,
    ],
    {
      detached: true,
      cwd: launch.cwd,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', ...launch.env },
      stdio: ['ignore', log, log],
    },
  );
  closeSync(log);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  child.on('error', () => {
    exited = true;
  });
  const shim = child.pid ?? 0;
  const until = Date.now() + 60_000;
  let pid = 0;
  let ok = false;
  while (!exited && Date.now() < until) {
    if (pid === 0) pid = childOf(shim);
    if (pid !== 0 && (await ready(pid))) {
      ok = true;
      break;
    }
    await sleep(50);
  }
  if (!ok) {
    if (!exited) {
      for (const p of [pid, shim]) {
        try {
          if (p > 0) process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    return 0;
  }
  child.unref();
  return pid;
}

/** True when something accepts TCP connections on 127.0.0.1:port (what dokku/wait checks). */
export function tcpOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection({ host, port });
    const done = (v: boolean) => {
      s.destroy();
      res(v);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Stop a container's process: `signal`, SIGKILL after 10 s (docker stop). */
export async function stopProcess(c: ContainerRecord, signal: NodeJS.Signals): Promise<void> {
  if (!containerRunning(c)) return;
  try {
    process.kill(c.pid, signal);
  } catch {
    // already gone
  }
  const until = Date.now() + 10_000;
  while (containerRunning(c) && Date.now() < until) await sleep(50);
  if (containerRunning(c)) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** `--env-file`: VAR=VAL lines; comments and blank lines skipped; a bare VAR passes ours through. */
export function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of readOr(path).split('\n')) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) {
      const v = process.env[line.trim()];
      if (v !== undefined) env[line.trim()] = v;
    } else if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

// ---------------------------------------------------------------- the plugin

/** What a datastore plugin adds to the shared part: its `config` and `functions`. */
export interface ServiceSpec<C extends ServiceContainer> {
  /** PLUGIN_COMMAND_PREFIX. */
  prefix: string;
  /** PLUGIN_SERVICE. */
  label: string;
  /** PLUGIN_VARIABLE. */
  variable: string;
  /** PLUGIN_DATASTORE_PORTS[0]. */
  port: number;
  /** PLUGIN_DEFAULT_ALIAS. */
  defaultAlias: string;
  /** PLUGIN_ALT_ALIAS. */
  altAlias: string;
  /** PLUGIN_SCHEME. */
  scheme: string;
  /** PLUGIN_CONFIG_SUFFIX. */
  configSuffix: string;
  /** PLUGIN_UNIMPLEMENTED_SUBCOMMANDS. */
  unimplemented: readonly string[];
  /** First host port the lab tries for a server. */
  firstHostPort: number;
  /** Image and tag when the plugin's Dockerfile cannot be read. */
  fallbackImage(): { image: string; version: string };
  /** service_url. */
  url(p: ServicePlugin<C>, svc: string, scheme: string): string;
  /** The plugin's own part of service_create between `touch LINKS` and service_commit_config (passwords, config files). */
  writeCreateFiles(p: ServicePlugin<C>, svc: string, flags: ServiceFlags): void;
  /** service_commit_config's SERVICE_MEMORY, when the plugin defaults it (memcached: 64). */
  defaultMemory?: string;
  /** service_start's `elif` besides the image: may a new container be made (mysql: both passwords set)? */
  canCreate(p: ServicePlugin<C>, svc: string): boolean;
  /** service_create_container. Returns false (exit 1) when the server did not become ready. */
  createContainer(p: ServicePlugin<C>, svc: string): Promise<boolean>;
  /** `docker container start` of this plugin's server (the image's entrypoint). */
  startServer(p: ServicePlugin<C>, c: C): Promise<boolean>;
  /** The image's STOPSIGNAL. */
  stopSignal: NodeJS.Signals;
  /** service_export / service_import / service_connect, when the plugin implements them. */
  exportService?(p: ServicePlugin<C>, svc: string): Promise<number>;
  importService?(p: ServicePlugin<C>, svc: string): Promise<number>;
  connectService?(p: ServicePlugin<C>, svc: string): Promise<number>;
  /** Images the install trigger pulls besides the plugin's own (config: PLUGIN_*_IMAGE). */
  helperImages: readonly string[];
}

/** The helper images every plugin's `config` names (busybox, ambassador, s3backup, wait). */
export const HELPER_IMAGES = [
  'busybox:1.37.0-uclibc',
  'dokku/ambassador:0.8.2',
  'dokku/s3backup:0.18.0',
  'dokku/wait:0.9.3',
] as const;

/** The colours of service_alternative_alias. */
const COLORS = [
  'AQUA',
  'BLACK',
  'BLUE',
  'FUCHSIA',
  'GRAY',
  'GREEN',
  'LIME',
  'MAROON',
  'NAVY',
  'OLIVE',
  'PURPLE',
  'RED',
  'SILVER',
  'TEAL',
  'WHITE',
  'YELLOW',
];

/**
 * One datastore plugin: the functions of `common-functions`, bound to a
 * {@link ServiceSpec}, and the `commands`/`triggers` the emulator dispatches.
 */
export class ServicePlugin<C extends ServiceContainer> {
  /** PLUGIN_DATA_ROOT. */
  readonly root: string;
  /** PLUGIN_CONFIG_ROOT. */
  readonly configRoot: string;

  constructor(readonly spec: ServiceSpec<C>) {
    this.root = join(DOKKU_LIB_ROOT, 'services', spec.prefix);
    this.configRoot = join(DOKKU_LIB_ROOT, 'config', spec.prefix);
  }

  get prefix(): string {
    return this.spec.prefix;
  }

  serviceRoot(svc: string): string {
    return join(this.root, svc);
  }

  /** get_service_name. */
  serviceName(svc: string): string {
    return `dokku.${this.spec.prefix}.${svc}`;
  }

  /** service_dns_hostname. */
  dnsHostname(svc: string): string {
    return this.serviceName(svc).replace(/[._]/g, '-');
  }

  /** Default image and tag: the installed plugin's Dockerfile `FROM`, overridable by env (config). */
  pluginImage(): { image: string; version: string } {
    const from = readTrim(join(PLUGIN_PATH, 'available', this.spec.prefix, 'Dockerfile'));
    const m = /FROM\s+([^\s:]+):(\S+)/.exec(from);
    const fb = this.spec.fallbackImage();
    const v = this.spec.variable;
    return {
      image: process.env[`${v}_IMAGE`] || (m?.[1] ?? fb.image),
      version: process.env[`${v}_IMAGE_VERSION`] || (m?.[2] ?? fb.version),
    };
  }

  /** service_password. */
  password(svc: string): string {
    const p = join(this.serviceRoot(svc), 'PASSWORD');
    return existsSync(p) ? readTrim(p) : '';
  }

  /** service_root_password. */
  rootPassword(svc: string): string {
    const p = join(this.serviceRoot(svc), 'ROOTPASSWORD');
    return existsSync(p) ? readTrim(p) : '';
  }

  /** get_database_name (writes the file when missing, as the plugin does). */
  databaseName(svc: string): string {
    const p = join(this.serviceRoot(svc), 'DATABASE_NAME');
    if (!existsSync(p)) writeServiceFile(p, `${svc}\n`);
    return readTrim(p);
  }

  /** The service's image: its IMAGE/IMAGE_VERSION files, else the plugin's default. */
  serviceImage(svc: string): { image: string; version: string } {
    const def = this.pluginImage();
    const root = this.serviceRoot(svc);
    const image = existsSync(join(root, 'IMAGE')) ? readTrim(join(root, 'IMAGE')) : def.image;
    const version = existsSync(join(root, 'IMAGE_VERSION'))
      ? readTrim(join(root, 'IMAGE_VERSION'))
      : def.version;
    return { image, version };
  }

  /** fn-services-list: the folders of PLUGIN_DATA_ROOT, in glob order. */
  listServices(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return [];
    }
    return byteSort(
      names.filter((n) => {
        try {
          return statSync(join(this.root, n)).isDirectory();
        } catch {
          return false;
        }
      }),
    );
  }

  /** verify_service_name. */
  verifyService(svc: string): void {
    if (svc === '') fail('SERVICE must not be empty');
    const root = this.serviceRoot(svc);
    if (!existsSync(root) || !statSync(root).isDirectory()) {
      fail(`${this.spec.label} service ${svc} does not exist`);
    }
  }

  /** `[[ -z "$SERVICE" ]] && dokku_log_fail …; verify_service_name`. */
  requireService(svc: string | undefined): string {
    if (svc === undefined || svc === '') fail('Please specify a valid name for the service');
    this.verifyService(svc);
    return svc;
  }

  linksOf(svc: string): string[] {
    return readTrim(join(this.serviceRoot(svc), 'LINKS'))
      .split('\n')
      .filter((l) => l !== '');
  }

  /** `sort -u -o LINKS`. */
  writeLinks(svc: string, apps: string[]): void {
    const uniq = byteSort([...new Set(apps)]);
    writeServiceFile(
      join(this.serviceRoot(svc), 'LINKS'),
      uniq.length === 0 ? '' : `${uniq.join('\n')}\n`,
    );
  }

  // ---------------------------------------------------------------- containers

  asService(c: ContainerRecord | null): C | null {
    if (c === null) return null;
    return (c as Partial<ServiceContainer>).kind === `${this.spec.prefix}-service`
      ? (c as C)
      : null;
  }

  containerByName(name: string): C | null {
    for (const c of listContainers()) {
      const s = this.asService(c);
      if (s !== null && s.name === name) return s;
    }
    return null;
  }

  ambassadorName(svc: string): string {
    return `${this.serviceName(svc)}.ambassador`;
  }

  ambassador(svc: string): AmbassadorContainer | null {
    const c = recordByName(this.ambassadorName(svc));
    return c !== null && (c as Partial<AmbassadorContainer>).kind === 'ambassador'
      ? (c as AmbassadorContainer)
      : null;
  }

  /**
   * `docker container create` of the service container: the record, with a
   * host port and a bridge address of its own, and the cidfile (ID, no newline).
   * A second container of the same name is refused as docker refuses it.
   */
  async createRecord(svc: string, fields: (base: ServiceContainer) => C): Promise<C> {
    const root = this.serviceRoot(svc);
    rmSync(join(root, 'ID'), { force: true });
    const clash = recordByName(this.serviceName(svc));
    if (clash !== null) {
      eprintln(
        `Error response from daemon: Conflict. The container name "/${this.serviceName(svc)}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
      throw new DokkuExit(1);
    }
    const { image, version } = this.serviceImage(svc);
    const id = randomBytes(32).toString('hex');
    const c = await withAllocLock(async () => {
      const rec = fields({
        id,
        name: this.serviceName(svc),
        app: '',
        proc: this.spec.prefix,
        index: 0,
        image: `${image}:${version}`,
        cmd: '',
        port: await allocatePort(this.spec.firstHostPort),
        pid: 0,
        pidStart: '',
        state: 'created',
        createdAt: new Date().toISOString(),
        kind: `${this.spec.prefix}-service`,
        service: svc,
        ip: allocateIp(),
        dataDir: join(root, 'data'),
        hostname: this.serviceName(svc),
        labels: { 'dokku.service': this.spec.prefix, dokku: 'service' },
        binds: [],
        configOptions: readTrim(join(root, 'CONFIG_OPTIONS')).trim(),
        exitCode: 0,
      });
      writeRecord(rec);
      return rec;
    });
    // --cidfile: the id, no newline
    writeServiceFile(join(root, 'ID'), id);
    return c;
  }

  /** `docker container start ID`. */
  async containerStart(c: C): Promise<boolean> {
    const ok = await this.spec.startServer(this, c);
    if (!ok) {
      c.state = 'exited';
      c.exitCode = 1;
      c.pid = 0;
    }
    writeRecord(c);
    if (ok) setDns(this.dnsHostname(c.service), `127.0.0.1:${c.port}`);
    return ok;
  }

  /** Record a started server's process in the container. */
  markRunning(c: C, pid: number): void {
    c.pid = pid;
    c.pidStart = pidStartTime(pid);
    c.state = 'running';
    c.exitCode = 0;
  }

  /** `docker container stop NAME`: the image's STOPSIGNAL, SIGKILL after 10 s. */
  async containerStop(c: C): Promise<void> {
    await stopProcess(c, this.spec.stopSignal);
    c.state = 'exited';
    c.exitCode = 0;
    c.pid = 0;
    writeRecord(c);
  }

  async containerRemove(c: C): Promise<void> {
    if (containerRunning(c)) await this.containerStop(c);
    rmSync(containerDir(c.id), { recursive: true, force: true });
    const alias = this.dnsHostname(c.service);
    if (resolveAlias(alias) === `127.0.0.1:${c.port}`) setDns(alias, null);
  }

  /** The running container of a service for `docker container exec NAME`, or an exit like docker's. */
  execTarget(svc: string): C {
    const c = this.containerByName(this.serviceName(svc));
    if (c === null) {
      eprintln(`Error response from daemon: No such container: ${this.serviceName(svc)}`);
      throw new DokkuExit(1);
    }
    if (!containerRunning(c)) {
      eprintln(`Error response from daemon: container ${c.id} is not running`);
      throw new DokkuExit(1);
    }
    return c;
  }

  /** dokku_container_log_verbose_quiet between the plugin's two markers. */
  containerOutput(svc: string, c: C): void {
    info2Quiet(`Start of ${svc} container output`);
    if (!isQuiet()) for (const l of containerLogTail(c, 40)) verbose(l);
    info2Quiet(`End of ${svc} container output`);
  }

  /**
   * The `container start` + `service_port_reconcile_status` + wait part of
   * service_create_container shared by the plugins that only wait for the
   * port (mysql, redis, memcached): false when the server did not come up.
   */
  async startAndWait(svc: string, c: C): Promise<boolean> {
    const ok = await this.containerStart(c);
    if (ok) await this.reconcilePorts(svc);
    verboseQuiet('Waiting for container to be ready');
    if (!ok) {
      this.containerOutput(svc, c);
      return false;
    }
    info2(`${this.spec.label} container created: ${svc}`);
    this.info(svc, undefined);
    return true;
  }

  // ---------------------------------------------------------------- service functions

  /** service_status. */
  status(svc: string): string {
    const id = catSubst(join(this.serviceRoot(svc), 'ID'));
    const c = readContainer(id);
    return c === null ? 'missing' : containerStatus(c);
  }

  /** service_pause (also stops the ambassador). */
  async pause(svc: string, quietAll = false): Promise<void> {
    const c = this.containerByName(this.serviceName(svc));
    if (c === null) {
      warn('Service is already paused');
      return;
    }
    if (!quietAll) info2Quiet('Pausing container');
    await this.containerStop(c);
    const amb = this.ambassador(svc);
    if (amb !== null) await stopAmbassador(amb);
    if (!quietAll) verboseQuiet('Container paused');
  }

  /** service_container_rm. */
  async containerRm(svc: string): Promise<void> {
    await this.pause(svc);
    const c = this.containerByName(this.serviceName(svc));
    if (c === null) return;
    verboseQuiet('Removing container');
    await this.containerRemove(c);
  }

  /** service_start. Returns the exit code. */
  async start(svc: string, quiet = false): Promise<number> {
    const root = this.serviceRoot(svc);
    const c = this.containerByName(this.serviceName(svc));
    if (c !== null && containerRunning(c)) {
      if (!quiet) warn('Service is already started');
      if (!existsSync(join(root, 'ID')) || readTrim(join(root, 'ID')) !== c.id) {
        if (!quiet) warn('Updating local container ID');
        writeServiceFile(join(root, 'ID'), `${c.id}\n`);
      }
      return 0;
    }
    info2Quiet('Starting container');
    if (c !== null && c.state !== 'created') {
      // docker container start on the exited container: docker answers once the
      // process is started; a server that dies right after still "started".
      const ok = await this.containerStart(c);
      if (ok) await this.reconcilePorts(svc);
      info2('Container started');
      return 0;
    }
    const { image, version } = this.serviceImage(svc);
    const hasImage = imageExists(`${image}:${version}`);
    if (hasImage && this.spec.canCreate(this, svc)) {
      return (await this.spec.createContainer(this, svc)) ? 0 : 1;
    }
    if (!hasImage) verboseQuiet(`Missing image ${image}:${version} for ${svc}`);
    else verboseQuiet(`Neither container nor valid configuration exists for ${svc}`);
    return 0;
  }

  /** service_exposed_ports. */
  exposedPorts(svc: string): string {
    const p = join(this.serviceRoot(svc), 'PORT');
    if (!existsSync(p)) return '-';
    const ports = readTrim(p).split(/\s+/);
    return `${this.spec.port}->${ports[0] ?? ''} `;
  }

  /** service_linked_apps. */
  linkedAppsInfo(svc: string): string {
    const p = join(this.serviceRoot(svc), 'LINKS');
    if (!existsSync(p)) writeServiceFile(p, '');
    const text = readFileSync(p, 'utf8');
    if (text.trim() === '') return '-';
    return text.replace(/\n/g, ' ');
  }

  /** service_info: the info block, or one value for a flag. */
  info(svc: string, flag: string | undefined): void {
    const root = this.serviceRoot(svc);
    const url = this.spec.url(this, svc, this.spec.scheme);
    const id = catSubst(join(root, 'ID'));
    const rec = this.asService(readContainer(id));
    const byName = this.containerByName(this.serviceName(svc));
    const prop = (k: string): string => readOr(join(this.configRoot, svc, k));
    const map: [string, string][] = [
      ['--config-dir', join(root, this.spec.configSuffix)],
      ['--config-options', readOr(join(root, 'CONFIG_OPTIONS')).replace(/\n+$/, '')],
      ['--data-dir', join(root, 'data')],
      ['--dsn', url],
      ['--exposed-ports', this.exposedPorts(svc)],
      ['--id', id],
      ['--internal-ip', rec !== null && containerRunning(rec) ? rec.ip : ''],
      ['--initial-network', prop('initial-network')],
      ['--links', this.linkedAppsInfo(svc)],
      ['--post-create-network', prop('post-create-network')],
      ['--post-start-network', prop('post-start-network')],
      ['--service-root', root],
      ['--status', rec === null ? 'missing' : containerStatus(rec)],
      ['--version', byName?.image ?? ''],
    ];
    if (flag === undefined || flag === '') {
      info2Quiet(`${svc} ${this.spec.prefix} service information`);
      for (const [k, v] of map) {
        const key = `${k.slice(2).replace(/-/g, ' ')}:`;
        const label = key.charAt(0).toUpperCase() + key.slice(1);
        verbose(`${label.padEnd(20)} ${v.padEnd(25)}`);
      }
      return;
    }
    let match = false;
    for (const [k, v] of map) {
      if (k === flag) {
        println(v);
        match = true;
      }
    }
    if (!match) fail(`Invalid flag passed, valid flags: ${map.map(([k]) => k).join(' ')}`);
  }

  /** The app's env as `config:show` lines, which the plugin greps (config_all). */
  configLines(app: string): string[] {
    return [...readEnv(appEnvPath(app))].map(([k, v]) => `${k}:  ${v}`);
  }

  /** service_alternative_alias. */
  alternativeAlias(lines: string[]): string {
    for (const color of COLORS) {
      const alias = `${this.spec.altAlias}_${color}`;
      if (!lines.some((l) => l.includes(`${alias}_URL`))) return alias;
    }
    return '';
  }

  /** update_plugin_scheme_for_app: the app's `<VARIABLE>_DATABASE_SCHEME`, else PLUGIN_SCHEME. */
  schemeFor(app: string): string {
    return (
      readEnv(appEnvPath(app)).get(`${this.spec.variable}_DATABASE_SCHEME`) || this.spec.scheme
    );
  }

  dockerLinkOption(svc: string): string {
    return `--link ${this.serviceName(svc)}:${this.dnsHostname(svc)}`;
  }

  /** The cron file of backup-schedule (common-functions: CRON_FILE). */
  cronFile(svc: string): string {
    return `/etc/cron.d/dokku-${this.spec.prefix}-${svc}`;
  }

  // ---------------------------------------------------------------- expose (service_port_*)

  /** service_port_reconcile_status: the ambassador runs exactly when PORT is non-empty. */
  async reconcilePorts(svc: string): Promise<void> {
    const portFile = join(this.serviceRoot(svc), 'PORT');
    const amb = this.ambassador(svc);
    const size = existsSync(portFile) ? statSync(portFile).size : 0;
    if (size === 0) {
      if (amb !== null) {
        await stopAmbassador(amb);
        rmSync(containerDir(amb.id), { recursive: true, force: true });
      }
      return;
    }
    if (amb !== null && containerRunning(amb)) return;
    if (amb !== null) {
      await startAmbassador(amb);
      return;
    }
    const hostPort = Number(readTrim(portFile).split(/\s+/)[0]);
    const rec: AmbassadorContainer = {
      id: randomBytes(32).toString('hex'),
      name: this.ambassadorName(svc),
      app: '',
      proc: 'ambassador',
      index: 0,
      image: HELPER_IMAGES[1],
      cmd: 'ambassador',
      port: hostPort,
      pid: 0,
      pidStart: '',
      state: 'created',
      createdAt: new Date().toISOString(),
      kind: 'ambassador',
      target: this.dnsHostname(svc),
      containerPort: this.spec.port,
      labels: { dokku: 'ambassador', 'dokku.ambassador': this.spec.prefix },
      exitCode: 0,
    };
    writeRecord(rec);
    await startAmbassador(rec);
  }

  /** get_random_ports: bash's $RANDOM, then up while the port is in use. */
  async randomPort(): Promise<number> {
    // `netstat -an | grep $port` also matches 0, so the plugin never exposes port 0
    let port = Math.max(1, randomBytes(2).readUInt16BE(0) & 0x7fff);
    while (!(await portFree(port, '0.0.0.0'))) port++;
    return port;
  }

  // ---------------------------------------------------------------- commands

  /** service_create. */
  private create: Command = async (args) => {
    const s = this.spec;
    const svc = args[0] ?? '';
    if (!/^[A-Za-z0-9_-]+$/.test(svc)) {
      fail('Please specify a valid name for the service. Valid characters are: [A-Za-z0-9_]+');
    }
    if (existsSync(this.serviceRoot(svc))) fail(`${s.label} service ${svc} already exists`);
    const root = this.serviceRoot(svc);
    const flags = parseServiceArgs(args.slice(1));
    const def = this.pluginImage();
    const image = flags.image ?? def.image;
    const version = flags.imageVersion ?? def.version;

    if (!imageExists(`${image}:${version}`)) {
      if (process.env[`${s.variable}_DISABLE_PULL`] === 'true') {
        warn(`${s.variable}_DISABLE_PULL environment variable detected. Not running pull command.`);
        warn(`   docker image pull ${image}:${version}`);
        warn(`${s.label} service creation failed`);
        return 1;
      }
      if (!pullImage(`${image}:${version}`))
        fail(`${s.label} image ${image}:${version} pull failed`);
    }

    mkdirDokku(root);
    mkdirDokku(join(root, 'data'));
    mkdirDokku(join(root, s.configSuffix));
    writeServiceFile(join(root, 'LINKS'), '');
    s.writeCreateFiles(this, svc, flags);

    // service_commit_config
    const customEnv = flags.customEnv || process.env[`${s.variable}_CUSTOM_ENV`] || '';
    writeServiceFile(
      join(root, 'ENV'),
      customEnv !== '' ? `${customEnv.replace(/;/g, '\n')}\n` : '\n',
    );
    const configOptions = flags.configOptions || process.env[`${s.variable}_CONFIG_OPTIONS`] || '';
    writeServiceFile(join(root, 'CONFIG_OPTIONS'), `${configOptions}\n`);
    const memory = flags.memory || s.defaultMemory;
    if (memory) writeServiceFile(join(root, 'SERVICE_MEMORY'), `${memory}\n`);
    if (flags.shmSize) writeServiceFile(join(root, 'SHM_SIZE'), `${flags.shmSize}\n`);
    if (image !== '') writeServiceFile(join(root, 'IMAGE'), `${image}\n`);
    if (version !== '') writeServiceFile(join(root, 'IMAGE_VERSION'), `${version}\n`);
    const props: [string, string | undefined][] = [
      ['initial-network', flags.initialNetwork],
      ['post-create-network', flags.postCreateNetwork],
      ['post-start-network', flags.postStartNetwork],
    ];
    for (const [k, v] of props) {
      if (v) writeFileDokku(join(this.configRoot, svc, k), v, 0o600);
    }
    // write_database_name
    writeServiceFile(join(root, 'DATABASE_NAME'), `${svc.replace(/[.-]/g, '_')}\n`);
    return (await s.createContainer(this, svc)) ? 0 : 1;
  };

  private startCmd: Command = async (args) => this.start(this.requireService(args[0]));

  private stop: Command = async (args) => {
    await this.containerRm(this.requireService(args[0]));
  };

  private pauseCmd: Command = async (args) => {
    await this.pause(this.requireService(args[0]));
  };

  private restart: Command = async (args) => {
    const svc = this.requireService(args[0]);
    await this.pause(svc);
    const code = await this.start(svc);
    if (code !== 0) return code;
    info1('Please call dokku ps:restart on all linked apps');
  };

  private infoCmd: Command = async (args) => {
    const svc = this.requireService(args[0]);
    this.info(svc, args[1]);
  };

  private list: Command = async () => {
    if (!existsSync(this.root)) {
      // fn-services-list: `pushd "$PLUGIN_DATA_ROOT"` under set -e
      eprintln(
        `${join(PLUGIN_PATH, 'available', this.spec.prefix, 'common-functions')}: line 60: pushd: ${this.root}: No such file or directory`,
      );
      return 1;
    }
    const services = this.listServices();
    if (services.length === 0) {
      warn(`There are no ${this.spec.label} services`);
      return 0;
    }
    info2Quiet(`${this.spec.label} services`);
    for (const s of services) println(s);
  };

  private exists: Command = async (args) => {
    const svc = this.requireService(args[0]);
    info1(`Service ${svc} exists`);
  };

  /**
   * backup-schedule SERVICE SCHEDULE BUCKET [--use-iam]: one cron line in
   * /etc/cron.d/dokku-<plugin>-SERVICE, root:root 0644, the empty flag leaving
   * its trailing space as the plugin's echo does. Nothing is printed.
   */
  private backupSchedule: Command = async (args) => {
    const [svc, schedule, bucket, flag = ''] = args;
    if (!svc) fail('Please specify a valid name for the service');
    if (!schedule) fail('Please specify a schedule for the backup');
    if (!bucket) fail('Please specify an aws bucket for the backup');
    this.verifyService(svc);
    if (flag !== '' && flag !== '--use-iam' && flag !== '-u') {
      fail("Invalid flag provided, only '--use-iam' allowed");
    }
    const file = this.cronFile(svc);
    writeFileSync(
      file,
      `${schedule} dokku /usr/bin/dokku ${this.spec.prefix}:backup ${svc} ${bucket} ${flag}\n`,
      { mode: 0o644 },
    );
    chownSync(file, 0, 0);
    chmodSync(file, 0o644);
  };

  private backupScheduleCat: Command = async (args) => {
    const svc = this.requireService(args[0]);
    if (!existsSync(this.cronFile(svc))) fail(`There is no scheduled backup for ${svc}.`);
    process.stdout.write(readFileSync(this.cronFile(svc)));
  };

  private backupUnschedule: Command = async (args) => {
    const svc = this.requireService(args[0]);
    rmSync(this.cronFile(svc), { force: true });
  };

  private links: Command = async (args) => {
    const svc = this.requireService(args[0]);
    for (const a of this.linksOf(svc)) println(a);
  };

  private appLinks: Command = async (args) => {
    const app = args[0] || process.env.DOKKU_APP_NAME || '';
    if (app === '') fail('Please specify an app to run the command on');
    verifyAppBash(app);
    for (const svc of this.listServices()) if (this.linksOf(svc).includes(app)) println(svc);
  };

  private linked: Command = async (args) => {
    const svc = args[0] ?? '';
    const app = args[1] || process.env.DOKKU_APP_NAME || '';
    if (svc === '') fail('Please specify a valid name for the service');
    if (app === '') fail('Please specify an app to run the command on');
    verifyAppBash(app);
    this.verifyService(svc);
    const url = this.spec.url(this, svc, this.schemeFor(app));
    if (!this.configLines(app).some((l) => l.includes(url))) {
      warn(`Service ${svc} is not linked to ${app}`);
      return 1;
    }
    info1(`Service ${svc} is linked to ${app}`);
  };

  private link: Command = async (args) => {
    const svc = args[0] ?? '';
    const app = args[1] || process.env.DOKKU_APP_NAME || '';
    if (svc === '') fail('Please specify a valid name for the service');
    if (app === '') fail('Please specify an app to run the command on');
    verifyAppBash(app);
    this.verifyService(svc);
    const flags = parseServiceArgs(args.slice(2));

    let url = this.spec.url(this, svc, this.schemeFor(app));
    const lines = this.configLines(app);
    const linkedAs = lines.filter((l) => l.includes(url)).map((l) => l.split(':')[0] ?? '');
    const def = this.spec.defaultAlias;
    let alias = def;
    if (flags.alias !== undefined) {
      alias = flags.alias;
      if (lines.some((l) => l.includes(`${alias}_URL`)))
        fail(`Specified alias ${alias} already in use`);
    } else {
      if (lines.some((l) => l.includes(`${def}_URL`))) alias = this.alternativeAlias(lines);
      if (alias === '') fail('Unable to use default or generated URL alias');
    }
    if (linkedAs.length > 0) fail(`Already linked as ${linkedAs.join('\n')}`);

    this.writeLinks(svc, [...this.linksOf(svc), app]);
    dokkuOrFail(['docker-options:add', app, 'build,deploy,run', this.dockerLinkOption(svc)]);
    if (flags.querystring) url = `${url}?${flags.querystring}`;
    if (globalNoRestart() || flags.noRestart === true || flags.restartApps === 'false') {
      dokkuOrFail(['config:set', '--no-restart', app, `${alias}_URL=${url}`]);
      verbose('Skipping restart of linked app');
    } else {
      dokkuOrFail(['config:set', app, `${alias}_URL=${url}`]);
    }
  };

  private unlink: Command = async (args) => {
    const svc = args[0] ?? '';
    const app = args[1] || process.env.DOKKU_APP_NAME || '';
    if (svc === '') fail('Please specify a valid name for the service');
    if (app === '') fail('Please specify an app to run the command on');
    this.verifyService(svc);
    verifyAppBash(app);
    const url = this.spec.url(this, svc, this.schemeFor(app));
    const linkedAs = this.configLines(app)
      .filter((l) => l.includes(url))
      .map((l) => l.split(':')[0] ?? '');
    this.writeLinks(
      svc,
      this.linksOf(svc).filter((a) => a !== app),
    );
    dokkuOrFail(['docker-options:remove', app, 'build,deploy,run', this.dockerLinkOption(svc)]);
    if (linkedAs.length === 0) fail(`Not linked to app ${app}`);
    if (globalNoRestart()) {
      dokkuOrFail(['config:unset', '--no-restart', app, ...linkedAs]);
      verbose('Skipping restart of linked app');
    } else {
      dokkuOrFail(['config:unset', app, ...linkedAs]);
    }
  };

  private expose: Command = async (args) => {
    const svc = this.requireService(args[0]);
    let ports = args
      .slice(1)
      .join(' ')
      .split(/\s+/)
      .filter((p) => p !== '');
    if (ports.length === 0) ports = [String(await this.randomPort())];
    if (ports.length !== 1) {
      fail(`1 ports to be exposed need to be provided in the following order: ${this.spec.port}`);
    }
    const portFile = join(this.serviceRoot(svc), 'PORT');
    if (existsSync(portFile) && statSync(portFile).size > 0) {
      fail(
        `Service ${svc} already exposed on port(s) ${readTrim(portFile).split(/\s+/).join(' ')}`,
      );
    }
    const stray = this.ambassador(svc);
    if (stray !== null) {
      warn(`Service ${svc} has an untracked expose container, removing`);
      await stopAmbassador(stray);
      rmSync(containerDir(stray.id), { recursive: true, force: true });
    }
    writeServiceFile(portFile, `${ports.join(' ')}\n`);
    const code = await this.start(svc, true);
    if (code !== 0) return code;
    await this.reconcilePorts(svc);
    info1(`Service ${svc} exposed on port(s) [container->host]: ${this.exposedPorts(svc)}`);
  };

  private unexpose: Command = async (args) => {
    const svc = this.requireService(args[0]);
    rmSync(join(this.serviceRoot(svc), 'PORT'), { recursive: true, force: true });
    await this.reconcilePorts(svc);
    info1(`Service ${svc} unexposed`);
  };

  private logs: Command = async (args) => {
    const svc = this.requireService(args[0]);
    const tail = args[2] ?? 'all';
    const id = catSubst(join(this.serviceRoot(svc), 'ID'));
    const c = readContainer(id);
    if (c === null) fail('Service container does not exist');
    if (!containerRunning(c)) warn('Service logs may not be output as service is not running');
    const lines = readOr(join(containerDir(c.id), 'container.log')).split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const n = /^[0-9]+$/.test(tail) ? Number(tail) : lines.length;
    for (const l of lines.slice(Math.max(0, lines.length - n))) println(l);
  };

  private destroy: Command = async (args) => {
    const svc = this.requireService(args[0]);
    const s = this.spec;
    const root = this.serviceRoot(svc);
    const force = args[1];
    if (readOr(join(root, 'LINKS')).length > 0) fail('Cannot delete linked service');
    let forced = (process.env.DOKKU_APPS_FORCE_DELETE ?? '') !== '';
    if (force === 'force' || force === '-f' || force === '--force') forced = true;
    if (!forced) {
      warn('WARNING: Potentially Destructive Action');
      warn(`This command will destroy ${svc} ${s.label} service.`);
      warn(`To proceed, type "${svc}"`);
      println('');
      if (readLine() !== svc) {
        warn(`Confirmation did not match ${svc}. Aborted.`);
        return 1;
      }
    }
    info2Quiet(`Deleting ${svc}`);
    rmSync(this.cronFile(svc), { force: true });
    await this.containerRm(svc);
    const amb = this.ambassador(svc);
    if (amb !== null) rmSync(containerDir(amb.id), { recursive: true, force: true });
    verboseQuiet('Removing data');
    rmSync(root, { recursive: true, force: true });
    rmSync(join(this.configRoot, svc), { recursive: true, force: true });
    info2(`${s.label} container deleted: ${svc}`);
  };

  /**
   * `clone SERVICE NEW_SERVICE [create flags]` (subcommands/clone, dokku-postgres
   * 1.48.0; the same in mysql and redis): SERVICE must run; NEW_SERVICE is created
   * from SERVICE's running image (service_create with the flags given), then
   * `service_export SERVICE | service_import NEW_SERVICE`, whose failure is ignored
   * (`|| true`) as the plugin does.
   */
  private clone: Command = async (args) => {
    const s = this.spec;
    const [svc = '', fresh = ''] = args;
    if (svc === '') fail('Please specify a valid name for the service');
    if (fresh === '') fail('Please specify a name for the new service');
    this.verifyService(svc);
    if (existsSync(this.serviceRoot(fresh))) {
      fail(`Invalid service name ${fresh}. Verify the service name is not already in use.`);
    }
    if (this.status(svc) !== 'running') fail(`Service ${svc} container is not running`);
    const running = this.containerByName(this.serviceName(svc))?.image ?? '';
    const colon = running.lastIndexOf(':');
    const image = colon > 0 ? running.slice(0, colon) : running;
    const version = colon > 0 ? running.slice(colon + 1) : '';
    info2(`Cloning ${svc} to ${fresh} @ ${image}:${version}`);
    // service_create reads PLUGIN_IMAGE/PLUGIN_IMAGE_VERSION, set from the running container
    const created = runDokku([`${s.prefix}:create`, fresh, ...args.slice(2)], {
      env: { [`${s.variable}_IMAGE`]: image, [`${s.variable}_IMAGE_VERSION`]: version },
    });
    if (created.status !== 0) return created.status;
    info1(`Copying data from ${svc} to ${fresh}`);
    const main = join(EMULATOR_DIR, 'main.js');
    spawnSync(
      'bash',
      [
        '-c',
        '"$0" "$1" "$2:export" "$3" | "$0" "$1" "$2:import" "$4" >/dev/null 2>&1 || true',
        process.execPath,
        main,
        s.prefix,
        svc,
        fresh,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    info2('Done');
  };

  /** A subcommand gated by is_implemented_command: "Not yet implemented" (exit 1) when listed. */
  private gated(sub: string, fn: Command | undefined): Command | undefined {
    if (this.spec.unimplemented.includes(sub)) {
      return async () => fail('Not yet implemented');
    }
    return fn;
  }

  /** The subcommands main.ts dispatches to (only when the plugin is enabled). */
  commands(): Record<string, Command> {
    const s = this.spec;
    // service_export/import/connect run after the name checks of their subcommand
    const withSvc = (
      fn: ((p: ServicePlugin<C>, svc: string) => Promise<number>) | undefined,
    ): Command | undefined =>
      fn === undefined ? undefined : async (args) => fn(this, this.requireService(args[0]));
    const table: Record<string, Command | undefined> = {
      'app-links': this.appLinks,
      'backup-schedule': this.gated('backup-schedule', this.backupSchedule),
      'backup-schedule-cat': this.backupScheduleCat,
      clone: this.gated('clone', this.clone),
      'backup-unschedule': this.gated('backup-unschedule', this.backupUnschedule),
      connect: this.gated('connect', withSvc(s.connectService?.bind(s))),
      create: this.create,
      destroy: this.destroy,
      exists: this.exists,
      export: this.gated('export', withSvc(s.exportService?.bind(s))),
      expose: this.expose,
      import: this.gated('import', withSvc(s.importService?.bind(s))),
      info: this.infoCmd,
      link: this.link,
      linked: this.linked,
      links: this.links,
      list: this.list,
      logs: this.logs,
      pause: this.pauseCmd,
      restart: this.restart,
      start: this.startCmd,
      stop: this.stop,
      unexpose: this.unexpose,
      unlink: this.unlink,
    };
    // Subcommands the emulator does not build answer "Not yet implemented" where the plugin lists them.
    for (const sub of ['backup', 'backup-auth', 'backup-deauth', 'backup-set-encryption']) {
      if (s.unimplemented.includes(sub)) table[sub] = this.gated(sub, undefined);
    }
    const out: Record<string, Command> = {};
    for (const [k, v] of Object.entries(table)) if (v !== undefined) out[`${s.prefix}:${k}`] = v;
    return out;
  }

  // ---------------------------------------------------------------- triggers

  /** `install`: pull the images, make the data and config roots, fill in IMAGE files. */
  private installTrigger: Trigger = async () => {
    const v = this.spec.variable;
    if (process.env[`${v}_DISABLE_PULL`] === 'true') {
      eprintln(` !     ${v}_DISABLE_PULL environment variable detected. Not running pull command.`);
    } else {
      const def = this.pluginImage();
      for (const img of [`${def.image}:${def.version}`, ...this.spec.helperImages]) {
        if (!imageExists(img) && !pullImage(img)) return 1;
      }
    }
    mkdirDokku(this.root);
    chownDokku(this.root);
    mkdirDokku(this.configRoot);
    for (const svc of this.listServices()) {
      const root = this.serviceRoot(svc);
      if (!existsSync(join(root, 'IMAGE')) || !existsSync(join(root, 'IMAGE_VERSION'))) {
        const running = this.containerByName(this.serviceName(svc))?.image ?? '';
        if (running.includes(':')) {
          writeServiceFile(join(root, 'IMAGE'), `${running.slice(0, running.lastIndexOf(':'))}\n`);
          writeServiceFile(
            join(root, 'IMAGE_VERSION'),
            `${running.slice(running.lastIndexOf(':') + 1)}\n`,
          );
        }
      }
      const old = join(root, `${v}_CONFIG_OPTIONS`);
      if (existsSync(old)) {
        renameSync(old, join(root, 'CONFIG_OPTIONS'));
        chownDokku(join(root, 'CONFIG_OPTIONS'));
      }
    }
  };

  /** `pre-delete APP`: drop the app from every LINKS file. */
  private preDeleteTrigger: Trigger = async (args) => {
    const app = args[0] ?? '';
    for (const svc of this.listServices()) {
      verboseQuiet(`Unlinking from ${svc}`);
      const p = join(this.serviceRoot(svc), 'LINKS');
      if (existsSync(p))
        this.writeLinks(
          svc,
          this.linksOf(svc).filter((a) => a !== app),
        );
    }
  };

  /** `post-app-rename-setup OLD NEW` (the plugins' post-app-rename-setup): NEW joins every LINKS file OLD is in. */
  private renameSetupTrigger: Trigger = async (args) => {
    const [oldApp = '', newApp = ''] = args;
    for (const svc of this.listServices()) {
      if (this.linksOf(svc).includes(oldApp)) this.writeLinks(svc, [...this.linksOf(svc), newApp]);
    }
  };

  private async startLinkedServices(app: string): Promise<number> {
    for (const svc of this.listServices()) {
      if (!this.linksOf(svc).includes(app)) continue;
      const status = this.status(svc);
      if (status === 'running') continue;
      warn(`${this.spec.label} service ${svc} is not running, issuing service start`);
      const code = await this.start(svc);
      if (code !== 0) return code;
    }
    return 0;
  }

  /** Triggers, run by the plugin's trigger files (or in-process by lib.runTrigger). */
  triggers(): Record<string, Trigger> {
    return {
      install: this.installTrigger,
      'pre-delete': this.preDeleteTrigger,
      'post-app-rename-setup': this.renameSetupTrigger,
      // `pre-restore SCHEDULER APP`: the same as pre-start, for docker-local
      'pre-restore': async (args) =>
        args[0] === 'docker-local' ? this.startLinkedServices(args[1] ?? '') : 0,
      'pre-start': async (args) => this.startLinkedServices(args[0] ?? ''),
    };
  }
}

function globalNoRestart(): boolean {
  return (process.env.DOKKU_GLOBAL_FLAGS ?? '').includes('--no-restart');
}

function dokkuOrFail(args: string[]): void {
  const r = runDokku(args);
  if (r.status !== 0) throw new DokkuExit(r.status);
}

// ---------------------------------------------------------------- the ambassador

/** Start the ambassador's forwarder (plugins/ambassador.js) as a detached process. */
async function startAmbassador(a: AmbassadorContainer): Promise<void> {
  const d = containerDir(a.id);
  mkdirSync(d, { recursive: true });
  const log = openSync(join(d, 'container.log'), 'a');
  const child = spawn(
    process.execPath,
    [join(EMULATOR_DIR, 'plugins', 'ambassador.js'), String(a.port), a.target, DNS_FILE],
    { detached: true, cwd: '/', stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const pid = child.pid ?? 0;
  child.unref();
  a.pid = pid;
  a.pidStart = pid > 0 ? pidStartTime(pid) : '';
  a.state = pid > 0 ? 'running' : 'exited';
  writeRecord(a);
  const until = Date.now() + 10_000;
  while (Date.now() < until && containerRunning(a) && !(await tcpOpen(a.port))) await sleep(50);
}

async function stopAmbassador(a: AmbassadorContainer): Promise<void> {
  await stopProcess(a, 'SIGTERM');
  a.state = 'exited';
  a.pid = 0;
  writeRecord(a);
}

// ---------------------------------------------------------------- script entry

/**
 * A plugin module also runs as a script, for the plugin's trigger files:
 * `node plugins/<plugin>.js <trigger> [args…]`. Call with the module's
 * import.meta.url; does nothing when the module was imported.
 */
export function runTriggerScript(moduleUrl: string, triggers: Record<string, Trigger>): void {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return;
  try {
    if (realpathSync(resolve(argv1)) !== realpathSync(fileURLToPath(moduleUrl))) return;
  } catch {
    return;
  }
  const [name, ...rest] = process.argv.slice(2);
  const handler = name === undefined ? undefined : triggers[name];
  const run = async (): Promise<number> => {
    if (handler === undefined) return 0;
    try {
      return (await handler(rest)) ?? 0;
    } catch (e) {
      if (e instanceof DokkuExit) return e.code;
      throw e;
    }
  };
  run().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
