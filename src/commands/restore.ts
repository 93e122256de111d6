import { resolve } from 'node:path';
import type { CommandContext } from '../cli.js';
import { UsageError } from '../errors.js';
import { runPlaybook } from '../run/execute.js';
import { routeOption } from './options.js';

/**
 * `ferry restore ARCHIVE HOST`: playbooks/restore.yml. ARCHIVE is a folder or
 * dokku.tar.* file here, or HOST:PATH on an inventory host (bound as source).
 */
export async function restore(ctx: CommandContext): Promise<number> {
  const [archive, target, ...extra] = ctx.positionals;
  if (!archive || !target || extra.length > 0) {
    throw new UsageError(
      'ferry restore takes an archive and an inventory host name: ARCHIVE HOST',
      'Example: ferry restore ./backups/old-20261123T100000Z new, or ferry restore old:/var/lib/dokku-ferry/archives/old-20261123T100000Z new',
    );
  }
  const remote = /^([A-Za-z0-9_.-]+):(\/.*)$/.exec(archive);
  const bindings: Record<string, string> = { target };
  let where: { host?: string; path: string };
  if (remote) {
    bindings.source = remote[1]!;
    where = { host: remote[1]!, path: remote[2]! };
  } else {
    where = { path: resolve(archive) };
  }
  return runPlaybook(ctx, {
    command: 'restore',
    playbook: 'restore',
    bindings,
    options: { force: ctx.values.force === true, archive: where, ...routeOption(ctx) },
    argv: ctx.argv,
  });
}
