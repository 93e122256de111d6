/**
 * Puts the host's proxies in the state the source's restored properties say:
 * each proxy plugin records `proxy-status` (`started`/`stopped`) under
 * `config/<proxy>/--global/`, and Dokku's own `pre-restore` triggers start a
 * proxy only when it says `started`. A fresh target runs nginx (the package's
 * default) while a source that moved to a container proxy (caddy, traefik,
 * haproxy, openresty) stopped it: until the stopped one is stopped and the
 * started one started, apps are unreachable. Stops run first: they free the
 * ports the others bind.
 */
import { propertyDir } from '../dokku/layout.js';
import { $, type Command, hole } from '../ssh/shell.js';
import { defineTask, type RuntimeOf } from './types.js';

/** The proxy plugins that record `proxy-status` (Dokku 0.31+). */
export const PROXIES = ['nginx', 'caddy', 'haproxy', 'openresty', 'traefik'] as const;

/** Prints `<proxy> <status>` for each proxy whose status the host has. */
export function proxyStatesCommand(): Command {
  const dirs = PROXIES.map((p) => `${propertyDir(p)}/--global/proxy-status`);
  return $`for f in ${dirs}; do if [ -s "$f" ]; then p=\${f%/--global/proxy-status}; printf '%s %s\\n' "\${p##*/}" "$(cat "$f")"; fi; done`;
}

/** Parses {@link proxyStatesCommand}: proxy → `started` | `stopped`. */
export function parseProxyStates(stdout: string): Map<string, 'started' | 'stopped'> {
  const out = new Map<string, 'started' | 'stopped'>();
  for (const line of stdout.split('\n')) {
    const m = /^([a-z]+) (started|stopped)$/.exec(line.trim());
    if (m && (PROXIES as readonly string[]).includes(m[1]!)) {
      out.set(m[1]!, m[2] as 'started' | 'stopped');
    }
  }
  return out;
}

const task = defineTask({
  name: 'start-proxies',
  summary: 'stop and start the proxies as the restored proxy-status says, before apps are checked',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: { 'proxy-states': [], 'stop-proxy': ['proxy'], 'start-proxy': ['proxy'] },
  plan({ host }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        id: 'proxy-states',
        host: h,
        command: proxyStatesCommand(),
        expect: '`<proxy> started|stopped` for each proxy the source ran or stopped',
      },
      {
        kind: 'remote',
        id: 'stop-proxy',
        host: h,
        command: $`dokku ${hole('proxy')}:stop`,
        forEach: 'proxy',
        where: 'proxies whose restored status is stopped (nginx, when the source moved to caddy)',
        why: "it holds the ports the source's proxy serves on",
        changes: true,
      },
      {
        kind: 'remote',
        id: 'start-proxy',
        host: h,
        command: $`dokku ${hole('proxy')}:start`,
        forEach: 'proxy',
        where: 'proxies whose restored status is started',
        why: 'a container proxy runs only once started: until then no app answers',
        changes: true,
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof task>) {
  const host = rt.ctx.host!.name;
  const states = parseProxyStates((await rt.exec('proxy-states')).stdout);
  const stopped = [...states].filter(([, s]) => s === 'stopped').map(([p]) => p);
  const started = [...states].filter(([, s]) => s === 'started').map(([p]) => p);
  for (const proxy of stopped) await rt.exec('stop-proxy', { proxy });
  for (const proxy of started) await rt.exec('start-proxy', { proxy });
  if (states.size === 0) rt.task.log('no proxy-status recorded: the host keeps its default proxy');
  else {
    rt.task.log(
      `${started.length ? `started ${started.join(', ')}` : 'none started'}${stopped.length ? `; stopped ${stopped.join(', ')}` : ''}`,
    );
  }
  rt.task.hostState(host, `proxies as the source had them: ${started.join(', ') || 'default'}`);
  return { started, stopped };
}

export default task.runs(run);
