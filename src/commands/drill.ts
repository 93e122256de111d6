import type { CommandContext } from '../cli.js';
import { UsageError } from '../errors.js';
import { runPlaybook } from '../run/execute.js';
import { routeOption } from './options.js';

/** `ferry drill HOST --to SCRATCH`: restore HOST's latest backup on SCRATCH and prove it. */
export async function drill(ctx: CommandContext): Promise<number> {
  const [source, ...extra] = ctx.positionals;
  const scratch = ctx.values.to;
  if (!source || extra.length > 0 || typeof scratch !== 'string') {
    throw new UsageError(
      'ferry drill takes a host and --to SCRATCH',
      'Example: ferry drill old --to scratch',
    );
  }
  return runPlaybook(ctx, {
    command: 'drill',
    playbook: 'drill',
    bindings: { source, scratch },
    // The scratch host exists to be overwritten; its safety archive still comes first.
    options: { force: true, ...routeOption(ctx) },
    argv: ctx.argv,
  });
}
