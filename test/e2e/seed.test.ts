/**
 * The seeded installation on real lab hosts: every app answers HTTP through
 * the host's port 80, postgres:export/import round-trips real data, the
 * plugins are listed, and a copy of /var/lib/dokku/plugins + services restored
 * on a second host behaves as the seed's caveats say: the plugins are there,
 * their install/dependencies triggers have not run, and postgres:start finds
 * no image until the install trigger pulls it.
 */
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, type SeedResult, seed } from '../lab/emulator/seed.js';
import type { LabHost } from '../lab/lab.js';

const lab = useLab({ instance: 'seed-test', hosts: ['old', 'new'] });

interface Http {
  status: number;
  body: string;
}

/** GET or POST http://ADDRESS:80/ with a Host header, from the controller. */
function http(
  address: string,
  host: string,
  method = 'GET',
  body?: string,
  path = '/',
): Promise<Http> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address, port: 80, path, method, headers: { host }, timeout: 10_000 },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          data += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`GET ${host} timed out`)));
    req.end(body);
  });
}

async function vhost(h: LabHost): Promise<string> {
  return (await h.must('cat /home/dokku/VHOST')).trim().split('\n')[0] ?? '';
}

async function notes(h: LabHost): Promise<string[]> {
  const r = await http(h.address, `notes.${await vhost(h)}`);
  if (r.status !== 200) throw new Error(`notes answered ${r.status}: ${r.body}`);
  return (JSON.parse(r.body) as { notes: { body: string }[] }).notes.map((n) => n.body);
}

let seeded: SeedResult | undefined;

labTest('seed builds the installation, and every app answers through port 80', async (t) => {
  const l = lab();
  const old = l.host('old');
  seeded = await seed(old, {
    keyPath: l.keyPath,
    knownHostsPath: l.knownHostsPath,
    dir: l.dir,
    log: (s) => t.log(s),
  });
  t.log(`seeded in ${seeded.ms} ms: ${seeded.steps.map((s) => `${s.step} ${s.ms} ms`).join('; ')}`);

  const apps = (await old.must('dokku --quiet apps:list')).trim().split('\n');
  t.deepEqual(apps, SEEDED.apps.map((a) => a.name).sort());
  const v = await vhost(old);
  for (const a of SEEDED.apps) {
    const r = await http(old.address, `${a.name}.${v}`);
    t.is(r.status, 200, `${a.name}: ${r.body}`);
    t.true(r.body.includes(a.answers), `${a.name} answered: ${r.body}`);
  }
  t.deepEqual(await notes(old), [...SEEDED.services[0].rows]);

  // deployed the way SEEDED says
  for (const a of SEEDED.apps) {
    const src = (await old.must(`cat /var/lib/dokku/config/apps/${a.name}/deploy-source`)).trim();
    const expected =
      a.deployedBy === 'git-push'
        ? 'git-push'
        : a.deployedBy === 'git:from-image' || a.deployedBy === 'git:load-image'
          ? 'docker-image'
          : 'tar';
    t.is(src, expected, a.name);
  }
  for (const [app, sha] of Object.entries(seeded.commits)) {
    t.is(
      (
        await old.must(
          `git -c safe.directory='*' -C /home/dokku/${app} rev-parse refs/heads/master`,
        )
      ).trim(),
      sha,
    );
  }

  const list = await old.must('dokku postgres:list');
  t.is(list, '=====> Postgres services\nanalytics\nnotes-db\n');
  t.is((await old.must('dokku postgres:info notes-db --links')).trim(), 'notes');
  t.regex(
    await old.must('dokku config:get notes DATABASE_URL'),
    /^postgres:\/\/postgres:[0-9a-f]{32}@dokku-postgres-notes-db:5432\/notes_db\n$/,
  );
  const events = await old.must('dokku postgres:connect analytics', {
    input: 'SELECT count(*) FROM events;\n',
  });
  t.regex(events, /\b5\b/);
  t.is(
    (await old.must('dokku --quiet storage:list api')).trim(),
    `${SEEDED.storage.hostDir}:${SEEDED.storage.containerDir}`,
  );
  t.true((await old.must('dokku --quiet network:list')).split('\n').includes(SEEDED.network.name));
});

