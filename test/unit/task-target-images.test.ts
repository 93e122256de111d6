/** carry-images and save-images: which images travel, the sums compared, and the shell text run for real. */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StopError } from '../../src/errors.js';
import carryImages, {
  imageFile,
  imageOfFile,
  imagesOf,
  isImageRef,
  loadStreamCommand,
  parseSums,
  saveStreamCommand,
} from '../../src/tasks/carry-images.js';
import type { ManifestApp, ManifestService } from '../../src/tasks/manifest.js';
import saveImages, { imageSumsCommand, saveImageCommand } from '../../src/tasks/save-images.js';
import type { PlanContext, PlanOptions } from '../../src/tasks/types.js';
import { manifestOf, runTask, type Seen, taskInventory } from './task-fake.js';

const RUN = '20261123T100000Z';
const SUM_A = 'a'.repeat(64);
const SUM_B = 'b'.repeat(64);

type CarryParams = Parameters<typeof carryImages.plan>[0]['params'];

function ctx(
  params: Partial<CarryParams>,
  options: Partial<PlanOptions> = {},
): PlanContext<CarryParams> {
  const inv = taskInventory();
  return {
    step: { id: 'carry-images', task: 'carry-images', on: 'target', index: 6 },
    params: { from: 'source', data: 'live', route: 'auto', ...params },
    host: inv.hosts.new,
    roles: { source: inv.hosts.old, target: inv.hosts.new },
    inventory: inv,
    options: { runId: RUN, ...options },
  };
}

function app(name: string, m: Partial<ManifestApp> = {}): ManifestApp {
  return {
    name,
    method: 'git',
    deploySource: 'git-push',
    deploySourceMetadata: null,
    deployed: true,
    running: 'true',
    restore: true,
    mounts: [],
    ...m,
  };
}

function imageApp(name: string, image: string): ManifestApp {
  return app(name, { method: 'image', deploySource: 'docker-image', deploySourceMetadata: image });
}

function service(name: string, image: string, version: string): ManifestService {
  return { plugin: 'postgres', name, image, imageVersion: version, links: [] };
}

const streams = (seen: Seen) => seen.calls.filter((c) => c.kind === 'stream');
const rethrow = (e: unknown) => () => {
  throw e;
};

test('imagesOf: image apps always, services by IMAGE:IMAGE_VERSION, one entry per image, odd refs apart', (t) => {
  const m = manifestOf({
    apps: [
      imageApp('sealed', 'lab/sealed:1.0'),
      imageApp('twin', 'lab/sealed:1.0'),
      app('web'),
      imageApp('never', 'lab/never:1'),
      imageApp('evil', '--output=/etc/passwd'),
      app('tarred', { method: 'archive', deploySourceMetadata: 'https://x/y.tar' }),
    ],
    services: [service('db', 'postgres', '17.5'), service('db2', 'lab/sealed', '1.0')],
  });
  m.apps.find((a) => a.name === 'never')!.deployed = false;
  const { needs, refused } = imagesOf(m);
  t.deepEqual(needs, [
    { image: 'lab/sealed:1.0', kind: 'app', users: ['sealed', 'twin', 'postgres db2'] },
    { image: 'postgres:17.5', kind: 'service', users: ['postgres db'] },
  ]);
  t.deepEqual(refused, ['evil: "--output=/etc/passwd"']);
});

test('image refs and their file names', (t) => {
  for (const ok of ['postgres:17.5', 'ghcr.io/a/b:v1', `reg:5000/x/y@sha256:${'c'.repeat(64)}`]) {
    t.true(isImageRef(ok), ok);
    t.is(imageOfFile(imageFile(ok)), ok);
    t.false(imageFile(ok).includes('/'));
  }
  for (const bad of ['-x', '', 'a b', 'a/../b', 'a;b', 'a$b']) t.false(isImageRef(bad), bad);
  t.deepEqual(
    [...parseSums(`${SUM_A}  lab+sealed:1.0.tar\n${SUM_B} *x.tar\nnoise\n`)],
    [
      ['lab+sealed:1.0.tar', SUM_A],
      ['x.tar', SUM_B],
    ],
  );
});

