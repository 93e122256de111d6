import { runPlaybook } from '../run/execute.js';
import type { BackupOptions, Io } from './options.js';

/** `ferry backup HOST [--fetch DIR]`: playbooks/backup.yml with source bound. */
export function backup(opts: BackupOptions, io: Io): Promise<number> {
  return runPlaybook(
    {
      ...opts,
      command: 'backup',
      playbook: opts.playbook ?? 'backup',
      bindings: { source: opts.host },
      plan: opts.fetch ? { fetch: opts.fetch } : {},
    },
    io,
  );
}
