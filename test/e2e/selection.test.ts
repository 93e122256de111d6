/**
 * Selection on migrate and on backup, end to end on a seeded host (restore's
 * `--app` with `--rename` is rename.test.ts's):
 * - `ferry migrate old new --app notes`: the plan says the services linked
 *   to notes come along; the run takes notes-db because notes is linked to
 *   it; new ends with notes and notes-db and nothing else, and notes answers
 *   with its rows through new's proxy.
 * - `ferry backup old --exclude-service postgres/analytics --exclude-service
 *   memcached/counter-cache --fetch DIR`: the archive's manifest and export
 *   sums leave both out, and restoring it onto scratch brings up everything
 *   else, counter unlinked from the cache it was linked to (its
 *   MEMCACHED_URL gone) and answering from its other services.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, seed } from '../lab/emulator/seed.js';
import { digest, get, landed, withoutRunState } from '../lab/landed.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'selection', hosts: ['old', 'new', 'scratch'] });
const state = mkdtempSync(join(tmpdir(), 'ferry-selection-'));
const secs = (since: number): number => Math.round((Date.now() - since) / 1000);

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args, '-i', lab().inventoryPath], {
    cwd: root,
    env: { ...process.env, FERRY_STATE_DIR: state, CI: '1' },
  });
}

/** old's Dokku files right after the seed (the first test seeds). */
let before: string[] = [];

/** Every service of the seed as `plugin/name`. */
const SERVICES = [
  ...SEEDED.services.map((s) => `postgres/${s.name}`),
  ...Object.entries(SEEDED.datastores).map(([plugin, s]) => `${plugin}/${s.name}`),
];

// Seeding takes minutes on a busy machine: a test of its own (AVA's timeout counts per test).
labTest('the seeded source, old', async (t) => {
  t.timeout(20 * 60_000);
  const l = lab();
  const started = Date.now();
  await seed(l.host('old'), { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });
  before = await digest(l.host('old'));
  t.log(`seeded old in ${secs(started)} s`);
  t.true(before.length > 0);
});

labTest('migrate --app notes brings notes and its linked notes-db, and nothing else', async (t) => {
  t.timeout(20 * 60_000);
  t.true(before.length > 0, 'the seed test seeded old');
  const neu = lab().host('new');
  const p = await ferry(['migrate', 'old', 'new', '--app', 'notes', '--dry-run']);
  t.is(p.code, 0, `${p.stdout}\n${p.stderr}`);
  t.regex(p.stdout, /take apps notes with the services linked to them/);
  t.regex(p.stdout, /The services linked to a taken app come along unless left out/);
  t.regex(p.stdout, /remove the apps and services the selection left out/);

  const started = Date.now();
  const r = await ferry(['migrate', 'old', 'new', '--app', 'notes', '--leave-source-running']);
  t.log(`migrate --app notes: ${secs(started)} s`);
  t.is(r.code, 0, `ferry migrate --app notes failed:\n${r.stdout}\n${r.stderr}`);
  const out = `${r.stdout}\n${r.stderr}`;
  t.regex(out, /apps taken: notes\n/);
  t.regex(out, /service postgres\/notes-db: linked to notes/);
  const others = SEEDED.apps.map((a) => a.name).filter((a) => a !== 'notes');
  for (const a of others) t.regex(out, new RegExp(`left out: apps [^;]*\\b${a}\\b`));

  // Only notes, linked to notes-db; every other service was removed.
  t.is((await neu.must('dokku --quiet apps:list')).trim(), 'notes');
  t.is((await neu.must('dokku --quiet postgres:list')).trim(), 'notes-db');
  t.is((await neu.must('dokku postgres:links notes-db')).trim(), 'notes');
  t.is((await neu.must('dokku postgres:info notes-db --status')).trim(), 'running');
  for (const s of SERVICES.filter((x) => x.startsWith('postgres/') === false)) {
    const [plugin, name] = s.split('/') as [string, string];
    const listed = await neu.exec(`dokku --quiet ${plugin}:list`);
    t.false(
      listed.stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === name),
      `${s} was left out: ${listed.stdout}`,
    );
  }
  // notes answers through new's proxy with the rows of its PostgreSQL; the others do not.
  const notes = await get(neu, 'notes');
  t.regex(notes, /\n200 \S+$/, `notes answers: ${notes}`);
  for (const row of SEEDED.services[0]!.rows) t.true(notes.includes(row), `row "${row}"`);
  for (const app of SEEDED.apps.filter((a) => a.name !== 'notes')) {
    t.false((await get(neu, app.name)).includes(app.answers), `${app.name} is not on new`);
  }
  t.deepEqual(
    withoutRunState(await digest(lab().host('old'))),
    withoutRunState(before),
    'the Dokku files of old changed',
  );
});

