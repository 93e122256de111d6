/**
 * The release matrix (issue 9): `ferry migrate` from a fully seeded source at
 * each older Dokku release the emulator claims (0.30.11, 0.34.9, 0.37.9) to a
 * fresh 0.38.27 target, 0.37.9 to 0.37.9, and `ferry backup --fetch` then
 * `ferry restore` for 0.34.9. 0.38.27 to 0.38.27, by migrate and by backup and
 * restore, is migrate.test.ts's and faults.test.ts's, with the same checks (test/lab/landed.ts):
 * running it here too cost the suite six minutes and found nothing more. After each: every app answers
 * through the target's proxy, every row and key is there, every service runs,
 * the user's deploy lock is kept, and the source's Dokku files are unchanged.
 *
 * One seeded source per release, shared by the cases that read it (each
 * migrate brings its source back, --leave-source-running, and each case
 * checks the source's files unchanged but for its containers' ids and
 * ports); one fresh target per case. The three seeds start together and each case waits only for its own.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { labTest, useLab } from '../lab/ava.js';
import { seed } from '../lab/emulator/seed.js';
import { digest, landed, withoutRunState } from '../lab/landed.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Source hosts, by the release they run. */
const SOURCES = { s030: '0.30.11', s034: '0.34.9', s037: '0.37.9' } as const;
type Source = keyof typeof SOURCES;

/** Target hosts, fresh, one per case. */
const TARGETS = {
  t030: '0.38.27',
  t034: '0.38.27',
  t037: '0.38.27',
  u037: '0.37.9',
  r034: '0.38.27',
} as const;
type Target = keyof typeof TARGETS;

const lab = useLab({
  instance: 'releases',
  hosts: [...Object.entries(SOURCES), ...Object.entries(TARGETS)].map(([name, dokkuVersion]) => ({
    name,
    dokkuVersion,
  })),
});
const state = mkdtempSync(join(tmpdir(), 'ferry-releases-'));
const started = Date.now();
const secs = (since: number): number => Math.round((Date.now() - since) / 1000);

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args, '-i', lab().inventoryPath], {
    cwd: root,
    env: { ...process.env, FERRY_STATE_DIR: state, CI: '1' },
  });
}

/** Each source's seeding and the digest of its Dokku files right after, started once for all. */
const seeds = new Map<Source, Promise<string[]>>();
function seeded(name: Source): Promise<string[]> {
  if (seeds.size === 0) {
    const l = lab();
    for (const s of Object.keys(SOURCES) as Source[]) {
      const host = l.host(s);
      const p = seed(host, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir })
        .then(() => digest(host))
        .catch((e: unknown) => {
          throw new Error(`seeding ${s} (${SOURCES[s]}): ${e instanceof Error ? e.message : e}`);
        });
      // a case that never asks for this source must not see an unhandled rejection
      p.catch(() => undefined);
      seeds.set(s, p);
    }
  }
  const p = seeds.get(name);
  if (p === undefined) throw new Error(`no source ${name}`);
  return p;
}

async function migrate(t: ExecutionContext, from: Source, to: Target): Promise<void> {
  t.timeout(40 * 60_000);
  const before = await seeded(from);
  const t0 = Date.now();
  const r = await ferry(['migrate', from, to, '--leave-source-running']);
  t.log(`migrate ${SOURCES[from]} -> ${TARGETS[to]}: ${secs(t0)} s (file: ${secs(started)} s)`);
  t.is(r.code, 0, `ferry migrate ${from} ${to} failed:\n${r.stdout}\n${r.stderr}`);
  if (r.code !== 0) return;
  const l = lab();
  await landed(t, l.host(to));
  t.deepEqual(
    withoutRunState(await digest(l.host(from))),
    withoutRunState(before),
    `the Dokku files of ${from} changed`,
  );
}

async function backupRestore(t: ExecutionContext, from: Source, to: Target): Promise<void> {
  t.timeout(40 * 60_000);
  const before = await seeded(from);
  const dir = mkdtempSync(join(tmpdir(), `ferry-releases-${from}-`));
  const t0 = Date.now();
  const b = await ferry(['backup', from, '--fetch', dir]);
  t.is(b.code, 0, `ferry backup ${from} failed:\n${b.stdout}\n${b.stderr}`);
  if (b.code !== 0) return;
  const fetched = readdirSync(dir);
  t.is(fetched.length, 1, `one archive folder in ${dir}`);
  const r = await ferry(['restore', join(dir, fetched[0] ?? ''), to]);
  t.log(`backup ${SOURCES[from]} + restore: ${secs(t0)} s (file: ${secs(started)} s)`);
  t.is(r.code, 0, `ferry restore onto ${to} failed:\n${r.stdout}\n${r.stderr}`);
  if (r.code !== 0) return;
  const l = lab();
  await landed(t, l.host(to));
  // a migrate before this case froze the source and brought it back
  t.deepEqual(
    withoutRunState(await digest(l.host(from))),
    withoutRunState(before),
    `the Dokku files of ${from} changed`,
  );
}

labTest('seeds: one source per release, each with the full seed', async (t) => {
  t.timeout(40 * 60_000);
  const t0 = Date.now();
  const sources = Object.keys(SOURCES) as Source[];
  const got = await Promise.allSettled(sources.map((s) => seeded(s)));
  t.log(`seeded ${sources.length} sources in ${Math.round((Date.now() - t0) / 1000)} s`);
  for (const [i, g] of got.entries()) {
    t.is(g.status, 'fulfilled', `${sources[i]}: ${g.status === 'rejected' ? g.reason : ''}`);
  }
});

labTest('migrate 0.37.9 -> 0.38.27', (t) => migrate(t, 's037', 't037'));
labTest('migrate 0.37.9 -> 0.37.9', (t) => migrate(t, 's037', 'u037'));
labTest('migrate 0.34.9 -> 0.38.27', (t) => migrate(t, 's034', 't034'));
labTest('migrate 0.30.11 -> 0.38.27', (t) => migrate(t, 's030', 't030'));
labTest('backup --fetch + restore 0.34.9', (t) => backupRestore(t, 's034', 'r034'));
