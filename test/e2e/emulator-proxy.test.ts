/**
 * The emulator's proxies on real lab hosts, as Dokku ships them: nginx (the
 * lab's `dokku --lab-proxy`) routes only apps whose proxy type is nginx;
 * `proxy:set --global caddy` hands the apps to Dokku's caddy container,
 * which `caddy:start` runs and which routes by the labels app containers
 * get at deploy; nginx:stop/start; caddy:report/set/show-config as 0.38.27
 * and 0.37.9 print them. After /home/dokku and /var/lib/dokku are copied to
 * a fresh host (tar, as the backup doc does), the apps are unreachable until
 * caddy:start, or until ps:restore, whose pre-restore trigger starts caddy.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { labTest, useLab } from '../lab/ava.js';
import { publishRegistry } from '../lab/emulator/seed.js';
import { type Lab, type LabHost, registryDir } from '../lab/lab.js';

const lab = useLab({
  instance: 'emulator-proxy-test',
  hosts: ['old', 'new', 'third', { name: 'legacy', dokkuVersion: '0.37.9' }],
});

const HELLO = fileURLToPath(
  new URL('../../../test/lab/emulator/fixtures/apps/hello', import.meta.url),
);

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  return new Promise<Out>((resolve) => {
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

interface Http {
  /** 0: no connection. */
  status: number;
  body: string;
  server: string;
}

/** GET http://ADDRESS:80/ with a Host header, from the controller. */
function get(address: string, host: string): Promise<Http> {
  return new Promise((resolve) => {
    const req = request(
      { host: address, port: 80, path: '/', headers: { host }, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, server: String(res.headers.server ?? '') }),
        );
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '', server: '' }));
    req.end();
  });
}

