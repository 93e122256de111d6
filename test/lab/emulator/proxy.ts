/**
 * `dokku --lab-proxy`: the host's "nginx". Routes by Host header to the app
 * whose $DOKKU_ROOT/<app>/VHOST lists that name, at IP.web.1:PORT.web.1.
 * 404 for unknown hosts, 502 when the app has no running web container.
 */
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { DOKKU_ROOT, listApps, readOr } from './lib.js';
import { maintenanceAnswer } from './plugins/maintenance.js';

function route(host: string): { app: string; ip: string; port: number } | null {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  for (const app of listApps()) {
    const vhosts = readOr(join(DOKKU_ROOT, app, 'VHOST'))
      .split('\n')
      .map((l) => l.trim().toLowerCase());
    if (!vhosts.includes(name)) continue;
    const ip = readOr(join(DOKKU_ROOT, app, 'IP.web.1')).trim();
    const port = Number(readOr(join(DOKKU_ROOT, app, 'PORT.web.1')).trim());
    return { app, ip, port: Number.isInteger(port) ? port : 0 };
  }
  return null;
}

function page(code: number, text: string): string {
  return `<html>\r\n<head><title>${code} ${text}</title></head>\r\n<body>\r\n<center><h1>${code} ${text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

/** Serve until killed. */
export function labProxy(port = Number(process.env.FERRY_LAB_PROXY_PORT ?? '80')): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const target = route(req.headers.host ?? '');
      if (target === null) {
        res.writeHead(404, { 'content-type': 'text/html', server: 'nginx' });
        res.end(page(404, 'Not Found'));
        return;
      }
      // an nginx.conf.d include (dokku-maintenance's) answers before the upstream
      const held = maintenanceAnswer(target.app, req.url ?? '/');
      if (held !== null) {
        res.writeHead(held.status, { 'content-type': held.type, server: 'nginx' });
        res.end(held.body);
        return;
      }
      if (target.ip === '' || target.port <= 0) {
        res.writeHead(502, { 'content-type': 'text/html', server: 'nginx' });
        res.end(page(502, 'Bad Gateway'));
        return;
      }
      const up = request(
        {
          host: target.ip,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', () => {
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'text/html', server: 'nginx' });
          res.end(page(502, 'Bad Gateway'));
        } else res.destroy();
      });
      req.pipe(up);
    });
    server.on('error', (e) => {
      process.stderr.write(` !     lab proxy: ${e.message}\n`);
      resolve(1);
    });
    server.listen(port, '0.0.0.0');
    const stop = (): void => {
      server.close(() => resolve(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
