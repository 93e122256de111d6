/**
 * The emulated container engine, kept in /var/lib/docker (never in a Dokku
 * backup): images are file trees, containers are real detached processes with
 * a record, networks are JSON files.
 *
 * Layout:
 *   image/<repo>/<tag>/            an image's file tree (app images: image/dokku/<app>/latest/)
 *   containers/<64hex>/config.json a container record; containers/<id>/container.log its output
 *   networks/<name>.json           a network
 *   contexts/<app>/                git:from-archive build context kept by the engine
 *   tmp/                           build directories
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { chownDokku, ENGINE_ROOT, labConfig, mkdirDokku, userIds } from './lib.js';

/** A container record (config.json). */
export interface ContainerRecord {
  id: string;
  name: string;
  app: string;
  proc: string;
  index: number;
  image: string;
  cmd: string;
  port: number;
  pid: number;
  /** /proc/<pid>/stat start time, to tell a reused pid from ours. */
  pidStart: string;
  state: 'created' | 'running' | 'exited';
  createdAt: string;
  /** Networks the container is attached to (docker run --network / network connect). */
  networks?: string[];
  /** The container port published on all interfaces (bind-all-interfaces), if any. */
  publishedPort?: number;
  /** docker labels (`--label`): a container proxy routes by them. */
  labels?: Record<string, string>;
}

/** A network record (networks/<name>.json). */
export interface NetworkRecord {
  Name: string;
  ID: string;
  Driver: string;
  Scope: string;
  Internal: boolean;
  IPv6: boolean;
  Labels: Record<string, string>;
  CreatedAt: string;
}

const containersDir = (): string => join(ENGINE_ROOT, 'containers');

/** Engine path of an image tree: `dokku/app:latest` → image/dokku/app/latest. */
export function imagePath(image: string): string {
  const at = image.lastIndexOf(':');
  const slash = image.lastIndexOf('/');
  const [repo, tag] = at > slash ? [image.slice(0, at), image.slice(at + 1)] : [image, 'latest'];
  return join(ENGINE_ROOT, 'image', repo, tag);
}

/** Normalise an image reference to repo:tag. */
export function imageRef(image: string): { repo: string; tag: string } {
  const at = image.lastIndexOf(':');
  const slash = image.lastIndexOf('/');
  return at > slash
    ? { repo: image.slice(0, at), tag: image.slice(at + 1) }
    : { repo: image, tag: 'latest' };
}

/** `docker image inspect` succeeds. */
export function imageExists(image: string): boolean {
  return existsSync(imagePath(image));
}

/** Copy a tree with cp -a (keeps modes), replacing the destination. */
export function copyTree(src: string, dst: string): void {
  rmSync(dst, { recursive: true, force: true });
  mkdirDokku(dirname(dst));
  const r = spawnSync('cp', ['-a', src, dst], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`cp -a ${src} ${dst}: ${r.stderr?.toString().trim()}`);
  // root and the dokku user both drive the engine (dockerd does in real life)
  chownDokku(dst, true);
}

/** Replace an image with a finished tree (rename into place). */
export function commitImage(tree: string, image: string): void {
  const dst = imagePath(image);
  mkdirDokku(dirname(dst));
  const old = `${dst}.old-${process.pid}`;
  if (existsSync(dst)) renameSync(dst, old);
  renameSync(tree, dst);
  chownDokku(dst, true);
  // running containers keep their cwd inode; the old tree can go (best effort)
  try {
    rmSync(old, { recursive: true, force: true });
  } catch {
    // left behind, e.g. root-owned files when the dokku user builds
  }
}

/** A fresh scratch directory under the engine. */
export function engineTmp(prefix: string): string {
  const d = join(ENGINE_ROOT, 'tmp', `${prefix}-${randomBytes(6).toString('hex')}`);
  mkdirDokku(d);
  chownDokku(d);
  return d;
}

// ---------------------------------------------------------------- containers

function pidStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? '';
  } catch {
    return '';
  }
}

/** Read a container record, or null when this engine does not know the id. */
export function readContainer(id: string): ContainerRecord | null {
  if (!/^[0-9a-f]{64}$/.test(id)) return null;
  try {
    return JSON.parse(
      readFileSync(join(containersDir(), id, 'config.json'), 'utf8'),
    ) as ContainerRecord;
  } catch {
    return null;
  }
}

