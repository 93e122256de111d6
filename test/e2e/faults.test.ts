/**
 * The fault matrix (issue 10), end to end on the lab: each case breaks a
 * migrate or a restore the way an operator's bad day would, then checks that
 * ferry says why in words that name the cause, exits within 5 s of the
 * fault, leaves the source's Dokku files byte-identical and no pull key or
 * temp file on either host, and that --resume (or a re-run) ends with every
 * app answering and every row present. One seeded source serves every case;
 * each case has its own target (the --force case reuses a filled one).
 * The matrix is printed at the end.
 *
 * The cases run the shipped migrate.yml without its freeze: the cut-over
 * step gives way to the plain exports it replaced, and release-source goes.
 * A frozen source would make each case hold it from start to end, one case
 * at a time; the freeze's own failures (a step failing after it, the source
 * brought back, --resume) are cutover.test.ts's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { parse, stringify } from 'yaml';
import { labSkipReason, labTest, useLab } from '../lab/ava.js';
import { SEEDED, seed } from '../lab/emulator/seed.js';
import type { LabHost } from '../lab/lab.js';
import { landed, sameCron } from '../lab/landed.js';
import { sleep } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * Behind FERRY_E2E_FAULTS=1 for the time budget, not for a failure: every case
 * passes, alone and inside the whole suite. But inside the suite it made the
 * whole run 43 to 47 minutes on 2 cores, near or over CI's 45, even after the
 * suite dropped what it repeated. Alone it takes 7 to 10 minutes, so CI runs
 * it after the suite (.ci/run), as `npm run test:faults` does.
 */
const enabled = process.env.FERRY_E2E_FAULTS === '1';
const skipped = labSkipReason ?? (enabled ? undefined : 'set FERRY_E2E_FAULTS=1');
const lab = enabled
  ? useLab({
      instance: 'e2e-faults',
      hosts: ['old', 'new', 'scratch', 'h4', 'h5', 'h6', 'h7', 'h8', 'h9', 'h10'],
    })
  : () => {
      throw new Error('the fault matrix runs with FERRY_E2E_FAULTS=1');
    };
const state = mkdtempSync(join(tmpdir(), 'ferry-faults-'));
/** Incompressible data on the source, so a throttled copy lasts long enough to be cut. */
const BLOB = '/var/lib/dokku/data/storage/faults-blob/blob.bin';
const BLOB_MB = 40;
/** The source's egress for the whole file: the blob alone takes a few seconds to copy, so a fault lands mid-copy. */
const SLOW = '100mbit';
const FAULT_EXIT_S = 5;

let inventoryFile = '';
/** migrate.yml without the freeze (see the file's comment), for every migrate here. */
let playbookFile = '';
let before: string[] = [];
let preparing: Promise<void> | undefined;

interface Row {
  name: string;
  code: string;
  seconds: string;
  leftovers: string;
  resumed: string;
}
const matrix: Row[] = [];
/** Everything ferry printed in this file: no secret may be in it. */
const outputs: string[] = [];

/**
 * The source-cut case runs alone, first (ava runs serial tests before the
 * others): it drops every session on the source. So do the held cases with
 * a hard bound on a few seconds (^C, a bad host): three migrates beside them
 * put a 2-core machine at a load of 11, which they are not about. The others run side by
 * side, at most {@link SLOTS} at once, each on its own target: a migrate
 * takes minutes on a loaded machine. Each run that reads the source's Dokku
 * state takes its turn there (see {@link inSourceTurn}).
 */
function serialCase(title: string, impl: (t: ExecutionContext) => Promise<void>): void {
  if (skipped) test.skip(title, impl);
  else labTest(title, impl);
}

/** Cases at once: two cores, each case's migrate busy on both of its hosts. */
const SLOTS = 3;
let free = SLOTS;
const waiting: (() => void)[] = [];

function concurrentCase(title: string, impl: (t: ExecutionContext) => Promise<void>): void {
  if (skipped) {
    test.skip(title, impl);
    return;
  }
  test(title, async (t) => {
    t.timeout(40 * 60_000);
    if (free > 0) free--;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      await impl(t);
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  });
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Date.now() when the process ended. */
  endedAt: number;
}

/** Starts ferry; `done` settles when it exits (never rejects). */
function startFerry(args: string[]): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    // Traced, so the secrets check below also covers the trace lines.
    env: { ...process.env, FERRY_STATE_DIR: state, CI: '1', FERRY_TRACE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => {
      outputs.push(stdout, stderr);
      resolve({ code, signal, stdout, stderr, endedAt: Date.now() });
    });
  });
  return { child, done };
}

