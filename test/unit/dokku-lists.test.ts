import test from 'ava';
import { parseAppsList, parseAppsListJson } from '../../src/dokku/apps.js';
import { parseBuildsList, parseBuildsListJson } from '../../src/dokku/builds.js';
import { parseNetworkList, parseNetworkListJson } from '../../src/dokku/network.js';
import { DokkuOutputError, warnings } from '../../src/dokku/output.js';
import {
  isCoreDescription,
  parsePluginList,
  parsePluginListJson,
} from '../../src/dokku/plugins.js';
import {
  parseServiceInfo,
  parseServiceInfoFlag,
  parseServiceList,
} from '../../src/dokku/services.js';
import { parseMountSpec, parseStorageList, parseStorageListJson } from '../../src/dokku/storage.js';

/** Reference samples mark trailing spaces with ⏎: the spaces stay, the mark goes. */
const fixture = (text: string): string => text.replace(/⏎/g, '');
const ok = (stdout: string, stderr = '') => ({ stdout, stderr, code: 0 });

// ---- apps:list (§3.2)

test('apps:list: header and names', (t) => {
  t.deepEqual(parseAppsList(ok('=====> My Apps\napp-one\napp-two\n')), ['app-one', 'app-two']);
});

test('apps:list: --quiet prints only names', (t) => {
  t.deepEqual(parseAppsList(ok('app-one\napp-two\n')), ['app-one', 'app-two']);
});

test('apps:list: no apps is header + stderr warning + exit 0', (t) => {
  const out = ok('=====> My Apps\n', " !     You haven't deployed any applications yet\n");
  t.deepEqual(parseAppsList(out), []);
  t.deepEqual(warnings(out.stderr), ["You haven't deployed any applications yet"]);
});

test('apps:list: exit 2 (old Dokku given a flag) fails', (t) => {
  t.throws(() => parseAppsList({ stdout: '', stderr: 'unknown flag: --format\n', code: 2 }), {
    instanceOf: DokkuOutputError,
    message: /exited 2.*unknown flag/,
  });
});

test('apps:list --format json (0.38.21+)', (t) => {
  t.deepEqual(parseAppsListJson(ok('["app-one","app-two"]\n')), ['app-one', 'app-two']);
  t.deepEqual(parseAppsListJson(ok('[]\n')), []);
  t.throws(() => parseAppsListJson(ok('=====> My Apps\napp-one\n')), {
    instanceOf: DokkuOutputError,
  });
  t.throws(() => parseAppsListJson(ok('[1]\n')), { instanceOf: DokkuOutputError });
});

// ---- plugin:list (§7)

const PLUGIN_LIST = `  00_dokku-standard    0.38.27 enabled    dokku core standard plugin
  apps                 0.38.27 enabled    dokku core apps plugin
  builds               0.34.0 enabled    dokku core builds plugin
  scheduler-docker-local 0.38.27 enabled    dokku core scheduler-docker-local plugin
  postgres             1.48.0 enabled    dokku postgres service plugin
`;

test('plugin:list: the reference sample, including the long name that pushes columns', (t) => {
  const list = parsePluginList(ok(PLUGIN_LIST));
  t.deepEqual(
    list.map((p) => [p.name, p.version, p.enabled, p.core]),
    [
      ['00_dokku-standard', '0.38.27', true, true],
      ['apps', '0.38.27', true, true],
      ['builds', '0.34.0', true, true],
      ['scheduler-docker-local', '0.38.27', true, true],
      ['postgres', '1.48.0', true, false],
    ],
  );
  t.is(list[3]!.description, 'dokku core scheduler-docker-local plugin');
  t.is(list[4]!.description, 'dokku postgres service plugin');
});

