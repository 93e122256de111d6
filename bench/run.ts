/**
 * `npm run bench`: one lab (src with the ~1 GB data set, small with a
 * quarter of it, dst a fresh Dokku), then in the same run: ferry's migrate
 * copy phase over each route, the raw OpenSSH pipe of the same route, the
 * raw pipe with ferry's checksum, and the seed's three commands. Prints
 * medians, the ratios against the targets of DESIGN.md, the controller's
 * peak memory at two data sizes and the SSH connections; writes
 * bench/results.json. The lab is torn down at the end, also on failure.
 *
 * Env: BENCH_SCALE (default 1, ~1 GB), BENCH_SMALL_SCALE (0.25), BENCH_REPEAT
 * (3), BENCH_BUDGET_S (no round starts that would end later, default 840),
 * BENCH_KEEP=1 (leave the lab up), BENCH_REUSE=1 (use a lab left up, data included),
 * BENCH_ONLY (a comma list of measurement names to run, e.g. "raw direct,ferry
 * direct": for quick comparisons; the others show as NaN), BENCH_DISK=1 (the
 * hosts' folders on the controller's disk instead of a tmpfs: see LabUpOptions.memory),
 * BENCH_LINK=0 (leave out the link section, bench/link.ts: the copy on a 100 Mbit/s link),
 * BENCH_DOWNTIME=0 (leave out the downtime section, bench/downtime.ts: `migrate --live`'s
 * phase 2 after a 1% change against a raw rsync delta; it runs last, as it changes src's data).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { inventoryFor, Lab, type LabHost } from '../test/lab/lab.js';
import {
  allowDirect,
  local,
  rawDirect,
  rawDirectSummed,
  rawRelay,
  type SeedTimes,
  seedCommands,
} from './baselines.js';
import { buildDataset, type DatasetInfo, measureDataset, warmCache } from './dataset.js';
import { type DowntimeRound, downtimeChecks, downtimeLines, measureDowntime } from './downtime.js';
import { type FerryRun, ferryCopy, REPO } from './ferry.js';
import { linkChecks, measureLink } from './link.js';

// FERRY_LAB_PREFIX keeps two checkouts' benches apart, as it does their tests' labs.
const INSTANCE = `${process.env.FERRY_LAB_PREFIX ?? ''}bench`;
const env = process.env;
const SCALE = Number(env.BENCH_SCALE ?? '1');
const SMALL_SCALE = Number(env.BENCH_SMALL_SCALE ?? '0.25');
const REPEAT = Math.max(1, Number.parseInt(env.BENCH_REPEAT ?? '3', 10));
const BUDGET_S = Number(env.BENCH_BUDGET_S ?? '840');
const ONLY = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
const FERRY_ROOT = '/var/lib/dokku-ferry';
const BACKUP_DIR = `${FERRY_ROOT}/archives`;

const t0 = Date.now();
const elapsed = () => (Date.now() - t0) / 1000;
const log = (line: string) =>
  process.stderr.write(`[bench ${elapsed().toFixed(0).padStart(4)} s] ${line}\n`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** A host's own /var/lib/dokku-ferry on the controller (the lab's, else one the bench mounts). */
function ferryState(h: LabHost): string {
  try {
    return h.pathOnController(FERRY_ROOT);
  } catch {
    return `${h.dir}/ferry-state`;
  }
}

/** The target's Dokku folders as `up` left them, restored before every run. */
class TargetReset {
  private readonly snapshot: string;
  constructor(
    private readonly host: LabHost,
    dir: string,
  ) {
    this.snapshot = path.join(dir, 'dst-fresh.tar');
  }
  private get dirs(): string[] {
    return ['home-dokku', 'lib-dokku'].map((d) => path.join(this.host.dir, d));
  }
  async take(): Promise<void> {
    await local(
      `tar -C ${this.host.dir} --numeric-owner -cpf ${this.snapshot} home-dokku lib-dokku`,
    );
  }
  /** Fresh Dokku folders, nothing of ferry's (stage, aside copies, run folders), dirty pages written. */
  async restore(others: LabHost[]): Promise<void> {
    const state = [this.host, ...others].map(ferryState);
    await local(
      `find ${[...this.dirs, ...state].join(' ')} -mindepth 1 -delete
       tar -C ${this.host.dir} --numeric-owner -xpf ${this.snapshot}
       sync`,
    );
  }
}

/** Size and count of the bench's own folders on a host: the copy arrived whole. */
async function benchFootprint(host: LabHost): Promise<string> {
  return (
    await host.must(
      `cd / && for p in var/lib/dokku/services/postgres/benchdb var/lib/dokku/data/storage/bench var/lib/dokku/config/bench home/dokku/bench-*; do printf '%s %s %s\\n' "$p" "$(du -sb --apparent-size "$p" | cut -f1)" "$(find "$p" | wc -l)"; done`,
    )
  ).trim();
}

