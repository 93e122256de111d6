/**
 * Build, release and deploy: what Dokku's builder, scheduler-docker-local and
 * release_and_deploy do, on the emulated engine. Also build capture (§0.5),
 * the deploy lock (§1) and the app's container state.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { caddyContainerLabels, caddyPostDeploy } from './core/caddy-vhosts.js';
import { procfilePath, updateScale } from './core/scale.js';
import {
  archiveContextPath,
  type ContainerRecord,
  commitImage,
  containerLogTail,
  containerRunning,
  copyTree,
  engineTmp,
  freePort,
  imageExists,
  imagePath,
  networkExists,
  readContainer,
  removeContainer,
  runContainer,
  stopContainer,
  waitListening,
} from './engine.js';
import {
  appEnvPath,
  chownDokku,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  DokkuExit,
  deleteProperty,
  eprintln,
  fail,
  getGlobalProperty,
  getProperty,
  globalEnvPath,
  info1,
  info2,
  mergeStderrIntoStdout,
  mkdirDokku,
  readEnv,
  readOr,
  setProperty,
  verbose,
  versionAtLeast,
  warn,
  writeEnv,
  writeFileDokku,
} from './lib.js';
import { generateBuildId, goTime } from './report.js';

// ---------------------------------------------------------------- build capture

/** A build record as builds.go persists it. */
export interface BuildRecord {
  id: string;
  app: string;
  kind: 'build' | 'deploy';
  pid: number;
  started_at: string;
  finished_at?: string;
  status: 'running' | 'succeeded' | 'failed' | 'canceled';
  source: string;
  exit_code?: number;
}

const BUILD_SOURCES = new Set([
  'git-hook',
  'ps:rebuild',
  'git:sync',
  'git:from-archive',
  'git:from-image',
  'git:load-image',
]);

/** Folder of an app's build records. */
export function buildsDir(app: string): string {
  return join(DOKKU_LIB_ROOT, 'data', 'builds', app);
}

/** WriteBuild: the record as indented JSON, written to a temp file and renamed into place. */
export function writeBuildRecord(b: BuildRecord): void {
  const ordered: BuildRecord = {
    id: b.id,
    app: b.app,
    kind: b.kind,
    pid: b.pid,
    started_at: b.started_at,
    ...(b.finished_at !== undefined ? { finished_at: b.finished_at } : {}),
    status: b.status,
    source: b.source,
    ...(b.exit_code !== undefined ? { exit_code: b.exit_code } : {}),
  };
  writeFileDokku(join(buildsDir(b.app), `${b.id}.json`), JSON.stringify(ordered, null, 2), 0o644);
}

let capture: BuildRecord | null = null;

/**
 * dokku_setup_build_capture: a running record + log, stderr merged into stdout
 * and stdout copied to the log. A no-op when a build id is already set (nested call).
 */
export function setupBuildCapture(app: string, source: string): void {
  if (!versionAtLeast('0.38.0')) return;
  if (process.env.DOKKU_BUILD_ID !== undefined && process.env.DOKKU_BUILD_ID !== '') {
    mergeStderrIntoStdout(true);
    return;
  }
  const id = generateBuildId();
  process.env.DOKKU_BUILD_ID = id;
  const rec: BuildRecord = {
    id,
    app,
    kind: BUILD_SOURCES.has(source) ? 'build' : 'deploy',
    pid: process.pid,
    started_at: goTime(new Date()),
    status: 'running',
    source,
  };
  mkdirDokku(buildsDir(app));
  const logPath = join(buildsDir(app), `${id}.log`);
  closeSync(openSync(logPath, 'a', 0o644));
  chownDokku(logPath);
  writeBuildRecord(rec);
  capture = rec;
  mergeStderrIntoStdout(true);
  const orig = process.stdout.write.bind(process.stdout);
  const tee = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    try {
      appendFileSync(logPath, chunk);
    } catch {
      // the log is best effort, as tee's is
    }
    return (orig as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  };
  process.stdout.write = tee as typeof process.stdout.write;
}

