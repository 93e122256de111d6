/**
 * The dokku-postgres 1.48.0 plugin of the emulator (reference §11), on a REAL
 * PostgreSQL server per service.
 *
 * What the real plugin does with docker, this module does with the emulated
 * engine (engine.ts) and the host's PostgreSQL binaries:
 * - the image `postgres:<tag>` is a tree in /var/lib/docker/image/postgres/<tag>/,
 *   pulled from the lab registry (labConfig().registry/postgres/<tag>/);
 * - the container `dokku.postgres.<svc>` is a record in
 *   /var/lib/docker/containers/<id>/config.json whose process is the postmaster,
 *   started with pg_ctl as the OS user `postgres` (the image's uid) on the
 *   service's data/ folder, listening on 127.0.0.1 on a port of its own;
 * - the docker link alias `dokku-postgres-<svc>` has no DNS here: the engine
 *   keeps /var/lib/docker/dns.json, `{"dokku-postgres-<svc>": "127.0.0.1:<port>"}`,
 *   and the lab's sample apps resolve DSN hosts through it (a documented
 *   deviation: the DSN itself stays exactly what Dokku writes).
 *
 * - backup-schedule writes its cron line to /etc/cron.d/dokku-postgres-<svc>
 *   (common-functions' service_backup_schedule); `postgres:backup` itself
 *   (an S3 upload by a helper image) is not built, so cron would fail to run it.
 *
 * The module also runs as a script, for the plugin's trigger files:
 * `node plugins/postgres.js <trigger> [args…]`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
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
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
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

const PLUGIN = 'postgres';
const SERVICE_LABEL = 'Postgres';
/** PLUGIN_DATA_ROOT. */
export const POSTGRES_ROOT = join(DOKKU_LIB_ROOT, 'services', PLUGIN);
const CONFIG_ROOT = join(DOKKU_LIB_ROOT, 'config', PLUGIN);
const DATASTORE_PORT = 5432;
const DEFAULT_ALIAS = 'DATABASE';
const ALT_ALIAS = 'DOKKU_POSTGRES';
/** Images the plugin's install trigger pulls besides the postgres image (P config). */
const HELPER_IMAGES = [
  'busybox:1.37.0-uclibc',
  'dokku/ambassador:0.8.2',
  'dokku/s3backup:0.18.0',
  'dokku/wait:0.9.3',
];
/** Where the emulated link aliases resolve (see the module comment). */
export const DNS_FILE = join(ENGINE_ROOT, 'dns.json');
/** First host port tried for a service's server. */
const FIRST_PORT = 15432;

// ---------------------------------------------------------------- small helpers

const serviceRoot = (svc: string): string => join(POSTGRES_ROOT, svc);
const serviceName = (svc: string): string => `dokku.${PLUGIN}.${svc}`;
const dnsHostname = (svc: string): string => serviceName(svc).replace(/[._]/g, '-');

function readTrim(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\n$/, '');
  } catch {
    return '';
  }
}

/** `$(cat FILE)`: the file minus trailing newlines; cat's complaint on stderr when missing. */
function catSubst(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\n+$/, '');
  } catch {
    eprintln(`cat: ${path}: No such file or directory`);
    return '';
  }
}

/** Write as the plugin does (`echo x >file` as dokku): 0644 dokku:dokku unless told. */
function writeServiceFile(path: string, data: string, mode = 0o644): void {
  writeFileSync(path, data, { mode });
  chmodSync(path, mode);
  chownDokku(path);
}

