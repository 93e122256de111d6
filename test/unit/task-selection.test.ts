/**
 * Selection and renames: the rules on a manifest (selection.ts), then the
 * select, remove-unselected and rename steps as planned from the shipped
 * playbooks, over the recording fake (the commands a host would get, the
 * decisions on scripted answers). On the lab: test/e2e/selection.test.ts.
 */
import test from 'ava';
import { StopError } from '../../src/errors.js';
import type { Manifest, ManifestApp } from '../../src/tasks/manifest.js';
import { aliasOf } from '../../src/tasks/rename.js';
import {
  applyRenames,
  applySelection,
  isEmptySelection,
  parseRenames,
  renameProblems,
  type Selection,
  selectionProblems,
} from '../../src/tasks/selection.js';
import { commandsOf, manifestOf, runPlannedStep, taskInventory } from './task-fake.js';

const app = (name: string): ManifestApp => ({
  name,
  method: 'git',
  deploySource: 'git-push',
  deploySourceMetadata: null,
  deployed: true,
  running: 'true',
  restore: true,
  mounts: [],
});

/** notes ↔ postgres/notes-db; api ↔ redis/cache and postgres/notes-db; web alone; postgres/analytics unlinked. */
const M: Manifest = manifestOf({
  apps: [app('notes'), app('api'), app('web')],
  services: [
    {
      plugin: 'postgres',
      name: 'notes-db',
      image: 'postgres',
      imageVersion: '15',
      links: ['notes', 'api'],
    },
    { plugin: 'redis', name: 'cache', image: 'redis', imageVersion: '8', links: ['api'] },
    { plugin: 'postgres', name: 'analytics', image: 'postgres', imageVersion: '15', links: [] },
  ],
});

const sel = (s: Partial<Selection>): Selection => ({
  apps: [],
  excludeApps: [],
  services: [],
  excludeServices: [],
  ...s,
});

test('--app takes the app and the services linked to it, and says why each came', (t) => {
  const { manifest, problems } = applySelection(M, sel({ apps: ['notes'] }));
  t.deepEqual(problems, []);
  t.deepEqual(
    manifest.apps.map((a) => a.name),
    ['notes'],
  );
  t.deepEqual(
    manifest.services.map((s) => `${s.plugin}/${s.name}`),
    ['postgres/notes-db'],
  );
  // The kept service keeps its links to taken apps only.
  t.deepEqual(manifest.services[0]!.links, ['notes']);
  t.deepEqual(manifest.selection!.taken, { 'postgres/notes-db': 'linked to notes' });
  t.deepEqual(manifest.selection!.dropped, {
    apps: ['api', 'web'],
    services: ['redis/cache', 'postgres/analytics'],
  });
  t.deepEqual(manifest.selection!.cut, []);
});

test('--exclude-service leaves out even a linked service: the link is recorded as cut', (t) => {
  const { manifest } = applySelection(
    M,
    sel({ apps: ['api'], services: ['postgres/analytics'], excludeServices: ['redis/cache'] }),
  );
  t.deepEqual(
    manifest.apps.map((a) => a.name),
    ['api'],
  );
  t.deepEqual(manifest.selection!.taken, {
    'postgres/notes-db': 'linked to api',
    'postgres/analytics': 'asked',
  });
  t.deepEqual(manifest.selection!.cut, [{ service: 'redis/cache', app: 'api' }]);
  t.deepEqual(manifest.selection!.dropped.services, ['redis/cache']);
});

test('only exclusions: everything else; an earlier selection stays dropped', (t) => {
  const first = applySelection(M, sel({ excludeApps: ['web'] })).manifest;
  t.deepEqual(
    first.apps.map((a) => a.name),
    ['notes', 'api'],
  );
  t.is(first.services.length, 3);
  t.deepEqual(first.selection!.taken['postgres/analytics'], 'every service');
  const second = applySelection(first, sel({ apps: ['notes'] })).manifest;
  t.deepEqual(second.selection!.dropped.apps, ['web', 'api']);
  t.true(isEmptySelection(sel({})));
});

test('names the manifest lacks are problems, listing what it has; nothing is narrowed', (t) => {
  const r = applySelection(M, sel({ apps: ['nope'], excludeServices: ['mysql/db'] }));
  t.is(r.manifest, M);
  t.deepEqual(r.problems, [
    '--app nope: no such app in the manifest of old (apps: notes, api, web)',
    '--exclude-service mysql/db: no such service in the manifest of old (services: postgres/notes-db, redis/cache, postgres/analytics)',
  ]);
});

