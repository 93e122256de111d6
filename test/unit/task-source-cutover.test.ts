/** cut-over and release-source: how each app is frozen, what is saved, what the undo brings back. */
import test from 'ava';
import cutOver, { type FreezeRecord, parseFreezeRecord } from '../../src/tasks/cut-over.js';
import type { ManifestApp } from '../../src/tasks/manifest.js';
import releaseSource, { thawScript } from '../../src/tasks/release-source.js';
import type { PlanContext } from '../../src/tasks/types.js';
import { type Call, commandsOf, manifestOf, runTask, taskInventory } from './task-fake.js';

const RUN = '20261123T100000Z';

function ctx<P>(task: string, params: P, options: Record<string, unknown> = {}): PlanContext<P> {
  const inv = taskInventory();
  return {
    step: { id: task, task, on: 'source', index: 3 },
    params,
    host: inv.hosts.old,
    roles: { source: inv.hosts.old, target: inv.hosts.new },
    inventory: inv,
    options: { runId: RUN, ...options },
  };
}

const app = (name: string, extra: Partial<ManifestApp> = {}): ManifestApp => ({
  name,
  method: 'git',
  deploySource: 'git-push',
  deploySourceMetadata: null,
  deployed: true,
  running: 'true',
  restore: true,
  mounts: [],
  ...extra,
});

const manifest = manifestOf({
  apps: [app('web'), app('worker'), app('down', { running: 'false' }), app('closed')],
  services: [
    { plugin: 'postgres', name: 'db', image: 'postgres', imageVersion: '15.18', links: ['web'] },
    { plugin: 'postgres', name: 'idle', image: 'postgres', imageVersion: '15.18', links: [] },
    { plugin: 'memcached', name: 'cache', image: 'memcached', imageVersion: '1.6.42', links: [] },
  ],
  plugins: [{ name: 'maintenance', version: '0.10.1', enabled: true, core: false }],
  datastores: {
    postgres: { implemented: ['export', 'info', 'stop'], unimplemented: [], known: true },
    memcached: { implemented: ['info', 'stop'], unimplemented: ['export'], known: true },
  },
});

const ps = (running: string, restore = true) => ({
  stdout: JSON.stringify({ deployed: 'true', processes: '1', running, restore: String(restore) }),
});

const answers = {
  'apps-now': { stdout: 'closed\ndown\nweb\nworker\n' },
  'app-state': (c: Call) => ps(c.vars.app === 'down' ? 'false' : 'true', c.vars.app !== 'worker'),
  'maintenance-state': (c: Call) => ({ stdout: c.vars.app === 'closed' ? 'true\n' : 'false\n' }),
  'service-state': (c: Call) => ({
    stdout: c.vars.service === 'idle' ? 'exited\n' : 'running\n',
  }),
  'save-state': (c: Call) => ({ stdout: c.stdin ?? '' }),
  // web's page holds; worker has no domain: it is stopped instead.
  'frozen-probe': (c: Call) => ({
    stdout: c.vars.app === 'web' ? '503 312 web.old.lab\n' : '- -\n',
  }),
  'export-sums': { stdout: `${'a'.repeat(64)}  postgres-db.dump\nsize 42 postgres-db.dump\n` },
};

test('cut-over: the state is saved first; a web app whose page holds stays in maintenance, others are stopped; only running services are exported and stopped', async (t) => {
  const f = await runTask(cutOver, ctx('cut-over', { freeze: 'auto', timeout: 3600 }), {
    manifest,
    answers,
  });
  t.is(f.error, undefined, String(f.error));
  const order = f.seen.calls.map((c) => c.id);
  const saved = order.indexOf('save-state');
  for (const change of ['maintenance-on', 'ps-stop', 'export', 'stop-service']) {
    t.true(order.indexOf(change) > saved, `${change} after the state is saved`);
  }
  const record = parseFreezeRecord(f.seen.calls.find((c) => c.id === 'save-state')?.stdin ?? '');
  t.deepEqual(
    record?.apps.map((a) => [a.name, a.running, a.restore, a.maintenance]),
    [
      ['web', 'true', true, false],
      ['worker', 'true', false, false],
      ['down', 'false', true, false],
      ['closed', 'true', true, true],
    ],
  );
  t.deepEqual(commandsOf(f.seen, 'maintenance-on').sort(), [
    'dokku maintenance:enable web',
    'dokku maintenance:enable worker',
  ]);
  t.deepEqual(commandsOf(f.seen, 'ps-stop'), ['dokku ps:stop worker']);
  // worker's page did not hold: out of maintenance again, or the page would travel to the target.
  t.deepEqual(
    f.seen.calls.filter((c) => c.id === 'maintenance-off').map((c) => c.vars.app),
    ['worker'],
  );
  // dokku-memcached has no export: its service is only stopped.
  t.deepEqual(
    f.seen.calls.filter((c) => c.id === 'export').map((c) => c.vars),
    [{ plugin: 'postgres', service: 'db' }],
  );
  t.deepEqual(commandsOf(f.seen, 'stop-service').sort(), [
    'dokku memcached:stop cache',
    'dokku postgres:stop db',
  ]);
  t.like(f.result, {
    cutover: true,
    frozen: { maintenance: ['web'], stopped: ['worker'] },
    servicesStopped: ['postgres/db', 'memcached/cache'],
  });
  t.true(f.seen.logs.some((l) => /memcached cache: not exported/.test(l)));
  t.true(typeof f.result?.frozenAt === 'number');
  t.true(f.seen.warnings.some((w) => /postgres idle was exited/.test(w)));
});