/** builds-record-finalize: succeeded/failed with the exit code. */
export function finalizeBuildCapture(exitCode: number): void {
  if (capture === null) return;
  capture.status = exitCode === 0 ? 'succeeded' : 'failed';
  capture.exit_code = exitCode;
  capture.finished_at = goTime(new Date());
  writeBuildRecord(capture);
  capture = null;
}

/** Append text to the current build log (for child output captured by us). */
export function captureWrite(text: string): void {
  process.stdout.write(text);
}

// ---------------------------------------------------------------- deploy lock

/** Deploy lock path for the emulated version (moved in 0.34.0). */
export function deployLockPath(app: string): string {
  return versionAtLeast('0.34.0')
    ? join(DOKKU_LIB_ROOT, 'data', 'apps', app, '.deploy.lock')
    : join(DOKKU_ROOT, app, '.deploy.lock');
}

/**
 * acquire_app_deploy_lock APP exclusive (common/functions): open the lock file
 * for writing (`exec 200>FILE`, which creates or truncates it), take a
 * non-blocking flock(1) on it, and write the holder: nothing before 0.34.0,
 * DOKKU_PID since, DOKKU_BUILD_ID (else the pid) since 0.38.0. The lock is the
 * flock, not the file: an empty file left by `apps:lock` does not stop a
 * deploy, which truncates it and removes it when done (release_advisory_lock).
 * The flock is taken by a child on an inherited descriptor, so it belongs to
 * this process's open file and lasts until released. Returns the release.
 */
export function acquireDeployLock(app: string): () => void {
  const path = deployLockPath(app);
  let fd: number;
  try {
    fd = openSync(path, 'w', 0o644);
  } catch (e) {
    // bash's failed `exec 200>FILE` ends the script with its own message
    const why =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'No such file or directory'
        : 'Permission denied';
    eprintln(`${path}: ${why}`);
    throw new DokkuExit(1);
  }
  const locked = spawnSync('flock', ['-n', '3'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
  if (locked.status !== 0) {
    closeSync(fd);
    warn(`${app} currently has a deploy lock in place. Exiting...`);
    fail("Run 'apps:unlock' to release the existing deploy lock");
  }
  chownDokku(path);
  let body = '';
  if (versionAtLeast('0.38.0')) body = `${process.env.DOKKU_BUILD_ID || process.pid}\n`;
  else if (versionAtLeast('0.34.0')) body = `${process.pid}\n`;
  writeFileSync(path, body);
  return () => {
    spawnSync('flock', ['-u', '3'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
    closeSync(fd);
    rmSync(path, { force: true });
  };
}

// ---------------------------------------------------------------- container state

/** CONTAINER.<proc>.<n> files of an app, sorted. */
export function containerFiles(app: string): string[] {
  try {
    return readdirSync(join(DOKKU_ROOT, app))
      .filter((f) => /^CONTAINER\.[^.]+\.[0-9]+$/.test(f))
      .sort();
  } catch {
    return [];
  }
}

/** scheduler-is-deployed: CONTAINER or any CONTAINER.* exists. */
export function isDeployed(app: string): boolean {
  return existsSync(join(DOKKU_ROOT, app, 'CONTAINER')) || containerFiles(app).length > 0;
}

/** The container id in a CONTAINER file. */
export function containerIdOf(app: string, file: string): string {
  return readOr(join(DOKKU_ROOT, app, file)).trim();
}

/** The app's containers this engine knows, by CONTAINER file. */
export function appContainers(app: string): Array<{ file: string; rec: ContainerRecord | null }> {
  return containerFiles(app).map((file) => ({
    file,
    rec: readContainer(containerIdOf(app, file)),
  }));
}

/** scheduler-app-status: `<count> <true|false|mixed>`. */
export function runningState(app: string): { count: number; running: 'true' | 'false' | 'mixed' } {
  const cs = appContainers(app);
  const up = cs.filter((c) => c.rec !== null && containerRunning(c.rec)).length;
  const running = cs.length === 0 || up === 0 ? 'false' : up === cs.length ? 'true' : 'mixed';
  return { count: cs.length, running };
}

/** The restore flag: 0.38 property, ≤0.37 DOKKU_APP_RESTORE in the app ENV. */
export function setRestore(app: string, value: boolean): void {
  if (versionAtLeast('0.38.0')) {
    setProperty('ps', app, 'restore', value ? 'true' : 'false');
    return;
  }
  const path = appEnvPath(app);
  const env = readEnv(path);
  env.set('DOKKU_APP_RESTORE', value ? '1' : '0');
  writeEnv(path, env);
}

/** Stop an app's containers (scheduler-stop); CONTAINER files are kept. */
export async function stopApp(app: string): Promise<void> {
  const timeout = Number(getProperty('ps', app, 'stop-timeout-seconds') || '30') || 30;
  for (const c of appContainers(app)) {
    if (c.rec !== null) await stopContainer(c.rec, timeout);
  }
}

/** Remove an app's containers and their files (scheduler-stop --remove / apps:destroy). */
export async function removeAppContainers(app: string): Promise<void> {
  for (const c of appContainers(app)) {
    if (c.rec !== null) await removeContainer(c.rec);
  }
}

// ---------------------------------------------------------------- git helpers

/** Run git, returning trimmed stdout or null on failure. */
export function git(args: string[], cwd?: string): string | null {
  const r = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
  });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Deploy branch: app property, global property, else master. */
export function deployBranch(app: string): string {
  return (
    getProperty('git', app, 'deploy-branch') ||
    getGlobalProperty('git', 'deploy-branch') ||
    'master'
  );
}

// ---------------------------------------------------------------- build

function parseProcfile(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const mm = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line.trim());
    if (mm?.[1] !== undefined && mm[2] !== undefined) m.set(mm[1], mm[2].trim());
  }
  return m;
}

function dockerfileFrom(text: string): string | null {
  for (const line of text.split('\n')) {
    const m = /^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)/i.exec(line);
    if (m?.[1] !== undefined) return m[1];
  }
  return null;
}