labTest('the mysql, redis and memcached services hold their data, flags and links', async (t) => {
  const old = lab().host('old');
  const { redis, mysql, memcached } = SEEDED.datastores;
  const v = await vhost(old);
  const counter = await http(old.address, `counter.${v}`);
  t.is(counter.status, 200, counter.body);
  t.deepEqual((JSON.parse(counter.body) as { counters: Record<string, number> }).counters, {
    drill: 1,
    ferry: 3,
  });
  const rows = await http(old.address, `counter.${v}`, 'GET', undefined, '/rows');
  t.deepEqual((JSON.parse(rows.body) as { rows: string[] }).rows, [...mysql.rows]);
  for (const [plugin, s] of Object.entries(SEEDED.datastores)) {
    const root = `/var/lib/dokku/services/${plugin}/${s.name}`;
    t.is((await old.must(`dokku ${plugin}:info ${s.name} --status`)).trim(), 'running', plugin);
    t.is(await old.must(`cat ${root}/CONFIG_OPTIONS`), `${s.configOptions}\n`, plugin);
    t.is(await old.must(`cat ${root}/SERVICE_MEMORY`), `${s.memory}\n`, plugin);
    t.is(await old.must(`cat ${root}/ENV`), `${s.customEnv.replace(/;/g, '\n')}\n`, plugin);
    t.deepEqual((await old.must(`dokku ${plugin}:links ${s.name}`)).trim().split('\n'), [
      ...s.linkedTo,
    ]);
    const url = (await old.must(`dokku config:get counter ${s.env}`)).trim();
    t.is(url, (await old.must(`dokku ${plugin}:info ${s.name} --dsn`)).trim(), plugin);
  }
  t.is(
    await old.must(`cat /var/lib/dokku/services/redis/${redis.name}/SHM_SIZE`),
    `${redis.shmSize}\n`,
  );
  t.is(
    await old.must(`cat /var/lib/dokku/services/redis/${redis.name}/PORT`),
    `${redis.exposedPort}\n`,
  );
  t.is(
    (await old.must(`dokku redis:info ${redis.name} --exposed-ports`)).trim(),
    `6379->${redis.exposedPort}`,
  );
  const memcachedExport = await old.exec(`dokku memcached:export ${memcached.name}`);
  t.is(memcachedExport.code, 1);
  t.is(memcachedExport.stderr, ' !     Not yet implemented\n');
  t.regex(
    await old.must(`dokku mysql:export ${mysql.name}`),
    /INSERT INTO `products` VALUES\s*\(1,'ferry ticket'\)/,
  );
});

labTest('postgres:export and postgres:import round-trip the rows', async (t) => {
  const old = lab().host('old');
  const dump = await old.exec(
    'dokku postgres:export notes-db >/tmp/notes.dump && head -c 5 /tmp/notes.dump',
  );
  t.is(dump.code, 0, dump.stderr);
  t.is(dump.stdout, 'PGDMP');

  const added = await http(
    old.address,
    `notes.${await vhost(old)}`,
    'POST',
    'written after the dump',
  );
  t.is(added.status, 201, added.body);
  t.deepEqual(await notes(old), [...SEEDED.services[0].rows, 'written after the dump']);

  const imp = await old.exec('dokku postgres:import notes-db </tmp/notes.dump');
  t.is(imp.code, 0, imp.stderr);
  t.deepEqual(await notes(old), [...SEEDED.services[0].rows]);
});