test('live: an app image always travels; a service image only when the target cannot pull it', async (t) => {
  const m = manifestOf({
    apps: [imageApp('sealed', 'lab/sealed:1.0'), app('web')],
    services: [service('db', 'postgres', '17.5'), service('own', 'lab/pg', 'custom')],
  });
  const r = await runTask(carryImages, ctx({}), {
    manifest: m,
    answers: {
      'find-or-pull': (c) => ({
        stdout: c.vars.image === 'postgres:17.5' ? 'pulled\n' : 'missing\n',
      }),
      'sent-sum': { stdout: `${SUM_A}\n` },
      'received-sum': { stdout: `${SUM_A}\n` },
    },
  });
  t.is(r.error, undefined);
  t.deepEqual(r.result, { carried: ['lab/sealed:1.0', 'lab/pg:custom'], missing: [] });
  t.deepEqual(
    r.seen.calls.filter((c) => c.id === 'find-or-pull').map((c) => c.vars.image),
    ['postgres:17.5', 'lab/pg:custom'],
    'an app image is never pulled instead: a tag may name other bytes on the registry',
  );
  const s = streams(r.seen);
  t.deepEqual(
    s.map((c) => c.vars),
    [
      { image: 'lab/sealed:1.0', file: 'lab+sealed:1.0.tar' },
      { image: 'lab/pg:custom', file: 'lab+pg:custom.tar' },
    ],
  );
  t.true(s[0]!.command.includes('docker save lab/sealed:1.0 |'));
  t.true(s[0]!.command.includes('| docker load'));
  t.true(
    s[0]!.command.includes(
      '/var/lib/dokku-ferry/stage/20261123T100000Z/images/lab+sealed:1.0.tar.sha256',
    ),
  );
  t.false(r.seen.calls.some((c) => c.id === 'untag'));
});

test('live: a checksum mismatch untags the image and stops with both sums', async (t) => {
  const r = await runTask(carryImages, ctx({}), {
    manifest: manifestOf({ apps: [imageApp('sealed', 'lab/sealed:1.0')] }),
    answers: { 'sent-sum': { stdout: SUM_A }, 'received-sum': { stdout: SUM_B } },
  });
  const e = t.throws(rethrow(r.error), { instanceOf: StopError });
  t.regex(e!.message, /image lab\/sealed:1\.0: checksum mismatch/);
  t.true(e!.message.includes(SUM_A) && e!.message.includes(SUM_B));
  t.deepEqual(
    r.seen.calls.filter((c) => c.id === 'untag').map((c) => c.command),
    ['docker image rm lab/sealed:1.0 >/dev/null 2>&1 || true'],
  );
});

