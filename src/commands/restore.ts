import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { runPlaybook } from '../run/execute.js';
import type { Io, RestoreOptions } from './options.js';

/**
 * `ferry restore ARCHIVE HOST`: playbooks/restore.yml. ARCHIVE is a folder or
 * dokku.tar.* file here, or HOST:PATH on an inventory host (bound as source).
 */
export async function restore(opts: RestoreOptions, io: Io): Promise<number> {
  if (opts.identity !== undefined && !opts.dryRun && !existsSync(opts.identity)) {
    throw new UsageError(
      `--identity ${opts.identity}: no such file`,
      'Give the age identity file (age-keygen) or ssh-ed25519 private key the backup was encrypted to.',
    );
  }
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
        ...(opts.identity ? { ageIdentity: opts.identity } : {}),
        ...(opts.route ? { route: opts.route } : {}),
        ...(opts.selection ? { selection: opts.selection } : {}),
        ...(opts.rename ? { rename: opts.rename } : {}),
      },
    },
    io,
  );
}
