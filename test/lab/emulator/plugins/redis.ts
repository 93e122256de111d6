/**
 * The dokku-redis 1.43.0 plugin of the emulator, on a REAL redis-server per
 * service (Debian's redis-server; lab.json `redisBin`, `redisVersion`).
 * Read at dokku/dokku-redis tag 1.43.0: `config`, `functions`
 * (service_create, service_create_container, service_export, service_import,
 * service_connect, service_start, service_url) and the shared parts in
 * service.ts.
 *
 * - `config/redis.conf` is the image's /usr/local/etc/redis/redis.conf (the
 *   plugin writes `requirepass <PASSWORD>` there), `data/` its /data and the
 *   server's working directory, so `dump.rdb` lands in `data/`;
 * - the server is `redis-server <config>/redis.conf --bind … $CONFIG_OPTIONS`
 *   as the `redis` user, as the image's entrypoint runs it;
 * - export is the plugin's: LASTSAVE, BGSAVE, LASTSAVE again every 5 s until
 *   it changes, then the bytes of `data/dump.rdb`; import removes the
 *   container, replaces `data/dump.rdb` with stdin and makes the container again.
 *
 * The module also runs as a script, for the plugin's trigger files:
 * `node plugins/redis.js <trigger> [args…]`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, createReadStream, createWriteStream, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Command, eprintln, fail, type Trigger, userIds, warn } from '../lib.js';
import {
  appendLog,
  HELPER_IMAGES,
  labBinary,
  launchServer,
  randomHex,
  readEnvFile,
  readOr,
  runTriggerScript,
  type ServiceContainer,
  ServicePlugin,
  sleep,
  spawnInherit,
  suppressOutput,
  tcpOpen,
  writeServiceFile,
} from './service.js';

/** A redis service container: the record plus the server binary it runs. */
interface RedisContainer extends ServiceContainer {
  bin: string;
  configFile: string;
  env: Record<string, string>;
}

const CLIENT_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/** The image's entrypoint (chown /data to redis), then redis-server as `redis`. */
async function startServer(p: ServicePlugin<RedisContainer>, c: RedisContainer): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    appendLog(
      c,
      'permission denied while trying to connect to the docker API: the lab runs Redis servers only for root\n',
    );
    return false;
  }
  if (userIds('redis') === null || !existsSync(c.bin)) {
    appendLog(c, `exec redis-server: no Redis server for ${c.image} on this machine (${c.bin})\n`);
    return false;
  }
  // docker-entrypoint.sh: find . \! -user redis -exec chown redis '{}' +
  spawnSync('find', [c.dataDir, '!', '-user', 'redis', '-exec', 'chown', 'redis', '{}', '+']);
  const pid = await launchServer(
    c,
    {
      user: 'redis',
      argv: [
        c.bin,
        c.configFile,
        '--bind',
        '127.0.0.1',
        ...c.configOptions.split(/\s+/).filter((w) => w !== ''),
        '--port',
        String(c.port),
      ],
      cwd: c.dataDir,
      env: c.env,
    },
    async () => tcpOpen(c.port),
  );
  if (pid === 0) return false;
  p.markRunning(c, pid);
  return true;
}

/** `docker container exec NAME bash -c "echo CMD | redis-cli -a PASSWORD"`: its stdout; its stderr is ours. */
function redisCli(c: RedisContainer, password: string, command: string): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(c.port), '-a', password], {
    input: `${command}\n`,
    env: CLIENT_ENV,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return r.stdout?.toString() ?? '';
}

