/**
 * Images no registry has, end to end on the lab: an app deployed with
 * `git:load-image` on the source answers on the target after `ferry
 * migrate` (its image carried docker save | docker load) and after `ferry
 * backup` + `ferry restore` (its image in the archive's images/); an
 * archive whose image file was changed is refused by its checksum.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { labTest, useLab } from '../lab/ava.js';
import { writeImageArchive } from '../lab/emulator/engine.js';
import type { LabHost } from '../lab/lab.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'e2e-images', hosts: ['old', 'new', 'scratch'] });
const state = mkdtempSync(join(tmpdir(), 'ferry-e2e-images-'));
const IMAGE = 'lab/sealed:1.0';
const ANSWER = 'sealed image, loaded with git:load-image';
let deploying: Promise<void> | undefined;

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    env: { ...process.env, FERRY_STATE_DIR: state, CI: '1' },
  });
}

/** A `docker save` archive of a one-file web app that exists in no registry. */
function sealedArchive(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sealed-'));
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  writeFileSync(join(tree, 'Procfile'), 'web: node sealed.js\n');
  writeFileSync(
    join(tree, 'sealed.js'),
    `require('node:http').createServer((_q, s) => s.end(${JSON.stringify(`${ANSWER}\n`)})).listen(Number(process.env.PORT || 5000));\n`,
  );
  const stage = join(dir, 'stage');
  mkdirSync(stage);
  writeImageArchive([{ ref: IMAGE, tree }], join(dir, 'sealed.tar'), stage);
  return readFileSync(join(dir, 'sealed.tar'));
}

/** Deploys `sealed` on old with git:load-image (once for every test). */
async function setUp(t: ExecutionContext): Promise<LabHost> {
  const old = lab().host('old');
  deploying ??= (async () => {
    await old.must('dokku apps:create sealed');
    await old.must(`dokku git:load-image sealed ${IMAGE}`, { input: sealedArchive() });
  })();
  await deploying;
  t.regex(await old.must('cat /var/lib/dokku/config/apps/sealed/deploy-source'), /docker-image/);
  return old;
}

async function answers(t: ExecutionContext, host: LabHost): Promise<void> {
  const vhost = (await host.must('cat /home/dokku/VHOST')).trim();
  const r = await host.exec(`curl -sS -m 10 -H 'Host: sealed.${vhost}' http://127.0.0.1/`);
  t.true(r.stdout.includes(ANSWER), `sealed on ${host.name} answers: ${r.stdout}${r.stderr}`);
}

const hasImage = (h: LabHost) =>
  h.exec(`docker image inspect ${IMAGE} >/dev/null 2>&1`).then((r) => r.code === 0);

labTest(
  'a git:load-image app answers on the target after migrate: its image was carried',
  async (t) => {
    const old = await setUp(t);
    await answers(t, old);
    const neu = lab().host('new');
    t.false(await hasImage(neu), 'no registry has the image: new cannot pull it');
    const r = await ferry([
      'migrate',
      'old',
      'new',
      '-i',
      lab().inventoryPath,
      '--leave-source-running',
    ]);
    t.is(r.code, 0, `ferry migrate failed:\n${r.stdout}\n${r.stderr}`);
    t.true(await hasImage(neu));
    await answers(t, neu);
    t.regex(
      await neu.must('cat /var/lib/dokku/config/apps/sealed/deploy-source-metadata'),
      /lab\/sealed:1\.0/,
    );
  },
);

labTest(
  'backup keeps the image in images/; a changed image file is refused, the good archive restores',
  async (t) => {
    await setUp(t);
    const scratch = lab().host('scratch');
    const dir = mkdtempSync(join(tmpdir(), 'ferry-images-fetch-'));
    const b = await ferry(['backup', 'old', '--fetch', dir, '-i', lab().inventoryPath]);
    t.is(b.code, 0, `ferry backup failed:\n${b.stdout}\n${b.stderr}`);
    const archiveDir = join(dir, readdirSync(dir)[0]!);
    const images = join(archiveDir, 'images');
    t.deepEqual(readdirSync(images).sort(), ['SHA256SUMS', 'lab+sealed:1.0.tar']);
    t.regex(
      readFileSync(join(images, 'SHA256SUMS'), 'utf8'),
      /^[0-9a-f]{64} {2}lab\+sealed:1\.0\.tar\n$/,
    );

    // A copy whose image file has one byte changed in its middle.
    const bad = mkdtempSync(join(tmpdir(), 'ferry-images-bad-'));
    const cp = await run('bash', [
      '-c',
      `cp -a "$1"/. "$2"/ && f="$2/images/lab+sealed:1.0.tar" && n=$(($(stat -c %s "$f") / 2)) && printf 'X' | dd of="$f" bs=1 seek="$n" conv=notrunc status=none`,
      'cp',
      archiveDir,
      bad,
    ]);
    t.is(cp.code, 0, cp.stderr);
    const r1 = await ferry(['restore', bad, 'scratch', '-i', lab().inventoryPath]);
    t.is(r1.code, 1, `a changed image must be refused:\n${r1.stdout}\n${r1.stderr}`);
    t.regex(`${r1.stdout}\n${r1.stderr}`, /image lab\/sealed:1\.0: checksum mismatch/);
    t.false(await hasImage(scratch), 'the unverified image was untagged again');
    t.is(
      (await scratch.must('ls /var/lib/dokku/config/apps 2>/dev/null || true')).trim(),
      '',
      'nothing was extracted',
    );

    const r2 = await ferry(['restore', archiveDir, 'scratch', '-i', lab().inventoryPath]);
    t.is(r2.code, 0, `ferry restore failed:\n${r2.stdout}\n${r2.stderr}`);
    await answers(t, scratch);
  },
);
