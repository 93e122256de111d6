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
      plan: { force: true, ...(opts.route ? { route: opts.route } : {}) },
    },
    io,
  );
}