/** dokku-redis 1.43.0 (config, functions). */
export const redis = new ServicePlugin<RedisContainer>({
  prefix: 'redis',
  label: 'Redis',
  variable: 'REDIS',
  port: 6379,
  defaultAlias: 'REDIS',
  altAlias: 'DOKKU_REDIS',
  scheme: 'redis',
  configSuffix: 'config',
  unimplemented: [],
  firstHostPort: 16379,
  stopSignal: 'SIGTERM',
  helperImages: HELPER_IMAGES,
  fallbackImage: () => ({ image: 'redis', version: '8.8.0' }),
  url: (p, svc, scheme) => `${scheme}://:${p.password(svc)}@${p.dnsHostname(svc)}:6379`,
  writeCreateFiles: (p, svc, flags) => {
    const root = p.serviceRoot(svc);
    const conf = join(root, 'config', 'redis.conf');
    const from = process.env.REDIS_CONFIG_PATH ?? '';
    if (from === '') writeServiceFile(conf, '# requirepass\n');
    else {
      try {
        copyFileSync(from, conf);
      } catch {
        fail(`Unable to copy the ${from} to the config directory`);
      }
    }
    let password = randomHex(32);
    if (flags.password) {
      password = flags.password;
      warn('Specified password may not be as secure as the auto-generated password');
    }
    writeServiceFile(join(root, 'PASSWORD'), `${password}\n`, 0o640);
    // sed "s/# requirepass.*/requirepass ${PASSWORD}/"
    writeServiceFile(conf, readOr(conf).replace(/# requirepass.*/g, `requirepass ${password}`));
  },
  canCreate: () => true,
  createContainer: async (p, svc) => {
    const root = p.serviceRoot(svc);
    const c = await p.createRecord(svc, (base) => ({
      ...base,
      cmd: `redis-server /usr/local/etc/redis/redis.conf --bind 0.0.0.0 ${base.configOptions}`.trim(),
      bin: labBinary('redisBin') || '/usr/bin/redis-server',
      configFile: join(root, 'config', 'redis.conf'),
      binds: [`${join(root, 'config')}:/usr/local/etc/redis`, `${join(root, 'data')}:/data`],
      env: readEnvFile(join(root, 'ENV')),
    }));
    return p.startAndWait(svc, c);
  },
  startServer,
  exportService: async (p, svc) => {
    const c = p.execTarget(svc);
    const password = p.password(svc);
    const last1 = redisCli(c, password, 'LASTSAVE');
    spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(c.port), '-a', password], {
      input: 'BGSAVE\n',
      env: CLIENT_ENV,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    let last2 = redisCli(c, password, 'LASTSAVE');
    while (last1 === last2) {
      last2 = redisCli(c, password, 'LASTSAVE');
      await sleep(5000);
    }
    const dump = join(c.dataDir, 'dump.rdb');
    if (!existsSync(dump)) {
      eprintln('cat: /data/dump.rdb: No such file or directory');
      return 1;
    }
    await new Promise<void>((res, rej) => {
      const from = createReadStream(dump);
      from.on('error', rej);
      from.on('end', res);
      from.pipe(process.stdout, { end: false });
    });
    return 0;
  },
  importService: async (p, svc) => {
    if (process.stdin.isTTY === true) fail('No data provided on stdin.');
    const root = p.serviceRoot(svc);
    await suppressOutput(() => p.containerRm(svc));
    const dump = join(root, 'data', 'dump.rdb');
    rmSync(dump, { force: true });
    await pipeline(process.stdin, createWriteStream(dump));
    // docker run … bash -c "chown redis: /data/dump.rdb"
    if (process.getuid?.() === 0) spawnSync('chown', ['redis:', dump]);
    return suppressOutput(() => p.start(svc));
  },
  connectService: async (p, svc) => {
    const c = p.execTarget(svc);
    return spawnInherit(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(c.port), '-a', p.password(svc)],
      { ...CLIENT_ENV, LC_ALL: 'C.UTF-8' },
      'inherit',
    );
  },
});

/** The subcommands main.ts dispatches to (only when the plugin is enabled). */
export const commands: Record<string, Command> = redis.commands();

/** Triggers, run by the plugin's trigger files (or in-process by lib.runTrigger). */
export const triggers: Record<string, Trigger> = redis.triggers();

runTriggerScript(import.meta.url, triggers);
