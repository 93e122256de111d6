/**
 * Fleets on a three-host lab, each host holding an app of its own: the shipped systemd service's own command lines (ExecStartPre,
 * ExecStart, ExecStartPost, with its Environment=) back up every host and
 * keep only fresh fetched copies; then `ferry backup --all --parallel 2` with
 * one host made to fail (a deploy lock): two archives that verify, one clear
 * failure with its resume command, exit 3, at most two hosts at once, one
 * JUnit file with a suite per host; and the failed host's own resume. On a
 * terminal (script(1)) the same fleet is a live line per host.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { FleetJsonReport } from '../../src/run/fleet-report.js';
import { labTest, useLab } from '../lab/ava.js';
import type { LabHost } from '../lab/lab.js';
import { type ExecResult, run } from '../lab/sys.js';
import { parseUnit, systemdArgv } from './systemd-unit.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'fleet', hosts: ['old', 'new', 'scratch'] });
const HOSTS = ['old', 'new', 'scratch'];
/** backup.dir in each host's own /tmp (/var/lib/dokku-ferry is shared by the lab hosts). */
const BACKUP_DIR = '/tmp/ferry-archives';

let work = '';
let inventory = '';
let seeding: Promise<void> | undefined;

async function setUp(): Promise<void> {
  seeding ??= (async () => {
    const l = lab();
    work = await mkdtemp(join(tmpdir(), 'ferry-fleet-'));
    inventory = join(work, 'hosts.yml');
    const base = await readFile(l.inventoryPath, 'utf8');
    await writeFile(inventory, `${base.trimEnd()}\nbackup:\n  dir: ${BACKUP_DIR}\n  keep: 5\n`);
    // An app with config on each host: what its archive must hold.
    await Promise.all(
      HOSTS.map((h) =>
        l
          .host(h)
          .must(
            `dokku apps:create web-${h} && dokku config:set --no-restart web-${h} GREETING=hi-${h}`,
          ),
      ),
    );
  })();
  await seeding;
}

/** The ferry this checkout built, as a process (CI=1: the plain timestamped lines). */
function ferry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: work,
    env: { ...process.env, CI: '1', FERRY_STATE_DIR: join(work, 'state'), ...env },
  });
}

/** The run folders of a host's backups, oldest first. */
async function runFolders(host: LabHost): Promise<string[]> {
  const out = await host.must(
    `find ${BACKUP_DIR} -mindepth 1 -maxdepth 1 -type d -name '${host.name}-*' 2>/dev/null | sort || true`,
  );
  return out.split('\n').filter((l) => l !== '');
}

/** The archive in a host's run folder checks against its own sha256 file. */
async function archiveVerifies(t: ExecutionContext, host: LabHost, folder: string): Promise<void> {
  const r = await host.exec(`cd ${folder} && sha256sum -c --quiet dokku.tar.zst.sha256`);
  t.is(r.code, 0, `${host.name} ${folder}: ${r.stdout}${r.stderr}`);
}