test('plugin:list: disabled, short version padded, long version, empty description', (t) => {
  const out = ok(
    `  letsencrypt          0.22.1 disabled   Automated installation of let's encrypt TLS certificates\n` +
      `  mything              1.0   enabled    ⏎\n`.replace('⏎', '') +
      `  other                2024.01.15-rc1 enabled    dokku core lookalike\n`,
  );
  const list = parsePluginList(out);
  t.is(list[0]!.enabled, false);
  t.false(list[0]!.core);
  t.is(list[0]!.description, "Automated installation of let's encrypt TLS certificates");
  t.is(list[1]!.version, '1.0');
  t.is(list[1]!.description, '');
  t.is(list[2]!.version, '2024.01.15-rc1');
  t.false(list[2]!.core, 'core needs "dokku core … plugin"');
});

test('plugin:list: a stale "plugn: dev" header is skipped; junk fails', (t) => {
  t.is(parsePluginList(ok(`plugn: dev\n${PLUGIN_LIST}`)).length, 5);
  t.throws(() => parsePluginList(ok('  apps 0.38.27 maybe x\n')), { instanceOf: DokkuOutputError });
});

test('plugin:list: must run as root message for other plugin commands is a failure', (t) => {
  t.throws(
    () =>
      parsePluginList({ stdout: '', stderr: ' !     This command must be run as root\n', code: 1 }),
    { message: /must be run as root/ },
  );
});

test('plugin:list --format json (0.38.22+)', (t) => {
  const list = parsePluginListJson(
    ok(
      JSON.stringify([
        {
          name: 'apps',
          version: '0.38.27',
          enabled: true,
          core: true,
          description: 'dokku core apps plugin',
          source_url: '',
          committish: '',
          branch: '',
        },
        {
          name: 'postgres',
          version: '1.48.0',
          enabled: true,
          core: false,
          description: 'dokku postgres service plugin',
          source_url: 'https://github.com/dokku/dokku-postgres.git',
          committish: '1.48.0',
          branch: '',
        },
      ]),
    ),
  );
  t.true(list[0]!.core);
  t.is(list[0]!.sourceUrl, undefined);
  t.false(list[1]!.core);
  t.is(list[1]!.sourceUrl, 'https://github.com/dokku/dokku-postgres.git');
  t.is(list[1]!.committish, '1.48.0');
  t.true(isCoreDescription('dokku core 20_events plugin'));
  t.false(isCoreDescription('dokku postgres service plugin'));
});

// ---- storage:list (§8)

test('storage:list 0.38 text with header (reference sample)', (t) => {
  const list = parseStorageList(
    ok(`-----> myapp volume bind-mounts:
       /tmp/mount:/mount
       mount_volume:/mount
       /data:/data:ro,Z
`),
  );
  t.deepEqual(list, [
    { hostPath: '/tmp/mount', containerPath: '/mount', options: '' },
    { hostPath: 'mount_volume', containerPath: '/mount', options: '' },
    { hostPath: '/data', containerPath: '/data', options: 'ro,Z' },
  ]);
});

test('storage:list --quiet bare lines and ≤0.37 raw lines', (t) => {
  t.deepEqual(parseStorageList(ok('/tmp/mount:/mount\n')), [
    { hostPath: '/tmp/mount', containerPath: '/mount', options: '' },
  ]);
  t.deepEqual(parseStorageList(ok('-v /var/lib/dokku/data/storage/x:/x  \n')), [
    { hostPath: '/var/lib/dokku/data/storage/x', containerPath: '/x', options: '' },
  ]);
  t.deepEqual(parseStorageList(ok('-----> myapp volume bind-mounts:\n')), []);
  t.deepEqual(parseStorageList(ok('')), []);
});

test('storage:list: missing app exits 20', (t) => {
  t.throws(
    () => parseStorageList({ stdout: '', stderr: ' !     App nope does not exist\n', code: 20 }),
    { message: /app does not exist.*App nope does not exist/ },
  );
  t.throws(() => parseMountSpec('/only-host'));
  t.throws(() => parseMountSpec('/host:'));
});

