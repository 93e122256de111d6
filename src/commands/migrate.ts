import type { CommandContext } from '../cli.js';
import { UsageError } from '../errors.js';
import { runPlaybook } from '../run/execute.js';
import { routeOption } from './options.js';

/** `ferry migrate SOURCE TARGET`: playbooks/migrate.yml with source and target bound. */
export async function migrate(ctx: CommandContext): Promise<number> {
  const [source, target, ...extra] = ctx.positionals;
  if (!source || !target || extra.length > 0) {
    throw new UsageError(
      'ferry migrate takes two inventory host names: SOURCE TARGET',
      'Example: ferry migrate old new --dry-run',
    );
  }
  return runPlaybook(ctx, {
    command: 'migrate',
    playbook: 'migrate',
    bindings: { source, target },
    options: { force: ctx.values.force === true, ...routeOption(ctx) },
    argv: ctx.argv,
  });
}
