/**
 * Runs dokku-ferry's copy phase as a user would: the real CLI, `ferry migrate
 * SOURCE TARGET -p bench/copy.yml --json --route R`, and reads the step
 * durations and the facts of its --json report.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../test/lab/sys.js';

/** The repo root (dist/bench/ferry.js is two levels down). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The steps of bench/copy.yml that make up the copy phase. */
export const COPY_STEPS = ['transfer', 'verify-archive', 'extract'] as const;

/** What one ferry run measured. */
export interface FerryRun {
  runId: string;
  route: 'direct' | 'relay';
  /** transfer + verify-archive + extract, from the report. */
  copySeconds: number;
  /** Each copy step's seconds. */
  steps: Record<string, number>;
  /** The whole run as the report has it (inventory and exports included). */
  runSeconds: number;
  /** Wall time of the CLI process (Node start-up included). */
  wallSeconds: number;
  /** Bytes on the wire, from the report. */
  bytes: number;
  /** The report's fact `ssh connections` (the controller's SSH connections). */
  sshConnections: number;
  /** The report's fact `controller peak memory`, MB. */
  peakMemoryMb: number;
}

interface Report {
  runId: string;
  status: string;
  durationMs: number;
  bytes: number;
  steps: { id: string; status: string; durationMs?: number }[];
  facts: Record<string, string>;
  failure?: unknown;
}

/** Runs `ferry migrate` with the bench playbook; throws with the report's failure when it fails. */
export async function ferryCopy(opts: {
  inventory: string;
  source: string;
  target: string;
  route: 'direct' | 'relay';
  stateDir: string;
}): Promise<FerryRun> {
  const argv = [
    path.join(REPO, 'dist/src/bin.js'),
    'migrate',
    opts.source,
    opts.target,
    '-i',
    opts.inventory,
    '-p',
    path.join(REPO, 'bench/copy.yml'),
    '--json',
    '--route',
    opts.route,
  ];
  const t = process.hrtime.bigint();
  const { code, stdout, stderr } = await run(process.execPath, argv, {
    cwd: REPO,
    env: { ...process.env, FERRY_STATE_DIR: opts.stateDir, FERRY_RENDERER: 'silent' },
  });
  const wallSeconds = Number(process.hrtime.bigint() - t) / 1e9;
  let report: Report;
  try {
    report = JSON.parse(stdout) as Report;
  } catch {
    throw new Error(
      `ferry migrate exited ${code} without a JSON report:\n${stderr.slice(-3000)}${stdout.slice(-2000)}`,
    );
  }
  if (code !== 0 || report.status !== 'ok') {
    throw new Error(
      `ferry migrate ${report.status} (exit ${code}): ${JSON.stringify(report.failure ?? report.steps, null, 2).slice(0, 4000)}\n${stderr.slice(-2000)}`,
    );
  }
  const steps: Record<string, number> = {};
  for (const name of COPY_STEPS) {
    const s = report.steps.find((x) => x.id === name);
    if (s?.status !== 'ok' || s.durationMs === undefined) {
      throw new Error(`the report has no finished step ${name}`);
    }
    steps[name] = s.durationMs / 1000;
  }
  const fact = (name: string): number => {
    const v = report.facts[name];
    const n = v === undefined ? Number.NaN : Number.parseFloat(v);
    if (!Number.isFinite(n)) throw new Error(`the report has no fact "${name}" (got ${v})`);
    return n;
  };
  return {
    runId: report.runId,
    route: opts.route,
    copySeconds: Object.values(steps).reduce((a, b) => a + b, 0),
    steps,
    runSeconds: report.durationMs / 1000,
    wallSeconds,
    bytes: report.bytes,
    sshConnections: fact('ssh connections'),
    peakMemoryMb: fact('controller peak memory'),
  };
}
