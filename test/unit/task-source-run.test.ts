/**
 * The source-side tasks' `run`, against a fake host that answers each planned
 * command with canned Dokku output (the real shapes from the reference). The
 * commands are the planned ones, bound by the real runtime; what is checked is
 * the decision each run makes from the answers.
 */
import test from 'ava';
import { FerryError, RemoteError, StopError } from '../../src/errors.js';
import { type Inventory, validateInventory } from '../../src/inventory/index.js';
import { plan } from '../../src/plan/index.js';
import { loadPlaybook } from '../../src/playbook/index.js';
import type { StepOutputs } from '../../src/run/journal.js';
import type { RunContext, StepTask } from '../../src/run/runner.js';
import type { Connections, Remote, RunOptions, RunResult } from '../../src/ssh/connection.js';
import * as checkQuiet from '../../src/tasks/check-quiet.js';
import * as checkTarget from '../../src/tasks/check-target.js';
import * as exportDatastores from '../../src/tasks/export-datastores.js';
import * as inventoryTask from '../../src/tasks/inventory.js';
import type { Manifest } from '../../src/tasks/manifest.js';
import * as retention from '../../src/tasks/retention.js';
import { createRuntime, type Shared, type TaskRun } from '../../src/tasks/runtime.js';
import type { PlanContext } from '../../src/tasks/types.js';

const RUN = '20261123T104500Z';

function inventory(): Inventory {
  return validateInventory(
    `version: 1
hosts:
  old: {address: 192.0.2.10}
  new: {address: 192.0.2.20}
backup:
  dir: /srv/archives
  keep: 2
`,
    '/tmp/inv.yml',
    { home: '/home/u' },
  );
}

type Answer = Partial<RunResult> | ((stdin: string | undefined) => Partial<RunResult>);

interface Fake {
  /** Commands run, `host$ command`. */
  ran: string[];
  stdin: Record<string, string>;
  logs: string[];
  warns: string[];
  states: Record<string, string>;
}

/** Runs one step of a shipped playbook with a fake host: `answers` by a distinctive part of the command. */
async function runStep(
  playbook: string,
  bindings: Record<string, string>,
  task: string,
  answers: [string, Answer][],
  options: { force?: boolean; outputs?: Record<string, StepOutputs> } = {},
): Promise<{ fake: Fake; result: StepOutputs | undefined; error?: unknown }> {
  const inv = inventory();
  const pb = await loadPlaybook(playbook);
  const p = plan(pb, inv, bindings, { runId: RUN, ...(options.force ? { force: true } : {}) });
  const index = p.steps.findIndex((s) => s.task === task);
  const planned = p.steps[index]!;
  const fake: Fake = { ran: [], stdin: {}, logs: [], warns: [], states: {} };
  const remote = (host: string): Remote =>
    ({
      host: { name: host },
      async run(command: string, opts: RunOptions = {}): Promise<RunResult> {
        fake.ran.push(`${host}$ ${command}`);
        if (typeof opts.stdin === 'string') fake.stdin[command] = opts.stdin;
        const hit = answers.find(([marker]) => command.includes(marker));
        const a = hit ? hit[1] : {};
        const got = typeof a === 'function' ? a(opts.stdin as string | undefined) : a;
        const r: RunResult = {
          stdout: got.stdout ?? '',
          stderr: got.stderr ?? '',
          code: got.code ?? 0,
        };
        if (!(opts.allowCodes ?? [0]).includes(r.code)) {
          throw new RemoteError({ host, command, ...r });
        }
        return r;
      },
    }) as unknown as Remote;
  const connections = { get: async (h: string) => remote(h) } as unknown as Connections;
  const signal = new AbortController().signal;
  const outputs = options.outputs ?? {};
  const run: RunContext<Shared> = {
    runId: RUN,
    shared: { connections, reach: new Map() },
    outputs,
    signal,
    need: () => {
      throw new Error('not used');
    },
  };
  const stepTask: StepTask = {
    stepId: planned.id,
    host: planned.host,
    attempt: 1,
    signal,
    setTitle: () => {},
    log: (l) => fake.logs.push(l),
    progress: () => {},
    skip: () => {},
    warn: (m) => fake.warns.push(m),
    hostState: (h, n) => {
      fake.states[h] = n;
    },
  };
  const roles: Record<string, Inventory['hosts'][string] | undefined> = {};
  for (const [role, b] of Object.entries(p.bindings)) roles[role] = inv.hosts[b.host];
  const ctx: PlanContext<unknown> = {
    step: { id: planned.id, task, on: pb.steps[index]!.on, index },
    params: pb.steps[index]!.params,
    host: inv.hosts[planned.host],
    roles,
    inventory: inv,
    options: p.options,
  };
  const rt = createRuntime({ ctx, actions: planned.actions, task: stepTask, run });
  const mods: Record<string, { run: TaskRun<never> }> = {
    'check-quiet': checkQuiet,
    'check-target': checkTarget,
    inventory: inventoryTask,
    'export-datastores': exportDatastores,
    retention,
  };
  try {
    const result = await (mods[task]!.run as TaskRun)(rt);
    return { fake, result };
  } catch (error) {
    return { fake, result: undefined, error };
  }
}

