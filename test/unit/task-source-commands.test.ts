/**
 * The source-side tasks' shell commands, run for real by bash here on
 * scratch folders (never on a host): retention keeps the newest N, the
 * checksum and export-sum commands print what the runs parse, and a fetched
 * folder is checked (and a corrupted one refused).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { type Inventory, validateInventory } from '../../src/inventory/index.js';
import { $, type Command } from '../../src/ssh/shell.js';
import { checksumCommand, copyCronCommand, parseChecksumOutput } from '../../src/tasks/archive.js';
import { parseDeployLocks } from '../../src/tasks/check-quiet.js';
import { parseExistingData, parseFreeSpace } from '../../src/tasks/check-target.js';
import { exportSumsCommand, parseExportSums } from '../../src/tasks/export-datastores.js';
import {
  checkFetchedCommand,
  receiveFolderCommand,
  sendFolderCommand,
} from '../../src/tasks/fetch.js';
import { deployMethod, mountOutsideArchive, parseFileValues } from '../../src/tasks/inventory.js';
import { parseRemoved, retentionCommand } from '../../src/tasks/retention.js';
import { latestArchiveCommand } from '../../src/tasks/transfer.js';

/** Runs a command in a real bash, as a host's shell would (`render` refuses an unbound hole). */
function bash(command: Command): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -euo pipefail\n${command.render()}`], {
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function scratch(t: { teardown: (f: () => void) => void }): string {
  // A space and a quote in the path: every command must quote it.
  const root = mkdtempSync(join(tmpdir(), "ferry src 'q "));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

function inventoryAt(dir: string, keep: number): Inventory {
  return validateInventory(
    `version: 1
hosts:
  old: {address: 192.0.2.10}
  old-2: {address: 192.0.2.11}
backup:
  dir: ${JSON.stringify(dir)}
  keep: ${keep}
