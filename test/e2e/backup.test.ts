/**
 * `ferry backup` on a seeded lab host, end to end through the CLI: the
 * archive is written 0600 in a root-only folder with its sha256, the manifest
 * lists the seeded apps with how each was deployed and both postgres
 * services, the exports verify against SHA256SUMS, the fetched copy here has
 * the same sum, and the source's Dokku directories are byte-for-byte
 * unchanged. A deploy lock makes the backup refuse (exit 1), changing nothing.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { main } from '../../src/cli.js';
import { parseManifest } from '../../src/tasks/manifest.js';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, seed } from '../lab/emulator/seed.js';
import type { LabHost } from '../lab/lab.js';

const lab = useLab({ instance: 'backup-test', hosts: ['old'] });

/** backup.dir inside the host's own /tmp: /var/lib/dokku-ferry is shared by every lab host. */
const BACKUP_DIR = '/tmp/ferry-archives';

/**
 * The live datastore data directories: each server writes there on its own
 * (PostgreSQL's checkpoints, see {@link settle}; the dump.rdb that dokku-redis'
 * own export makes redis write with BGSAVE; MariaDB's logs).
 */
const PG_DATA = "-path '/var/lib/dokku/services/*/*/data'";

/**
 * Every path, size, mtime, mode and owner under the Dokku directories, kept in
 * the host's /tmp as `name`, but for the live PostgreSQL data directories,
 * which get `name.pg`: their paths, modes and owners only.
 */
function listing(name: string): string {
  return `find /home/dokku /var/lib/dokku \\( ${PG_DATA} -prune \\) -o -printf '%p %s %T@ %m %U %G\\n' | LC_ALL=C sort > /tmp/${name} && find /var/lib/dokku/services/*/*/data -printf '%p %m %U %G\\n' | LC_ALL=C sort > /tmp/${name}.pg && sha256sum < /tmp/${name}`;
}

/**
 * Asserts the Dokku directories are byte for byte as `listing(before)` found
 * them, and that in the live PostgreSQL data directories (where the server
 * itself may write while it runs: WAL, relcache init files) every file is
 * still there with its mode and owner; shows what changed.
 */
async function unchanged(
  t: ExecutionContext,
  old: LabHost,
  before: string,
  digest: string,
): Promise<void> {
  const after = await old.must(listing(`${before}.after`));
  const diff =
    after === digest
      ? ''
      : await old.must(`diff /tmp/${before} /tmp/${before}.after | head -40 || true`);
  t.is(after, digest, `the source's Dokku directories changed:\n${diff}`);
  const pgGone = await old.must(
    // relcache init files are dropped and rebuilt by the server itself on any catalog invalidation
    `LC_ALL=C comm -23 /tmp/${before}.pg /tmp/${before}.after.pg | { grep -v '/pg_internal\\.init ' || true; } | head -20`,
  );
  t.is(pgGone, '', `datastore files gone or changed mode/owner:\n${pgGone}`);
  const pgNew = await old.must(
    `LC_ALL=C comm -13 /tmp/${before}.pg /tmp/${before}.after.pg | head -20`,
  );
  if (pgNew) t.log(`written by the datastores themselves meanwhile:\n${pgNew}`);
}

/**
 * PostgreSQL rewrites its own files on its own schedule: a checkpoint flushes
 * what the seed wrote, a first read sets hint bits, autovacuum analyzes the
 * catalogs of a fresh cluster (template1 and postgres too), a first
 * connection writes pg_internal.init. Settle all of that first, so a change
 * seen afterwards is one the backup made.
 */
async function settle(old: LabHost): Promise<void> {
  for (const s of SEEDED.services) {
    await old.must(`dokku postgres:export ${s.name} > /dev/null`);
    const script = ['template1', 'postgres', s.database]
      .map((db) => `\\c ${db}\nVACUUM ANALYZE;\n`)
      .join('');
    // VACUUM drops the relcache init files; a connection to each database writes them again.
    const again = ['template1', 'postgres', s.database]
      .map((db) => `\\c ${db}\nSELECT 1;\n`)
      .join('');
    await old.must(`dokku postgres:connect ${s.name}`, { input: `${script}${again}CHECKPOINT;\n` });
  }
}