test('storage:list --format json', (t) => {
  t.deepEqual(
    parseStorageListJson(
      ok(
        '[{"entry_name":"legacy-0123456789","host_path":"/tmp/mount","container_path":"/mount"},' +
          '{"entry_name":"data","host_path":"/data","container_path":"/data","readonly":true}]\n',
      ),
    ),
    [
      {
        hostPath: '/tmp/mount',
        containerPath: '/mount',
        options: '',
        entryName: 'legacy-0123456789',
      },
      {
        hostPath: '/data',
        containerPath: '/data',
        options: 'ro',
        entryName: 'data',
        readonly: true,
      },
    ],
  );
  t.deepEqual(parseStorageListJson(ok('[]\n')), []);
});

// ---- network:list (§9)

test('network:list: header, random order sorted', (t) => {
  t.deepEqual(parseNetworkList(ok('=====> Networks\nbridge\nbackend\nhost\nnone\n')), [
    'backend',
    'bridge',
    'host',
    'none',
  ]);
  t.deepEqual(parseNetworkList(ok('=====> Networks\n')), []);
});

test('network:list --format json, with and without DokkuManaged', (t) => {
  const list = parseNetworkListJson(
    ok(
      JSON.stringify([
        {
          CreatedAt: '2024-02-25T01:55:24.275184461Z',
          DokkuManaged: true,
          Driver: 'bridge',
          ID: 'abc',
          Internal: false,
          IPv6: false,
          Labels: { 'com.dokku.network-name': 'backend' },
          Name: 'backend',
          Scope: 'local',
        },
        { Driver: 'bridge', Name: 'bridge', Scope: 'local', Labels: {} },
      ]),
    ),
  );
  t.deepEqual(
    list.map((n) => [n.name, n.dokkuManaged]),
    [
      ['backend', true],
      ['bridge', undefined],
    ],
  );
  t.is(list[0]!.labels['com.dokku.network-name'], 'backend');
});

// ---- builds:list (§10)

test('builds:list without app: columns, no header line', (t) => {
  const list = parseBuildsList(
    ok(`App    Build ID        Kind   PID    Source    Started
myapp  01j8c4xv7bk5w3  build  12345  git-hook  2026-04-30T13:50:00Z
`),
  );
  t.deepEqual(list, [
    {
      id: '01j8c4xv7bk5w3',
      app: 'myapp',
      kind: 'build',
      status: 'running',
      pid: 12345,
      source: 'git-hook',
      startedAt: '2026-04-30T13:50:00Z',
    },
  ]);
});

test('builds:list with app: status and duration', (t) => {
  const list = parseBuildsList(
    ok(`Build ID        Kind    Status     PID    Source      Started               Duration
01j8c4xv7bk5w3  build   succeeded  12345  git-hook    2026-04-30T13:50:00Z  1m14s
01j8c4aaaaaaaa  deploy  failed     222    ps:rebuild  2026-04-29T10:00:00Z  3s
`),
  );
  t.is(list.length, 2);
  t.is(list[0]!.status, 'succeeded');
  t.is(list[0]!.duration, '1m14s');
  t.is(list[0]!.app, undefined);
  t.is(list[1]!.kind, 'deploy');
  t.is(list[1]!.source, 'ps:rebuild');
});

test('builds:list empty cases', (t) => {
  t.deepEqual(parseBuildsList(ok('No builds currently running\n')), []);
  t.deepEqual(parseBuildsList(ok('No builds recorded for this app\n')), []);
  t.deepEqual(parseBuildsListJson(ok('[]\n')), []);
  t.throws(() => parseBuildsList(ok('something else\n')), { instanceOf: DokkuOutputError });
});

test('builds:list --format json', (t) => {
  const [b] = parseBuildsListJson(
    ok(
      '[{"id":"01j8c4xv7bk5w3","app":"myapp","kind":"build","pid":12345,"started_at":"2026-04-30T13:50:00.1Z","status":"running","source":"git-hook","display_status":"running","duration":"5s","log_path":"/x"}]',
    ),
  );
  t.is(b!.app, 'myapp');
  t.is(b!.pid, 12345);
  t.is(b!.status, 'running');
});

