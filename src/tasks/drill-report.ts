/**
 * Reports a drill's result: RTO (wall time of the restore, from the first
 * restore step's start to the last one's end, read from this run's journal)
 * and RPO (how old the restored backup was: its manifest's createdAt). No
 * commands; fails only when the playbook sets rto_max / rpo_max and they are exceeded.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../errors.js';
import { type JournalRecord, readJournal, runsDir } from '../run/journal.js';
import type { Json } from '../run/redact.js';
import type { TaskRun } from './runtime.js';
import { defineTask } from './types.js';

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
  plan() {
    return [];
  },
});
export default definition;

/** The restore's wall time from a run's journal records. */
export interface RestoreWindow {
  startedAt: string;
  finishedAt: string;
  seconds: number;
  /** Restore steps this run replayed from an earlier one (their time is not counted). */
  replayed: string[];
  steps: number;
}

/**
 * From the journal: the restore steps are every step of the run but the
 * checks before it (`check-*`) and this report. Undefined when none ran.
 */
export function restoreWindow(
  records: readonly JournalRecord[],
  self: string,
  now: Date,
): RestoreWindow | undefined {
  const start = records.find((r) => r.type === 'run-started');
  if (start?.type !== 'run-started') return undefined;
  const restore = new Set(start.steps.filter((s) => s !== self && !s.startsWith('check-')));
  let first: string | undefined;
  let last: string | undefined;
  const replayed: string[] = [];
  const ran = new Set<string>();
  for (const r of records) {
    if (r.type === 'run-started' || !('step' in r) || r.step === undefined) continue;
    if (!restore.has(r.step)) continue;
    if (r.type === 'step-started') {
      if (first === undefined || r.at < first) first = r.at;
      ran.add(r.step);
    } else if (
      r.type === 'step-finished' ||
      r.type === 'step-failed' ||
      r.type === 'step-skipped'
    ) {
      if (r.type === 'step-finished' && r.doneIn !== start.runId) replayed.push(r.step);
      else if (last === undefined || r.at > last) last = r.at;
    }
  }
  if (first === undefined) return undefined;
  const end = last ?? now.toISOString();
  return {
    startedAt: first,
    finishedAt: end,
    seconds: Math.max(0, Math.round((Date.parse(end) - Date.parse(first)) / 100) / 10),
    replayed,
    steps: ran.size,
  };
}

/** Seconds as `1 h 02 min 03 s` / `4 min 05 s` / `6.2 s`. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h} h ${pad(m)} min ${pad(s % 60)} s` : `${m} min ${pad(s % 60)} s`;
}

export const run: TaskRun<unknown> = async (rt) => {
  const params = rt.ctx.params as { rto_max?: number; rpo_max?: number };
  const now = new Date();
  const out: Record<string, Json> = {};
  const over: string[] = [];

  const file = join(runsDir(), rt.run.runId, 'journal.jsonl');
  const window = existsSync(file)
    ? restoreWindow(readJournal(file), rt.task.stepId, now)
    : undefined;
  if (window) {
    out.rtoSeconds = window.seconds;
    out.restoreStartedAt = window.startedAt;
    out.restoreFinishedAt = window.finishedAt;
    rt.task.log(
      `RTO ${formatDuration(window.seconds)}: ${window.steps} restore step(s), ${window.startedAt} → ${window.finishedAt}`,
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
    rt.task.warn(`RTO unknown: no restore step recorded in ${file}`);
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
};
