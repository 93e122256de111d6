import test from 'ava';
import {
  buildsDir,
  deployLockPath,
  dockerOptionsPaths,
  envPath,
  globalEnvPath,
  hasAppsListJson,
  hasPluginListJson,
  restoreFlag,
  storageLayout,
} from '../../src/dokku/layout.js';
import { DokkuOutputError } from '../../src/dokku/output.js';
import {
  atLeast,
  compareDokkuVersions,
  formatVersion,
  parseDokkuVersion,
  parseVersionString,
} from '../../src/dokku/version.js';

const ok = (stdout: string, stderr = '') => ({ stdout, stderr, code: 0 });

test('version: STABLE_VERSION form (reference §2)', (t) => {
  const v = parseDokkuVersion(ok('dokku version 0.38.27\n'));
  t.deepEqual([v.major, v.minor, v.patch, v.pre], [0, 38, 27, '']);
  t.is(formatVersion(v), '0.38.27');
});

test('version: VERSION file form with v prefix and git describe suffix', (t) => {
  t.is(formatVersion(parseDokkuVersion(ok('dokku version v0.38.27\n'))), '0.38.27');
  const d = parseDokkuVersion(ok('dokku version v0.38.27-33-g33896f5d7e\n'));
  t.is(d.patch, 27);
  t.is(d.pre, '-33-g33896f5d7e');
  t.is(d.raw, 'v0.38.27-33-g33896f5d7e');
});

test('version: tolerates trailing spaces and CRLF', (t) => {
  t.is(parseDokkuVersion(ok('dokku version 0.34.9  \r\n')).minor, 34);
});

test('version: "Unable to determine" fails with Dokku\'s message', (t) => {
  const e = t.throws(
    () =>
      parseDokkuVersion({
        stdout: '',
        stderr: " !     Unable to determine dokku's version\n",
        code: 1,
      }),
    { instanceOf: DokkuOutputError },
  );
  t.regex(e.message, /Unable to determine dokku's version/);
  t.regex(e.message, /exited 1/);
});

test('version: garbage fails', (t) => {
  t.throws(() => parseDokkuVersion(ok('hello\n')), { instanceOf: DokkuOutputError });
  t.is(parseVersionString('0.38.x'), undefined);
});

test('compareDokkuVersions orders numerically, not as text', (t) => {
  t.true(compareDokkuVersions('0.38.9', '0.38.10') < 0);
  t.true(compareDokkuVersions('0.38.27', 'v0.38.27') === 0);
  t.true(compareDokkuVersions('0.37.8', '0.38.0') < 0);
  t.true(compareDokkuVersions('1.0.0', '0.99.99') > 0);
  t.true(compareDokkuVersions('0.38', '0.38.0') === 0);
  t.true(compareDokkuVersions('v0.38.27-33-gabc', '0.38.27') > 0);
  t.true(compareDokkuVersions('v0.38.27-33-gabc', 'v0.38.27-4-gdef') > 0);
  t.true(compareDokkuVersions('v0.38.27-33-gabc', '0.38.28') < 0);
  t.true(atLeast('0.38.22', '0.38.22'));
  t.false(atLeast('0.38.21', '0.38.22'));
  t.throws(() => compareDokkuVersions('x', '0.1.0'));
});

test('layout: ENV moved to config/<app>/ENV in 0.38.0', (t) => {
  t.is(envPath('0.38.27', 'web'), '/var/lib/dokku/config/web/ENV');
  t.is(envPath('0.38.0', 'web'), '/var/lib/dokku/config/web/ENV');
  t.is(envPath('0.37.9', 'web'), '/home/dokku/web/ENV');
  t.is(globalEnvPath('0.38.1'), '/var/lib/dokku/config/--global/ENV');
  t.is(globalEnvPath('0.37.0'), '/home/dokku/ENV');
  t.is(envPath(parseDokkuVersion(ok('dokku version v0.36.1\n')), 'a'), '/home/dokku/a/ENV');
});

test('layout: deploy lock moved to data/apps in 0.34.0', (t) => {
  t.is(deployLockPath('0.34.0', 'web'), '/var/lib/dokku/data/apps/web/.deploy.lock');
  t.is(deployLockPath('0.38.27', 'web'), '/var/lib/dokku/data/apps/web/.deploy.lock');
  t.is(deployLockPath('0.33.9', 'web'), '/home/dokku/web/.deploy.lock');
});

test('layout: storage mounts registry in 0.38, docker options before', (t) => {
  t.deepEqual(storageLayout('0.38.0', 'web'), {
    kind: 'registry',
    mounts: '/var/lib/dokku/config/storage/web/mounts',
    entries: '/var/lib/dokku/data/storage-registry/entries',
  });
  t.deepEqual(storageLayout('0.37.5', 'web'), {
    kind: 'docker-options',
    files: [
      '/home/dokku/web/DOCKER_OPTIONS_BUILD',
      '/home/dokku/web/DOCKER_OPTIONS_DEPLOY',
      '/home/dokku/web/DOCKER_OPTIONS_RUN',
    ],
  });
  t.is(
    dockerOptionsPaths('0.38.3', 'web')[1],
    '/var/lib/dokku/config/docker-options/web/_default_.deploy',
  );
});

test('layout: ps restore flag is a property in 0.38, an ENV var before', (t) => {
  t.deepEqual(restoreFlag('0.38.0', 'web'), {
    kind: 'property',
    path: '/var/lib/dokku/config/ps/web/restore',
    off: 'false',
    on: 'true',
  });
  const old = restoreFlag('0.37.2', 'web');
  t.is(old.kind, 'env');
  t.is(old.path, '/home/dokku/web/ENV');
  t.is(old.kind === 'env' ? old.key : '', 'DOKKU_APP_RESTORE');
  t.is(old.off, '0');
});

test('layout: feature gates', (t) => {
  t.true(hasAppsListJson('0.38.21'));
  t.false(hasAppsListJson('0.38.20'));
  t.true(hasPluginListJson('0.38.22'));
  t.false(hasPluginListJson('0.38.21'));
  t.is(buildsDir('0.37.0', 'a'), undefined);
  t.is(buildsDir('0.38.0', 'a'), '/var/lib/dokku/data/builds/a');
});
