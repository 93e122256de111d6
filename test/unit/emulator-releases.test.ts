/**
 * Pure parts of the per-release emulator and of the dokku-tests runner:
 * report shapes (bash vs Go, before and since 0.38.8), help layouts, Go time
 * and formation parsing, and the bats skip injection and TAP counting.
 */
import test from 'ava';
import { injectSkips, parseTap, skipsFor, testNames } from '../lab/dokku-tests-lib.js';
import { DOKKU_TEST_SKIPS } from '../lab/dokku-tests-skips.js';
import { columnizeUsage, columnTable, pluginHelp } from '../lab/emulator/core/help.js';
import { parseProcfile, parseTuples } from '../lab/emulator/core/scale.js';
import { goTime, renderBashReport, renderReport, reportJson } from '../lab/emulator/report.js';

test('bash report: "%-30s %-25s" of the label with its colon and the value', (t) => {
  const out = renderBashReport('app', 'git', [['--git-rev-env-var', 'GIT_REV']], '', false);
  t.deepEqual(out, {
    ok: true,
    text: `=====> app git information\n       ${'Git rev env var:'.padEnd(30)} ${'GIT_REV'.padEnd(25)}\n`,
  });
  t.deepEqual(renderBashReport('app', 'git', [['--git-sha', '']], '--git-sha', false), {
    ok: false,
    error: 'not deployed',
  });
  t.deepEqual(
    renderBashReport(
      'app',
      'git',
      [
        ['--a', '1'],
        ['--b', '2'],
      ],
      '--format',
      false,
    ),
    {
      ok: false,
      error: 'Invalid flag passed, valid flags: --a --b',
    },
  );
  const quiet = renderBashReport('app', 'git', [['--a', '1']], '', true);
  t.true(quiet.ok && !quiet.text.includes('====='));
});

test('Go report before 0.38.8: keys lose only "--", any format but json is text', (t) => {
  const info = { '--ps-restore': 'true', '--running': 'false' };
  t.is(reportJson('ps', info, true, false), '{"ps-restore":"true","running":"false"}');
  const xml = renderReport('ps', 'app', info, [], 'xml', false, true, false);
  t.true(xml.ok && xml.text.startsWith('=====> app ps information\n'));
  t.deepEqual(renderReport('ps', 'app', info, [], 'xml', false, true, true), {
    ok: false,
    error: 'Format must be "stdout" or "json": "xml"',
  });
  t.deepEqual(renderReport('ps', 'app', info, ['--running'], 'json', false, true, false), {
    ok: false,
    error: '--format flag cannot be specified when specifying an info flag',
  });
});

test('help: Go columnize (trimmed cells) and bash sort | column -t -s, (cells kept)', (t) => {
  t.is(
    columnizeUsage(['    a:x <app>, Does x', '    a:longer, Y']),
    '    a:x <app>  Does x\n    a:longer   Y',
  );
  t.is(columnTable(['    p:z, Zed', '    p:a <n>, Ay']), '    p:a <n>   Ay\n    p:z       Zed');
  // on the controller there is no STABLE_VERSION: the newest help
  const apps = pluginHelp('apps') ?? '';
  t.true(apps.startsWith('Usage: dokku apps[:COMMAND]\n\nManage apps\n\nAdditional commands:\n'));
  t.regex(apps, /^ {4}apps:set <app>\|--global <key> <value> {2}Set or clear an apps property$/m);
  t.is(pluginHelp('nope'), undefined);
});

test('Go times: RFC3339Nano without trailing zeros', (t) => {
  t.is(goTime(new Date('2026-01-01T00:00:00.120Z')), '2026-01-01T00:00:00.12Z');
  t.is(goTime(new Date('2026-01-01T00:00:00.000Z')), '2026-01-01T00:00:00Z');
});

test('formations and Procfiles as ps reads them', (t) => {
  t.deepEqual(parseTuples(['web=4', 'worker=1', 'beat   =0', 'web  =0']), [
    { process_type: 'web', quantity: 4 },
    { process_type: 'worker', quantity: 1 },
    { process_type: 'beat', quantity: 0 },
  ]);
  t.is(parseTuples(['web']), 'Missing count for process type web');
  t.is(parseTuples(['web=x']), 'Invalid count for process type web');
  const p = parseProcfile(
    '# comment\r\nweb: python3 -u web.py # inline\r\n\r\nworker:  node w.js\n',
  );
  t.deepEqual(
    [...p.entries()],
    [
      ['web', 'python3 -u web.py # inline'],
      ['worker', 'node w.js'],
    ],
  );
});

test('dokku-tests: skips become `skip "reason"` lines; stale names are reported', (t) => {
  const src = '@test "(a) one" {\n  run x\n}\n\n@test "(a) two" {\n  run y\n}\n';
  const r = injectSkips(src, [
    { test: '(a) two', reason: 'needs "docker" $HOME' },
    { test: '(a) gone', reason: 'x' },
  ]);
  t.is(
    r.source,
    '@test "(a) one" {\n  run x\n}\n\n@test "(a) two" {\n  skip "needs \\"docker\\" \\$HOME"\n  run y\n}\n',
  );
  t.deepEqual(r.missing, ['(a) gone']);
  t.deepEqual(testNames(src), ['(a) one', '(a) two']);
});

test('dokku-tests: a skipped test also skips in setup() and returns early from teardown()', (t) => {
  const src =
    'setup() {\n  global_setup\n}\n\nteardown() {\n  global_teardown\n}\n\n@test "(b) one" {\n  run x\n}\n';
  const r = injectSkips(src, [{ test: '(b) one', reason: 'needs github' }]);
  t.true(
    r.source.startsWith(
      'setup() {\n  [[ "$BATS_TEST_DESCRIPTION" == "(b) one" ]] && skip "needs github"\n  global_setup\n}\n\nteardown() {\n  [[ "$BATS_TEST_DESCRIPTION" == "(b) one" ]] && return 0\n',
    ),
    r.source,
  );
});

test('dokku-tests: TAP counts; a planned test that never reported is a failure', (t) => {
  const tap = [
    '1..4',
    'ok 1 (a) one',
    'not ok 2 (a) two',
    '# (in test file a.bats, line 3)',
    'ok 3 (a) three # skip needs docker',
  ].join('\n');
  const s = parseTap(tap);
  t.deepEqual([s.planned, s.pass, s.skip, s.fail], [4, 1, 1, 2]);
  t.deepEqual(s.results[1]?.detail, ['(in test file a.bats, line 3)']);
  t.is(s.results[2]?.name, '(a) three');
});

test('dokku-tests: every skip entry names a reason and a known file, releases as X.Y.Z', (t) => {
  for (const s of DOKKU_TEST_SKIPS) {
    t.true(s.reason.length > 10, s.test);
    t.regex(s.file, /^[a-z0-9_-]+$/);
    for (const r of s.releases ?? []) t.regex(r, /^\d+\.\d+\.\d+$/);
  }
  t.deepEqual(
    skipsFor(
      [
        { file: 'a', test: 'x', reason: 'r' },
        { file: 'a', test: 'y', reason: 'r', releases: ['0.37.9'] },
      ],
      'a',
      '0.38.27',
    ).map((s) => s.test),
    ['x'],
  );
});
