import { resolve } from 'node:path';
import type { CommandContext } from '../cli.js';
import { UsageError } from '../errors.js';
import { runPlaybook } from '../run/execute.js';

/** `ferry backup HOST [--fetch DIR]`: playbooks/backup.yml with source bound. */
export async function backup(ctx: CommandContext): Promise<number> {
  const [host, ...extra] = ctx.positionals;
  if (!host || extra.length > 0) {
    throw new UsageError(
      'ferry backup takes one inventory host name',
      'Example: ferry backup old --fetch ./backups',
    );
  }
  const fetch = typeof ctx.values.fetch === 'string' ? resolve(ctx.values.fetch) : undefined;
  return runPlaybook(ctx, {
    command: 'backup',
    playbook: 'backup',
    bindings: { source: host },
    options: fetch ? { fetch } : {},
    argv: ctx.argv,
  });
}
