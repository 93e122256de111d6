import { runPlaybook } from '../run/execute.js';
import type { DrillOptions, Io } from './options.js';

/** `ferry drill HOST --to SCRATCH`: restore HOST's latest backup on SCRATCH and prove it. */
export function drill(opts: DrillOptions, io: Io): Promise<number> {
  return runPlaybook(
    {
      ...opts,
      command: 'drill',
      playbook: opts.playbook ?? 'drill',
      bindings: { source: opts.source, scratch: opts.scratch },
      // The scratch host exists to be overwritten; its safety archive still comes first.
      // What the scratch host no longer does (domains, cron), for the summary, --json and JUnit.
      facts: (result): Record<string, string> => {
        const d = result.outputs['drill-report']?.disabled;
        const list = Array.isArray(d) ? d.filter((x) => typeof x === 'string') : [];
        return list.length > 0 ? { 'disabled on the scratch host': list.join('; ') } : {};
      },
      plan: {
        force: true,
        ...(opts.route ? { route: opts.route } : {}),
        ...(opts.domainSuffix ? { domainSuffix: opts.domainSuffix } : {}),
      },
    },
    io,
  );
}
