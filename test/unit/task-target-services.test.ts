/** verify-archive, clear-stale, recreate-engine, start-services, plugin-triggers: decisions on scripted hosts. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StopError } from '../../src/errors.js';
import { $ } from '../../src/ssh/shell.js';
import clearStale from '../../src/tasks/clear-stale.js';
import pluginTriggers from '../../src/tasks/plugin-triggers.js';
import recreateEngine, { networkCommand } from '../../src/tasks/recreate-engine.js';
import { discardStageCommand } from '../../src/tasks/stage.js';
import startServices, { createAgainCommand } from '../../src/tasks/start-services.js';
import type { PlanContext } from '../../src/tasks/types.js';
import verifyArchive from '../../src/tasks/verify-archive.js';
import { commandsOf, manifestOf, runTask, taskInventory } from './task-fake.js';

const RUN = '20261123T100000Z';
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function ctx<P>(task: string, params: P): PlanContext<P> {
  const inv = taskInventory();
  return {
    step: { id: task, task, on: 'target', index: 5 },
    params,
    host: inv.hosts.new,
    roles: { source: inv.hosts.old, target: inv.hosts.new },
    inventory: inv,
    options: { runId: RUN },
  };
}

/** Rethrows what a run failed with, for t.throws. */
const rethrow = (e: unknown) => () => {
  throw e;
};

const services = manifestOf({
  services: [
    { plugin: 'postgres', name: 'db', image: 'postgres', imageVersion: '15.18', links: ['api'] },
    { plugin: 'postgres', name: "it's", image: 'postgres', imageVersion: '15.18', links: [] },
  ],
  apps: [
    {
      name: 'api',
      method: 'git',
      deploySource: 'git-push',
      deploySourceMetadata: null,
      deployed: true,
      running: 'true',
      restore: true,
      mounts: [],
    },
  ],
  networks: ['bridge', 'ferry-net', 'host', 'none'],
  plugins: [
    { name: 'postgres', version: '1.48.0', enabled: true, core: false },
    { name: 'apps', version: '0.38.27', enabled: true, core: true },
  ],
});

test('verify-archive: a checksum mismatch stops, discards the stage, saying nothing was moved', async (t) => {
  const c = ctx('verify-archive', { from: 'source', data: 'live' as const });
  const f = await runTask(verifyArchive, c, {
    manifest: services,
    answers: { 'sent-sum': { stdout: `${A}\n` }, 'received-sum': { stdout: `${B}\n` } },
  });
  const e = t.throws(rethrow(f.error), { instanceOf: StopError });
  t.regex(e!.message, /checksum mismatch/);
  t.regex(f.seen.states.at(-1)!, /nothing moved into place/);
  t.deepEqual(
    f.seen.calls.filter((x) => x.id === 'sent-sum' || x.id === 'received-sum').map((x) => x.host),
    ['old', 'new'],
    "each sum read where it was written: the sender's on old, the receiver's on new",
  );
  // The reads are asked at once; the only change made is the stage's removal.
  const planned = verifyArchive.plan(c);
  const changes = f.seen.calls.filter((x) => planned.find((a) => a.id === x.id)?.changes);
  t.deepEqual(
    changes.map((x) => [x.id, x.host]),
    [['discard-stage', 'new']],
  );
  t.is(
    f.seen.calls.filter((x) => /\b(rm|mv|install)\b/.test(x.command)).length,
    1,
    'no other command line removes, moves or installs anything',
  );
  t.is(changes[0]!.command, discardStageCommand(RUN).render());
  t.regex(changes[0]!.command, /^rm -rf -- \/home\/dokku\/\.ferry-stage-/);
});