function byteSort(list: string[]): string[] {
  return list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Default image and tag: the installed plugin's Dockerfile `FROM`, overridable by env (P config). */
function pluginImage(): { image: string; version: string } {
  const from = readTrim(join(PLUGIN_PATH, 'available', PLUGIN, 'Dockerfile'));
  const m = /FROM\s+([^\s:]+):(\S+)/.exec(from);
  return {
    image: process.env.POSTGRES_IMAGE || (m?.[1] ?? 'postgres'),
    version: process.env.POSTGRES_IMAGE_VERSION || (m?.[2] ?? labConfig().pgVersion),
  };
}

function servicePassword(svc: string): string {
  const p = join(serviceRoot(svc), 'PASSWORD');
  return existsSync(p) ? readTrim(p) : '';
}

function databaseName(svc: string): string {
  const p = join(serviceRoot(svc), 'DATABASE_NAME');
  if (!existsSync(p)) writeServiceFile(p, `${svc}\n`);
  return readTrim(p);
}

function serviceUrl(svc: string, scheme = 'postgres'): string {
  return `${scheme}://postgres:${servicePassword(svc)}@${dnsHostname(svc)}:${DATASTORE_PORT}/${databaseName(svc)}`;
}

function serviceImage(svc: string): { image: string; version: string } {
  const def = pluginImage();
  const root = serviceRoot(svc);
  const image = existsSync(join(root, 'IMAGE')) ? readTrim(join(root, 'IMAGE')) : def.image;
  const version = existsSync(join(root, 'IMAGE_VERSION'))
    ? readTrim(join(root, 'IMAGE_VERSION'))
    : def.version;
  return { image, version };
}

function listServices(): string[] {
  let names: string[];
  try {
    names = readdirSync(POSTGRES_ROOT);
  } catch {
    return [];
  }
  return byteSort(
    names.filter((n) => {
      try {
        return statSync(join(POSTGRES_ROOT, n)).isDirectory();
      } catch {
        return false;
      }
    }),
  );
}

function isValidServiceName(svc: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(svc);
}

/** verify_service_name. */
function verifyService(svc: string): void {
  if (svc === '') fail('SERVICE must not be empty');
  if (!existsSync(serviceRoot(svc)) || !statSync(serviceRoot(svc)).isDirectory()) {
    fail(`${SERVICE_LABEL} service ${svc} does not exist`);
  }
}

function requireService(svc: string | undefined): string {
  if (svc === undefined || svc === '') fail('Please specify a valid name for the service');
  verifyService(svc);
  return svc;
}

function linksOf(svc: string): string[] {
  return readTrim(join(serviceRoot(svc), 'LINKS'))
    .split('\n')
    .filter((l) => l !== '');
}

function writeLinks(svc: string, apps: string[]): void {
  const uniq = byteSort([...new Set(apps)]);
  writeServiceFile(
    join(serviceRoot(svc), 'LINKS'),
    uniq.length === 0 ? '' : `${uniq.join('\n')}\n`,
  );
}

// ---------------------------------------------------------------- flags (service_parse_args)

/** The flags of service_parse_args, after getopts "na:c:C:d:i:I:m:n:N:p:P:q:R:r:s:S:u:". */
interface ServiceFlags {
  alias?: string;
  configOptions?: string;
  customEnv?: string;
  image?: string;
  imageVersion?: string;
  memory?: string;
  noRestart?: boolean;
  initialNetwork?: string;
  password?: string;
  postCreateNetwork?: string;
  querystring?: string;
  restartApps?: string;
  shmSize?: string;
  postStartNetwork?: string;
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

function parseServiceArgs(argv: string[]): ServiceFlags {
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
      switch (c) {
        case 'a':
          f.alias = (val ?? '').toUpperCase().replace(/_URL$/, '');
          break;
        case 'c':
          f.configOptions = val;
          break;
        case 'C':
          f.customEnv = val;
          break;
        case 'i':
          f.image = val;
          break;
        case 'I':
          f.imageVersion = val;
          break;
        case 'm':
          f.memory = val;
          break;
        case 'n':
          f.noRestart = true;
          break;
        case 'N':
          f.initialNetwork = val;
          break;
        case 'p':
          f.password = val;
          break;
        case 'P':
          f.postCreateNetwork = val;
          break;
        case 'q':
          f.querystring = (val ?? '').replace(/^\?/, '');
          break;
        case 'R':
          f.restartApps = val;
          break;
        case 's':
          f.shmSize = val;
          break;
        case 'S':
          f.postStartNetwork = val;
          break;
        default:
          // -d, -r, -u and unknown letters: parsed or reported by getopts, unused here
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

/** A postgres service container: the engine's record plus what the server needs. */
interface ServiceContainer extends ContainerRecord {
  kind: 'postgres-service';
  service: string;
  ip: string;
  dataDir: string;
  pgBin: string;
  hostname: string;
  labels: Record<string, string>;
  binds: string[];
  configOptions: string;
  exitCode: number;
}

function pidStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

function containerDir(id: string): string {
  return join(ENGINE_ROOT, 'containers', id);
}

function writeRecord(c: ServiceContainer): void {
  const d = containerDir(c.id);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json.tmp'), JSON.stringify(c, null, 2));
  renameSync(join(d, 'config.json.tmp'), join(d, 'config.json'));
}

function asService(c: ContainerRecord | null): ServiceContainer | null {
  if (c === null) return null;
  return (c as Partial<ServiceContainer>).kind === 'postgres-service'
    ? (c as ServiceContainer)
    : null;
}

/** `docker container ps -aq --filter name=^/NAME$`. */
function containerByName(name: string): ServiceContainer | null {
  for (const c of listContainers()) {
    const s = asService(c);
    if (s !== null && s.name === name) return s;
  }
  return null;
}

function readDns(): Record<string, string> {
  try {
    return JSON.parse(readFileSync(DNS_FILE, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

function setDns(alias: string, target: string | null): void {
  const m = readDns();
  if (target === null) delete m[alias];
  else m[alias] = target;
  mkdirSync(ENGINE_ROOT, { recursive: true });
  const tmp = `${DNS_FILE}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(m, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, DNS_FILE);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/** A host port no other service container of this engine holds, and free now. */
async function allocatePort(): Promise<number> {
  const taken = new Set(listContainers().map((c) => c.port));
  for (let p = FIRST_PORT; p < FIRST_PORT + 1000; p++) {
    if (!taken.has(p) && (await portFree(p))) return p;
  }
  throw new Error('no free port for a postgres service');
}

/**
 * Run `fn` holding the engine's allocation lock, so two services created side
 * by side never get the same port or address (mkdir is atomic).
 */
async function withAllocLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(ENGINE_ROOT, '.postgres-alloc.lock');
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

function allocateIp(): string {
  const taken = new Set(
    listContainers()
      .map((c) => asService(c)?.ip)
      .filter((x) => x !== undefined),
  );
  for (let n = 2; n < 255; n++) {
    const ip = `172.17.0.${n}`;
    if (!taken.has(ip)) return ip;
  }
  return '172.17.0.254';
}

/** Which server binaries an image tag runs: the lab's own for its major, else /usr/lib/postgresql/<major>/bin. */
function binariesFor(version: string): string {
  const cfg = labConfig();
  const major = version.split('.')[0] ?? '';
  if (major === (cfg.pgVersion.split('.')[0] ?? '')) return cfg.pgBin;
  return `/usr/lib/postgresql/${major}/bin`;
}

interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run a program as the OS user `postgres` (the image's uid inside the container). */
function asPostgres(argv: string[], env: NodeJS.ProcessEnv = {}, input?: string): Ran {
  const uid = process.getuid?.() ?? -1;
  const me = userIds('postgres');
  let file: string;
  let args: string[];
  if (uid === 0) {
    file = 'runuser';
    args = ['-u', 'postgres', '--', ...argv];
  } else if (me !== null && uid === me.uid) {
    file = argv[0] ?? '';
    args = argv.slice(1);
  } else {
    return {
      status: 126,
      stdout: '',
      stderr: 'the emulator must run as root to act as the postgres user\n',
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

function appendLog(c: ServiceContainer, text: string): void {
  const p = join(containerDir(c.id), 'container.log');
  try {
    writeFileSync(p, text, { flag: 'a' });
  } catch {
    // the log is a courtesy
  }
}

/**
 * The postgres image's entrypoint, then the server: fix the data dir's owner
 * and mode as docker-entrypoint.sh does, initdb on an empty one, then exec the
 * postmaster as `postgres`, its output in the container log (written by us, the
 * "daemon", as docker does). Returns false when the server did not become
 * ready (its words are in the container log).
 */
async function startServer(c: ServiceContainer, password: string): Promise<boolean> {
  const root = process.getuid?.() === 0;
  const pg = userIds('postgres');
  if (!root) {
    appendLog(
      c,
      'permission denied while trying to connect to the docker API: the lab runs PostgreSQL servers only for root\n',
    );
    return false;
  }
  if (pg === null) {
    appendLog(c, 'unable to find user postgres: no matching entries in passwd file\n');
    return false;
  }
  const dataMajor = readTrim(join(c.dataDir, 'PG_VERSION')).trim();
  const imageMajor = c.image.slice(c.image.lastIndexOf(':') + 1).split('.')[0] ?? '';
  if (!existsSync(join(c.pgBin, 'postgres')) && dataMajor !== '' && dataMajor !== imageMajor) {
    // What the image's own server says of another major's data (src/backend/utils/init/miscinit.c)
    const ts = new Date().toISOString().replace('T', ' ').replace('Z', ' UTC');
    const version = c.image.slice(c.image.lastIndexOf(':') + 1);
    appendLog(
      c,
      [
        '',
        'PostgreSQL Database directory appears to contain a database; Skipping initialization',
        '',
        `${ts} [1] FATAL:  database files are incompatible with server`,
        `${ts} [1] DETAIL:  The data directory was initialized by PostgreSQL version ${dataMajor}, which is not compatible with this version ${version}.`,
        '',
      ].join('\n'),
    );
    return false;
  }
  if (!existsSync(join(c.pgBin, 'postgres'))) {
    appendLog(
      c,
      `exec postgres: no PostgreSQL server binaries for ${c.image} on this machine (${c.pgBin})\n`,
    );
    return false;
  }
  mkdirSync(c.dataDir, { recursive: true });
  // docker-entrypoint.sh: chmod 00700 "$PGDATA"; find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
  chmodSync(c.dataDir, 0o700);
  spawnSync('find', [c.dataDir, '!', '-user', 'postgres', '-exec', 'chown', 'postgres', '{}', '+']);
  if (!existsSync(join(c.dataDir, 'PG_VERSION'))) {
    const scratch = mkdtempSync(join(tmpdir(), 'pg-init-'));
    chownSync(scratch, pg.uid, pg.gid);
    const pwfile = join(scratch, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    chownSync(pwfile, pg.uid, pg.gid);
    // The image authenticates non-local clients with scram-sha-256; every
    // client comes over TCP here, so host auth must ask for the password.
    const r = asPostgres([
      join(c.pgBin, 'initdb'),
      '-D',
      c.dataDir,
      '--username=postgres',
      `--pwfile=${pwfile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
    ]);
    rmSync(scratch, { recursive: true, force: true });
    appendLog(c, r.stdout + r.stderr);
    if (r.status !== 0) return false;
    // the image listens on all interfaces (postgresql.conf.sample: listen_addresses = '*')
    const conf = join(c.dataDir, 'postgresql.conf');
    writeFileSync(
      conf,
      readFileSync(conf, 'utf8').replace(
        /^#listen_addresses = 'localhost'/m,
        "listen_addresses = '*'",
      ),
    );
  }
  const log = openSync(join(containerDir(c.id), 'container.log'), 'a');
  const startedAt = Math.floor(Date.now() / 1000);
  // A container has its own PID namespace, where the postmaster is PID 1: a
  // postmaster.pid copied from another host then names PID 1, which PostgreSQL
  // takes for itself and treats as stale, exactly as in a new docker container.
  const child = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--',
      'setpriv',
      '--reuid=postgres',
      '--regid=postgres',
      '--init-groups',
      '--',
      join(c.pgBin, 'postgres'),
      '-D',
      c.dataDir,
      '-p',
      String(c.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...c.configOptions.split(/\s+/).filter((w) => w !== ''),
    ],
    {
      detached: true,
      cwd: '/',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', PGDATA: c.dataDir },
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
  let ready = false;
  while (!exited && Date.now() < until) {
    if (pid === 0) pid = childOf(shim);
    // postmaster.pid: line 1 pid (1 in its namespace), line 3 start time, line 8 status
    const lines = readTrim(join(c.dataDir, 'postmaster.pid')).split('\n');
    if (
      pid !== 0 &&
      (lines[0] ?? '').trim() === '1' &&
      Number(lines[2]) >= startedAt &&
      (lines[7] ?? '').trim() === 'ready'
    ) {
      ready = true;
      break;
    }
    await sleep(50);
  }
  if (!ready) {
    if (!exited) {
      for (const p of [pid, shim]) {
        try {
          if (p > 0) process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    return false;
  }
  child.unref();
  c.pid = pid;
  c.pidStart = pidStartTime(pid);
  c.state = 'running';
  c.exitCode = 0;
  return true;
}

/** The first child of a process (the unshare shim's PID-1 postmaster), or 0. */
function childOf(pid: number): number {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    const k = Number(kids[0]);
    return Number.isFinite(k) && k > 0 ? k : 0;
  } catch {
    return 0;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `docker container start ID`. */
async function containerStart(c: ServiceContainer, password: string): Promise<boolean> {
  const ok = await startServer(c, password);
  if (!ok) {
    c.state = 'exited';
    c.exitCode = 1;
    c.pid = 0;
  }
  writeRecord(c);
  if (ok) setDns(dnsHostname(c.service), `127.0.0.1:${c.port}`);
  return ok;
}

/** `docker container stop NAME`: the image's STOPSIGNAL is SIGINT (a fast shutdown), SIGKILL after 10 s. */
async function containerStop(c: ServiceContainer): Promise<void> {
  if (containerRunning(c)) {
    try {
      process.kill(c.pid, 'SIGINT');
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
  c.state = 'exited';
  c.exitCode = 0;
  c.pid = 0;
  writeRecord(c);
}

async function containerRemove(c: ServiceContainer): Promise<void> {
  if (containerRunning(c)) await containerStop(c);
  rmSync(containerDir(c.id), { recursive: true, force: true });
  const dns = readDns();
  if (dns[dnsHostname(c.service)] === `127.0.0.1:${c.port}`) setDns(dnsHostname(c.service), null);
}

/** Run a PostgreSQL client against a running service container (`docker container exec`). */
function clientEnv(svc: string): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    PGPASSWORD: servicePassword(svc),
    PGHOST: '127.0.0.1',
    PGUSER: 'postgres',
  };
}

/** The running container of a service for `docker container exec NAME`, or an exit like docker's. */
function execTarget(svc: string): ServiceContainer {
  const c = containerByName(serviceName(svc));
  if (c === null) {
    eprintln(`Error response from daemon: No such container: ${serviceName(svc)}`);
    throw new DokkuExit(1);
  }
  if (!containerRunning(c)) {
    eprintln(`Error response from daemon: container ${c.id} is not running`);
    throw new DokkuExit(1);
  }
  return c;
}

/** Spawn a client with our stdio; resolves to its exit code. */
function spawnClient(
  c: ServiceContainer,
  file: string,
  args: string[],
  stdin: 'inherit' | 'ignore',
): Promise<number> {
  return new Promise((res) => {
    const child = spawn(join(c.pgBin, file), ['-p', String(c.port), ...args], {
      env: clientEnv(c.service),
      stdio: [stdin, 'inherit', 'inherit'],
    });
    child.on('error', () => res(127));
    child.on('close', (code) => res(code ?? 1));
  });
}

// ---------------------------------------------------------------- service functions

function serviceStatus(svc: string): string {
  const id = catSubst(join(serviceRoot(svc), 'ID'));
  const c = readContainer(id);
  return c === null ? 'missing' : containerStatus(c);
}

/** service_pause. */
async function servicePause(svc: string, quietAll = false): Promise<void> {
  const c = containerByName(serviceName(svc));
  if (c === null) {
    warn('Service is already paused');
    return;
  }
  if (!quietAll) info2Quiet('Pausing container');
  await containerStop(c);
  if (!quietAll) verboseQuiet('Container paused');
}

/** service_container_rm. */
async function serviceContainerRm(svc: string): Promise<void> {
  await servicePause(svc);
  const c = containerByName(serviceName(svc));
  if (c === null) return;
  verboseQuiet('Removing container');
  await containerRemove(c);
}

function containerOutput(svc: string, c: ServiceContainer): void {
  info2Quiet(`Start of ${svc} container output`);
  if (!isQuiet()) for (const l of containerLogTail(c, 40)) verbose(l);
  info2Quiet(`End of ${svc} container output`);
}

/** SSL setup of "Securing connection to database" (scripts/create_ssl_certs.sh + enable_ssl.sh). */
function enableSsl(svc: string, c: ServiceContainer): void {
  const certs = join(serviceRoot(svc), 'certs');
  mkdirSync(certs, { recursive: true });
  // rsa:2048 instead of the plugin's rsa:4096: 0.1 s instead of 2 s per service
  spawnSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-x509',
      '-days',
      '365000',
      '-nodes',
      '-out',
      join(certs, 'server.crt'),
      '-keyout',
      join(certs, 'server.key'),
      '-batch',
    ],
    { stdio: 'ignore', cwd: certs },
  );
  const pg = userIds('postgres');
  for (const f of ['server.crt', 'server.key']) {
    const src = join(certs, f);
    if (!existsSync(src)) continue;
    const dst = join(c.dataDir, f);
    writeFileSync(dst, readFileSync(src), { mode: f === 'server.key' ? 0o600 : 0o644 });
    if (pg !== null && process.getuid?.() === 0) chownSync(dst, pg.uid, pg.gid);
  }
  const conf = join(c.dataDir, 'postgresql.conf');
  if (existsSync(conf)) {
    const text = readFileSync(conf, 'utf8')
      .replace(/^#ssl = off/m, 'ssl = on')
      .replace(/^#ssl_ciphers =.*$/m, "ssl_ciphers = 'AES256+EECDH:AES256+EDH'");
    writeFileSync(conf, text);
  }
  rmSync(certs, { recursive: true, force: true });
}

/** service_create_container. Returns false (exit 1) when the server did not become ready. */
async function serviceCreateContainer(svc: string): Promise<boolean> {
  const root = serviceRoot(svc);
  const password = servicePassword(svc);
  const db = databaseName(svc);
  const { image, version } = serviceImage(svc);
  const configOptions = readTrim(join(root, 'CONFIG_OPTIONS')).trim();
  rmSync(join(root, 'ID'), { force: true });

  // docker container create: a second container with the same name is refused
  const clash = containerByName(serviceName(svc));
  if (clash !== null) {
    eprintln(
      `Error response from daemon: Conflict. The container name "/${serviceName(svc)}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`,
    );
    throw new DokkuExit(1);
  }
  const id = randomBytes(32).toString('hex');
  const major = Number.parseInt(version, 10);
  const mountPoint =
    Number.isFinite(major) && major >= 18 ? '/var/lib/postgresql' : '/var/lib/postgresql/data';
  const c: ServiceContainer = await withAllocLock(async () => {
    const rec: ServiceContainer = {
      id,
      name: serviceName(svc),
      app: '',
      proc: PLUGIN,
      index: 0,
      image: `${image}:${version}`,
      cmd: 'postgres',
      port: await allocatePort(),
      pid: 0,
      pidStart: '',
      state: 'created',
      createdAt: new Date().toISOString(),
      kind: 'postgres-service',
      service: svc,
      ip: allocateIp(),
      dataDir: join(root, 'data'),
      pgBin: binariesFor(version),
      hostname: serviceName(svc),
      labels: { 'dokku.service': PLUGIN, dokku: 'service' },
      binds: [`${join(root, 'data')}:${mountPoint}`],
      configOptions,
      exitCode: 0,
    };
    writeRecord(rec);
    return rec;
  });
  // --cidfile: the id, no newline
  writeServiceFile(join(root, 'ID'), id);

  if (!(await containerStart(c, password))) {
    verboseQuiet('Waiting for container to be ready');
    containerOutput(svc, c);
    return false;
  }
  verboseQuiet('Waiting for container to be ready');

  verboseQuiet('Creating container database');
  const created = asPostgres(
    [
      join(c.pgBin, 'createdb'),
      '-h',
      '127.0.0.1',
      '-p',
      String(c.port),
      '-U',
      'postgres',
      '-E',
      'utf8',
      db,
    ],
    { PGPASSWORD: password },
  );
  if (created.status !== 0) verboseQuiet('Already exists');

  verboseQuiet('Securing connection to database');
  await servicePause(svc, true);
  enableSsl(svc, c);
  if (!(await containerStart(c, password))) {
    containerOutput(svc, c);
    return false;
  }

  info2(`${SERVICE_LABEL} container created: ${svc}`);
  serviceInfo(svc, undefined);
  return true;
}

/** service_start. Returns the exit code. */
async function serviceStart(svc: string, quiet = false): Promise<number> {
  const root = serviceRoot(svc);
  const name = serviceName(svc);
  const c = containerByName(name);
  if (c !== null && containerRunning(c)) {
    if (!quiet) warn('Service is already started');
    if (!existsSync(join(root, 'ID')) || readTrim(join(root, 'ID')) !== c.id) {
      if (!quiet) warn('Updating local container ID');
      writeServiceFile(join(root, 'ID'), `${c.id}\n`);
    }
    return 0;
  }
  info2Quiet('Starting container');
  const password = servicePassword(svc);
  if (c !== null && c.state !== 'created') {
    // docker container start on the exited container: docker answers once the
    // process is started; a server that dies right after still "started".
    await containerStart(c, password);
    info2('Container started');
    return 0;
  }
  const { image, version } = serviceImage(svc);
  const hasImage = imageExists(`${image}:${version}`);
  if (hasImage && password !== '') {
    return (await serviceCreateContainer(svc)) ? 0 : 1;
  }
  if (!hasImage) verboseQuiet(`Missing image ${image}:${version} for ${svc}`);
  else verboseQuiet(`Neither container nor valid configuration exists for ${svc}`);
  return 0;
}

function exposedPorts(svc: string): string {
  const p = join(serviceRoot(svc), 'PORT');
  if (!existsSync(p)) return '-';
  const ports = readTrim(p).split(/\s+/);
  return `${DATASTORE_PORT}->${ports[0] ?? ''} `;
}

function linkedAppsInfo(svc: string): string {
  const p = join(serviceRoot(svc), 'LINKS');
  if (!existsSync(p)) writeServiceFile(p, '');
  const text = readFileSync(p, 'utf8');
  if (text.trim() === '') return '-';
  return text.replace(/\n/g, ' ');
}

/** service_info: the info block, or one value for a flag. */
function serviceInfo(svc: string, flag: string | undefined): void {
  const root = serviceRoot(svc);
  const url = serviceUrl(svc);
  const id = catSubst(join(root, 'ID'));
  const rec = asService(readContainer(id));
  const byName = containerByName(serviceName(svc));
  const prop = (k: string): string => readOr(join(CONFIG_ROOT, svc, k));
  const map: [string, string][] = [
    ['--config-dir', join(root, 'data')],
    ['--config-options', readOr(join(root, 'CONFIG_OPTIONS')).replace(/\n+$/, '')],
    ['--data-dir', join(root, 'data')],
    ['--dsn', url],
    ['--exposed-ports', exposedPorts(svc)],
    ['--id', id],
    ['--internal-ip', rec !== null && containerRunning(rec) ? rec.ip : ''],
    ['--initial-network', prop('initial-network')],
    ['--links', linkedAppsInfo(svc)],
    ['--post-create-network', prop('post-create-network')],
    ['--post-start-network', prop('post-start-network')],
    ['--service-root', root],
    ['--status', rec === null ? 'missing' : containerStatus(rec)],
    ['--version', byName?.image ?? ''],
  ];
  if (flag === undefined || flag === '') {
    info2Quiet(`${svc} ${PLUGIN} service information`);
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

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** The app's env as `config:show` lines, which the plugin greps (config_all). */
function configLines(app: string): string[] {
  return [...readEnv(appEnvPath(app))].map(([k, v]) => `${k}:  ${v}`);
}

function alternativeAlias(lines: string[]): string {
  const colors = [
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
  for (const color of colors) {
    const alias = `${ALT_ALIAS}_${color}`;
    if (!lines.some((l) => l.includes(`${alias}_URL`))) return alias;
  }
  return '';
}

function schemeFor(app: string): string {
  return readEnv(appEnvPath(app)).get('POSTGRES_DATABASE_SCHEME') || 'postgres';
}

function globalNoRestart(): boolean {
  return (process.env.DOKKU_GLOBAL_FLAGS ?? '').includes('--no-restart');
}

function dockerLinkOption(svc: string): string {
  return `--link ${serviceName(svc)}:${dnsHostname(svc)}`;
}

function dokkuOrFail(args: string[]): void {
  const r = runDokku(args);
  if (r.status !== 0) throw new DokkuExit(r.status);
}

// ---------------------------------------------------------------- commands

const create: Command = async (args) => {
  const svc = args[0] ?? '';
  if (!isValidServiceName(svc)) {
    fail('Please specify a valid name for the service. Valid characters are: [A-Za-z0-9_]+');
  }
  if (existsSync(serviceRoot(svc))) fail(`${SERVICE_LABEL} service ${svc} already exists`);
  const root = serviceRoot(svc);
  const flags = parseServiceArgs(args.slice(1));
  const def = pluginImage();
  const image = flags.image ?? def.image;
  const version = flags.imageVersion ?? def.version;

  if (!imageExists(`${image}:${version}`)) {
    if (process.env.POSTGRES_DISABLE_PULL === 'true') {
      warn('POSTGRES_DISABLE_PULL environment variable detected. Not running pull command.');
      warn(`   docker image pull ${image}:${version}`);
      warn(`${SERVICE_LABEL} service creation failed`);
      return 1;
    }
    if (!pullImage(`${image}:${version}`))
      fail(`${SERVICE_LABEL} image ${image}:${version} pull failed`);
  }

  mkdirDokku(root);
  mkdirDokku(join(root, 'data'));
  writeServiceFile(join(root, 'LINKS'), '');
  let password = randomBytes(16).toString('hex');
  if (flags.password !== undefined && flags.password !== '') {
    password = flags.password;
    warn('Specified password may not be as secure as the auto-generated password');
  }
  writeServiceFile(join(root, 'PASSWORD'), `${password}\n`, 0o640);

  // service_commit_config
  const customEnv = flags.customEnv ?? process.env.POSTGRES_CUSTOM_ENV ?? '';
  writeServiceFile(
    join(root, 'ENV'),
    customEnv !== '' ? `${customEnv.replace(/;/g, '\n')}\n` : '\n',
  );
  const configOptions = flags.configOptions ?? process.env.POSTGRES_CONFIG_OPTIONS ?? '';
  writeServiceFile(join(root, 'CONFIG_OPTIONS'), `${configOptions}\n`);
  if (flags.memory) writeServiceFile(join(root, 'SERVICE_MEMORY'), `${flags.memory}\n`);
  if (flags.shmSize) writeServiceFile(join(root, 'SHM_SIZE'), `${flags.shmSize}\n`);
  if (image !== '') writeServiceFile(join(root, 'IMAGE'), `${image}\n`);
  if (version !== '') writeServiceFile(join(root, 'IMAGE_VERSION'), `${version}\n`);
  const props: [string, string | undefined][] = [
    ['initial-network', flags.initialNetwork],
    ['post-create-network', flags.postCreateNetwork],
    ['post-start-network', flags.postStartNetwork],
  ];
  for (const [k, v] of props) {
    if (v) writeFileDokku(join(CONFIG_ROOT, svc, k), v, 0o600);
  }
  writeServiceFile(join(root, 'DATABASE_NAME'), `${svc.replace(/[.-]/g, '_')}\n`);
  return (await serviceCreateContainer(svc)) ? 0 : 1;
};

const start: Command = async (args) => {
  const svc = requireService(args[0]);
  return serviceStart(svc);
};

const stop: Command = async (args) => {
  const svc = requireService(args[0]);
  await serviceContainerRm(svc);
};

const pause: Command = async (args) => {
  const svc = requireService(args[0]);
  await servicePause(svc);
};

const restart: Command = async (args) => {
  const svc = requireService(args[0]);
  await servicePause(svc);
  const code = await serviceStart(svc);
  if (code !== 0) return code;
  info1(`Please call ${PLUGIN}:restart on the linked apps`);
};

const info: Command = async (args) => {
  const svc = requireService(args[0]);
  serviceInfo(svc, args[1]);
};

const list: Command = async () => {
  if (!existsSync(POSTGRES_ROOT)) {
    // fn-services-list: `pushd "$PLUGIN_DATA_ROOT"` under set -e
    eprintln(
      `${join(PLUGIN_PATH, 'available', PLUGIN, 'common-functions')}: line 60: pushd: ${POSTGRES_ROOT}: No such file or directory`,
    );
    return 1;
  }
  const services = listServices();
  if (services.length === 0) {
    warn(`There are no ${SERVICE_LABEL} services`);
    return 0;
  }
  info2Quiet(`${SERVICE_LABEL} services`);
  for (const s of services) println(s);
};

const exists: Command = async (args) => {
  const svc = requireService(args[0]);
  info1(`Service ${svc} exists`);
};

/** Where backup-schedule writes a service's cron entry (common-functions: CRON_FILE). */
function cronFile(svc: string): string {
  return `/etc/cron.d/dokku-${PLUGIN}-${svc}`;
}

/**
 * backup-schedule SERVICE SCHEDULE BUCKET [--use-iam]: one cron line in
 * /etc/cron.d/dokku-postgres-SERVICE, root:root 0644, the empty flag leaving
 * its trailing space as the plugin's echo does. Nothing is printed.
 */
const backupSchedule: Command = async (args) => {
  const [svc, schedule, bucket, flag = ''] = args;
  if (!svc) fail('Please specify a valid name for the service');
  if (!schedule) fail('Please specify a schedule for the backup');
  if (!bucket) fail('Please specify an aws bucket for the backup');
  verifyService(svc);
  if (flag !== '' && flag !== '--use-iam' && flag !== '-u') {
    fail("Invalid flag provided, only '--use-iam' allowed");
  }
  const file = cronFile(svc);
  writeFileSync(
    file,
    `${schedule} dokku /usr/bin/dokku ${PLUGIN}:backup ${svc} ${bucket} ${flag}\n`,
    {
      mode: 0o644,
    },
  );
  chownSync(file, 0, 0);
  chmodSync(file, 0o644);
};

const backupScheduleCat: Command = async (args) => {
  const svc = requireService(args[0]);
  if (!existsSync(cronFile(svc))) fail(`There is no scheduled backup for ${svc}.`);
  process.stdout.write(readFileSync(cronFile(svc)));
};

const backupUnschedule: Command = async (args) => {
  const svc = requireService(args[0]);
  rmSync(cronFile(svc), { force: true });
};

const links: Command = async (args) => {
  const svc = requireService(args[0]);
  for (const a of linksOf(svc)) println(a);
};

const appLinks: Command = async (args) => {
  const app = args[0];
  verifyAppBash(app);
  for (const svc of listServices()) if (linksOf(svc).includes(app)) println(svc);
};

const linked: Command = async (args) => {
  const svc = args[0] ?? '';
  const app = args[1] ?? process.env.DOKKU_APP_NAME ?? '';
  if (svc === '') fail('Please specify a valid name for the service');
  if (app === '') fail('Please specify an app to run the command on');
  verifyAppBash(app);
  verifyService(svc);
  const url = serviceUrl(svc, schemeFor(app));
  if (!configLines(app).some((l) => l.includes(url))) {
    warn(`Service ${svc} is not linked to ${app}`);
    return 1;
  }
  info1(`Service ${svc} is linked to ${app}`);
};

const link: Command = async (args) => {
  const svc = args[0] ?? '';
  const app = args[1] || process.env.DOKKU_APP_NAME || '';
  if (svc === '') fail('Please specify a valid name for the service');
  if (app === '') fail('Please specify an app to run the command on');
  verifyAppBash(app);
  verifyService(svc);
  const flags = parseServiceArgs(args.slice(2));

  let url = serviceUrl(svc, schemeFor(app));
  const lines = configLines(app);
  const linkedAs = lines.filter((l) => l.includes(url)).map((l) => l.split(':')[0] ?? '');
  let alias = DEFAULT_ALIAS;
  if (flags.alias !== undefined) {
    alias = flags.alias;
    if (lines.some((l) => l.includes(`${alias}_URL`)))
      fail(`Specified alias ${alias} already in use`);
  } else {
    if (lines.some((l) => l.includes(`${DEFAULT_ALIAS}_URL`))) alias = alternativeAlias(lines);
    if (alias === '') fail('Unable to use default or generated URL alias');
  }
  if (linkedAs.length > 0) fail(`Already linked as ${linkedAs.join('\n')}`);

  writeLinks(svc, [...linksOf(svc), app]);
  dokkuOrFail(['docker-options:add', app, 'build,deploy,run', dockerLinkOption(svc)]);
  if (flags.querystring) url = `${url}?${flags.querystring}`;
  if (globalNoRestart() || flags.noRestart === true || flags.restartApps === 'false') {
    dokkuOrFail(['config:set', '--no-restart', app, `${alias}_URL=${url}`]);
    verbose('Skipping restart of linked app');
  } else {
    dokkuOrFail(['config:set', app, `${alias}_URL=${url}`]);
  }
};

const unlink: Command = async (args) => {
  const svc = args[0] ?? '';
  const app = args[1] || process.env.DOKKU_APP_NAME || '';
  if (svc === '') fail('Please specify a valid name for the service');
  if (app === '') fail('Please specify an app to run the command on');
  verifyService(svc);
  verifyAppBash(app);
  const url = serviceUrl(svc, schemeFor(app));
  const linkedAs = configLines(app)
    .filter((l) => l.includes(url))
    .map((l) => l.split(':')[0] ?? '');
  writeLinks(
    svc,
    linksOf(svc).filter((a) => a !== app),
  );
  dokkuOrFail(['docker-options:remove', app, 'build,deploy,run', dockerLinkOption(svc)]);
  if (linkedAs.length === 0) fail(`Not linked to app ${app}`);
  if (globalNoRestart()) {
    dokkuOrFail(['config:unset', '--no-restart', app, ...linkedAs]);
    verbose('Skipping restart of linked app');
  } else {
    dokkuOrFail(['config:unset', app, ...linkedAs]);
  }
};

const exportCmd: Command = async (args) => {
  const svc = requireService(args[0]);
  const c = execTarget(svc);
  return spawnClient(
    c,
    'pg_dump',
    ['-Fc', '--no-acl', '--no-owner', '-h', '127.0.0.1', '-U', 'postgres', '-w', databaseName(svc)],
    'ignore',
  );
};

const importCmd: Command = async (args) => {
  const svc = requireService(args[0]);
  if (process.stdin.isTTY === true) fail('No data provided on stdin.');
  const c = execTarget(svc);
  return spawnClient(
    c,
    'pg_restore',
    ['-h', '127.0.0.1', '-cO', '--if-exists', '-d', databaseName(svc), '-U', 'postgres', '-w'],
    'inherit',
  );
};

const connect: Command = async (args) => {
  const svc = requireService(args[0]);
  const c = execTarget(svc);
  return spawnClient(
    c,
    'psql',
    ['-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-U', 'postgres', databaseName(svc)],
    'inherit',
  );
};

/** `read -rp "> "`: the prompt on stderr, one line from stdin. */
function readLine(): string {
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

const destroy: Command = async (args) => {
  const svc = requireService(args[0]);
  const root = serviceRoot(svc);
  const force = args[1];
  if (readOr(join(root, 'LINKS')).length > 0) fail('Cannot delete linked service');
  let forced = (process.env.DOKKU_APPS_FORCE_DELETE ?? '') !== '';
  if (force === 'force' || force === '-f' || force === '--force') forced = true;
  if (!forced) {
    warn('WARNING: Potentially Destructive Action');
    warn(`This command will destroy ${svc} ${SERVICE_LABEL} service.`);
    warn(`To proceed, type "${svc}"`);
    println('');
    if (readLine() !== svc) {
      warn(`Confirmation did not match ${svc}. Aborted.`);
      return 1;
    }
  }
  info2Quiet(`Deleting ${svc}`);
  await serviceContainerRm(svc);
  verboseQuiet('Removing data');
  rmSync(root, { recursive: true, force: true });
  rmSync(join(CONFIG_ROOT, svc), { recursive: true, force: true });
  info2(`${SERVICE_LABEL} container deleted: ${svc}`);
};

/** The subcommands main.ts dispatches to (only when the plugin is enabled). */
export const commands: Record<string, Command> = {
  'postgres:app-links': appLinks,
  'postgres:backup-schedule': backupSchedule,
  'postgres:backup-schedule-cat': backupScheduleCat,
  'postgres:backup-unschedule': backupUnschedule,
  'postgres:connect': connect,
  'postgres:create': create,
  'postgres:destroy': destroy,
  'postgres:exists': exists,
  'postgres:export': exportCmd,
  'postgres:import': importCmd,
  'postgres:info': info,
  'postgres:link': link,
  'postgres:linked': linked,
  'postgres:links': links,
  'postgres:list': list,
  'postgres:pause': pause,
  'postgres:restart': restart,
  'postgres:start': start,
  'postgres:stop': stop,
  'postgres:unlink': unlink,
};

// ---------------------------------------------------------------- triggers

/** `install`: pull the images, make the data and config roots, fill in IMAGE files (P install). */
const installTrigger: Trigger = async () => {
  if (process.env.POSTGRES_DISABLE_PULL === 'true') {
    eprintln(
      ' !     POSTGRES_DISABLE_PULL environment variable detected. Not running pull command.',
    );
  } else {
    const def = pluginImage();
    for (const img of [`${def.image}:${def.version}`, ...HELPER_IMAGES]) {
      if (!imageExists(img) && !pullImage(img)) return 1;
    }
  }
  mkdirDokku(POSTGRES_ROOT);
  chownDokku(POSTGRES_ROOT);
  mkdirDokku(CONFIG_ROOT);
  for (const svc of listServices()) {
    const root = serviceRoot(svc);
    if (!existsSync(join(root, 'IMAGE')) || !existsSync(join(root, 'IMAGE_VERSION'))) {
      const running = containerByName(serviceName(svc))?.image ?? '';
      if (running.includes(':')) {
        writeServiceFile(join(root, 'IMAGE'), `${running.slice(0, running.lastIndexOf(':'))}\n`);
        writeServiceFile(
          join(root, 'IMAGE_VERSION'),
          `${running.slice(running.lastIndexOf(':') + 1)}\n`,
        );
      }
    }
  }
};

/** `pre-delete APP`: drop the app from every LINKS file. */
const preDeleteTrigger: Trigger = async (args) => {
  const app = args[0] ?? '';
  for (const svc of listServices()) {
    verboseQuiet(`Unlinking from ${svc}`);
    const p = join(serviceRoot(svc), 'LINKS');
    if (existsSync(p))
      writeLinks(
        svc,
        linksOf(svc).filter((a) => a !== app),
      );
  }
};

async function startLinkedServices(app: string): Promise<number> {
  for (const svc of listServices()) {
    if (!linksOf(svc).includes(app)) continue;
    const status = serviceStatus(svc);
    if (status === 'running') continue;
    warn(`${SERVICE_LABEL} service ${svc} is not running, issuing service start`);
    const code = await serviceStart(svc);
    if (code !== 0) return code;
  }
  return 0;
}

/** `pre-start APP`: start the linked services that are down. */
const preStartTrigger: Trigger = async (args) => startLinkedServices(args[0] ?? '');

/** `pre-restore SCHEDULER APP`: the same, for docker-local. */
const preRestoreTrigger: Trigger = async (args) => {
  if (args[0] !== 'docker-local') return 0;
  return startLinkedServices(args[1] ?? '');
};

/** Triggers, run by the plugin's trigger files (or in-process by lib.runTrigger). */
export const triggers: Record<string, Trigger> = {
  install: installTrigger,
  'pre-delete': preDeleteTrigger,
  'pre-restore': preRestoreTrigger,
  'pre-start': preStartTrigger,
};

// ---------------------------------------------------------------- script entry

async function runAsScript(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const handler = name === undefined ? undefined : triggers[name];
  if (handler === undefined) return 0;
  try {
    return (await handler(rest)) ?? 0;
  } catch (e) {
    if (e instanceof DokkuExit) return e.code;
    throw e;
  }
}

/** True when node was started on this file (the emulator folder is reached through a symlink). */
function isMainModule(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(resolve(argv1)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  runAsScript(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
