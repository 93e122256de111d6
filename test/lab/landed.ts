/**
 * What an e2e test checks on a host a run brought the seed to (a migrate or a
 * restore of a seeded source), shared by the files that do one: every app
 * answers through the host's proxy, every row and key is there, every
 * service runs, the user's deploy lock is kept; and the digest that proves a
 * source's Dokku files unchanged.
 */
import type { ExecutionContext } from 'ava';
import { SEEDED } from './emulator/seed.js';
import type { LabHost } from './lab.js';

/**
 * Every entry of the Dokku directories with type, size, mode, owners, mtime
 * and content hash, one line each (so a failure shows what changed). A live
 * datastore's data directory counts by its own mode and owners only: each
 * server writes its files itself whatever ferry does (PostgreSQL's
 * checkpoints and autovacuum, the dump.rdb a redis export has written,
 * MariaDB's logs). The two roots' own mtimes are left out: a stage folder
 * made and removed inside them changes those and nothing else.
 */
export async function digest(host: LabHost): Promise<string[]> {
  const data = "-path 'var/lib/dokku/services/*/*/data'";
  const out = await host.must(
    `cd / && find home/dokku var/lib/dokku -mindepth 1 \\( ${data} -prune \\) -o -printf '%p %y %s %m %U %G %T@ %l\\n' | LC_ALL=C sort
     cd / && find var/lib/dokku/services/*/*/data -maxdepth 0 -printf 'data %p %m %U %G\\n' 2>/dev/null | LC_ALL=C sort
     cd / && find home/dokku var/lib/dokku -mindepth 1 \\( ${data} -prune \\) -o -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum`,
  );
  return out.trim().split('\n');
}

/**
 * A digest without what a stop and start of the containers change, to compare
 * a source a cut-over froze and then brought back (`--leave-source-running`,
 * or its thaw script): its containers are new ones, so Dokku's records of
 * them (an app's CONTAINER.*, PORT.* and IP.* files, a service's ID) hold new
 * ids and ports, and stopping and starting touch mtimes. Every other file
 * keeps its content, size, mode and owners; the runtime files their mode and
 * owners.
 */
export function withoutRunState(lines: string[]): string[] {
  return lines.flatMap(settled);
}

const RUN_STATE =
  /^(home\/dokku\/[^/]+\/(CONTAINER|PORT|IP)\.[^/]+|var\/lib\/dokku\/services\/[^/]+\/[^/]+\/ID)$/;

/** One digest line without what a stop and start of the containers change. */
function settled(line: string): string[] {
  const hashed = /^[0-9a-f]{64} {2}(.*)$/.exec(line);
  if (hashed) return RUN_STATE.test(hashed[1] ?? '') ? [] : [line];
  // `%p %y %s %m %U %G %T@ %l`: paths have no spaces (Dokku's names cannot)
  const f = line.split(' ');
  if (f[0] === 'data' || f.length < 7) return [line];
  const [path, type, size, mode, uid, gid, , ...link] = f;
  return [[path, type, RUN_STATE.test(path ?? '') ? '-' : size, mode, uid, gid, ...link].join(' ')];
}

/**
 * GET http://127.0.0.1/PATH on the host with the app's Host header, as a
 * client of its proxy: the body, then a line with the status code and the
 * Server header.
 */
export async function get(host: LabHost, app: string, path = '/'): Promise<string> {
  const vhost = (await host.must('cat /home/dokku/VHOST')).trim().split('\n')[0] ?? '';
  const r = await host.exec(
    `curl -sS -m 10 -H 'Host: ${app}.${vhost}' http://127.0.0.1${path} -w '\\n%{http_code} %header{server}'`,
  );
  return `${r.stdout}${r.stderr}`;
}

/** What a run may have left out of the seed on purpose. */
export interface LandedOptions {
  /** Services (`plugin/name`) the run left out: checked absent instead of running. */
  without?: string[];
}

/**
 * The whole seed, on `host`: each app answers through the caddy container
 * (the seed's proxy), notes with the rows of its PostgreSQL, counter with its
 * redis keys and MySQL rows; each service runs (each one in `without` is
 * absent instead); the user's deploy lock is there.
 */
export async function landed(
  t: ExecutionContext,
  host: LabHost,
  opts: LandedOptions = {},
): Promise<void> {
  const without = new Set(opts.without ?? []);
  for (const app of SEEDED.apps) {
    const body = await get(host, app.name);
    t.true(body.includes(app.answers), `${app.name} on ${host.name} answers: ${body}`);
    // the seed routes every app through the caddy container, not the host's nginx
    t.regex(body, /\n200 Caddy$/, `${app.name} on ${host.name} through caddy`);
  }
  const notes = await get(host, 'notes');
  for (const row of SEEDED.services[0].rows) t.true(notes.includes(row), `notes row "${row}"`);
  if (!without.has(`postgres/${SEEDED.services[1].name}`)) {
    const events = await host.must(`dokku postgres:connect ${SEEDED.services[1].name}`, {
      input: 'SELECT count(*) FROM events;\n',
    });
    t.regex(events, new RegExp(`\\b${SEEDED.services[1].rows.length}\\b`), 'analytics rows');
  }
  const counters = await get(host, 'counter');
  t.regex(counters, /"counters":\{[^}]*"drill":1[^}]*\}/, `redis keys: ${counters}`);
  t.regex(counters, /"ferry":3\b/, `redis keys: ${counters}`);
  const rows = await get(host, 'counter', '/rows');
  for (const row of SEEDED.datastores.mysql.rows) t.true(rows.includes(row), `mysql row ${row}`);
  const services: [string, string][] = [
    ...SEEDED.services.map((s): [string, string] => ['postgres', s.name]),
    ...Object.entries(SEEDED.datastores).map(([plugin, s]): [string, string] => [plugin, s.name]),
  ];
  for (const [plugin, name] of services) {
    if (without.has(`${plugin}/${name}`)) {
      const listed = await host.must(`dokku --quiet ${plugin}:list`);
      t.false(
        listed.split('\n').some((l) => l.trim().split(/\s+/)[0] === name),
        `${plugin} ${name} is not on ${host.name}: ${listed}`,
      );
      continue;
    }
    const st = await host.must(`dokku ${plugin}:info ${name} --status`);
    t.is(st.trim(), 'running', `${plugin} ${name} on ${host.name}`);
  }
  const locked = await host.exec(`dokku apps:locked ${SEEDED.lockedApp}`);
  t.is(locked.stdout, 'Deploy lock exists\n', `the user's lock on ${SEEDED.lockedApp}`);
}

/** The scheduled backup's cron entry (outside the archived paths) is on `to`, as on `from`. */
export async function sameCron(t: ExecutionContext, from: LabHost, to: LabHost): Promise<void> {
  const file = SEEDED.backupSchedule.file;
  const want = await from.must(`cat ${file}`);
  t.regex(want, /^0 3 \* \* \* dokku \/usr\/bin\/dokku postgres:backup notes-db ferry-backups/);
  t.is(await to.must(`cat ${file}`), want, `${file} on ${to.name}`);
  t.is((await to.must(`stat -c '%U %a' ${file}`)).trim(), 'root 644');
}