labTest(
  "the systemd service's command lines back up every host and prune only old fetched copies",
  async (t) => {
    await setUp();
    const unit = parseUnit(
      await readFile(join(root, 'examples/systemd/ferry-backup.service'), 'utf8'),
    );
    const timer = parseUnit(
      await readFile(join(root, 'examples/systemd/ferry-backup.timer'), 'utf8'),
    );
    t.is(unit.get('Service', 'Type'), 'oneshot');
    t.is(timer.get('Timer', 'Unit'), 'ferry-backup.service');
    t.truthy(timer.get('Timer', 'OnCalendar'));
    t.is(timer.get('Install', 'WantedBy'), 'timers.target');

    // Its environment, with what an operator edits pointed at the lab.
    const backups = join(work, 'backups');
    const env: Record<string, string> = {
      ...unit.environment(),
      FERRY_INVENTORY: inventory,
      FERRY_BACKUPS: backups,
      FERRY_STATE_DIR: join(work, 'service-state'),
    };
    t.is(env.FERRY_KEEP_DAYS, '14');
    // systemd runs the binary itself, no shell; `ferry` is this checkout's build.
    const exec = async (key: string): Promise<ExecResult> => {
      const [file, ...args] = systemdArgv(unit.get('Service', key)!, env);
      const program = file === '/usr/local/bin/ferry' ? process.execPath : file!;
      const argv = file === '/usr/local/bin/ferry' ? [`${root}dist/src/bin.js`, ...args] : args;
      return run(program, argv, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    };
    t.deepEqual(systemdArgv(unit.get('Service', 'ExecStart')!, env).slice(0, 5), [
      '/usr/local/bin/ferry',
      'backup',
      '--all',
      '--parallel',
      '4',
    ]);

    const pre = await exec('ExecStartPre');
    t.is(pre.code, 0, pre.stderr);
    // A fetched copy from three weeks ago: the post step removes it, not today's.
    const stale = join(backups, 'old-20200101T000000Z');
    await mkdir(stale);
    await writeFile(join(stale, 'manifest.json'), '{}');
    const weeksAgo = new Date(Date.now() - 21 * 86_400_000);
    await utimes(stale, weeksAgo, weeksAgo);

    const started = Date.now();
    const main = await exec('ExecStart');
    t.log(`ExecStart (ferry backup --all): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.is(main.code, 0, `${main.stdout}\n${main.stderr}`);
    t.regex(main.stdout, /ferry backup --all: all 3 host\(s\) done/);
    // Plain timestamped lines in CI-like output (no terminal), naming their host.
    t.regex(main.stderr, /\[\d\d:\d\d:\d\d\] old: /);

    const post = await exec('ExecStartPost');
    t.is(post.code, 0, post.stderr);
    const fetched = (await readdir(backups)).sort();
    t.deepEqual(
      fetched.map((d) => d.replace(/-\d{8}T\d{6}Z$/, '')),
      HOSTS.slice().sort(),
      fetched.join(', '),
    );
    for (const d of fetched) {
      const files = await readdir(join(backups, d));
      t.true(files.includes('dokku.tar.zst') && files.includes('manifest.json'), `${d}: ${files}`);
      // Each host's archive holds that host's own app.
      const host = d.replace(/-\d{8}T\d{6}Z$/, '');
      const list = await run(
        'bash',
        [
          '-c',
          `zstd -q -dc "$1" | tar -tf - | grep -c '^home/dokku/web-${host}/' || true`,
          '-',
          join(backups, d, 'dokku.tar.zst'),
        ],
        { env: process.env },
      );
      t.true(
        Number(list.stdout.trim()) > 0,
        `${d} holds home/dokku/web-${host}: ${list.stdout}${list.stderr}`,
      );
    }
    for (const h of HOSTS) {
      const [folder] = await runFolders(lab().host(h));
      t.truthy(folder, `a run folder on ${h}`);
      await archiveVerifies(t, lab().host(h), folder!);
    }

    // Where systemd-analyze is installed, it accepts both units (the binary path made real).
    const which = await run('sh', ['-c', 'command -v systemd-analyze'], { env: process.env });
    if (which.code === 0) {
      const dir = join(work, 'units');
      await mkdir(dir);
      const shim = join(dir, 'ferry');
      await writeFile(shim, '#!/bin/sh\nexit 0\n');
      await chmod(shim, 0o755);
      const service = await readFile(join(root, 'examples/systemd/ferry-backup.service'), 'utf8');
      await writeFile(
        join(dir, 'ferry-backup.service'),
        service.replaceAll('/usr/local/bin/ferry', shim),
      );
      await writeFile(
        join(dir, 'ferry-backup.timer'),
        await readFile(join(root, 'examples/systemd/ferry-backup.timer'), 'utf8'),
      );
      const v = await run(
        'systemd-analyze',
        ['verify', join(dir, 'ferry-backup.service'), join(dir, 'ferry-backup.timer')],
        { env: process.env },
      );
      t.is(v.code, 0, `systemd-analyze verify: ${v.stdout}${v.stderr}`);
    } else t.log('systemd-analyze is not installed: units not verified by systemd');
  },
);

labTest(
  'ferry backup --all with one host made to fail: two archives, one clear failure, exit 3',
  async (t) => {
    await setUp();
    const l = lab();
    const scratch = l.host('scratch');
    const before = Object.fromEntries(
      await Promise.all(HOSTS.map(async (h) => [h, await runFolders(l.host(h))] as const)),
    );
    // A deploy that runs on scratch (its lock held under flock, as a running
    // deploy holds it): check-quiet refuses to archive it.
    const lock = '/var/lib/dokku/data/apps/busy/.deploy.lock';
    await scratch.must(
      `dokku apps:create busy >/dev/null && printf '01kxyzlockbuild\\n' > ${lock} && { setsid flock -x ${lock} sleep 900 </dev/null >/dev/null 2>&1 & }`,
    );
    const junit = join(work, 'fleet.xml');
    const started = Date.now();
    const r = await ferry([
      'backup',
      '--all',
      '--parallel',
      '2',
      '-i',
      inventory,
      '--json',
      '--junit',
      junit,
    ]);
    t.log(`ferry backup --all --parallel 2: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.is(r.code, 3, `${r.stdout}\n${r.stderr}`);

    const report = JSON.parse(r.stdout) as FleetJsonReport;
    t.is(report.status, 'partial');
    t.is(report.exitCode, 3);
    t.deepEqual(
      report.hosts.map((h) => [h.host, h.exitCode]),
      [
        ['old', 0],
        ['new', 0],
        ['scratch', 1],
      ],
    );
    // The failure is clear: which step, why, what to do, and the host's own resume command.
    const failed = report.hosts[2]!.report!.failure!;
    t.is(failed.stepId, 'check-quiet');
    t.regex(failed.message, /scratch is busy/);
    t.regex(r.stderr, /── scratch ──/);
    t.regex(r.stderr, /a deploy of busy is running/);
    t.regex(r.stderr, /apps:unlock/);
    t.true(r.stderr.includes(`ferry backup scratch -i ${inventory} --resume`), r.stderr);

    // Two new archives that verify; none on the failed host.
    for (const h of ['old', 'new']) {
      const host = l.host(h);
      const now = await runFolders(host);
      const added = now.filter((f) => !before[h]!.includes(f));
      t.is(added.length, 1, `${h}: ${added}`);
      await archiveVerifies(t, host, added[0]!);
      t.true(
        report.hosts
          .find((x) => x.host === h)!
          .report!.facts.archive!.startsWith(`${added[0]}/dokku.tar.zst`),
      );
    }
    t.deepEqual(await runFolders(scratch), before.scratch);

    // Never more than two at once, and two did run together.
    const spans = report.hosts.map((h) => {
      const s = Date.parse(h.startedAt);
      return [s, s + h.durationMs] as const;
    });
    const most = Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s < b).length));
    t.is(most, 2, JSON.stringify(spans));

    // One JUnit file, a suite per host, the failure in scratch's.
    const xml = await readFile(junit, 'utf8');
    t.is((xml.match(/<testsuite /g) ?? []).length, 3);
    t.regex(xml, /<testsuite name="ferry backup scratch" tests="\d+" failures="1"/);
    t.regex(xml, /<testsuite name="ferry backup old" tests="\d+" failures="0"/);

    // The resume command the report gave finishes scratch once the deploy is over.
    // The lock file gone is the deploy over (its holder ends with the lab host).
    await scratch.must(`rm -f ${lock}`);
    const again = await ferry(['backup', 'scratch', '-i', inventory, '--resume']);
    t.is(again.code, 0, `${again.stdout}\n${again.stderr}`);
    t.regex(again.stderr, /resuming run/);
    const [folder] = (await runFolders(scratch)).filter((f) => !before.scratch!.includes(f));
    t.truthy(folder);
    await archiveVerifies(t, scratch, folder!);
  },
);

