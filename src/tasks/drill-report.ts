/**
 * Reports a drill's result: RTO (how long the restore took: the restore
 * steps' durations as this run's journal recorded them)
 * and RPO (how old the restored backup was: its manifest's createdAt), and
 * what the drill disabled on the scratch host (earlier steps' `disabled`). No
 * commands; fails only when the playbook sets rto_max / rpo_max and they are exceeded.
 */
import { FerryError } from '../errors.js';
import { formatDuration as formatMs } from '../util/format.js';
import {
  defineTask,
  type JournalView,
  type Json,
  type RuntimeOf,
  type StepOutputs,
} from './types.js';

const definition = defineTask({
  name: 'drill-report',
  summary: 'report RTO (restore duration) and RPO (age of the restored backup)',
  runsOn: 'controller',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      rto_max: {
        type: 'integer',
        minimum: 1,
        description: 'Fail the drill when the restore took longer (seconds).',
      },
      rpo_max: {
        type: 'integer',
        minimum: 1,
        description: 'Fail the drill when the backup was older (seconds).',
      },
    },
  },
  actions: {},
  plan() {
    return [];
  },
});

/** The restore's duration from a run's journal records. */
export interface RestoreWindow {
  /** Sum of the restore steps' durations (they run one after another). */
  seconds: number;
  /** Each restore step's seconds, in the order they ran (failed tries included). */
  steps: Record<string, number>;
  /** Restore steps this run replayed from an earlier one (their time is not counted). */
  replayed: string[];
}

/**
 * From the journal: the restore steps are every step of the run but the
 * checks before it (`check-*`) and this report; each step's durationMs is
 * measured by the runner. Undefined when none ran.
 */
export function restoreWindow(
  records: readonly JournalView[],
  self: string,
): RestoreWindow | undefined {
  const start = records.find((r) => r.type === 'run-started');
  if (start?.type !== 'run-started') return undefined;
  const restore = new Set(start.steps.filter((s) => s !== self && !s.startsWith('check-')));
  const ms: Record<string, number> = {};
  const replayed: string[] = [];
  for (const r of records) {
    if (r.type !== 'step-finished' && r.type !== 'step-failed') continue;
    if (!restore.has(r.step)) continue;
    if (r.type === 'step-finished' && r.doneIn !== start.runId) {
      replayed.push(r.step);
      continue;
    }
    ms[r.step] = (ms[r.step] ?? 0) + r.durationMs;
  }
  const names = Object.keys(ms);
  if (names.length === 0) return undefined;
  const round = (n: number) => Math.round(n / 100) / 10;
  const steps: Record<string, number> = {};
  for (const n of names) steps[n] = round(ms[n]!);
  return { seconds: round(names.reduce((a, n) => a + ms[n]!, 0)), steps, replayed };
}

/** Seconds the way every report prints durations (`34.5s`, `4m05s`, `1h02m`). */
function formatDuration(seconds: number): string {
  return formatMs(seconds * 1000);
}

/** What earlier steps disabled on the scratch host (their `disabled` outputs), in step order, once each. */
export function disabledOf(outputs: Readonly<Record<string, StepOutputs>>): string[] {
  const seen = new Set<string>();
  for (const o of Object.values(outputs)) {
    const d = o.disabled;
    if (!Array.isArray(d)) continue;
    for (const x of d) if (typeof x === 'string') seen.add(x);
  }
  return [...seen];
}

async function run(rt: RuntimeOf<typeof definition>) {
  const params = rt.ctx.params;
  const now = new Date();
  const out: Record<string, Json> = {};
  const over: string[] = [];

  const window = restoreWindow(rt.journal(), rt.task.stepId);
  if (window) {
    out.rtoSeconds = window.seconds;
    out.restoreSteps = window.steps;
    rt.task.log(
      `RTO ${formatDuration(window.seconds)}: ${Object.entries(window.steps)
        .map(([k, v]) => `${k} ${formatDuration(v)}`)
        .join(', ')}`,
    );
    if (window.replayed.length > 0) {
      out.rtoPartial = true;
      rt.task.warn(
        `RTO counts only this run: ${window.replayed.join(', ')} ran in an earlier run that this one resumed`,
      );
    }
    if (params.rto_max !== undefined && window.seconds > params.rto_max) {
      over.push(
        `RTO ${formatDuration(window.seconds)} > rto_max ${formatDuration(params.rto_max)}`,
      );
    }
  } else {
    rt.task.warn("RTO unknown: this run's journal records no restore step");
  }

  let createdAt: string | undefined;
  try {
    createdAt = rt.manifest().createdAt;
  } catch {
    createdAt = undefined;
  }
  const created = createdAt === undefined ? Number.NaN : Date.parse(createdAt);
  if (Number.isFinite(created)) {
    const rpo = Math.max(0, Math.round((now.getTime() - created) / 1000));
    out.rpoSeconds = rpo;
    out.backupCreatedAt = createdAt!;
    rt.task.log(`RPO ${formatDuration(rpo)}: the backup was made at ${createdAt}`);
    if (params.rpo_max !== undefined && rpo > params.rpo_max) {
      over.push(`RPO ${formatDuration(rpo)} > rpo_max ${formatDuration(params.rpo_max)}`);
    }
  } else {
    rt.task.warn('RPO unknown: the restored archive brought no manifest with a creation time');
  }
  const disabled = disabledOf(rt.outputs);
  out.disabled = disabled;
  if (disabled.length > 0) {
    rt.task.log(`disabled on the scratch host: ${disabled.join('; ')}`);
  }
  const parts = [
    typeof out.rtoSeconds === 'number' ? `RTO ${formatDuration(out.rtoSeconds)}` : 'RTO unknown',
    typeof out.rpoSeconds === 'number' ? `RPO ${formatDuration(out.rpoSeconds)}` : 'RPO unknown',
  ];
  rt.task.setTitle(`${definition.summary}: ${parts.join(', ')}`);
  if (over.length > 0) {
    throw new FerryError(`drill objectives missed: ${over.join('; ')}`, {
      hint: 'The restore worked, but slower or from an older backup than the playbook allows.',
    });
  }
  return out;
}

export default definition.runs(run);
