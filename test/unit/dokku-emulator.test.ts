/**
 * The lab's emulator and these parsers were written from the same reference by
 * different hands; feeding the emulator's pure formatters into the parsers keeps
 * the two honest with each other.
 */
import test from 'ava';
import { parseBuildsList } from '../../src/dokku/builds.js';
import { parsePsReport, parsePsReportJson } from '../../src/dokku/ps.js';
import { parseReport, parseReportJson, parseReportValue } from '../../src/dokku/report.js';
import { columnize, renderReport } from '../lab/emulator/report.js';

const ok = (stdout: string) => ({ stdout, stderr: '', code: 0 });

function render(
  plugin: string,
  info: Record<string, string>,
  opts: { flags?: string[]; format?: string; quiet?: boolean; legacy?: boolean } = {},
): string {
  const r = renderReport(
    plugin,
    'web',
    info,
    opts.flags ?? [],
    opts.format ?? 'stdout',
    opts.quiet ?? false,
    opts.legacy ?? false,
  );
  if (!r.ok) throw new Error(r.error);
  return r.text;
}

const PS = {
  '--deployed': 'true',
  '--processes': '2',
  '--ps-can-scale': 'true',
  '--ps-computed-stop-timeout-seconds': '30',
  '--ps-restart-policy': '',
  '--restore': 'false',
  '--running': 'mixed',
  '--status-web.1': 'running (CID: 0123456789a)',
  '--status-web.2': 'missing',
};

test('ps:report as the emulator renders it: stdout, --quiet, json with legacy keys, one flag', (t) => {
  for (const quiet of [false, true]) {
    const r = parsePsReport(ok(render('ps', PS, { quiet })));
    t.is(r.app, quiet ? undefined : 'web');
    t.true(r.deployed);
    t.is(r.processes, 2);
    t.false(r.restore);
    t.is(r.running, 'mixed');
    t.deepEqual(
      r.statuses.map((s) => [s.process, s.index, s.state]),
      [
        ['web', 1, 'running'],
        ['web', 2, 'missing'],
      ],
    );
  }
  const j = parsePsReportJson(ok(render('ps', PS, { format: 'json', legacy: true })));
  t.is(j.processes, 2);
  t.is(j.statuses[1]!.state, 'missing');
  t.is(parseReportValue('ps:report', ok(render('ps', PS, { flags: ['--restore'] }))), 'false');
  t.is(parseReportValue('ps:report', ok(render('ps', PS, { flags: ['--ps-restart-policy'] }))), '');
});

test('git:report as the emulator renders it', (t) => {
  const info = {
    '--git-computed-deploy-branch': 'main',
    '--git-deploy-branch': 'main',
    '--git-last-updated-at': '1761000000',
    '--git-rev-env-var': 'GIT_REV',
    '--git-sha': 'a'.repeat(40),
    '--git-source-image': '',
  };
  const [r] = parseReport('git:report', ok(render('git', info)));
  t.is(r?.entries['git-computed-deploy-branch'], 'main');
  t.is(r?.entries['git-sha'], 'a'.repeat(40));
  t.is(r?.entries['git-last-updated-at'], '1761000000');
  const j = parseReportJson('git:report', ok(render('git', info, { format: 'json' })));
  t.is(j['deploy-branch'], 'main');
  t.is(j['source-image'], '');
});

test('builds:list as the emulator columnizes it', (t) => {
  const text = `${columnize([
    ['App', 'Build ID', 'Kind', 'PID', 'Source', 'Started'],
    ['web', '01j8c4xv7bk5w3', 'build', '12345', 'git-hook', '2026-04-30T13:50:00Z'],
  ])}\n`;
  const [b] = parseBuildsList(ok(text));
  t.is(b?.app, 'web');
  t.is(b?.pid, 12345);
});
