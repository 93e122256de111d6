import { runPlaybook } from '../run/execute.js';
import type { Io, RestoreOptions } from './options.js';

/**
 * `ferry restore ARCHIVE HOST`: playbooks/restore.yml. ARCHIVE is a folder or
 * dokku.tar.* file here, or HOST:PATH on an inventory host (bound as source).
 */
export function restore(opts: RestoreOptions, io: Io): Promise<number> {
  const bindings: Record<string, string> = { target: opts.target };
  if (opts.archive.host) bindings.source = opts.archive.host;
  return runPlaybook(
    {
      ...opts,
      command: 'restore',
      playbook: opts.playbook ?? 'restore',
      bindings,
      plan: {
        force: opts.force,
        archive: opts.archive,
        ...(opts.route ? { route: opts.route } : {}),
      },
    },
    io,
  );
}
