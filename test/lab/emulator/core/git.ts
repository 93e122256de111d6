/** git-receive-pack, git-upload-pack, git-hook and git:* (reference §5; D plugins/git). */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { buildAndDeploy, deployBranch, git, setupBuildCapture } from '../deploy.js';
import {
  archiveContextPath,
  copyTree,
  engineTmp,
  imageExists,
  loadImages,
  pullImage,
} from '../engine.js';
import {
  appExists,
  appNameError,
  bashReportCommand,
  type Command,
  chownDokku,
  DOKKU_ROOT,
  deleteProperty,
  eprintln,
  fail,
  getGlobalProperty,
  getProperty,
  hasProperty,
  info1,
  info2Quiet,
  isQuiet,
  println,
  reportCommand,
  runDokku,
  setProperty,
  verbose,
  verifyAppBash,
  versionAtLeast,
  warn,
  writeFileDokku,
} from '../lib.js';
import { autocreationDisabled, createApp } from './apps.js';

const CLR = '\x1b[1G\x1b[K';

/** Write hooks/pre-receive as fn-git-create-hook does. */
export function createHook(app: string): void {
  const quoted = versionAtLeast('0.38.2') ? `"${app}"` : app;
  const hook = `#!/usr/bin/env bash
set -e
set -o pipefail

cat | DOKKU_ROOT="${DOKKU_ROOT}" dokku git-hook ${quoted}
`;
  writeFileDokku(join(DOKKU_ROOT, app, 'hooks', 'pre-receive'), hook, 0o755);
}

/** `git init -q --bare $DOKKU_ROOT/<app>` + the pre-receive hook (git post-create). */
export function createGitRepo(app: string): void {
  const root = join(DOKKU_ROOT, app);
  if (!existsSync(join(root, 'refs'))) {
    spawnSync('git', ['-c', 'init.defaultBranch=master', 'init', '-q', '--bare', root], {
      stdio: 'ignore',
    });
  }
  createHook(app);
  chownDokku(root, true);
}