// ---- postgres:list and other datastores (§11)

test('postgres:list 1.10+: header and names; --quiet; none', (t) => {
  t.deepEqual(parseServiceList(ok('=====> Postgres services\nlollipop\nother\n')), [
    { name: 'lollipop' },
    { name: 'other' },
  ]);
  t.deepEqual(parseServiceList(ok('lollipop\n')), [{ name: 'lollipop' }]);
  const none = ok('', ' !     There are no Postgres services\n');
  t.deepEqual(parseServiceList(none), []);
});

test('postgres:list before 1.10: column -t table', (t) => {
  const out = ok(`=====> Postgres services
NAME      VERSION        STATUS   EXPOSED PORTS  LINKS
lollipop  postgres:9.6   running  -              web
other     postgres:10.1  stopped  5432->32768    -
`);
  t.deepEqual(parseServiceList(out), [
    { name: 'lollipop', version: 'postgres:9.6', status: 'running' },
    { name: 'other', version: 'postgres:10.1', status: 'stopped' },
  ]);
});

test('redis:list and mysql:list share the shape', (t) => {
  t.deepEqual(parseServiceList(ok('=====> Redis services\ncache\n'), 'redis'), [{ name: 'cache' }]);
  t.deepEqual(parseServiceList(ok('', ' !     There are no MySQL services\n'), 'mysql'), []);
  t.throws(() => parseServiceList(ok('two words\n'), 'mysql'), { message: /mysql:list/ });
});

const PG_INFO = fixture(`=====> lollipop postgres service information
       Config dir:          /var/lib/dokku/services/postgres/lollipop/data
       Config options:                               ⏎
       Data dir:            /var/lib/dokku/services/postgres/lollipop/data
       Dsn:                 postgres://postgres:0123456789abcdef0123456789abcdef@dokku-postgres-lollipop:5432/lollipop
       Exposed ports:       -                        ⏎
       Id:                  ${'a'.repeat(64)}
       Internal ip:         172.17.0.2               ⏎
       Initial network:                              ⏎
       Links:               -                        ⏎
       Post create network:                          ⏎
       Post start network:                           ⏎
       Service root:        /var/lib/dokku/services/postgres/lollipop
       Status:              running                  ⏎
       Version:             postgres:18.4            ⏎
`);

test('postgres:info: the reference sample (trailing spaces kept in the fixture)', (t) => {
  t.true(PG_INFO.includes('Status:              running                  \n'));
  const info = parseServiceInfo(ok(PG_INFO));
  t.is(info.name, 'lollipop');
  t.is(info.dataDir, '/var/lib/dokku/services/postgres/lollipop/data');
  t.is(info.configDir, info.dataDir);
  t.is(info.configOptions, '');
  t.is(
    info.dsn,
    'postgres://postgres:0123456789abcdef0123456789abcdef@dokku-postgres-lollipop:5432/lollipop',
  );
  t.deepEqual(info.exposedPorts, []);
  t.deepEqual(info.links, []);
  t.is(info.id, 'a'.repeat(64));
  t.is(info.internalIp, '172.17.0.2');
  t.is(info.status, 'running');
  t.is(info.version, 'postgres:18.4');
  t.is(info.serviceRoot, '/var/lib/dokku/services/postgres/lollipop');
  t.is(info.postCreateNetwork, '');
  t.is(Object.keys(info.fields).length, 14);
});

test('postgres:info: --quiet (no header), exposed and linked, missing container', (t) => {
  const body = PG_INFO.split('\n')
    .slice(1)
    .join('\n')
    .replace(/Exposed ports: {7}- {24}/, 'Exposed ports:       5432->32768 ')
    .replace(/Links: {15}- {24}/, 'Links:               api web ')
    .replace(/Status: {14}running {18}/, 'Status:              missing                  ');
  const info = parseServiceInfo(ok(body));
  t.is(info.name, undefined);
  t.deepEqual(info.exposedPorts, ['5432->32768']);
  t.deepEqual(info.links, ['api', 'web']);
  t.is(info.status, 'missing');
});

