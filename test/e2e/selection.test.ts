/**
 * Selection and renames on migrate, backup and restore, end to end on one
 * seeded host:
 * - `ferry migrate old new --app notes`: the plan says the services linked
 *   to notes come along; the run takes notes-db because notes is linked to
 *   it; new ends with notes and notes-db and nothing else, and notes answers
 *   with its rows through new's proxy.
 * - `ferry backup old --exclude-service postgres/analytics --exclude-service
 *   memcached/counter-cache --fetch DIR`: the archive's manifest and export
 *   sums leave both out, and restoring it onto scratch brings up everything
 *   else, counter unlinked from the cache it was linked to (its
 *   MEMCACHED_URL gone) and answering from its other services.
 * - `ferry restore` of that archive with `--app notes --rename notes=memo`:
 *   the plan says what is taken and renamed; only memo comes up, with its
 *   linked database and nothing else, answering with the rows of that
 *   database at its renamed vhost. With `--rename
 *   postgres/notes-db=memo-db` as well, the database is a clone holding the
 *   same rows and memo is relinked to it under the same variable.
 *
 * The renames restore the selection's archive rather than a whole backup of
 * their own: what they take (notes, notes-db) is in it, and a second seed
 * and backup cost the suite three minutes.
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
const lab = useLab({ instance: 'selection', hosts: ['old', 'new', 'scratch', 'r1', 'r2'] });
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
/** The fetched archive of the backup with exclusions (the renames restore it). */
let archive = '';

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
    archive = join(fetched, dirs[0]!);

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

const FLAGS = ['--app', 'notes', '--rename', 'notes=memo'];

labTest(
  'the plan says what is taken and renamed; a name the archive lacks stops the run',
  async (t) => {
    t.truthy(archive, 'the backup test made an archive');
    const r1 = lab().host('r1');
    const p = await ferry(['restore', archive, 'r1', ...FLAGS, '--dry-run']);
    t.is(p.code, 0, `${p.stdout}\n${p.stderr}`);
    t.regex(
      p.stdout,
      /selection: apps notes with the services linked to them; renaming notes as memo/,
    );
    t.regex(p.stdout, /dokku apps:rename --skip-deploy notes memo/);

    // Stopped before anything is moved into place.
    const bad = await ferry(['restore', archive, 'r1', '--app', 'nope', '--rename', 'nope=x']);
    t.is(bad.code, 1, `${bad.stdout}\n${bad.stderr}`);
    t.regex(`${bad.stdout}\n${bad.stderr}`, /--app nope: no such app in the manifest of old/);
    t.is((await r1.must('dokku --quiet apps:list')).trim(), '');
  },
);

labTest(
  'restore --app notes --rename notes=memo: memo answers with its linked database, nothing else comes',
  async (t) => {
    t.truthy(archive, 'the backup test made an archive');
    const r1 = lab().host('r1');
    const started = Date.now();
    const r = await ferry(['restore', archive, 'r1', ...FLAGS]);
    t.log(
      `restore --app notes --rename notes=memo: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    t.is(r.code, 0, `ferry restore failed:\n${r.stdout}\n${r.stderr}`);
    // The run says why the database came.
    t.regex(`${r.stdout}\n${r.stderr}`, /service postgres\/notes-db: linked to notes/);

    // Only memo, linked to notes-db; every other app and service was removed.
    t.is((await r1.must('dokku --quiet apps:list')).trim(), 'memo');
    t.is((await r1.must('dokku postgres:links notes-db')).trim(), 'memo');
    t.false((await r1.must('dokku --quiet postgres:list')).includes('analytics'));
    for (const [plugin, d] of Object.entries(SEEDED.datastores)) {
      const listed = await r1.exec(`dokku --quiet ${plugin}:list`);
      t.false(listed.stdout.includes(d.name), `${plugin}/${d.name} was left out`);
    }
    // The ENV came with the rename: the URL of the database and the app's own config.
    const env = await r1.must('dokku config:show memo');
    t.regex(env, /DATABASE_URL:\s+postgres:\/\/\S+notes[-_]db/);
    t.regex(env, /NOTES_TITLE:\s+Ferry notes/);
    t.false(
      (await r1.exec('test -e /home/dokku/notes')).code === 0,
      'the old name is gone from /home/dokku',
    );

    // memo answers at its renamed vhost, with the rows of its linked PostgreSQL.
    const vhost = (await r1.must('cat /home/dokku/VHOST')).trim();
    t.is((await r1.must('cat /home/dokku/memo/VHOST')).trim(), `memo.${vhost}`);
    const page = await r1.must(`curl -sS -m 10 -H 'Host: memo.${vhost}' http://127.0.0.1/`);
    for (const row of SEEDED.services[0]!.rows)
      t.true(page.includes(row), `row "${row}" in ${page}`);
    const gone = await r1.exec(`curl -sS -m 10 -H 'Host: notes.${vhost}' http://127.0.0.1/`);
    t.false(gone.stdout.includes(SEEDED.services[0]!.rows[0]!), 'notes no longer answers');
  },
);

labTest(
  'restore --rename postgres/notes-db=memo-db too: the clone holds the rows, memo is relinked under DATABASE_URL',
  async (t) => {
    t.truthy(archive, 'the backup test made an archive');
    const r2 = lab().host('r2');
    const flags = [...FLAGS, '--rename', 'postgres/notes-db=memo-db'];
    const started = Date.now();
    const r = await ferry(['restore', archive, 'r2', ...flags]);
    t.log(`restore with a service renamed: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.is(r.code, 0, `ferry restore failed:\n${r.stdout}\n${r.stderr}`);
    t.is((await r2.must('dokku --quiet apps:list')).trim(), 'memo');
    const services = await r2.must('dokku --quiet postgres:list');
    t.regex(services, /\bmemo-db\b/);
    t.notRegex(services, /\bnotes-db\b/, 'the old service is destroyed once nothing links it');
    t.is((await r2.must('dokku postgres:links memo-db')).trim(), 'memo');
    // The same variable, now with the clone's URL.
    const env = await r2.must('dokku config:show memo');
    t.regex(env, /DATABASE_URL:\s+postgres:\/\/\S+memo[-_]db/);
    const vhost = (await r2.must('cat /home/dokku/VHOST')).trim();
    const page = await r2.must(`curl -sS -m 10 -H 'Host: memo.${vhost}' http://127.0.0.1/`);
    for (const row of SEEDED.services[0]!.rows)
      t.true(page.includes(row), `row "${row}" in ${page}`);
  },
);
