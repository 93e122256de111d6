import test from 'ava';
import { FerryError } from '../../src/errors.js';
import type { Inventory } from '../../src/inventory/index.js';
import type { Manifest } from '../../src/tasks/manifest.js';
import rebuildApps, { isNoChanges, methodOf, rebuildOrder } from '../../src/tasks/rebuild-apps.js';
import { app, contextOf, inventory, manifest, perCommand, psJson } from './task-apps-data.js';
import { type Answers, runTask } from './task-fake.js';

const NO_CHANGES =
  " !     No changes detected, skipping git commit\n !     Call 'ps:rebuild' on app to rebuild the app from existing source\n";

/** Runs rebuild-apps on `m`; an app's state is "not running" unless `answers` say otherwise. */
function rebuild(m: Manifest, answers: Answers, inv: Inventory = inventory()) {
  return runTask(rebuildApps, contextOf(rebuildApps, {}, inv), {
    manifest: m,
    answers: { state: { stdout: psJson('false') }, ...answers },
  });
}

/** Rethrows what a run failed with, for t.throws. */
const rethrow = (e: unknown) => () => {
  throw e;
};

test('rebuildOrder: apps.order first as listed, then the rest as found; unknown names reported', (t) => {
  const apps = [app('a'), app('b'), app('c'), app('d')];
  const r = rebuildOrder(apps, ['c', 'zz', 'a']);
  t.deepEqual(
    r.ordered.map((x) => x.name),
    ['c', 'a', 'b', 'd'],
  );
  t.deepEqual(r.unknown, ['zz']);
});

test('isNoChanges reads the warning on stdout (build capture) or stderr', (t) => {
  t.true(isNoChanges({ stdout: NO_CHANGES, stderr: '' }));
  t.true(isNoChanges({ stdout: '-----> Generating build context\n', stderr: NO_CHANGES }));
  t.false(isNoChanges({ stdout: '', stderr: ' !     Failed to pull image: x:1\n' }));
  t.false(isNoChanges({ stdout: 'No changes detected\n', stderr: '' }), 'only as a warning line');
});

test('methodOf: an image app without a recorded image falls back to git', (t) => {
  t.is(methodOf(app('x', { method: 'image', deploySourceMetadata: 'img:1' })), 'image');
  t.is(methodOf(app('x', { method: 'image', deploySourceMetadata: null })), 'git');
  t.is(methodOf(app('x', { method: 'archive', deploySourceMetadata: 'file:///a.tar' })), 'archive');
  t.is(methodOf(app('x', { method: 'none' })), 'git');
});

test('each app the way it was deployed, in order; restore set back to the source value', async (t) => {
  const m = manifest([
    app('web'),
    app('img', {
      method: 'image',
      deploySource: 'docker-image',
      deploySourceMetadata: 'lab/who:1.0',
    }),
    app('arc', { method: 'archive', deploySource: 'tar', deploySourceMetadata: 'file:///a.tar' }),
    app('draft', { deployed: false, running: 'false' }),
    app('off', { running: 'false', restore: false }),
  ]);
  const f = await rebuild(
    m,
    { 'rebuild-image': { code: 1, stdout: NO_CHANGES }, 'rebuild-archive': { code: 0 } },
    inventory(['arc']),
  );
  t.is(f.error, undefined);
  const out = f.result;
  const changing = f.seen.calls.filter((c) => c.id !== 'state').map((c) => [c.id, c.command]);
  t.deepEqual(changing, [
    [
      'rebuild-archive',
      'git -c safe.directory=/home/dokku/arc -C /home/dokku/arc archive --format=tar HEAD | dokku git:from-archive --archive-type tar arc --',
    ],
    ['restore-on', 'dokku ps:set arc restore true'],
    ['rebuild-git', 'dokku ps:rebuild web'],
    ['restore-on', 'dokku ps:set web restore true'],
    ['rebuild-image', 'dokku git:from-image img lab/who:1.0'],
    ['rebuild-unchanged', 'dokku ps:rebuild img'],
    ['restore-on', 'dokku ps:set img restore true'],
    ['rebuild-git', 'dokku ps:rebuild off'],
    ['stop-again', 'dokku ps:stop off'],
    ['restore-off', 'dokku ps:set off restore false'],
  ]);
  t.deepEqual(
    f.seen.calls.filter((c) => c.id === 'state').map((c) => c.command),
    [
      'dokku ps:report arc --format json',
      'dokku ps:report web --format json',
      'dokku ps:report img --format json',
    ],
    'the state is read only of apps that ran on the source',
  );
  t.true(f.seen.logs.some((l) => l.includes('draft: not deployed on the source; skipped')));
  t.deepEqual(out?.rebuilt, ['arc', 'web', 'img', 'off']);
  t.deepEqual(out?.failed, []);
  t.true(f.seen.titles.some((x) => x.includes('(1/4: arc)')));
});

