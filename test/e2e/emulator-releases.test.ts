/**
 * The Dokku CLI emulator at each release it claims (0.30.11, 0.34.9, 0.37.9,
 * 0.38.27), on one lab with a host per release: output formats, on-disk
 * paths, exit codes and empty answers that differ between releases, as the
 * source of each tag has them (test/lab/emulator/README.md cites file and tag).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labTest, useLab } from '../lab/ava.js';
import { writeImageArchive } from '../lab/emulator/engine.js';
import type { Lab, LabHost } from '../lab/lab.js';

const RELEASES = { r30: '0.30.11', r34: '0.34.9', r37: '0.37.9', r38: '0.38.27' } as const;
type Name = keyof typeof RELEASES;
const NAMES = Object.keys(RELEASES) as Name[];

const lab = useLab({
  instance: 'emulator-releases',
  hosts: NAMES.map((name) => ({ name, dokkuVersion: RELEASES[name] })),
});

const FIXTURES = fileURLToPath(new URL('../../../test/lab/emulator/fixtures', import.meta.url));

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

const host = (n: Name): LabHost => lab().host(n);

/** `ssh dokku@host <command>`: through sshcommand's forced command, as users run it. */
function dokkuSsh(l: Lab, h: LabHost, command: string): Promise<Out> {
  return run('ssh', [...l.sshOptions(), '--', `dokku@${h.address}`, command]);
}

