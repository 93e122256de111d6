/**
 * `npm run lab -- dokku-tests`: runs bats files of Dokku's own unit tests
 * (tests/unit in a Dokku checkout) inside a lab host whose `dokku` is the
 * emulator at a given release, and reports pass/skip/fail per file.
 *
 * Dokku's tests are not copied into this repository: they are read from a
 * checkout given with --dokku-src, or from a fetched mirror of
 * github:dokku/dokku (`git archive v<release> tests`). With neither, the run
 * says so in one line and counts as skipped.
 *
 * A lab host lacks a few things the tests expect of a Dokku server; small
 * stand-ins provide them: `sudo` (runuser), `uuidgen`, an ssh config that
 * sends `dokku@dokku.me` to the host's own sshd, a `curl` that sends
 * *.dokku.me to the host (Dokku's CI has wildcard DNS), a `git` that serves
 * the smoke-test plugin's GitHub URL from a local copy, and the global VHOST
 * `dokku.me`. Tests
 * the emulator cannot run are marked skipped, with their reason, from
 * {@link DOKKU_TEST_SKIPS}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { injectSkips, parseTap, skipsFor, type TapSummary } from './dokku-tests-lib.js';
import { DOKKU_TEST_SKIPS } from './dokku-tests-skips.js';
import { DEFAULT_DOKKU_VERSION, Lab, type LabHost, REGISTRY_DIR } from './lab.js';
import { LabError } from './sys.js';

/** The bats files the runner runs when none is named. */
export const DEFAULT_TEST_FILES = [
  'apps_1',
  'apps_2',
  'config',
  'config-oddities',
  'plugin',
  'network',
  'builds',
  'ps-general-1',
  'ps-general-2',
  'git_1',
  'git_2',
  'git_3',
  'git_4',
  'git_5',
  'git_6',
  'git_7',
  'storage-1',
  'storage-2',
  'version',
];

/** Where fetched mirrors live (the `fetch` tool's layout: owner+name/repo). */
const MIRROR_ROOT = process.env.FERRY_MIRROR_ROOT ?? '/work/.mirror';

/** Options of {@link runDokkuTests}. */
export interface DokkuTestsOptions {
  release?: string;
  /** A Dokku checkout (its tests/unit is read). */
  dokkuSrc?: string;
  instance?: string;
  files?: string[];
  /** Keep the lab up afterwards (to look around). */
  keep?: boolean;
  log?: (line: string) => void;
}

/** One file's outcome. */
export interface FileOutcome {
  file: string;
  summary: TapSummary | null;
  /** Why the file was not run (absent at this release). */
  note?: string;
  seconds: number;
}

/** Result of a run; `skipped` when there was no checkout to read the tests from. */
export type DokkuTestsResult =
  | { skipped: true; reason: string }
  | { skipped: false; release: string; files: FileOutcome[]; logDir: string };

function git(args: string[]): { code: number; out: string } {
  const r = spawnSync('git', args, { encoding: 'utf8', maxBuffer: 512 << 20 });
  return { code: r.status ?? 1, out: r.stdout ?? '' };
}

/** A bare mirror of dokku/dokku under MIRROR_ROOT, if one was fetched. */
function findMirror(): string | undefined {
  for (const candidate of [
    join(MIRROR_ROOT, 'dokku+dokku', 'repo'),
    join(MIRROR_ROOT, 'dokku+dokku', 'repo', '.git'),
  ]) {
    if (existsSync(join(candidate, 'HEAD')) && existsSync(join(candidate, 'objects'))) {
      return candidate;
    }
  }
  return undefined;
}

/** The smoke-test plugin's repository, if a mirror of it was fetched. */
function findSmokeTestPlugin(): string | undefined {
  for (const candidate of [
    join(MIRROR_ROOT, 'dokku+smoke-test-plugin', 'repo', '.git'),
    join(MIRROR_ROOT, 'dokku+smoke-test-plugin', 'repo'),
  ]) {
    if (existsSync(join(candidate, 'HEAD')) && existsSync(join(candidate, 'objects'))) {
      return candidate;
    }
  }
  return undefined;
}

