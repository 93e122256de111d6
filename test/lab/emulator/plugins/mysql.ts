/**
 * The dokku-mysql 1.44.3 plugin of the emulator, on a REAL MariaDB server per
 * service (Debian's mariadb-server; lab.json `mysqlBin`, `mysqlVersion`).
 * Read at dokku/dokku-mysql tag 1.44.3: `config`, `functions`
 * (service_create, service_create_container, service_export, service_import,
 * service_connect, service_start, service_url) and the shared parts in
 * service.ts.
 *
 * What the mysql image does, done here with the host's MariaDB:
 * - `config/` is the image's /etc/mysql/conf.d (the plugin writes
 *   disable_performance_schema.cnf and charset_utf8.cnf there), `data/` its
 *   /var/lib/mysql, owned by the `mysql` user as the entrypoint leaves it;
 * - the entrypoint's first run (no `data/mysql`): the system tables
 *   (mariadb-install-db), then root@localhost and root@'%' with ROOTPASSWORD,
 *   the database DATABASE_NAME, and the user mysql@'%' with PASSWORD and all
 *   rights on it (MYSQL_ROOT_PASSWORD, MYSQL_DATABASE, MYSQL_USER,
 *   MYSQL_PASSWORD), through the server's --init-file on its first start;
 * - CONFIG_OPTIONS are arguments of the server, as the image's `mysqld $@`.
 * Clients (`mariadb-dump`, `mariadb`) reach the server over TCP on 127.0.0.1.
 *
 * The module also runs as a script, for the plugin's trigger files:
 * `node plugins/mysql.js <trigger> [args…]`.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, fail, type Trigger, userIds, warn } from '../lib.js';
import {
  appendLog,
  containerDir,
  HELPER_IMAGES,
  labBinary,
  launchServer,
  randomHex,
  readEnvFile,
  runAs,
  runTriggerScript,
  type ServiceContainer,
  ServicePlugin,
  spawnInherit,
  writeServiceFile,
} from './service.js';

/** A mysql service container: the record plus the server binary it runs. */
interface MysqlContainer extends ServiceContainer {
  bin: string;
  env: Record<string, string>;
}

const CLIENT_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/** A value inside a single-quoted SQL string. */
function sqlString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** An identifier inside backticks. */
function sqlName(v: string): string {
  return `\`${v.replace(/`/g, '``')}\``;
}

/** The first-run SQL of the mysql image's docker_setup_db, for MariaDB's --init-file. */
function setupSql(db: string, password: string, rootPassword: string): string {
  return [
    `ALTER USER 'root'@'localhost' IDENTIFIED BY ${sqlString(rootPassword)};`,
    `CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ${sqlString(rootPassword)};`,
    `GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;`,
    // MariaDB's install-db also makes mysql@localhost (unix_socket); the mysql image has no such user.
    `DROP USER IF EXISTS 'mysql'@'localhost';`,
    `CREATE DATABASE IF NOT EXISTS ${sqlName(db)};`,
    `CREATE USER IF NOT EXISTS 'mysql'@'%' IDENTIFIED BY ${sqlString(password)};`,
    `GRANT ALL ON ${sqlName(db)}.* TO 'mysql'@'%';`,
    'FLUSH PRIVILEGES;',
    '',
  ].join('\n');
}