test('cut-over: an app that came or went since the inventory stops the run before anything is frozen', async (t) => {
  const f = await runTask(cutOver, ctx('cut-over', { freeze: 'auto', timeout: 3600 }), {
    manifest,
    answers: { ...answers, 'apps-now': { stdout: 'closed\ndown\nnewcomer\nweb\nworker\n' } },
  });
  t.regex(String(f.error), /changed since the inventory/);
  t.false(f.seen.calls.some((c) => c.id === 'save-state' || c.id === 'ps-stop'));
});

test("cut-over with a selection: the apps it left out still count as the source's, and are not frozen", async (t) => {
  const taken = manifestOf({
    ...manifest,
    apps: manifest.apps.filter((a) => a.name === 'web'),
    selection: {
      asked: { apps: ['web'], excludeApps: [], services: [], excludeServices: [] },
      dropped: { apps: ['closed', 'down', 'worker'], services: [] },
      taken: {},
      cut: [],
    },
  });
  const f = await runTask(cutOver, ctx('cut-over', { freeze: 'auto', timeout: 3600 }), {
    manifest: taken,
    answers,
  });
  t.is(f.error, undefined, String(f.error));
  t.false(
    f.seen.calls.some((c) => c.id === 'ps-stop' && /worker/.test(c.command)),
    'an app left out keeps running',
  );
  const gone = await runTask(cutOver, ctx('cut-over', { freeze: 'auto', timeout: 3600 }), {
    manifest: taken,
    answers: { ...answers, 'apps-now': { stdout: 'closed\ndown\nweb\n' } },
  });
  t.regex(
    String(gone.error),
    /changed since the inventory/,
    'a left-out app that went still counts',
  );
});

test('cut-over: freeze stop (or no dokku-maintenance) stops every running app; a rerun keeps the state the first attempt saved', async (t) => {
  const first: FreezeRecord = {
    version: 1,
    savedAt: '2026-11-23T10:00:00.000Z',
    apps: [
      { name: 'web', running: 'true', restore: true, maintenance: false },
      { name: 'worker', running: 'false', restore: false, maintenance: false },
    ],
    services: [{ plugin: 'postgres', name: 'db', status: 'running' }],
  };
  const f = await runTask(cutOver, ctx('cut-over', { freeze: 'stop', timeout: 3600 }), {
    manifest: manifestOf({ ...manifest, apps: [app('web'), app('worker')] }),
    answers: {
      ...answers,
      'apps-now': { stdout: 'web\nworker\n' },
      // worker is stopped now: by the first attempt. The saved state says it ran not.
      'save-state': { stdout: JSON.stringify(first) },
    },
  });
  t.is(f.error, undefined, String(f.error));
  t.false(f.seen.calls.some((c) => c.id === 'maintenance-on' || c.id === 'maintenance-state'));
  t.deepEqual(commandsOf(f.seen, 'ps-stop'), ['dokku ps:stop web']);
  t.true(f.seen.logs.some((l) => /earlier attempt froze old/.test(l)));
});

test('cut-over undo: services first, then each app that ran back up with its restore property, out of maintenance unless it was in it', async (t) => {
  const saved: FreezeRecord = {
    version: 1,
    savedAt: 'x',
    apps: [
      { name: 'web', running: 'true', restore: true, maintenance: false },
      { name: 'worker', running: 'true', restore: false, maintenance: false },
      { name: 'down', running: 'false', restore: true, maintenance: false },
      { name: 'closed', running: 'true', restore: true, maintenance: true },
    ],
    services: [
      { plugin: 'postgres', name: 'db', status: 'running' },
      { plugin: 'postgres', name: 'idle', status: 'exited' },
    ],
  };
  const c = ctx('cut-over', { freeze: 'auto', timeout: 3600 });
  const def = { ...cutOver, run: cutOver.undo! } as typeof cutOver;
  const f = await runTask(def as never, c, {
    manifest,
    answers: { 'read-saved': { stdout: JSON.stringify(saved) } },
  });
  t.is(f.error, undefined, String(f.error));
  const ids = f.seen.calls.map((x) => x.id);
  t.is(ids.indexOf('start-service'), 1, 'services come back before the apps');
  t.deepEqual(commandsOf(f.seen, 'start-service'), ['dokku postgres:start db']);
  t.deepEqual(commandsOf(f.seen, 'ps-start').sort(), [
    'dokku ps:start closed',
    'dokku ps:start web',
    'dokku ps:start worker',
  ]);
  t.deepEqual(commandsOf(f.seen, 'restore-off'), ['dokku ps:set worker restore false']);
  t.deepEqual(commandsOf(f.seen, 'maintenance-off').sort(), [
    'dokku maintenance:disable web',
    'dokku maintenance:disable worker',
  ]);
  t.is(ids[ids.length - 1], 'forget-saved');
});