const FACTS_OLD = { stdout: 'dokku version 0.38.27\nx86_64\n1001\n1001\n' };

test('check-quiet: a held deploy lock refuses, naming the app; nothing is changed', async (t) => {
  const { fake, error } = await runStep('backup', { source: 'old' }, 'check-quiet', [
    [
      '.deploy.lock',
      {
        stdout:
          '0 /var/lib/dokku/data/apps/api/.deploy.lock\n15 /var/lib/dokku/data/apps/notes/.deploy.lock\n',
      },
    ],
    ['builds:list', { stdout: '[]' }],
  ]);
  t.true(error instanceof StopError);
  const e = error as StopError;
  t.regex(e.message, /a deploy of notes is running/);
  t.notRegex(e.message, /api/);
  t.regex(e.hint ?? '', /apps:unlock/);
  t.true(fake.logs.some((l) => /api is locked with apps:lock/.test(l)));
  t.is(fake.states.old, 'unchanged');
});

test('check-quiet: a running build or dokku process refuses; none passes', async (t) => {
  const build = JSON.stringify([
    {
      id: '01j8c4xv7bk5w3',
      app: 'web',
      kind: 'build',
      pid: 4242,
      started_at: '2026-04-30T13:50:00Z',
      status: 'running',
      source: 'git-hook',
      display_status: 'running',
      duration: '5s',
      log_path: '/x',
    },
  ]);
  const busy = await runStep('backup', { source: 'old' }, 'check-quiet', [
    ['builds:list', { stdout: build }],
    ['ps -eo', { stdout: '  77 /bin/bash /usr/bin/dokku ps:rebuild web\n' }],
  ]);
  t.true(busy.error instanceof StopError);
  t.regex((busy.error as Error).message, /build 01j8c4xv7bk5w3 of web is running/);
  t.regex((busy.error as Error).message, /dokku ps:rebuild web/);

  const quiet = await runStep('backup', { source: 'old' }, 'check-quiet', [
    ['builds:list', { stdout: '[]\n' }],
  ]);
  t.is(quiet.error, undefined);
  t.is(quiet.fake.ran.length, 3);

  // Before 0.38 there is no builds:list: only the locks and processes tell.
  const old = await runStep('backup', { source: 'old' }, 'check-quiet', [
    [
      'builds:list',
      {
        code: 1,
        stderr: ' !     `builds:list` is not a dokku command.\n !     See `dokku help`\n',
      },
    ],
  ]);
  t.is(old.error, undefined);
  t.true(old.fake.logs.some((l) => /before 0\.38/.test(l)));
});

