import test from 'ava';
import { DokkuOutputError, expectSuccess, stripAnsi } from '../../src/dokku/output.js';
import {
  parseProcessStatus,
  parsePsReport,
  parsePsReportJson,
  parsePsReports,
} from '../../src/dokku/ps.js';
import { parseReport, parseReportJson, parseReportValue } from '../../src/dokku/report.js';

const fixture = (text: string): string => text.replace(/⏎/g, '');
const ok = (stdout: string, stderr = '') => ({ stdout, stderr, code: 0 });

// ps:report sample from reference §6; the "# one per CONTAINER…" remark is not output.
const PS_REPORT = fixture(`=====> myapp ps information
       Deployed:                         false
       Processes:                        0
       Ps can scale:                     true
       Ps computed dockerfile start cmd: ⏎
       Ps computed procfile path:        Procfile
       Ps computed restart policy:       on-failure:10
       Ps computed skip deploy:          false
       Ps computed start cmd:            ⏎
       Ps computed stop timeout seconds: 30
       Ps dockerfile start cmd:          ⏎
       Ps global procfile path:          ⏎
       Ps global restart policy:         ⏎
       Ps global skip deploy:            ⏎
       Ps global stop timeout seconds:   ⏎
       Ps procfile path:                 ⏎
       Ps restart policy:                ⏎
       Ps skip deploy:                   ⏎
       Ps start cmd:                     ⏎
       Ps stop timeout seconds:          ⏎
       Restore:                          true
       Running:                          false
       Status web 1:                     running (CID: 0123456789a)
`);

test('ps:report: the reference sample', (t) => {
  t.true(PS_REPORT.includes('Ps start cmd:                     \n'));
  const r = parsePsReport(ok(PS_REPORT));
  t.is(r.app, 'myapp');
  t.false(r.deployed);
  t.is(r.processes, 0);
  t.is(r.running, 'false');
  t.true(r.restore);
  t.deepEqual(r.statuses, [{ process: 'web', index: 1, state: 'running', cid: '0123456789a' }]);
  t.is(r.entries['ps-computed-restart-policy'], 'on-failure:10');
  t.is(r.entries['ps-start-cmd'], '');
  t.is(r.entries['ps-computed-stop-timeout-seconds'], '30');
});

test('ps:report: --quiet, several apps, restore false, mixed, missing container', (t) => {
  const quiet = PS_REPORT.split('\n')
    .slice(1)
    .join('\n')
    .replace('Restore:                          true', 'Restore:                          false');
  const r = parsePsReport(ok(quiet));
  t.is(r.app, undefined);
  t.false(r.restore);
  const two = `${PS_REPORT}=====> api ps information
       Deployed:                         true
       Processes:                        3
       Restore:                          true
       Running:                          mixed
       Status web 1:                     running (CID: 0123456789a)
       Status web 2:                     missing
       Status worker 1:                  exited (CID: fedcba98765)
`;
  const all = parsePsReports(ok(two));
  t.deepEqual(
    all.map((x) => x.app),
    ['myapp', 'api'],
  );
  const api = all[1]!;
  t.true(api.deployed);
  t.is(api.processes, 3);
  t.is(api.running, 'mixed');
  t.deepEqual(api.statuses, [
    { process: 'web', index: 1, state: 'running', cid: '0123456789a' },
    { process: 'web', index: 2, state: 'missing' },
    { process: 'worker', index: 1, state: 'exited', cid: 'fedcba98765' },
  ]);
});

test('ps:report: no apps warns on stderr and exits 0 (no report)', (t) => {
  t.deepEqual(parsePsReports(ok('', " !     You haven't deployed any applications yet\n")), []);
  t.throws(() => parsePsReport(ok('', " !     You haven't deployed any applications yet\n")), {
    instanceOf: DokkuOutputError,
  });
  t.throws(() => parsePsReport({ stdout: '', stderr: ' !     App x does not exist\n', code: 20 }), {
    message: /exited 20 \(the app does not exist\)/,
  });
});

test('ps:report: Running must be true|false|mixed', (t) => {
  t.throws(() => parsePsReport(ok('       Deployed:   true\n       Running:    maybe\n')), {
    message: /Running/,
  });
});

test('ps:report --format json with legacy keys; and without', (t) => {
  const json = {
    'can-scale': 'true',
    deployed: 'true',
    processes: '2',
    restore: 'false',
    running: 'true',
    'status-web.1': 'running (CID: 0123456789a)',
    'status-web.2': 'running (CID: 0123456789b)',
    'ps-can-scale': 'true',
    'ps-deployed': 'true',
    'ps-processes': '2',
    'ps-restore': 'false',
    'ps-running': 'true',
  };
  const r = parsePsReportJson(ok(`${JSON.stringify(json)}\n`));
  t.true(r.deployed);
  t.is(r.processes, 2);
  t.false(r.restore);
  t.is(r.running, 'true');
  t.deepEqual(
    r.statuses.map((s) => [s.process, s.index, s.cid]),
    [
      ['web', 1, '0123456789a'],
      ['web', 2, '0123456789b'],
    ],
  );
  const legacyOnly = parsePsReportJson(
    ok('{"ps-deployed":"false","ps-processes":"0","ps-running":"false"}'),
  );
  t.false(legacyOnly.deployed);
  t.true(legacyOnly.restore, 'restore defaults to true');
  t.deepEqual(parseProcessStatus('web', 1, 'missing'), {
    process: 'web',
    index: 1,
    state: 'missing',
  });
});