test('live: an image the source lacks is warned and not streamed', async (t) => {
  const r = await runTask(carryImages, ctx({}), {
    manifest: manifestOf({ apps: [imageApp('sealed', 'lab/sealed:1.0')] }),
    answers: { 'source-has': { code: 1 } },
  });
  t.is(r.error, undefined);
  t.deepEqual(r.result, { carried: [], missing: ['lab/sealed:1.0'] });
  t.is(streams(r.seen).length, 0);
  t.regex(r.seen.warnings[0]!, /not in the source's engine/);
});

test("restore: images come from the archive's images/ and are checked against its SHA256SUMS", async (t) => {
  const c = ctx({ data: 'given' }, { archive: { path: '/backups/old-x' } });
  const m = manifestOf({
    apps: [imageApp('sealed', 'lab/sealed:1.0'), imageApp('gone', 'lab/gone:2')],
  });
  const good = await runTask(carryImages, c, {
    manifest: m,
    answers: {
      'archived-images': { stdout: `${SUM_A}  lab+sealed:1.0.tar\n` },
      'received-sum': { stdout: SUM_A },
    },
  });
  t.is(good.error, undefined);
  t.deepEqual(good.result, { carried: ['lab/sealed:1.0'], missing: ['lab/gone:2'] });
  const s = streams(good.seen);
  t.is(s.length, 1);
  t.is(s[0]!.host, 'new');
  t.regex(s[0]!.command, /^cat -- \/backups\/old-x\/images\/lab\+sealed:1\.0\.tar \| /);
  t.regex(good.seen.warnings.join('\n'), /lab\/gone:2 \(gone\) is not in the archive's images/);

  const bad = await runTask(carryImages, c, {
    manifest: m,
    answers: {
      'archived-images': { stdout: `${SUM_A}  lab+sealed:1.0.tar\n` },
      'received-sum': { stdout: SUM_B },
    },
  });
  const e = t.throws(rethrow(bad.error), { instanceOf: StopError });
  t.regex(e!.message, /checksum mismatch/);
  t.true(bad.seen.calls.some((x) => x.id === 'untag'));
});

test('save-images: image apps only unless services: true; an image not in the engine is warned', async (t) => {
  const inv = taskInventory();
  const sctx = (services: boolean) => ({
    step: { id: 'save-images', task: 'save-images', on: 'source', index: 3 },
    params: { services },
    host: inv.hosts.old,
    roles: { source: inv.hosts.old },
    inventory: inv,
    options: { runId: RUN },
  });
  const m = manifestOf({
    apps: [imageApp('sealed', 'lab/sealed:1.0'), imageApp('gone', 'lab/gone:2')],
    services: [service('db', 'postgres', '17.5')],
  });
  const answers = {
    'has-image': (c: { vars: Record<string, string> }) => ({
      code: c.vars.image === 'lab/gone:2' ? 1 : 0,
    }),
  };
  const r = await runTask(saveImages, sctx(false), { manifest: m, answers });
  t.is(r.error, undefined);
  const saved = r.seen.calls.filter((c) => c.id === 'save');
  t.deepEqual(
    saved.map((c) => c.vars.image),
    ['lab/sealed:1.0'],
  );
  t.true(
    saved[0]!.command.includes('/srv/ferry/old-20261123T100000Z/images/lab+sealed:1.0.tar.part'),
  );
  t.regex(r.seen.warnings[0]!, /lab\/gone:2 \(gone\) is not in the engine/);
  t.is(r.seen.calls.filter((c) => c.id === 'sums').length, 1);

  const all = await runTask(saveImages, sctx(true), { manifest: m, answers });
  t.deepEqual(
    all.seen.calls.filter((c) => c.id === 'save').map((c) => c.vars.image),
    ['lab/sealed:1.0', 'postgres:17.5'],
  );
});

/** A `docker` stand-in on PATH: `save IMAGE` prints the image's bytes, `load` keeps what it reads. */
function fakeDocker(dir: string): Record<string, string> {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'docker'),
    `#!/bin/bash\ncase "$1" in\n  save) printf 'image bytes of %s\\n' "$2"; head -c 300000 /dev/zero ;;\n  load) cat > "${dir}/loaded"; echo "Loaded image: x" ;;\n  *) exit 2 ;;\nesac\n`,
  );
  chmodSync(join(bin, 'docker'), 0o755);
  return { ...process.env, PATH: `${bin}:${process.env.PATH}` } as Record<string, string>;
}

function bash(cmd: string, env: Record<string, string>, input?: Buffer) {
  return spawnSync('bash', ['-c', `set -euo pipefail; ${cmd}`], {
    env,
    ...(input ? { input } : {}),
  });
}

test('save | load for real: both sums are the SHA-256 of the bytes; a backup folder checks with sha256sum -c', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-images-'));
  const env = fakeDocker(dir);
  const image = 'lab/sealed:1.0';
  const file = imageFile(image);
  const send = saveStreamCommand(image, join(dir, 'sent'), file).render();
  const recv = loadStreamCommand(join(dir, 'recv'), file).render();
  const r = bash(`{ ${send}; } | { ${recv}; }`, env);
  t.is(r.status, 0, r.stderr.toString());
  const sent = readFileSync(join(dir, 'sent', `${file}.sha256`), 'utf8').trim();
  const got = readFileSync(join(dir, 'recv', `${file}.sha256`), 'utf8').trim();
  t.regex(sent, /^[0-9a-f]{64}$/);
  t.is(sent, got);
  const direct = spawnSync('sha256sum', [join(dir, 'loaded')])
    .stdout.toString()
    .split(' ')[0];
  t.is(got, direct ?? '', 'the sum is of the bytes docker load read');

  const backup = join(dir, 'backup');
  mkdirSync(backup);
  const s = bash(
    `${saveImageCommand(backup, image, file).render()} && ${imageSumsCommand(backup).render()}`,
    env,
  );
  t.is(s.status, 0, s.stderr.toString());
  t.is(s.stdout.toString(), `${sent}  ${file}\n`);
  const check = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], {
    cwd: join(backup, 'images'),
  });
  t.is(check.status, 0, check.stdout.toString());
  // a flipped byte is what the sum is for
  const f = join(backup, 'images', file);
  const bytes = readFileSync(f);
  bytes[100] = bytes[100]! ^ 1;
  writeFileSync(f, bytes);
  t.not(
    spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: join(backup, 'images') })
      .status,
    0,
  );
});