/** Deploy the hello fixture to `app` on `h` by git push, as the dokku user. */
async function pushHello(t: ExecutionContext, l: Lab, h: LabHost, app: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'emu-proxy-'));
  try {
    cpSync(HELLO, dir, { recursive: true });
    const env = { GIT_SSH_COMMAND: l.gitSshCommand() };
    const git = (args: string[]) =>
      run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.test', ...args], env, dir);
    await git(['init', '-q', '-b', 'main']);
    await git(['add', '-A']);
    await git(['commit', '-qm', 'hello']);
    const push = await git(['push', '-q', `dokku@${h.address}:${app}`, 'main']);
    t.is(push.code, 0, push.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Copy /home/dokku and /var/lib/dokku from one host to another, as the backup doc's tar does. */
async function copyDokku(t: ExecutionContext, from: LabHost, to: LabHost): Promise<void> {
  const copy = await run('bash', [
    '-c',
    `set -o pipefail; nsenter -t ${from.pid} -a -- tar -cf - /home/dokku /var/lib/dokku | nsenter -t ${to.pid} -a -- tar -xf - -C /`,
  ]);
  t.is(copy.code, 0, copy.stderr);
}

/** The caddy compose container's record in the host's engine, or undefined. */
async function caddyRecord(
  h: LabHost,
): Promise<{ name: string; pid: number; state: string } | undefined> {
  const r = await h.exec(
    'grep -l \'"name": "caddy-caddy-1"\' /var/lib/docker/containers/*/config.json | head -1 | xargs -r cat',
  );
  return r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout);
}

labTest(
  'with caddy selected, apps answer through caddy and nginx routes only nginx apps',
  async (t) => {
    const l = lab();
    const old = l.host('old');
    const { pgVersion } = JSON.parse(await old.must('cat /var/lib/docker/lab.json')) as {
      pgVersion: string;
    };
    // the caddy-docker-proxy image is pulled from the lab registry
    publishRegistry(registryDir(lab().instance), pgVersion);
    await pushHello(t, l, old, 'hello');
    let r = await get(old.address, 'hello.old.lab');
    t.is(r.status, 200);
    t.is(r.server, 'nginx');
    t.regex(r.body, /Hello from the ferry lab/);

    // nginx:stop and nginx:start stop and start the host's nginx, and say so in proxy-status
    t.is((await old.exec('dokku nginx:stop')).code, 0);
    t.is(await old.must('cat /var/lib/dokku/config/nginx/--global/proxy-status'), 'stopped');
    t.is((await get(old.address, 'hello.old.lab')).status, 0);
    t.is((await old.exec('dokku nginx:start')).code, 0);
    t.is(await old.must('cat /var/lib/dokku/config/nginx/--global/proxy-status'), 'started');
    t.is((await get(old.address, 'hello.old.lab')).server, 'nginx');

    const set = await old.exec('dokku proxy:set --global caddy');
    t.is(set.code, 0, set.stderr);
    t.is(set.stdout, '=====> Setting type to caddy\n');
    t.is(await old.must('cat /var/lib/dokku/config/proxy/--global/type'), 'caddy');
    t.is(await old.must('dokku proxy:report hello --proxy-computed-type'), 'caddy\n');
    t.is(await old.must('dokku proxy:report hello --proxy-type'), '\n');
    // nginx has no server block for a caddy app any more
    r = await get(old.address, 'hello.old.lab');
    t.is(r.status, 404);
    t.is(r.server, 'nginx');

    // caddy cannot publish port 80 while nginx holds it
    const busy = await old.exec('dokku caddy:start');
    t.is(busy.code, 1);
    t.regex(busy.stderr, /listen tcp4 0\.0\.0\.0:80: bind: address already in use/);
    t.regex(busy.stderr, / ! {5}Unable to start compose project: /);
    t.is((await caddyRecord(old))?.state, 'created');

    await old.must('dokku nginx:stop');
    const start = await old.exec('dokku caddy:start');
    t.is(start.code, 0, start.stderr);
    t.regex(start.stderr, /^ Container caddy-caddy-1 {2}Started$/m);
    t.is(await old.must('cat /var/lib/dokku/config/caddy/--global/proxy-status'), 'started');
    const rec = await caddyRecord(old);
    t.is(rec?.state, 'running');
    t.is((await old.exec(`kill -0 ${rec?.pid}`)).code, 0);
    // hello was deployed for nginx: its container has no caddy labels, caddy has no route
    r = await get(old.address, 'hello.old.lab');
    t.is(r.server, 'Caddy');
    t.is(r.status, 200);
    t.is(r.body, '');
    const rebuild = await old.exec('dokku ps:rebuild hello');
    t.is(rebuild.code, 0, rebuild.stdout);
    t.regex(rebuild.stdout, /-----> Routing app via caddy/);
    r = await get(old.address, 'hello.old.lab');
    t.is(r.status, 200);
    t.is(r.server, 'Caddy');
    t.regex(r.body, /Hello from the ferry lab/);
    // already running: compose says so and changes nothing
    const again = await old.exec('dokku caddy:start');
    t.is(again.stderr, ' Container caddy-caddy-1  Running\n');
    t.is((await caddyRecord(old))?.pid, rec?.pid);
    // nginx cannot start while caddy holds port 80
    const ngx = await old.exec('dokku nginx:start');
    t.is(ngx.code, 1);
    t.regex(ngx.stderr, /Job for nginx\.service failed/);
    // an app may go back to nginx: its own type wins over the global one
    await old.must('dokku proxy:set hello nginx');
    t.is(await old.must('cat /var/lib/dokku/config/proxy/hello/type'), 'nginx');
    t.is(await old.must('dokku proxy:report hello --proxy-computed-type'), 'nginx\n');
    await old.must('dokku proxy:set hello type');
    t.is((await old.exec('test -e /var/lib/dokku/config/proxy/hello/type')).code, 1);
  },
);

labTest('caddy:report, caddy:set and caddy:show-config (0.38.27 and 0.37.9)', async (t) => {
  const l = lab();
  const old = l.host('old');
  const report = await old.must('dokku caddy:report hello');
  t.regex(report, /^=====> hello caddy information$/m);
  t.regex(report, /^ {7}Caddy computed image: {14}lucaslorentz\/caddy-docker-proxy:2\.13$/m);
  t.regex(report, /^ {7}Caddy computed log level: {10}ERROR$/m);
  t.regex(report, /^ {7}Caddy tls internal: {16}$/m);
  t.is(report.trim().split('\n').length, 14);
  const set = await old.exec('dokku caddy:set --global log-level info');
  t.is(set.stdout, '=====> Setting log-level to info\n');
  t.is(await old.must('cat /var/lib/dokku/config/caddy/--global/log-level'), 'info');
  t.is(await old.must('dokku caddy:report --global --caddy-computed-log-level'), 'INFO\n');
  t.is(await old.must('dokku caddy:report --global --caddy-global-log-level'), 'info\n');
  const json = JSON.parse(await old.must('dokku caddy:report hello --format json')) as Record<
    string,
    string
  >;
  t.is(json['computed-polling-interval'], '5s');
  t.is(json['tls-internal'], '');
  const perApp = await old.exec('dokku caddy:set hello image caddy:2');
  t.is(perApp.code, 1);
  t.is(perApp.stderr, " !     The key 'image' can only be set globally\n");
  const bad = await old.exec('dokku caddy:set --global nope 1');
  t.is(bad.code, 1);
  t.regex(bad.stderr, /Invalid key specified, valid keys include: image letsencrypt-email/);
  await old.must('dokku caddy:set --global letsencrypt-email ops@example.test');
  const compose = await old.must('dokku caddy:show-config');
  t.regex(compose, /^ {6}- "caddy\.email=ops@example\.test"$/m);
  t.regex(compose, /^ {6}- "443:443"$/m);
  t.regex(compose, /^ {6}- caddy\.log\.level=INFO$/m);
  await old.must('dokku caddy:set --global letsencrypt-email');
  t.is((await old.exec('test -e /var/lib/dokku/config/caddy/--global/letsencrypt-email')).code, 1);
  t.regex(await old.must('dokku caddy:show-config'), /^ {6}- "caddy\.auto_https=off"$/m);

  // 0.37.9: the bash report (printf "%-30s %-25s") and the proxy type in the ENV
  const legacy = l.host('legacy');
  await legacy.must('dokku apps:create app1');
  const old37 = await legacy.must('dokku caddy:report app1');
  t.regex(old37, /^=====> app1 caddy information$/m);
  t.regex(old37, /^ {7}Caddy image: {19}lucaslorentz\/caddy-docker-proxy:2\.12$/m);
  t.regex(old37, /^ {7}Caddy tls internal: {12}false {20}$/m);
  t.is(await legacy.must('dokku caddy:report app1 --caddy-log-level'), 'ERROR\n');
  const ps37 = await legacy.exec('dokku proxy:set --global caddy');
  t.is(ps37.code, 0, ps37.stderr);
  t.regex(ps37.stdout, /^-----> Setting config vars$/m);
  t.regex(await legacy.must('cat /home/dokku/ENV'), /^DOKKU_PROXY_TYPE="?caddy"?$/m);
  t.is(await legacy.must('dokku proxy:report app1 --proxy-global-type'), 'caddy\n');
});

labTest(
  'on a fresh host restored with tar, caddy apps are unreachable until caddy:start',
  async (t) => {
    const l = lab();
    const old = l.host('old');
    const neu = l.host('new');
    await copyDokku(t, old, neu);
    // the engine did not travel; a rebuild gives hello a container with caddy labels
    t.is((await neu.exec('dokku ps:rebuild hello')).code, 0);
    // the fresh host's nginx runs, but has no server block for a caddy app
    let r = await get(neu.address, 'hello.old.lab');
    t.is(r.status, 404);
    t.is(r.server, 'nginx');
    t.is(await caddyRecord(neu), undefined);
    // the settings travelled with /var/lib/dokku
    t.is(await neu.must('dokku caddy:report --global --caddy-computed-log-level'), 'INFO\n');
    await neu.must('dokku nginx:stop');
    t.is((await get(neu.address, 'hello.old.lab')).status, 0);
    const start = await neu.exec('dokku caddy:start');
    t.is(start.code, 0, start.stderr);
    r = await get(neu.address, 'hello.old.lab');
    t.is(r.status, 200);
    t.is(r.server, 'Caddy');
    t.regex(r.body, /Hello from the ferry lab/);
  },
);

labTest('on a fresh host restored with tar, ps:restore starts caddy (pre-restore)', async (t) => {
  const l = lab();
  const old = l.host('old');
  const third = l.host('third');
  await copyDokku(t, old, third);
  t.is((await third.exec('dokku ps:rebuild hello')).code, 0);
  // with the fresh host's nginx on port 80, the pre-restore trigger cannot start caddy
  const blocked = await third.exec('dokku ps:restore');
  t.is(blocked.code, 0, blocked.stderr);
  t.regex(
    blocked.stderr,
    / ! {5}Failed to restore caddy proxy, requests may not route as expected/,
  );
  t.is((await get(third.address, 'hello.old.lab')).status, 404);
  await third.must('dokku nginx:stop');
  t.is((await get(third.address, 'hello.old.lab')).status, 0);
  const restore = await third.exec('dokku ps:restore');
  t.is(restore.code, 0, restore.stderr);
  t.regex(restore.stderr, /^ Container caddy-caddy-1 {2}Started$/m);
  const r = await get(third.address, 'hello.old.lab');
  t.is(r.status, 200);
  t.is(r.server, 'Caddy');
  // caddy:stop is remembered: the next ps:restore leaves caddy down
  await third.must('dokku caddy:stop');
  t.is(await third.must('cat /var/lib/dokku/config/caddy/--global/proxy-status'), 'stopped');
  t.is(await caddyRecord(third), undefined);
  await third.must('dokku ps:restore');
  t.is((await get(third.address, 'hello.old.lab')).status, 0);
});
