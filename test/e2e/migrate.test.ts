/**
 * The main job, end to end on the lab: migrate a seeded host, back it up and
 * restore the backup onto another, resume an interrupted run, and refuse a
 * corrupted archive before anything is extracted.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, type SeedResult, seed } from '../lab/emulator/seed.js';
import type { LabHost } from '../lab/lab.js';
import { digest, landed, withoutRunState } from '../lab/landed.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'e2e-migrate', hosts: ['old', 'new', 'scratch', 'h4'] });
const state = mkdtempSync(join(tmpdir(), 'ferry-e2e-'));
let seeded: SeedResult | undefined;
let inventoryFile = '';
// One seeding for every test: a failed seed fails them all with its own
// error, instead of each later test re-seeding a half-seeded host.
let seeding: Promise<void> | undefined;

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    env: {
      ...process.env,
      FERRY_STATE_DIR: state,
      CI: '1',
      GIT_SSH_COMMAND: lab().gitSshCommand(),
    },
  });
}

/** The scheduled backup's cron entry (outside the archived paths) is on `to`, as on `from`. */
async function sameCron(t: ExecutionContext, from: LabHost, to: LabHost): Promise<void> {
  const file = SEEDED.backupSchedule.file;
  const want = await from.must(`cat ${file}`);
  t.regex(want, /^0 3 \* \* \* dokku \/usr\/bin\/dokku postgres:backup notes-db ferry-backups/);
  t.is(await to.must(`cat ${file}`), want, `${file} on ${to.name}`);
  t.is((await to.must(`stat -c '%U %a' ${file}`)).trim(), 'root 644');
}

async function setUp(t: ExecutionContext): Promise<{ old: LabHost; inv: string }> {
  const l = lab();
  const old = l.host('old');
  seeding ??= (async () => {
    seeded = await seed(old, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });
    const inv = readFileSync(l.inventoryPath, 'utf8');
    const doc = (await import('yaml')).parse(inv) as Record<string, unknown>;
    doc.repos = [{ path: seeded.repos.notes, app: 'notes' }];
    doc.apps = { order: ['notes'] };
    inventoryFile = join(state, 'inventory.yml');
    writeFileSync(inventoryFile, stringify(doc));
  })();
  await seeding;
  t.truthy(seeded);
  return { old, inv: inventoryFile };
}

labTest(
  'migrate moves every app, datastore and plugin, and leaves the source as it was',
  async (t) => {
    const { old, inv } = await setUp(t);
    const neu = lab().host('new');
    const before = await digest(old);
    const r = await ferry(['migrate', 'old', 'new', '-i', inv, '--leave-source-running']);
    t.is(r.code, 0, `ferry migrate failed:\n${r.stdout}\n${r.stderr}`);
    await landed(t, neu);
    // The image and archive apps were redeployed the way they were deployed.
    const sources = await neu.must(
      'cat /var/lib/dokku/config/apps/whoami/deploy-source /var/lib/dokku/config/apps/landing/deploy-source',
    );
    t.regex(sources, /docker-image/);
    // The custom plugin's triggers ran on the target (the marks live outside the archive).
    const marks = await neu.must('ls /var/lib/docker/lab-marks 2>/dev/null || true');
    t.regex(marks, /ferry-marker/);
    await sameCron(t, old, neu);
    // The source is byte-for-byte as before.
    t.deepEqual(
      withoutRunState(await digest(old)),
      withoutRunState(before),
      'the source Dokku directories changed',
    );
    // git push through the rewritten remote deploys to the target.
    const repo = seeded!.repos.notes!;
    const url = await gitOut(repo, ['remote', 'get-url', 'dokku']);
    t.true(url.includes(neu.address), `remote now ${url}`);
    await gitOut(repo, ['commit', '--allow-empty', '-qm', 'after the move']);
    await gitOut(repo, ['push', '-q', 'dokku', 'HEAD:master']);
    const head = await gitOut(repo, ['rev-parse', 'HEAD']);
    t.is(
      (
        await neu.must("git -c safe.directory='*' -C /home/dokku/notes rev-parse refs/heads/master")
      ).trim(),
      head,
    );
    t.regex(r.stdout, /ssh connections\W+2\b/);
  },
);

