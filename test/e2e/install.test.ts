/**
 * ferry as a user gets it, outside this repository: `npm pack`, `npm install
 * -g` of the tarball into a temporary prefix (with ssh2's build allowed, as
 * the README says for npm 11), then the installed `ferry --help`, `ferry
 * plan` and `ferry check` against the lab from a folder that is not the
 * repository. Then the same install without the native binding: `ferry
 * check` says so and names a command, and that very command builds it.
 *
 * Needs the npm registry (the install resolves ferry's dependencies) and a
 * C++ toolchain (node-gyp builds ssh2's binding).
 */
import { cp, mkdtemp, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { CheckReport } from '../../src/commands/check-report.js';
import { labTest, useLab } from '../lab/ava.js';
import { CLEAN_ENV, type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'install', hosts: ['old', 'new'] });

let work = '';

/**
 * The user's environment (a proxy's CA in NODE_EXTRA_CA_CERTS, HTTPS_PROXY)
 * without what the npm running this test exports to its scripts
 * (npm_config_*: its prefix, its cache, its user agent).
 */
const USER_ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD'),
);

/** Runs a command in `cwd`, killed after 8 minutes (an unreachable registry must not hang the suite). */
async function sh(
  t: ExecutionContext,
  cwd: string,
  file: string,
  args: string[],
): Promise<ExecResult> {
  const started = Date.now();
  const r = await run('timeout', ['--kill-after=10', '480', file, ...args], {
    cwd,
    env: { ...USER_ENV, PATH: USER_ENV.PATH ?? CLEAN_ENV.PATH },
  });
  t.log(
    `${[file, ...args].join(' ')}: exit ${r.code} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return r;
}

/** `npm pack` of this checkout (its dist/ is what the tests run), then a global install into `prefix`. */
async function packAndInstall(t: ExecutionContext, prefix: string): Promise<string> {
  const packed = await sh(t, root, 'npm', ['pack', '--pack-destination', work, '--silent']);
  t.is(packed.code, 0, packed.stderr);
  const tarball = join(work, packed.stdout.trim().split('\n').pop()!);
  t.regex(tarball, /dokku-ferry-\d+\.\d+\.\d+\.tgz$/);
  const installed = await sh(t, work, 'npm', [
    'install',
    '-g',
    '--prefix',
    prefix,
    '--allow-scripts=ssh2,cpu-features',
    '--no-audit',
    '--no-fund',
    tarball,
  ]);
  t.is(installed.code, 0, `${installed.stdout}\n${installed.stderr}`);
  // The scripts were allowed: npm has nothing left to warn about.
  t.notRegex(installed.stderr, /not yet covered by allowScripts/);
  return join(prefix, 'bin', 'ferry');
}

labTest(
  'the packed tarball, installed globally: --help, plan and check run from outside the repo',
  async (t) => {
    work = await mkdtemp(join(tmpdir(), 'ferry-install-'));
    const outside = await mkdtemp(join(work, 'elsewhere-'));
    const prefix = join(work, 'prefix');
    const ferry = await packAndInstall(t, prefix);
    // npm links the bin: the executable is a symlink whose name is not cli.js.
    t.is(await readlink(ferry), '../lib/node_modules/dokku-ferry/dist/src/bin.js');
    const inv = lab().inventoryPath;

    const help = await sh(t, outside, ferry, ['--help']);
    t.is(help.code, 0, help.stderr);
    t.regex(help.stdout, /^ferry: move, back up and restore a whole Dokku server over SSH/);
    t.regex(help.stdout, /Exit codes:/);
    const version = await sh(t, outside, ferry, ['--version']);
    t.is(version.stdout.trim(), '0.1.0');

    // The shipped playbook comes from the installed package, not from this checkout.
    const plan = await sh(t, outside, ferry, [
      'plan',
      'migrate',
      'source=old',
      'target=new',
      '-i',
      inv,
    ]);
    t.is(plan.code, 0, plan.stderr);
    t.true(
      plan.stdout.startsWith(
        `Plan: migrate (${join(prefix, 'lib/node_modules/dokku-ferry/playbooks/migrate.yml')})`,
      ),
      plan.stdout.split('\n')[0],
    );
    t.regex(plan.stdout, /transfer on target \(new\)/);

    const check = await sh(t, outside, ferry, ['check', '-i', inv]);
    t.is(check.code, 0, `${check.stdout}\n${check.stderr}`);
    t.regex(check.stdout, /ssh2 native crypto built/);
    t.regex(check.stdout, /all 2 host\(s\) ok/);
  },
);

labTest('without the native binding, check says so and its command builds it', async (t) => {
  const prefix = join(work, 'prefix');
  t.truthy(await stat(prefix), 'the first test installed ferry');
  // What a skipped install script leaves: ssh2 and cpu-features without their build folders.
  const bare = join(work, 'bare');
  await cp(prefix, bare, { recursive: true, verbatimSymlinks: true });
  const modules = join(bare, 'lib/node_modules/dokku-ferry/node_modules');
  await rm(join(modules, 'ssh2/lib/protocol/crypto/build'), { recursive: true });
  await rm(join(modules, 'cpu-features/build'), { recursive: true, force: true });
  const ferry = join(bare, 'bin', 'ferry');
  const inv = lab().inventoryPath;

  const text = await sh(t, work, ferry, ['check', '-i', inv]);
  t.regex(text.stdout, /ssh2 native crypto NOT built/);
  const want = `npm rebuild -g --prefix ${bare} --allow-scripts=ssh2,cpu-features ssh2 cpu-features`;
  t.true(
    text.stdout.includes(`hint: build it (needs python3, make and a C++ compiler): ${want}`),
    text.stdout,
  );
  const json = JSON.parse(
    (await sh(t, work, ferry, ['check', '-i', inv, '--json'])).stdout,
  ) as CheckReport;
  t.false(json.controller.nativeCrypto);
  t.is(json.controller.nativeCryptoFix, want);

  // The hint's command, exactly as printed, run by a shell.
  const fixed = await sh(t, work, 'bash', ['-c', want]);
  t.is(fixed.code, 0, `${fixed.stdout}\n${fixed.stderr}`);
  const again = await sh(t, work, ferry, ['check', '-i', inv]);
  t.is(again.code, 0, again.stdout);
  t.regex(again.stdout, /ssh2 native crypto built/);
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