interface Sample {
  name: string;
  seconds: number[];
}

async function main(): Promise<number> {
  if (!(SCALE > 0) || !(SMALL_SCALE > 0))
    throw new Error('BENCH_SCALE and BENCH_SMALL_SCALE must be > 0');
  const work = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-'));
  let lab: Lab | undefined;
  try {
    if (env.BENCH_REUSE === '1') {
      lab = await Lab.open(INSTANCE);
      log('reusing the running bench lab and its data');
    } else {
      log('lab up: src, small, dst');
      lab = await Lab.up({
        instance: INSTANCE,
        hosts: ['src', 'small', 'dst'],
        log,
        memory: env.BENCH_DISK !== '1',
      });
    }
    const src = lab.host('src');
    const small = lab.host('small');
    const dst = lab.host('dst');
    // Every SSH command on a lab host runs bash, which reads root's ~/.bashrc:
    // this machine's (pyenv init, a rehash under a lock) added 0.5-60 s per
    // command under load. A Dokku server has no such thing: an empty one in
    // each host's own mount namespace (the controller's stays as it is).
    // And /var/lib/dokku-ferry is not one of a lab host's own folders: it is
    // the controller's, shared with every other lab on this machine, whose
    // tests may clear it mid-run. Each bench host gets its own.
    await Promise.all(
      [src, small, dst].map((h) =>
        h.must(
          `[ ! -e /root/.bashrc ] || mountpoint -q /root/.bashrc || mount --bind /dev/null /root/.bashrc
           mkdir -p ${FERRY_ROOT} ${ferryState(h)} && chmod 0700 ${ferryState(h)}
           mountpoint -q ${FERRY_ROOT} || mount --bind ${ferryState(h)} ${FERRY_ROOT}`,
        ),
      ),
    );
    const reset = new TargetReset(dst, work);
    if (env.BENCH_REUSE === '1') {
      // A reused lab's dst may hold a copy: bring it back to the fresh install first.
      await local(
        `find ${dst.dir}/home-dokku ${dst.dir}/lib-dokku -mindepth 1 -maxdepth 1 \\( -name 'bench*' -o -name '.ferry-*' \\) -exec rm -rf {} +
         rm -rf ${dst.dir}/lib-dokku/services/postgres/benchdb ${dst.dir}/lib-dokku/data/storage/bench ${dst.dir}/lib-dokku/config/bench`,
      );
    }
    await reset.take();

    let big: DatasetInfo;
    let little: DatasetInfo;
    if (env.BENCH_REUSE === '1') {
      big = { ...(await measureDataset(src)), seconds: 0 };
      little = { ...(await measureDataset(small)), seconds: 0 };
    } else {
      log(`data set: scale ${SCALE} on src, ${SMALL_SCALE} on small (built in parallel)`);
      [big, little] = await Promise.all([
        buildDataset(src, SCALE, log),
        buildDataset(small, SMALL_SCALE, log),
      ]);
    }
    log(
      `data set src: ${(big.bytes / 1e9).toFixed(2)} GB, ${big.files} files (${big.seconds.toFixed(0)} s); small: ${(little.bytes / 1e9).toFixed(2)} GB, ${little.files} files`,
    );
    if (SCALE >= 1 && big.bytes < 1e9)
      throw new Error(`the data set is under 1 GB (${big.bytes} bytes)`);
    const srcPrint = await benchFootprint(src);
    const smallPrint = await benchFootprint(small);
    await Promise.all([warmCache(src), warmCache(small)]);
    await allowDirect(lab, dst);

    const inventory = path.join(work, 'inventory.yml');
    await writeFile(
      inventory,
      stringifyYaml({ ...inventoryFor(lab.state), backup: { dir: BACKUP_DIR, keep: 2 } }),
    );
    const stateDir = path.join(work, 'state');

    const samples = new Map<string, Sample>();
    const add = (name: string, s: number) => {
      const x = samples.get(name) ?? { name, seconds: [] };
      x.seconds.push(s);
      samples.set(name, x);
      log(`${name}: ${s.toFixed(2)} s`);
    };
    const ferryRuns: (FerryRun & { dataset: 'src' | 'small' })[] = [];
    const seeds: SeedTimes[] = [];

    /** One measurement on a fresh target, its result checked against the source. */
    const measure = async (
      name: string,
      from: LabHost,
      print: string,
      fn: () => Promise<number | FerryRun | SeedTimes>,
    ): Promise<void> => {
      if (ONLY && !ONLY.has(name)) return;
      await reset.restore([src, small]);
      const r = await fn();
      const got = await benchFootprint(dst);
      if (got !== print)
        throw new Error(
          `${name}: the copy on dst differs from ${from.name}:\n${got}\nvs\n${print}`,
        );
      if (typeof r === 'number') add(name, r);
      else if ('copySeconds' in r) {
        add(name, r.copySeconds);
        ferryRuns.push({ ...r, dataset: from === src ? 'src' : 'small' });
      } else {
        add(name, r.total);
        seeds.push(r);
      }
    };
    const ferry = (from: LabHost, route: 'direct' | 'relay') => () =>
      ferryCopy({ inventory, source: from.name, target: dst.name, route, stateDir });

    let rounds = 0;
    let roundSeconds = 0;
    for (let round = 1; round <= REPEAT; round++) {
      if (round > 1 && elapsed() + roundSeconds > BUDGET_S) {
        log(`no round ${round}: it would end past the time budget (BENCH_BUDGET_S=${BUDGET_S})`);
        break;
      }
      const roundStart = elapsed();
      log(`round ${round} of ${REPEAT}`);
      await measure('raw direct', src, srcPrint, () => rawDirect(lab!, src, dst));
      await measure('ferry direct', src, srcPrint, ferry(src, 'direct'));
      await measure('raw relay', src, srcPrint, () => rawRelay(lab!, src, dst));
      await measure('ferry relay', src, srcPrint, ferry(src, 'relay'));
      await measure('raw direct + sha256', src, srcPrint, () => rawDirectSummed(lab!, src, dst));
      await measure('ferry relay (small)', small, smallPrint, ferry(small, 'relay'));
      roundSeconds = elapsed() - roundStart;
      if (round === 1)
        await measure('seed commands', src, srcPrint, () => seedCommands(lab!, src, dst));
      rounds = round;
    }
    // The link section: the same copy on a link shaped like a WAN (bench/link.ts).
    if (env.BENCH_LINK !== '0') {
      log('link section: the raw pipe with each fixed compression and ferry, unshaped and shaped');
      await measureLink({
        src,
        dst,
        rounds: Math.max(1, rounds),
        measure: (name, fn) =>
          measure(name, src, srcPrint, async () => {
            const r = await fn();
            return r as number | FerryRun | SeedTimes;
          }),
        ferryDirect: ferry(src, 'direct'),
        seed: () => seedCommands(lab!, src, dst),
      });
    }
    // The downtime section: last, as it changes src's data (bench/downtime.ts).
    let downtime: DowntimeRound[] = [];
    if (env.BENCH_DOWNTIME !== '0') {
      log('downtime section: migrate --live phase 2 after a 1% change, against a raw rsync delta');
      downtime = await measureDowntime({
        src,
        dst,
        inventory,
        stateDir,
        rounds: Math.max(1, rounds),
        reset: () => reset.restore([src, small]),
        footprint: benchFootprint,
        add,
        log,
        ...(env.FERRY_TRACE ? { traceDir: os.tmpdir() } : {}),
      });
    }
    await reset.restore([src, small]);

    const med = (name: string) => median(samples.get(name)?.seconds ?? [Number.NaN]);
    const mem = (ds: 'src' | 'small', route?: string) =>
      Math.max(
        ...ferryRuns
          .filter((r) => r.dataset === ds && (!route || r.route === route))
          .map((r) => r.peakMemoryMb),
      );
    const conns = Math.max(...ferryRuns.map((r) => r.sshConnections));
    const checks = [
      {
        target: 'ferry direct / raw direct',
        value: med('ferry direct') / med('raw direct'),
        limit: '<= 1.15',
        ok: med('ferry direct') / med('raw direct') <= 1.15,
      },
      {
        target: 'ferry relay / raw relay',
        value: med('ferry relay') / med('raw relay'),
        limit: '<= 1.15',
        ok: med('ferry relay') / med('raw relay') <= 1.15,
      },
      {
        target: 'seed / ferry direct',
        value: med('seed commands') / med('ferry direct'),
        limit: '>= 5',
        ok: med('seed commands') / med('ferry direct') >= 5,
      },
      {
        target: 'seed / ferry relay',
        value: med('seed commands') / med('ferry relay'),
        limit: '>= 5',
        ok: med('seed commands') / med('ferry relay') >= 5,
      },
      {
        target: 'raw direct + sha256 / raw direct (checksum cost)',
        value: med('raw direct + sha256') / med('raw direct'),
        limit: '<= 1.05',
        ok: med('raw direct + sha256') / med('raw direct') <= 1.05,
      },
      {
        target: `controller peak MB, ${(big.bytes / 1e9).toFixed(2)} GB (relay)`,
        value: mem('src', 'relay'),
        limit: '< 200',
        ok: mem('src', 'relay') < 200,
      },
      {
        target: `peak MB ${(big.bytes / 1e9).toFixed(2)} GB / ${(little.bytes / 1e9).toFixed(2)} GB (flat)`,
        value: mem('src', 'relay') / mem('small', 'relay'),
        limit: '<= 1.2',
        ok: mem('src', 'relay') / mem('small', 'relay') <= 1.2,
      },
      {
        target: 'controller SSH connections per run (2 hosts)',
        value: conns,
        limit: '<= 2',
        ok: conns <= 2,
      },
      ...(env.BENCH_LINK !== '0' ? linkChecks(med) : []),
      ...(env.BENCH_DOWNTIME !== '0' ? downtimeChecks(med) : []),
    ];

    const mbps = (name: string, bytes: number) => bytes / 1e6 / med(name);
    const lines: string[] = [];
    lines.push('');
    lines.push(
      `dokku-ferry bench: ${(big.bytes / 1e9).toFixed(2)} GB, ${big.files} files on src (scale ${SCALE}); ${rounds} round(s), medians; ${os.cpus().length} CPUs shared by all hosts`,
    );
    lines.push('');
    lines.push(
      `${'measurement'.padEnd(32)} ${'median s'.padStart(9)} ${'MB/s'.padStart(7)}  runs (s)`,
    );
    for (const s of samples.values()) {
      const bytes = s.name.includes('small') ? little.bytes : big.bytes;
      // A downtime figure is not a copy of the whole data set: no rate.
      const rate = s.name.startsWith('downtime') ? '-' : mbps(s.name, bytes).toFixed(0);
      lines.push(
        `${s.name.padEnd(32)} ${med(s.name).toFixed(2).padStart(9)} ${rate.padStart(7)}  ${s.seconds.map((x) => x.toFixed(2)).join(', ')}`,
      );
    }
    if (seeds[0]) {
      const s = seeds[0];
      lines.push(
        `  seed: tar -czf ${s.tar.toFixed(1)} s, scp -O ${s.scp.toFixed(1)} s, tar -xzf ${s.untar.toFixed(1)} s`,
      );
    }
    for (const route of ['direct', 'relay'] as const) {
      const runs = ferryRuns.filter((r) => r.dataset === 'src' && r.route === route);
      const step = (n: string) => median(runs.map((r) => r.steps[n] ?? Number.NaN)).toFixed(2);
      lines.push(
        `  ferry ${route}: transfer ${step('transfer')} s, verify-archive ${step('verify-archive')} s, extract ${step('extract')} s; whole run ${median(runs.map((r) => r.runSeconds)).toFixed(2)} s; ${(median(runs.map((r) => r.bytes)) / 1e6).toFixed(0)} MB on the wire; peak ${Math.max(...runs.map((r) => r.peakMemoryMb))} MB; ${Math.max(...runs.map((r) => r.sshConnections))} SSH connections`,
      );
    }
    lines.push(...downtimeLines(downtime));
    lines.push(
      `  controller peak memory (ferry relay): ${mem('small', 'relay')} MB at ${(little.bytes / 1e9).toFixed(2)} GB, ${mem('src', 'relay')} MB at ${(big.bytes / 1e9).toFixed(2)} GB`,
    );
    lines.push('');
    lines.push(`${'target'.padEnd(52)} ${'value'.padStart(8)}  limit    result`);
    for (const c of checks) {
      lines.push(
        `${c.target.padEnd(52)} ${c.value.toFixed(2).padStart(8)}  ${c.limit.padEnd(8)} ${c.ok ? 'pass' : 'FAIL'}`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);

    const results = {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model ?? '',
        memGb: Math.round(os.totalmem() / 1e9),
      },
      scale: SCALE,
      smallScale: SMALL_SCALE,
      rounds,
      dataset: { src: big, small: little },
      medians: Object.fromEntries([...samples.keys()].map((k) => [k, med(k)])),
      samples: Object.fromEntries([...samples.values()].map((s) => [s.name, s.seconds])),
      seed: seeds,
      ferryRuns,
      downtime,
      checks,
      benchSeconds: elapsed(),
    };
    await writeFile(path.join(REPO, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote bench/results.json; ${elapsed().toFixed(0)} s in all`);
    return checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    if (lab && env.BENCH_KEEP !== '1') {
      log('lab down');
      await lab.down().catch((e: unknown) => log(`lab down failed: ${String(e)}`));
    }
    await rm(work, { recursive: true, force: true });
  }
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) process.exit(130);
    stopping = true;
    log(`${sig}: tearing the lab down`);
    if (env.BENCH_KEEP === '1') process.exit(130);
    Lab.down(INSTANCE).finally(() => process.exit(130));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(
      `bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exitCode = 2;
  },
);
