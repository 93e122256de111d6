/**
 * The source-side tasks' `run`, against the one task fake: each planned
 * action is answered BY ITS ID with canned Dokku output (the real shapes from
 * the reference). The commands are the planned ones, bound by the real
 * runtime; what is checked is the decision each run makes from the answers,
 * and the exact command lines the hosts would have got.
 */
import test from 'ava';
import { FerryError, StopError } from '../../src/errors.js';
import { type Inventory, validateInventory } from '../../src/inventory/index.js';
import { plan } from '../../src/plan/index.js';
import { loadPlaybook } from '../../src/playbook/index.js';
import type { Bindings, Command } from '../../src/ssh/shell.js';
import { createArchiveCommand } from '../../src/tasks/archive.js';
import { incompatibilities, parseHostFacts } from '../../src/tasks/check-quiet.js';
import type { Manifest } from '../../src/tasks/manifest.js';
import type { PlannedAction, PlanOptions } from '../../src/tasks/types.js';
import {
  type Answer,
  type Answers,
  type Call,
  commandsOf,
  manifestOf,
  runPlannedStep,
} from './task-fake.js';

/** The run id runPlannedStep plans with. */
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

const BACKUP = { source: 'old' };
const MIGRATE = { source: 'old', target: 'new' };

/** Runs step `stepId` of a shipped playbook against {@link inventory}, answers by action id. */
function runStep(
  playbook: string,
  bindings: Record<string, string>,
  stepId: string,
  answers: Answers,
  opts: { options?: Partial<PlanOptions>; manifest?: Manifest } = {},
) {
  return runPlannedStep(playbook, inventory(), bindings, stepId, {
    answers,
    ...(opts.options ? { options: opts.options } : {}),
    ...(opts.manifest ? { manifest: opts.manifest } : {}),
  });
}

/** The planned command of action `id` in step `stepId` (with its holes open), as runStep plans it. */
async function plannedCommand(
  playbook: string,
  bindings: Record<string, string>,
  stepId: string,
  id: string,
): Promise<Command> {
  const p = plan(await loadPlaybook(playbook), inventory(), bindings, { runId: RUN });
  const all = (as: readonly PlannedAction[]): PlannedAction[] =>
    as.flatMap((a) => [a, ...all(a.kind === 'stream' ? [] : (a.fallback ?? []))]);
  const a = all(p.steps.find((s) => s.id === stepId)?.actions ?? []).find((x) => x.id === id);
  if (!a || a.kind === 'stream') throw new Error(`no command action ${id} in ${stepId}`);
  return a.command;
}

/**
 * Answers a repeated action by the values its holes were bound to: the entry
 * whose binding of the planned `command` is exactly the command line that ran
 * (the fake records the bound line, not the values), else `otherwise`.
 */
function byBinding(
  command: Command,
  table: [Bindings, Answer][],
  otherwise: Answer = {},
): (call: Call) => Answer {
  return (call) => table.find(([b]) => command.bind(b).render() === call.command)?.[1] ?? otherwise;
}

const ids = (calls: Call[]) => calls.map((c) => c.id);

const FACTS_OLD = { stdout: 'dokku version 0.38.27\nx86_64\n1001\n1001\n' };

