/**
 * The emulator's dokku-mysql, dokku-redis and dokku-memcached plugins on a
 * real lab host, each on its real server: the service folder as the plugin
 * lays it out (flags stored where the plugin stores them), info with every
 * flag, link/unlink and the env vars and aliases they set, export/import
 * round trips with real rows and keys, stop/start, expose through the
 * ambassador from the controller, backup schedules, the memcached
 * subcommands that answer "Not yet implemented", and the triggers
 * (pre-delete on apps:destroy).
 */
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { labTest, useLab } from '../lab/ava.js';
import { publishRegistry, SEEDED } from '../lab/emulator/seed.js';
import { type LabHost, registryDir } from '../lab/lab.js';

const lab = useLab({ instance: 'datastores-test', hosts: ['one'] });

const INFO_FLAGS = [
  '--config-dir',
  '--config-options',
  '--data-dir',
  '--dsn',
  '--exposed-ports',
  '--id',
  '--internal-ip',
  '--initial-network',
  '--links',
  '--post-create-network',
  '--post-start-network',
  '--service-root',
  '--status',
  '--version',
];

/** Send `payload` to ADDRESS:PORT from the controller; resolves with what came back once `done` says so. */
function tcp(address: string, port: number, payload: string, done: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: address, port });
    let got = '';
    s.setTimeout(10_000, () => s.destroy(new Error(`no answer from ${address}:${port}: ${got}`)));
    s.on('connect', () => s.write(payload));
    s.on('data', (b) => {
      got += b.toString();
      if (done.test(got)) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

/** A RESP command. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

async function mode(h: LabHost, path: string): Promise<string> {
  return (await h.must(`stat -c '%a %U:%G' ${path}`)).trim();
}

let ready = false;

/** Publish the fixtures, install the three plugins from their URLs, make an app to link. */
async function setup(): Promise<LabHost> {
  const one = lab().host('one');
  if (ready) return one;
  const lj = JSON.parse(await one.must('cat /var/lib/docker/lab.json')) as { pgVersion: string };
  publishRegistry(registryDir(lab().instance), lj.pgVersion);
  for (const p of SEEDED.plugins.filter((x) => ['mysql', 'redis', 'memcached'].includes(x.name))) {
    await one.must(`dokku plugin:install ${p.url} --name ${p.name}`);
  }
  await one.must('dokku apps:create shop');
  ready = true;
  return one;
}

labTest('plugin:install pulls each plugin image and the lab found each server', async (t) => {
  const one = await setup();
  const lj = JSON.parse(await one.must('cat /var/lib/docker/lab.json')) as Record<string, string>;
  for (const k of ['mysql', 'redis', 'memcached']) {
    t.regex(lj[`${k}Version`] ?? '', /^\d+\.\d+\.\d+$/, k);
    t.is((await one.exec(`test -x ${lj[`${k}Bin`]}`)).code, 0, k);
  }
  for (const img of ['mysql/9.7.0', 'redis/8.8.0', 'memcached/1.6.42', 'dokku/ambassador/0.8.2'])
    t.is((await one.exec(`test -d /var/lib/docker/image/${img}`)).code, 0, img);
  t.regex(
    await one.must('dokku plugin:list'),
    /^ {2}redis +1\.43\.0 enabled +dokku redis service plugin/m,
  );
  t.is(await one.must('dokku redis:list 2>&1'), ' !     There are no Redis services\n');
});

labTest('redis: create with flags, the folder, info, keys through export and import', async (t) => {
  const one = await setup();
  const created = await one.exec(
    "dokku redis:create cache --config-options '--maxmemory-policy allkeys-lru' --memory 128 --shm-size 32m --custom-env 'TZ=UTC;ROLE=cache'",
  );
  t.is(created.code, 0, created.stderr);
  t.regex(
    created.stdout,
    /Waiting for container to be ready\n=====> Redis container created: cache\n=====> cache redis service information\n/,
  );
  const root = '/var/lib/dokku/services/redis/cache';
  const pw = (await one.must(`cat ${root}/PASSWORD`)).trim();
  t.regex(pw, /^[0-9a-f]{64}$/);
  t.is(await mode(one, `${root}/PASSWORD`), '640 dokku:dokku');
  t.is(await one.must(`cat ${root}/config/redis.conf`), `requirepass ${pw}\n`);
  t.is(await one.must(`cat ${root}/CONFIG_OPTIONS`), '--maxmemory-policy allkeys-lru\n');
  t.is(await one.must(`cat ${root}/ENV`), 'TZ=UTC\nROLE=cache\n');
  t.is(await one.must(`cat ${root}/SERVICE_MEMORY`), '128\n');
  t.is(await one.must(`cat ${root}/SHM_SIZE`), '32m\n');
  t.is(
    await one.must(`cat ${root}/IMAGE ${root}/IMAGE_VERSION ${root}/DATABASE_NAME`),
    'redis\n8.8.0\ncache\n',
  );
  t.is(await one.must(`cat ${root}/LINKS`), '');
  t.regex(await one.must(`cat ${root}/ID`), /^[0-9a-f]{64}$/);
  t.is((await one.exec(`test -e ${root}/ROOTPASSWORD`)).code, 1);

  // every info flag answers one value; the block has them all, in order
  const values: Record<string, string> = {};
  for (const f of INFO_FLAGS)
    values[f] = (await one.must(`dokku redis:info cache ${f}`)).replace(/\n$/, '');
  t.is(values['--status'], 'running');
  t.is(values['--dsn'], `redis://:${pw}@dokku-redis-cache:6379`);
  t.is(values['--config-dir'], `${root}/config`);
  t.is(values['--data-dir'], `${root}/data`);
  t.is(values['--config-options'], '--maxmemory-policy allkeys-lru');
  t.is(values['--version'], 'redis:8.8.0');
  t.is(values['--exposed-ports'], '-');
  t.is(values['--links'], '-');
  t.regex(values['--internal-ip'] ?? '', /^172\.17\.0\.\d+$/);
  const block = await one.must('dokku --quiet redis:info cache');
  t.deepEqual(
    block
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.trim().split(':')[0]),
    INFO_FLAGS.map((f) => {
      const k = f.slice(2).replace(/-/g, ' ');
      return k.charAt(0).toUpperCase() + k.slice(1);
    }),
  );
  const bad = await one.exec('dokku redis:info cache --nope');
  t.is(bad.code, 1);
  t.is(bad.stderr, ` !     Invalid flag passed, valid flags: ${INFO_FLAGS.join(' ')}\n`);

  // the real server runs with the stored options and env
  const id = (await one.must(`cat ${root}/ID`)).trim();
  const record = JSON.parse(
    readFileSync(one.pathOnController(`/var/lib/docker/containers/${id}/config.json`), 'utf8'),
  ) as { pid: number; kind: string; port: number };
  t.is(record.kind, 'redis-service');
  const pid = record.pid;
  // redis-server rewrites its own environ (its process title); the container's shim keeps it
  const shim = (await one.must(`ps -o ppid= -p ${pid}`)).trim();
  t.regex(await one.must(`tr '\\0' '\\n' </proc/${shim}/environ`), /^ROLE=cache$/m);
  t.is(
    (
      await one.must('dokku redis:connect cache 2>/dev/null', {
        input: 'CONFIG GET maxmemory-policy\n',
      })
    ).trim(),
    'maxmemory-policy\nallkeys-lru',
  );

  await one.must('dokku redis:connect cache', { input: 'SET k1 one\nSET k2 two\n' });
  const exp = await one.exec(
    'dokku redis:export cache >/tmp/cache.rdb && head -c 5 /tmp/cache.rdb',
  );
  t.is(exp.code, 0, exp.stderr);
  t.is(exp.stdout, 'REDIS');
  // redis-cli -a says so on stderr, as in the plugin's docker exec
  t.regex(exp.stderr, /Warning: Using a password with '-a' or '-u' option/);
  await one.must('dokku redis:connect cache', { input: 'SET k1 changed\nDEL k2\n' });
  const oldId = (await one.must(`cat ${root}/ID`)).trim();
  const imp = await one.exec('dokku redis:import cache </tmp/cache.rdb');
  t.is(imp.code, 0, imp.stderr);
  t.is(imp.stdout, '', 'import is silent (suppress_output)');
  t.not((await one.must(`cat ${root}/ID`)).trim(), oldId, 'a new container');
  t.is(
    (await one.must('dokku redis:connect cache 2>/dev/null', { input: 'MGET k1 k2\n' })).trim(),
    'one\ntwo',
  );
  t.is((await one.must(`stat -c %U ${root}/data/dump.rdb`)).trim(), 'redis');

  // stop removes the container; redis saved on SIGTERM, so the keys come back
  t.is(
    await one.must('dokku redis:stop cache'),
    '=====> Pausing container\n       Container paused\n       Removing container\n',
  );
  t.is((await one.must('dokku redis:info cache --status')).trim(), 'missing');
  const again = await one.exec('dokku redis:stop cache');
  t.is(again.stderr, ' !     Service is already paused\n');
  const started = await one.must('dokku redis:start cache');
  t.true(
    started.startsWith(
      '=====> Starting container\n       Waiting for container to be ready\n=====> Redis container created: cache\n',
    ),
    started,
  );
  t.is(
    (await one.must('dokku redis:connect cache 2>/dev/null', { input: 'MGET k1 k2\n' })).trim(),
    'one\ntwo',
  );
  const running = await one.exec('dokku redis:start cache');
  t.is(running.stderr, ' !     Service is already started\n');
  t.is(
    await one.must('dokku redis:restart cache'),
    '=====> Pausing container\n       Container paused\n=====> Starting container\n=====> Container started\n-----> Please call dokku ps:restart on all linked apps\n',
  );
});

labTest('redis: link, aliases, linked, links, app-links, unlink, pre-delete', async (t) => {
  const one = await setup();
  await one.must('dokku redis:create second');
  const pw = (await one.must('cat /var/lib/dokku/services/redis/cache/PASSWORD')).trim();
  const linked = await one.must('dokku redis:link cache shop --no-restart');
  t.regex(
    linked,
    /-----> Setting config vars\n\s+REDIS_URL: +redis:\/\/:[0-9a-f]{64}@dokku-redis-cache:6379\n/,
  );
  t.true(linked.includes('Skipping restart of linked app'));
  t.is(
    (await one.must('dokku config:get shop REDIS_URL')).trim(),
    `redis://:${pw}@dokku-redis-cache:6379`,
  );
  await one.must('dokku redis:link second shop --no-restart');
  t.regex(
    await one.must('dokku config:get shop DOKKU_REDIS_AQUA_URL'),
    /^redis:\/\/:[0-9a-f]{64}@dokku-redis-second:6379\n$/,
  );
  await one.must('dokku redis:unlink second shop');
  await one.must("dokku redis:link second shop --alias 'blue_cache' --no-restart");
  t.regex(await one.must('dokku config:get shop BLUE_CACHE_URL'), /@dokku-redis-second:6379\n$/);
  t.is((await one.exec('dokku config:get shop DOKKU_REDIS_AQUA_URL')).code, 1);
  const dup = await one.exec('dokku redis:link cache shop --no-restart');
  t.is(dup.code, 1);
  t.is(dup.stderr, ' !     Already linked as REDIS_URL\n');
  t.is(
    (await one.must('dokku redis:linked cache shop')).trim(),
    '-----> Service cache is linked to shop',
  );
  t.is(await one.must('dokku redis:links cache'), 'shop\n');
  t.is(await one.must('dokku redis:app-links shop'), 'cache\nsecond\n');
  t.is((await one.must('dokku redis:info cache --links')).trim(), 'shop');
  t.true(
    (await one.must('cat /var/lib/dokku/config/docker-options/shop/_default_.deploy')).includes(
      '--link dokku.redis.cache:dokku-redis-cache',
    ),
  );
  const busy = await one.exec('dokku redis:destroy cache --force');
  t.is(busy.stderr, ' !     Cannot delete linked service\n');
  await one.must('dokku --quiet redis:unlink cache shop');
  t.is((await one.exec('dokku config:get shop REDIS_URL')).code, 1);
  const notLinked = await one.exec('dokku redis:linked cache shop');
  t.is(notLinked.code, 1);
  t.is(notLinked.stderr, ' !     Service cache is not linked to shop\n');
  // pre-delete: destroying the app drops it from every plugin's LINKS
  await one.must('dokku apps:create doomed && dokku redis:link second doomed --no-restart');
  await one.must('dokku --force apps:destroy doomed');
  t.false((await one.must('cat /var/lib/dokku/services/redis/second/LINKS')).includes('doomed'));
});

labTest(
  'redis: expose through the ambassador, from the controller; unexpose; backup schedule; destroy',
  async (t) => {
    const one = await setup();
    const pw = (await one.must('cat /var/lib/dokku/services/redis/cache/PASSWORD')).trim();
    t.is(
      await one.must('dokku redis:expose cache 26390'),
      '-----> Service cache exposed on port(s) [container->host]: 6379->26390 \n',
    );
    t.is(await one.must('cat /var/lib/dokku/services/redis/cache/PORT'), '26390\n');
    t.is(await one.must('dokku redis:info cache --exposed-ports'), '6379->26390 \n');
    const got = await tcp(
      one.address,
      26390,
      resp('AUTH', pw) + resp('GET', 'k1'),
      /\$3\r\none\r\n/,
    );
    t.true(got.startsWith('+OK\r\n'), got);
    // the ambassador follows the service through stop/start
    await one.must('dokku redis:stop cache && dokku redis:start cache');
    t.regex(
      await tcp(one.address, 26390, resp('AUTH', pw) + resp('GET', 'k2'), /\r\ntwo\r\n/),
      /two/,
    );
    const twice = await one.exec('dokku redis:expose cache 26391');
    t.is(twice.stderr, ' !     Service cache already exposed on port(s) 26390\n');
    t.is(await one.must('dokku redis:unexpose cache'), '-----> Service cache unexposed\n');
    t.is((await one.exec('test -e /var/lib/dokku/services/redis/cache/PORT')).code, 1);
    await t.throwsAsync(tcp(one.address, 26390, resp('PING'), /PONG/));
    const random = await one.must('dokku redis:expose cache');
    t.regex(
      random,
      /^-----> Service cache exposed on port\(s\) \[container->host\]: 6379->\d+ \n$/,
    );
    await one.must('dokku redis:unexpose cache');

    await one.must("dokku redis:backup-schedule cache '0 3 * * *' bucket");
    t.is(
      await one.must('dokku redis:backup-schedule-cat cache'),
      '0 3 * * * dokku /usr/bin/dokku redis:backup cache bucket \n',
    );
    t.is(await mode(one, '/etc/cron.d/dokku-redis-cache'), '644 root:root');
    await one.must('dokku redis:backup-unschedule cache');
    const none = await one.exec('dokku redis:backup-schedule-cat cache');
    t.is(none.stderr, ' !     There is no scheduled backup for cache.\n');

    const destroyed = await one.must('dokku redis:destroy cache --force');
    t.is(
      destroyed,
      '=====> Deleting cache\n=====> Pausing container\n       Container paused\n       Removing container\n       Removing data\n=====> Redis container deleted: cache\n',
    );
    t.is((await one.exec('test -e /var/lib/dokku/services/redis/cache')).code, 1);
    const gone = await one.exec('dokku redis:info cache');
    t.is(gone.stderr, ' !     Redis service cache does not exist\n');
    t.is(await one.must('dokku --quiet redis:list'), 'second\n');
  },
);

labTest(
  'mysql: create with passwords and flags, rows through export, import, stop and start',
  async (t) => {
    const one = await setup();
    const created = await one.exec(
      "dokku mysql:create shop-db --password userpw --root-password rootpw --config-options '--max-connections=42' --memory 256 --custom-env 'TZ=UTC'",
    );
    t.is(created.code, 0, created.stderr);
    t.is(
      created.stderr,
      ' !     Specified password may not be as secure as the auto-generated password\n !     Specified root password may not be as secure as the auto-generated root password\n',
    );
    t.regex(created.stdout, /=====> MySQL container created: shop-db\n/);
    const root = '/var/lib/dokku/services/mysql/shop-db';
    t.is(await one.must(`cat ${root}/PASSWORD ${root}/ROOTPASSWORD`), 'userpw\nrootpw\n');
    t.is(await mode(one, `${root}/ROOTPASSWORD`), '640 dokku:dokku');
    t.is(
      await one.must(`cat ${root}/config/disable_performance_schema.cnf`),
      '[mysqld]\nperformance_schema = 0\n',
    );
    t.is(
      await one.must(`cat ${root}/config/charset_utf8.cnf`),
      '[mysqld]\ncharacter-set-server = utf8mb4\ncollation-server = utf8mb4_unicode_ci\n',
    );
    t.is(
      await one.must(
        `cat ${root}/DATABASE_NAME ${root}/IMAGE ${root}/IMAGE_VERSION ${root}/SERVICE_MEMORY`,
      ),
      'shop_db\nmysql\n9.7.0\n256\n',
    );
    t.is(
      await one.must('dokku mysql:info shop-db --dsn'),
      'mysql://mysql:userpw@dokku-mysql-shop-db:3306/shop_db\n',
    );
    t.is(await one.must('dokku mysql:info shop-db --config-dir'), `${root}/config\n`);
    t.is((await one.must(`stat -c %U ${root}/data/mysql`)).trim(), 'mysql');

    // the config folder and the options reach the server; the user owns its database
    const vars = await one.must('dokku mysql:connect shop-db', {
      input: 'SELECT @@character_set_server, @@max_connections, @@performance_schema;\n',
    });
    t.regex(vars, /utf8mb4\t42\t0/);
    await one.must('dokku mysql:connect shop-db', {
      input:
        "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'oar'), (2, 'sail');\n",
    });
    const dump = await one.exec(
      'dokku mysql:export shop-db >/tmp/shop.sql && grep -c "INSERT INTO .items." /tmp/shop.sql',
    );
    t.is(dump.code, 0, dump.stderr);
    t.is(dump.stdout.trim(), '1');
    await one.must('dokku mysql:connect shop-db', {
      input: "DELETE FROM items; INSERT INTO items VALUES (3, 'leak');\n",
    });
    const imp = await one.exec('dokku mysql:import shop-db </tmp/shop.sql');
    t.is(imp.code, 0, imp.stderr);
    const rows = async () =>
      (
        await one.must('dokku mysql:connect shop-db', {
          input: 'SELECT name FROM items ORDER BY id;\n',
        })
      )
        .trim()
        .split('\n');
    t.deepEqual(await rows(), ['name', 'oar', 'sail']);

    await one.must('dokku mysql:stop shop-db');
    t.is((await one.must('dokku mysql:info shop-db --status')).trim(), 'missing');
    const badExport = await one.exec('dokku mysql:export shop-db');
    t.is(badExport.code, 1);
    t.is(badExport.stderr, 'Error response from daemon: No such container: dokku.mysql.shop-db\n');
    await one.must('dokku mysql:start shop-db');
    t.deepEqual(await rows(), ['name', 'oar', 'sail']);

    const linked = await one.must('dokku mysql:link shop-db shop --no-restart');
    t.regex(linked, /DATABASE_URL: +mysql:\/\/mysql:userpw@dokku-mysql-shop-db:3306\/shop_db\n/);
    await one.must('dokku mysql:create other-db');
    await one.must('dokku mysql:link other-db shop --no-restart');
    t.regex(
      await one.must('dokku config:get shop DOKKU_MYSQL_AQUA_URL'),
      /^mysql:\/\/mysql:[0-9a-f]{16}@dokku-mysql-other-db:3306\/other_db\n$/,
    );
    t.regex(
      (await one.must('cat /var/lib/dokku/services/mysql/other-db/ROOTPASSWORD')).trim(),
      /^[0-9a-f]{16}$/,
    );
  },
);

labTest(
  'memcached: flags, default memory, the real server, and the subcommands it does not implement',
  async (t) => {
    const one = await setup();
    await one.must("dokku memcached:create sessions --memory 16 --config-options '-c 100'");
    await one.must('dokku memcached:create plain');
    const root = '/var/lib/dokku/services/memcached';
    t.is(
      await one.must(`cat ${root}/sessions/SERVICE_MEMORY ${root}/plain/SERVICE_MEMORY`),
      '16\n64\n',
    );
    t.is(await one.must(`cat ${root}/sessions/CONFIG_OPTIONS`), '-c 100\n');
    t.is(
      await one.must('dokku memcached:info sessions --dsn'),
      'memcached://dokku-memcached-sessions:11211\n',
    );
    t.is((await one.exec(`test -e ${root}/sessions/PASSWORD`)).code, 1);
    t.is((await one.exec(`test -d ${root}/sessions/config`)).code, 0);

    await one.must('dokku memcached:expose sessions 21299');
    const stats = await tcp(one.address, 21299, 'stats settings\r\n', /\r\nEND\r\n$/);
    t.regex(stats, /STAT maxbytes 16777216\r\n/);
    t.regex(stats, /STAT maxconns 100\r\n/);
    const set = await tcp(one.address, 21299, 'set k 0 0 3\r\nabc\r\nget k\r\n', /END\r\n$/);
    t.is(set, 'STORED\r\nVALUE k 0 3\r\nabc\r\nEND\r\n');

    // is_implemented_command runs first, before any argument is looked at
    for (const sub of [
      'export sessions',
      'import sessions',
      'export',
      'backup-schedule',
      'backup-unschedule sessions',
      'backup sessions bucket',
      'clone sessions x',
    ]) {
      const r = await one.exec(`dokku memcached:${sub} </dev/null`);
      t.is(r.code, 1, sub);
      t.is(r.stderr, ' !     Not yet implemented\n', sub);
      t.is(r.stdout, '', sub);
    }
    // backup-schedule-cat does not ask is_implemented_command
    const cat = await one.exec('dokku memcached:backup-schedule-cat sessions');
    t.is(cat.stderr, ' !     There is no scheduled backup for sessions.\n');

    t.regex(
      await one.must('dokku memcached:link sessions shop --no-restart'),
      /MEMCACHED_URL: +memcached:\/\/dokku-memcached-sessions:11211\n/,
    );
    await one.must('dokku memcached:unlink sessions shop');
    await one.must('dokku memcached:stop sessions && dokku memcached:start sessions');
    t.is(
      await tcp(one.address, 21299, 'get k\r\n', /END\r\n$/),
      'END\r\n',
      'a cache: empty after a restart',
    );
    await one.must('dokku memcached:destroy plain --force');
    t.is(await one.must('dokku --quiet memcached:list'), 'sessions\n');
  },
);