function httpGet(address: string, hostHeader: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      { host: address, port: 80, path: '/', headers: { host: hostHeader }, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

/** The lab engine's image archive of the fixture image no registry has. */
function sealedArchive(): Buffer {
  const scratch = mkdtempSync(join(tmpdir(), 'emu-sealed-'));
  try {
    mkdirSync(join(scratch, 'stage'));
    writeImageArchive(
      [{ ref: 'lab/sealed:1.0', tree: join(FIXTURES, 'images', 'lab', 'sealed', '1.0') }],
      join(scratch, 'image.tar'),
      join(scratch, 'stage'),
    );
    return readFileSync(join(scratch, 'image.tar'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function pushHello(l: Lab, h: LabHost, app: string): Promise<Out> {
  const dir = mkdtempSync(join(tmpdir(), 'emu-rel-'));
  try {
    cpSync(join(FIXTURES, 'apps', 'hello'), dir, { recursive: true });
    const git = (args: string[]): Promise<Out> =>
      run(
        'git',
        ['-c', 'user.name=t', '-c', 'user.email=t@example.test', ...args],
        { GIT_SSH_COMMAND: l.gitSshCommand() },
        dir,
      );
    await git(['init', '-q', '-b', 'master']);
    await git(['add', '-A']);
    await git(['commit', '-qm', 'hello']);
    return await git(['push', `dokku@${h.address}:${app}`, 'master']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

labTest('version, the core plugins of each release, plugin:list --format json', async (t) => {
  for (const n of NAMES) {
    const h = host(n);
    t.is(await h.must('dokku version'), `dokku version ${RELEASES[n]}\n`);
    const names = (await h.must('dokku plugin:list'))
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0]);
    t.is(names.includes('builds'), n === 'r38', `${n} builds`);
    t.is(names.includes('ports'), n !== 'r30', `${n} ports`);
    t.is(names.includes('scheduler-k3s'), n !== 'r30', `${n} scheduler-k3s`);
    t.is(names.includes('builder-railpack'), n === 'r37' || n === 'r38', `${n} railpack`);
    t.regex(
      await h.must('dokku plugin:list'),
      /^ {2}20_events +\S+ +enabled +dokku core events logging plugin$/m,
    );
    // before 0.38.22 plugin:list is `plugn list` whatever its arguments
    const json = await h.exec('dokku plugin:list --format json');
    t.is(json.code, 0);
    if (n === 'r38') t.true(Array.isArray(JSON.parse(json.stdout)));
    else t.regex(json.stdout, /^ {2}00_dokku-standard /);
    const help = await h.exec('dokku plugin');
    t.regex(help.stdout, /^Usage: dokku plugin\[:COMMAND\]\n\nManage installed plugins\n/, n);
  }
});

labTest('apps: list formats, help, name rules for new and existing apps', async (t) => {
  for (const n of NAMES) {
    const h = host(n);
    await h.must('dokku apps:create app1');
    const json = await h.exec('dokku apps:list --format json');
    if (n === 'r38') t.is(json.stdout, '["app1"]\n');
    else {
      t.is(json.code, 2, n);
      t.regex(json.stderr, /^unknown flag: --format\n/);
    }
    // `dokku apps` printed the help until 0.31.0, lists the apps since
    const bare = await h.exec('dokku apps');
    if (n === 'r30') t.regex(bare.stdout, /^Usage: dokku apps\[:COMMAND\]/);
    else t.is(bare.stdout, '=====> My Apps\napp1\n');
    t.regex((await h.exec('dokku apps --help')).stdout, /Manage apps/, n);
    // 0.30's bare config was config:show's deprecated alias: --help is Go's flag usage, on stderr
    const configHelp = await h.exec('dokku config --help');
    if (n === 'r30') t.regex(configHelp.stderr, /^Usage of config:show:\n {2}-export\n/m);
    else t.regex(configHelp.stdout, /^Manage global and app-specific config vars$/m, n);
    // new names: underscores were never allowed, the wording changed in 0.38.2
    const bad = await h.exec('dokku apps:create test_app');
    t.is(bad.code, 1);
    t.regex(
      bad.stderr,
      n === 'r38'
        ? /may only contain lowercase alphanumerics, dots, and hyphens/
        : /cannot include uppercase characters, colons, or underscores/,
    );
    // an app an older release created with an underscore keeps working (VerifyAppName's old rule)
    await h.must('mkdir /home/dokku/test_app && chown dokku:dokku /home/dokku/test_app');
    t.is((await h.exec('dokku apps:exists test_app')).code, 0, n);
    t.is(await h.must('dokku ps:report test_app --deployed'), 'false\n');
    const missing = await h.exec('dokku apps:exists nope');
    t.is(missing.code, 20);
    t.is(missing.stderr, ' !     App nope does not exist\n');
    const unknown = await h.exec('dokku frobnicate now');
    t.is(
      unknown.stderr,
      ' !     `frobnicate now` is not a dokku command.\n !     See `dokku help` for a list of available commands.\n',
    );
  }
});

labTest('config: where the ENV file lives and its format; the restore flag', async (t) => {
  const files: Record<Name, [string, string]> = {
    r30: ['/home/dokku/app1/ENV', 'NAME="a b"\nPORT="007"'],
    r34: ['/home/dokku/app1/ENV', 'NAME="a b"\nPORT="007"'],
    r37: ['/home/dokku/app1/ENV', 'NAME="a b"\nPORT=7\n'],
    r38: ['/var/lib/dokku/config/app1/ENV', 'NAME="a b"\nPORT=7\n'],
  };
  for (const n of NAMES) {
    const h = host(n);
    await h.must(`dokku config:set --no-restart app1 PORT=007 'NAME=a b'`);
    const [path, body] = files[n];
    t.is(await h.must(`cat ${path}`), body, n);
    t.is(await h.must(`stat -c '%a %U' ${path}`), '600 dokku\n');
    t.is(await h.must('dokku config:get app1 PORT'), n === 'r30' || n === 'r34' ? '007\n' : '7\n');
    const restore = await h.exec('dokku ps:set app1 restore false');
    if (n === 'r38') {
      t.is(restore.code, 0);
      t.is(await h.must('cat /var/lib/dokku/config/ps/app1/restore'), 'false');
    } else {
      t.is(restore.code, 1, n);
      const valid =
        n === 'r37'
          ? 'procfile-path, restart-policy, stop-timeout-seconds'
          : 'procfile-path, restart-policy';
      t.is(
        restore.stderr,
        ` !     Invalid property specified, valid properties include: ${valid}\n`,
      );
    }
    const report = JSON.parse(await h.must('dokku ps:report app1 --format json')) as Record<
      string,
      string
    >;
    t.is(report.restore, n === 'r38' ? 'false' : 'true', n);
    // JSON keys lose only "--" before 0.38.8; since, "--ps-" too, with the legacy keys kept
    t.is('computed-procfile-path' in report, n === 'r38', n);
    t.is(report['ps-computed-procfile-path'], 'Procfile', n);
    // raw key at 0.37, the ps- key stripped at 0.38
    t.is('stop-timeout-seconds' in report, n === 'r37' || n === 'r38', n);
  }
});

labTest(
  "apps:lock: an empty file at each release's lock path; a deploy is not stopped by it",
  async (t) => {
    const l = lab();
    for (const n of NAMES) {
      const h = host(n);
      const path =
        n === 'r30'
          ? '/home/dokku/app1/.deploy.lock'
          : '/var/lib/dokku/data/apps/app1/.deploy.lock';
      t.is(
        (await h.exec('dokku apps:unlock app1')).stderr,
        ' !     Unable to remove deploy lock\n',
        n,
      );
      t.is(await h.must('dokku apps:lock app1'), '-----> Deploy lock created\n');
      t.is(await h.must(`stat -c %s ${path}`), '0\n', n);
      t.is(await h.must('dokku apps:locked app1'), 'Deploy lock exists\n');
      t.is(await h.must('dokku apps:report app1 --app-locked'), 'true\n');
    }
    // the deploy lock is an flock(1) on that file, not the file: a deploy goes on and removes it
    for (const n of ['r30', 'r38'] as const) {
      const h = host(n);
      const push = await pushHello(l, h, 'app1');
      t.is(push.code, 0, push.stderr);
      const locked = await h.exec('dokku apps:locked app1');
      t.is(locked.code, 1, n);
      t.is(locked.stderr, ' !     Deploy lock does not exist\n');
      t.is((await httpGet(h.address, `app1.${n}.lab`)).status, 200);
    }
  },
);

labTest("storage:list: each release's text and JSON, with and without mounts", async (t) => {
  for (const n of NAMES) {
    const h = host(n);
    await h.must('dokku apps:create st1');
    t.is(await h.must('dokku storage:list st1 --format json'), '[]\n', n);
    // bash storage:list (before 0.37) prints the bare mounts unless --format text is given
    const text = await h.exec('dokku storage:list st1');
    t.is(text.stdout, n === 'r30' || n === 'r34' ? '' : '-----> st1 volume bind-mounts:\n', n);
    await h.must('dokku storage:mount st1 /var/lib/dokku/data/storage/st1:/data');
    const json = await h.must('dokku storage:list st1 --format json');
    if (n === 'r30' || n === 'r34') {
      t.is(
        json,
        '[\n  {\n    "host_path": "/var/lib/dokku/data/storage/st1",\n    "container_path": "/data",\n    "volume_options": ""\n  }\n]\n',
        n,
      );
      t.is(await h.must('dokku storage:list st1'), '/var/lib/dokku/data/storage/st1:/data\n');
      t.regex(
        await h.must('cat /home/dokku/st1/DOCKER_OPTIONS_DEPLOY'),
        /^-v \/var\/lib\/dokku\/data\/storage\/st1:\/data$/m,
      );
    } else if (n === 'r37') {
      t.is(
        json,
        '[{"host_path":"/var/lib/dokku/data/storage/st1","container_path":"/data","volume_options":""}]\n',
      );
    } else {
      t.regex(
        json,
        /^\[\{"entry_name":"legacy-[0-9a-f]{10}","host_path":"\/var\/lib\/dokku\/data\/storage\/st1","container_path":"\/data"\}\]\n$/,
      );
      t.is((await h.exec('test -e /home/dokku/st1/DOCKER_OPTIONS_DEPLOY')).code, 1);
    }
  }
});

labTest('network:list and builds:list exist as each release has them', async (t) => {
  for (const n of NAMES) {
    const h = host(n);
    await h.must('dokku network:create net1');
    const json = await h.exec('dokku network:list --format json');
    t.is(json.code, 0, n);
    if (n === 'r30' || n === 'r34') {
      // before 0.35.3: docker's name-sorted list, flags ignored
      t.is(json.stdout, '=====> Networks\nbridge\nhost\nnet1\nnone\n');
    } else {
      const nets = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
      const net1 = nets.find((x) => x.Name === 'net1');
      t.truthy(net1, n);
      t.is('DokkuManaged' in (net1 ?? {}), n === 'r38', n);
    }
    const builds = await h.exec('dokku builds:list app1');
    if (n === 'r38') t.is(builds.code, 0);
    else {
      t.is(builds.code, 1, n);
      t.regex(builds.stderr, /`builds:list app1` is not a dokku command/);
    }
  }
});

labTest(
  'git:report: bash before 0.38.22, Go since; git:set rev-env-var with no value',
  async (t) => {
    for (const n of NAMES) {
      const h = host(n);
      t.is(await h.must('dokku git:report app1 --git-rev-env-var'), 'GIT_REV\n');
      const json = await h.exec('dokku git:report app1 --format json');
      if (n === 'r38') t.is(JSON.parse(json.stdout)['rev-env-var'], 'GIT_REV');
      else {
        t.is(json.code, 1, n);
        t.regex(json.stderr, /^ ! {5}Invalid flag passed, valid flags: --git-deploy-branch /);
      }
      const text = await h.must('dokku git:report app1');
      // bash: printf "%-30s %-25s" of "Label:" and value; Go: padded to 31, no trailing pad
      t.regex(
        text,
        n === 'r38'
          ? /^ {7}Git rev env var: {16}GIT_REV$/m
          : /^ {7}Git rev env var: {15}GIT_REV {18}$/m,
        n,
      );
      const unset = await h.must('dokku git:set app1 rev-env-var');
      t.is(unset, '=====> Unsetting rev-env-var\n');
      // written empty, not removed: no rev variable at all on the next deploy; the
      // bash report calls an empty value "not deployed"
      const empty = await h.exec('dokku git:report app1 --git-rev-env-var');
      if (n === 'r38') t.is(empty.stdout, '\n');
      else t.deepEqual([empty.code, empty.stderr], [1, ' !     not deployed\n'], n);
    }
  },
);

labTest(
  'git:load-image deploys an image no registry has; docker save | docker load carries it on',
  async (t) => {
    const archive = sealedArchive();
    for (const n of ['r30', 'r38'] as const) {
      const h = host(n);
      await h.must('dokku apps:create sealed');
      const r = await h.exec('dokku git:load-image sealed lab/sealed:1.0', { input: archive });
      t.is(r.code, 0, r.stderr);
      t.regex(r.stdout, /^Loaded image: lab\/sealed:1\.0$/m);
      t.regex(r.stdout, /-----> Image exists on host, skipping pull/);
      t.is(await h.must('cat /var/lib/dokku/config/apps/sealed/deploy-source'), 'docker-image');
      t.is(
        await h.must('cat /var/lib/dokku/config/apps/sealed/deploy-source-metadata'),
        'lab/sealed:1.0',
      );
      t.regex((await httpGet(h.address, `sealed.${n}.lab`)).body, /loaded with git:load-image/);
    }
    // a host that never saw it gets it as a stream, host to host
    const pipe = await run('bash', [
      '-c',
      `set -o pipefail; nsenter -t ${host('r38').pid} -a -- docker save lab/sealed:1.0 | nsenter -t ${host('r37').pid} -a -- docker load`,
    ]);
    t.is(pipe.code, 0, pipe.stderr);
    t.is(pipe.stdout, 'Loaded image: lab/sealed:1.0\n');
    t.is((await host('r37').exec('docker image inspect lab/sealed:1.0 >/dev/null')).code, 0);
    // git:load-image without the image in the archive: Dokku's own error
    await host('r34').must('dokku apps:create nope2');
    const wrong = await host('r34').exec('dokku git:load-image nope2 lab/other:1.0', {
      input: archive,
    });
    t.is(wrong.code, 1);
    t.regex(
      wrong.stderr,
      /Loaded image tarball but the specified docker image was not found: lab\/other:1\.0/,
    );
  },
);

labTest('builds (0.38): a crashed record shows abandoned; --kind=garbage is refused', async (t) => {
  const h = host('r38');
  const dir = '/var/lib/dokku/data/builds/app1';
  await h.must(
    `pid=$(sh -c 'echo $$') && mkdir -p ${dir} && printf '{"id":"mjv6b1c0crash1","app":"app1","kind":"build","pid":%s,"started_at":"2026-01-01T00:05:00Z","status":"running","source":"git-hook"}' "$pid" >${dir}/mjv6b1c0crash1.json`,
  );
  const list = JSON.parse(await h.must('dokku builds:list app1 --format json')) as Array<{
    id: string;
    status: string;
    display_status: string;
  }>;
  const crashed = list.find((b) => b.id === 'mjv6b1c0crash1');
  t.is(crashed?.status, 'running');
  t.is(crashed?.display_status, 'abandoned');
  t.regex(
    await h.must('dokku builds:list app1 --status abandoned'),
    /^mjv6b1c0crash1 +build +abandoned /m,
  );
  const bad = await h.exec('dokku builds:list app1 --kind=garbage');
  t.is(bad.code, 1);
  t.is(bad.stderr, ' !     Invalid --kind value "garbage" (allowed: build, deploy)\n');
  await h.must('dokku builds:prune app1');
  const info = JSON.parse(await h.must('dokku builds:info app1 mjv6b1c0crash1 --format json')) as {
    status: string;
    exit_code: number;
  };
  t.deepEqual([info.status, info.exit_code], ['failed', -1]);
});

labTest('ssh-keys:list and the ssh forced command, release by release', async (t) => {
  const l = lab();
  for (const n of NAMES) {
    const h = host(n);
    t.regex(
      await h.must('dokku ssh-keys:list'),
      /^SHA256:\S+ NAME="admin" SSHCOMMAND_ALLOWED_KEYS="no-agent-forwarding,no-user-rc,no-X11-forwarding,no-port-forwarding"\n$/,
    );
    const keys = JSON.parse(await h.must('dokku ssh-keys:list --format json')) as Array<
      Record<string, string>
    >;
    t.is(keys[0]?.name, 'admin');
    // sshcommand 0.20 (Dokku 0.37+) added the public key
    t.is('public-key' in (keys[0] ?? {}), n === 'r37' || n === 'r38', n);
    // before 0.34.0 only config-*/docker-options* commands had their quotes honoured
    const quoted = await dokkuSsh(l, h, "storage:list 'app1'");
    if (n === 'r30') {
      t.is(quoted.code, 20);
      t.is(quoted.stderr, " !     App 'app1' does not exist\n");
    } else t.is(quoted.code, 0, `${n}: ${quoted.stderr}`);
  }
});

labTest(
  '0.38.27 reports the ENV file it would not import, through plugin:install --core',
  async (t) => {
    const h = host('r38');
    // app1 was created after the install: the migration is put on record first
    await h.must('dokku plugin:trigger config-migrate-env');
    t.is(await h.must('cat /var/lib/dokku/config/config/app1/env-migrated'), 'true');
    await h.must(
      "printf 'export PORT=8\\n' >/home/dokku/app1/ENV && chown dokku:dokku /home/dokku/app1/ENV",
    );
    const r = await h.exec('dokku plugin:install --core');
    t.is(r.code, 0, r.stderr);
    t.regex(
      r.stderr,
      /Not importing already-migrated ENV file \/home\/dokku\/app1\/ENV: the current config takes precedence for PORT/,
    );
    t.is((await h.exec('test -e /home/dokku/app1/ENV.migrated')).code, 0);
    t.is(await h.must('dokku config:get app1 PORT'), '7\n');
    // an ENV file the config agrees with is simply removed
    await h.must("printf 'export PORT=7\\n' >/home/dokku/app1/ENV");
    const again = await h.exec('dokku plugin:trigger config-migrate-env');
    t.is(again.code, 0, again.stderr);
    t.is(again.stdout + again.stderr, '');
    t.is((await h.exec('test -e /home/dokku/app1/ENV')).code, 1);
  },
);