test('check-quiet: a held deploy lock refuses, naming the app; nothing is changed', async (t) => {
  const { seen, error } = await runStep('backup', BACKUP, 'check-quiet', {
    'deploy-locks': {
      stdout:
        '0 free /var/lib/dokku/data/apps/api/.deploy.lock\n15 held /var/lib/dokku/data/apps/notes/.deploy.lock\n14 free /var/lib/dokku/data/apps/hello/.deploy.lock\n',
    },
    'running-builds': { stdout: '[]' },
  });
  t.true(error instanceof StopError);
  const e = error as StopError;
  t.regex(e.message, /a deploy of notes is running/);
  t.notRegex(e.message, /api/);
  // a lock nobody holds, left by a deploy that died, is only noted
  t.notRegex(e.message, /hello/);
  t.true(seen.logs.some((l) => /hello\/\.deploy\.lock was left by a deploy that died/.test(l)));
  t.regex(e.hint ?? '', /apps:unlock/);
  t.true(seen.logs.some((l) => /api is locked with apps:lock/.test(l)));
  t.deepEqual(seen.states, ['old: unchanged']);
  t.true(
    seen.calls.every((c) => c.host === 'old'),
    'only the source is asked',
  );
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
  const busy = await runStep('backup', BACKUP, 'check-quiet', {
    'running-builds': { stdout: build },
    'dokku-processes': { stdout: '  77 /bin/bash /usr/bin/dokku ps:rebuild web\n' },
  });
  t.true(busy.error instanceof StopError);
  t.regex((busy.error as Error).message, /build 01j8c4xv7bk5w3 of web is running/);
  t.regex((busy.error as Error).message, /dokku ps:rebuild web/);

  // A record a crash left `running`, whose process is gone: Dokku shows it abandoned.
  const crashed = await runStep('backup', BACKUP, 'check-quiet', {
    'running-builds': {
      stdout: build.replace('"display_status":"running"', '"display_status":"abandoned"'),
    },
  });
  t.is(crashed.error, undefined, 'a crashed build never blocks a run');
  t.true(crashed.seen.logs.some((l) => /build 01j8c4xv7bk5w3 of web was abandoned/.test(l)));

  const quiet = await runStep('backup', BACKUP, 'check-quiet', {
    'running-builds': { stdout: '[]\n' },
  });
  t.is(quiet.error, undefined);
  t.deepEqual(ids(quiet.seen.calls), ['deploy-locks', 'running-builds', 'dokku-processes']);

  // Before 0.38 there is no builds:list: only the locks and processes tell.
  const old = await runStep('backup', BACKUP, 'check-quiet', {
    'running-builds': {
      code: 1,
      stderr: ' !     `builds:list` is not a dokku command.\n !     See `dokku help`\n',
    },
  });
  t.is(old.error, undefined);
  t.true(old.seen.logs.some((l) => /before 0\.38/.test(l)));
});