test('flags checked before any host: bad names, taken and left out at once, renames', (t) => {
  t.deepEqual(
    selectionProblems(sel({ apps: ['Bad Name', 'x'], excludeApps: ['x'], services: ['db'] })),
    [
      '--app Bad Name: not an app name Dokku accepts',
      '--service db: expected PLUGIN/NAME, e.g. postgres/db',
      'app x is both taken (--app) and left out (--exclude-app)',
    ],
  );
  const ok = parseRenames(['notes=memo', 'postgres/notes-db=memo-db', 'redis/cache=redis/store']);
  t.deepEqual(ok.problems, []);
  t.deepEqual(ok.renames, {
    apps: { notes: 'memo' },
    services: { 'postgres/notes-db': 'memo-db', 'redis/cache': 'store' },
  });
  t.deepEqual(parseRenames(['notes', 'postgres/db=mysql/db', 'a=b', 'a=c']).problems, [
    '--rename notes: expected OLD=NEW (an app) or PLUGIN/OLD=NEW (a service)',
    '--rename postgres/db=mysql/db: a service keeps its plugin (postgres/NEW)',
    '--rename a is given twice',
  ]);
  t.deepEqual(selectionProblems(sel({}), { apps: { a: 'x', b: 'x' }, services: {} }), [
    'two apps renamed to x',
  ]);
  // An existing app may keep a pre-0.38.2 name (my_app); a new name follows today's rule.
  t.deepEqual(
    selectionProblems(sel({ apps: ['my_app'] }), { apps: { my_app: 'my_new' }, services: {} }),
    [
      '--rename my_app=my_new: an app name must begin with a lowercase letter or digit and contain only lowercase letters, digits, dots and hyphens',
    ],
  );
  t.deepEqual(
    selectionProblems(sel({}), { apps: { a: "b';touch /tmp/x" }, services: {} }).length,
    1,
  );
  t.deepEqual(selectionProblems(sel({ services: ['postgres/$(id)'] })), [
    '--service postgres/$(id): expected PLUGIN/NAME, e.g. postgres/db',
  ]);
});

test('renames: against what is restored; names, links and the record follow', (t) => {
  const renames = { apps: { notes: 'memo' }, services: { 'postgres/notes-db': 'memo-db' } };
  t.deepEqual(renameProblems(M, renames), []);
  t.deepEqual(renameProblems(M, { apps: { web: 'api', gone: 'x' }, services: {} }), [
    '--rename web=api: an app api is restored too',
    '--rename gone=x: no app gone is restored (apps: notes, api, web)',
  ]);
  const r = applyRenames(M, renames);
  t.deepEqual(
    r.apps.map((a) => a.name),
    ['memo', 'api', 'web'],
  );
  t.deepEqual(r.services[0], { ...M.services[0]!, name: 'memo-db', links: ['memo', 'api'] });
  t.deepEqual(r.renamed, renames);
});

test("a link's alias: the app's own variable, the plugin's DOKKU_ one only when alone", (t) => {
  t.is(aliasOf('DATABASE_URL\n'), 'DATABASE');
  t.is(aliasOf('DOKKU_POSTGRES_AQUA_URL\nNOTES_DB_URL\n'), 'NOTES_DB');
  t.is(aliasOf('DOKKU_POSTGRES_AQUA_URL\n'), 'DOKKU_POSTGRES_AQUA');
  t.is(aliasOf(''), undefined);
});

const inv = taskInventory();
const restoreOptions = {
  archive: { path: '/srv/backups/old-20261123T104500Z' },
  selection: sel({ apps: ['notes', 'api'], excludeServices: ['redis/cache'] }),
  rename: { apps: { notes: 'memo' }, services: { 'postgres/notes-db': 'memo-db' } },
};

test('select (restore): narrows the archive manifest, writes it to the stage, warns of a cut link', async (t) => {
  const { result, seen, error } = await runPlannedStep(
    'restore',
    inv,
    { target: 'new' },
    'select',
    {
      options: restoreOptions,
      manifest: M,
    },
  );
  t.falsy(error);
  const m = result!.manifest as unknown as Manifest;
  t.deepEqual(
    m.apps.map((a) => a.name),
    ['notes', 'api'],
  );
  const [write] = seen.calls;
  t.is(
    write!.command,
    'umask 077 && cat > /var/lib/dokku-ferry/stage/20261123T104500Z/meta/manifest.json',
  );
  t.deepEqual(JSON.parse(write!.stdin!), m);
  t.deepEqual(seen.warnings, [
    'api is linked to redis/cache, which is left out: on the target the link is removed (dokku PLUGIN:unlink unsets its URL variable)',
  ]);
  t.true(seen.logs.includes('service postgres/notes-db: linked to notes, api'));
});