async function ferry(args: string[]): Promise<Finished> {
  return startFerry(args).done;
}

/** The end of the last turn asked for on the source. */
let sourceQueue: Promise<void> = Promise.resolve();

/** Whether a run started with `args` journalled the start of its transfer step. */
function transferStarted(args: string[], since: number): boolean {
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(state, 'runs'));
  } catch {
    return false;
  }
  for (const d of dirs) {
    let text = '';
    let first: { argv?: string[]; at?: string };
    try {
      text = readFileSync(join(state, 'runs', d, 'journal.jsonl'), 'utf8');
      // A journal just made may not hold its first line yet.
      first = JSON.parse(text.slice(0, text.indexOf('\n'))) as typeof first;
    } catch {
      continue;
    }
    if (Date.parse(first.at ?? '') < since - 1000) continue;
    if (JSON.stringify(first.argv) !== JSON.stringify(args)) continue;
    if (text.includes('"type":"step-started","step":"transfer"')) return true;
  }
  return false;
}

/**
 * Starts ferry in the source's turn: one run at a time does what reads the
 * source's Dokku state (check-quiet, inventory, the exports, a backup), since
 * check-quiet rightly refuses a source where a dokku command runs, and another
 * case's always is at some point. The turn ends when this run's transfer
 * starts (from there it reads files only) or when it ends.
 */
async function inSourceTurn(
  args: string[],
): Promise<{ child: ChildProcess; done: Promise<Finished> }> {
  let release: () => void = () => {};
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const before = sourceQueue;
  sourceQueue = before.then(() => mine);
  await before;
  const since = Date.now();
  const f = startFerry(args);
  let ended = false;
  void f.done.then(() => {
    ended = true;
  });
  void (async () => {
    try {
      while (!ended && !transferStarted(args, since)) await sleep(200);
    } finally {
      release();
    }
  })();
  return f;
}

/** {@link ferry} in the source's turn. */
async function ferryInTurn(args: string[]): Promise<Finished> {
  return (await inSourceTurn(args)).done;
}

const said = (r: Finished) => `exit ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`;

/** Polls `check` every 100 ms until it is true; throws after `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Bytes staged on `host` so far: the copy is under way once this grows. */
async function staged(host: LabHost): Promise<number> {
  const out = await host.exec(
    "du -sb /var/lib/dokku/.ferry-stage-* /home/dokku/.ferry-stage-* 2>/dev/null | awk '{s+=$1} END {print s+0}'",
  );
  return Number(out.stdout.trim()) || 0;
}

/** Waits until a few MiB of the blob reached `host`'s stage: the copy is in flight. */
function midCopy(host: LabHost, done: Promise<Finished>): Promise<void> {
  let ended = false;
  void done.then(() => {
    ended = true;
  });
  return until(
    `the copy to ${host.name} to be under way`,
    async () => {
      if (ended) throw new Error('ferry ended before the copy was under way');
      return (await staged(host)) > 3 * 1024 * 1024;
    },
    15 * 60_000,
  );
}

async function throttle(on: boolean): Promise<void> {
  const old = lab().host('old');
  await old.exec('tc qdisc del dev eth0 root 2>/dev/null || true');
  // A shallow queue: one of 2 s held a cut connection's FIN behind 2 s of data.
  if (on) await old.must(`tc qdisc add dev eth0 root tbf rate ${SLOW} burst 64kb latency 400ms`);
}

/**
 * What ferry may leave behind on a host, one line each: pull key lines in
 * any authorized keys file, its temp dirs and checksum FIFOs in /tmp.
 */
async function leftovers(host: LabHost): Promise<string[]> {
  const out = await host.exec(
    `for f in /root/.ssh/authorized_keys /home/dokku/.ssh/authorized_keys; do
       [ -f "$f" ] && grep -o 'ferry-direct-[0-9a-f]*' "$f" | sed "s|^|$f: |"
     done
     ls -d /tmp/ferry-direct.* /tmp/ferry-sum.* 2>/dev/null
     true`,
  );
  return out.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `${host.name}:${l}`);
}

/**
 * What ferry left on `target` and on the source. Cases run side by side: a
 * source key line whose pull still runs (its marker in a temp dir on another
 * host) is that case's, not a leftover; a line seen once more 3 s later is
 * (a pull's own clean-up removes its dir and its line at the same moment).
 * The hook after all cases checks the source holds none at all.
 */