test('check-quiet against a target: older Dokku, other arch, other uid are refused with why', async (t) => {
  const answer =
    (target: string): Answer =>
    () => ({ stdout: target });
  const run = (target: string) =>
    runStep('migrate', { source: 'old', target: 'new' }, 'check-quiet', [
      ['builds:list', { stdout: '[]' }],
      ['dokku version', answer(target)],
    ]);
  // the fake answers both hosts alike: compare the source with itself first
  const same = await run(FACTS_OLD.stdout);
  t.is(same.error, undefined);
  t.deepEqual(same.result, {
    source: { dokkuVersion: '0.38.27', arch: 'x86_64' },
    target: { dokkuVersion: '0.38.27', arch: 'x86_64' },
  });

  const src = checkQuiet.parseHostFacts(FACTS_OLD.stdout);
  const tgt = checkQuiet.parseHostFacts('dokku version 0.37.7\naarch64\n1002\n1001\n');
  const why = checkQuiet.incompatibilities(
    { name: 'old', facts: src },
    { name: 'new', facts: tgt },
  );
  t.is(why.length, 3);
  t.regex(why[0]!, /new runs Dokku 0\.37\.7, older than old's 0\.38\.27/);
  t.regex(why[1]!, /new is aarch64 but old is x86_64/);
  t.regex(why[2]!, /1002:1001 on new but 1001:1001 on old/);
  const newer = checkQuiet.parseHostFacts('dokku version v0.38.28-3-gabc\nx86_64\n1001\n1001\n');
  t.deepEqual(
    checkQuiet.incompatibilities({ name: 'old', facts: src }, { name: 'new', facts: newer }),
    [],
  );
  t.throws(() => checkQuiet.parseHostFacts('dokku version 0.38.27\nx86_64\n'), {
    instanceOf: FerryError,
  });
});

test('check-target: data refused without --force; with it a safety archive comes first', async (t) => {
  const existing: [string, Answer] = [
    "-printf 'app %f",
    { stdout: 'app web\nservice postgres/db\n' },
  ];
  const df: [string, Answer] = [
    'df -Pk',
    {
      stdout:
        'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 1000000 10 900000 1% /\n/dev/vdb 1000000 10 800000 1% /var/lib\n',
    },
  ];
  const refused = await runStep('migrate', { source: 'old', target: 'new' }, 'check-target', [
    existing,
    df,
  ]);
  t.true(refused.error instanceof StopError);
  t.regex(
    (refused.error as Error).message,
    /new already holds Dokku data \(apps web; services postgres\/db\)/,
  );
  t.regex((refused.error as StopError).hint ?? '', /--force/);
  t.false(refused.fake.ran.some((c) => /install -d|tar /.test(c)));

  const forced = await runStep(
    'migrate',
    { source: 'old', target: 'new' },
    'check-target',
    [
      existing,
      df,
      ['du -sck', { stdout: '1000\ttotal\n' }],
      ['command -v zstd', { stdout: '/usr/bin/zstd\n' }],
      ['sha256sum dokku.tar.zst', { stdout: `${'a'.repeat(64)}  dokku.tar.zst\n4096\n` }],
    ],
    { force: true },
  );
  t.is(forced.error, undefined, String(forced.error));
  const dir = `/srv/archives/new-pre-ferry-${RUN}`;
  t.is(forced.result?.safetyArchive, `${dir}/dokku.tar.zst`);
  t.regex(forced.fake.states.new ?? '', /safety archive .*new-pre-ferry/);
  const order = forced.fake.ran.map(
    (c) => c.split('$ ')[0] + (c.includes('zstd -q -1') ? ' tar' : ''),
  );
  t.true(order.includes('new tar'));
  t.true(
    forced.fake.ran.some((c) => c.startsWith('old$ du -sck')),
    'source size read on old',
  );
  t.false(
    forced.fake.ran.some((c) => c.includes('gzip -1')),
    'gzip form not run when zstd is there',
  );

  const full = await runStep('migrate', { source: 'old', target: 'new' }, 'check-target', [
    df,
    ['du -sck', { stdout: '850000\ttotal\n' }],
  ]);
  t.true(full.error instanceof StopError);
  t.regex((full.error as Error).message, /less than the 830 MiB of old's Dokku data/);
});

const PS = (deployed: boolean) =>
  JSON.stringify({
    deployed: String(deployed),
    processes: '1',
    running: String(deployed),
    restore: 'true',
  });

test('inventory: apps with their deploy method, services, plugins, networks; mounts warned; manifest written 0600', async (t) => {
  const { fake, result, error } = await runStep('backup', { source: 'old' }, 'inventory', [
    ['dokku version', FACTS_OLD],
    ['apps:list', { stdout: '=====> My Apps\napi\nimg\nnew-app\ntarball\n' }],
    [
      '/var/lib/dokku/config/apps/api/',
      { stdout: 'deploy-source=git-push\ndeploy-source-metadata=abc123\n' },
    ],
    [
      '/var/lib/dokku/config/apps/img/',
      { stdout: 'deploy-source=docker-image\ndeploy-source-metadata=lab/whoami:1.0\n' },
    ],
    [
      '/var/lib/dokku/config/apps/new-app/',
      { stdout: 'deploy-source=\ndeploy-source-metadata=\n' },
    ],
    [
      '/var/lib/dokku/config/apps/tarball/',
      { stdout: 'deploy-source=tar.gz\ndeploy-source-metadata=https://x.test/a.tgz\n' },
    ],
    ['ps:report new-app', { stdout: PS(false) }],
    ['ps:report', { stdout: PS(true) }],
    [
      'storage:list api',
      {
        stdout: JSON.stringify([
          { entry_name: 'a', host_path: '/var/lib/dokku/data/storage/api', container_path: '/s' },
          { entry_name: 'b', host_path: '/srv/uploads', container_path: '/u' },
          { entry_name: 'c', host_path: 'cache-vol', container_path: '/c' },
        ]),
      },
    ],
    ['storage:list', { stdout: '[]' }],
    [
      'plugin:list',
      {
        stdout:
          "  apps                 0.38.27 enabled    dokku core apps plugin\n  postgres             1.48.0 enabled    dokku postgres service plugin\n  redis                1.40.0 disabled   dokku redis service plugin\n  letsencrypt          0.22.0 enabled    Automated installation of let's encrypt TLS certificates\n",
      },
    ],
    ['postgres:list', { stdout: 'db\nother\n' }],
    ['services/postgres/db/', { stdout: 'IMAGE=postgres\nIMAGE_VERSION=18.4\nLINKS=api img \n' }],
    ['services/postgres/other/', { stdout: 'IMAGE=postgres\nIMAGE_VERSION=18.4\nLINKS=\n' }],
    ['network:list', { stdout: '=====> Networks\nhost\nferry-net\nbridge\nnone\n' }],
    ['du -sck', { stdout: '2048\ttotal\n' }],
  ]);
  t.is(error, undefined, String(error));
  const m = result?.manifest as unknown as Manifest;
  t.deepEqual(
    m.apps.map((a) => [a.name, a.method, a.deploySourceMetadata, a.deployed]),
    [
      ['api', 'git', 'abc123', true],
      ['img', 'image', 'lab/whoami:1.0', true],
      ['new-app', 'none', null, false],
      ['tarball', 'archive', 'https://x.test/a.tgz', true],
    ],
  );
  t.deepEqual(m.services, [
    {
      plugin: 'postgres',
      name: 'db',
      image: 'postgres',
      imageVersion: '18.4',
      links: ['api', 'img'],
    },
    { plugin: 'postgres', name: 'other', image: 'postgres', imageVersion: '18.4', links: [] },
  ]);
  t.false(
    fake.ran.some((c) => c.includes('redis:list')),
    'a disabled plugin is not asked',
  );
  t.deepEqual(
    m.plugins.filter((p) => !p.core).map((p) => p.name),
    ['postgres', 'redis', 'letsencrypt'],
  );
  t.deepEqual(m.networks, ['ferry-net']);
  t.is(m.dataBytes, 2048 * 1024);
  t.like(m.source, { host: 'old', dokkuVersion: '0.38.27', arch: 'x86_64', dokkuUid: 1001 });
  t.is(m.warnings.length, 2);
  t.regex(
    m.warnings[0]!,
    /api: mount \/srv\/uploads:\/u: host path .* outside \/var\/lib\/dokku\/data\/storage/,
  );
  t.regex(m.warnings[1]!, /docker volume cache-vol/);
  t.deepEqual(fake.warns, m.warnings);
  const write = Object.entries(fake.stdin).find(([c]) => c.includes('manifest.json'));
  t.truthy(write);
  t.regex(write![0], /^umask 077 && cat > \/srv\/archives\/old-20261123T104500Z\/manifest\.json$/);
  t.deepEqual(JSON.parse(write![1]), m);
  const mkdir = fake.ran.findIndex((c) => c.includes('install -d -m 0700'));
  const cat = fake.ran.findIndex((c) => c.includes('manifest.json'));
  t.true(mkdir >= 0 && mkdir < cat);
});

test('inventory: an older Dokku without --format json falls back to the text reports', async (t) => {
  const { result, error } = await runStep('backup', { source: 'old' }, 'inventory', [
    ['dokku version', { stdout: 'dokku version 0.37.7\nx86_64\n1001\n1001\n' }],
    ['apps:list', { stdout: 'web\n' }],
    ['deploy-source', { stdout: 'deploy-source=\ndeploy-source-metadata=\n' }],
    ['--format json', { code: 1, stderr: ' !     unknown flag: --format\n' }],
    [
      'ps:report web',
      {
        stdout:
          '=====> web ps information\n       Deployed:                      true\n       Processes:                     1\n       Restore:                       false\n       Running:                       false\n',
      },
    ],
    ['storage:list web', { stdout: '-v /var/lib/dokku/data/storage/web:/data\n' }],
    [
      'plugin:list',
      { stdout: '  apps                 0.37.7 enabled    dokku core apps plugin\n' },
    ],
    ['du -sck', { stdout: '1\ttotal\n' }],
  ]);
  t.is(error, undefined, String(error));
  const m = result?.manifest as unknown as Manifest;
  t.like(m.apps[0], {
    name: 'web',
    method: 'git',
    deployed: true,
    running: 'false',
    restore: false,
  });
  t.deepEqual(m.apps[0]!.mounts, [
    { hostPath: '/var/lib/dokku/data/storage/web', containerPath: '/data' },
  ]);
  t.regex(m.warnings[0]!, /web records no deploy-source/);
});

test('export-datastores: one export per manifest service, sums reported; a failed export says how to fix it', async (t) => {
  const manifest = {
    version: 1,
    runId: RUN,
    services: [
      { plugin: 'postgres', name: 'db', image: 'postgres', imageVersion: '18.4', links: [] },
    ],
    apps: [],
  };
  const outputs = { inventory: { manifest } } as unknown as Record<string, StepOutputs>;
  const sum = 'b'.repeat(64);
  const ok = await runStep(
    'backup',
    { source: 'old' },
    'export-datastores',
    [['SHA256SUMS', { stdout: `${sum}  postgres-db.dump\nsize 2791 postgres-db.dump\n` }]],
    { outputs },
  );
  t.is(ok.error, undefined, String(ok.error));
  t.true(
    ok.fake.ran.includes(
      `old$ umask 077 && dokku postgres:export db > /srv/archives/old-${RUN}/exports/postgres-db.dump`,
    ),
  );
  t.deepEqual(ok.result?.exports, [
    { plugin: 'postgres', service: 'db', file: 'postgres-db.dump', sha256: sum, bytes: 2791 },
  ]);

  const failed = await runStep(
    'backup',
    { source: 'old' },
    'export-datastores',
    [[':export', { code: 1, stderr: ' !     Service is not running\n' }]],
    { outputs },
  );
  t.true(failed.error instanceof FerryError);
  t.regex((failed.error as FerryError).hint ?? '', /postgres:start db/);
});

test('retention: reports what it removed', async (t) => {
  const { result } = await runStep('backup', { source: 'old' }, 'retention', [
    ['removed', { stdout: 'removed /srv/archives/old-20200101T000000Z\n' }],
  ]);
  t.deepEqual(result, { keep: 2, removed: ['/srv/archives/old-20200101T000000Z'] });
});