let work: string | undefined;
let inventoryPath = '';

async function setup(): Promise<{ old: LabHost; dir: string }> {
  const l = lab();
  if (!work) {
    work = await mkdtemp(join(tmpdir(), 'ferry-backup-test-'));
    inventoryPath = join(work, 'inventory.yml');
    const base = await readFile(l.inventoryPath, 'utf8');
    await writeFile(inventoryPath, `${base.trimEnd()}\nbackup:\n  dir: ${BACKUP_DIR}\n  keep: 3\n`);
  }
  return { old: l.host('old'), dir: work };
}

async function ferry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  process.env.FERRY_STATE_DIR = join(work!, 'state');
  process.env.FERRY_RENDERER = 'silent';
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  err.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const code = await main([...args, '-i', inventoryPath], {
    stdout: out,
    stderr: err,
    env: process.env,
    stderrIsTty: false,
  });
  return { code, stdout, stderr };
}

async function runFolders(old: LabHost): Promise<string[]> {
  const out = await old.must(
    `find ${BACKUP_DIR} -mindepth 1 -maxdepth 1 -type d -name 'old-*' 2>/dev/null | sort || true`,
  );
  return out.split('\n').filter((l) => l !== '');
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

const METHOD = {
  'git-push': 'git',
  'git:from-image': 'image',
  'git:load-image': 'image',
  'git:from-archive': 'archive',
};

labTest(
  'ferry backup --fetch: 0600 archive, manifest, exports, a checked copy here; source unchanged',
  async (t) => {
    const { old, dir } = await setup();
    const l = lab();
    await seed(old, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });

    await settle(old);
    const before = await old.must(listing('before-backup'));
    const fetchDir = join(dir, 'fetched');
    const started = Date.now();
    const r = await ferry(['backup', 'old', '--fetch', fetchDir]);
    const seconds = (Date.now() - started) / 1000;
    t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
    t.log(`ferry backup --fetch: ${seconds.toFixed(1)} s`);
    await unchanged(t, old, 'before-backup', before);

    const [folder, ...more] = await runFolders(old);
    t.truthy(folder);
    t.deepEqual(more, []);
    const name = folder!.slice(folder!.lastIndexOf('/') + 1);
    const modes = await old.must(
      `cd ${folder} && stat -c '%n %a %u' . dokku.tar.zst dokku.tar.zst.sha256 manifest.json exports exports/* ${BACKUP_DIR}`,
    );
    const mode = Object.fromEntries(
      modes
        .trim()
        .split('\n')
        .map((line) => {
          const [n, m, u] = line.split(' ');
          return [n!, `${m} ${u}`];
        }),
    );
    t.is(mode['.'], '700 0');
    t.is(mode[BACKUP_DIR], '700 0');
    t.is(mode.exports, '700 0');
    for (const f of [
      'dokku.tar.zst',
      'dokku.tar.zst.sha256',
      'manifest.json',
      'exports/SHA256SUMS',
    ]) {
      t.is(mode[f], '600 0', f);
    }
    const size = Number(await old.must(`stat -c %s ${folder}/dokku.tar.zst`));
    t.log(`archive ${(size / 1048576).toFixed(1)} MiB`);

    // The archive: its sum checks, it holds the seed's paths with numeric owners.
    await old.must(`cd ${folder} && sha256sum -c --quiet dokku.tar.zst.sha256`);
    const members = await old.must(
      `zstd -q -dc ${folder}/dokku.tar.zst | tar -tf - | grep -E '^(home/dokku/notes/HEAD|var/lib/dokku/services/postgres/notes-db/data/PG_VERSION|var/lib/dokku/data/storage/api/greeting.txt|var/lib/dokku/plugins/available/ferry-marker/)$' | sort`,
    );
    t.is(members.trim().split('\n').length, 4, members);

    // The manifest: every seeded app with how it was deployed, both services.
    const manifest = parseManifest(await old.must(`cat ${folder}/manifest.json`));
    t.deepEqual(
      manifest.apps.map((a) => [a.name, a.method]),
      SEEDED.apps
        .map((a) => [a.name, METHOD[a.deployedBy]] as const)
        .sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    );
    for (const a of SEEDED.apps) {
      const m = manifest.apps.find((x) => x.name === a.name)!;
      t.true(m.deployed && m.running === 'true', a.name);
      if (a.deployedBy !== 'git-push') t.is(m.deploySourceMetadata, a.source, a.name);
    }
    t.deepEqual(
      manifest.services.map((s) => `${s.plugin}/${s.name}`).sort(),
      [
        ...SEEDED.services.map((s) => `postgres/${s.name}`),
        ...Object.entries(SEEDED.datastores).map(([plugin, s]) => `${plugin}/${s.name}`),
      ].sort(),
    );
    t.deepEqual(manifest.services.find((s) => s.name === 'notes-db')!.links, ['notes']);
    t.deepEqual(
      manifest.plugins.filter((p) => !p.core).map((p) => p.name),
      SEEDED.plugins.map((p) => p.name).sort(),
    );
    t.deepEqual(manifest.networks, [SEEDED.network.name]);
    t.deepEqual(manifest.warnings, []);
    t.true(manifest.dataBytes > 0);

    // The exports: one per service whose plugin has `export` (memcached has
    // none: its files are the copy), a real pg_dump custom archive, sums that verify.
    const sums = await old.must(`cd ${folder}/exports && sha256sum -c SHA256SUMS`);
    t.deepEqual(
      sums
        .trim()
        .split('\n')
        .map((l) => l.replace(/^(?:\.\/)?(.*)\.dump: OK$/, '$1'))
        .sort(),
      [
        ...SEEDED.services.map((s) => `postgres-${s.name}`),
        `mysql-${SEEDED.datastores.mysql.name}`,
        `redis-${SEEDED.datastores.redis.name}`,
      ].sort(),
      sums,
    );
    const magic = await old.must(`head -c 5 ${folder}/exports/postgres-notes-db.dump`);
    t.is(magic, 'PGDMP');

    // The copy here: same sum as on the host, exports whole, root-only.
    const here = join(fetchDir, name);
    t.is((await stat(here)).mode & 0o777, 0o700);
    const sumLine = (await old.must(`cat ${folder}/dokku.tar.zst.sha256`)).split(' ')[0] ?? '';
    t.is(await sha256File(join(here, 'dokku.tar.zst')), sumLine);
    t.deepEqual((await readdir(join(here, 'exports'))).sort(), [
      'SHA256SUMS',
      `mysql-${SEEDED.datastores.mysql.name}.dump`,
      ...SEEDED.services.map((s) => `postgres-${s.name}.dump`).sort(),
      `redis-${SEEDED.datastores.redis.name}.dump`,
    ]);
    for (const line of (await readFile(join(here, 'exports', 'SHA256SUMS'), 'utf8'))
      .trim()
      .split('\n')) {
      const [sum, file] = line.split(/ [ *]/);
      t.is(await sha256File(join(here, 'exports', file ?? '')), sum ?? '', file ?? '');
    }
    t.deepEqual(parseManifest(await readFile(join(here, 'manifest.json'), 'utf8')), manifest);
  },
);

labTest(
  'a deploy lock on the source makes ferry backup refuse with exit 1, changing nothing',
  async (t) => {
    const { old } = await setup();
    // What a running deploy holds (0.38: the build id, under flock), not `apps:lock`'s empty file.
    const lock = '/var/lib/dokku/data/apps/notes/.deploy.lock';
    const holder = (
      await old.must(
        `printf '01kxyzlockbuild\\n' > ${lock} && chown dokku:dokku ${lock} && { setsid flock -x ${lock} sleep 600 </dev/null >/dev/null 2>&1 & echo $!; }`,
      )
    ).trim();
    try {
      const before = await old.must(listing('before-refusal'));
      const folders = await runFolders(old);
      const r = await ferry(['backup', 'old']);
      t.is(r.code, 1, `${r.stdout}\n${r.stderr}`);
      t.regex(r.stderr, /old is busy/);
      t.regex(r.stderr, /a deploy of notes is running/);
      t.regex(r.stderr, /apps:unlock/);
      await unchanged(t, old, 'before-refusal', before);
      t.deepEqual(await runFolders(old), folders);
    } finally {
      await old.must(`kill -- -${holder} 2>/dev/null; rm -f ${lock}`);
    }
  },
);

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
