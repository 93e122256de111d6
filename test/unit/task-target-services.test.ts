/** verify-archive, clear-stale, recreate-engine, start-services, plugin-triggers: decisions on scripted hosts. */
import test from 'ava';
import { StopError } from '../../src/errors.js';
import clearStale, { run as runClearStale } from '../../src/tasks/clear-stale.js';
import pluginTriggers, { run as runPluginTriggers } from '../../src/tasks/plugin-triggers.js';
import recreateEngine, { run as runRecreate } from '../../src/tasks/recreate-engine.js';
import startServices, { run as runStart } from '../../src/tasks/start-services.js';
import type { PlanContext } from '../../src/tasks/types.js';
import verifyArchive, { run as runVerify } from '../../src/tasks/verify-archive.js';
import { fakeRuntime, manifestOf, type Rule, targetInventory } from './task-target-fake.js';

const RUN = '20261123T100000Z';
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function ctx<P>(task: string, params: P): PlanContext<P> {
  const inv = targetInventory();
  return {
    step: { id: task, task, on: 'target', index: 5 },
    params,
    host: inv.hosts.new,
    roles: { source: inv.hosts.old, target: inv.hosts.new },
    inventory: inv,
    options: { runId: RUN },
  };
}

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
  const rules: Rule[] = [
    { host: 'old', match: 'stream.sha256', stdout: `${A}\n` },
    { host: 'new', match: '/data.sha256', stdout: `${B}\n` },
  ];
  const f = fakeRuntime(c, verifyArchive.plan(c), rules, services);
  const e = await t.throwsAsync(runVerify(f.rt), { instanceOf: StopError });
  t.regex(e!.message, /checksum mismatch/);
  t.regex(f.seen.hostStates.at(-1)!, /nothing moved into place/);
  // The reads are asked at once; the only change made is the stage's removal.
  const changes = f.seen.execs.filter((x) => /\b(rm|mv|install)\b/.test(x.command));
  t.is(changes.length, 1);
  t.regex(changes[0]!.command, /^rm -rf -- \/home\/dokku\/\.ferry-stage-/);
});

test('verify-archive: equal sums pass; a service without an export is warned', async (t) => {
  const c = ctx('verify-archive', { from: 'source', data: 'live' as const });
  const rules: Rule[] = [
    { host: 'old', match: 'stream.sha256', stdout: `${A}\n` },
    { host: 'new', match: '/data.sha256', stdout: `${A}\n` },
    { match: 'SHA256SUMS', stdout: 'postgres-db.dump\n' },
  ];
  const f = fakeRuntime(c, verifyArchive.plan(c), rules, services);
  t.like(await runVerify(f.rt), { sha256: A, exports: 1 });
  t.is(f.seen.warnings.length, 1);
  t.regex(f.seen.warnings[0]!, /postgres-it's\.dump/);
});

test('clear-stale: holds restore off per app, falling back to the ≤0.37 ENV flag', async (t) => {
  const c = ctx('clear-stale', {});
  const f = fakeRuntime(
    c,
    clearStale.plan(c),
    [
      { match: '.deploy.lock', stdout: '/var/lib/dokku/data/apps/api/.deploy.lock\n' },
      { match: 'ps:set', code: 1 },
    ],
    services,
  );
  const out = await runClearStale(f.rt);
  t.like(out, { locks: 1, restoreHeld: ['api'] });
  t.true(f.seen.execs.some((x) => x.command === 'dokku ps:set api restore false'));
  t.true(
    f.seen.execs.some((x) => x.command === 'dokku config:set --no-restart api DOKKU_APP_RESTORE=0'),
  );
});

test('recreate-engine: skips built-in networks, pulls only missing images, copies cron from the source', async (t) => {
  const c = ctx('recreate-engine', { from: 'source', cron: true });
  const f = fakeRuntime(
    c,
    recreateEngine.plan(c),
    [
      {
        match: 'docker image inspect',
        stdout: 'Status: Downloaded newer image for postgres:15.18\n',
      },
      { host: 'old', match: 'base64 -w0', stdout: 'dGFy\n' },
      { host: 'new', match: 'base64 -d', stdout: 'dokku-postgres-db\n' },
    ],
    services,
  );
  const out = await runRecreate(f.rt);
  t.deepEqual(out, {
    networks: ['ferry-net'],
    images: ['postgres:15.18'],
    pulled: ['postgres:15.18'],
    cron: ['dokku-postgres-db'],
  });
  t.is(f.seen.execs.filter((x) => x.command.includes('network:create')).length, 1);
  t.is(f.seen.execs.find((x) => x.command.startsWith('base64 -d'))!.stdin, 'dGFy');
  const drill = ctx('recreate-engine', { cron: false });
  t.false(
    recreateEngine.plan(drill).some((a) => a.kind === 'remote' && a.command.includes('cron')),
    'a drill copies no cron entries',
  );
});

test('start-services: a service that answers is left alone; one that fails or runs another version is re-created from its export', async (t) => {
  const c = ctx('start-services', {});
  const f = fakeRuntime(
    c,
    startServices.plan(c),
    [
      { match: 'dokku postgres:start db && ', code: 0 },
      { match: 'dokku postgres:info db --version', stdout: 'postgres:15.18\n' },
      { match: "dokku postgres:start 'it'\\''s'", code: 1 },
    ],
    services,
  );
  const out = await runStart(f.rt);
  t.deepEqual(out, {
    services: { 'postgres:db': 'started', "postgres:it's": 'recreated' },
    recreated: ["postgres:it's"],
  });
  const cmds = f.seen.execs.map((x) => x.command);
  t.true(cmds.some((x) => x.startsWith("dokku postgres:create 'it'\\''s' --image")));
  t.true(cmds.some((x) => x.startsWith("dokku postgres:import 'it'\\''s' < ")));
  t.false(cmds.some((x) => x.startsWith('dokku postgres:create db')));

  const other = fakeRuntime(
    c,
    startServices.plan(c),
    [{ match: 'postgres:info', stdout: 'postgres:16.4\n' }],
    manifestOf({ services: [services.services[0]!] }),
  );
  t.like(await runStart(other.rt), { recreated: ['postgres:db'] });
  t.regex(other.seen.warnings[0]!, /runs postgres:16\.4, the source ran postgres:15\.18/);
});

test('plugin-triggers: both triggers run, then every plugin of the manifest must be enabled', async (t) => {
  const c = ctx('plugin-triggers', {});
  const list =
    '  apps                 0.38.27 enabled    dokku core apps plugin\n  postgres             1.48.0 disabled   dokku postgres service plugin\n';
  const f = fakeRuntime(
    c,
    pluginTriggers.plan(c),
    [{ match: 'plugin:list', stdout: list }],
    services,
  );
  await t.throwsAsync(runPluginTriggers(f.rt), { instanceOf: StopError, message: /postgres/ });
  t.deepEqual(
    f.seen.execs.map((x) => x.command),
    ['dokku plugin:install-dependencies', 'dokku plugin:install', 'dokku plugin:list'],
  );
  const ok = fakeRuntime(
    c,
    pluginTriggers.plan(c),
    [{ match: 'plugin:list', stdout: list.replace('disabled', 'enabled ') }],
    services,
  );
  t.like(await runPluginTriggers(ok.rt), { plugins: ['apps', 'postgres'] });
});