test('release-source: held by default (cron moved aside, a thaw script written); --leave-source-running thaws instead', async (t) => {
  const saved: FreezeRecord = {
    version: 1,
    savedAt: 'x',
    apps: [{ name: 'web', running: 'true', restore: true, maintenance: false }],
    services: [{ plugin: 'postgres', name: "it's", status: 'running' }],
  };
  const held = await runTask(releaseSource, ctx('release-source', {}), {
    manifest,
    answers: {
      'hold-cron': { stdout: 'cron.d/dokku-postgres-db\n' },
      'read-state': { stdout: JSON.stringify(saved) },
    },
  });
  t.is(held.error, undefined, String(held.error));
  const script = held.seen.calls.find((c) => c.id === 'write-thaw-script')?.stdin ?? '';
  t.is(script, thawScript(saved, true, `/var/lib/dokku-ferry/held-cron/${RUN}`, '0.38.27'));
  t.regex(script, /dokku ps:set web restore true\n/);
  t.regex(script, /dokku postgres:start 'it'\\''s'\n/);
  t.regex(script, /dokku maintenance:disable web\n/);
  t.true(
    held.seen.states.some((s) =>
      /frozen .* To bring it back: bash \/srv\/ferry\/old-.*\/thaw\.sh/.test(s),
    ),
  );

  const c = ctx('release-source', {}, { leaveSourceRunning: true });
  t.false(
    releaseSource.plan(c).some((a) => a.only),
    'the thaw is the main line here',
  );
  const thawed = await runTask(releaseSource, c, {
    manifest,
    answers: { 'read-saved': { stdout: JSON.stringify(saved) } },
  });
  t.is(thawed.error, undefined, String(thawed.error));
  t.deepEqual(commandsOf(thawed.seen, 'ps-start'), ['dokku ps:start web']);
  t.deepEqual(commandsOf(thawed.seen, 'restore-on'), ['dokku ps:set web restore true']);
  t.false(thawed.seen.calls.some((x) => x.id === 'hold-cron'));
});

test('release-source on a Dokku before 0.38: the restore flag goes back into the app ENV (its ps:set refuses restore)', async (t) => {
  const saved: FreezeRecord = {
    version: 1,
    savedAt: 'x',
    apps: [
      { name: 'web', running: 'true', restore: true, maintenance: false },
      { name: 'cron-only', running: 'true', restore: false, maintenance: false },
    ],
    services: [],
  };
  const old = manifestOf({
    ...manifest,
    source: { ...manifest.source, dokkuVersion: '0.37.9' },
  });
  const held = await runTask(releaseSource, ctx('release-source', {}), {
    manifest: old,
    answers: {
      'hold-cron': { stdout: '' },
      'read-state': { stdout: JSON.stringify(saved) },
    },
  });
  t.is(held.error, undefined, String(held.error));
  const script = held.seen.calls.find((c) => c.id === 'write-thaw-script')?.stdin ?? '';
  t.regex(script, /dokku config:set --no-restart web DOKKU_APP_RESTORE=1\n/);
  t.regex(script, /dokku config:set --no-restart cron-only DOKKU_APP_RESTORE=0\n/);
  t.notRegex(script, /ps:set/);

  const thawed = await runTask(
    releaseSource,
    ctx('release-source', {}, { leaveSourceRunning: true }),
    { manifest: old, answers: { 'read-saved': { stdout: JSON.stringify(saved) } } },
  );
  t.is(thawed.error, undefined, String(thawed.error));
  t.deepEqual(commandsOf(thawed.seen, 'restore-on-env'), [
    'dokku config:set --no-restart web DOKKU_APP_RESTORE=1',
  ]);
  t.deepEqual(commandsOf(thawed.seen, 'restore-off-env'), [
    'dokku config:set --no-restart cron-only DOKKU_APP_RESTORE=0',
  ]);
  t.false(thawed.seen.calls.some((x) => x.id === 'restore-on' || x.id === 'restore-off'));
});
