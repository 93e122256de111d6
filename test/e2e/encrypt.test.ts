/**
 * Encryption at rest, end to end on the lab: `ferry backup --fetch DIR
 * --encrypt` brings only ciphertext here (no secret value, no table row, no
 * tar header in any file under DIR), restore with a recipient's identity
 * (here an ssh-ed25519 key) brings every app up with its rows (the one
 * deployed with git:load-image too: its image travels as images/*.age), and a wrong
 * key, a flipped byte, and a flipped byte with its SHA256SUMS recomputed are
 * each refused with their own message, exit 1, before anything reaches the
 * target: its Dokku directories byte for byte as before, no stage left.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { imageFile } from '../../src/tasks/carry-images.js';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, seed } from '../lab/emulator/seed.js';

/** The seed's app deployed with git:load-image (its image on no registry). */
const IMAGE_APP = 'sealed';

import type { LabHost } from '../lab/lab.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'encrypt', hosts: ['old', 'new'] });
const state = mkdtempSync(join(tmpdir(), 'ferry-encrypt-'));

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    env: { ...process.env, FERRY_STATE_DIR: join(state, 'journal'), CI: '1' },
  });
}

async function sh(script: string): Promise<string> {
  const r = await run('bash', ['-c', `set -euo pipefail\n${script}`], { env: process.env });
  if (r.code !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Every entry of the Dokku directories with its content hash (see test/lab/landed.ts's digest). */
async function digest(host: LabHost): Promise<string[]> {
  const pg = "-path 'var/lib/dokku/services/*/*/data'";
  const out = await host.must(
    `cd / && find home/dokku var/lib/dokku -mindepth 1 \\( ${pg} -prune \\) -o -printf '%p %y %s %m %U %G %T@ %l\\n' | LC_ALL=C sort
     cd / && find home/dokku var/lib/dokku -mindepth 1 \\( ${pg} -prune \\) -o -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum`,
  );
  return out.trim().split('\n');
}

/** Runs a restore that must be refused before anything reaches `target`. */
async function refused(
  t: ExecutionContext,
  target: LabHost,
  args: string[],
  message: RegExp,
): Promise<void> {
  const before = await digest(target);
  const started = Date.now();
  const r = await ferry(args);
  const seconds = (Date.now() - started) / 1000;
  t.is(r.code, 1, `must be refused:\n${r.stdout}\n${r.stderr}`);
  t.regex(r.stderr, message);
  t.log(
    `refused in ${seconds.toFixed(1)} s: ${r.stderr.split('\n').find((l) => l.startsWith('error:'))}`,
  );
  t.deepEqual(await digest(target), before, 'the target changed');
  const stages = await target.must(
    'ls -d /home/dokku/.ferry-* /var/lib/dokku/.ferry-* /var/lib/dokku-ferry/stage/* 2>/dev/null || true',
  );
  t.is(stages, '', 'no stage on the target');
}

labTest(
  'backup --encrypt fetches only ciphertext; restore --identity brings it back; a wrong key and a flipped byte are refused before anything is sent',
  async (t) => {
    const l = lab();
    const old = l.host('old');
    const neu = l.host('new');
    await seed(old, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });
    const inv = join(state, 'inventory.yml');
    const doc = (await import('yaml')).parse(readFileSync(l.inventoryPath, 'utf8')) as Record<
      string,
      unknown
    >;
    writeFileSync(inv, stringify(doc));

    // Two recipients (an age X25519 key, and an ssh-ed25519 key with a comment in a .pub file), and a stranger.
    const keys = join(state, 'keys');
    await sh(
      `mkdir -m 0700 ${keys} && cd ${keys} && age-keygen -o x25519.key 2>/dev/null && age-keygen -o stranger.key 2>/dev/null && ssh-keygen -q -t ed25519 -N '' -C 'ops@example' -f ssh.key`,
    );
    const x25519 = await sh(`age-keygen -y ${keys}/x25519.key`);
    // the ssh key as a user gives it: the .pub file's path (a recipients file, as age -R reads)
    const sshPub = join(keys, 'ssh.key.pub');

    const fetchDir = join(state, 'fetched');
    const started = Date.now();
    const b = await ferry([
      'backup',
      'old',
      '--fetch',
      fetchDir,
      '--encrypt',
      x25519,
      '--encrypt',
      sshPub,
      '-i',
      inv,
    ]);
    t.is(b.code, 0, `ferry backup failed:\n${b.stdout}\n${b.stderr}`);
    t.log(`ferry backup --fetch --encrypt: ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const [name, ...others] = readdirSync(fetchDir);
    t.deepEqual(others, []);
    const here = join(fetchDir, name!);
    t.is(statSync(here).mode & 0o777, 0o700);
    const files = readdirSync(here).sort();
    t.deepEqual(files, ['SHA256SUMS', 'dokku.tar.zst.age', 'images', 'meta.tar.age']);
    // The image-deployed apps' images (the load-image one on no registry) travel encrypted, with their sums.
    t.is(statSync(join(here, 'images')).mode & 0o777, 0o700);
    const images = readdirSync(join(here, 'images'))
      .sort()
      .map((f) => `images/${f}`);
    // save-images keeps every image-deployed app's image (git:from-image and git:load-image).
    const saved = SEEDED.apps
      .filter((a) => a.deployedBy === 'git:from-image' || a.deployedBy === 'git:load-image')
      .map((a) => `images/${imageFile(a.source)}.age`);
    t.true(saved.length >= 2);
    t.deepEqual(images, ['images/SHA256SUMS.age', ...saved].sort());
    for (const f of [...files.filter((f) => f !== 'images'), ...images]) {
      t.is(statSync(join(here, f)).mode & 0o777, 0o600, f);
    }
    const summed = await sh(
      `cd ${here} && sha256sum -c --quiet SHA256SUMS && cut -c67- SHA256SUMS`,
    );
    t.deepEqual(summed.split('\n').sort(), ['dokku.tar.zst.age', ...images, 'meta.tar.age'].sort());
    for (const f of ['dokku.tar.zst.age', 'meta.tar.age', ...images]) {
      t.true(
        readFileSync(join(here, f)).subarray(0, 21).equals(Buffer.from('age-encryption.org/v1')),
      );
    }
    const size = statSync(join(here, 'dokku.tar.zst.age')).size;
    t.log(`ciphertext ${(size / 1048576).toFixed(1)} MiB`);

    // No plaintext anywhere here: not a config value, not a row, not a tar or zstd header.
    // The journal (for --resume) keeps the manifest, whose mount paths are not secrets.
    const values = SEEDED.apps.flatMap((a) => Object.values(a.config));
    const secrets = [
      ...values.filter((v) => !v.startsWith('/')),
      ...SEEDED.services.flatMap((s) => s.rows),
    ];
    t.true(secrets.length > 5);
    for (const [s, where] of [
      ...secrets.map((s) => [s, `${fetchDir} ${join(state, 'journal')}`] as const),
      ...[...values, 'ustar', 'PGDMP'].map((s) => [s, fetchDir] as const),
    ]) {
      const found = await sh(`grep -rlaF -- ${JSON.stringify(s)} ${where} || true`);
      t.is(found, '', `"${s}" found in plaintext here`);
    }
    const zstdMagic = await sh(
      `grep -rlaP '\\x28\\xb5\\x2f\\xfd' ${fetchDir} | while read -r f; do head -c 4 "$f" | od -An -tx1; done || true`,
    );
    t.notRegex(zstdMagic, /28 b5 2f fd/, 'a zstd frame at the start of a fetched file');

    // A wrong key: refused on age's header, nothing sent.
    await refused(
      t,
      neu,
      ['restore', here, 'new', '--identity', join(keys, 'stranger.key'), '-i', inv],
      /stranger\.key cannot decrypt .*meta\.tar\.age: it is not a key the copy was encrypted to/,
    );

    // A flipped byte in the middle of the archive: SHA256SUMS names it.
    const bad = join(state, 'bad');
    const flip = (dir: string) =>
      `f=${dir}/dokku.tar.zst.age && n=$(($(stat -c %s "$f") / 2)) && b=$(od -An -tu1 -j "$n" -N1 "$f" | tr -d ' ') && printf "\\\\$(printf %o $((b ^ 1)))" | dd of="$f" bs=1 seek="$n" conv=notrunc status=none`;
    await sh(`cp -a ${here} ${bad} && ${flip(bad)}`);
    await refused(
      t,
      neu,
      ['restore', bad, 'new', '--identity', join(keys, 'x25519.key'), '-i', inv],
      /bad\/dokku\.tar\.zst\.age is damaged: its sha256 is not the one in .*SHA256SUMS/,
    );

    // The same with SHA256SUMS made to agree: age's authentication still refuses it.
    await sh(`cd ${bad} && sha256sum meta.tar.age dokku.tar.zst.age > SHA256SUMS`);
    await refused(
      t,
      neu,
      ['restore', bad, 'new', '--identity', join(keys, 'x25519.key'), '-i', inv],
      /dokku\.tar\.zst\.age is damaged or was altered: age could not authenticate it/,
    );

    // The right key (the ssh one): every app answers, every row is there.
    const r = await ferry(['restore', here, 'new', '--identity', join(keys, 'ssh.key'), '-i', inv]);
    t.is(r.code, 0, `ferry restore failed:\n${r.stdout}\n${r.stderr}`);
    const vhost = (await neu.must('cat /home/dokku/VHOST')).trim();
    // Every app, the load-image one too: its image came out of the encrypted copy.
    const sealed = SEEDED.apps.find((a) => a.name === IMAGE_APP)!.source;
    t.true(
      (r.stdout + r.stderr).includes(`${sealed}: loaded from the archive`),
      `${sealed} was not loaded from the encrypted copy`,
    );
    for (const app of SEEDED.apps) {
      const a = await neu.exec(`curl -sS -m 10 -H 'Host: ${app.name}.${vhost}' http://127.0.0.1/`);
      t.true(a.stdout.includes(app.answers), `${app.name} answers: ${a.stdout}${a.stderr}`);
    }
    const notes = await neu.must(`curl -sS -m 10 -H 'Host: notes.${vhost}' http://127.0.0.1/`);
    for (const row of SEEDED.services[0]!.rows) t.true(notes.includes(row), `row "${row}"`);
  },
);