test('verify-archive: equal sums pass; a service without an export is warned', async (t) => {
  const c = ctx('verify-archive', { from: 'source', data: 'live' as const });
  const f = await runTask(verifyArchive, c, {
    manifest: services,
    answers: {
      'sent-sum': { stdout: `${A}\n` },
      'received-sum': { stdout: `${A}\n` },
      'export-sums-check': { stdout: 'postgres-db.dump\n' },
    },
  });
  t.is(f.error, undefined);
  t.like(f.result, { sha256: A, exports: 1 });
  t.is(f.seen.warnings.length, 1);
  t.regex(f.seen.warnings[0]!, /postgres-it's\.dump/);
  t.false(
    f.seen.calls.some((x) => x.id === 'discard-stage'),
    'a verified stage is kept',
  );
});

test('clear-stale: holds restore off per app, falling back to the ≤0.37 ENV flag', async (t) => {
  const c = ctx('clear-stale', {});
  const f = await runTask(clearStale, c, {
    manifest: services,
    answers: {
      'clear-locks': { stdout: '/var/lib/dokku/data/apps/api/.deploy.lock\n' },
      'hold-restore': { code: 1 },
    },
  });
  t.is(f.error, undefined);
  t.like(f.result, { locks: 1, restoreHeld: ['api'] });
  t.deepEqual(commandsOf(f.seen, 'hold-restore'), ['dokku ps:set api restore false']);
  t.deepEqual(commandsOf(f.seen, 'hold-restore-env'), [
    'dokku config:set --no-restart api DOKKU_APP_RESTORE=0',
  ]);
});

test('recreate-engine: skips built-in networks, pulls only missing images, copies cron from the source', async (t) => {
  const c = ctx('recreate-engine', { from: 'source', cron: true });
  const f = await runTask(recreateEngine, c, {
    manifest: services,
    answers: {
      image: { stdout: 'Status: Downloaded newer image for postgres:15.18\n' },
      'cron-before': { stdout: 'dokku-letsencrypt\n' },
      'read-cron': { stdout: 'dGFy\n' },
      'write-cron': { stdout: 'dokku-postgres-db\ndokku-letsencrypt\n' },
    },
  });
  t.is(f.error, undefined);
  t.deepEqual(f.result, {
    networks: ['ferry-net'],
    images: ['postgres:15.18'],
    pulled: ['postgres:15.18'],
    cron: ['dokku-postgres-db', 'dokku-letsencrypt'],
    cronAdded: ['dokku-postgres-db'],
  });
  t.deepEqual(commandsOf(f.seen, 'network'), [networkCommand('ferry-net').render()]);
  t.is(f.seen.calls.filter((x) => x.command.includes('network:create')).length, 1);
  t.deepEqual(
    f.seen.calls.filter((x) => x.id.includes('cron')).map((x) => [x.id, x.host]),
    [
      ['cron-before', 'new'],
      ['read-cron', 'old'],
      ['write-cron', 'new'],
    ],
  );
  const write = f.seen.calls.find((x) => x.id === 'write-cron')!;
  t.true(write.command.startsWith('base64 -d'));
  t.is(write.stdin, 'dGFy');
  const drill = ctx('recreate-engine', { cron: false });
  const drillPlan = recreateEngine.plan(drill);
  t.deepEqual(
    drillPlan.map((a) => a.id),
    ['network', 'image'],
    'a drill copies no cron entries',
  );
  t.false(drillPlan.some((a) => a.kind === 'remote' && a.command.toString().includes('cron')));
});

test('start-services: a running service is left alone; one that fails, does not run or runs another version is re-created as it was', async (t) => {
  const c = ctx('start-services', {});
  const running = { stdout: 'running\n' };
  const f = await runTask(startServices, c, {
    manifest: services,
    answers: {
      start: (call) => ({ code: call.vars.service === 'db' ? 0 : 1 }),
      'service-status': running,
      'running-again': running,
      'service-version': { stdout: 'postgres:15.18\n' },
    },
  });
  t.is(f.error, undefined, String(f.error));
  t.deepEqual(f.result, {
    services: { 'postgres:db': 'started', "postgres:it's": 'recreated' },
    recreated: ["postgres:it's"],
  });
  t.deepEqual(commandsOf(f.seen, 'start'), [
    'dokku postgres:start db',
    "dokku postgres:start 'it'\\''s'",
  ]);
  const again = f.seen.calls.filter((x) => x.id === 'create-again');
  t.deepEqual(
    again.map((x) => x.vars),
    [{ plugin: 'postgres', service: "it's" }],
    'only the failed service is created again',
  );
  t.true(commandsOf(f.seen, 'import-export')[0]!.includes("dokku postgres:import 'it'\\''s' < "));
  t.deepEqual(
    f.seen.calls
      .filter((x) => x.vars.service === "it's")
      .map((x) => x.id)
      .filter((id) => id !== 'start'),
    [
      'stop-half-started',
      'set-aside',
      'create-again',
      'import-export',
      'copy-links',
      'expose-again',
      'copy-backup-settings',
      'running-again',
    ],
    'the re-creation runs every step, in order',
  );

  const other = await runTask(startServices, c, {
    manifest: manifestOf({ services: [services.services[0]!] }),
    answers: {
      'service-status': running,
      'running-again': running,
      'service-version': { stdout: 'postgres:16.4\n' },
    },
  });
  t.like(other.result, { recreated: ['postgres:db'] });
  t.regex(other.seen.warnings[0]!, /runs postgres:16\.4, the source ran postgres:15\.18/);

  const down = await runTask(startServices, c, {
    manifest: manifestOf({ services: [services.services[0]!] }),
    answers: { 'service-status': { stdout: 'exited\n' }, 'running-again': running },
  });
  t.like(down.result, { recreated: ['postgres:db'] });
  t.regex(down.seen.warnings[0]!, /its status is exited/);
});

test('start-services: a service stopped on the source stays stopped; one whose plugin has no export comes back empty, said loudly', async (t) => {
  const c = ctx('start-services', {});
  const cache = {
    plugin: 'memcached',
    name: 'cache',
    image: 'memcached',
    imageVersion: '1.6.42',
    links: [],
  };
  const f = await runTask(startServices, c, {
    manifest: manifestOf({
      services: [
        { ...services.services[0]!, status: 'stopped' },
        { ...cache, status: 'running' },
      ],
      datastores: {
        memcached: {
          implemented: ['create', 'info'],
          unimplemented: ['export', 'import'],
          known: true,
        },
      },
    }),
    answers: {
      start: { code: 1 },
      'running-again': { stdout: 'running\n' },
      'import-export': { stdout: 'ferry-no-export\n' },
    },
  });
  t.is(f.error, undefined, String(f.error));
  t.deepEqual(f.result, {
    services: { 'postgres:db': 'left stopped', 'memcached:cache': 'recreated empty' },
    recreated: ['memcached:cache'],
  });
  t.false(
    f.seen.calls.some((x) => x.vars.service === 'db'),
    'nothing is run for the stopped one',
  );
  t.regex(
    f.seen.warnings[0]!,
    /re-created as it was, EMPTY: dokku-memcached does not implement export/,
  );
});

test('start-services: the re-created service gets every setting its old folder recorded', (t) => {
  const dir = mkdtempSync(join(tmpdir(), "ferry aside it's "));
  try {
    const files: Record<string, string> = {
      IMAGE: 'postgres\n',
      IMAGE_VERSION: '15.18\n',
      PASSWORD: "pa ss'word\n",
      ROOTPASSWORD: '',
      CONFIG_OPTIONS: '-c max_connections=50\n',
      SERVICE_MEMORY: '512\n',
      ENV: 'TZ=UTC\nLANG=C.UTF-8\n\n',
    };
    for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), v);
    const cmd = createAgainCommand('postgres', "it's", $`${dir}`).render();
    // A `dokku` that prints its arguments, one a line.
    const out = execFileSync(
      'bash',
      ['-c', `set -euo pipefail\ndokku() { printf '%s\\n' "$@"; }\n${cmd}`],
      {
        encoding: 'utf8',
      },
    );
    t.deepEqual(out.trimEnd().split('\n'), [
      'postgres:create',
      "it's",
      '--image',
      'postgres',
      '--image-version',
      '15.18',
      '--password',
      "pa ss'word",
      '--config-options',
      '-c max_connections=50',
      '--memory',
      '512',
      '--custom-env',
      'TZ=UTC;LANG=C.UTF-8',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plugin-triggers: both triggers run, then every plugin of the manifest must be enabled', async (t) => {
  const c = ctx('plugin-triggers', {});
  const list =
    '  apps                 0.38.27 enabled    dokku core apps plugin\n  postgres             1.48.0 disabled   dokku postgres service plugin\n';
  const f = await runTask(pluginTriggers, c, {
    manifest: services,
    answers: { 'plugin-list': { stdout: list } },
  });
  t.throws(rethrow(f.error), { instanceOf: StopError, message: /postgres/ });
  t.deepEqual(
    f.seen.calls.map((x) => [x.id, x.command]),
    [
      ['dependencies', 'dokku plugin:install-dependencies'],
      ['install', 'dokku plugin:install'],
      ['plugin-list', 'dokku plugin:list'],
    ],
  );
  const ok = await runTask(pluginTriggers, c, {
    manifest: services,
    answers: { 'plugin-list': { stdout: list.replace('disabled', 'enabled ') } },
  });
  t.like(ok.result, { plugins: ['apps', 'postgres'] });
});