async function bothLeftovers(target: LabHost): Promise<string[]> {
  const sourceLeft = async (): Promise<string[]> => {
    const live = new Set<string>();
    for (const h of lab().hosts) {
      if (h === target || !h.running()) continue;
      const r = await h.exec(
        "cat /tmp/ferry-direct.*/id.pub 2>/dev/null | grep -o 'ferry-direct-[0-9a-f]*'; true",
      );
      for (const m of r.stdout.split('\n')) if (m) live.add(m);
    }
    return (await leftovers(lab().host('old'))).filter(
      (l) => ![...live].some((m) => l.endsWith(`: ${m}`)),
    );
  };
  let source = await sourceLeft();
  if (source.length > 0) {
    await sleep(3000);
    const again = new Set(await sourceLeft());
    source = source.filter((l) => again.has(l));
  }
  return [...source, ...(await leftovers(target))];
}

/** When the newest run of `command` journalled its failing step (ms since the epoch). */
function failedStepAt(command: string): number {
  const runs = readdirSync(join(state, 'runs'))
    .filter((d) => d.includes(`-${command}-`))
    .sort();
  const lines = readFileSync(join(state, 'runs', runs.at(-1)!, 'journal.jsonl'), 'utf8').split(
    '\n',
  );
  for (const l of lines) {
    if (!l) continue;
    const e = JSON.parse(l) as { type?: string; at?: string };
    if (e.type === 'step-failed' && e.at) return Date.parse(e.at);
  }
  return Number.NaN;
}

/** Every entry of the Dokku directories (as test/lab/landed.ts's, stricter on data dirs): type, size, mode, owners, mtime, hash. */
async function digest(host: LabHost): Promise<string[]> {
  const pg = "-path 'var/lib/dokku/services/*/*/data'";
  // dokku-redis' own export has redis SAVE: data/dump.rdb appears (or changes) on every
  // export, whoever runs it. Every other file's kind, mode and owners in a data dir count.
  const rdb = "-path 'var/lib/dokku/services/redis/*/data/dump.rdb'";
  const out = await host.must(
    `cd / && find home/dokku var/lib/dokku -mindepth 1 \\( ${pg} -prune \\) -o -printf '%p %y %s %m %U %G %T@ %l\\n' | LC_ALL=C sort
     cd / && find var/lib/dokku/services/*/*/data \\( ${rdb} \\) -o -printf 'pgdata %y %m %U %G\\n' 2>/dev/null | LC_ALL=C sort -u
     cd / && find home/dokku var/lib/dokku -mindepth 1 \\( ${pg} -prune \\) -o -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum`,
  );
  return out.trim().split('\n');
}

/** Every app answers through port 80; the rows of both PostgreSQL services and MySQL are there. */
async function answers(t: ExecutionContext, host: LabHost): Promise<void> {
  const vhost = (await host.must('cat /home/dokku/VHOST')).trim();
  for (const app of SEEDED.apps) {
    const r = await host.exec(`curl -sS -m 10 -H 'Host: ${app.name}.${vhost}' http://127.0.0.1/`);
    t.true(r.stdout.includes(app.answers), `${app.name} on ${host.name}: ${r.stdout}${r.stderr}`);
  }
  const notes = await host.must(`curl -sS -m 10 -H 'Host: notes.${vhost}' http://127.0.0.1/`);
  for (const row of SEEDED.services[0]!.rows) t.true(notes.includes(row), `row "${row}"`);
  const events = await host.must(
    `echo 'SELECT kind FROM events ORDER BY 1;' | dokku postgres:connect analytics`,
  );
  t.deepEqual(
    events.split('\n').filter((l) => SEEDED.services[1]!.rows.includes(l.trim() as never)).length,
    SEEDED.services[1]!.rows.length,
    `analytics rows on ${host.name}: ${events}`,
  );
  const products = await host.must(
    `echo 'SELECT name FROM ${SEEDED.datastores.mysql.table};' | dokku mysql:connect ${SEEDED.datastores.mysql.name}`,
  );
  for (const row of SEEDED.datastores.mysql.rows)
    t.true(products.includes(row), `mysql row "${row}" on ${host.name}: ${products}`);
}

async function prepare(t: ExecutionContext): Promise<void> {
  // A seed and two migrates can take half an hour on a loaded 2-core runner.
  t.timeout(40 * 60_000);
  preparing ??= (async () => {
    const l = lab();
    const old = l.host('old');
    await seed(old, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });
    await old.must(
      `mkdir -p ${BLOB.replace(/\/[^/]+$/, '')} && head -c ${BLOB_MB}M /dev/urandom > ${BLOB}`,
    );
    // No repos: each case moves the apps to another target; remotes are migrate.test's job.
    inventoryFile = join(state, 'inventory.yml');
    writeFileSync(inventoryFile, readFileSync(l.inventoryPath, 'utf8'));
    playbookFile = join(state, 'migrate-unfrozen.yml');
    writeFileSync(playbookFile, stringify(unfrozen()));
    await throttle(true);
    before = await digest(old);
  })();
  await preparing;
  t.true(before.length > 100, 'the source was seeded');
}

