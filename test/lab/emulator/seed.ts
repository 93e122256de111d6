/**
 * Seeds a lab host with a realistic Dokku installation, the way an operator
 * would build one: plugins installed from their URLs, apps deployed by a real
 * `git push` over SSH as the dokku user, one app from an image, one from a tar
 * archive, two PostgreSQL services holding rows, a storage mount with files,
 * and a network an app is attached to; beside them a MySQL service with rows,
 * a Redis service with keys (exposed on a host port) and a Memcached service,
 * each made with `--config-options`, `--memory` and `--custom-env`, linked to
 * the `counter` app that uses them. {@link SEEDED} describes the result;
 * the migration tests assert on it.
 *
 * Runs on the controller (root): it publishes the fixtures to the lab
 * registry, then drives the host through `host.exec` (root inside the host)
 * and `git push` to dokku@ADDRESS:APP.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageRef, writeImageArchive } from './engine.js';

/** What seed needs of a lab host (test/lab/lab.ts LabHost fits). */
export interface SeedHost {
  name: string;
  address: string;
  exec(
    cmd: string,
    opts?: { input?: string | Buffer },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** What seed needs of the lab (test/lab/lab.ts Lab fits), plus options. */
export interface SeedOptions {
  /** Private key the dokku user accepts (the lab's instance key). */
  keyPath: string;
  /** known_hosts holding the host's key under its address. */
  knownHostsPath: string;
  /** Instance folder; the work clones go to `<dir>/repos/<host>/<app>` (else a temp folder). */
  dir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** More `ssh` options for the pushes (e.g. `-F config` for a host behind a bastion). */
  sshOptions?: string[];
}

/** One seeded app. */
export interface SeededApp {
  name: string;
  /**
   * How it was deployed: `git-push`, `git:from-image`, `git:from-archive`, or
   * `git:load-image` (an image that exists on no registry, given as a `docker
   * save` archive on stdin; Dokku records it as a `docker-image` deploy).
   */
  deployedBy: 'git-push' | 'git:from-image' | 'git:from-archive' | 'git:load-image';
  /** What the deploy used: fixture folder, image, or archive URL. */
  source: string;
  /** Config vars the seed set (besides what Dokku and links add). */
  config: Record<string, string>;
  /** A text the app's `GET /` answer contains. */
  answers: string;
}

/** The other official datastore plugins the seed installs (the emulator's plugins/<name>.ts). */
const DATASTORE_PLUGINS = [
  { name: 'mysql', url: 'https://github.com/dokku/dokku-mysql.git', version: '1.44.3' },
  { name: 'redis', url: 'https://github.com/dokku/dokku-redis.git', version: '1.43.0' },
  { name: 'memcached', url: 'https://github.com/dokku/dokku-memcached.git', version: '1.37.4' },
] as const;

/** The app that uses them: counters in redis, a note in memcached, rows in mysql. */
const DATASTORE_APPS: SeededApp[] = [
  {
    name: 'counter',
    deployedBy: 'git-push',
    source: 'fixtures/apps/counter',
    config: {},
    answers: 'counters kept in redis',
  },
];

/**
 * One service per other datastore plugin, each created with
 * `--config-options`, `--memory` and `--custom-env` (redis with `--shm-size`
 * too), redis exposed on a fixed host port: what a tool must carry over.
 */
const DATASTORES = {
  redis: {
    name: 'counter-redis',
    linkedTo: ['counter'],
    env: 'REDIS_URL',
    configOptions: '--maxmemory-policy allkeys-lru',
    memory: '256',
    shmSize: '64m',
    customEnv: 'TZ=UTC;LAB_SEEDED=redis',
    exposedPort: 26379,
    /** Set with redis-cli (`redis:connect`); the app reads them as its counters. */
    keys: { 'counter:ferry': '3', 'counter:drill': '1' } as Record<string, string>,
  },
  mysql: {
    name: 'shop-db',
    database: 'shop_db',
    linkedTo: ['counter'],
    env: 'DATABASE_URL',
    configOptions: '--max-connections=50',
    memory: '512',
    customEnv: 'TZ=UTC',
    table: 'products',
    rows: ['ferry ticket', 'life jacket', 'deck chair'],
  },
  memcached: {
    name: 'counter-cache',
    linkedTo: ['counter'],
    env: 'MEMCACHED_URL',
    configOptions: '-c 512',
    memory: '32',
    customEnv: 'LAB_SEEDED=memcached',
  },
} as const;

/** The installation seed() builds. Kept as data so tests assert on the same facts. */
export const SEEDED = {
  plugins: [
    { name: 'postgres', url: 'https://github.com/dokku/dokku-postgres.git', version: '1.48.0' },
    {
      name: 'ferry-marker',
      url: 'https://github.com/dokku-ferry/dokku-ferry-marker.git',
      version: '0.1.0',
    },
    ...DATASTORE_PLUGINS,
  ],
  apps: [
    {
      name: 'notes',
      deployedBy: 'git-push',
      source: 'fixtures/apps/notes',
      config: { NOTES_TITLE: 'Ferry notes' },
      answers: 'check the backups',
    },
    {
      name: 'hello',
      deployedBy: 'git-push',
      source: 'fixtures/apps/hello',
      config: { GREETING: 'hello from the ferry lab' },
      answers: 'Hello from the ferry lab',
    },
    {
      name: 'api',
      deployedBy: 'git-push',
      source: 'fixtures/apps/api',
      config: { STORAGE_DIR: '/var/lib/dokku/data/storage/api' },
      answers: 'greetings from persistent storage',
    },
    {
      name: 'whoami',
      deployedBy: 'git:from-image',
      source: 'lab/whoami:1.0',
      config: {},
      answers: 'lab/whoami:1.0',
    },
    {
      name: 'landing',
      deployedBy: 'git:from-archive',
      source: 'file:///var/lib/ferry-lab/registry/archives/landing.tar',
      config: {},
      answers: 'deployed from a tar archive',
    },
    {
      name: 'sealed',
      deployedBy: 'git:load-image',
      source: 'lab/sealed:1.0',
      config: {},
      answers: 'sealed image, loaded with git:load-image',
    },
    ...DATASTORE_APPS,
  ] as SeededApp[],
  /** An app frozen by its user with `apps:lock`: an empty .deploy.lock (every supported release has apps:lock). */
  lockedApp: 'whoami',
  /**
   * A build record a crashed deploy left `running` (0.38.0+, the builds
   * plugin): its pid is gone, so builds:list shows it `abandoned`; the
   * deploy lock file it held stays too, holding the build id.
   */
  crashedBuild: {
    app: 'hello',
    id: 'mjv6b1c0crash1',
    source: 'git-hook',
    startedAt: '2026-01-01T00:05:00Z',
    log: '-----> Cleaning up...\n-----> Building hello from herokuish\n',
    since: '0.38.0',
  },
  services: [
    {
      name: 'notes-db',
      database: 'notes_db',
      linkedTo: ['notes'],
      table: 'notes',
      rows: ['ship the ferry', 'check the backups', 'drill the restore'],
    },
    {
      name: 'analytics',
      database: 'analytics',
      linkedTo: [] as string[],
      table: 'events',
      rows: ['signup', 'login', 'login', 'purchase', 'logout'],
    },
  ],
  /** Services of the other datastore plugins, with what a tool must carry over. */
  datastores: DATASTORES,
  /** A scheduled datastore backup: its cron entry lives in /etc/cron.d, outside the archive. */
  backupSchedule: {
    service: 'notes-db',
    schedule: '0 3 * * *',
    bucket: 'ferry-backups',
    file: '/etc/cron.d/dokku-postgres-notes-db',
  },
  storage: {
    app: 'api',
    hostDir: '/var/lib/dokku/data/storage/api',
    containerDir: '/app/storage',
    files: {
      'greeting.txt': 'greetings from persistent storage\n',
      'uploads/avatar.txt': 'not really an image\n',
    } as Record<string, string>,
  },
  network: { name: 'ferry-net', app: 'api', property: 'attach-post-deploy' },
  /**
   * The apps answer through Dokku's caddy container, set up before the
   * deploys as an operator does: nginx:stop, proxy:set --global caddy,
   * caddy:set, caddy:start. A new host has nginx, not caddy, on port 80.
   */
  proxy: {
    type: 'caddy',
    container: 'caddy-caddy-1',
    settings: { 'log-level': 'INFO', 'polling-interval': '10s' } as Record<string, string>,
  },
  /** Git commits are made with these, so their SHAs are the same on every run. */
  commitDate: '2026-01-01T00:00:00Z',
} as const;

/** What seed() reports. */
export interface SeedResult {
  /** Wall time, milliseconds. */
  ms: number;
  /** Per step, milliseconds. */
  steps: { step: string; ms: number }[];
  /** Work clone of each git-pushed app (remote `dokku` → dokku@ADDRESS:APP). */
  repos: Record<string, string>;
  /** The deployed commit of each git-pushed app. */
  commits: Record<string, string>;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The fixtures folder: beside this module, or in the source tree when run from dist/. */
export function fixturesDir(): string {
  const beside = join(here, 'fixtures');
  if (existsSync(beside)) return beside;
  // dist/test/lab/emulator → test/lab/emulator/fixtures
  return join(here, '..', '..', '..', '..', 'test', 'lab', 'emulator', 'fixtures');
}

const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function sh(q: string): string {
  return `'${q.replace(/'/g, `'\\''`)}'`;
}

function run(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(file, args, {
    cwd: opts.cwd,
    env: { PATH: CLEAN_PATH, HOME: '/root', LANG: 'C.UTF-8', ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    const said = `${r.stderr?.toString() ?? ''}${r.stdout?.toString() ?? ''}`
      .trim()
      .split('\n')
      .slice(-8);
    throw new Error(
      `\`${file} ${args.join(' ')}\` exited ${r.status}:\n    ${said.join('\n    ')}`,
    );
  }
  return r.stdout?.toString() ?? '';
}

/** Like {@link run}, without blocking the event loop (for deploys side by side). */
function runAsync(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { PATH: CLEAN_PATH, HOME: '/root', LANG: 'C.UTF-8', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else {
        const said = `${err}${out}`.trim().split('\n').slice(-12);
        reject(
          new Error(`\`${file} ${args.join(' ')}\` exited ${code}:\n    ${said.join('\n    ')}`),
        );
      }
    });
  });
}