function writeContainer(c: ContainerRecord): void {
  const d = join(containersDir(), c.id);
  mkdirDokku(d);
  chownDokku(d);
  writeFileSync(join(d, 'config.json.tmp'), JSON.stringify(c, null, 2));
  chownDokku(join(d, 'config.json.tmp'));
  renameSync(join(d, 'config.json.tmp'), join(d, 'config.json'));
}

/** Is the container's process alive (and still ours)? */
export function containerRunning(c: ContainerRecord): boolean {
  if (c.state !== 'running' || c.pid <= 0) return false;
  const st = pidStartTime(c.pid);
  if (st === '' || st !== c.pidStart) return false;
  try {
    const s = readFileSync(`/proc/${c.pid}/stat`, 'utf8');
    const state = s.slice(s.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** docker's `.State.Status`: running, exited, created. */
export function containerStatus(c: ContainerRecord): string {
  if (c.state === 'created') return 'created';
  return containerRunning(c) ? 'running' : 'exited';
}

/** All container records of this engine. */
export function listContainers(): ContainerRecord[] {
  let ids: string[];
  try {
    ids = readdirSync(containersDir());
  } catch {
    return [];
  }
  const out: ContainerRecord[] = [];
  for (const id of ids) {
    const c = readContainer(id);
    if (c !== null) out.push(c);
  }
  return out;
}

/** Find a free TCP port on this host's network namespace. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Options of runContainer. */
export interface RunOptions {
  app: string;
  proc: string;
  index: number;
  image: string;
  cmd: string;
  env: Record<string, string>;
  port: number;
  networks?: string[];
  /** Publish the port on all interfaces (`-p`), as bind-all-interfaces does. */
  publish?: boolean;
  labels?: Record<string, string>;
}

/**
 * `docker run -d`: start `cmd` (sh -c) in the image tree as the dokku user, in
 * its own session, output to the container log. Returns the record.
 */
export function runContainer(o: RunOptions): ContainerRecord {
  const id = randomBytes(32).toString('hex');
  const dir = join(containersDir(), id);
  mkdirDokku(dir);
  chownDokku(dir);
  const log = openSync(join(dir, 'container.log'), 'a');
  chownDokku(join(dir, 'container.log'));
  const ids = userIds('dokku');
  const asDokku = ids !== null && process.getuid?.() === 0;
  const child = spawn('/bin/sh', ['-c', `exec ${o.cmd}`], {
    cwd: imagePath(o.image),
    env: o.env,
    detached: true,
    stdio: ['ignore', log, log],
    ...(asDokku && ids !== null ? { uid: ids.uid, gid: ids.gid } : {}),
  });
  closeSync(log);
  child.unref();
  const pid = child.pid ?? 0;
  const rec: ContainerRecord = {
    id,
    name: `${o.app}.${o.proc}.${o.index}`,
    app: o.app,
    proc: o.proc,
    index: o.index,
    image: o.image,
    cmd: o.cmd,
    port: o.port,
    pid,
    pidStart: pid > 0 ? pidStartTime(pid) : '',
    state: 'running',
    createdAt: new Date().toISOString(),
    networks: o.networks ?? [],
    ...(o.publish === true ? { publishedPort: o.port } : {}),
    ...(o.labels !== undefined ? { labels: o.labels } : {}),
  };
  writeContainer(rec);
  return rec;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `docker stop -t N`: SIGTERM the process group, SIGKILL after the timeout. */
export async function stopContainer(c: ContainerRecord, timeoutSeconds = 30): Promise<void> {
  if (containerRunning(c)) {
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const until = Date.now() + timeoutSeconds * 1000;
    while (containerRunning(c) && Date.now() < until) await sleep(100);
    if (containerRunning(c)) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  c.state = 'exited';
  writeContainer(c);
}

/** `docker rm -f`. */
export async function removeContainer(c: ContainerRecord): Promise<void> {
  await stopContainer(c, 10);
  rmSync(join(containersDir(), c.id), { recursive: true, force: true });
}

/** Wait until something accepts TCP on 127.0.0.1:port, or the container dies, or time runs out. */
export async function waitListening(c: ContainerRecord, seconds: number): Promise<boolean> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    if (!containerRunning(c)) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.setTimeout(500);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
      s.connect(c.port, '127.0.0.1');
    });
    if (ok) return true;
    await sleep(200);
  }
  return false;
}

/** Last lines of a container's log (for failure output). */
export function containerLogTail(c: ContainerRecord, lines = 20): string[] {
  try {
    const t = readFileSync(join(containersDir(), c.id, 'container.log'), 'utf8').split('\n');
    if (t[t.length - 1] === '') t.pop();
    return t.slice(-lines);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- networks

const networksDir = (): string => join(ENGINE_ROOT, 'networks');

/** Networks every docker engine has. */
export const BUILTIN_NETWORKS = ['bridge', 'host', 'none'];

/** Does the network exist in this engine? */
export function networkExists(name: string): boolean {
  return BUILTIN_NETWORKS.includes(name) || existsSync(join(networksDir(), `${name}.json`));
}

/** `docker network create --attachable --label com.dokku.network-name=<n> <n>`. */
export function createNetwork(name: string): { ok: true } | { ok: false; error: string } {
  if (name === '') return { ok: false, error: 'network name must not be empty' };
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
    return {
      ok: false,
      error: `Error response from daemon: invalid network name "${name}"`,
    };
  }
  if (networkExists(name)) {
    return {
      ok: false,
      error: `Error response from daemon: network with name ${name} already exists`,
    };
  }
  mkdirDokku(networksDir());
  const rec: NetworkRecord = {
    Name: name,
    ID: randomBytes(32).toString('hex'),
    Driver: 'bridge',
    Scope: 'local',
    Internal: false,
    IPv6: false,
    Labels: { 'com.dokku.network-name': name },
    CreatedAt: new Date().toISOString(),
  };
  writeFileSync(join(networksDir(), `${name}.json`), JSON.stringify(rec, null, 2));
  chownDokku(join(networksDir(), `${name}.json`));
  return { ok: true };
}

/** `docker network rm <n>`: built-in networks cannot go. */
export function removeNetwork(name: string): { ok: true } | { ok: false; error: string } {
  if (BUILTIN_NETWORKS.includes(name)) {
    return {
      ok: false,
      error: `Error response from daemon: ${name} is a pre-defined network and cannot be removed`,
    };
  }
  const file = join(networksDir(), `${name}.json`);
  if (!existsSync(file)) {
    return { ok: false, error: `Error response from daemon: network ${name} not found` };
  }
  // docker refuses while a running container is attached
  if (listContainers().some((c) => containerRunning(c) && (c.networks ?? []).includes(name))) {
    let id = '';
    try {
      id = (JSON.parse(readFileSync(file, 'utf8')) as NetworkRecord).ID;
    } catch {
      id = '';
    }
    return {
      ok: false,
      error: `Error response from daemon: error while removing network: network ${name} id ${id} has active endpoints`,
    };
  }
  rmSync(file, { force: true });
  return { ok: true };
}

/** All networks of this engine, built-ins included. */
export function listNetworks(): NetworkRecord[] {
  const out: NetworkRecord[] = BUILTIN_NETWORKS.map((n) => ({
    Name: n,
    ID: '',
    Driver: n === 'bridge' ? 'bridge' : n === 'host' ? 'host' : 'null',
    Scope: 'local',
    Internal: false,
    IPv6: false,
    Labels: {},
    CreatedAt: '',
  }));
  let files: string[] = [];
  try {
    files = readdirSync(networksDir());
  } catch {
    files = [];
  }
  for (const f of files) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(networksDir(), f), 'utf8')) as NetworkRecord);
    } catch {
      // a broken record is skipped, as docker would not list it either
    }
  }
  return out;
}