interface CaseResult {
  failed: Finished;
  /** Seconds from the fault to ferry's exit. */
  seconds: number;
  left: string[];
}

/**
 * The checks every case shares after its failed run: a message naming the
 * cause, an exit within 5 s of the fault, the source unchanged.
 */
async function checkFailure(
  t: ExecutionContext,
  name: string,
  r: Finished,
  faultAt: number,
  cause: RegExp,
  opts: { code?: number } = {},
): Promise<CaseResult> {
  const seconds = (r.endedAt - faultAt) / 1000;
  // The whole output (traced) stays in the state dir; the error itself goes to the test log.
  writeFileSync(join(state, `${name.replace(/[^a-z0-9]+/gi, '-')}.log`), said(r));
  const error = r.stderr.split('\n').filter((l) => !l.includes('[trace '));
  t.log(
    `${name}: exit ${r.code} ${seconds.toFixed(1)} s after the fault\n${error.slice(-12).join('\n')}`,
  );
  t.is(r.code, opts.code ?? 1, `${name}: ${said(r)}`);
  t.regex(`${r.stdout}\n${r.stderr}`, cause, `${name}: the message names the cause`);
  t.notRegex(r.stderr, /internal error|at .+\.js:\d+/, `${name}: no stack trace`);
  t.true(seconds <= FAULT_EXIT_S, `${name}: exited ${seconds.toFixed(1)} s after the fault`);
  t.deepEqual(await digest(lab().host('old')), before, `${name}: the source changed`);
  return { failed: r, seconds, left: [] };
}

/** --resume (or a re-run) finishes, the apps answer, and nothing is left on either host. */
async function checkResumed(
  t: ExecutionContext,
  name: string,
  target: LabHost,
  args: string[],
  then?: (r: Finished) => Promise<void>,
): Promise<string> {
  const r = await ferryInTurn(args);
  t.is(r.code, 0, `${name}, resumed: ${said(r)}`);
  await answers(t, target);
  await then?.(r);
  const left = await bothLeftovers(target);
  t.deepEqual(left, [], `${name}: left after the resume`);
  t.deepEqual(await digest(lab().host('old')), before, `${name}: the source changed on resume`);
  return r.code === 0 && left.length === 0 ? 'yes' : `no (exit ${r.code})`;
}

function record(name: string, r: Finished, seconds: number, left: string[], resumed: string) {
  matrix.push({
    name,
    code: String(r.code ?? r.signal),
    seconds: Number.isFinite(seconds) ? seconds.toFixed(1) : '-',
    leftovers: left.length === 0 ? 'none' : left.join(', '),
    resumed,
  });
}

interface Playbook {
  undo?: unknown;
  steps: { task: string; on: string; params?: unknown }[];
}

/** The shipped migrate.yml with the plain exports for its cut-over, and no release-source. */
function unfrozen(): Playbook {
  const pb = parse(readFileSync(`${root}playbooks/migrate.yml`, 'utf8')) as Playbook;
  const at = pb.steps.findIndex((s) => s.task === 'cut-over');
  if (at < 0) throw new Error('the shipped migrate.yml has no cut-over step');
  pb.steps[at] = { task: 'export-datastores', on: 'source' };
  pb.steps = pb.steps.filter((s) => s.task !== 'release-source');
  delete pb.undo;
  return pb;
}

/** A migrate to `target` (with migrate.yml without the freeze unless `more` names a playbook). */
const migrateArgs = (target: string, ...more: string[]) => [
  'migrate',
  'old',
  target,
  '-i',
  inventoryFile,
  ...(more.includes('-p') ? [] : ['-p', playbookFile]),
  ...more,
];

/** Kills every sshd session process on `host` (not the listener): the connections drop. */
async function cutSessions(host: LabHost): Promise<void> {
  await host.must(
    `listener=$(cat /run/sshd.pid 2>/dev/null || pgrep -o -x sshd)
     for p in $(pgrep -x sshd; pgrep -f '^sshd: '); do [ "$p" != "$listener" ] && kill -9 "$p" 2>/dev/null; done; true`,
  );
}

