import { runPlaybook } from '../run/execute.js';
import type { ForwardOptions, Io } from './options.js';

/**
 * `ferry forward HOST --to TARGET [--ttl D]` (playbooks/forward.yml) and
 * `ferry forward HOST --stop` (playbooks/forward-stop.yml).
 */
export function forward(opts: ForwardOptions, io: Io): Promise<number> {
  const stop = opts.stop;
  return runPlaybook(
    {
      ...opts,
      command: stop ? 'forward-stop' : 'forward',
      playbook: opts.playbook ?? (stop ? 'forward-stop' : 'forward'),
      bindings:
        stop || !opts.target ? { source: opts.host } : { source: opts.host, target: opts.target },
      plan: stop ? {} : { forward: { ttlSeconds: opts.ttlSeconds } },
    },
    io,
  );
}