/** Folder where the engine keeps an archive app's extracted build context. */
export function archiveContextPath(app: string): string {
  return join(ENGINE_ROOT, 'contexts', app);
}

// ---------------------------------------------------------------- image archives (docker save / load)

/**
 * The lab engine's `docker save` format, shaped like Docker's: `manifest.json`
 * (`[{Config, RepoTags, Layers}]`), `repositories`, and per image `<id>.json`
 * plus `<id>/layer.tar`, a tar of the image's file tree. `docker load` reads
 * exactly this back. An image carried host to host as a stream is a
 * `docker save` on one side piped into a `docker load` on the other.
 */
interface SavedImage {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

function imageId(ref: string): string {
  return createHash('sha256').update(`ferry-lab-image:${ref}`).digest('hex');
}

/**
 * Write an image archive (the format above) of file trees to `out`: a file
 * descriptor or a path. `scratch` is a folder the archive is staged in.
 */
export function writeImageArchive(
  images: Array<{ ref: string; tree: string }>,
  out: number | string,
  scratch: string,
): void {
  const manifest: SavedImage[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const i of images) {
    const { repo, tag } = imageRef(i.ref);
    const id = imageId(`${repo}:${tag}`);
    mkdirSync(join(scratch, id), { recursive: true });
    const tar = spawnSync('tar', ['-C', i.tree, '-cf', join(scratch, id, 'layer.tar'), '.'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (tar.status !== 0) throw new Error(`tar of ${i.ref}: ${tar.stderr.toString().trim()}`);
    writeFileSync(
      join(scratch, `${id}.json`),
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { 'ferry.lab': 'image' } },
      }),
    );
    manifest.push({
      Config: `${id}.json`,
      RepoTags: [`${repo}:${tag}`],
      Layers: [`${id}/layer.tar`],
    });
    repositories[repo] = { ...(repositories[repo] ?? {}), [tag]: id };
  }
  writeFileSync(join(scratch, 'manifest.json'), JSON.stringify(manifest));
  writeFileSync(join(scratch, 'repositories'), JSON.stringify(repositories));
  const args = ['-C', scratch, '-cf', typeof out === 'string' ? out : '-', '.'];
  const r = spawnSync('tar', args, {
    stdio: ['ignore', typeof out === 'number' ? out : 'ignore', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`tar: ${r.stderr.toString().trim()}`);
}

/**
 * Write a `docker save` archive of `images` (repo[:tag]) to `fd` (stdout by
 * default). Returns the first image that does not exist, or null when all
 * were written.
 */
export function saveImages(images: string[], fd = 1): string | null {
  for (const i of images) if (!imageExists(i)) return i;
  const dir = engineTmp('save');
  try {
    writeImageArchive(
      images.map((ref) => ({ ref, tree: imagePath(ref) })),
      fd,
      dir,
    );
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `docker load`: read an archive written by {@link saveImages} from `fd`
 * (stdin by default) or a file, and put each image in the engine. Returns the
 * `repo:tag` of every image loaded; throws with docker's message when the
 * input is not such an archive.
 */
export function loadImages(from: number | string = 0): string[] {
  const dir = engineTmp('load');
  try {
    const x = spawnSync('tar', ['-C', dir, '-xf', typeof from === 'string' ? from : '-'], {
      stdio: [typeof from === 'number' ? from : 'ignore', 'ignore', 'pipe'],
    });
    if (x.status !== 0 || !existsSync(join(dir, 'manifest.json'))) {
      throw new Error(
        'Error response from daemon: open /var/lib/docker/tmp/docker-import/manifest.json: no such file or directory',
      );
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as SavedImage[];
    const loaded: string[] = [];
    for (const m of manifest) {
      for (const ref of m.RepoTags) {
        const tree = engineTmp('load-tree');
        for (const layer of m.Layers) {
          const t = spawnSync('tar', ['-C', tree, '-xf', join(dir, layer)], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          if (t.status !== 0)
            throw new Error(`Error processing tar file: ${t.stderr.toString().trim()}`);
        }
        commitImage(tree, ref);
        loaded.push(ref);
      }
    }
    return loaded;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `docker pull IMAGE` from the lab's shared registry folder
 * (`<registry>/<repo>/<tag>/`): docker's progress lines on stdout, its
 * "manifest unknown" error on stderr when the registry has no such image.
 */
export function pullImage(image: string): boolean {
  const { repo, tag } = imageRef(image);
  const src = join(labConfig().registry, repo, tag);
  const library = repo.includes('/') ? repo : `library/${repo}`;
  if (!existsSync(src)) {
    process.stderr.write(
      `Error response from daemon: manifest for ${repo}:${tag} not found: manifest unknown: manifest unknown\n`,
    );
    return false;
  }
  process.stdout.write(`${tag}: Pulling from ${library}\n`);
  copyTree(src, imagePath(`${repo}:${tag}`));
  for (
    let d = dirname(imagePath(`${repo}:${tag}`));
    d.startsWith(`${join(ENGINE_ROOT, 'image')}/`);
    d = dirname(d)
  ) {
    chownDokku(d);
  }
  const digest = createHash('sha256').update(`${repo}:${tag}`).digest('hex');
  process.stdout.write(`Digest: sha256:${digest}\n`);
  process.stdout.write(`Status: Downloaded newer image for ${repo}:${tag}\n`);
  process.stdout.write(`docker.io/${library}:${tag}\n`);
  return true;
}
