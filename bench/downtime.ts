/**
 * The bench's "downtime" section (issue 8): how long `ferry migrate --live`
 * keeps the source down after a 1% change, against a raw rsync delta pass of
 * the same data after the same change, in the same run.
 *
 * Each round, on a fresh target: run 1 of `ferry migrate src dst --live -p
 * bench/live.yml --json` does phase 1 (sync) and stops at the gate; a raw
 * `rsync` pulls the same paths into a scratch folder on dst (untimed); 1% of
 * the data changes on src (small files appended to or rewritten, 1% of the
 * 8 KB pages of every PostgreSQL file overwritten; a fixed seed per round);
 * the raw delta pass is timed; the gate opens and `--resume` runs phase 2
 * (cut-over, sync-final, extract: its step durations). Both copies are
 * checked against src. Then, on a fresh target again, the one-phase
 * consistent migrate (bench/one-phase.yml): cut-over to extract's end.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LabHost } from '../test/lab/lab.js';
import { run } from '../test/lab/sys.js';
import { pullRsh, timed } from './baselines.js';
import { REPO } from './ferry.js';
import type { Check } from './link.js';

/** The measurement names this section adds to the bench's table. */
export const DOWNTIME = {
  phase2: 'downtime: ferry --live phase 2',
  rawDelta: 'downtime: raw rsync delta',
  resume: 'downtime: --resume wall',
  onePhase: 'downtime: one-phase migrate',
} as const;

/** The steps of bench/live.yml that make up phase 2. */
export const PHASE2_STEPS = ['cut-over', 'sync-final', 'extract'] as const;
/** The steps of bench/one-phase.yml from cut-over's start to extract's end. */
export const ONE_PHASE_STEPS = ['cut-over', 'transfer', 'verify-archive', 'extract'] as const;

/** The paths ferry's sync copies (the seed's), as rsync -R names them on the source. */
const RSYNC_PATHS = [
  '/home/dokku',
  '/var/lib/dokku/config',
  '/var/lib/dokku/data',
  '/var/lib/dokku/services',
  '/var/lib/dokku/plugins',
];
/** Where the raw baseline keeps its copy on dst (the bench's own ferry state folder: the reset clears it). */
const SCRATCH = '/var/lib/dokku-ferry/bench-raw';
const GATE = '/tmp/bench-go';
const SMALL_DIR = '/var/lib/dokku/data/storage/bench';
const PG_DIR = '/var/lib/dokku/services/postgres/benchdb/data';

/** What one round measured (seconds). */
export interface DowntimeRound {
  round: number;
  seed: number;
  /** Files the change touched: small files, PostgreSQL files, PostgreSQL pages. */
  changed: { smallFiles: number; pgFiles: number; pgPages: number; bytes: number };
  /** Run 1's sync step (phase 1, while the source serves). */
  phase1: number;
  /** The raw full pass before the change (untimed in the comparison; printed). */
  rawFull: number;
  rawDelta: number;
  /** cut-over + sync-final + extract of the --resume report. */
  phase2: number;
  phase2Steps: Record<string, number>;
  /** The --resume run: its report's duration, and the CLI process's wall time. */
  resumeRun: number;
  resumeWall: number;
  /** The report's downtimeMs, when it has one (the bench data set has no app). */
  reportedDowntime?: number;
  /** One-phase: cut-over + transfer + verify-archive + extract. */
  onePhase: number;
  onePhaseSteps: Record<string, number>;
}

/** What the section needs from the bench's run. */
export interface DowntimeBench {
  src: LabHost;
  dst: LabHost;
  inventory: string;
  stateDir: string;
  rounds: number;
  /** Brings dst back to its fresh install (and clears ferry's state on the hosts). */
  reset(): Promise<void>;
  /** Size and count of the bench's folders on a host. */
  footprint(h: LabHost): Promise<string>;
  add(name: string, seconds: number): void;
  log(line: string): void;
  /** Where the --resume runs' stderr goes (with FERRY_TRACE=1: one line per remote command). */
  traceDir?: string;
}

interface Report {
  runId: string;
  status: string;
  durationMs: number;
  steps: { id: string; status: string; durationMs?: number }[];
  metrics?: Record<string, number>;
  failure?: { stepId?: string };
}