test('postgres:info: single flag and failures', (t) => {
  t.is(parseServiceInfoFlag(ok('running                  \n')), 'running');
  t.is(parseServiceInfoFlag(ok('\n')), '');
  t.throws(
    () =>
      parseServiceInfo({
        stdout: '',
        stderr: ' !     Postgres service nope does not exist\n',
        code: 1,
      }),
    { message: /Postgres service nope does not exist/ },
  );
  t.throws(() => parseServiceInfo(ok('=====> x postgres service information\n')), {
    message: /no fields/,
  });
});

test('apps:exists, apps:locked, postgres:exists', async (t) => {
  const { parseAppExists, parseAppLocked } = await import('../../src/dokku/apps.js');
  const { parseServiceExists } = await import('../../src/dokku/services.js');
  t.true(parseAppExists(ok('')));
  t.false(parseAppExists({ stdout: '', stderr: ' !     App web does not exist\n', code: 20 }));
  t.throws(() =>
    parseAppExists({
      stdout: '',
      stderr: ' !     Please specify an app to run the command on\n',
      code: 1,
    }),
  );
  t.true(parseAppLocked(ok('Deploy lock exists\n')));
  t.false(parseAppLocked({ stdout: '', stderr: ' !     Deploy lock does not exist\n', code: 1 }));
  t.throws(() =>
    parseAppLocked({ stdout: '', stderr: ' !     App web does not exist\n', code: 20 }),
  );
  t.true(parseServiceExists(ok('-----> Service lollipop exists\n')));
  t.false(
    parseServiceExists({
      stdout: '',
      stderr: ' !     Postgres service nope does not exist\n',
      code: 1,
    }),
  );
  t.throws(() =>
    parseServiceExists({ stdout: '', stderr: 'ssh: connection refused\n', code: 255 }),
  );
});

test('builds:list: an empty cell keeps the columns in place', (t) => {
  const list = parseBuildsList(
    ok(
      `Build ID        Kind   Status     PID    Source    Started               Duration
01j8c4xv7bk5w3  build  abandoned         git-hook  2026-04-30T13:50:00Z  ⏎
`.replace('⏎', ''),
    ),
  );
  t.is(list[0]!.status, 'abandoned');
  t.is(list[0]!.pid, undefined);
  t.is(list[0]!.source, 'git-hook');
  t.is(list[0]!.duration, '');
  t.throws(() => parseBuildsList(ok('Build ID  Kind\nabc  build  extra  cells\n')), {
    message: /unexpected row/,
  });
});

test('builds:list with app: the reference sample', (t) => {
  const [b] = parseBuildsList(
    ok(`Build ID        Kind   Status     PID    Source    Started               Duration
01j8c4xv7bk5w3  build  succeeded  12345  git-hook  2026-04-30T13:50:00Z  1m14s
`),
  );
  t.deepEqual(b, {
    id: '01j8c4xv7bk5w3',
    kind: 'build',
    status: 'succeeded',
    pid: 12345,
    source: 'git-hook',
    startedAt: '2026-04-30T13:50:00Z',
    duration: '1m14s',
  });
});

test('a --format json list that answers nothing is an empty list (storage:list on 0.37: its trigger prints nothing for an app without mounts)', (t) => {
  t.deepEqual(parseStorageListJson(ok('')), []);
  t.deepEqual(parseStorageListJson(ok('\n')), []);
  t.deepEqual(parseStorageListJson(ok('[]\n')), []);
  t.deepEqual(parseBuildsListJson(ok('')), []);
  t.throws(() => parseStorageListJson(ok('-----> web volume bind-mounts:\n')), {
    message: /expected JSON/,
  });
});
