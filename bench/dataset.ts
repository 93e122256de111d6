/**
 * A Dokku-like data set on a lab host, for the benchmark: a real PostgreSQL
 * data directory (pgbench tables), many small files in a storage mount, some
 * incompressible uploads, and bare git repos. `scale` 1 is about 1 GB.
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

export interface DatasetInfo {
  bytes: number;
  files: number;
  seconds: number;
}

/** Builds the data set on `host` (idempotent per scale: it starts from empty). */
export async function buildDataset(host: LabHost, scale: number): Promise<DatasetInfo> {
  const started = Date.now();
  const pgScale = Math.max(1, Math.round(28 * scale)); // ~15 MB per pgbench scale unit
  const smallFiles = Math.max(100, Math.round(20000 * scale));
  const blobs = Math.max(1, Math.round(40 * scale)); // 4 MB each, random
  const repos = Math.max(1, Math.round(4 * scale));
  const pgBin = (await host.must('ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1')).trim();
  const svc = '/var/lib/dokku/services/postgres/benchdb';
  await host.must(
    `set -euo pipefail
     rm -rf ${svc} /var/lib/dokku/data/storage/bench /home/dokku/bench-*
     mkdir -p ${svc}/data /var/lib/dokku/data/storage/bench/uploads
     chown -R postgres:postgres ${svc}/data
     runuser -u postgres -- ${pgBin}/initdb -D ${svc}/data -A trust -U postgres >/dev/null
     runuser -u postgres -- ${pgBin}/pg_ctl -D ${svc}/data -o "-p 5499 -k /tmp -c listen_addresses=''" -w start >/dev/null
     runuser -u postgres -- ${pgBin}/pgbench -h /tmp -p 5499 -i -q -s ${pgScale} postgres >/dev/null 2>&1
     runuser -u postgres -- ${pgBin}/pg_ctl -D ${svc}/data -m fast -w stop >/dev/null`,
  );
  // Small files: compressible text of varied sizes, as logs, configs and uploads are.
  await host.must(
    `set -euo pipefail
     cd /var/lib/dokku/data/storage/bench
     python3 - <<'PY'
import os, random
random.seed(7)
words = [w.strip() for w in open('/usr/share/dict/words')] if os.path.exists('/usr/share/dict/words') else ['dokku','ferry','app','deploy','release','config','storage','postgres','backup','restore']
for i in range(${smallFiles}):
    d = 'd%03d' % (i % 200)
    os.makedirs(d, exist_ok=True)
    n = random.randint(200, 2600)
    with open(os.path.join(d, 'f%06d.txt' % i), 'w') as f:
        f.write(' '.join(random.choice(words) + str(random.randint(0, 99999)) for _ in range(n)))
PY
     for i in $(seq 1 ${blobs}); do head -c 4194304 /dev/urandom > uploads/blob-$i.bin; done
     chown -R 32767:32767 /var/lib/dokku/data/storage/bench`,
  );
  for (let r = 1; r <= repos; r++) {
    await host.must(
      `set -euo pipefail
       w=$(mktemp -d); cd "$w"; git init -q .; git config user.email b@lab; git config user.name bench
       for c in $(seq 1 20); do
         mkdir -p src; head -c 300000 /dev/urandom | base64 > src/data-$c.txt; seq 1 20000 > src/seq-$c.txt
         git add -A; git commit -qm "commit $c"
       done
       git clone -q --bare "$w" /home/dokku/bench-${r}; rm -rf "$w"
       chown -R dokku:dokku /home/dokku/bench-${r}`,
    );
  }
  const out = await host.must(
    `du -sb --apparent-size /home/dokku /var/lib/dokku/config /var/lib/dokku/data /var/lib/dokku/services /var/lib/dokku/plugins 2>/dev/null | awk '{s+=$1} END {print s}';
     find /home/dokku /var/lib/dokku/config /var/lib/dokku/data /var/lib/dokku/services /var/lib/dokku/plugins 2>/dev/null | wc -l`,
  );
  const [bytes, files] = out.trim().split('\n').map(Number);
  return { bytes: bytes ?? 0, files: files ?? 0, seconds: (Date.now() - started) / 1000 };
}
