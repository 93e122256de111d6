/**
 * The process of an ambassador container (dokku/ambassador, which the
 * datastore plugins run for `<plugin>:expose`): a TCP forwarder from a host
 * port on every interface to the service's link alias.
 *
 * `node ambassador.js HOST_PORT ALIAS DNS_FILE`. The alias is resolved
 * through the engine's dns.json at each connection, so the forward follows
 * the service container when it is made again (stop/start) on another port.
 */
import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

const [portArg, alias = '', dnsFile = '/var/lib/docker/dns.json'] = process.argv.slice(2);
const port = Number(portArg);

function target(): { host: string; port: number } | null {
  try {
    const table = JSON.parse(readFileSync(dnsFile, 'utf8')) as Record<string, string>;
    const t = table[alias];
    if (typeof t !== 'string') return null;
    const i = t.lastIndexOf(':');
    return { host: t.slice(0, i), port: Number(t.slice(i + 1)) };
  } catch {
    return null;
  }
}

const server = createServer((client) => {
  const t = target();
  if (t === null) {
    process.stdout.write(`no address for ${alias}\n`);
    client.destroy();
    return;
  }
  const upstream = createConnection(t);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.pipe(upstream);
  upstream.pipe(client);
});

server.on('error', (e) => {
  process.stdout.write(`ambassador: ${e.message}\n`);
  process.exit(1);
});
server.listen(port, '0.0.0.0', () => {
  process.stdout.write(`forwarding 0.0.0.0:${port} to ${alias}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
