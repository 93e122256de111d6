/** verify-archive, clear-stale, recreate-engine, start-services, plugin-triggers: decisions on scripted hosts. */
import test from 'ava';
import { StopError } from '../../src/errors.js';
import clearStale from '../../src/tasks/clear-stale.js';
import pluginTriggers from '../../src/tasks/plugin-triggers.js';
import recreateEngine, { networkCommand } from '../../src/tasks/recreate-engine.js';
import { discardStageCommand } from '../../src/tasks/stage.js';
import startServices from '../../src/tasks/start-services.js';
import type { PlanContext } from '../../src/tasks/types.js';
import verifyArchive from '../../src/tasks/verify-archive.js';
import {
  type Answer,
  type Call,
  commandsOf,
  manifestOf,
  runTask,
  taskInventory,
} from './task-fake.js';

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

/**
 * Answers one action differently per item (a service, an app): by the exact
 * command line bound for it, which also proves the binding's quoting.
 */
function perCommand(map: Record<string, Answer>, otherwise: Answer = {}): (call: Call) => Answer {
  return (call) => map[call.command] ?? otherwise;
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

test('start-services: a service that answers is left alone; one that fails or runs another version is re-created from its export', async (t) => {
  const c = ctx('start-services', {});
  const f = await runTask(startServices, c, {
    manifest: services,
    answers: {
      start: perCommand({
        'dokku postgres:start db && dokku postgres:export db > /dev/null': { code: 0 },
        "dokku postgres:start 'it'\\''s' && dokku postgres:export 'it'\\''s' > /dev/null": {
          code: 1,
        },
      }),
      'service-version': perCommand({
        'dokku postgres:info db --version': { stdout: 'postgres:15.18\n' },
      }),
    },
  });
  t.is(f.error, undefined);
  t.deepEqual(f.result, {
    services: { 'postgres:db': 'started', "postgres:it's": 'recreated' },
    recreated: ["postgres:it's"],
  });
  const creates = commandsOf(f.seen, 'create-again');
  t.is(creates.length, 1, 'only the failed service is created again');
  t.true(creates[0]!.startsWith("dokku postgres:create 'it'\\''s' --image"));
  t.false(creates.some((x) => x.startsWith('dokku postgres:create db')));
  const imports = commandsOf(f.seen, 'import-export');
  t.is(imports.length, 1);
  t.true(imports[0]!.startsWith("dokku postgres:import 'it'\\''s' < "));
  t.deepEqual(
    f.seen.calls.map((x) => x.id).filter((id) => id !== 'start' && id !== 'service-version'),
    [
      'stop-half-started',
      'set-aside',
      'create-again',
      'import-export',
      'copy-links',
      'answers-again',
    ],
    'the re-creation runs every step, in order',
  );

  const other = await runTask(startServices, c, {
    manifest: manifestOf({ services: [services.services[0]!] }),
    answers: { 'service-version': { stdout: 'postgres:16.4\n' } },
  });
  t.like(other.result, { recreated: ['postgres:db'] });
  t.regex(other.seen.warnings[0]!, /runs postgres:16\.4, the source ran postgres:15\.18/);
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
