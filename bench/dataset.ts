/**
 * A Dokku-like data set on a lab host, for the benchmark: a real PostgreSQL
 * data directory (pgbench tables) as a service, many small text files in a
 * storage mount, some incompressible uploads, bare git repos in /home/dokku,
 * and app config files. Files are written directly (no app or service is
 * registered), so the emulator's `dokku apps:list` stays empty. `scale` 1 is
 * a little over 1 GB (checked by the caller).
 */
import type { LabHost } from '../test/lab/lab.js';

/** The seed's paths: what a backup or a migration copies. */
export const DOKKU_PATHS = [
  'home/dokku',
  'var/lib/dokku/config',
  'var/lib/dokku/data',
  'var/lib/dokku/services',
  'var/lib/dokku/plugins',
];

/** What was built, as measured on the host afterwards. */
export interface DatasetInfo {
  /** Apparent size of the five seed paths. */
  bytes: number;
  /** Files and folders in them. */
  files: number;
  /** Time the build took. */
  seconds: number;
}

/** Size and file count of the seed's paths on `host`. */
export async function measureDataset(host: LabHost): Promise<Omit<DatasetInfo, 'seconds'>> {
  const list = DOKKU_PATHS.map((p) => `/${p}`).join(' ');
  const out = await host.must(
    `du -scb --apparent-size ${list} 2>/dev/null | tail -n1 | cut -f1; find ${list} 2>/dev/null | wc -l`,
  );
  const [bytes, files] = out.trim().split('\n').map(Number);
  return { bytes: bytes ?? 0, files: files ?? 0 };
}

/** Builds the data set on `host` (from empty each time: earlier bench parts are removed). */
export async function buildDataset(
  host: LabHost,
  scale: number,
  log: (line: string) => void = () => {},
): Promise<DatasetInfo> {
  const started = Date.now();
  const part = (what: string) =>
    log(`${host.name}: ${what} at ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const pgScale = Math.max(1, Math.round(24 * scale)); // ~28 MB per unit with its WAL
  const smallFiles = Math.max(200, Math.round(30000 * scale)); // ~5.5 KB each
  const blobs = Math.max(1, Math.round(40 * scale)); // 4 MB each, random: compression cannot help
  const repos = Math.max(1, Math.round(6 * scale));
  const pgBin = (await host.must('ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1')).trim();
  const svc = '/var/lib/dokku/services/postgres/benchdb';
  // The pgbench tables give data files of 1 GB segments and 8 KB pages, as a real datastore has.
  await host.must(
    `set -euo pipefail
     rm -rf ${svc} /var/lib/dokku/data/storage/bench /home/dokku/bench-* /var/lib/dokku/config/bench
     mkdir -p ${svc}/data /var/lib/dokku/data/storage/bench/uploads /var/lib/dokku/config/bench
     chown -R postgres:postgres ${svc}/data
     runuser -u postgres -- ${pgBin}/initdb -D ${svc}/data -A trust -U postgres >/dev/null
     runuser -u postgres -- ${pgBin}/pg_ctl -D ${svc}/data -o "-p 5499 -k /tmp -c listen_addresses=''" -w start >/dev/null
     runuser -u postgres -- ${pgBin}/pgbench -h /tmp -p 5499 -i -q -s ${pgScale} postgres >/dev/null 2>&1
     runuser -u postgres -- ${pgBin}/pg_ctl -D ${svc}/data -m fast -w stop >/dev/null
     printf 'postgres:16\\n' > ${svc}/IMAGE`,
  );
  part('postgres');
  // Small files: compressible text of varied sizes (logs, uploads, generated
  // assets), 200 per folder. awk, not a scripting runtime the host may lack.
  await host.must(
    `set -euo pipefail
     cd /var/lib/dokku/data/storage/bench
     for d in $(seq 0 $(( (${smallFiles} - 1) / 200 ))); do mkdir -p "d$d"; done
     awk -v n=${smallFiles} 'BEGIN {
       srand(7)
       split("dokku ferry app deploy release config storage postgres backup restore web worker cron queue cache session user order invoice static", w, " ")
       for (i = 0; i < n; i++) {
         f = sprintf("d%d/f%06d.log", int(i / 200), i)
         lines = 10 + int(rand() * 190)
         for (l = 0; l < lines; l++) {
           printf "%d-%02d-%02dT%02d:%02d:%02d %s %s=%d %s %08x\\n", 2020 + int(rand() * 6), 1 + int(rand() * 12), 1 + int(rand() * 28), int(rand() * 24), int(rand() * 60), int(rand() * 60), w[1 + int(rand() * 20)], w[1 + int(rand() * 20)], int(rand() * 100000), w[1 + int(rand() * 20)], int(rand() * 4294967295) > f
         }
         close(f)
       }
     }'
     for i in $(seq 1 ${blobs}); do head -c 4194304 /dev/urandom > uploads/blob-$i.bin; done
     chown -R 32767:32767 /var/lib/dokku/data/storage/bench
     for a in $(seq 1 20); do printf 'export DATABASE_URL=postgres://u:p@dokku-postgres-benchdb:5432/db%d\\nexport SECRET_KEY_BASE=%s\\n' "$a" "$(head -c 32 /dev/urandom | base64)" > /var/lib/dokku/config/bench/ENV-$a; done`,
  );
  part('small files and uploads');
  // Bare repos as `git push dokku` leaves them (packed history). One is built
  // and copied: git's many short processes are the slowest part of the build.
  await host.must(
    `set -euo pipefail
     w=$(mktemp -d); cd "$w"; git init -q .; git config user.email b@lab; git config user.name bench
     for c in $(seq 1 12); do
       mkdir -p src; head -c 800000 /dev/urandom | base64 > src/data-$c.txt; seq $c 60000 > src/seq-$c.txt
       git add -A; git commit -qm "commit $c"
     done
     git clone -q --bare "$w" /home/dokku/bench-1; rm -rf "$w"
     for r in $(seq 2 ${repos}); do cp -a /home/dokku/bench-1 /home/dokku/bench-$r; done
     chown -R dokku:dokku /home/dokku/bench-*`,
  );
  part('git repos');
  return { ...(await measureDataset(host)), seconds: (Date.now() - started) / 1000 };
}

/** Reads the data set once so every timed run reads it from the page cache alike. */
export async function warmCache(host: LabHost): Promise<void> {
  // Not `-f /dev/null`: GNU tar then skips reading file contents altogether.
  await host.must(`cd / && tar -cf - ${DOKKU_PATHS.join(' ')} | cat >/dev/null`);
}