/**
 * Build the image dokku/<app>:latest from a commit of the app's bare repo.
 * Throws DokkuExit on failure (after printing why).
 */
export function buildApp(app: string, rev: string): void {
  const tree = engineTmp(`build-${app}`);
  try {
    const tar = spawnSync(
      'sh',
      [
        '-c',
        'git --git-dir="$1" archive --format=tar "$2" | tar -x -C "$3"',
        'sh',
        join(DOKKU_ROOT, app),
        rev,
        tree,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    if (tar.status !== 0) fail(`Unable to extract ${rev}: ${tar.stderr.toString().trim()}`);
    const source = getProperty('apps', app, 'deploy-source');
    if (['tar', 'tar.gz', 'zip'].includes(source)) {
      // the extracted archive lives in the engine, not in the repo's history we back up
      if (!existsSync(archiveContextPath(app))) {
        eprintln(
          `ERROR: failed to solve: failed to read dockerfile: open ${archiveContextPath(app)}: no such file or directory`,
        );
        fail(
          `Build context for ${app} (deployed from a ${source} archive) is missing on this host`,
        );
      }
    }
    const dockerfile = join(tree, 'Dockerfile');
    if (existsSync(dockerfile)) {
      info1(`Building ${app} from Dockerfile`);
      const from = dockerfileFrom(readFileSync(dockerfile, 'utf8'));
      if (from !== null && from !== 'scratch') {
        if (!imageExists(from)) {
          // the emulator's builds never pull; only git:from-image does
          eprintln(
            `ERROR: failed to solve: ${from}: failed to resolve source metadata for ${from}: pull access denied, repository does not exist or may require authorization`,
          );
          fail(`Failure building image for ${app}`);
        }
        verbose(`Step 1/2 : FROM ${from}`);
        const base = engineTmp(`base-${app}`);
        copyTree(imagePath(from), base);
        spawnSync('sh', ['-c', 'cp -a "$1"/. "$2"/', 'sh', tree, base]);
        rmSync(join(base, 'Dockerfile'), { force: true });
        rmSync(tree, { recursive: true, force: true });
        commitImage(base, `dokku/${app}:latest`);
        verbose('Successfully built image');
        return;
      }
    } else {
      info1(`Building ${app} from herokuish`);
      verbose('Emulated build: the source tree is the image (no buildpack runs)');
    }
    commitImage(tree, `dokku/${app}:latest`);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

/**
 * The ps plugin's part of a deploy (core-post-extract, then the formation
 * update): the image's Procfile (procfile-path) kept as data/ps/<app>/Procfile
 * and every process type it names added to the scale at 0.
 */
export function extractProcfile(app: string): void {
  const dir = imagePath(`dokku/${app}:latest`);
  const src = join(dir, getProperty('ps', app, 'procfile-path') || 'Procfile');
  const dst = procfilePath(app);
  if (existsSync(src)) writeFileDokku(dst, readFileSync(src), 0o644);
  else rmSync(dst, { force: true });
  const err = updateScale(app, []);
  if (err !== null) fail(err);
}

// ---------------------------------------------------------------- deploy

function webCommand(app: string, image: string): string | null {
  const dir = imagePath(image);
  const procfilePath = getProperty('ps', app, 'procfile-path') || 'Procfile';
  const procfile = readOr(join(dir, procfilePath), '');
  if (procfile !== '') {
    const procs = parseProcfile(procfile);
    return procs.get('web') ?? null;
  }
  const pkg = readOr(join(dir, 'package.json'), '');
  if (pkg !== '') {
    try {
      const j = JSON.parse(pkg) as { scripts?: Record<string, string> };
      if (j.scripts?.start !== undefined) return 'npm start';
    } catch {
      return null;
    }
  }
  return null;
}

function appNetworks(app: string): string[] {
  const out: string[] = [];
  for (const key of ['initial-network', 'attach-post-create', 'attach-post-deploy']) {
    const v = getProperty('network', app, key) || getGlobalProperty('network', key);
    for (const n of v.split(/[\s,]+/)) if (n !== '') out.push(n);
  }
  return out;
}

/** Vhost URLs of an app (domains-urls), from $DOKKU_ROOT/<app>/VHOST. */
export function appUrls(app: string): string[] {
  return readOr(join(DOKKU_ROOT, app, 'VHOST'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((d) => `http://${d.trim()}`);
}

/** The environment a container gets: global ENV, app ENV, then Dokku's own. */
function containerEnv(app: string, port: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of readEnv(globalEnvPath())) env[k] = v;
  for (const [k, v] of readEnv(appEnvPath(app))) env[k] = v;
  env.PATH = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
  env.PORT = String(port);
  env.DYNO = 'web.1';
  env.HOME = imagePath(`dokku/${app}:latest`);
  return env;
}

/**
 * scheduler-deploy (docker-local) from dokku/<app>:latest: start web.1,
 * check it, write CONTAINER/IP/PORT files, retire the old containers.
 */
export async function deployContainers(app: string): Promise<void> {
  const image = `dokku/${app}:latest`;
  if (!imageExists(image)) {
    eprintln(`Unable to find image '${image}' locally`);
    eprintln(
      `docker: Error response from daemon: pull access denied for dokku/${app}, repository does not exist or may require 'docker login'.`,
    );
    fail(`Failure deploying ${app}`);
  }
  for (const n of appNetworks(app)) {
    if (!networkExists(n)) {
      eprintln(`docker: Error response from daemon: network ${n} not found.`);
      fail(`Failure deploying ${app}`);
    }
  }
  const cmd = webCommand(app, image);
  const old = appContainers(app);
  const root = join(DOKKU_ROOT, app);
  if (cmd !== null) {
    info1('Deploying web (count=1)');
    const port = await freePort();
    verbose('Attempting pre-flight checks (web.1)');
    const bindAll =
      (getProperty('network', app, 'bind-all-interfaces') ||
        getGlobalProperty('network', 'bind-all-interfaces')) === 'true';
    const rec = runContainer({
      app,
      proc: 'web',
      index: 1,
      image,
      cmd,
      env: containerEnv(app, port),
      port,
      networks: appNetworks(app),
      publish: bindAll,
      labels: caddyContainerLabels(app, port),
    });
    const ok = await waitListening(rec, 20);
    if (!ok) {
      warn('App container failed to start (web.1)');
      for (const l of containerLogTail(rec)) warn(l);
      await removeContainer(rec);
      fail(`Failure deploying ${app}`);
    }
    verbose('Default container check successful (web.1)');
    writeFileDokku(join(root, 'CONTAINER.web.1'), `${rec.id}\n`, 0o644);
    writeFileDokku(join(root, 'IP.web.1'), '127.0.0.1', 0o644);
    writeFileDokku(join(root, 'PORT.web.1'), String(port), 0o644);
  } else {
    verbose('No web process type found, no container started');
  }
  for (const f of ['CONTAINER', 'IP', 'PORT']) rmSync(join(root, f), { force: true });
  const current = cmd !== null ? containerIdOf(app, 'CONTAINER.web.1') : '';
  info1('Running post-deploy');
  caddyPostDeploy(app);
  const retire =
    getProperty('checks', app, 'wait-to-retire') ||
    getGlobalProperty('checks', 'wait-to-retire') ||
    '60';
  // Dokku retires old containers in the background after wait-to-retire; the emulator does it now
  if (old.some((c) => c.rec !== null)) info1(`Shutting down old containers in ${retire} seconds`);
  for (const c of old) {
    if (c.rec !== null && c.rec.id !== current) await removeContainer(c.rec);
    if (cmd === null || c.file !== 'CONTAINER.web.1') {
      for (const p of ['CONTAINER', 'IP', 'PORT']) {
        rmSync(join(root, c.file.replace(/^CONTAINER/, p)), { force: true });
      }
    }
  }
  setProperty('common', app, 'deployed', 'true');
  // ps core-post-deploy: the scale.old list of a previous Procfile goes
  deleteProperty('ps', app, 'scale.old');
  setRestore(app, true);
}

/**
 * release_and_deploy: when the image exists, release and deploy it; when it
 * does not, Dokku prints nothing and returns 0 (fn-verify-app-image).
 */
export async function releaseAndDeploy(app: string): Promise<number> {
  if (!imageExists(`dokku/${app}:latest`)) return 0;
  info1(`Releasing ${app}...`);
  // 0.38: the ps skip-deploy property; before, the DOKKU_SKIP_DEPLOY config var (release_and_deploy)
  const skip = versionAtLeast('0.38.0')
    ? getProperty('ps', app, 'skip-deploy') || getGlobalProperty('ps', 'skip-deploy')
    : readEnv(appEnvPath(app)).get('DOKKU_SKIP_DEPLOY') ||
      readEnv(globalEnvPath()).get('DOKKU_SKIP_DEPLOY') ||
      '';
  let code = 0;
  if (skip !== 'true') {
    info1(`Deploying ${app} via the docker-local scheduler...`);
    try {
      await deployContainers(app);
    } catch (e) {
      if (e instanceof DokkuExit) code = e.code;
      else throw e;
    }
    if (code === 0) {
      info2('Application deployed:');
      for (const u of appUrls(app)) verbose(u);
    }
  } else {
    info1('Skipping deployment');
  }
  process.stdout.write('\n');
  return code;
}

/** Full build from git then release and deploy, under the deploy lock (git_receive_app). */
export async function buildAndDeploy(
  app: string,
  rev: string,
  beforeBuild: () => number = () => 0,
): Promise<number> {
  const release = acquireDeployLock(app);
  try {
    const pre = beforeBuild();
    if (pre !== 0) return pre;
    buildApp(app, rev);
    extractProcfile(app);
    return await releaseAndDeploy(app);
  } catch (e) {
    if (e instanceof DokkuExit) return e.code;
    throw e;
  } finally {
    release();
  }
}

/** Remove the "deployed" traces of an app (apps:destroy). */
export function forgetDeployed(app: string): void {
  deleteProperty('common', app, 'deployed');
}