/** Where to read tests/ from: the given checkout, else an export of the mirror at the tag. */
function resolveTests(
  release: string,
  dokkuSrc: string | undefined,
  scratch: string,
): { dir: string } | { reason: string } {
  if (dokkuSrc !== undefined) {
    if (!existsSync(join(dokkuSrc, 'tests', 'unit', 'test_helper.bash'))) {
      return { reason: `${dokkuSrc} has no tests/unit/test_helper.bash` };
    }
    return { dir: dokkuSrc };
  }
  const mirror = findMirror();
  if (mirror === undefined) {
    return { reason: `no Dokku checkout (give --dokku-src DIR, or fetch dokku/dokku)` };
  }
  const tag = `v${release}`;
  if (git(['--git-dir', mirror, 'rev-parse', '-q', '--verify', `${tag}^{commit}`]).code !== 0) {
    return { reason: `the Dokku mirror at ${mirror} has no tag ${tag}` };
  }
  mkdirSync(scratch, { recursive: true });
  const r = spawnSync(
    'sh',
    ['-c', 'git --git-dir="$1" archive "$2" tests | tar -x -C "$3"', 'sh', mirror, tag, scratch],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  if (r.status !== 0) return { reason: `git archive ${tag} failed: ${r.stderr.toString().trim()}` };
  return { dir: scratch };
}

/** A `sudo` for a host without one: root runs the command, as another user through runuser. */
const SUDO = `#!/usr/bin/env bash
# dokku-tests stand-in: sudo [-E] [-H] [-n] [-u USER] CMD...
user=root
while [[ $# -gt 0 ]]; do
  case "$1" in
    -E|-H|-n|-S) shift ;;
    -u) user="$2"; shift 2 ;;
    -u*) user="\${1#-u}"; shift ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
if [[ "$user" == root ]]; then exec "$@"; fi
exec runuser -u "$user" -- "$@"
`;

/**
 * A `git` in front of the real one: the lab has no internet, so clones,
 * fetches and pulls of the smoke-test plugin's GitHub URL are served from its
 * local copy; a clone's origin is set back to the URL, as a real clone has it
 * (`git remote get-url` would otherwise show the rewrite).
 */
function gitStandIn(local: string): string {
  return `#!/usr/bin/env bash
url=https://github.com/dokku/smoke-test-plugin.git
local=${local}
case "$1" in
  clone)
    if [[ " $* " == *" $url "* ]]; then
      dest=""
      for a in "\${@:2}"; do [[ "$a" == -* || "$a" == "$url" ]] || dest="$a"; done
      [[ -n "$dest" ]] || dest=smoke-test-plugin
      /usr/bin/git -c "url.$local.insteadOf=$url" "$@" || exit $?
      exec /usr/bin/git -C "$dest" remote set-url origin "$url"
    fi ;;
  fetch|pull|ls-remote)
    exec /usr/bin/git -c "url.$local.insteadOf=$url" "$@" ;;
esac
exec /usr/bin/git "$@"
`;
}

/** Dokku's CI resolves *.dokku.me to the test machine; here curl is pointed at this host for them. */
const CURL = `#!/usr/bin/env bash
for a in "$@"; do
  if [[ "$a" =~ ^(https?://)?([^/:]+\\.)?dokku\\.me([:/]|$) ]]; then
    exec /usr/bin/curl --connect-to '::127.0.0.1:' "$@"
  fi
done
exec /usr/bin/curl "$@"
`;

const UUIDGEN = `#!/bin/sh
cat /proc/sys/kernel/random/uuid
`;

/** Prepare the host the way Dokku's CI leaves a test machine. */
async function prepareHost(lab: Lab, host: LabHost, testsDir: string): Promise<void> {
  const base = '/tmp/dokku-tests';
  const onCtl = host.pathOnController(base);
  rmSync(onCtl, { recursive: true, force: true });
  mkdirSync(join(onCtl, 'bin'), { recursive: true });
  writeFileSync(join(onCtl, 'bin', 'sudo'), SUDO, { mode: 0o755 });
  writeFileSync(join(onCtl, 'bin', 'curl'), CURL, { mode: 0o755 });
  if (spawnSync('sh', ['-c', 'command -v uuidgen']).status !== 0) {
    writeFileSync(join(onCtl, 'bin', 'uuidgen'), UUIDGEN, { mode: 0o755 });
  }
  // tests/ keeps its place beside tests/unit: deploy_app reads ../../tests/apps
  mkdirSync(join(onCtl, 'src'));
  const cp = spawnSync('cp', ['-a', join(testsDir, 'tests'), join(onCtl, 'src')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (cp.status !== 0) throw new LabError(`copying tests/: ${cp.stderr.toString().trim()}`);

  const knownHosts = readFileSync(lab.knownHostsPath, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${host.address} `))
    .join('\n');
  const key = readFileSync(lab.keyPath, 'utf8');
  const smoke = findSmokeTestPlugin();
  if (smoke !== undefined) {
    // the emulator's plugin:install clones a URL from the lab registry (plugins/<host>/<path>)
    const dst = join(REGISTRY_DIR, 'plugins', 'github.com', 'dokku', 'smoke-test-plugin.git');
    if (!existsSync(join(dst, 'HEAD'))) {
      mkdirSync(join(dst, '..'), { recursive: true });
      const tmp = `${dst}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      const c = spawnSync('git', ['clone', '-q', '--bare', smoke, tmp], { stdio: 'ignore' });
      if (c.status === 0) spawnSync('mv', ['-T', tmp, dst]);
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (smoke !== undefined) {
    const local = join(REGISTRY_DIR, 'plugins', 'github.com', 'dokku', 'smoke-test-plugin.git');
    writeFileSync(join(onCtl, 'bin', 'git'), gitStandIn(local), { mode: 0o755 });
  }
  const gitconfig = [
    '[safe]',
    '\tdirectory = *',
    '[user]',
    '\tname = Test Robot',
    '\temail = robot@example.com',
    '',
  ].join('\n');
  writeFileSync(join(onCtl, 'gitconfig'), gitconfig, { mode: 0o644 });
  await host.must(
    [
      'set -e',
      'mkdir -p /root/.ssh && chmod 700 /root/.ssh',
      `cat >/root/.ssh/id_ed25519 <<'EOF'\n${key.trim()}\nEOF`,
      'chmod 600 /root/.ssh/id_ed25519',
      // Dokku's CI leaves a spare key pair for the deploy-key tests
      'ssh-keygen -q -t rsa -b 2048 -N "" -f /root/.ssh/dokku_test_rsa <<<y >/dev/null',
      `cat >/root/.ssh/known_hosts <<'EOF'\n${knownHosts}\nEOF`,
      `cat >/root/.ssh/config <<'EOF'\nHost dokku.me\n  HostName ${host.address}\n  IdentityFile /root/.ssh/id_ed25519\n  IdentitiesOnly yes\n  UserKnownHostsFile /root/.ssh/known_hosts\n  StrictHostKeyChecking yes\nEOF`,
      'printf "dokku.me\\n" >/home/dokku/VHOST && chown dokku:dokku /home/dokku/VHOST',
      `chmod -R a+rX ${base}`,
    ].join('\n'),
  );
}

/** Run the bats files; see the module comment. */
export async function runDokkuTests(opts: DokkuTestsOptions = {}): Promise<DokkuTestsResult> {
  const release = opts.release ?? DEFAULT_DOKKU_VERSION;
  const log = opts.log ?? (() => {});
  const scratch = join(tmpdir(), `ferry-dokku-tests-src-${process.pid}`);
  const src = resolveTests(release, opts.dokkuSrc, scratch);
  if ('reason' in src) return { skipped: true, reason: src.reason };
  if (spawnSync('sh', ['-c', 'command -v bats']).status !== 0) {
    rmSync(scratch, { recursive: true, force: true });
    throw new LabError('bats is not installed', { hint: 'apt-get install bats' });
  }
  const files = opts.files && opts.files.length > 0 ? opts.files : DEFAULT_TEST_FILES;
  const logDir = join(tmpdir(), `ferry-dokku-tests-${release}`);
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  const instance = opts.instance ?? 'dokku-tests';
  let lab: Lab | undefined;
  const outcomes: FileOutcome[] = [];
  try {
    log(`bringing up lab ${instance} (dokku ${release})`);
    lab = await Lab.up({
      instance,
      hosts: [{ name: 'dokku', dokkuVersion: release }],
      log,
    });
    const host = lab.host('dokku');
    await prepareHost(lab, host, src.dir);
    const unitOnCtl = host.pathOnController('/tmp/dokku-tests/src/tests/unit');
    const present = new Set(readdirSync(unitOnCtl));
    for (const file of files) {
      const name = `${file}.bats`;
      if (!present.has(name)) {
        outcomes.push({ file, summary: null, note: `not in tests/unit at ${release}`, seconds: 0 });
        continue;
      }
      const source = readFileSync(join(unitOnCtl, name), 'utf8');
      const skips = skipsFor(DOKKU_TEST_SKIPS, file, release);
      const marked = injectSkips(source, skips);
      for (const m of marked.missing) log(`skip list: ${file}: no test named "${m}"`);
      writeFileSync(join(unitOnCtl, name), marked.source);
      log(`running ${file}.bats`);
      const t0 = Date.now();
      const r = await host.exec(
        [
          'cd /tmp/dokku-tests/src/tests/unit',
          'export PATH=/tmp/dokku-tests/bin:$PATH HOME=/root GIT_CONFIG_GLOBAL=/tmp/dokku-tests/gitconfig',
          `timeout 1800 bats --tap ${name} 2>&1`,
        ].join(' && '),
      );
      const seconds = (Date.now() - t0) / 1000;
      writeFileSync(join(logDir, `${file}.tap`), r.stdout + r.stderr);
      const summary = parseTap(r.stdout);
      if (r.code !== 0 && summary.fail === 0 && summary.planned === 0) {
        summary.fail = 1;
        summary.results.push({
          name: `(bats exited ${r.code})`,
          outcome: 'fail',
          detail: (r.stdout + r.stderr).split('\n').slice(-10),
        });
      }
      outcomes.push({ file, summary, seconds });
      log(
        `  ${file}: ${summary.pass} passed, ${summary.skip} skipped, ${summary.fail} failed (${seconds.toFixed(0)} s)`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    if (lab !== undefined && opts.keep !== true) await lab.down();
  }
  return { skipped: false, release, files: outcomes, logDir };
}

/** The report the CLI prints: one line per file, totals, each failure's name. */
export function formatDokkuTests(r: DokkuTestsResult): string {
  if (r.skipped) return `dokku-tests skipped: ${r.reason}`;
  const lines = [`dokku-tests at ${r.release} (TAP logs in ${r.logDir})`];
  let pass = 0;
  let skip = 0;
  let fail = 0;
  for (const f of r.files) {
    if (f.summary === null) {
      lines.push(`  ${f.file.padEnd(16)} ${f.note ?? 'not run'}`);
      continue;
    }
    const s = f.summary;
    pass += s.pass;
    skip += s.skip;
    fail += s.fail;
    lines.push(
      `  ${f.file.padEnd(16)} ${String(s.pass).padStart(3)} pass ${String(s.skip).padStart(3)} skip ${String(s.fail).padStart(3)} fail  ${f.seconds.toFixed(0)} s`,
    );
    for (const t of s.results.filter((x) => x.outcome === 'fail'))
      lines.push(`      FAIL ${t.name}`);
  }
  lines.push(
    `  ${'total'.padEnd(16)} ${String(pass).padStart(3)} pass ${String(skip).padStart(3)} skip ${String(fail).padStart(3)} fail`,
  );
  return lines.join('\n');
}
