/**
 * Selection and renames on the lab: a whole backup of a seeded host restored
 * onto another with `--app notes --rename notes=memo`. Only memo comes up,
 * with its linked database (taken because notes was linked to it) and
 * nothing else; memo answers with the rows of that database through the
 * proxy, at its renamed vhost. The plan says what is taken and why. With
 * `--rename postgres/notes-db=memo-db` as well, the database is a clone
 * holding the same rows and memo is relinked to it under the same variable.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, seed } from '../lab/emulator/seed.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'e2e-rename', hosts: ['old', 'new', 'scratch'] });
const state = mkdtempSync(join(tmpdir(), 'ferry-rename-'));

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args, '-i', lab().inventoryPath], {
    cwd: root,
    env: { ...process.env, FERRY_STATE_DIR: state, CI: '1' },
  });
}

/** The fetched archive of old's whole backup (the first test makes it). */
let archive = '';

// Seeding and the backup take minutes on a busy machine: a test of their own
// (AVA's timeout counts from one test's end to the next).
labTest('a whole backup of the seeded old, fetched here', async (t) => {
  const l = lab();
  await seed(l.host('old'), { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });
  const fetched = mkdtempSync(join(tmpdir(), 'ferry-rename-fetch-'));
  const b = await ferry(['backup', 'old', '--fetch', fetched]);
  t.is(b.code, 0, `ferry backup failed:\n${b.stdout}\n${b.stderr}`);
  const all = readdirSync(fetched).map((d) => join(fetched, d));
  t.is(all.length, 1);
  archive = all[0]!;
});

const FLAGS = ['--app', 'notes', '--rename', 'notes=memo'];

labTest(
  'the plan says what is taken and renamed; a name the archive lacks stops the run',
  async (t) => {
    t.truthy(archive, 'the backup test made an archive');
    const neu = lab().host('new');
    const p = await ferry(['restore', archive, 'new', ...FLAGS, '--dry-run']);
    t.is(p.code, 0, `${p.stdout}\n${p.stderr}`);
    t.regex(
      p.stdout,
      /selection: apps notes with the services linked to them; renaming notes as memo/,
    );
    t.regex(p.stdout, /dokku apps:rename --skip-deploy notes memo/);

    // Stopped before anything is moved into place.
    const bad = await ferry(['restore', archive, 'new', '--app', 'nope', '--rename', 'nope=x']);
    t.is(bad.code, 1, `${bad.stdout}\n${bad.stderr}`);
    t.regex(`${bad.stdout}\n${bad.stderr}`, /--app nope: no such app in the manifest of old/);
    t.is((await neu.must('dokku --quiet apps:list')).trim(), '');
  },
);

labTest(
  'restore --app notes --rename notes=memo: memo answers with its linked database, nothing else comes',
  async (t) => {
    t.truthy(archive, 'the backup test made an archive');
    const neu = lab().host('new');
    const started = Date.now();
    const r = await ferry(['restore', archive, 'new', ...FLAGS]);
    t.log(
      `restore --app notes --rename notes=memo: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    t.is(r.code, 0, `ferry restore failed:\n${r.stdout}\n${r.stderr}`);
    // The run says why the database came.
    t.regex(`${r.stdout}\n${r.stderr}`, /service postgres\/notes-db: linked to notes/);

    // Only memo, linked to notes-db; every other app and service was removed.
    t.is((await neu.must('dokku --quiet apps:list')).trim(), 'memo');
    t.is((await neu.must('dokku postgres:links notes-db')).trim(), 'memo');
    t.false((await neu.must('dokku --quiet postgres:list')).includes('analytics'));
    for (const [plugin, d] of Object.entries(SEEDED.datastores)) {
      const listed = await neu.exec(`dokku --quiet ${plugin}:list`);
      t.false(listed.stdout.includes(d.name), `${plugin}/${d.name} was left out`);
    }
    // The ENV came with the rename: the URL of the database and the app's own config.
    const env = await neu.must('dokku config:show memo');
    t.regex(env, /DATABASE_URL:\s+postgres:\/\/\S+notes[-_]db/);
    t.regex(env, /NOTES_TITLE:\s+Ferry notes/);
    t.false(
      (await neu.exec('test -e /home/dokku/notes')).code === 0,
      'the old name is gone from /home/dokku',
    );

    // memo answers at its renamed vhost, with the rows of its linked PostgreSQL.
    const vhost = (await neu.must('cat /home/dokku/VHOST')).trim();
    t.is((await neu.must('cat /home/dokku/memo/VHOST')).trim(), `memo.${vhost}`);
    const page = await neu.must(`curl -sS -m 10 -H 'Host: memo.${vhost}' http://127.0.0.1/`);
    for (const row of SEEDED.services[0]!.rows)
      t.true(page.includes(row), `row "${row}" in ${page}`);
    const gone = await neu.exec(`curl -sS -m 10 -H 'Host: notes.${vhost}' http://127.0.0.1/`);
    t.false(gone.stdout.includes(SEEDED.services[0]!.rows[0]!), 'notes no longer answers');
  },
);

labTest(
  'restore --rename postgres/notes-db=memo-db too: the clone holds the rows, memo is relinked under DATABASE_URL',
  async (t) => {
    t.truthy(archive, 'the backup test made an archive');
    const scratch = lab().host('scratch');
    const flags = [...FLAGS, '--rename', 'postgres/notes-db=memo-db'];
    const started = Date.now();
    const r = await ferry(['restore', archive, 'scratch', ...flags]);
    t.log(`restore with a service renamed: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.is(r.code, 0, `ferry restore failed:\n${r.stdout}\n${r.stderr}`);
    t.is((await scratch.must('dokku --quiet apps:list')).trim(), 'memo');
    const services = await scratch.must('dokku --quiet postgres:list');
    t.regex(services, /\bmemo-db\b/);
    t.notRegex(services, /\bnotes-db\b/, 'the old service is destroyed once nothing links it');
    t.is((await scratch.must('dokku postgres:links memo-db')).trim(), 'memo');
    // The same variable, now with the clone's URL.
    const env = await scratch.must('dokku config:show memo');
    t.regex(env, /DATABASE_URL:\s+postgres:\/\/\S+memo[-_]db/);
    const vhost = (await scratch.must('cat /home/dokku/VHOST')).trim();
    const page = await scratch.must(`curl -sS -m 10 -H 'Host: memo.${vhost}' http://127.0.0.1/`);
    for (const row of SEEDED.services[0]!.rows)
      t.true(page.includes(row), `row "${row}" in ${page}`);
  },
);