function appFromSsh(arg: string | undefined): string {
  return (arg ?? '').replace(/'/g, '').replace(/^\//, '');
}

const receivePack: Command = async (args) => {
  const app = appFromSsh(args[0]);
  if (!appExists(app)) {
    const bad = appNameError(app);
    if (bad !== null) fail(bad);
  }
  if (!existsSync(join(DOKKU_ROOT, app, 'refs'))) {
    if (!appExists(app)) {
      if (autocreationDisabled()) {
        warn('App auto-creation disabled.');
        fail("Re-enable app auto-creation or create an app with 'dokku apps:create <app>'");
      }
      await createApp(app, true);
    }
    createGitRepo(app);
  }
  const r = spawnSync('git-shell', ['-c', `git-receive-pack '${join(DOKKU_ROOT, app)}'`], {
    stdio: 'inherit',
  });
  return r.status ?? 1;
};

const uploadPack: Command = async (args) => {
  const app = appFromSsh(args[0]);
  verifyAppBash(app);
  const r = spawnSync('git-shell', ['-c', `git-upload-pack '${join(DOKKU_ROOT, app)}'`], {
    stdio: 'inherit',
  });
  return r.status ?? 1;
};

/** git_receive_app: lock, GIT_REV, build, release, deploy. */
export async function receiveApp(app: string, rev: string): Promise<number> {
  if (!existsSync(join(DOKKU_ROOT, app, 'refs'))) return 0;
  const varName = hasProperty('git', app, 'rev-env-var')
    ? getProperty('git', app, 'rev-env-var')
    : 'GIT_REV';
  // git_build sets the rev var once the deploy lock is held
  return buildAndDeploy(app, rev, () => {
    if (varName === '') return 0;
    const r = runDokku(['--quiet', 'config:set', '--no-restart', app, `${varName}=${rev}`], {
      capture: true,
    });
    if (r.status !== 0) process.stdout.write(r.stdout + r.stderr);
    return r.status;
  });
}

/**
 * The deploy-source-set trigger: the apps plugin records source and metadata;
 * since 0.31.0 the git plugin also clears source-image for anything but a
 * docker image (plugins/git/deploy-source-set).
 */
function setDeploySource(app: string, source: string, metadata: string): void {
  setProperty('apps', app, 'deploy-source', source);
  setProperty('apps', app, 'deploy-source-metadata', metadata);
  if (source !== 'docker-image' && versionAtLeast('0.31.0'))
    setProperty('git', app, 'source-image', '');
}

const gitHook: Command = async (args) => {
  const app = args[0] ?? '';
  if (!appExists(app)) {
    const bad = appNameError(app);
    if (bad !== null) fail(bad);
  }
  const branch = deployBranch(app);
  const input = readFileSync(0, 'utf8');
  for (const line of input.split('\n')) {
    const [, newrev, refname] = line.trim().split(/\s+/);
    if (newrev === undefined || refname === undefined) continue;
    if (refname === `refs/heads/${branch}` || refname === `refs/tags/${branch}`) {
      const code = await receiveApp(app, newrev);
      if (code !== 0) return code;
      setDeploySource(app, 'git-push', newrev);
    } else if (
      getProperty('git', app, 'deploy-branch') === '' &&
      getGlobalProperty('git', 'deploy-branch') === ''
    ) {
      const b = refname.replace(/^refs\/heads\//, '').replace(/^refs\/tags\//, '');
      println(`${CLR}-----> Set ${b} as deploy-branch`);
      setProperty('git', app, 'deploy-branch', b);
      const code = await receiveApp(app, newrev);
      if (code !== 0) return code;
      setDeploySource(app, 'git-push', newrev);
    } else {
      println(`${CLR}-----> WARNING: deploy did not complete, you must push to ${branch}.`);
      println(
        `${CLR}-----> for example, try 'git push <dokku> ${refname.replace(/^refs\/heads\//, '')}:${branch}'`,
      );
    }
  }
};

/** git_build without a rev (ps:rebuild): the deploy branch's ref file, or the warning and 1. */
export async function rebuildFromGit(app: string): Promise<number> {
  if (!existsSync(join(DOKKU_ROOT, app, 'refs'))) return 0;
  const branch = deployBranch(app);
  const refFile = join(DOKKU_ROOT, app, 'refs', 'heads', branch);
  if (!existsSync(refFile)) {
    println(
      `${CLR}-----> WARNING: Cannot build from '${branch}' as there are no commits stored at that branch.`,
    );
    return 1;
  }
  const rev = readFileSync(refFile, 'utf8').trim();
  return buildAndDeploy(app, rev);
}

/** git-from-directory: commit a directory into the app repo, then build it. */
async function fromDirectory(
  app: string,
  dir: string,
  user: string,
  email: string,
): Promise<number> {
  const root = join(DOKKU_ROOT, app);
  const branch = deployBranch(app);
  const hasCode = git(['--git-dir', root, 'rev-parse', '--verify', '-q', branch]) !== null;
  info1('Updating git repository with specified build context');
  const work = engineTmp('git-from-directory');
  try {
    const g = (a: string[]): string | null => git(a, work);
    if (!hasCode) {
      spawnSync('cp', ['-rT', dir, work]);
      g(['init', '-q']);
      g(['checkout', '-q', '-b', branch]);
      g(['config', 'user.name', user]);
      g(['config', 'user.email', email]);
      g(['add', '--all']);
      g(['commit', '-q', '-m', 'Initial commit']);
      createHook(app);
      if (!hasProperty('git', app, 'deploy-branch')) {
        verbose(`Detected branch, setting deploy-branch to ${branch}`);
        setProperty('git', app, 'deploy-branch', branch);
      }
    } else {
      const clone = engineTmp('git-clone');
      git(['clone', '-q', root, clone]);
      spawnSync('cp', ['-rT', dir, work]);
      spawnSync('mv', [join(clone, '.git'), join(work, '.git')]);
      rmSync(clone, { recursive: true, force: true });
      g(['config', 'user.name', user]);
      g(['config', 'user.email', email]);
      g(['add', '--all']);
      g(['update-index', '-q', '--refresh']);
      if (spawnSync('git', ['diff-index', '--quiet', 'HEAD', '--'], { cwd: work }).status === 0) {
        warn('No changes detected, skipping git commit');
        warn("Call 'ps:rebuild' on app to rebuild the app from existing source");
        return 1;
      }
      g(['commit', '-q', '-m', `Automated commit @ ${Math.floor(Date.now() / 1000)}`]);
    }
    const rev = g(['rev-parse', 'HEAD']) ?? '';
    // push the commit into the bare repo without running its pre-receive hook
    spawnSync('git', ['--git-dir', root, 'fetch', '-q', work, `+HEAD:refs/heads/${branch}`], {
      stdio: 'ignore',
    });
    chownDokku(root, true);
    const code = await receiveApp(app, rev);
    if (code !== 0) {
      if (!hasCode) git(['--git-dir', root, 'update-ref', '-d', `refs/heads/${branch}`]);
      else git(['--git-dir', root, 'update-ref', `refs/heads/${branch}`, `${branch}^`]);
    }
    return code;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The git-from-image trigger: a Dockerfile `FROM <image>` build context, the
 * image pulled unless the engine has it (forced with --force, 0.31.0+), the
 * source-image property written, then git-from-directory. 0.30 also says
 * "Setting Dockerfile" (plugins/git/git-from-image).
 */
async function gitFromImage(
  app: string,
  image: string,
  user: string | undefined,
  force: boolean,
): Promise<number> {
  info1('Generating build context');
  const old = !versionAtLeast('0.31.0');
  if (old) verbose('Setting Dockerfile');
  if (!imageExists(image)) {
    info1('Pulling image');
    // 0.30: `set -e` ends the trigger on docker's own error, without a message of its own
    if (!pullImage(image)) {
      if (old) return 1;
      fail(`Failed to pull image: ${image}`);
    }
  } else if (force && !old) {
    info1('Force pulling image');
    if (!pullImage(image)) fail(`Failed to pull image: ${image}`);
  } else {
    info1('Image exists on host, skipping pull');
  }
  const ctx = engineTmp('from-image');
  try {
    writeFileSync(
      join(ctx, 'Dockerfile'),
      `FROM ${image}\nLABEL com.dokku.docker-image-labeler/alternate-tags=[\\"${image}\\"]\n`,
    );
    setProperty('git', app, 'source-image', image);
    // quirk kept: the email argument reads $4 of the trigger, i.e. the user name
    const name = user ?? 'Dokku';
    const email = user ?? 'automated@dokku.sh';
    return await fromDirectory(app, ctx, name, email);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/** Arguments of git:from-image and git:load-image: `--build-dir DIR`, `--force`, then app, image, user, email. */
function imageArgs(args: string[]): { pos: string[]; force: boolean } {
  let force = false;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--force' && versionAtLeast('0.31.0')) force = true;
    else if (a === '--build-dir') i++;
    else pos.push(a);
  }
  return { pos, force };
}

const fromImage: Command = async (args) => {
  const { pos, force } = imageArgs(args);
  const [app, image, user] = pos;
  verifyAppBash(app);
  if (image === undefined || image === '') fail('Please specify a docker image');
  setupBuildCapture(app, 'git:from-image');
  const code = await gitFromImage(app, image, user, force);
  if (code !== 0) return code;
  setDeploySource(app, 'docker-image', image);
};

/**
 * git:load-image APP IMAGE: `docker load` of the archive on stdin (the lab
 * engine's `docker save` format), then as git:from-image with the image now
 * local (internal-functions cmd-git-load-image). For an image no registry has.
 */
const loadImage: Command = async (args) => {
  const { pos } = imageArgs(args.filter((a) => a !== '--force'));
  const [app, image, user] = pos;
  verifyAppBash(app);
  if (image === undefined || image === '') fail('Please specify a docker image');
  if (process.stdin.isTTY) fail('Expecting tar archive containing docker image on STDIN');
  setupBuildCapture(app, 'git:load-image');
  let loaded: string[];
  try {
    loaded = loadImages(0);
  } catch (e) {
    eprintln(e instanceof Error ? e.message : String(e));
    loaded = [];
  }
  for (const r of loaded) println(`Loaded image: ${r}`);
  if (!imageExists(image)) {
    fail(`Loaded image tarball but the specified docker image was not found: ${image}`);
  }
  const code = await gitFromImage(app, image, user, false);
  if (code !== 0) return code;
  setDeploySource(app, 'docker-image', image);
};

function isLabAddress(host: string): boolean {
  return /^(127\.|10\.251\.)/.test(host) || host === 'localhost';
}

function download(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'http:' || !isLabAddress(u.hostname)) {
      reject(new Error(`Could not resolve host: ${u.hostname}`));
      return;
    }
    httpRequest(u, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if ((res.statusCode ?? 500) >= 400)
          reject(new Error(`The requested URL returned error: ${res.statusCode}`));
        else resolve(Buffer.concat(chunks));
      });
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

const fromArchive: Command = async (args) => {
  let type = 'tar';
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--archive-type') type = args[++i] ?? '';
    else pos.push(a);
  }
  const [app, url, user] = pos;
  verifyAppBash(app);
  if (url === undefined || url === '')
    fail('Please specify an archive url or -- to fetch the archive from stdin');
  setupBuildCapture(app, 'git:from-archive');
  let data: Buffer;
  if (url === '--') {
    info1(`Fetching ${type} file from stdin`);
    data = readFileSync(0);
    println(String(data.length));
  } else {
    info1(`Downloading ${type} file from ${url}`);
    try {
      data = url.startsWith('file://')
        ? readFileSync(new URL(url))
        : /^https?:\/\//.test(url)
          ? await download(url)
          : readFileSync(url);
    } catch (e) {
      fail(`curl: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  info1('Generating build context');
  const tmp = engineTmp('from-archive');
  const out = engineTmp('from-archive-out');
  try {
    const file = join(tmp, `src.${type}`);
    writeFileSync(file, data);
    let r: ReturnType<typeof spawnSync>;
    if (type === 'zip') {
      verbose('Extracting zipball');
      r = spawnSync('unzip', ['-q', '-o', file, '-d', out], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } else if (type === 'tar.gz') {
      verbose('Extracting gzipped tarball');
      r = spawnSync('tar', ['-xzf', file, '-C', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    } else {
      const list = spawnSync('tar', ['-tf', file], { encoding: 'utf8' }).stdout ?? '';
      const names = list.split('\n').filter((n) => n !== '');
      let prefix = names[0] ?? '';
      for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
      const parts = `${prefix} `.split('/').length - 1;
      verbose(`Striping ${parts} worth of directories from tarball`);
      r = spawnSync('tar', ['-xf', file, '-C', out, `--strip-components=${parts}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    }
    if (r.status !== 0) fail(`Unable to extract archive: ${r.stderr?.toString().trim()}`);
    const entries = spawnSync('find', [out, '-mindepth', '1', '-maxdepth', '1'], {
      encoding: 'utf8',
    })
      .stdout.split('\n')
      .filter((l) => l !== '');
    let ctxSrc = out;
    if (entries.length === 1 && entries[0] !== undefined && statSync(entries[0]).isDirectory()) {
      verbose('Stripping top-level archive folder components');
      ctxSrc = entries[0];
    } else {
      verbose('Moving unarchived files and folders into place');
    }
    // the engine keeps the extracted context (see README: archive apps need it to rebuild)
    copyTree(ctxSrc, archiveContextPath(app));
    const name = user ?? 'Dokku';
    const email = user ?? 'automated@dokku.sh';
    const code = await fromDirectory(app, ctxSrc, name, email);
    if (code !== 0) return code;
    setDeploySource(app, type, url);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
};

function lastUpdatedAt(app: string): string {
  try {
    return String(
      Math.floor(
        statSync(join(DOKKU_ROOT, app, 'refs', 'heads', deployBranch(app))).mtimeMs / 1000,
      ),
    );
  } catch {
    return '';
  }
}

/** The Go git:report (0.38.22+, plugins/git/report.go). */
function gitReportInfo(app: string, global: boolean): Record<string, string> {
  const g = (k: string): string => getGlobalProperty('git', k);
  const info: Record<string, string> = {
    '--git-computed-archive-max-files': g('archive-max-files') || '10000',
    '--git-computed-archive-max-size': g('archive-max-size') || '1073741824',
    '--git-computed-deploy-branch': 'master',
    '--git-computed-keep-git-dir': g('keep-git-dir') || 'false',
    '--git-global-archive-max-files': g('archive-max-files'),
    '--git-global-archive-max-size': g('archive-max-size'),
    '--git-global-deploy-branch': g('deploy-branch'),
    '--git-global-keep-git-dir': g('keep-git-dir'),
  };
  if (global) {
    info['--git-computed-deploy-branch'] = g('deploy-branch') || 'master';
    return info;
  }
  const p = (k: string): string => getProperty('git', app, k);
  info['--git-computed-deploy-branch'] = deployBranch(app);
  info['--git-computed-keep-git-dir'] =
    p('keep-git-dir') || info['--git-computed-keep-git-dir'] || '';
  info['--git-deploy-branch'] = p('deploy-branch');
  info['--git-keep-git-dir'] = p('keep-git-dir');
  info['--git-last-updated-at'] = lastUpdatedAt(app);
  info['--git-rev-env-var'] = hasProperty('git', app, 'rev-env-var') ? p('rev-env-var') : 'GIT_REV';
  info['--git-sha'] = git(['rev-parse', 'HEAD'], join(DOKKU_ROOT, app)) ?? '';
  info['--git-source-image'] = p('source-image');
  return info;
}

/**
 * The bash git:report before 0.38.22 (internal-functions cmd-git-report-single),
 * its flags in their own order. Properties read with a default; the sha is
 * `--short` before 0.34.2; 0.38.0-0.38.21 also had the computed/global keys.
 */
function gitBashFlags(app: string): Array<[string, string]> {
  const withDefault = (a: string, k: string, d: string): string =>
    hasProperty('git', a, k) ? getProperty('git', a, k) : d;
  const root = join(DOKKU_ROOT, app);
  const sha =
    git(
      versionAtLeast('0.34.2') ? ['rev-parse', 'HEAD'] : ['rev-parse', '--short', 'HEAD'],
      root,
    ) ?? '';
  if (versionAtLeast('0.38.0')) {
    const g = (k: string): string => withDefault('--global', k, '');
    return [
      ['--git-computed-archive-max-files', g('archive-max-files') || '10000'],
      ['--git-computed-archive-max-size', g('archive-max-size') || '1073741824'],
      ['--git-computed-deploy-branch', deployBranch(app)],
      [
        '--git-computed-keep-git-dir',
        withDefault(app, 'keep-git-dir', '') || g('keep-git-dir') || 'false',
      ],
      ['--git-deploy-branch', withDefault(app, 'deploy-branch', '')],
      ['--git-global-archive-max-files', g('archive-max-files')],
      ['--git-global-archive-max-size', g('archive-max-size')],
      ['--git-global-deploy-branch', g('deploy-branch')],
      ['--git-global-keep-git-dir', g('keep-git-dir')],
      ['--git-keep-git-dir', withDefault(app, 'keep-git-dir', '')],
      ['--git-rev-env-var', withDefault(app, 'rev-env-var', 'GIT_REV')],
      ['--git-sha', sha],
      ['--git-source-image', withDefault(app, 'source-image', '')],
      ['--git-last-updated-at', lastUpdatedAt(app)],
    ];
  }
  return [
    ['--git-deploy-branch', withDefault(app, 'deploy-branch', 'master')],
    ['--git-global-deploy-branch', withDefault('--global', 'deploy-branch', 'master')],
    ['--git-keep-git-dir', withDefault(app, 'keep-git-dir', 'false')],
    ['--git-rev-env-var', withDefault(app, 'rev-env-var', 'GIT_REV')],
    ['--git-sha', sha],
    ['--git-source-image', withDefault(app, 'source-image', '')],
    ['--git-last-updated-at', lastUpdatedAt(app)],
  ];
}

const goReport = reportCommand('git', (s, global) => gitReportInfo(s, global), false);
const bashReport = bashReportCommand('git', gitBashFlags);
const report: Command = (args) => (versionAtLeast('0.38.22') ? goReport(args) : bashReport(args));

/**
 * git:set (subcommands/set): "No key specified", the valid keys (archive-*
 * since 0.38.2); an empty value unsets, except rev-env-var, which is written
 * empty so that no rev variable is set at all.
 */
const gitSet: Command = async (args) => {
  const [app = '', key = '', value = ''] = args;
  const valid = [
    ...(versionAtLeast('0.38.2') ? ['archive-max-files', 'archive-max-size'] : []),
    'deploy-branch',
    'keep-git-dir',
    'rev-env-var',
    'source-image',
  ];
  if (app !== '--global') verifyAppBash(app);
  if (key === '') fail('No key specified');
  if (!valid.includes(key)) fail(`Invalid key specified, valid keys include: ${valid.join(', ')}`);
  if (value !== '') {
    info2Quiet(`Setting ${key} to ${value}`);
    setProperty('git', app, key, value);
  } else {
    info2Quiet(`Unsetting ${key}`);
    if (key === 'rev-env-var') setProperty('git', app, key, '');
    else deleteProperty('git', app, key);
  }
};

/** git:public-key (internal-functions cmd-git-public-key): the dokku user's deploy key, ed25519 first. */
const publicKey: Command = async () => {
  for (const f of ['id_ed25519.pub', 'id_rsa.pub']) {
    const p = join(DOKKU_ROOT, '.ssh', f);
    if (existsSync(p)) {
      process.stdout.write(readFileSync(p));
      return;
    }
  }
  warn('There is no deploy key associated with the dokku user.');
  // git:generate-deploy-key arrived in 0.31.0
  if (versionAtLeast('0.31.0')) {
    warn('Generate an ssh key with the following command:');
    warn('  dokku git:generate-deploy-key');
  } else {
    warn('Generate an ssh key with the following command (do not specify a password):');
    warn("  ssh-keygen -t ed25519 -C 'example@example.com'");
  }
  fail('As an alternative, configure the netrc authentication via the git:auth command');
};

/** git:initialize APP (subcommands/initialize): the repository and its pre-receive hook. */
const initialize: Command = async (args) => {
  const app = args[0] ?? '';
  verifyAppBash(app);
  if (!isQuiet()) info1(`Initializing git repository for ${app}`);
  createGitRepo(app);
};

export const commands: Record<string, Command> = {
  'git:initialize': initialize,
  'git:public-key': publicKey,
  'git-receive-pack': receivePack,
  'git-upload-pack': uploadPack,
  'git-hook': gitHook,
  'git:from-image': fromImage,
  'git:load-image': loadImage,
  'git:from-archive': fromArchive,
  'git:report': report,
  'git:set': gitSet,
};