test('an app already running here (a resumed run) is not rebuilt again', async (t) => {
  const m = manifest([app('web'), app('api')]);
  const f = await rebuild(m, {
    state: perCommand(
      { 'dokku ps:report web --format json': { stdout: psJson('true') } },
      { stdout: psJson('false') },
    ),
  });
  t.is(f.error, undefined);
  const commands = f.seen.calls.map((c) => c.command);
  t.false(commands.includes('dokku ps:rebuild web'));
  t.true(commands.includes('dokku ps:rebuild api'));
  t.true(commands.includes('dokku ps:set web restore true'));
  t.deepEqual(f.result?.rebuilt, ['api']);
});

test('failures are collected: the others still run, then one error names every failed app with its output', async (t) => {
  const m = manifest([
    app('a'),
    app('img', { method: 'image', deploySourceMetadata: 'gone:1' }),
    app('b'),
    app('c'),
  ]);
  const f = await rebuild(m, {
    'rebuild-git': perCommand({
      'dokku ps:rebuild a': { code: 1, stdout: 'build step 1\nnpm ERR! missing script: start\n' },
      'dokku ps:rebuild c': { code: 0 },
    }),
    'rebuild-image': { code: 1, stderr: ' !     Failed to pull image: gone:1\n' },
  });
  const e = t.throws(rethrow(f.error), { instanceOf: FerryError });
  t.regex(e!.message, /^2 of 4 app\(s\) failed to rebuild: a, img/);
  t.regex(e!.message, /npm ERR! missing script: start/);
  t.regex(e!.message, /Failed to pull image: gone:1/);
  const commands = f.seen.calls.map((c) => c.command);
  t.true(commands.includes('dokku ps:rebuild b'), 'b still rebuilt after a failed');
  t.true(commands.includes('dokku ps:rebuild c'));
  t.false(commands.includes('dokku ps:rebuild img'), 'no ps:rebuild fallback on a pull failure');
  t.false(
    f.seen.calls.some((c) => c.id === 'rebuild-unchanged'),
    'the no-changes fallback is not taken',
  );
  t.false(
    commands.includes('dokku ps:set a restore true'),
    'restore stays held off for a failed app',
  );
  t.true(f.seen.states.some((s) => s.includes('a, img failed to rebuild')));
});

test('a stopped app that fails to rebuild is a warning, not a failure', async (t) => {
  const m = manifest([app('off', { running: 'false', restore: false }), app('on')]);
  const f = await rebuild(m, {
    'rebuild-git': perCommand({ 'dokku ps:rebuild off': { code: 1, stdout: 'boom\n' } }),
  });
  t.is(f.error, undefined);
  t.deepEqual(f.result?.failed, ['off']);
  t.deepEqual(f.result?.rebuilt, ['on']);
  t.true(f.seen.warnings.some((w) => w.startsWith('off (stopped on the source) did not rebuild')));
});

test('apps.order naming an app the source lacks is a warning', async (t) => {
  const f = await rebuild(manifest([app('a')]), {}, inventory(['ghost']));
  t.is(f.error, undefined);
  t.deepEqual(f.seen.warnings, ['apps.order names ghost, which the source does not have']);
});

test("a user's apps:lock is lifted for the rebuild only and put back, also when the rebuild fails", async (t) => {
  const m = manifest([app('frozen', { locked: true }), app('free')]);
  const ok = await rebuild(m, {});
  t.is(ok.error, undefined, String(ok.error));
  const seq = ok.seen.calls.filter((c) => c.vars.app === 'frozen').map((c) => c.id);
  t.deepEqual(seq, ['unlock', 'state', 'rebuild-git', 'restore-on', 'relock']);
  t.false(ok.seen.calls.some((c) => c.vars.app === 'free' && /lock/.test(c.id)));
  t.true(ok.seen.logs.includes('frozen: locked again (apps:lock), as the user had it'));

  const failed = await rebuild(manifest([app('frozen', { locked: true })]), {
    'rebuild-git': { code: 1, stderr: ' !     build failed\n' },
  });
  t.true(failed.error instanceof FerryError);
  t.deepEqual(
    failed.seen.calls.map((c) => c.id),
    ['unlock', 'state', 'rebuild-git', 'relock'],
    'the lock comes back after a failure too',
  );
});

test('on a Dokku before 0.38 the restore flag goes back through the app ENV', async (t) => {
  const f = await rebuild(manifest([app('web'), app('idle', { restore: false })]), {
    'restore-on': { code: 1, stderr: ' !     `ps:set` is not a dokku command.\n' },
    'restore-off': { code: 1, stderr: ' !     `ps:set` is not a dokku command.\n' },
  });
  t.is(f.error, undefined, String(f.error));
  t.deepEqual(
    f.seen.calls.filter((c) => c.id.endsWith('-env')).map((c) => c.command),
    [
      'dokku config:set --no-restart web DOKKU_APP_RESTORE=1',
      'dokku config:set --no-restart idle DOKKU_APP_RESTORE=0',
    ],
  );
});
