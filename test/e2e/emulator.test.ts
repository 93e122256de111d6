/**
 * The Dokku CLI emulator on real lab hosts: git push over the dokku user's
 * forced command, HTTP through the host's port 80, ps:stop/start, apps:list,
 * version-specific ENV paths, and the seed's caveat that image- and
 * archive-deployed apps fail ps:rebuild on a new host after a tar restore.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labTest, useLab } from '../lab/ava.js';
import { publishRegistry } from '../lab/emulator/seed.js';
import { type Lab, type LabHost, registryDir } from '../lab/lab.js';

const lab = useLab({
  instance: 'emulator-test',
  hosts: ['old', 'new', { name: 'legacy', dokkuVersion: '0.37.9' }],
});

const HELLO = fileURLToPath(
  new URL('../../../test/lab/emulator/fixtures/apps/hello', import.meta.url),
);

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Promise<Out> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: { ...process.env, ...env }, cwd, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function sshArgs(l: Lab): string[] {
  return ['-i', l.keyPath, '-o', `UserKnownHostsFile=${l.knownHostsPath}`, '-o', 'BatchMode=yes'];
}

/** `ssh dokku@host <command>`, i.e. through sshcommand's forced command. */
function dokkuSsh(l: Lab, h: LabHost, command: string): Promise<Out> {
  return run('ssh', [...sshArgs(l), '--', `dokku@${h.address}`, command]);
}

function httpGet(
  address: string,
  host: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const req = request(
      { host: address, port: 80, path: '/', headers: { host }, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', () => resolve({ status: 0, body: '', headers: {} }));
    req.end();
  });
}

/** A local clone of the hello fixture with a `dokku` remote pointing at host h. */
function helloRepo(l: Lab, h: LabHost, app: string): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), 'emu-hello-'));
  cpSync(HELLO, dir, { recursive: true });
  const env = { GIT_SSH_COMMAND: `ssh ${sshArgs(l).join(' ')}` };
  return { dir, env: { ...env, GIT_REMOTE: `dokku@${h.address}:${app}` } };
}

async function git(dir: string, env: NodeJS.ProcessEnv, args: string[]): Promise<Out> {
  return run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.test', ...args], env, dir);
}

