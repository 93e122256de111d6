/**
 * Proves the result: every app that ran on the source runs here, web apps
 * answer HTTP through the host's proxy, every datastore runs and every
 * service link of the manifest holds (the app's config carries the service's
 * URL: checked by the plugin's own `:linked`, so no value leaves the host).
 * Everything is checked before the step fails, so one run shows all the bad news.
 */

import { DOKKU_ROOT } from '../dokku/layout.js';
import { type PsReport, parsePsReportJson } from '../dokku/ps.js';
import { parseServiceInfoFlag } from '../dokku/services.js';
import { FerryError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { type Arg, P } from './common.js';
import { defineTask, type Json, type RuntimeOf } from './types.js';

export function runningCommand(app: Arg): Command {
  return $`dokku ps:report ${app} --format json`;
}
/**
 * One HTTP request through the host's proxy, with the app's first domain as
 * Host, and the same request to the app's own web process (its `IP.web.1` and
 * `PORT.web.1`): a proxy that does not route the app answers too (nginx's 404,
 * caddy's empty 200), so only the two answers side by side show the app was
 * reached. Prints `<status> <bytes> <domain> <own status> <own bytes>`
 * (`000` when nothing answered, `- -` for the app's own when its address is
 * not recorded), or `- -` when the app has no domain.
 */
export function httpCommand(app: Arg, timeout: number): Command {
  const root = $`${DOKKU_ROOT}/${app}`;
  return $`vhost=$(head -n 1 ${root}/VHOST 2>/dev/null || true); if [ -z "$vhost" ]; then echo '- -'; exit 0; fi
get() { curl -sS -o /dev/null -w '%{http_code} %{size_download}' --max-time ${timeout} -H "Host: $vhost" "$1" 2>/dev/null || echo '000 0'; }
via=$(get http://127.0.0.1/)
ip=$(cat ${root}/IP.web.1 2>/dev/null || true); port=$(cat ${root}/PORT.web.1 2>/dev/null || true)
if [ -n "$ip" ] && [ -n "$port" ]; then own=$(get "http://$ip:$port/"); else own='- -'; fi
echo "\${via% *} \${via#* } $vhost $own"`;
}
export function serviceStatusCommand(plugin: Arg, service: Arg): Command {
  return $`dokku ${plugin}:info ${service} --status`;
}
export function linkedCommand(plugin: Arg, service: Arg, app: Arg): Command {
  return $`dokku ${plugin}:linked ${service} ${app}`;
}

const definition = defineTask({
  name: 'verify-apps',
  summary: 'every app running, web apps answering HTTP, datastores up and linked',
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
  actions: {
    running: ['app'],
    http: ['app'],
    'service-status': ['plugin', 'service'],
    linked: ['plugin', 'service', 'app'],
  },
  plan({ host, params }) {
    const h = host!.name;
    return [
      {
        kind: 'remote',
        id: 'running',
        host: h,
        command: runningCommand(P.app),
        forEach: 'app',
        where: 'apps deployed on the source',
        expect: 'Running: true for each app that ran on the source',
      },
      ...(params.http
        ? [
            {
              kind: 'remote' as const,
              id: 'http',
              host: h,
              command: httpCommand(P.app, params.timeout),
              forEach: 'app' as const,
              where: 'running apps with a web process and a domain',
              expect:
                "below 500, and the app's own answer (status, a non-empty page) from its web process: a proxy that does not route the app answers too (tried 3 times, 2 s apart)",
            },
          ]
        : []),
      {
        kind: 'remote',
        id: 'service-status',
        host: h,
        command: serviceStatusCommand(P.plugin, P.service),
        forEach: 'service',
        where: 'each datastore service of the manifest',
        expect: 'running',
      },
      {
        kind: 'remote',
        id: 'linked',
        host: h,
        command: linkedCommand(P.plugin, P.service, P.app),
        forEach: 'link',
        where: 'each service link of the manifest',
        expect: "exit 0: the app's config holds the service's URL",
      },
    ];
  },
});

/** An HTTP status that shows the app answered (a 4xx is the app's own answer). */
export function answered(code: number): boolean {
  return code >= 100 && code < 500;
}

/** What {@link httpCommand} saw: through the proxy, and from the app itself (when its address is known). */
export interface HttpAnswer {
  code: number;
  bytes: number;
  vhost: string;
  own?: { code: number; bytes: number };
}

/** Parses the line of {@link httpCommand}; undefined when the app has no domain. */
export function parseHttpLine(stdout: string): HttpAnswer | undefined {
  const [code, bytes, vhost, ownCode, ownBytes] = stdout.trim().split(/\s+/);
  if (code === '-' || code === undefined || vhost === undefined) return undefined;
  const out: HttpAnswer = { code: Number(code) || 0, bytes: Number(bytes) || 0, vhost };
  if (ownCode !== undefined && ownCode !== '-') {
    out.own = { code: Number(ownCode) || 0, bytes: Number(ownBytes) || 0 };
  }
  return out;
}

/**
 * Why the proxy's answer is not the app's, or undefined when it is: the
 * status must be the app's own, and a page the app fills may not come back empty.
 */
export function notTheApp(a: HttpAnswer): string | undefined {
  if (!answered(a.code)) return `answered ${a.code === 0 ? 'nothing' : a.code}`;
  if (!a.own) return undefined;
  if (a.own.code !== a.code) {
    return `answered ${a.code} where the app itself answers ${a.own.code === 0 ? 'nothing' : a.own.code}: the proxy does not route it`;
  }
  if (a.own.bytes > 0 && a.bytes === 0) {
    return `answered an empty page where the app itself answers ${a.own.bytes} bytes: the proxy does not route it`;
  }
  return undefined;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

type Runtime = RuntimeOf<typeof definition>;

async function probe(rt: Runtime, app: string, tries = 3): Promise<HttpAnswer | undefined> {
  let last: HttpAnswer | undefined;
  for (let i = 0; i < tries; i++) {
    if (i > 0) await sleep(2000, rt.task.signal);
    last = parseHttpLine((await rt.exec('http', { app })).stdout);
    if (last === undefined || notTheApp(last) === undefined) return last;
  }
  return last;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

async function run(rt: Runtime) {
  const params = rt.ctx.params;
  const manifest = rt.manifest();
  const host = rt.ctx.host!.name;
  const problems: string[] = [];
  const apps: Record<string, Json> = {};
  for (const app of manifest.apps) {
    if (!app.deployed) {
      apps[app.name] = { checked: false, reason: 'not deployed on the source' };
      continue;
    }
    const ranThere = app.running !== 'false';
    let ps: PsReport;
    try {
      ps = parsePsReportJson(await rt.exec('running', { app: app.name }));
    } catch (e) {
      if (rt.task.signal.aborted) throw e;
      problems.push(`${app.name}: no process report here (${firstLine(e)})`);
      apps[app.name] = { ok: false, error: firstLine(e) };
      continue;
    }
    const result: Record<string, Json> = { running: ps.running, ranOnSource: app.running };
    let ok = true;
    if (ranThere && ps.running !== 'true') {
      ok = false;
      problems.push(`${app.name}: not running here (Running: ${ps.running}; it ran on the source)`);
    }
    const web = ps.statuses.some((s) => s.process === 'web');
    result.web = web;
    if (params.http && web && ps.running !== 'false') {
      const r = await probe(rt, app.name);
      if (r === undefined) {
        result.http = 'no domain';
      } else {
        result.http = r.code;
        result.vhost = r.vhost;
        const why = notTheApp(r);
        if (why) {
          ok = false;
          problems.push(`${app.name}: http://${r.vhost}/ through the proxy ${why}`);
        }
      }
    }
    result.ok = ok;
    apps[app.name] = result;
    rt.task.log(
      `${app.name}: running ${ps.running}${typeof result.http === 'number' ? `, HTTP ${result.http}` : ''}${ok ? '' : ' — FAILED'}`,
    );
  }

  // The downtime of a migration ends here: the last app answered on the target.
  const appsVerifiedAt = Date.now();
  const services: Record<string, Json> = {};
  for (const svc of manifest.services) {
    const vars = { plugin: svc.plugin, service: svc.name };
    let status: string;
    try {
      status = parseServiceInfoFlag(await rt.exec('service-status', vars), svc.plugin);
    } catch (e) {
      if (rt.task.signal.aborted) throw e;
      status = `unknown (${firstLine(e)})`;
    }
    const linked: Record<string, boolean> = {};
    for (const app of svc.links) {
      const r = await rt.exec('linked', { ...vars, app }, { allowCodes: [0, 1, 20] });
      linked[app] = r.code === 0;
      if (r.code !== 0) problems.push(`${svc.plugin} ${svc.name}: not linked to ${app} here`);
    }
    // A service stopped on the source was left stopped (start-services).
    const want =
      svc.status && !['running', 'unknown'].includes(svc.status) ? svc.status : 'running';
    if (status !== want) {
      problems.push(
        `${svc.plugin} ${svc.name}: status ${status}${want === 'running' ? '' : ` (it was ${want} on the source)`}`,
      );
    }
    services[`${svc.plugin}/${svc.name}`] = { status, linked };
    rt.task.log(
      `${svc.plugin} ${svc.name}: ${status}${
        svc.links.length
          ? `, linked to ${Object.entries(linked)
              .map(([a, l]) => (l ? a : `${a} (MISSING)`))
              .join(', ')}`
          : ''
      }`,
    );
  }

  if (problems.length > 0) {
    rt.task.hostState(
      host,
      `verification found ${problems.length} problem(s); see the step's error`,
    );
    throw new FerryError(
      `${problems.length} check(s) failed on ${host}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { hint: 'Look at the app with `dokku ps:report APP` and `dokku logs APP` on the host.' },
    );
  }
  rt.task.hostState(
    host,
    `all ${Object.keys(apps).length} app(s) and ${manifest.services.length} service(s) verified`,
  );
  return { apps, services, appsVerifiedAt };
}

export default definition.runs(run);
