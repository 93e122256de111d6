/**
 * extract's script, run for real in a private mount namespace where
 * /home/dokku, /var/lib/dokku and /var/lib/dokku-ferry are bind mounts of
 * temp folders: mount points, as on the lab hosts and many real servers.
 * Needs root (unshare); skipped with one line otherwise.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { moveIntoPlaceCommand } from '../../src/tasks/extract.js';
import { stagePaths } from '../../src/tasks/stage.js';

const RUN = '20261123T100000Z';
const root = process.getuid?.() === 0 && existsSync('/home/dokku') && existsSync('/var/lib/dokku');
const rootTest = root ? test.serial : test.skip;
if (!root)
  console.log(
    'extract sandbox tests skipped: need root and /home/dokku, /var/lib/dokku to mount over',
  );

/** Builds a target (old data) and a stage (new data) in `dir`, as transfer leaves them. */
function layout(dir: string): { home: string; lib: string; ferry: string } {
  const s = stagePaths(RUN);
  const home = join(dir, 'home');
  const lib = join(dir, 'lib');
  const ferry = join(dir, 'ferry');
  const put = (base: string, rel: string, text: string) => {
    mkdirSync(join(base, rel, '..'), { recursive: true });
    writeFileSync(join(base, rel), text);
  };
  put(home, 'VHOST', 'new.lab\n');
  put(home, '.sshcommand', 'old-cmd\n');
  put(lib, 'config/--global/ENV', 'OLD=1\n');
  put(lib, 'plugins/available/x', 'old');
  put(lib, 'STABLE_VERSION', '0.38.27\n');
  const hs = join(home, s.home.slice('/home/dokku/'.length));
  const vs = join(lib, s.libTree.slice('/var/lib/dokku/'.length));
  put(hs, 'VHOST', 'old.lab\n');
  put(hs, 'api/HEAD', 'ref: refs/heads/main\n');
  put(vs, 'config/api/ENV', 'NEW=1\n');
  put(vs, 'data/storage/api/f', 'file');
  put(vs, 'services/postgres/db/IMAGE', 'postgres\n');
  put(vs, 'plugins/available/x', 'new');
  mkdirSync(join(ferry, 'stage', RUN, 'meta'), { recursive: true });
  spawnSync('chown', ['-R', '4242:4242', join(vs, 'services')]);
  return { home, lib, ferry };
}