labTest('git push deploys the app, which answers through port 80 by Host header', async (t) => {
  const l = lab();
  const old = l.host('old');
  const { dir, env } = helloRepo(l, old, 'hello');
  try {
    await git(dir, env, ['init', '-q', '-b', 'main']);
    await git(dir, env, ['add', '-A']);
    await git(dir, env, ['commit', '-qm', 'hello']);
    const push = await git(dir, env, ['push', String(env.GIT_REMOTE), 'main']);
    t.is(push.code, 0, push.stderr);
    t.regex(push.stderr, /Set main as deploy-branch/);
    t.regex(push.stderr, /=====> Application deployed:/);
    const res = await httpGet(old.address, 'hello.old.lab');
    t.is(res.status, 200);
    t.regex(res.body, /Hello from the ferry lab/);
    t.is((await httpGet(old.address, 'nope.old.lab')).status, 404);
    // GIT_REV was set quietly, deploy source recorded
    const rev = (await git(dir, env, ['rev-parse', 'HEAD'])).stdout.trim();
    t.is((await dokkuSsh(l, old, 'config:get hello GIT_REV')).stdout, `${rev}\n`);
    t.is(await old.must('cat /var/lib/dokku/config/apps/hello/deploy-source'), 'git-push');
    // git pull / ls-remote through git-upload-pack
    const ls = await run('git', ['ls-remote', String(env.GIT_REMOTE)], env);
    t.regex(ls.stdout, new RegExp(`${rev}\\s+refs/heads/main`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

labTest(
  'ps:stop stops serving (502) and keeps CONTAINER files; ps:start brings it back',
  async (t) => {
    const l = lab();
    const old = l.host('old');
    const stop = await dokkuSsh(l, old, 'ps:stop hello');
    t.is(stop.code, 0);
    t.is(stop.stdout, '-----> Stopping hello\n');
    t.is((await httpGet(old.address, 'hello.old.lab')).status, 502);
    t.is(await old.must('cat /var/lib/dokku/config/ps/hello/restore'), 'false');
    t.regex(await old.must('cat /home/dokku/hello/CONTAINER.web.1'), /^[0-9a-f]{64}\n$/);
    const report = await dokkuSsh(l, old, 'ps:report hello --running');
    t.is(report.stdout, 'false\n');
    const start = await dokkuSsh(l, old, 'ps:start hello');
    t.is(start.code, 0);
    t.regex(start.stderr, /App has been detected as not running, releasing/);
    t.regex(start.stdout, /-----> Releasing hello\.\.\./);
    t.is((await httpGet(old.address, 'hello.old.lab')).status, 200);
    t.is(await old.must('cat /var/lib/dokku/config/ps/hello/restore'), 'true');
    const again = await dokkuSsh(l, old, 'ps:start hello');
    t.regex(again.stderr, / ! {5}App hello already running/);
  },
);

labTest('apps:list, apps:exists and unknown commands', async (t) => {
  const l = lab();
  const old = l.host('old');
  await old.must('dokku apps:create zeta');
  const list = await dokkuSsh(l, old, 'apps:list');
  t.is(list.code, 0);
  t.is(list.stdout, '=====> My Apps\nhello\nzeta\n');
  t.is((await dokkuSsh(l, old, '--quiet apps:list')).stdout, 'hello\nzeta\n');
  t.is((await dokkuSsh(l, old, 'apps:list --format json')).stdout, '["hello","zeta"]\n');
  const missing = await dokkuSsh(l, old, 'apps:exists nope');
  t.is(missing.code, 20);
  t.is(missing.stderr, ' !     App nope does not exist\n');
  const unknown = await dokkuSsh(l, old, 'frobnicate');
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /`frobnicate` is not a dokku command\./);
  const legacy = l.host('legacy');
  const oldJson = await dokkuSsh(l, legacy, 'apps:list --format json');
  t.is(oldJson.code, 2, 'apps:list has no --format before 0.38.21');
  const empty = await dokkuSsh(l, legacy, 'apps:list');
  t.is(empty.stdout, '=====> My Apps\n');
  t.is(empty.stderr, " !     You haven't deployed any applications yet\n");
});

labTest('config:set writes the ENV file where the version keeps it', async (t) => {
  const l = lab();
  const old = l.host('old');
  const legacy = l.host('legacy');
  await legacy.must('dokku apps:create app1');
  const set = await dokkuSsh(l, old, 'config:set --no-restart zeta PORT=007 NAME="a b"');
  t.is(set.code, 0);
  t.is(set.stdout, '-----> Setting config vars\n       NAME:  a b\n       PORT:  007\n');
  t.is(await old.must('cat /var/lib/dokku/config/zeta/ENV'), 'NAME="a b"\nPORT=7\n');
  t.is(await old.must('stat -c "%a %U" /var/lib/dokku/config/zeta/ENV'), '600 dokku\n');
  t.is((await old.exec('test -e /home/dokku/zeta/ENV')).code, 1);
  await dokkuSsh(l, legacy, 'config:set --no-restart app1 PORT=007');
  // 0.37.9 uses godotenv 1.5.1 too (since 0.37.8) but keeps the file in the app root
  t.is(await legacy.must('cat /home/dokku/app1/ENV'), 'PORT=7\n');
  t.is((await legacy.exec('test -e /var/lib/dokku/config/app1/ENV')).code, 1);
});

labTest(
  'after a tar copy to a new host, image and archive apps fail ps:rebuild until redeployed',
  async (t) => {
    const l = lab();
    const old = l.host('old');
    const neu = l.host('new');
    // The image and the archive come from the lab registry: published here, not
    // left to whichever other test happens to seed first.
    const { pgVersion } = JSON.parse(await old.must('cat /var/lib/docker/lab.json')) as {
      pgVersion: string;
    };
    publishRegistry(registryDir(lab().instance), pgVersion);
    await old.must('dokku apps:create who && dokku git:from-image who lab/whoami:1.0');
    await old.must('dokku apps:create landing');
    await old.must(
      'dokku git:from-archive landing file:///var/lib/ferry-lab/registry/archives/landing.tar',
    );
    t.is((await httpGet(old.address, 'who.old.lab')).status, 200);
    t.is((await httpGet(old.address, 'landing.old.lab')).status, 200);
    // the seed's backup and restore, straight from one host to the other
    const copy = await run('bash', [
      '-c',
      `set -o pipefail; nsenter -t ${old.pid} -a -- tar -cf - /home/dokku /var/lib/dokku/config /var/lib/dokku/data /var/lib/dokku/services /var/lib/dokku/plugins | nsenter -t ${neu.pid} -a -- tar -xf - -C /`,
    ]);
    t.is(copy.code, 0, copy.stderr);
    // the engine did not travel: containers are missing, the app is not running
    const status = await neu.must('dokku ps:report hello --status-web.1');
    // ps/report.go addStatusFlags: "missing (CID: <first 11 of the id>)"
    t.regex(status, /^missing \(CID: [0-9a-f]{11}\)\n$/);
    // git-pushed apps rebuild fine
    const hello = await neu.exec('dokku ps:rebuild hello');
    t.is(hello.code, 0, hello.stdout);
    t.is((await httpGet(neu.address, 'hello.old.lab')).status, 200);
    // image and archive apps do not
    const who = await neu.exec('dokku ps:rebuild who');
    t.not(who.code, 0);
    t.regex(who.stdout, /pull access denied|lab\/whoami/);
    const landing = await neu.exec('dokku ps:rebuild landing');
    t.not(landing.code, 0);
    t.regex(landing.stdout, /missing on this host/);
    // ... until deployed again the same way: the source did not change, so Dokku
    // says so and exits 1, but the engine now has what ps:rebuild needs
    const again = await neu.exec('dokku git:from-image who lab/whoami:1.0');
    t.regex(again.stdout, /-----> Pulling image/);
    t.regex(again.stdout, /No changes detected, skipping git commit/);
    t.is(again.code, 1);
    t.is((await neu.exec('dokku ps:rebuild who')).code, 0);
    t.is((await httpGet(neu.address, 'who.old.lab')).status, 200);
    const archive = await neu.exec(
      'dokku git:from-archive landing file:///var/lib/ferry-lab/registry/archives/landing.tar',
    );
    t.is(archive.code, 1);
    t.is((await neu.exec('dokku ps:rebuild landing')).code, 0);
    t.is((await httpGet(neu.address, 'landing.old.lab')).status, 200);
  },
);