/** A case whose fault is cutting the SSH sessions of `cut` while the copy to `target` runs. */
async function cutCase(
  t: ExecutionContext,
  name: string,
  targetName: string,
  which: 'source' | 'target',
): Promise<void> {
  await prepare(t);
  const target = lab().host(targetName);
  const f = await inSourceTurn(migrateArgs(targetName));
  let faultAt = 0;
  try {
    await midCopy(target, f.done);
    faultAt = Date.now();
    await cutSessions(which === 'source' ? lab().host('old') : target);
  } catch (e) {
    f.child.kill('SIGINT');
    throw e;
  }
  const r = await f.done;
  const host = which === 'source' ? 'old' : targetName;
  const c = await checkFailure(
    t,
    name,
    r,
    faultAt,
    new RegExp(`(connection|ssh)[^\\n]*(${host}|lost|closed|reset)`, 'i'),
  );
  const left = await bothLeftovers(target);
  t.deepEqual(left, [], `${name}: left after the failure`);
  const resumed = await checkResumed(t, name, target, migrateArgs(targetName, '--resume'));
  record(name, r, c.seconds, left, resumed);
}

serialCase('fault: the SSH connections to the source cut mid-copy', (t) =>
  cutCase(t, 'source ssh cut mid-copy', 'new', 'source'),
);

concurrentCase('fault: the SSH connections to the target cut mid-copy', (t) =>
  cutCase(t, 'target ssh cut mid-copy', 'scratch', 'target'),
);

concurrentCase('fault: the target disk fills in the stage mid-copy', async (t) => {
  const name = 'target disk full (stage)';
  await prepare(t);
  let target = lab().host('h4');
  // /var/lib/dokku on its own small filesystem, as an operator's data disk: big
  // enough for the preflight, filled by someone else once the copy runs.
  await target.must(
    `tar -C /var/lib/dokku -cf /root/lib.tar . && mount -t tmpfs -o size=1g,mode=755 faults-lib /var/lib/dokku && tar -C /var/lib/dokku -xpf /root/lib.tar && rm /root/lib.tar`,
  );
  const f = await inSourceTurn(migrateArgs('h4'));
  let faultAt = 0;
  try {
    await midCopy(target, f.done);
    // The disk is full from the first filler on (tar's next write fails then): the
    // fault's moment is taken before it, so the time to exit is an upper bound.
    faultAt = Date.now();
    await target.exec(
      'fallocate -l $(($(df --output=avail -B1 /var/lib/dokku | tail -1) - 65536)) /var/lib/dokku/.faults-filler || true',
    );
    await target.exec('dd if=/dev/zero of=/var/lib/dokku/.faults-filler2 bs=64k 2>/dev/null; true');
  } catch (e) {
    f.child.kill('SIGINT');
    throw e;
  }
  const r = await f.done;
  const c = await checkFailure(t, name, r, faultAt, /No space left on device/);
  t.regex(
    (r.stderr.split('\n').find((l) => /No space/.test(l)) ?? '').slice(0, 200),
    /No space left on device/,
  );
  const left = await bothLeftovers(target);
  t.deepEqual(left, [], `${name}: left after the failure`);
  target = lab().host('h4');
  await target.must('rm -f /var/lib/dokku/.faults-filler /var/lib/dokku/.faults-filler2');
  const resumed = await checkResumed(t, name, target, migrateArgs('h4', '--resume'));
  record(name, r, c.seconds, left, resumed);
});

concurrentCase('fault: the disk of ferry’s folder fills during extract', async (t) => {
  const name = 'target disk full (extract)';
  await prepare(t);
  const target = lab().host('h5');
  // ferry's folder on the target (the move log, the meta) on a small filesystem
  // that a step of the user's own fills just before extract.
  await target.must('mount -t tmpfs -o size=700m,mode=700 faults-ferry /var/lib/dokku-ferry');
  const pb = unfrozen();
  const at = pb.steps.findIndex((s) => s.task === 'extract');
  t.true(at > 0, 'the shipped playbook has an extract step');
  pb.steps.splice(at, 0, {
    task: 'command',
    on: 'target',
    params: {
      // ferry runs it under `set -euo pipefail`: dd ends on ENOSPC, which is the point.
      run: 'test -e /tmp/faults-room || { f=/var/lib/dokku-ferry/.filler; fallocate -l $(($(df --output=avail -B1 /var/lib/dokku-ferry | tail -1) - 8192)) $f || true; dd if=/dev/zero of=$f.2 bs=4k 2>/dev/null || true; date +%s%3N >/tmp/faults-filled; }',
    },
  });
  const pbFile = join(state, 'migrate-fill.yml');
  writeFileSync(pbFile, stringify(pb));
  const r = await ferryInTurn(migrateArgs('h5', '-p', pbFile));
  const filledAt = Number((await target.must('cat /tmp/faults-filled')).trim());
  const c = await checkFailure(t, name, r, filledAt, /No space left on device/);
  t.regex(r.stdout + r.stderr, /extract/);
  // Nothing half-moved: the target's own Dokku files are where they were.
  t.is((await target.must('cat /home/dokku/VHOST')).trim() !== '', true);
  const left = await bothLeftovers(target);
  t.deepEqual(left, [], `${name}: left after the failure`);
  await target.must(
    'rm -f /var/lib/dokku-ferry/.filler /var/lib/dokku-ferry/.filler.2 /tmp/faults-filled && touch /tmp/faults-room',
  );
  const resumed = await checkResumed(
    t,
    name,
    target,
    migrateArgs('h5', '-p', pbFile, '--resume'),
    async (again) => {
      // The failure came after the transfer: the resumed run starts at the failed step.
      t.regex(again.stderr, /resuming run/);
      t.notRegex(
        again.stdout,
        /transfer[^\n]*\b(ok|✔)[^\n]*\d+(\.\d+)? ?s\b/,
        'the transfer did not run again',
      );
      await landed(t, target);
    },
  );
  await target.must('rm -f /tmp/faults-room');
  record(name, r, c.seconds, left, resumed);
});