labTest(
  'a corrupted archive is refused before anything is extracted; the good one restores',
  async (t) => {
    await setUp(t);
    const scratch = lab().host('scratch');
    const dir = mkdtempSync(join(tmpdir(), 'ferry-fetch-'));
    const b = await ferry(['backup', 'old', '--fetch', dir, '-i', inventoryFile]);
    t.is(b.code, 0, `ferry backup failed:\n${b.stdout}\n${b.stderr}`);
    const fetched = readdirSync(dir).map((d) => join(dir, d));
    t.is(fetched.length, 1);
    const archiveDir = fetched[0]!;
    const file = readdirSync(archiveDir).find((f) => /^dokku\.tar\.(zst|gz)$/.test(f))!;
    t.truthy(file, `an archive in ${archiveDir}`);

    // A copy with one byte flipped in the middle.
    const bad = mkdtempSync(join(tmpdir(), 'ferry-bad-'));
    await sh(
      `cp -a ${archiveDir}/. ${bad}/ && f=${bad}/${file} && n=$(($(stat -c %s "$f") / 2)) && printf 'X' | dd of="$f" bs=1 seek="$n" conv=notrunc status=none`,
    );
    const before = await digest(scratch);
    const r1 = await ferry(['restore', bad, 'scratch', '-i', inventoryFile]);
    t.is(r1.code, 1, `a corrupted archive must be refused:\n${r1.stdout}\n${r1.stderr}`);
    t.regex(`${r1.stdout}\n${r1.stderr}`, /checksum|sha256|mismatch/i);
    t.deepEqual(await digest(scratch), before, 'nothing was moved into place on scratch');

    t.true(
      readdirSync(join(archiveDir, 'cron.d')).includes('dokku-postgres-notes-db'),
      'the backup keeps the cron entry',
    );
    const r2 = await ferry(['restore', archiveDir, 'scratch', '-i', inventoryFile]);
    t.is(r2.code, 0, `ferry restore failed:\n${r2.stdout}\n${r2.stderr}`);
    await landed(t, scratch);
    await sameCron(t, lab().host('old'), scratch);
  },
);

labTest('a run interrupted after the transfer resumes with --resume and finishes', async (t) => {
  await setUp(t);
  const h4 = lab().host('h4');
  // A copy of the shipped playbook with a gate of the user's own after the transfer.
  const pb = (await import('yaml')).parse(readFileSync(`${root}playbooks/migrate.yml`, 'utf8')) as {
    steps: { task: string; on: string; params?: unknown }[];
  };
  const at = pb.steps.findIndex((s) => s.task === 'transfer') + 1;
  pb.steps.splice(at, 0, {
    task: 'command',
    on: 'target',
    params: { run: 'test -e /tmp/ferry-go-on' },
  });
  const pbFile = join(state, 'migrate-gated.yml');
  writeFileSync(pbFile, stringify(pb));

  const args = [
    'migrate',
    'old',
    'h4',
    '-i',
    inventoryFile,
    '-p',
    pbFile,
    '--leave-source-running',
  ];
  const r1 = await ferry(args);
  t.is(r1.code, 1, `the gate must stop the run:\n${r1.stdout}\n${r1.stderr}`);
  t.regex(r1.stderr, /--resume/);
  await h4.must('touch /tmp/ferry-go-on');
  const r2 = await ferry([...args, '--resume']);
  t.is(r2.code, 0, `ferry migrate --resume failed:\n${r2.stdout}\n${r2.stderr}`);
  t.regex(r2.stderr, /resuming run/);
  t.notRegex(
    r2.stdout,
    /transfer[^\n]*\b(ok|✔)[^\n]*\d+(\.\d+)? ?s\b/,
    'the transfer did not run again',
  );
  await landed(t, h4);
});

async function sh(script: string): Promise<string> {
  const r = await run('bash', ['-c', `set -euo pipefail\n${script}`], { env: process.env });
  if (r.code !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout.trim();
}

function gitOut(repo: string, args: string[]): Promise<string> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  // The lab key, and host keys checked against the lab's known_hosts (never turned off).
  return sh(
    `cd ${q(repo)} && GIT_SSH_COMMAND=${q(lab().gitSshCommand())} git ${args.map(q).join(' ')}`,
  );
}