// git:report sample from reference §5.7 (pad 32, Go)
const GIT_REPORT = fixture(`=====> myapp git information
       Git computed archive max files: 10000
       Git computed archive max size:  1073741824
       Git computed deploy branch:     master
       Git computed keep git dir:      false
       Git deploy branch:              ⏎
       Git global archive max files:   ⏎
       Git global archive max size:    ⏎
       Git global deploy branch:       ⏎
       Git global keep git dir:        ⏎
       Git keep git dir:               ⏎
       Git last updated at:            ⏎
       Git rev env var:                GIT_REV
       Git sha:                        ⏎
       Git source image:               ⏎
`);

test(':report (Go form, pad 32): one section per app, empty values kept empty', (t) => {
  const [r] = parseReport('git:report', ok(GIT_REPORT));
  t.is(r?.name, 'myapp');
  t.is(r?.entries['git-computed-deploy-branch'], 'master');
  t.is(r?.entries['git-computed-archive-max-size'], '1073741824');
  t.is(r?.entries['git-deploy-branch'], '');
  t.is(r?.entries['git-rev-env-var'], 'GIT_REV');
});

test(':report single flag prints the value alone, empty value prints a newline', (t) => {
  t.is(parseReportValue('ps:report', ok('true\n')), 'true');
  t.is(parseReportValue('ps:report', ok('\n')), '');
  t.is(parseReportValue('git:report', ok('value with  spaces \n')), 'value with  spaces ');
  t.throws(
    () =>
      parseReportValue('ps:report', {
        stdout: '',
        stderr: ' !     Invalid flag passed, valid flags: --deployed, --processes\n',
        code: 1,
      }),
    { message: /Invalid flag passed/ },
  );
});

test(':report generic: network pad 37 with web listeners', (t) => {
  const [s] = parseReport(
    'network:report',
    ok(
      `=====> web network information
       Network attach post create:          ⏎
       Network computed bind all interfaces: false
       Network web listeners:               172.17.0.5:5000 172.17.0.6:5000
`.replace(/⏎/g, ''),
    ),
  );
  t.is(s!.plugin, 'network');
  t.is(s!.entries['network-web-listeners'], '172.17.0.5:5000 172.17.0.6:5000');
  t.is(s!.entries['network-attach-post-create'], '');
  t.throws(() => parseReport('x:report', ok('not a report line\n')), {
    message: /unexpected line/,
  });
  t.deepEqual(parseReportJson('network:report', ok('{"tld":"","network-tld":""}')), {
    tld: '',
    'network-tld': '',
  });
  t.throws(
    () =>
      parseReportJson('ps:report', {
        stdout: '',
        stderr: ' !     --format flag cannot be specified when specifying an info flag\n',
        code: 1,
      }),
    { message: /--format flag cannot be specified/ },
  );
});

test('expectSuccess: 0.38 build capture puts warnings on stdout', (t) => {
  t.throws(
    () =>
      expectSuccess('ps:restart', {
        stdout: '-----> Restarting\n !     App nosuchapp does not exist\n',
        stderr: '',
        code: 20,
      }),
    { message: /App nosuchapp does not exist/ },
  );
  t.is(
    stripAnsi('\u001b[1G\u001b[K-----> Set main as deploy-branch'),
    '-----> Set main as deploy-branch',
  );
});

test('unknown command: both warning lines reach the error', (t) => {
  const e = t.throws(() =>
    expectSuccess('frobnicate', {
      stdout: '',
      stderr:
        '  !     `frobnicate` is not a dokku command.\n  !     See `dokku help` for a list of available commands.\n',
      code: 1,
    }),
  );
  t.regex(e.message, /`frobnicate` is not a dokku command\.; See `dokku help`/);
});

test('ps:report from 0.38.0–0.38.6 (other restart-policy keys) still reads', (t) => {
  const r = parsePsReport(
    ok(
      `=====> web ps information
       Deployed:                      true
       Processes:                     1
       Ps can scale:                  true
       Ps restart policy:             on-failure:10
       Ps global stop timeout seconds: ⏎
       Restore:                       true
       Running:                       true
       Status web 1:                  running (CID: abcdef01234)
`.replace('⏎', ''),
    ),
  );
  t.true(r.deployed);
  t.is(r.entries['ps-restart-policy'], 'on-failure:10');
  t.is(r.statuses[0]!.cid, 'abcdef01234');
});
