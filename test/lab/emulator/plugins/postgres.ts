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
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Command,
  fail,
  info2,
  labConfig,
  type Trigger,
  userIds,
  verboseQuiet,
  warn,
} from '../lib.js';
import {
  appendLog,
  childOf,
  containerDir,
  DNS_FILE,
  HELPER_IMAGES,
  pidStartTime,
  pullImage,
  randomHex,
  readTrim,
  runAs,
  runTriggerScript,
  type ServiceContainer,
  ServicePlugin,
  sleep,
  spawnInherit,
  writeServiceFile,
} from './service.js';

export { DNS_FILE, pullImage };

/** A postgres service container: the engine's record plus the server binaries it runs. */
interface PostgresContainer extends ServiceContainer {
  pgBin: string;
}

/** Which server binaries an image tag runs: the lab's own for its major, else /usr/lib/postgresql/<major>/bin. */
function binariesFor(version: string): string {
  const cfg = labConfig();
  const major = version.split('.')[0] ?? '';
  if (major === (cfg.pgVersion.split('.')[0] ?? '')) return cfg.pgBin;
  return `/usr/lib/postgresql/${major}/bin`;
}

/** Run a program as the OS user `postgres` (the image's uid inside the container). */
function asPostgres(argv: string[], env: NodeJS.ProcessEnv = {}, input?: string) {
  return runAs('postgres', argv, env, input);
}

/**
 * The postgres image's entrypoint, then the server: fix the data dir's owner
 * and mode as docker-entrypoint.sh does, initdb on an empty one, then exec the
 * postmaster as `postgres`, its output in the container log (written by us, the
 * "daemon", as docker does). Returns false when the server did not become
 * ready (its words are in the container log).
 */
async function startServer(
  p: ServicePlugin<PostgresContainer>,
  c: PostgresContainer,
): Promise<boolean> {
  const password = p.password(c.service);
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
      for (const k of [pid, shim]) {
        try {
          if (k > 0) process.kill(k, 'SIGKILL');
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

/** Environment of a PostgreSQL client run against a service (`docker container exec`). */
function clientEnv(p: ServicePlugin<PostgresContainer>, svc: string): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    PGPASSWORD: p.password(svc),
    PGHOST: '127.0.0.1',
    PGUSER: 'postgres',
  };
}

/** Run a client of the service's server binaries with our stdio. */
function spawnClient(
  p: ServicePlugin<PostgresContainer>,
  c: PostgresContainer,
  file: string,
  args: string[],
  stdin: 'inherit' | 'ignore',
): Promise<number> {
  return spawnInherit(
    join(c.pgBin, file),
    ['-p', String(c.port), ...args],
    clientEnv(p, c.service),
    stdin,
  );
}

/** SSL setup of "Securing connection to database" (scripts/create_ssl_certs.sh + enable_ssl.sh). */
function enableSsl(p: ServicePlugin<PostgresContainer>, svc: string, c: PostgresContainer): void {
  const certs = join(p.serviceRoot(svc), 'certs');
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

/** service_create_container (P functions). */
async function createContainer(p: ServicePlugin<PostgresContainer>, svc: string): Promise<boolean> {
  const root = p.serviceRoot(svc);
  const password = p.password(svc);
  const db = p.databaseName(svc);
  const { version } = p.serviceImage(svc);
  const major = Number.parseInt(version, 10);
  const mountPoint =
    Number.isFinite(major) && major >= 18 ? '/var/lib/postgresql' : '/var/lib/postgresql/data';
  const c = await p.createRecord(svc, (base) => ({
    ...base,
    cmd: 'postgres',
    pgBin: binariesFor(version),
    binds: [`${join(root, 'data')}:${mountPoint}`],
  }));

  if (!(await p.containerStart(c))) {
    verboseQuiet('Waiting for container to be ready');
    p.containerOutput(svc, c);
    return false;
  }
  await p.reconcilePorts(svc);
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
  await p.pause(svc, true);
  enableSsl(p, svc, c);
  if (!(await p.containerStart(c))) {
    p.containerOutput(svc, c);
    return false;
  }
  await p.reconcilePorts(svc);

  info2(`${p.spec.label} container created: ${svc}`);
  p.info(svc, undefined);
  return true;
}

/** dokku-postgres 1.48.0 (P config, functions). */
export const postgres = new ServicePlugin<PostgresContainer>({
  prefix: 'postgres',
  label: 'Postgres',
  variable: 'POSTGRES',
  port: 5432,
  defaultAlias: 'DATABASE',
  altAlias: 'DOKKU_POSTGRES',
  scheme: 'postgres',
  configSuffix: 'data',
  unimplemented: [],
  firstHostPort: 15432,
  stopSignal: 'SIGINT',
  helperImages: HELPER_IMAGES,
  fallbackImage: () => ({ image: 'postgres', version: labConfig().pgVersion }),
  url: (p, svc, scheme) =>
    `${scheme}://postgres:${p.password(svc)}@${p.dnsHostname(svc)}:5432/${p.databaseName(svc)}`,
  writeCreateFiles: (p, svc, flags) => {
    let password = randomHex(16);
    if (flags.password) {
      password = flags.password;
      warn('Specified password may not be as secure as the auto-generated password');
    }
    writeServiceFile(join(p.serviceRoot(svc), 'PASSWORD'), `${password}\n`, 0o640);
  },
  canCreate: (p, svc) => p.password(svc) !== '',
  createContainer,
  startServer,
  exportService: async (p, svc) => {
    const c = p.execTarget(svc);
    return spawnClient(
      p,
      c,
      'pg_dump',
      [
        '-Fc',
        '--no-acl',
        '--no-owner',
        '-h',
        '127.0.0.1',
        '-U',
        'postgres',
        '-w',
        p.databaseName(svc),
      ],
      'ignore',
    );
  },
  importService: async (p, svc) => {
    if (process.stdin.isTTY === true) fail('No data provided on stdin.');
    const c = p.execTarget(svc);
    return spawnClient(
      p,
      c,
      'pg_restore',
      ['-h', '127.0.0.1', '-cO', '--if-exists', '-d', p.databaseName(svc), '-U', 'postgres', '-w'],
      'inherit',
    );
  },
  connectService: async (p, svc) => {
    const c = p.execTarget(svc);
    return spawnClient(
      p,
      c,
      'psql',
      ['-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-U', 'postgres', p.databaseName(svc)],
      'inherit',
    );
  },
});

/** PLUGIN_DATA_ROOT. */
export const POSTGRES_ROOT = postgres.root;

/** The subcommands main.ts dispatches to (only when the plugin is enabled). */
export const commands: Record<string, Command> = postgres.commands();

/** Triggers, run by the plugin's trigger files (or in-process by lib.runTrigger). */
export const triggers: Record<string, Trigger> = postgres.triggers();

runTriggerScript(import.meta.url, triggers);