function runScript(dir: string, pre = ''): { code: number | null; stdout: string; stderr: string } {
  const l = { home: join(dir, 'home'), lib: join(dir, 'lib'), ferry: join(dir, 'ferry') };
  const script = `set -euo pipefail
mount --bind ${l.home} /home/dokku
mount --bind ${l.lib} /var/lib/dokku
mkdir -p /var/lib/dokku-ferry && mount --bind ${l.ferry} /var/lib/dokku-ferry
${pre}
bash -c 'set -euo pipefail
'"$(cat ${join(dir, 'script')})"`;
  writeFileSync(join(dir, 'script'), moveIntoPlaceCommand(RUN).render());
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], {
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

rootTest('moves the stage into place by renames on mount points, keeps the old aside', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-extract-'));
  try {
    const l = layout(dir);
    const r = runScript(dir);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /ferry-moved \d+/);
    const read = (p: string) => readFileSync(p, 'utf8');
    t.is(read(join(l.home, 'VHOST')), 'old.lab\n');
    t.is(read(join(l.home, 'api/HEAD')), 'ref: refs/heads/main\n');
    t.false(existsSync(join(l.home, '.sshcommand')), 'the old child went aside');
    t.is(read(join(l.home, `.ferry-pre-${RUN}/.sshcommand`)), 'old-cmd\n');
    t.is(read(join(l.home, `.ferry-pre-${RUN}/VHOST`)), 'new.lab\n');
    t.is(read(join(l.lib, 'config/api/ENV')), 'NEW=1\n');
    t.is(read(join(l.lib, `.ferry-pre-${RUN}/config/--global/ENV`)), 'OLD=1\n');
    t.is(read(join(l.lib, 'plugins/available/x')), 'new');
    t.is(read(join(l.lib, 'STABLE_VERSION')), '0.38.27\n', 'paths outside the seed five stay');
    t.is(statSync(join(l.lib, 'services/postgres/db/IMAGE')).uid, 4242);
    t.false(existsSync(join(l.home, `.ferry-stage-${RUN}`)));
    t.false(existsSync(join(l.lib, `.ferry-stage-${RUN}`)));
    t.true(existsSync(join(l.ferry, 'stage', RUN, 'extracted')));
    const again = runScript(dir);
    t.is(again.code, 0);
    t.regex(again.stdout, /ferry-already-extracted/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

rootTest('a rename that fails undoes every rename before it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-extract-'));
  try {
    const l = layout(dir);
    // /var/lib/dokku/.ferry-pre-RUN/plugins already holds something: `mv -T` onto it fails late.
    mkdirSync(join(l.lib, `.ferry-pre-${RUN}/plugins/keep`), { recursive: true });
    const r = runScript(dir);
    t.is(r.code, 1);
    t.regex(r.stderr, /every rename was undone/);
    const read = (p: string) => readFileSync(p, 'utf8');
    t.is(read(join(l.home, 'VHOST')), 'new.lab\n', 'home as before');
    t.is(read(join(l.home, '.sshcommand')), 'old-cmd\n');
    t.is(read(join(l.lib, 'config/--global/ENV')), 'OLD=1\n', 'config as before');
    t.false(existsSync(join(l.lib, 'config/api')));
    t.is(
      read(join(l.lib, `.ferry-stage-${RUN}/var/lib/dokku/config/api/ENV`)),
      'NEW=1\n',
      'stage kept',
    );
    t.is(read(join(l.home, `.ferry-stage-${RUN}/VHOST`)), 'old.lab\n');
    t.false(existsSync(join(l.ferry, 'stage', RUN, 'extracted')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

rootTest('refuses a seed path that is a mount point of its own, before moving anything', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-extract-'));
  try {
    const l = layout(dir);
    const r = runScript(dir, `mount --bind ${join(l.lib, 'config')} /var/lib/dokku/config`);
    t.is(r.code, 1);
    t.regex(r.stderr, /\/var\/lib\/dokku\/config is a mount point/);
    t.is(readFileSync(join(l.home, 'VHOST'), 'utf8'), 'new.lab\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

rootTest(
  'a disk that fills under the move log mid-extract: every rename undone, the cause said',
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-extract-'));
    try {
      const l = layout(dir);
      // Enough children of /home/dokku that the move log outgrows its first page.
      const names = Array.from({ length: 80 }, (_, i) => `app-with-a-rather-long-name-${i}`);
      for (const n of names) mkdirSync(join(l.home, n));
      // ferry's folder: a small tmpfs with two free pages (home-attrs, the log's first page).
      const r = runScript(
        dir,
        `mount -t tmpfs -o size=64k ferry-full /var/lib/dokku-ferry
mkdir -p /var/lib/dokku-ferry/stage/${RUN}/meta
dd if=/dev/zero of=/var/lib/dokku-ferry/filler bs=4k count=14 status=none`,
      );
      t.is(r.code, 1, r.stdout);
      t.regex(r.stderr, /No space left on device/);
      t.regex(r.stderr, /every rename was undone/);
      const read = (p: string) => readFileSync(p, 'utf8');
      t.is(read(join(l.home, 'VHOST')), 'new.lab\n', 'home as before');
      t.is(read(join(l.home, '.sshcommand')), 'old-cmd\n');
      for (const n of names) t.true(existsSync(join(l.home, n)), `${n} back in place`);
      t.deepEqual(readdirSync(join(l.home, `.ferry-pre-${RUN}`)), [], 'nothing left aside');
      t.is(read(join(l.lib, 'config/--global/ENV')), 'OLD=1\n');
      t.is(read(join(l.home, `.ferry-stage-${RUN}/VHOST`)), 'old.lab\n', 'stage kept');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

rootTest(
  "the target's own core plugins stay linked and enabled; a link to a plugin this release lacks goes",
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-extract-'));
    try {
      const l = layout(dir);
      const vs = join(l.lib, stagePaths(RUN).libTree.slice('/var/lib/dokku/'.length));
      // This host's release ships `builds` and `apps`; the source's (older) had `apps` and a plugin since dropped.
      for (const p of ['apps', 'builds'])
        mkdirSync(join(l.lib, 'core-plugins/available', p), { recursive: true });
      mkdirSync(join(vs, 'plugins/enabled'), { recursive: true });
      const ln = (to: string, at: string) => spawnSync('ln', ['-s', to, at]);
      ln('/var/lib/dokku/core-plugins/available/apps', join(vs, 'plugins/available/apps'));
      ln('/var/lib/dokku/plugins/available/apps', join(vs, 'plugins/enabled/apps'));
      ln('/var/lib/dokku/core-plugins/available/dropped', join(vs, 'plugins/available/dropped'));
      ln('/var/lib/dokku/plugins/available/dropped', join(vs, 'plugins/enabled/dropped'));
      const r = runScript(dir);
      t.is(r.code, 0, r.stderr);
      t.regex(r.stdout, /^ferry-core-linked builds$/m);
      t.notRegex(r.stdout, /ferry-core-linked apps/, 'the source had it: its own link stays');
      const link = (p: string) =>
        spawnSync('readlink', [join(l.lib, p)], { encoding: 'utf8' }).stdout.trim();
      t.is(link('plugins/available/builds'), '/var/lib/dokku/core-plugins/available/builds');
      t.is(link('plugins/enabled/builds'), '/var/lib/dokku/plugins/available/builds');
      t.is(link('plugins/available/apps'), '/var/lib/dokku/core-plugins/available/apps');
      t.false(existsSync(join(l.lib, 'plugins/available/dropped')));
      t.is(link('plugins/enabled/dropped'), '', 'the dangling enabled link is gone too');
      t.regex(r.stdout, /ferry-dangling-removed \/var\/lib\/dokku\/plugins\/available\/dropped/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