concurrentCase('fault: the controller SIGKILLed mid-copy, then --resume', async (t) => {
  const name = 'controller SIGKILL mid-copy';
  await prepare(t);
  const target = lab().host('h6');
  const f = await inSourceTurn(migrateArgs('h6'));
  let killedAt = 0;
  try {
    await midCopy(target, f.done);
    killedAt = Date.now();
    f.child.kill('SIGKILL');
  } catch (e) {
    f.child.kill('SIGINT');
    throw e;
  }
  const r = await f.done;
  t.is(r.signal, 'SIGKILL');
  t.deepEqual(await digest(lab().host('old')), before, `${name}: the source changed`);
  // A killed controller cleans nothing: what it left is for the next run's sweep.
  const left = await bothLeftovers(target);
  const resumedRun = await ferryInTurn(migrateArgs('h6', '--resume'));
  t.is(resumedRun.code, 0, `${name}, resumed: ${said(resumedRun)}`);
  t.regex(resumedRun.stdout + resumedRun.stderr, left.length > 0 ? /swept|removed/i : /./);
  await answers(t, target);
  const after = await bothLeftovers(target);
  t.deepEqual(after, [], `${name}: left after the resume`);
  t.deepEqual(await digest(lab().host('old')), before);
  record(
    name,
    r,
    (r.endedAt - killedAt) / 1000,
    left,
    resumedRun.code === 0 && after.length === 0 ? 'yes (swept)' : `no (exit ${resumedRun.code})`,
  );
});

concurrentCase('fault: the target host restarted mid-run, then --resume', async (t) => {
  const name = 'target restarted mid-copy';
  await prepare(t);
  const target = lab().host('h7');
  const f = await inSourceTurn(migrateArgs('h7'));
  let faultAt = 0;
  try {
    await midCopy(target, f.done);
    faultAt = Date.now();
    await lab().stopHost('h7');
  } catch (e) {
    f.child.kill('SIGINT');
    throw e;
  }
  const r = await f.done;
  const c = await checkFailure(
    t,
    name,
    r,
    faultAt,
    /(h7|10\.251\.\d+\.\d+)[^\n]*(lost|closed|reset|refused|unreachable)|(lost|closed|reset|refused)[^\n]*(h7|10\.251)/i,
  );
  const up = await lab().startHost('h7');
  const left = await bothLeftovers(up);
  const resumed = await checkResumed(t, name, up, migrateArgs('h7', '--resume'));
  record(name, r, c.seconds, left, resumed);
});