/** Runs the real CLI (`ferry ARGS --json`); returns the exit code, its report and wall seconds. */
async function ferry(
  args: string[],
  stateDir: string,
): Promise<{ code: number; report: Report; wall: number; stderr: string }> {
  const t = process.hrtime.bigint();
  const { code, stdout, stderr } = await run(
    process.execPath,
    [path.join(REPO, 'dist/src/bin.js'), ...args],
    {
      cwd: REPO,
      env: { ...process.env, FERRY_STATE_DIR: stateDir, FERRY_RENDERER: 'silent' },
    },
  );
  const wall = Number(process.hrtime.bigint() - t) / 1e9;
  try {
    return { code, report: JSON.parse(stdout) as Report, wall, stderr };
  } catch {
    throw new Error(
      `ferry ${args.join(' ')} exited ${code} without a JSON report:\n${stderr.slice(-3000)}${stdout.slice(-2000)}`,
    );
  }
}

/** The named steps' seconds from a report; throws unless each finished. */
export function stepSeconds(report: Report, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) {
    const s = report.steps.find((x) => x.id === n);
    if (s?.status !== 'ok' || s.durationMs === undefined)
      throw new Error(`the report has no finished step ${n} (${s?.status ?? 'absent'})`);
    out[n] = s.durationMs / 1000;
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/**
 * The 1% change on `host`, reproducible from `seed` (perl's srand: perl-base
 * is on every Debian): of the small files, 1% picked at random, half of them
 * appended to and half rewritten; of every PostgreSQL data file, 1% of its
 * 8 KB pages (at least one) overwritten in place at random offsets. Prints
 * the changed paths (relative to /) on stdout.
 */
export function changeScript(seed: number): string {
  return `set -euo pipefail
cd /
find ${SMALL_DIR.slice(1)} -type f -name '*.log' | LC_ALL=C sort | perl -e '
  srand(${seed}); my @f = <STDIN>; chomp @f;
  my $n = int(@f / 100 + 0.5);
  for my $i (0 .. $n - 1) { my $j = $i + int(rand(@f - $i)); @f[$i, $j] = @f[$j, $i]; }
  for my $i (0 .. $n - 1) {
    my $line = sub { sprintf("2026-11-28T%02d:%02d:%02d bench change %08x\\n", int(rand(24)), int(rand(60)), int(rand(60)), int(rand(4294967295))) };
    if ($i % 2) { open(my $h, ">>", $f[$i]) or die "$f[$i]: $!"; print $h $line->() for 1 .. 5; close $h or die; }
    else { my $size = -s $f[$i]; open(my $h, ">", $f[$i]) or die "$f[$i]: $!"; my $w = 0; while ($w < $size) { my $l = $line->(); print $h $l; $w += length $l; } close $h or die; }
    print "$f[$i]\\n";
  }'
find ${PG_DIR.slice(1)} -type f -size +0 | LC_ALL=C sort | perl -e '
  srand(${seed} + 1); my @f = <STDIN>; chomp @f;
  for my $f (@f) {
    my $pages = int((-s $f) / 8192); next if $pages < 1;
    my $k = int(($pages + 99) / 100);
    my %at; $at{int(rand($pages))} = 1 while keys(%at) < $k;
    open(my $h, "+<", $f) or die "$f: $!"; binmode $h;
    for my $p (sort { $a <=> $b } keys %at) {
      seek($h, $p * 8192, 0) or die; print $h pack("N*", map { int(rand(4294967296)) } 1 .. 2048);
    }
    close $h or die; print "$f\\n";
  }'`;
}

/** The raw baseline's pass, as dst runs it: pull the same paths into SCRATCH. */
function rawRsyncCommand(src: LabHost): string {
  const [first, ...rest] = RSYNC_PATHS;
  const from = [`root@${src.address}:${first}`, ...rest.map((p) => `:${p}`)].join(' ');
  return `set -euo pipefail; mkdir -p ${SCRATCH}; rsync -aH --delete --numeric-ids -R --ignore-missing-args -e '${pullRsh()}' ${from} ${SCRATCH}/`;
}

/** The SHA-256 of the listed files (relative paths, stdin) under `root` on `host`, as one hash. */
async function sumOf(host: LabHost, root: string, list: string): Promise<string> {
  return (
    await host.must(
      `set -euo pipefail; cd ${root} && xargs -d '\\n' sha256sum | sha256sum | cut -d' ' -f1`,
      { input: list },
    )
  ).trim();
}

/** One round (see the module's comment). */
async function measureRound(b: DowntimeBench, round: number): Promise<DowntimeRound> {
  const { src, dst } = b;
  const seed = 8000 + round;
  const live = ['migrate', src.name, dst.name, '--live', '-i', b.inventory];
  const args = [...live, '-p', path.join(REPO, 'bench/live.yml'), '--json'];

  await b.reset();
  await dst.must(`rm -f ${GATE}`);
  const r1 = await ferry(args, b.stateDir);
  if (r1.code !== 1 || r1.report.failure?.stepId !== 'gate')
    throw new Error(
      `downtime: run 1 must stop at the gate (exit 1), got exit ${r1.code}, ${JSON.stringify(r1.report.failure ?? r1.report.status)}\n${r1.stderr.slice(-2000)}`,
    );
  const phase1 = sum(stepSeconds(r1.report, ['sync']));
  const rawFull = await timed(() => dst.must(rawRsyncCommand(src)));

  const list = await src.must(changeScript(seed));
  const files = list.split('\n').filter((l) => l !== '');
  const small = files.filter((f) => f.startsWith(SMALL_DIR.slice(1))).length;
  const stats = await src.must(
    `cd / && find ${PG_DIR.slice(1)} -type f -size +0 -printf '%s\\n' | awk '{ p = int($1 / 8192); if (p > 0) { n++; k += int((p + 99) / 100) } } END { print n + 0, k + 0 }'`,
  );
  const [pgFiles, pgPages] = stats.trim().split(' ').map(Number);
  const smallBytes = Number(
    (
      await src.must(`cd / && xargs -d '\\n' du -cb --apparent-size | tail -n1 | cut -f1`, {
        input: files.filter((f) => f.startsWith(SMALL_DIR.slice(1))).join('\n'),
      })
    ).trim(),
  );

  const rawDelta = await timed(() => dst.must(rawRsyncCommand(src)));

  await dst.must(`touch ${GATE}`);
  const r2 = await ferry([...args, '--resume'], b.stateDir);
  if (r2.code !== 0 || r2.report.status !== 'ok')
    throw new Error(
      `downtime: --resume ${r2.report.status} (exit ${r2.code}): ${JSON.stringify(r2.report.failure ?? r2.report.steps).slice(0, 3000)}\n${r2.stderr.slice(-2000)}`,
    );
  const phase2Steps = stepSeconds(r2.report, PHASE2_STEPS);
  // FERRY_TRACE=1 npm run bench: where phase 2's time went, command by command.
  if (b.traceDir) await writeFile(path.join(b.traceDir, `resume-${round}.log`), r2.stderr);

  // Both copies are what src holds now: the bench's footprint, and the changed files' content.
  const [want, got, srcSum, dstSum, rawSum] = await Promise.all([
    b.footprint(src),
    b.footprint(dst),
    sumOf(src, '/', list),
    sumOf(dst, '/', list),
    sumOf(dst, SCRATCH, list),
  ]);
  if (got !== want)
    throw new Error(`downtime: dst differs from src after --resume:\n${got}\nvs\n${want}`);
  if (dstSum !== srcSum || rawSum !== srcSum)
    throw new Error(
      `downtime: the changed files differ: src ${srcSum}, dst ${dstSum}, raw copy ${rawSum}`,
    );

  // The one-phase consistent migrate on the same (changed) data, on a fresh target.
  await b.reset();
  const one = await ferry(
    [
      'migrate',
      src.name,
      dst.name,
      '-i',
      b.inventory,
      '-p',
      path.join(REPO, 'bench/one-phase.yml'),
      '--json',
    ],
    b.stateDir,
  );
  if (one.code !== 0 || one.report.status !== 'ok')
    throw new Error(
      `downtime: one-phase migrate ${one.report.status} (exit ${one.code}): ${JSON.stringify(one.report.failure ?? one.report.steps).slice(0, 3000)}\n${one.stderr.slice(-2000)}`,
    );
  const onePhaseSteps = stepSeconds(one.report, ONE_PHASE_STEPS);
  const [want1, got1] = await Promise.all([b.footprint(src), b.footprint(dst)]);
  if (got1 !== want1)
    throw new Error(`downtime: dst differs from src after one-phase:\n${got1}\nvs\n${want1}`);

  const reported = r2.report.metrics?.downtimeMs;
  return {
    round,
    seed,
    changed: {
      smallFiles: small,
      pgFiles: pgFiles ?? 0,
      pgPages: pgPages ?? 0,
      bytes: smallBytes + (pgPages ?? 0) * 8192,
    },
    phase1,
    rawFull,
    rawDelta,
    phase2: sum(phase2Steps),
    phase2Steps,
    resumeRun: r2.report.durationMs / 1000,
    resumeWall: r2.wall,
    ...(reported === undefined ? {} : { reportedDowntime: reported / 1000 }),
    onePhase: sum(onePhaseSteps),
    onePhaseSteps,
  };
}

/** Runs the section's rounds; adds each figure to the bench's samples. */
export async function measureDowntime(b: DowntimeBench): Promise<DowntimeRound[]> {
  const out: DowntimeRound[] = [];
  for (let round = 1; round <= b.rounds; round++) {
    b.log(`downtime round ${round} of ${b.rounds}`);
    const r = await measureRound(b, round);
    b.log(
      `downtime: changed ${r.changed.smallFiles} small files, ${r.changed.pgPages} pages of ${r.changed.pgFiles} PostgreSQL files (${(r.changed.bytes / 1e6).toFixed(1)} MB); phase 1 ${r.phase1.toFixed(2)} s, raw full ${r.rawFull.toFixed(2)} s`,
    );
    b.add(DOWNTIME.rawDelta, r.rawDelta);
    b.add(DOWNTIME.phase2, r.phase2);
    b.add(DOWNTIME.resume, r.resumeWall);
    b.add(DOWNTIME.onePhase, r.onePhase);
    out.push(r);
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The section's lines under the bench's table: phase 2 step by step, the change, phase 1. */
export function downtimeLines(rounds: DowntimeRound[]): string[] {
  if (rounds.length === 0) return [];
  const med = (f: (r: DowntimeRound) => number) => median(rounds.map(f)).toFixed(2);
  const c = rounds[0]!.changed;
  return [
    `  downtime: 1% change = ${c.smallFiles} small files, ${c.pgPages} pages of ${c.pgFiles} PostgreSQL files (${(c.bytes / 1e6).toFixed(1)} MB); phase 1 (sync, source serving) ${med((r) => r.phase1)} s; raw full pass ${med((r) => r.rawFull)} s`,
    `  downtime: phase 2 = cut-over ${med((r) => r.phase2Steps['cut-over']!)} s + sync-final ${med((r) => r.phase2Steps['sync-final']!)} s + extract ${med((r) => r.phase2Steps.extract!)} s; --resume run ${med((r) => r.resumeRun)} s (report), ${med((r) => r.resumeWall)} s wall; the report's own downtime (freeze to the run's end) ${med((r) => r.reportedDowntime ?? Number.NaN)} s`,
    `  downtime: one-phase = cut-over ${med((r) => r.onePhaseSteps['cut-over']!)} s + transfer ${med((r) => r.onePhaseSteps.transfer!)} s + verify-archive ${med((r) => r.onePhaseSteps['verify-archive']!)} s + extract ${med((r) => r.onePhaseSteps.extract!)} s`,
  ];
}

/** The section's checks (issue 8): phase 2 ≤ 1.3x the raw delta and ≤ 5 s. */
export function downtimeChecks(med: (name: string) => number): Check[] {
  const ratio = med(DOWNTIME.phase2) / med(DOWNTIME.rawDelta);
  return [
    {
      target: 'downtime: ferry --live phase 2 / raw rsync delta',
      value: ratio,
      limit: '<= 1.3',
      ok: ratio <= 1.3,
    },
    {
      target: 'downtime: ferry --live phase 2, seconds',
      value: med(DOWNTIME.phase2),
      limit: '<= 5',
      ok: med(DOWNTIME.phase2) <= 5,
    },
  ];
}