/** Commit a folder's files as one commit with a fixed date. */
function commitTree(dir: string, message: string): string {
  const env = {
    GIT_AUTHOR_NAME: 'Ferry Lab',
    GIT_AUTHOR_EMAIL: 'lab@dokku-ferry.invalid',
    GIT_COMMITTER_NAME: 'Ferry Lab',
    GIT_COMMITTER_EMAIL: 'lab@dokku-ferry.invalid',
    GIT_AUTHOR_DATE: SEEDED.commitDate,
    GIT_COMMITTER_DATE: SEEDED.commitDate,
  };
  run('git', ['init', '-q', '-b', 'master', dir]);
  run('git', ['-C', dir, 'add', '-A']);
  run('git', ['-C', dir, 'commit', '-q', '-m', message], { env });
  return run('git', ['-C', dir, 'rev-parse', 'HEAD']).trim();
}

/**
 * Replace `dst` by a finished `tmp` with two renames, the old copy removed
 * after: a host pulling from the registry meanwhile (other tests run at the
 * same time) never finds the image half deleted. A racing seed that got
 * there first wins.
 */
function install(tmp: string, dst: string): void {
  mkdirSync(dirname(dst), { recursive: true });
  const aside = `${dst}.old-${process.pid}-${Date.now()}`;
  try {
    renameSync(dst, aside);
  } catch {
    // nothing there yet
  }
  try {
    renameSync(tmp, dst);
  } catch {
    rmSync(tmp, { recursive: true, force: true });
  }
  rmSync(aside, { recursive: true, force: true });
}

