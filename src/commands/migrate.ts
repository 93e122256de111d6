import type { RunRequest } from '../run/execute.js';
import { runPlaybook } from '../run/execute.js';
import type { RunResult } from '../run/runner.js';
import type { StepOutputs } from '../tasks/types.js';
import { formatDuration } from '../util/format.js';
import type { Io, MigrateOptions } from './options.js';

/**
 * `ferry migrate SOURCE TARGET`: playbooks/migrate.yml (migrate-live.yml with
 * --live) with source and target bound; the report adds the downtime.
 */
export function migrate(opts: MigrateOptions, io: Io): Promise<number> {
  const req: RunRequest = {
    ...opts,
    command: 'migrate',
    playbook: opts.playbook ?? (opts.live ? 'migrate-live' : 'migrate'),
    bindings: { source: opts.source, target: opts.target },
    plan: {
      force: opts.force,
      ...(opts.route ? { route: opts.route } : {}),
      ...(opts.leaveSourceRunning ? { leaveSourceRunning: true } : {}),
      ...(opts.forward ? { forward: opts.forward } : {}),
      ...(opts.selection ? { selection: opts.selection } : {}),
    },
    facts: (r): Record<string, string> => {
      const d = downtimeOf(r);
      if (!d) return {};
      return {
        downtime: `${formatDuration(d.ms)} (first app frozen ${new Date(d.from).toISOString()}, ${d.verified ? 'last app verified on the target' : 'run ended'} ${new Date(d.to).toISOString()})`,
      };
    },
    metrics: (r): Record<string, number> => {
      const d = downtimeOf(r);
      return d ? { downtimeMs: d.ms, frozenAt: d.from, downtimeEndedAt: d.to } : {};
    },
  };
  return runPlaybook(req, io);
}

/** An output value found among the steps' outputs (a step may have another id than its task). */
function outputNumber(outputs: Record<string, StepOutputs>, key: string): number | undefined {
  for (const o of Object.values(outputs)) {
    const v = o[key];
    if (typeof v === 'number') return v;
  }
  return undefined;
}

/**
 * The downtime: from the first app frozen (the cut-over) to the last app
 * verified on the target; while the target is not verified (a failure, an
 * undo), to the end of the run.
 */
export function downtimeOf(
  r: RunResult,
): { ms: number; from: number; to: number; verified: boolean } | undefined {
  const from = outputNumber(r.outputs, 'frozenAt');
  if (from === undefined) return undefined;
  const verified = outputNumber(r.outputs, 'appsVerifiedAt');
  const to = verified ?? Date.parse(r.startedAt) + r.durationMs;
  return { ms: Math.max(0, to - from), from, to, verified: verified !== undefined };
}
