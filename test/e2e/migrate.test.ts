/**
 * The main job, end to end on the lab: migrate a seeded host with the
 * shipped playbook, its repo's remote rewritten, the source left as it was.
 * A backup restored onto another host, a damaged archive refused before
 * anything is extracted, and a run resumed after its transfer are the fault
 * matrix's (faults.test.ts: `npm run test:faults`, which CI runs after the
 * suite), on its own seeded source: a second seed and three more runs here
 * cost the suite minutes and checked nothing more.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { labTest, useLab } from '../lab/ava.js';
import { type SeedResult, seed } from '../lab/emulator/seed.js';
import type { LabHost } from '../lab/lab.js';
import { digest, landed, sameCron, withoutRunState } from '../lab/landed.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'e2e-migrate', hosts: ['old', 'new'] });
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