labTest(
  'backup --exclude-service (one unlinked, one linked): the archive leaves them out, the rest restores',
  async (t) => {
    t.timeout(20 * 60_000);
    t.true(before.length > 0, 'the seed test seeded old');
    const fetched = mkdtempSync(join(tmpdir(), 'ferry-selection-fetch-'));
    // analytics is linked to nothing; counter-cache is linked to counter, which stays
    const left = ['postgres/analytics', 'memcached/counter-cache'];
    const started = Date.now();
    const b = await ferry([
      'backup',
      'old',
      ...left.flatMap((s) => ['--exclude-service', s]),
      '--fetch',
      fetched,
    ]);
    t.log(`backup --exclude-service: ${secs(started)} s`);
    t.is(b.code, 0, `ferry backup failed:\n${b.stdout}\n${b.stderr}`);
    t.regex(
      `${b.stdout}\n${b.stderr}`,
      /counter is linked to memcached\/counter-cache, which is left out/,
    );
    const dirs = readdirSync(fetched);
    t.is(dirs.length, 1, `one archive folder in ${fetched}`);
    const archive = join(fetched, dirs[0]!);

    // The archive's own listing: its manifest and the sums of its exports.
    const manifest = JSON.parse(readFileSync(join(archive, 'manifest.json'), 'utf8')) as {
      services: { plugin: string; name: string }[];
      selection?: {
        dropped: { apps: string[]; services: string[] };
        cut: { service: string; app: string }[];
      };
    };
    const listed = manifest.services.map((s) => `${s.plugin}/${s.name}`).sort();
    t.deepEqual(listed, SERVICES.filter((s) => !left.includes(s)).sort());
    t.deepEqual(manifest.selection?.dropped.apps, []);
    t.deepEqual([...(manifest.selection?.dropped.services ?? [])].sort(), [...left].sort());
    t.deepEqual(manifest.selection?.cut, [{ service: 'memcached/counter-cache', app: 'counter' }]);
    const sums = readFileSync(join(archive, 'exports', 'SHA256SUMS'), 'utf8');
    t.false(/analytics/.test(sums), `no export of analytics: ${sums}`);
    t.regex(sums, /notes-db/, `notes-db's export is summed: ${sums}`);
    t.false(
      readdirSync(join(archive, 'exports')).some((f) => f.includes('analytics')),
      'no analytics file in exports/',
    );

    const r0 = Date.now();
    const r = await ferry(['restore', archive, 'scratch']);
    t.log(`restore: ${secs(r0)} s`);
    t.is(r.code, 0, `ferry restore failed:\n${r.stdout}\n${r.stderr}`);
    t.regex(`${r.stdout}\n${r.stderr}`, /counter: unlinked from memcached\/counter-cache/);
    const scratch = lab().host('scratch');
    await landed(t, scratch, { without: left });
    const env = await scratch.must('dokku config:show counter');
    t.notRegex(env, /MEMCACHED_URL/, `counter's link to the cache is gone: ${env}`);
    t.regex(env, /REDIS_URL:/);
    t.regex(env, /DATABASE_URL:/);
    t.regex(await get(scratch, 'counter', '/cache'), /\{"last":null\}\n+200 /);
    t.deepEqual(
      withoutRunState(await digest(lab().host('old'))),
      withoutRunState(before),
      'the Dokku files of old changed',
    );
  },
);