`,
    '/tmp/inv.yml',
    { home: '/home/u' },
  );
}

test('retention keeps the newest N whole archives of this host, and nothing else', (t) => {
  const dir = join(scratch(t), 'archives');
  const make = (name: string, file: string) => {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, file), 'x');
  };
  make('old-20260101T000000Z', 'dokku.tar.zst');
  make('old-20260102T000000Z', 'dokku.tar.gz');
  make('old-20260103T000000Z', 'dokku.tar.zst');
  make('old-20260104T000000Z', 'dokku.tar.zst');
  make('old-20260105T000000Z', 'dokku.tar.zst.part'); // a failed run: not an archive
  make('old-20250101T000000Z', 'manifest.json'); // a migration's folder: no archive
  make('old-pre-ferry-20200101T000000Z', 'dokku.tar.zst'); // a safety archive
  make('old-2-20200101T000000Z', 'dokku.tar.zst'); // another host whose name starts alike
  const inv = inventoryAt(dir, 2);
  const r = bash(retentionCommand(inv, inv.hosts.old!, 2));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(parseRemoved(r.stdout).sort(), [
    join(dir, 'old-20260101T000000Z'),
    join(dir, 'old-20260102T000000Z'),
  ]);
  t.deepEqual(readdirSync(dir).sort(), [
    'old-2-20200101T000000Z',
    'old-20250101T000000Z',
    'old-20260103T000000Z',
    'old-20260104T000000Z',
    'old-20260105T000000Z',
    'old-pre-ferry-20200101T000000Z',
  ]);
  // Run again: nothing more to remove.
  t.deepEqual(parseRemoved(bash(retentionCommand(inv, inv.hosts.old!, 2)).stdout), []);
});

test('the latest archive of a host is its newest whole one, never a .part, a safety archive or another host', (t) => {
  const dir = join(scratch(t), 'archives');
  const make = (name: string, file: string) => {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, file), 'x');
  };
  const inv = inventoryAt(dir, 2);
  const none = bash($`set -euo pipefail; ${latestArchiveCommand(inv, inv.hosts.old!)}`);
  t.deepEqual([none.code, none.stdout], [0, ''], 'no backup.dir yet: nothing, and no failure');
  make('old-20260101T000000Z', 'dokku.tar.zst');
  make('old-20260102T000000Z', 'dokku.tar.gz');
  make('old-20260105T000000Z', 'dokku.tar.zst.part');
  make('old-20260106T000000Z', 'manifest.json');
  make('old-pre-ferry-20990101T000000Z', 'dokku.tar.zst');
  make('old-2-20990101T000000Z', 'dokku.tar.zst');
  const r = bash(latestArchiveCommand(inv, inv.hosts.old!));
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), join(dir, 'old-20260102T000000Z'));
});

test('backup keeps the dokku-* cron entries beside the archive, and only those', (t) => {
  const dir = scratch(t);
  const cron = join(dir, 'etc-cron.d');
  mkdirSync(cron);
  writeFileSync(join(cron, 'dokku-postgres-db'), '0 3 * * * dokku ...\n', { mode: 0o644 });
  writeFileSync(join(cron, 'dokku-letsencrypt'), '@daily dokku letsencrypt:auto-renew\n');
  writeFileSync(join(cron, 'e2scrub_all'), 'not ours\n');
  const run = join(dir, 'run');
  const r = bash(copyCronCommand(run, cron));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readdirSync(join(run, 'cron.d')).sort(), ['dokku-letsencrypt', 'dokku-postgres-db']);
  t.is(statSync(join(run, 'cron.d')).mode & 0o777, 0o700);
  // A host without /etc/cron.d: an empty folder, no failure.
  const none = bash(copyCronCommand(join(dir, 'run2'), join(dir, 'missing')));
  t.is(none.code, 0, none.stderr);
  t.deepEqual(readdirSync(join(dir, 'run2', 'cron.d')), []);
});

test('the archive checksum command writes a 0600 sum file and prints what the run parses', (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'dokku.tar.zst'), 'archive bytes');
  const r = bash(checksumCommand(dir, 'zstd'));
  t.is(r.code, 0, r.stderr);
  const parsed = parseChecksumOutput(r.stdout, 'dokku.tar.zst');
  const expected = execFileSync('sha256sum', [join(dir, 'dokku.tar.zst')], { encoding: 'utf8' });
  t.is(parsed.sha256, expected.split(' ')[0] ?? '');
  t.is(parsed.bytes, 13);
  t.is(statSync(join(dir, 'dokku.tar.zst')).mode & 0o777, 0o600);
  t.is(statSync(join(dir, 'dokku.tar.zst.sha256')).mode & 0o777, 0o600);
  t.is(bash($`cd ${dir} && sha256sum -c --quiet dokku.tar.zst.sha256`).code, 0);
  t.throws(() => parseChecksumOutput(r.stdout, 'dokku.tar.gz'));
});

test('the archive checksum takes the sum made while writing, and drops it', (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'dokku.tar.gz'), 'archive bytes');
  const sum = execFileSync('sha256sum', [join(dir, 'dokku.tar.gz')], { encoding: 'utf8' });
  // A sum that differs from the file's shows which one was used.
  const taken = 'a'.repeat(64);
  writeFileSync(join(dir, 'dokku.tar.gz.hex'), `${taken}\n`);
  const r = bash(checksumCommand(dir, 'gzip'));
  t.is(r.code, 0, r.stderr);
  t.is(parseChecksumOutput(r.stdout, 'dokku.tar.gz').sha256, taken);
  t.false(readdirSync(dir).includes('dokku.tar.gz.hex'));
  t.not(sum.split(' ')[0], taken);
});

test('export sums: SHA256SUMS in sha256sum -c format, sizes printed', (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'postgres-a.dump'), 'PGDMP one');
  writeFileSync(join(dir, 'postgres-b.dump'), 'PGDMP two!');
  const r = bash(exportSumsCommand(dir));
  t.is(r.code, 0, r.stderr);
  const sums = parseExportSums(r.stdout);
  t.deepEqual([...sums.keys()].sort(), ['postgres-a.dump', 'postgres-b.dump']);
  t.is(sums.get('postgres-b.dump')!.bytes, 10);
  t.is(statSync(join(dir, 'SHA256SUMS')).mode & 0o777, 0o600);
});

test('fetch: the folder streams through tar; the check passes whole and refuses a bad copy', (t) => {
  const root = scratch(t);
  const src = join(root, 'host', 'old-20260101T000000Z');
  mkdirSync(join(src, 'exports'), { recursive: true });
  writeFileSync(join(src, 'dokku.tar.zst'), 'archive');
  t.is(bash($`cd ${src} && sha256sum dokku.tar.zst > dokku.tar.zst.sha256`).code, 0, 'setup');
  writeFileSync(join(src, 'manifest.json'), '{}');
  writeFileSync(join(src, 'exports', 'SHA256SUMS'), '');
  const dest = join(root, 'here');
  const r = bash(
    $`${sendFolderCommand(src)} | { ${receiveFolderCommand(dest, 'old-20260101T000000Z')}; }`,
  );
  t.is(r.code, 0, r.stderr);
  const copy = join(dest, 'old-20260101T000000Z');
  t.is(statSync(copy).mode & 0o777, 0o700);
  // No datastore: an empty SHA256SUMS is fine.
  const ok = bash(checkFetchedCommand(copy));
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^[0-9a-f]{64} {2}dokku\.tar\.zst$/m);
  writeFileSync(join(copy, 'exports', 'postgres-a.dump'), 'dump');
  t.is(
    bash($`cd ${join(copy, 'exports')} && sha256sum postgres-a.dump > SHA256SUMS`).code,
    0,
    'setup',
  );
  t.is(bash(checkFetchedCommand(copy)).code, 0);
  writeFileSync(join(copy, 'exports', 'postgres-a.dump'), 'dumq');
  t.not(bash(checkFetchedCommand(copy)).code, 0);
  writeFileSync(join(copy, 'exports', 'postgres-a.dump'), 'dump');
  // A saved image (save-images) is checked against images/SHA256SUMS too.
  mkdirSync(join(copy, 'images'));
  writeFileSync(join(copy, 'images', 'lab+sealed:1.0.tar'), 'image');
  t.is(
    bash($`cd ${join(copy, 'images')} && sha256sum lab+sealed:1.0.tar > SHA256SUMS`).code,
    0,
    'setup',
  );
  t.is(bash(checkFetchedCommand(copy)).code, 0);
  writeFileSync(join(copy, 'images', 'lab+sealed:1.0.tar'), 'imagf');
  t.not(bash(checkFetchedCommand(copy)).code, 0, 'a changed image file is caught here');
  writeFileSync(join(copy, 'images', 'lab+sealed:1.0.tar'), 'image');
  writeFileSync(join(copy, 'dokku.tar.zst'), 'archivf');
  t.not(bash(checkFetchedCommand(copy)).code, 0);
});

test('parsers of the check and inventory answers', (t) => {
  t.deepEqual(
    parseDeployLocks(
      '0 free /home/dokku/web/.deploy.lock\n12 held /var/lib/dokku/data/apps/api/.deploy.lock\n0 held /home/dokku/my_app/.deploy.lock\n',
    ),
    [
      { size: 0, held: false, path: '/home/dokku/web/.deploy.lock', app: 'web' },
      { size: 12, held: true, path: '/var/lib/dokku/data/apps/api/.deploy.lock', app: 'api' },
      // ≤0.33 deploys hold an empty file (acquire_advisory_lock, v0.30.11)
      { size: 0, held: true, path: '/home/dokku/my_app/.deploy.lock', app: 'my_app' },
    ],
  );
  t.deepEqual(parseExistingData('service postgres/db\napp web\napp api\n'), {
    apps: ['api', 'web'],
    services: ['postgres/db'],
  });
  t.deepEqual(parseFreeSpace('/home/dokku\t2049\t8\t/\n/x\t7\t1\t/mnt/my disk\nnoise\n'), [
    { path: '/home/dokku', device: '2049', free: 8192, mount: '/' },
    { path: '/x', device: '7', free: 1024, mount: '/mnt/my disk' },
  ]);
  t.deepEqual(parseFileValues('deploy-source=tar\ndeploy-source-metadata=https://x/a=b\n'), {
    'deploy-source': 'tar',
    'deploy-source-metadata': 'https://x/a=b',
  });
  t.is(deployMethod('git-push', true), 'git');
  t.is(deployMethod('docker-image', true), 'image');
  t.is(deployMethod('zip', true), 'archive');
  t.is(deployMethod('', false), 'none');
  t.is(deployMethod('', true), 'git');
  t.is(mountOutsideArchive('/var/lib/dokku/data/storage/api'), undefined);
  t.is(mountOutsideArchive('/var/lib/dokku/data/storage/api/'), undefined);
  t.regex(mountOutsideArchive('/var/lib/dokku/data/storage/../../../srv') ?? '', /outside/);
  t.is(mountOutsideArchive('/var/lib/dokku/data/storage'), undefined);
  t.regex(mountOutsideArchive('/var/lib/dokku/data/storagex') ?? '', /outside/);
  t.regex(mountOutsideArchive('/srv/x') ?? '', /outside/);
  t.regex(mountOutsideArchive('myvol') ?? '', /docker volume/);
});