/** The image's entrypoint, then `mysqld`: returns false when the server did not come up. */
async function startServer(p: ServicePlugin<MysqlContainer>, c: MysqlContainer): Promise<boolean> {
  const svc = c.service;
  const my = userIds('mysql');
  if (process.getuid?.() !== 0) {
    appendLog(
      c,
      'permission denied while trying to connect to the docker API: the lab runs MySQL servers only for root\n',
    );
    return false;
  }
  if (my === null || !existsSync(c.bin)) {
    appendLog(c, `exec mysqld: no MySQL server binary for ${c.image} on this machine (${c.bin})\n`);
    return false;
  }
  const dir = containerDir(c.id);
  // the container's /run/mysqld: socket and pid file, the server's own
  mkdirSync(dir, { recursive: true });
  chownSync(dir, my.uid, my.gid);
  const cnf = join(dir, 'my.cnf');
  writeFileSync(cnf, `[mysqld]\n!includedir ${join(p.serviceRoot(svc), 'config')}\n`, {
    mode: 0o644,
  });
  mkdirSync(c.dataDir, { recursive: true });
  spawnSync('find', [c.dataDir, '!', '-user', 'mysql', '-exec', 'chown', 'mysql:mysql', '{}', '+']);
  const init: string[] = [];
  if (!existsSync(join(c.dataDir, 'mysql'))) {
    const r = runAs('mysql', [
      'mariadb-install-db',
      `--defaults-file=${cnf}`,
      `--datadir=${c.dataDir}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ]);
    appendLog(c, r.stdout + r.stderr);
    if (r.status !== 0) return false;
    const sql = join(dir, 'init.sql');
    writeFileSync(sql, setupSql(p.databaseName(svc), p.password(svc), p.rootPassword(svc)), {
      mode: 0o600,
    });
    chownSync(sql, my.uid, my.gid);
    init.push(`--init-file=${sql}`);
  }
  const pid = await launchServer(
    c,
    {
      user: 'mysql',
      argv: [
        c.bin,
        `--defaults-file=${cnf}`,
        `--datadir=${c.dataDir}`,
        `--socket=${join(dir, 'mysqld.sock')}`,
        `--pid-file=${join(dir, 'mysqld.pid')}`,
        ...c.configOptions.split(/\s+/).filter((w) => w !== ''),
        `--port=${c.port}`,
        '--bind-address=127.0.0.1',
        ...init,
      ],
      cwd: '/',
      env: c.env,
    },
    // mariadb-admin ping answers 0 once the server talks, even when access is denied
    async () =>
      spawnSync(
        'mariadb-admin',
        [
          '--no-defaults',
          '--connect-timeout=2',
          '-h',
          '127.0.0.1',
          '-P',
          String(c.port),
          '-u',
          'root',
          '--password=',
          'ping',
        ],
        { stdio: 'ignore', env: CLIENT_ENV },
      ).status === 0,
  );
  rmSync(join(dir, 'init.sql'), { force: true });
  if (pid === 0) return false;
  p.markRunning(c, pid);
  return true;
}

/** A client (`docker container exec NAME mysql…`) against the running server, our stdio. */
function client(c: MysqlContainer, file: string, args: string[], stdin: 'inherit' | 'ignore') {
  return spawnInherit(
    file,
    ['--no-defaults', '-h', '127.0.0.1', '-P', String(c.port), ...args],
    { ...CLIENT_ENV, LC_ALL: 'C.UTF-8' },
    stdin,
  );
}

/** dokku-mysql 1.44.3 (config, functions). */
export const mysql = new ServicePlugin<MysqlContainer>({
  prefix: 'mysql',
  label: 'MySQL',
  variable: 'MYSQL',
  port: 3306,
  defaultAlias: 'DATABASE',
  altAlias: 'DOKKU_MYSQL',
  scheme: 'mysql',
  configSuffix: 'config',
  unimplemented: [],
  firstHostPort: 13306,
  stopSignal: 'SIGTERM',
  helperImages: HELPER_IMAGES,
  fallbackImage: () => ({ image: 'mysql', version: '9.7.0' }),
  url: (p, svc, scheme) =>
    `${scheme}://mysql:${p.password(svc)}@${p.dnsHostname(svc)}:3306/${p.databaseName(svc)}`,
  writeCreateFiles: (p, svc, flags) => {
    const root = p.serviceRoot(svc);
    writeServiceFile(
      join(root, 'config', 'disable_performance_schema.cnf'),
      '[mysqld]\nperformance_schema = 0\n',
    );
    writeServiceFile(
      join(root, 'config', 'charset_utf8.cnf'),
      '[mysqld]\ncharacter-set-server = utf8mb4\ncollation-server = utf8mb4_unicode_ci\n',
    );
    let rootPassword = randomHex(8);
    let password = randomHex(8);
    if (flags.password) {
      password = flags.password;
      warn('Specified password may not be as secure as the auto-generated password');
    }
    if (flags.rootPassword) {
      rootPassword = flags.rootPassword;
      warn('Specified root password may not be as secure as the auto-generated root password');
    }
    writeServiceFile(join(root, 'ROOTPASSWORD'), `${rootPassword}\n`, 0o640);
    writeServiceFile(join(root, 'PASSWORD'), `${password}\n`, 0o640);
  },
  canCreate: (p, svc) => p.rootPassword(svc) !== '' && p.password(svc) !== '',
  createContainer: async (p, svc) => {
    const root = p.serviceRoot(svc);
    const c = await p.createRecord(svc, (base) => ({
      ...base,
      cmd: `mysqld ${base.configOptions}`.trim(),
      bin: labBinary('mysqlBin') || '/usr/sbin/mariadbd',
      binds: [`${join(root, 'config')}:/etc/mysql/conf.d`, `${join(root, 'data')}:/var/lib/mysql`],
      env: {
        ...readEnvFile(join(root, 'ENV')),
        MYSQL_DATABASE: p.databaseName(svc),
        MYSQL_USER: 'mysql',
      },
    }));
    return p.startAndWait(svc, c);
  },
  startServer,
  exportService: async (p, svc) => {
    const c = p.execTarget(svc);
    return client(
      c,
      'mariadb-dump',
      [
        '--default-character-set=utf8mb4',
        '--user=root',
        `--password=${p.rootPassword(svc)}`,
        '--single-transaction',
        '--no-tablespaces',
        '--quick',
        p.databaseName(svc),
      ],
      'ignore',
    );
  },
  importService: async (p, svc) => {
    if (process.stdin.isTTY === true) fail('No data provided on stdin.');
    const c = p.execTarget(svc);
    return client(
      c,
      'mariadb',
      ['--user=root', `--password=${p.rootPassword(svc)}`, p.databaseName(svc)],
      'inherit',
    );
  },
  connectService: async (p, svc) => {
    const c = p.execTarget(svc);
    return client(
      c,
      'mariadb',
      ['--user=mysql', `--password=${p.password(svc)}`, `--database=${p.databaseName(svc)}`],
      'inherit',
    );
  },
});

/** The subcommands main.ts dispatches to (only when the plugin is enabled). */
export const commands: Record<string, Command> = mysql.commands();

/** Triggers, run by the plugin's trigger files (or in-process by lib.runTrigger). */
export const triggers: Record<string, Trigger> = mysql.triggers();

runTriggerScript(import.meta.url, triggers);