test('check-quiet against a target: older Dokku, other arch, other uid are refused with why', async (t) => {
  const run = (target: string) =>
    runStep('migrate', MIGRATE, 'check-quiet', {
      'running-builds': { stdout: '[]' },
      'own-facts': FACTS_OLD,
      'other-facts': { stdout: target },
    });
  const same = await run(FACTS_OLD.stdout);
  t.is(same.error, undefined);
  t.deepEqual(same.result, {
    source: { dokkuVersion: '0.38.27', arch: 'x86_64' },
    target: { dokkuVersion: '0.38.27', arch: 'x86_64' },
  });
  // Each host's facts are read on that host.
  t.deepEqual(
    same.seen.calls.filter((c) => c.id.endsWith('-facts')).map((c) => [c.id, c.host]),
    [
      ['own-facts', 'old'],
      ['other-facts', 'new'],
    ],
  );

  const src = parseHostFacts(FACTS_OLD.stdout);
  const tgt = parseHostFacts('dokku version 0.37.7\naarch64\n1002\n1001\n');
  const why = incompatibilities({ name: 'old', facts: src }, { name: 'new', facts: tgt });
  t.is(why.length, 3);
  t.regex(why[0]!, /new runs Dokku 0\.37\.7, older than old's 0\.38\.27/);
  t.regex(why[1]!, /new is aarch64 but old is x86_64/);
  t.regex(why[2]!, /1002:1001 on new but 1001:1001 on old/);
  const newer = parseHostFacts('dokku version v0.38.28-3-gabc\nx86_64\n1001\n1001\n');
  t.deepEqual(incompatibilities({ name: 'old', facts: src }, { name: 'new', facts: newer }), []);
  t.throws(() => parseHostFacts('dokku version 0.38.27\nx86_64\n'), {
    instanceOf: FerryError,
  });

  // The run refuses such a target, both hosts left as they were.
  const older = await run('dokku version 0.37.7\naarch64\n1002\n1001\n');
  t.true(older.error instanceof StopError);
  t.regex((older.error as Error).message, /new cannot receive old's data/);
  t.regex((older.error as Error).message, /older than old's 0\.38\.27/);
  t.regex((older.error as StopError).hint ?? '', /Install Dokku 0\.38\.27 or newer on new/);
  t.deepEqual(older.seen.states, ['old: unchanged', 'new: unchanged']);
});

test('check-target: data refused without --force; with it a safety archive comes first', async (t) => {
  const existing: Answer = { stdout: 'app web\nservice postgres/db\n' };
  // /home/dokku on the root filesystem; /var/lib/dokku and ferry's folder share /var/lib's.
  const df: Answer = {
    stdout:
      '/home/dokku\t2049\t900000\t/\n/var/lib/dokku\t2050\t800000\t/var/lib\n/var/lib/dokku-ferry\t2050\t800000\t/var/lib\n/srv/archives\t2049\t900000\t/\n',
  };
  const refused = await runStep('migrate', MIGRATE, 'check-target', {
    'existing-data': existing,
    'free-space': df,
  });
  t.true(refused.error instanceof StopError);
  t.regex(
    (refused.error as Error).message,
    /new already holds Dokku data \(apps web; services postgres\/db\)/,
  );
  t.regex((refused.error as StopError).hint ?? '', /--force/);
  // Refused on what it found: nothing else asked, nothing written.
  t.deepEqual(ids(refused.seen.calls), ['existing-data']);
  t.deepEqual(refused.seen.states, ['new: unchanged']);

  const forced = await runStep(
    'migrate',
    MIGRATE,
    'check-target',
    {
      'existing-data': existing,
      'free-space': df,
      'source-size': { stdout: '1000\t/home/dokku\n' },
      'own-size': { stdout: '2000\ttotal\n' },
      'zstd-probe': { stdout: '/usr/bin/zstd\n' },
      'archive-checksum zstd': { stdout: `${'a'.repeat(64)}  dokku.tar.zst\n4096\n` },
    },
    { options: { force: true } },
  );
  t.is(forced.error, undefined, String(forced.error));
  const dir = `/srv/archives/new-pre-ferry-${RUN}`;
  t.is(forced.result?.safetyArchive, `${dir}/dokku.tar.zst`);
  t.is(forced.result?.safetySha256, 'a'.repeat(64));
  t.true(forced.seen.states.some((s) => /^new: safety archive .*new-pre-ferry/.test(s)));
  const archive = forced.seen.calls.filter((c) => c.id === 'create-archive');
  t.deepEqual(
    archive.map((c) => [c.item, c.host, c.command]),
    [['zstd', 'new', createArchiveCommand(dir, 'zstd').render()]],
    'the zstd form, of the target, into its pre-ferry folder; the gzip form not run when zstd is there',
  );
  t.true(
    forced.seen.calls.some((c) => c.id === 'source-size' && c.host === 'old'),
    'source size read on old',
  );
  const order = ids(forced.seen.calls);
  t.true(order.indexOf('existing-data') < order.indexOf('create-archive'));
  t.false(
    forced.seen.calls.some((c) => c.item === 'gzip'),
    'gzip form not run when zstd is there',
  );

  // /var/lib holds the /var/lib/dokku stage (400000 + 300000 KiB) and the exports (300000 KiB,
  // as big as the services): 1000000 KiB and the margin against 800000 KiB free. The root
  // filesystem has room for /home/dokku's 100000 KiB: it is not named.
  const full = await runStep('migrate', MIGRATE, 'check-target', {
    'free-space': df,
    'source-size': {
      stdout: '100000\t/home/dokku\n400000\t/var/lib/dokku/data\n300000\t/var/lib/dokku/services\n',
    },
  });
  t.true(full.error instanceof StopError);
  const said = (full.error as Error).message;
  t.regex(said, /^not enough disk space on new:\n {2}- \/var\/lib \(/);
  t.regex(said, /\/var\/lib \(\/var\/lib\/dokku, \/var\/lib\/dokku-ferry\) has 819 MB free/);
  t.regex(said, /the run writes about 1\.09 GB there/);
  t.regex(said, /the stage of \/var\/lib\/dokku\/\{config,data,services,plugins\} 717 MB/);
  t.regex(said, /the datastore exports 307 MB/);
  t.false(said.includes(' / ('), 'the root filesystem has room');
  t.deepEqual(full.seen.states, ['new: unchanged']);
  t.false(full.seen.calls.some((c) => c.id === 'create-archive'));
});

const PS = (deployed: boolean) =>
  JSON.stringify({
    deployed: String(deployed),
    processes: '1',
    running: String(deployed),
    restore: 'true',
  });

test('inventory: apps with their deploy method, services, plugins, networks; mounts warned; manifest written 0600', async (t) => {
  const cmd = (id: string) => plannedCommand('backup', BACKUP, 'inventory', id);
  const src = (source: string, metadata: string): Answer => ({
    stdout: `deploy-source=${source}\ndeploy-source-metadata=${metadata}\n`,
  });
  const { seen, result, error } = await runStep('backup', BACKUP, 'inventory', {
    'host-facts': FACTS_OLD,
    'apps-list': { stdout: '=====> My Apps\napi\nimg\nnew-app\ntarball\n' },
    'deploy-source': byBinding(await cmd('deploy-source'), [
      [{ app: 'api' }, src('git-push', 'abc123')],
      [{ app: 'img' }, src('docker-image', 'lab/whoami:1.0')],
      [{ app: 'new-app' }, src('', '')],
      [{ app: 'tarball' }, src('tar.gz', 'https://x.test/a.tgz')],
    ]),
    'ps-report': byBinding(await cmd('ps-report'), [[{ app: 'new-app' }, { stdout: PS(false) }]], {
      stdout: PS(true),
    }),
    'storage-list': byBinding(
      await cmd('storage-list'),
      [
        [
          { app: 'api' },
          {
            stdout: JSON.stringify([
              {
                entry_name: 'a',
                host_path: '/var/lib/dokku/data/storage/api',
                container_path: '/s',
              },
              { entry_name: 'b', host_path: '/srv/uploads', container_path: '/u' },
              { entry_name: 'c', host_path: 'cache-vol', container_path: '/c' },
            ]),
          },
        ],
      ],
      { stdout: '[]' },
    ),
    'plugin-list': {
      stdout:
        "  apps                 0.38.27 enabled    dokku core apps plugin\n  postgres             1.48.0 enabled    dokku postgres service plugin\n  redis                1.40.0 disabled   dokku redis service plugin\n  letsencrypt          0.22.0 enabled    Automated installation of let's encrypt TLS certificates\n",
    },
    'service-list': byBinding(await cmd('service-list'), [
      [{ plugin: 'postgres' }, { stdout: 'db\nother\n' }],
    ]),
    'service-facts': byBinding(await cmd('service-facts'), [
      [
        { plugin: 'postgres', service: 'db' },
        { stdout: 'IMAGE=postgres\nIMAGE_VERSION=18.4\nLINKS=api img \n' },
      ],
      [
        { plugin: 'postgres', service: 'other' },
        { stdout: 'IMAGE=postgres\nIMAGE_VERSION=18.4\nLINKS=\n' },
      ],
    ]),
    'plugin-capabilities': {
      stdout: 'sub create\nsub export\nsub import\nsub info\nunimplemented "backup-auth"\n',
    },
    'service-status': (call) => ({
      stdout: call.vars.service === 'other' ? 'stopped\n' : 'running\n',
    }),
    'network-list': {
      stdout: JSON.stringify([
        { Name: 'bridge', Driver: 'bridge', Labels: {}, DokkuManaged: false },
        { Name: 'ferry-net', Driver: 'bridge', Labels: {}, DokkuManaged: true },
        { Name: 'someone-else', Driver: 'bridge', Labels: {}, DokkuManaged: false },
        { Name: 'overlay-net', Driver: 'overlay', Labels: {}, DokkuManaged: true },
      ]),
    },
    'data-size': { stdout: '2048\ttotal\n' },
  });
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
      status: 'running',
    },
    {
      plugin: 'postgres',
      name: 'other',
      image: 'postgres',
      imageVersion: '18.4',
      links: [],
      status: 'stopped',
    },
  ]);
  t.deepEqual(m.datastores, {
    postgres: {
      implemented: ['create', 'export', 'import', 'info'],
      unimplemented: ['backup-auth'],
      known: true,
    },
  });
  t.true(seen.logs.includes('postgres other is stopped on old: carried as it is'));
  // A disabled plugin (redis) and a plugin that is no datastore (letsencrypt) are not asked.
  t.deepEqual(commandsOf(seen, 'service-list'), ['dokku --quiet postgres:list']);
  t.deepEqual(
    m.plugins.filter((p) => !p.core).map((p) => p.name),
    ['postgres', 'redis', 'letsencrypt'],
  );
  // Dokku's own networks only (someone-else's is left alone); a non-bridge one is warned.
  t.deepEqual(m.networks, ['ferry-net', 'overlay-net']);
  t.true(seen.logs.some((l) => /network someone-else is not Dokku's/.test(l)));
  t.is(m.dataBytes, 2048 * 1024);
  t.like(m.source, { host: 'old', dokkuVersion: '0.38.27', arch: 'x86_64', dokkuUid: 1001 });
  t.is(m.warnings.length, 3);
  t.regex(m.warnings[2]!, /network overlay-net uses the overlay driver/);
  t.regex(
    m.warnings[0]!,
    /api: mount \/srv\/uploads:\/u: host path .* outside \/var\/lib\/dokku\/data\/storage/,
  );
  t.regex(m.warnings[1]!, /docker volume cache-vol/);
  t.deepEqual(seen.warnings, m.warnings);
  const write = seen.calls.find((c) => c.id === 'write-manifest');
  t.truthy(write);
  t.is(write!.command, `umask 077 && cat > /srv/archives/old-${RUN}/manifest.json`);
  t.deepEqual(JSON.parse(write!.stdin ?? ''), m);
  t.deepEqual(commandsOf(seen, 'run-dirs'), [
    `install -d -m 0700 /srv/archives /srv/archives/old-${RUN}`,
  ]);
  const order = ids(seen.calls);
  t.true(
    order.indexOf('run-dirs') >= 0 && order.indexOf('run-dirs') < order.indexOf('write-manifest'),
  );
});

test('inventory: an app on k3s is refused before anything is written; before 0.35.3 networks come from the text list', async (t) => {
  const base: Record<string, Answer> = {
    'host-facts': FACTS_OLD,
    'apps-list': { stdout: 'api\nweb\n' },
    'ps-report': { stdout: PS(true) },
    'storage-list': { stdout: '[]' },
    'plugin-list': { stdout: '  apps                 0.38.27 enabled    dokku core apps plugin\n' },
    'network-list': { code: 1, stderr: ' !     Invalid flag passed: --format\n' },
    'network-list-text': { stdout: '=====> Networks\nbridge\nmy-net\n' },
  };
  const k3s = await runStep('backup', BACKUP, 'inventory', {
    ...base,
    schedulers: { stdout: '--global docker-local\nweb k3s\n' },
  });
  t.true(k3s.error instanceof StopError);
  t.regex((k3s.error as Error).message, /^web is scheduled on k3s/);
  t.false(k3s.seen.calls.some((c) => c.id === 'run-dirs' || c.id === 'write-manifest'));
  const globalK3s = await runStep('backup', BACKUP, 'inventory', {
    ...base,
    schedulers: { stdout: '--global k3s\napi docker-local\n' },
  });
  t.regex(
    (globalK3s.error as Error).message,
    /^web is scheduled on k3s/,
    'the global scheduler counts',
  );

  const old = await runStep('backup', BACKUP, 'inventory', base);
  t.is(old.error, undefined, String(old.error));
  t.deepEqual((old.result?.manifest as unknown as Manifest | undefined)?.networks, ['my-net']);
});

test('inventory: an older Dokku without --format json falls back to the text reports', async (t) => {
  const noFormat: Answer = { code: 1, stderr: ' !     unknown flag: --format\n' };
  const { seen, result, error } = await runStep('backup', BACKUP, 'inventory', {
    'host-facts': { stdout: 'dokku version 0.37.7\nx86_64\n1001\n1001\n' },
    'apps-list': { stdout: 'web\n' },
    'deploy-source': { stdout: 'deploy-source=\ndeploy-source-metadata=\n' },
    'ps-report': noFormat,
    'storage-list': noFormat,
    'ps-report-text': {
      stdout:
        '=====> web ps information\n       Deployed:                      true\n       Processes:                     1\n       Restore:                       false\n       Running:                       false\n',
    },
    'storage-list-text': { stdout: '-v /var/lib/dokku/data/storage/web:/data\n' },
    'plugin-list': {
      stdout: '  apps                 0.37.7 enabled    dokku core apps plugin\n',
    },
    'data-size': { stdout: '1\ttotal\n' },
  });
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
  // The text forms ran, for that app, after the JSON forms failed.
  t.deepEqual(commandsOf(seen, 'ps-report-text'), ['dokku ps:report web']);
  t.deepEqual(commandsOf(seen, 'storage-list-text'), ['dokku storage:list web']);
});

const DB = { plugin: 'postgres', name: 'db', image: 'postgres', imageVersion: '18.4', links: [] };

test('export-datastores: one export per manifest service, sums reported; a failed export says how to fix it', async (t) => {
  const manifest = manifestOf({ runId: RUN, services: [DB] });
  const sum = 'b'.repeat(64);
  const ok = await runStep(
    'backup',
    BACKUP,
    'export-datastores',
    { 'export-sums': { stdout: `${sum}  postgres-db.dump\nsize 2791 postgres-db.dump\n` } },
    { manifest },
  );
  t.is(ok.error, undefined, String(ok.error));
  t.deepEqual(
    ok.seen.calls.filter((c) => c.id === 'export').map((c) => [c.host, c.command]),
    [
      [
        'old',
        `umask 077 && dokku postgres:export db > /srv/archives/old-${RUN}/exports/postgres-db.dump.part && mv -f /srv/archives/old-${RUN}/exports/postgres-db.dump.part /srv/archives/old-${RUN}/exports/postgres-db.dump`,
      ],
    ],
  );
  t.deepEqual(ok.result?.exports, [
    { plugin: 'postgres', service: 'db', file: 'postgres-db.dump', sha256: sum, bytes: 2791 },
  ]);

  const failed = await runStep(
    'backup',
    BACKUP,
    'export-datastores',
    { export: { code: 1, stderr: ' !     Service is not running\n' } },
    { manifest },
  );
  t.true(failed.error instanceof FerryError);
  t.regex((failed.error as FerryError).hint ?? '', /postgres:start db/);
  t.false(
    failed.seen.calls.some((c) => c.id === 'export-sums'),
    'no sums after a failed export',
  );
});

test('export-datastores: a service name from the manifest reaches the shell as quoted words', async (t) => {
  // A manifest is read back from a file: its names are bound as values, never as shell text.
  const manifest = manifestOf({ runId: RUN, services: [{ ...DB, name: "d$(id)b 'x" }] });
  const { seen } = await runStep('backup', BACKUP, 'export-datastores', {}, { manifest });
  const file = `/srv/archives/old-${RUN}/exports/postgres-'d$(id)b '\\''x'.dump`;
  t.deepEqual(commandsOf(seen, 'export'), [
    `umask 077 && dokku postgres:export 'd$(id)b '\\''x' > ${file}.part && mv -f ${file}.part ${file}`,
  ]);
});

test('export-datastores: a plugin without export, and a stopped service, are copied as files and not exported', async (t) => {
  const cache = {
    plugin: 'memcached',
    name: 'cache',
    image: 'memcached',
    imageVersion: '1.6.42',
    links: [],
    status: 'running',
  };
  const idle = { ...DB, name: 'idle', status: 'stopped' };
  const manifest = manifestOf({
    runId: RUN,
    services: [DB, cache, idle],
    datastores: {
      postgres: {
        implemented: ['create', 'export', 'import', 'info'],
        unimplemented: [],
        known: true,
      },
      memcached: {
        implemented: ['create', 'info'],
        unimplemented: ['export', 'import'],
        known: true,
      },
    },
  });
  const sum = 'c'.repeat(64);
  const r = await runStep(
    'backup',
    BACKUP,
    'export-datastores',
    { 'export-sums': { stdout: `${sum}  postgres-db.dump\nsize 10 postgres-db.dump\n` } },
    { manifest },
  );
  t.is(r.error, undefined, String(r.error));
  t.deepEqual(
    r.seen.calls.filter((c) => c.id === 'export').map((c) => c.vars),
    [{ plugin: 'postgres', service: 'db' }],
    'only the running postgres service is exported',
  );
  t.deepEqual(r.result?.notExported, [
    { plugin: 'memcached', service: 'cache', why: 'dokku-memcached does not implement export' },
    { plugin: 'postgres', service: 'idle', why: 'it is stopped: its files are copied as they are' },
  ]);
  t.deepEqual(
    ((r.result?.exports ?? []) as { service: string }[]).map((e) => e.service),
    ['db'],
  );
});

test('export-datastores: an export that hangs past its time limit names the service', async (t) => {
  const manifest = manifestOf({ runId: RUN, services: [DB] });
  const r = await runStep(
    'backup',
    BACKUP,
    'export-datastores',
    { export: { signal: 'its 3600000 ms timeout' } },
    { manifest },
  );
  t.true(r.error instanceof FerryError);
  t.is(
    (r.error as Error).message,
    'postgres:export db on old did not finish in 3600 s: the service hangs',
  );
  t.regex((r.error as FerryError).hint ?? '', /dokku postgres:logs db/);
  t.is(r.seen.calls.find((c) => c.id === 'export')?.timeoutMs, 3_600_000);
});

test('retention: reports what it removed', async (t) => {
  const { seen, result } = await runStep('backup', BACKUP, 'retention', {
    prune: { stdout: 'removed /srv/archives/old-20200101T000000Z\n' },
  });
  t.deepEqual(result, { keep: 2, removed: ['/srv/archives/old-20200101T000000Z'] });
  t.true(seen.logs.includes('removed /srv/archives/old-20200101T000000Z'));
});
