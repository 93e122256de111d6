/**
 * The lab host's proxies, both started as `dokku --lab-proxy [KIND]`:
 *
 * - `nginx` (the default; the lab starts it with every host, as the Debian
 *   package starts nginx): routes by Host header to the app whose
 *   $DOKKU_ROOT/<app>/VHOST lists that name, at IP.web.1:PORT.web.1, but
 *   only apps whose effective proxy type is nginx and whose proxy is
 *   enabled: real nginx serves only the apps it generated config for. 404
 *   for unknown hosts, 502 when the app has no running web container. It
 *   records itself in /var/lib/docker/lab-nginx.json so that nginx:stop and
 *   nginx:start (core/nginx-vhosts.ts) can find it.
 * - `caddy`: the process of the caddy compose container
 *   (core/caddy-vhosts.ts). Like lucaslorentz/caddy-docker-proxy it builds
 *   its routes from the labels of the running containers of the engine
 *   (`caddy=<domain>:80, ...`, `caddy.reverse_proxy={{ upstreams <port> }}`),
 *   and its global options from its own container's labels.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type ServerResponse,
} from 'node:http';
import { join } from 'node:path';
import { computedProxyType, proxyEnabled } from './core/proxy.js';
import { type ContainerRecord, containerRunning, listContainers, readContainer } from './engine.js';
import { DOKKU_LIB_ROOT, DOKKU_ROOT, ENGINE_ROOT, listApps, readOr } from './lib.js';
import { maintenanceAnswer } from './plugins/maintenance.js';

// ---------------------------------------------------------------- the nginx process record

/** Where the lab's nginx says which process it is (host state outside Dokku's folders). */
export const NGINX_RECORD = join(ENGINE_ROOT, 'lab-nginx.json');

/** The running lab nginx. */
export interface NginxProcess {
  pid: number;
  /** /proc/<pid>/stat start time, to tell a reused pid from ours. */
  pidStart: string;
  port: number;
}

function pidStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[0] === 'Z' ? '' : (rest[19] ?? '');
  } catch {
    return '';
  }
}

/** The lab nginx when it runs, else null. */
export function runningNginx(): NginxProcess | null {
  try {
    const r = JSON.parse(readFileSync(NGINX_RECORD, 'utf8')) as NginxProcess;
    if (r.pid > 0 && r.pidStart !== '' && pidStartTime(r.pid) === r.pidStart) return r;
  } catch {
    // no record: never started, or stopped
  }
  return null;
}

// ---------------------------------------------------------------- shared proxying

interface Target {
  ip: string;
  port: number;
}

/**
 * Pass a request to ip:port. `server` is the proxy's Server header: nginx
 * replaces the upstream's, Caddy only adds one when the upstream sent none.
 * `onError` answers when the upstream cannot be reached.
 */
function forward(
  req: IncomingMessage,
  res: ServerResponse,
  t: Target,
  headers: OutgoingHttpHeaders,
  server: { name: string; replace: boolean },
  onError: (e: Error) => void,
): void {
  const up = request(
    { host: t.ip, port: t.port, method: req.method, path: req.url, headers },
    (ur) => {
      const h = server.replace
        ? { ...ur.headers, server: server.name }
        : { server: server.name, ...ur.headers };
      res.writeHead(ur.statusCode ?? 502, h);
      ur.pipe(res);
    },
  );
  up.on('error', (e) => {
    if (!res.headersSent) onError(e);
    else res.destroy();
  });
  req.pipe(up);
}

/**
 * How long each proxy keeps an idle client connection open, as the real one
 * does by default: nginx `keepalive_timeout 65` (Debian's nginx.conf), Caddy's
 * `idle_timeout` 5 min. Node's own 5 s would close a browser's kept-alive
 * connection long before either.
 */
const IDLE_SECONDS = { proxy: 65, caddy: 300 } as const;