/**
 * Put the images, plugin repositories and the archive the seed uses into the
 * lab registry (shared by every host). Idempotent.
 */
export function publishRegistry(registry: string, pgVersion: string): void {
  const fx = fixturesDir();
  const scratch = mkdtempSync(join(tmpdir(), 'ferry-seed-'));
  try {
    // the PostgreSQL server image: a marker; the server binaries are the machine's
    const pg = join(scratch, 'pg');
    mkdirSync(pg);
    run('sh', [
      '-c',
      'printf \'{"repo":"postgres","tag":"%s","note":"lab image: runs the PostgreSQL server binaries of the lab machine"}\\n\' "$2" >"$1/image.json"',
      'sh',
      pg,
      pgVersion,
    ]);
    install(pg, join(registry, 'postgres', pgVersion));
    for (const img of [
      'busybox/1.37.0-uclibc',
      'dokku/ambassador/0.8.2',
      'dokku/s3backup/0.18.0',
      'dokku/wait/0.9.3',
      // Dokku's caddy container, at every tag caddy-vhosts names from 0.30 to 0.38
      // (internal-functions before 0.33.8, the Dockerfile since: defaultCaddyImage)
      ...['2.7', '2.8', '2.9', '2.10', '2.11', '2.12', '2.13'].map(
        (tag) => `lucaslorentz/caddy-docker-proxy/${tag}`,
      ),
    ]) {
      const d = join(scratch, img.replace(/\//g, '_'));
      mkdirSync(d);
      run('sh', ['-c', 'printf "lab helper image %s\\n" "$2" >"$1/image.txt"', 'sh', d, img]);
      install(d, join(registry, img));
    }
    publishDatastoreImages(registry, scratch);
    const who = join(scratch, 'whoami');
    run('cp', ['-a', join(fx, 'images', 'lab', 'whoami', '1.0'), who]);
    install(who, join(registry, 'lab', 'whoami', '1.0'));

    for (const p of SEEDED.plugins) {
      const repoName = p.url.split('/').pop() ?? '';
      const work = join(scratch, `work-${p.name}`);
      run('cp', ['-a', join(fx, 'plugins', repoName.replace(/\.git$/, '')), work]);
      commitTree(work, `${p.name} ${p.version}`);
      run('git', ['-C', work, 'tag', p.version]);
      const bare = join(scratch, `bare-${p.name}`);
      run('git', ['clone', '-q', '--bare', work, bare]);
      const m = /^https:\/\/([^/]+)\/(.+)$/.exec(p.url);
      install(bare, join(registry, 'plugins', m?.[1] ?? '', m?.[2] ?? repoName));
    }

    const tarTmp = join(scratch, 'landing.tar');
    run('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      `--mtime=${SEEDED.commitDate}`,
      '-cf',
      tarTmp,
      '-C',
      join(fx, 'archives'),
      'landing',
    ]);
    mkdirSync(join(registry, 'archives'), { recursive: true });
    install(tarTmp, join(registry, 'archives', 'landing.tar'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The datastore plugins' default images (each fixture's Dockerfile `FROM`):
 * marker trees, as for postgres; the servers are the lab machine's (lab.json).
 */
function publishDatastoreImages(registry: string, scratch: string): void {
  for (const p of DATASTORE_PLUGINS) {
    const repoName =
      p.url
        .split('/')
        .pop()
        ?.replace(/\.git$/, '') ?? '';
    const from = run('cat', [join(fixturesDir(), 'plugins', repoName, 'Dockerfile')]);
    const m = /FROM\s+([^\s:]+):(\S+)/.exec(from);
    if (m === null) throw new Error(`no FROM in the ${repoName} fixture's Dockerfile`);
    const d = join(scratch, `image-${p.name}`);
    mkdirSync(d);
    run('sh', [
      '-c',
      'printf \'{"repo":"%s","tag":"%s","note":"lab image: runs the %s server of the lab machine"}\\n\' "$2" "$3" "$4" >"$1/image.json"',
      'sh',
      d,
      m[1] ?? '',
      m[2] ?? '',
      p.name,
    ]);
    install(d, join(registry, m[1] ?? '', m[2] ?? ''));
  }
}

const SHOP_SQL = `CREATE TABLE ${DATASTORES.mysql.table} (id int AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL);
INSERT INTO ${DATASTORES.mysql.table} (name) VALUES ${DATASTORES.mysql.rows.map((r) => `('${r}')`).join(', ')};
`;

/** Create the mysql, redis and memcached services with their flags and data. */
async function createDatastores(must: (cmd: string, input?: string) => Promise<string>) {
  const { redis, mysql, memcached } = DATASTORES;
  await Promise.all([
    (async () => {
      await must(
        `dokku redis:create ${redis.name} --config-options ${sh(redis.configOptions)} --memory ${redis.memory} --shm-size ${redis.shmSize} --custom-env ${sh(redis.customEnv)}`,
      );
      const sets = Object.entries(redis.keys).map(([k, v]) => `SET ${k} ${v}\n`);
      await must(`dokku redis:connect ${redis.name}`, sets.join(''));
      await must(`dokku redis:expose ${redis.name} ${redis.exposedPort}`);
    })(),
    (async () => {
      await must(
        `dokku mysql:create ${mysql.name} --config-options ${sh(mysql.configOptions)} --memory ${mysql.memory} --custom-env ${sh(mysql.customEnv)}`,
      );
      await must(`dokku mysql:connect ${mysql.name}`, SHOP_SQL);
    })(),
    must(
      `dokku memcached:create ${memcached.name} --config-options ${sh(memcached.configOptions)} --memory ${memcached.memory} --custom-env ${sh(memcached.customEnv)}`,
    ),
  ]);
}

/** Link each of them to its app, without a restart (the apps are deployed after). */
async function linkDatastores(must: (cmd: string) => Promise<string>) {
  for (const [plugin, s] of Object.entries(DATASTORES)) {
    for (const app of s.linkedTo) await must(`dokku ${plugin}:link ${s.name} ${app} --no-restart`);
  }
}

const NOTES_SQL = `CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO notes (body) VALUES ${SEEDED.services[0].rows.map((r) => `('${r}')`).join(', ')};
`;
const ANALYTICS_SQL = `CREATE TABLE events (id serial PRIMARY KEY, kind text NOT NULL, at timestamptz NOT NULL);
INSERT INTO events (kind, at) VALUES ${SEEDED.services[1].rows
  .map((r, i) => `('${r}', timestamptz '2026-01-01 00:00:00+00' + interval '${i} hours')`)
  .join(', ')};
`;

/** Seed `host` (see the module comment). Throws with the failing command's output. */
export async function seed(host: SeedHost, opts: SeedOptions): Promise<SeedResult> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const steps: { step: string; ms: number }[] = [];
  const step = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    const s = Date.now();
    log(`seed ${host.name}: ${name}`);
    const v = await fn();
    steps.push({ step: name, ms: Date.now() - s });
    return v;
  };
  const must = async (cmd: string, input?: string | Buffer): Promise<string> => {
    const r = await host.exec(cmd, input === undefined ? {} : { input });
    if (r.code !== 0) {
      const said = `${r.stderr.trim()}\n${r.stdout.trim()}`.trim().split('\n').slice(-10);
      throw new Error(
        `seed ${host.name}: \`${cmd}\` exited ${r.code}:\n    ${said.join('\n    ')}`,
      );
    }
    return r.stdout;
  };

  const labJson = JSON.parse(await must('cat /var/lib/docker/lab.json')) as {
    registry?: string;
    registryHere?: string;
    pgVersion?: string;
  };
  const registry = labJson.registryHere ?? labJson.registry ?? '/var/lib/ferry-lab/registry';
  await step('publish fixtures to the registry', () =>
    publishRegistry(registry, labJson.pgVersion ?? ''),
  );

  await step('install plugins', async () => {
    for (const p of SEEDED.plugins) {
      await must(`dokku plugin:install ${sh(p.url)} --name ${sh(p.name)}`);
    }
    await must('dokku plugin:install-dependencies');
  });

  const createApps = async (): Promise<void> => {
    await Promise.all(
      SEEDED.apps.map(async (a) => {
        await must(`dokku apps:create ${a.name}`);
        const pairs = Object.entries(a.config).map(([k, v]) => sh(`${k}=${v}`));
        if (pairs.length > 0) {
          await must(`dokku config:set --no-restart ${a.name} ${pairs.join(' ')}`);
        }
      }),
    );
    const st = SEEDED.storage;
    const files = Object.entries(st.files)
      .map(
        ([f, body]) =>
          `mkdir -p "$(dirname ${sh(`${st.hostDir}/${f}`)})" && printf %s ${sh(body)} >${sh(`${st.hostDir}/${f}`)}`,
      )
      .join(' && ');
    // what `dokku storage:ensure-directory api` does: the dir, owned by herokuish's 32767
    await must(`mkdir -p ${sh(st.hostDir)} && ${files} && chown -R 32767:32767 ${sh(st.hostDir)}`);
    await must(`dokku storage:mount ${st.app} ${sh(`${st.hostDir}:${st.containerDir}`)}`);
    const n = SEEDED.network;
    await must(`dokku network:create ${n.name}`);
    await must(`dokku network:set ${n.app} ${n.property} ${n.name}`);
  };
  const createServices = async (): Promise<void> => {
    const sql = [NOTES_SQL, ANALYTICS_SQL];
    await Promise.all([
      ...SEEDED.services.map(async (s, i) => {
        await must(`dokku postgres:create ${s.name}`);
        await must(`dokku postgres:connect ${s.name}`, sql[i]);
      }),
      createDatastores(must),
    ]);
  };
  await step('create apps, config, storage, network and postgres services with rows', () =>
    Promise.all([createApps(), createServices()]),
  );
  await step('link services, schedule a backup', async () => {
    for (const s of SEEDED.services) {
      for (const app of s.linkedTo) await must(`dokku postgres:link ${s.name} ${app} --no-restart`);
    }
    await linkDatastores(must);
    const b = SEEDED.backupSchedule;
    await must(`dokku postgres:backup-schedule ${b.service} '${b.schedule}' ${b.bucket}`);
  });

  await step(
    'route apps through caddy (nginx:stop, proxy:set --global caddy, caddy:start)',
    async () => {
      const p = SEEDED.proxy;
      await must('dokku nginx:stop');
      const version = (await must('dokku version')).trim().replace(/^dokku version v?/, '');
      // no global proxy type before 0.33.0 (plugins/proxy at v0.32.4): each app gets it
      if (atLeast(version, '0.33.0')) await must(`dokku proxy:set --global ${p.type}`);
      else for (const a of SEEDED.apps) await must(`dokku proxy:set ${a.name} ${p.type}`);
      for (const [k, v] of Object.entries(p.settings))
        await must(`dokku caddy:set --global ${k} ${sh(v)}`);
      await must('dokku caddy:start');
    },
  );

  const repos: Record<string, string> = {};
  const commits: Record<string, string> = {};
  await step('deploy the apps (git push, git:from-image, git:from-archive)', async () => {
    const base =
      opts.dir !== undefined
        ? join(opts.dir, 'repos', host.name)
        : mkdtempSync(join(tmpdir(), `ferry-repos-${host.name}-`));
    const ssh = [
      'ssh',
      '-i',
      opts.keyPath,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${opts.knownHostsPath}`,
      '-o',
      'StrictHostKeyChecking=yes',
      ...(opts.sshOptions ?? []),
    ].join(' ');
    // The pushes (deploys as the dokku user) run side by side; the image and
    // archive deploys (as root, through exec) follow, so that no root-made
    // engine folder is in the way of a dokku-user deploy still running.
    await Promise.all(
      SEEDED.apps
        .filter((a) => a.deployedBy === 'git-push')
        .map(async (a) => {
          const dir = join(base, a.name);
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dirname(dir), { recursive: true });
          run('cp', ['-a', join(fixturesDir(), 'apps', a.name), dir]);
          commits[a.name] = commitTree(dir, `${a.name}: first version`);
          run('git', ['-C', dir, 'remote', 'add', 'dokku', `dokku@${host.address}:${a.name}`]);
          await runAsync('git', ['-C', dir, 'push', '-q', 'dokku', 'master'], {
            GIT_SSH_COMMAND: ssh,
          });
          repos[a.name] = dir;
        }),
    );
    await Promise.all(
      SEEDED.apps.map(async (a) => {
        if (a.deployedBy === 'git:from-image') {
          await must(`dokku git:from-image ${a.name} ${sh(a.source)}`);
        } else if (a.deployedBy === 'git:from-archive') {
          await must(`dokku git:from-archive ${a.name} ${sh(a.source)}`);
        } else if (a.deployedBy === 'git:load-image') {
          await must(
            `dokku git:load-image ${a.name} ${sh(a.source)}`,
            sealedImageArchive(a.source),
          );
        }
      }),
    );
  });

  await step('freeze an app with apps:lock, leave a crashed build record', async () => {
    await must(`dokku apps:lock ${SEEDED.lockedApp}`);
    const version = (await must('dokku version')).trim().replace(/^dokku version v?/, '');
    if (atLeast(version, SEEDED.crashedBuild.since)) await must(crashedBuildScript());
  });

  return { ms: Date.now() - t0, steps, repos, commits };
}

function atLeast(v: string, min: string): boolean {
  const a = v.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const b = min.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/**
 * The lab engine's `docker save` archive of a fixture image no registry has
 * (fixtures/images/<repo>/<tag>), for `git:load-image` on stdin.
 */
function sealedImageArchive(ref: string): Buffer {
  const { repo, tag } = imageRef(ref);
  const scratch = mkdtempSync(join(tmpdir(), 'ferry-sealed-'));
  try {
    const file = join(scratch, 'image.tar');
    const stage = join(scratch, 'stage');
    mkdirSync(stage);
    writeImageArchive([{ ref, tree: join(fixturesDir(), 'images', repo, tag) }], file, stage);
    return readFileSync(file);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * What a deploy killed mid-build leaves (builds plugin, data/builds/<app>/):
 * the record still `running`, holding the pid of a process that is gone,
 * and the start of its log.
 */
function crashedBuildScript(): string {
  const c = SEEDED.crashedBuild;
  const dir = `/var/lib/dokku/data/builds/${c.app}`;
  // pid 0 is a placeholder, replaced in the host by the dead shell's pid
  const record = JSON.stringify(
    {
      id: c.id,
      app: c.app,
      kind: 'build',
      pid: 0,
      started_at: c.startedAt,
      status: 'running',
      source: c.source,
    },
    null,
    2,
  );
  // a pid that was real and is gone: a shell that has exited
  return [
    'set -e',
    "pid=$(sh -c 'echo $$')",
    `mkdir -p ${dir}`,
    `printf %s ${sh(record)} | sed 's/"pid": 0,/"pid": '"$pid"',/' >${dir}/${c.id}.json`,
    `printf %s ${sh(c.log)} >${dir}/${c.id}.log`,
    // the deploy lock it held: flock(1) let go with the process, the file and its holder line stay
    `printf '%s\\n' ${c.id} >/var/lib/dokku/data/apps/${c.app}/.deploy.lock`,
    `chown dokku:dokku ${dir} ${dir}/${c.id}.json ${dir}/${c.id}.log /var/lib/dokku/data/apps/${c.app}/.deploy.lock`,
    `chmod 644 ${dir}/${c.id}.json ${dir}/${c.id}.log`,
  ].join('\n');
}