concurrentCase('fault: a damaged archive on restore, then the good one', async (t) => {
  const name = 'damaged archive on restore';
  await prepare(t);
  const target = lab().host('h8');
  const dir = mkdtempSync(join(tmpdir(), 'ferry-faults-fetch-'));
  const b = await ferryInTurn(['backup', 'old', '--fetch', dir, '-i', inventoryFile]);
  t.is(b.code, 0, said(b));
  const archiveDir = join(dir, readdirSync(dir)[0]!);
  const file = readdirSync(archiveDir).find((x) => /^dokku\.tar\.(zst|gz)$/.test(x))!;
  const bad = mkdtempSync(join(tmpdir(), 'ferry-faults-bad-'));
  const sh = spawn(
    'bash',
    [
      '-c',
      `cp -a "$1"/. "$2"/ && f="$2/$3" && n=$(($(stat -c %s "$f") / 2)) && printf 'X' | dd of="$f" bs=1 seek="$n" conv=notrunc status=none`,
      '_',
      archiveDir,
      bad,
      file,
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => sh.on('close', r));
  const targetBefore = await digest(target);
  const r = await ferry(['restore', bad, 'h8', '-i', inventoryFile]);
  // The fault is in the file: the moment is when the transfer found it.
  const c = await checkFailure(
    t,
    name,
    r,
    failedStepAt('restore'),
    /damaged|does not decompress|checksum/i,
    {},
  );
  t.regex(r.stdout + r.stderr, new RegExp(file.replace(/\./g, '\\.')), 'names the file');
  t.regex(r.stdout + r.stderr, /sha256/i, 'names the checksum');
  t.notRegex(r.stderr, /Premature close/);
  t.deepEqual(await digest(target), targetBefore, 'nothing was moved into place');
  const left = await bothLeftovers(target);
  t.deepEqual(left, [], `${name}: left after the failure`);
  t.true(
    readdirSync(join(archiveDir, 'cron.d')).includes('dokku-postgres-notes-db'),
    "the backup keeps the scheduled backup's cron entry",
  );
  const resumed = await checkResumed(
    t,
    name,
    target,
    ['restore', archiveDir, 'h8', '-i', inventoryFile],
    // The backup and restore of 0.38.27 (releases.test.ts does the older ones): the whole seed.
    async () => {
      await landed(t, target);
      await sameCron(t, lab().host('old'), target);
    },
  );
  record(name, r, c.seconds, left, resumed === 'yes' ? 'yes (good archive)' : resumed);
});

concurrentCase('fault: a target with data refused without --force, migrated with it', async (t) => {
  const name = '--force target with data';
  await prepare(t);
  // `new` holds the apps since the first case.
  const target = lab().host('new');
  const refused = await ferryInTurn(migrateArgs('new'));
  t.is(refused.code, 1, said(refused));
  t.regex(refused.stdout + refused.stderr, /--force/);
  const started = Date.now();
  const r = await ferryInTurn(migrateArgs('new', '--force'));
  t.is(r.code, 0, `${name}: ${said(r)}`);
  t.notRegex(r.stdout + r.stderr, /already exists/);
  await answers(t, target);
  const left = await bothLeftovers(target);
  t.deepEqual(left, []);
  t.deepEqual(await digest(lab().host('old')), before);
  matrix.push({
    name,
    code: `${refused.code} then ${r.code}`,
    seconds: ((r.endedAt - started) / 1000).toFixed(1),
    leftovers: left.length === 0 ? 'none' : left.join(', '),
    resumed: r.code === 0 ? 'n/a (ran whole)' : 'no',
  });
});

/**
 * Held (issue 10), kept here where a seeded source is at hand: ^C mid-copy
 * ends in well under a second with a resume hint; a 6 s network outage of
 * the target mid-copy is ridden out.
 */
serialCase('held: SIGINT mid-copy exits 130 at once with a resume hint', async (t) => {
  const name = 'SIGINT mid-copy (held)';
  await prepare(t);
  const target = lab().host('h9');
  const f = await inSourceTurn(migrateArgs('h9'));
  await midCopy(target, f.done);
  const at = Date.now();
  f.child.kill('SIGINT');
  const r = await f.done;
  const seconds = (r.endedAt - at) / 1000;
  t.is(r.code, 130, said(r));
  t.regex(r.stderr, /--resume/);
  // 0.5 s on an idle machine; the bound leaves room for a loaded CI runner.
  t.true(seconds < 2, `exited ${seconds.toFixed(2)} s after ^C`);
  t.deepEqual(await digest(lab().host('old')), before);
  const left = await bothLeftovers(target);
  t.deepEqual(left, [], `${name}: left after ^C`);
  const resumed = await checkResumed(t, name, target, migrateArgs('h9', '--resume', '--json'));
  record(name, r, seconds, left, resumed);
});

concurrentCase('held: the target off the network for 6 s mid-copy, the run goes on', async (t) => {
  const name = 'target link down 6 s (held)';
  await prepare(t);
  const target = lab().host('h10');
  const f = await inSourceTurn(migrateArgs('h10'));
  await midCopy(target, f.done);
  await target.must('ip link set eth0 down; sleep 6; ip link set eth0 up');
  const r = await f.done;
  t.is(r.code, 0, said(r));
  await answers(t, target);
  const left = await bothLeftovers(target);
  t.deepEqual(left, []);
  t.deepEqual(await digest(lab().host('old')), before);
  record(name, r, Number.NaN, left, r.code === 0 ? 'n/a (finished)' : 'no');
});

/** How long this machine's kernel tries to resolve a neighbour's address before EHOSTUNREACH. */
function neighbourSeconds(): number {
  const read = (f: string) => Number(readFileSync(`/proc/sys/net/ipv4/neigh/default/${f}`, 'utf8'));
  return (read('mcast_solicit') * read('retrans_time_ms')) / 1000;
}

/** Held: each fails fast with a hint, before any step runs. */
serialCase(
  'held: unknown host, missing identity, unreachable address, stopped sshd: < 4 s, a hint',
  async (t) => {
    await prepare(t);
    const l = lab();
    const inv = parse(readFileSync(l.inventoryPath, 'utf8')) as {
      defaults: Record<string, unknown>;
      hosts: Record<string, Record<string, unknown>>;
    };
    const subnet = l.host('old').address.replace(/\.\d+$/, '');
    // One inventory each: ferry validates the whole file, so a host with a missing
    // identity would stop every command on that file, whatever host it names.
    const broken: Record<string, Record<string, unknown>> = {
      ghost: { address: `${subnet}.250` },
      nosshd: { address: l.host('old').address, port: 2299 },
      nokey: { address: l.host('old').address, identity: join(state, 'no such key') },
    };
    for (const [host, want] of [
      ['nosuchhost', /no host named "nosuchhost"/],
      ['nokey', /no such key|identity/i],
      ['ghost', /ghost|unreachable|timed out|No route/i],
      ['nosshd', /refused|nosshd/i],
    ] as const) {
      const file = join(state, `held-${host}.yml`);
      const entry = broken[host];
      writeFileSync(
        file,
        stringify(entry ? { ...inv, hosts: { ...inv.hosts, [host]: entry } } : inv),
      );
      const t0 = Date.now();
      const r = await ferry(['check', '-i', file, host]);
      const s = (Date.now() - t0) / 1000;
      t.not(r.code, 0, `${host}: ${said(r)}`);
      // check's report (stdout) names a host it could not reach; input errors go to stderr
      const out = `${r.stdout}${r.stderr}`;
      t.regex(out, want, `${host}: ${said(r)}`);
      // A run's error ends in `hint: …` (check's: indented under its `error:` line); an
      // input error's (a missing identity is one, with file:line:col) is indented under it too.
      t.regex(out, /^ *hint: |^\S+:\d+:\d+: .+\n {4}\S/m, `${host}: a hint: ${said(r)}`);
      t.notRegex(out, /internal error/);
      // An unreachable lab address fails when the kernel gives up resolving it (3 probes,
      // 1 s apart, by default): that much is the kernel's, the rest ferry's.
      const bound = host === 'ghost' ? neighbourSeconds() + 2 : 4;
      t.true(s < bound, `${host}: ${s.toFixed(1)} s (bound ${bound} s)`);
      t.log(
        `${host}: exit ${r.code} in ${s.toFixed(1)} s: ${out.split('\n').find((l) => /error/.test(l)) ?? ''}`,
      );
    }
  },
);

/** The matrix, printed whatever failed (the lab is down by then: it needs none). */
test.after.always('the fault matrix', (t) => {
  if (skipped) return;
  const cols: (keyof Row)[] = ['name', 'code', 'seconds', 'leftovers', 'resumed'];
  const head: Row = {
    name: 'case',
    code: 'exit',
    seconds: 's to exit',
    leftovers: 'leftovers after the failure',
    resumed: 'resumed',
  };
  const rows = [head, ...matrix];
  const width = cols.map((c) => Math.max(...rows.map((r) => r[c].length)));
  const text = rows.map((r) => cols.map((c, i) => r[c].padEnd(width[i]!)).join('  ')).join('\n');
  process.stdout.write(`\nfault matrix\n${text}\n`);
  t.log(`\n${text}`);
});

test.after('the source holds no pull key or temp file; no secret was printed', async (t) => {
  if (skipped) return;
  t.deepEqual(await leftovers(lab().host('old')), [], 'left on the source after every case');
  // Held: no secret value in any output, --json, trace or journal.
  const env = await lab()
    .host('old')
    .must('cat /var/lib/dokku/config/*/ENV /home/dokku/*/ENV 2>/dev/null; true');
  const secrets = [...env.matchAll(/:\/\/[^:/@\s]*:([^@\s]{8,})@/g)].map((m) => m[1]!);
  t.true(secrets.length >= 3, `the seed's service passwords: ${secrets.length}`);
  const journals = readdirSync(join(state, 'runs')).map((d) =>
    readFileSync(join(state, 'runs', d, 'journal.jsonl'), 'utf8'),
  );
  const all = [...outputs, ...journals].join('\n');
  for (const s of new Set(secrets)) t.false(all.includes(s), 'a service password was printed');
});