labTest('plugin:list shows postgres and ferry-marker, enabled', async (t) => {
  const old = lab().host('old');
  const lines = (await old.must('dokku plugin:list')).split('\n');
  for (const p of SEEDED.plugins) {
    const line = lines.find((l) => l.trim().split(/\s+/)[0] === p.name);
    t.truthy(line, `${p.name} in plugin:list`);
    t.deepEqual(line?.trim().split(/\s+/).slice(1, 3), [p.version, 'enabled']);
  }
  const json = JSON.parse(await old.must('dokku plugin:list --format json')) as {
    name: string;
    source_url: string;
    core: boolean;
  }[];
  const pg = json.find((p) => p.name === 'postgres');
  t.is(pg?.source_url, 'https://github.com/dokku/dokku-postgres.git');
  t.false(pg?.core);
  t.true(json.find((p) => p.name === 'apps')?.core);
  t.is((await old.exec('test -s /var/lib/docker/lab-marks/ferry-marker.install')).code, 0);
  t.is((await old.exec('test -s /var/lib/docker/lab-marks/ferry-marker.dependencies')).code, 0);
});

labTest(
  'restored plugins have not run their triggers until plugin:install(-dependencies)',
  async (t) => {
    const l = lab();
    const old = l.host('old');
    const neu = l.host('new');
    // the seed's tar, restricted to plugins and services, taken while the databases run
    const src = old.pathOnController('/var/lib/dokku');
    const dst = neu.pathOnController('/var/lib/dokku');
    const tar = spawnSync(
      'bash',
      [
        '-c',
        'set -o pipefail; tar -C "$1" --numeric-owner -cf - plugins services | tar -C "$2" --numeric-owner -xpf -',
        'bash',
        src,
        dst,
      ],
      { encoding: 'utf8' },
    );
    t.is(tar.status, 0, tar.stderr);

    const marks = '/var/lib/docker/lab-marks/ferry-marker';
    t.not((await neu.exec(`test -e ${marks}.install`)).code, 0, 'install mark before any trigger');
    t.not((await neu.exec(`test -e ${marks}.dependencies`)).code, 0);
    const listed = await neu.must('dokku plugin:list');
    t.regex(listed, /^ {2}postgres +1\.48\.0 enabled /m);
    t.regex(listed, /^ {2}ferry-marker +0\.1\.0 enabled /m);

    const version = (
      await neu.must('cat /var/lib/dokku/services/postgres/notes-db/IMAGE_VERSION')
    ).trim();
    const missing = `Missing image postgres:${version} for notes-db`;
    const first = await neu.exec('dokku postgres:start notes-db');
    t.true(first.stdout.includes(missing), first.stdout + first.stderr);
    t.is((await neu.must('dokku postgres:info notes-db --status')).trim(), 'missing');

    const deps = await neu.exec('dokku plugin:install-dependencies');
    t.is(deps.code, 0, deps.stdout + deps.stderr);
    t.is((await neu.exec(`test -s ${marks}.dependencies`)).code, 0, 'dependencies trigger ran');
    t.not((await neu.exec(`test -e ${marks}.install`)).code, 0);
    // dokku-postgres pulls its image in `install`, not in `dependencies`
    const second = await neu.exec('dokku postgres:start notes-db');
    t.true(second.stdout.includes(missing), second.stdout);

    const install = await neu.exec('dokku plugin:install');
    t.is(install.code, 0, install.stderr);
    t.true(install.stdout.includes('-----> Priming bash-completion cache'));
    t.is((await neu.exec(`test -s ${marks}.install`)).code, 0, 'install trigger ran');

    const started = await neu.exec('dokku postgres:start notes-db');
    t.is(started.code, 0, started.stdout + started.stderr);
    t.true(started.stdout.includes('=====> Postgres container created: notes-db'), started.stdout);
    t.is((await neu.must('dokku postgres:info notes-db --status')).trim(), 'running');
    const rows = await neu.must('dokku postgres:connect notes-db', {
      input: 'SELECT body FROM notes ORDER BY id;\n',
    });
    for (const r of SEEDED.services[0].rows) t.true(rows.includes(r), rows);
  },
);