test('select: a rename of something not restored stops before anything is written', async (t) => {
  const { error, seen } = await runPlannedStep('restore', inv, { target: 'new' }, 'select', {
    options: { ...restoreOptions, rename: { apps: { web: 'site' }, services: {} } },
    manifest: M,
  });
  t.true(error instanceof StopError);
  t.regex(
    (error as Error).message,
    /--rename web=site: no app web is restored \(apps: notes, api\)/,
  );
  t.deepEqual(seen.calls, []);
  t.deepEqual(seen.states, ['new: the transfer is staged; nothing moved into place']);
});

test('remove-unselected: unlinks the cut link, then apps:destroy and PLUGIN:destroy what is here', async (t) => {
  const selected = applySelection(M, restoreOptions.selection).manifest;
  const { seen, error, result } = await runPlannedStep(
    'restore',
    inv,
    { target: 'new' },
    'remove-unselected',
    {
      options: restoreOptions,
      manifest: selected,
      answers: {
        'apps-list': { stdout: 'notes\napi\nweb\n' },
        // redis/cache is here; postgres/analytics was removed by an earlier attempt.
        'service-list': (c) =>
          c.vars.plugin === 'redis'
            ? { stdout: 'NAME VERSION\ncache redis:8 running\n' }
            : { stdout: 'NAME\n' },
      },
    },
  );
  t.falsy(error);
  t.deepEqual(commandsOf(seen, 'unlink-cut'), ['dokku --no-restart redis:unlink cache api']);
  t.deepEqual(commandsOf(seen, 'destroy-app'), ['dokku --force apps:destroy web']);
  t.deepEqual(commandsOf(seen, 'destroy-service'), ['dokku redis:destroy cache --force']);
  t.deepEqual(result!.apps, ['web']);
  // Unlink before any destroy: a linked service cannot be destroyed.
  const ids = seen.calls
    .map((c) => c.id)
    .filter((id) => id !== 'apps-list' && id !== 'service-list');
  t.deepEqual(ids, ['unlink-cut', 'destroy-app', 'destroy-service']);
});

test('remove-unselected: nothing left out is a skip, not a command', async (t) => {
  const { seen } = await runPlannedStep(
    'drill',
    inv,
    { source: 'old', scratch: 'scratch' },
    'remove-unselected',
    {
      manifest: M,
    },
  );
  t.is(seen.skipped, 'nothing was left out');
  t.deepEqual(seen.calls, []);
});

test('rename: apps:rename, then the service cloned and each linked app moved across under its variable', async (t) => {
  const selected = applySelection(M, restoreOptions.selection).manifest;
  const { seen, error, result } = await runPlannedStep(
    'restore',
    inv,
    { target: 'new' },
    'rename',
    {
      options: restoreOptions,
      manifest: selected,
      answers: {
        'apps-list': { stdout: 'notes\napi\n' },
        'service-list': { stdout: 'NAME\nnotes-db\n' },
        'service-status': { stdout: 'running\n' },
        'link-alias': (c) => ({ stdout: c.vars.app === 'memo' ? 'DATABASE_URL\n' : 'NOTES_URL\n' }),
      },
    },
  );
  t.falsy(error);
  t.deepEqual(
    seen.calls.map((c) => c.command),
    [
      'dokku --quiet apps:list',
      'dokku apps:rename --skip-deploy notes memo',
      'dokku --quiet postgres:list',
      'dokku postgres:clone notes-db memo-db',
      'dokku postgres:info memo-db --status',
      `u=$(dokku postgres:info notes-db --dsn) && { dokku --quiet config:show memo | grep -F -- "$u" || true; } | cut -d: -f1`,
      'dokku --no-restart postgres:unlink notes-db memo',
      'dokku postgres:link memo-db memo --alias DATABASE --no-restart',
      `u=$(dokku postgres:info notes-db --dsn) && { dokku --quiet config:show api | grep -F -- "$u" || true; } | cut -d: -f1`,
      'dokku --no-restart postgres:unlink notes-db api',
      'dokku postgres:link memo-db api --alias NOTES --no-restart',
      'dokku postgres:destroy notes-db --force',
    ],
  );
  const m = result!.manifest as unknown as Manifest;
  t.deepEqual(
    m.apps.map((a) => a.name),
    ['memo', 'api'],
  );
  t.deepEqual(
    m.services.map((s) => [s.name, s.links]),
    [['memo-db', ['memo', 'api']]],
  );
});

test('rename: a resumed run does not rename or clone twice', async (t) => {
  const selected = applySelection(M, restoreOptions.selection).manifest;
  const { seen, error } = await runPlannedStep('restore', inv, { target: 'new' }, 'rename', {
    options: restoreOptions,
    manifest: selected,
    answers: {
      'apps-list': { stdout: 'memo\napi\n' },
      'service-list': { stdout: 'NAME\nmemo-db\n' },
    },
  });
  t.falsy(error);
  t.deepEqual(
    seen.calls.map((c) => c.id),
    ['apps-list', 'service-list'],
  );
});
