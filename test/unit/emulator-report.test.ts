import test from 'ava';
import {
  columnize,
  columnizePairs,
  generateBuildId,
  goDuration,
  parseReportArgs,
  renderReport,
  reportLabel,
  reportLines,
  xargsSplit,
} from '../lab/emulator/report.js';

test('labels: dashes and dots become spaces, first letter upper-cased, colon', (t) => {
  t.is(reportLabel('--git-computed-deploy-branch'), 'Git computed deploy branch:');
  t.is(reportLabel('--status-web.1'), 'Status web 1:');
});

test('report lines pad to max(longest flag, 31) and keep trailing spaces for empty values', (t) => {
  const lines = reportLines({ '--ps-computed-dockerfile-start-cmd': '', '--deployed': 'true' });
  t.deepEqual(lines, [
    `       ${'Deployed:'.padEnd(34)}true`,
    `       ${'Ps computed dockerfile start cmd:'} `,
  ]);
  t.is(reportLines({ '--a': 'x' })[0], `       ${'A:'.padEnd(31)}x`);
});

test('single flag prints the value; unknown flag lists valid ones; two flags print nothing', (t) => {
  const info = { '--b-x': '1', '--b-a': '' };
  t.deepEqual(renderReport('b', 'app', info, ['--b-x'], 'stdout', false, false), {
    ok: true,
    text: '1\n',
  });
  t.deepEqual(renderReport('b', 'app', info, ['--b-a'], 'stdout', false, false), {
    ok: true,
    text: '\n',
  });
  t.deepEqual(renderReport('b', 'app', info, ['--nope'], 'stdout', false, false), {
    ok: false,
    error: 'Invalid flag passed, valid flags: --b-a, --b-x',
  });
  t.deepEqual(renderReport('b', 'app', info, ['--b-a', '--b-x'], 'stdout', false, false), {
    ok: true,
    text: '',
  });
});

test('header is quiet-able, json trims the plugin prefix and may keep legacy keys', (t) => {
  const info = { '--ps-restore': 'true', '--running': 'false' };
  const text = renderReport('ps', 'app', info, [], 'stdout', false, true);
  t.true(text.ok && text.text.startsWith('=====> app ps information\n'));
  const quiet = renderReport('ps', 'app', info, [], 'stdout', true, true);
  t.true(quiet.ok && !quiet.text.includes('=====>'));
  t.deepEqual(renderReport('ps', 'app', info, [], 'json', false, true), {
    ok: true,
    text: '{"ps-restore":"true","restore":"true","running":"false"}\n',
  });
  t.deepEqual(renderReport('ps', 'app', info, [], 'json', false, false), {
    ok: true,
    text: '{"restore":"true","running":"false"}\n',
  });
  t.deepEqual(renderReport('ps', 'app', info, [], 'xml', false, false), {
    ok: false,
    error: 'Format must be "stdout" or "json": "xml"',
  });
});

test('parseReportArgs', (t) => {
  t.deepEqual(parseReportArgs(['app', '--x', '--format', 'json']), {
    app: 'app',
    flags: ['--x'],
    format: 'json',
    global: false,
  });
  t.true(parseReportArgs(['--global']).global);
});

test('columnize uses 2-space glue and leaves the last column unpadded', (t) => {
  t.is(
    columnize([
      ['Build ID', 'Kind'],
      ['x', 'build'],
    ]),
    'Build ID  Kind\nx         build',
  );
  t.deepEqual(
    columnizePairs([
      ['A', '1'],
      ['LONG', '2'],
    ]),
    ['A:     1', 'LONG:  2'],
  );
});

test('Go durations and build ids', (t) => {
  t.is(goDuration(0), '0s');
  t.is(goDuration(74), '1m14s');
  t.is(goDuration(3723), '1h2m3s');
  const id = generateBuildId();
  t.regex(id, /^[0-9a-z]{14}$/);
  t.true(generateBuildId(Date.now() + 1000) > id.slice(0, 8));
});

test('xargs-like splitting honours quotes', (t) => {
  t.deepEqual(xargsSplit(`config:set app 'A=b c' "D=e f" G=h`), [
    'config:set',
    'app',
    'A=b c',
    'D=e f',
    'G=h',
  ]);
  t.deepEqual(xargsSplit(`a '' b`), ['a', '', 'b']);
});
