import { runPlaybook } from '../run/execute.js';
import type { Io, MigrateOptions } from './options.js';

/** `ferry migrate SOURCE TARGET`: playbooks/migrate.yml with source and target bound. */
export function migrate(opts: MigrateOptions, io: Io): Promise<number> {
  return runPlaybook(
    {
      ...opts,
      command: 'migrate',
      playbook: opts.playbook ?? 'migrate',
      bindings: { source: opts.source, target: opts.target },
      plan: { force: opts.force, ...(opts.route ? { route: opts.route } : {}) },
    },
    io,
  );
}
