/**
 * Proves the result: every app that ran on the source runs here, web apps
 * answer HTTP through the proxy, and every service link of the manifest holds.
 */
import { type Arg, arg, dokku, P, path } from './common.js';
import { defineTask } from './types.js';

export function runningCommand(app: Arg): string {
  return dokku('ps:report', app, '--running');
}
/** One HTTP request through the host's proxy, with the app's first domain as Host. */
export function httpCommand(app: Arg, timeout: number): string {
  const vhost = arg(path('/home/dokku/', app, '/VHOST'));
  return `curl -sS -o /dev/null -w '%{http_code}' --max-time ${timeout} -H "Host: $(head -n 1 ${vhost})" http://127.0.0.1/`;
}
export function linkedCommand(plugin: Arg, service: Arg, app: Arg): string {
  return dokku(path(plugin, ':linked'), service, app);
}

export default defineTask({
  name: 'verify-apps',
  summary: 'every app running, web apps answering HTTP, service links in place',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      http: {
        type: 'boolean',
        default: true,
        description: 'Request each web app through the proxy.',
      },
      timeout: {
        type: 'integer',
        minimum: 1,
        maximum: 600,
        default: 10,
        description: 'Seconds each HTTP request may take.',
      },
    },
  },
  plan({ host, params }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        host: h,
        command: runningCommand(P.app),
        forEach: 'app',
        where: 'apps running on the source',
        expect: 'true',
      },
      ...(params.http
        ? [
            {
              kind: 'remote' as const,
              host: h,
              command: httpCommand(P.app, params.timeout),
              forEach: 'app' as const,
              where: 'apps with a web process and a domain',
              expect: 'a 2xx or 3xx status',
            },
          ]
        : []),
      {
        kind: 'remote',
        host: h,
        command: linkedCommand(P.plugin, P.service, P.app),
        forEach: 'link',
        where: 'each service link of the manifest',
        expect: 'exit 0',
      },
    ];
  },
});