/** Listen on 0.0.0.0:port until SIGTERM/SIGINT; 1 when the port cannot be had. */
function serve(
  port: number,
  name: keyof typeof IDLE_SECONDS,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  onListening: () => void = () => {},
  onClose: () => void = () => {},
): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.keepAliveTimeout = IDLE_SECONDS[name] * 1000;
    server.on('error', (e) => {
      process.stderr.write(` !     lab ${name}: ${e.message}\n`);
      resolve(1);
    });
    server.listen(port, '0.0.0.0', onListening);
    const stop = (): void => {
      onClose();
      server.close(() => resolve(0));
      server.closeAllConnections();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

// ---------------------------------------------------------------- nginx

function nginxRoute(host: string): { app: string; ip: string; port: number } | null {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  for (const app of listApps()) {
    const vhosts = readOr(join(DOKKU_ROOT, app, 'VHOST'))
      .split('\n')
      .map((l) => l.trim().toLowerCase());
    if (!vhosts.includes(name)) continue;
    // nginx only has a server block for apps it proxies
    if (computedProxyType(app) !== 'nginx' || !proxyEnabled(app)) continue;
    const ip = readOr(join(DOKKU_ROOT, app, 'IP.web.1')).trim();
    const port = Number(readOr(join(DOKKU_ROOT, app, 'PORT.web.1')).trim());
    return { app, ip, port: Number.isInteger(port) ? port : 0 };
  }
  return null;
}

function nginxPage(code: number, text: string): string {
  return `<html>\r\n<head><title>${code} ${text}</title></head>\r\n<body>\r\n<center><h1>${code} ${text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

function serveNginx(port: number): Promise<number> {
  const page = (res: ServerResponse, code: number, text: string): void => {
    res.writeHead(code, { 'content-type': 'text/html', server: 'nginx' });
    res.end(nginxPage(code, text));
  };
  let mine: NginxProcess | null = null;
  return serve(
    port,
    'proxy',
    (req, res) => {
      const target = nginxRoute(req.headers.host ?? '');
      if (target === null) return page(res, 404, 'Not Found');
      // an nginx.conf.d include (dokku-maintenance's) answers before the upstream
      const held = maintenanceAnswer(target.app, req.url ?? '/');
      if (held !== null) {
        res.writeHead(held.status, { 'content-type': held.type, server: 'nginx' });
        res.end(held.body);
        return;
      }
      if (target.ip === '' || target.port <= 0) return page(res, 502, 'Bad Gateway');
      forward(req, res, target, req.headers, { name: 'nginx', replace: true }, () =>
        page(res, 502, 'Bad Gateway'),
      );
    },
    () => {
      mine = { pid: process.pid, pidStart: pidStartTime(process.pid), port };
      writeFileSync(NGINX_RECORD, `${JSON.stringify(mine)}\n`);
    },
    () => {
      // leave a newer nginx's record alone
      if (mine !== null && runningNginx()?.pid === mine.pid) rmSync(NGINX_RECORD, { force: true });
    },
  );
}

// ---------------------------------------------------------------- caddy

interface Site {
  /** true: the address names port 80 (or http://); false: an https site (redirected on 80). */
  http: boolean;
  upstreams: Target[];
}

/** caddy-docker-proxy's view: sites from the labels of the running containers. */
function caddySites(): Map<string, Site> {
  const sites = new Map<string, Site>();
  for (const c of listContainers()) {
    const labels = c.labels;
    const address = labels?.caddy;
    if (labels === undefined || address === undefined || !containerRunning(c)) continue;
    const m = /\{\{\s*upstreams\s+(?:https?\s+)?(\d+)\s*\}\}/.exec(
      labels['caddy.reverse_proxy'] ?? '',
    );
    for (const a of address.split(/[,\s]+/).filter((x) => x !== '')) {
      const am = /^(?:(https?):\/\/)?([^:/]+)(?::(\d+))?$/.exec(a);
      if (am === null) continue;
      const host = (am[2] ?? '').toLowerCase();
      const http = am[3] === '80' || am[1] === 'http';
      const site = sites.get(host) ?? { http, upstreams: [] };
      site.http = site.http || http;
      // containers share the host's network: the upstream is the port on loopback
      if (m !== null) site.upstreams.push({ ip: '127.0.0.1', port: Number(m[1]) });
      sites.set(host, site);
    }
  }
  return sites;
}

/** The caddy container's own record (docker sets HOSTNAME to the short id). */
function ownRecord(): ContainerRecord | null {
  const short = process.env.HOSTNAME ?? '';
  if (short === '') return null;
  for (const c of listContainers()) if (c.id.startsWith(short)) return c;
  return null;
}

const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'];

function serveCaddy(): Promise<number> {
  const own = ownRecord();
  const labels = (own === null ? null : readContainer(own.id))?.labels ?? {};
  const level = (labels['caddy.log.level'] ?? 'ERROR').toUpperCase();
  const autoHttps = labels['caddy.auto_https'] !== 'off';
  const log = (
    lvl: string,
    logger: string,
    msg: string,
    more: Record<string, unknown> = {},
  ): void => {
    if (LEVELS.indexOf(lvl) < LEVELS.indexOf(level)) return;
    const ts = Date.now() / 1000;
    process.stdout.write(
      `${JSON.stringify({ level: lvl.toLowerCase(), ts, logger, msg, ...more })}\n`,
    );
  };
  // caddy keeps its state under $XDG_DATA_HOME/caddy, the host's /var/lib/dokku/data/caddy
  try {
    const dir = join(DOKKU_LIB_ROOT, 'data', 'caddy', 'caddy');
    mkdirSync(dir, { recursive: true });
    const uuid = join(dir, 'instance.uuid');
    if (readOr(uuid) === '') writeFileSync(uuid, randomUUID());
  } catch {
    // best effort, as with a read-only volume
  }
  return serve(
    80,
    'caddy',
    (req, res) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      const site = caddySites().get(host);
      const base = { server: 'Caddy' };
      if (site === undefined) {
        // no route matched: Caddy's default is an empty 200
        res.writeHead(200, base);
        res.end();
        return;
      }
      if (!site.http) {
        if (autoHttps) {
          res.writeHead(308, { ...base, location: `https://${host}${req.url ?? '/'}` });
        } else res.writeHead(200, base);
        res.end();
        return;
      }
      const t = site.upstreams[Math.floor(Math.random() * site.upstreams.length)];
      if (t === undefined) {
        res.writeHead(502, base);
        res.end();
        return;
      }
      const client = req.socket.remoteAddress ?? '';
      const prior = req.headers['x-forwarded-for'];
      const headers = {
        ...req.headers,
        'x-forwarded-for': prior ? `${String(prior)}, ${client}` : client,
        'x-forwarded-proto': 'http',
        'x-forwarded-host': req.headers.host ?? '',
      };
      forward(req, res, t, headers, { name: 'Caddy', replace: false }, (e) => {
        log('ERROR', 'http.log.error', `dial tcp ${t.ip}:${t.port}: ${e.message}`, {
          request: { host: req.headers.host ?? '', uri: req.url ?? '/' },
          status: 502,
        });
        res.writeHead(502, base);
        res.end();
      });
    },
    () => log('INFO', '', 'serving initial configuration'),
  );
}

/** `dokku --lab-proxy [nginx|caddy]`: serve until killed. */
export function labProxy(args: string[] = []): Promise<number> {
  if (args[0] === 'caddy') return serveCaddy();
  return serveNginx(Number(process.env.FERRY_LAB_PROXY_PORT ?? '80'));
}