labTest('on a terminal: a live line per host with the step it is on, no timestamps', async (t) => {
  await setUp();
  const sq = (v: string): string => `'${v.replace(/'/g, "'\\''")}'`;
  // A pty made by script(1) has no size: give it an operator's 120 columns.
  const cmd = `stty cols 120 rows 40; exec ${[
    process.execPath,
    `${root}dist/src/bin.js`,
    'backup',
    '--all',
    '-i',
    inventory,
  ]
    .map(sq)
    .join(' ')}`;
  // script(1) gives ferry a terminal: stderr is a TTY, as for an operator.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TERM: 'xterm-256color',
    FERRY_STATE_DIR: join(work, 'state'),
  };
  delete env.CI;
  const r = await run('script', ['-qfec', cmd, '/dev/null'], { cwd: work, env });
  t.is(r.code, 0, r.stdout);
  const out = r.stdout;
  // The live tree redraws its lines in place: cursor movement and line erasing.
  const ESC = String.fromCharCode(27);
  t.true(new RegExp(`${ESC}\\[[0-9;]*[AGK]`).test(out), 'escape sequences that redraw lines');
  for (const h of HOSTS) {
    t.regex(out, new RegExp(`${h}: [^\\n]*\\(\\d+/\\d+\\)`), `${h}'s line shows its step`);
    t.regex(out, new RegExp(`${h}: done in`), `${h}'s line ends done`);
  }
  t.notRegex(out, /\[\d\d:\d\d:\d\d\] /, 'no timestamped lines on a terminal');
  t.regex(out, /ferry backup --all: all 3 host\(s\) done/);
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
