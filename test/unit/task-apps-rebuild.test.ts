import test from 'ava';
import { FerryError } from '../../src/errors.js';
import rebuildApps, {
  isNoChanges,
  methodOf,
  rebuildOrder,
  run,
} from '../../src/tasks/rebuild-apps.js';
import { app, fakeRuntime, inventory, manifest, psJson, type Reply } from './task-apps-fake.js';

const NO_CHANGES =
  " !     No changes detected, skipping git commit\n !     Call 'ps:rebuild' on app to rebuild the app from existing source\n";

function script(answers: Record<string, Reply>, fallback: Reply = {}): (cmd: string) => Reply {
  return (cmd) => {
    for (const [k, v] of Object.entries(answers)) if (cmd.includes(k)) return v;
    if (cmd.includes('ps:report')) return { stdout: psJson('false') };
    return fallback;
  };
}

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
  const f = fakeRuntime(
    rebuildApps,
    {},
    m,
    script({ 'git:from-image': { code: 1, stdout: NO_CHANGES }, 'git:from-archive': { code: 0 } }),
    inventory(['arc']),
  );
  const out = await run(f.rt);
  const changing = f.commands.filter((c) => !c.includes('ps:report'));
  t.deepEqual(changing, [
    'git -c safe.directory=/home/dokku/arc -C /home/dokku/arc archive --format=tar HEAD | dokku git:from-archive --archive-type tar arc --',
    'dokku ps:set arc restore true',
    'dokku ps:rebuild web',
    'dokku ps:set web restore true',
    'dokku git:from-image img lab/who:1.0',
    'dokku ps:rebuild img',
    'dokku ps:set img restore true',
    'dokku ps:rebuild off',
    'dokku ps:stop off',
    'dokku ps:set off restore false',
  ]);
  t.true(f.logs.some((l) => l.includes('draft: not deployed on the source; skipped')));
  t.deepEqual(out?.rebuilt, ['arc', 'web', 'img', 'off']);
  t.deepEqual(out?.failed, []);
  t.true(f.titles.some((x) => x.includes('(1/4: arc)')));
});

test('an app already running here (a resumed run) is not rebuilt again', async (t) => {
  const m = manifest([app('web'), app('api')]);
  const f = fakeRuntime(
    rebuildApps,
    {},
    m,
    script({ 'ps:report web': { stdout: psJson('true') } }),
  );
  const out = await run(f.rt);
  t.false(f.commands.includes('dokku ps:rebuild web'));
  t.true(f.commands.includes('dokku ps:rebuild api'));
  t.true(f.commands.includes('dokku ps:set web restore true'));
  t.deepEqual(out?.rebuilt, ['api']);
});

test('failures are collected: the others still run, then one error names every failed app with its output', async (t) => {
  const m = manifest([
    app('a'),
    app('img', { method: 'image', deploySourceMetadata: 'gone:1' }),
    app('b'),
    app('c'),
  ]);
  const f = fakeRuntime(
    rebuildApps,
    {},
    m,
    script({
      'ps:rebuild a': { code: 1, stdout: 'build step 1\nnpm ERR! missing script: start\n' },
      'git:from-image': { code: 1, stderr: ' !     Failed to pull image: gone:1\n' },
      'ps:rebuild c': { code: 0 },
    }),
  );
  const e = await t.throwsAsync(run(f.rt), { instanceOf: FerryError });
  t.regex(e.message, /^2 of 4 app\(s\) failed to rebuild: a, img/);
  t.regex(e.message, /npm ERR! missing script: start/);
  t.regex(e.message, /Failed to pull image: gone:1/);
  t.true(f.commands.includes('dokku ps:rebuild b'), 'b still rebuilt after a failed');
  t.true(f.commands.includes('dokku ps:rebuild c'));
  t.false(f.commands.includes('dokku ps:rebuild img'), 'no ps:rebuild fallback on a pull failure');
  t.false(
    f.commands.includes('dokku ps:set a restore true'),
    'restore stays held off for a failed app',
  );
  t.true(f.states.some((s) => s.includes('a, img failed to rebuild')));
});

test('a stopped app that fails to rebuild is a warning, not a failure', async (t) => {
  const m = manifest([app('off', { running: 'false', restore: false }), app('on')]);
  const f = fakeRuntime(
    rebuildApps,
    {},
    m,
    script({ 'ps:rebuild off': { code: 1, stdout: 'boom\n' } }),
  );
  const out = await run(f.rt);
  t.deepEqual(out?.failed, ['off']);
  t.deepEqual(out?.rebuilt, ['on']);
  t.true(f.warnings.some((w) => w.startsWith('off (stopped on the source) did not rebuild')));
});

test('apps.order naming an app the source lacks is a warning', async (t) => {
  const f = fakeRuntime(rebuildApps, {}, manifest([app('a')]), script({}), inventory(['ghost']));
  await run(f.rt);
  t.deepEqual(f.warnings, ['apps.order names ghost, which the source does not have']);
});
