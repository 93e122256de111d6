/**
 * A minimal `docker` CLI over the lab's engine folder (/var/lib/docker): the
 * commands a migration (and Dokku's own test helpers) run against the
 * container engine itself, outside Dokku: pulling an image, asking whether an
 * image is there, saving and loading images as tar streams (`docker save` on
 * one host piped into `docker load` on another carries an image that exists on
 * no registry), listing, inspecting and removing containers, and listing,
 * creating and removing networks. Output and exit codes follow the Docker
 * CLI; anything else answers like a Docker CLI whose daemon is not running,
 * so a command the lab does not model fails loudly instead of pretending.
 */
import { openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  containerStatus,
  createNetwork,
  imageExists,
  imagePath,
  imageRef,
  listContainers,
  listNetworks,
  loadImages,
  pullImage,
  type readContainer,
  removeContainer,
  removeNetwork,
  saveImages,
} from './engine.js';

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

function full(image: string): string {
  const { repo, tag } = imageRef(image);
  return `${repo}:${tag}`;
}

function unsupported(args: string[]): number {
  err(
    `Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?`,
  );
  err(`(ferry lab: \`docker ${args.join(' ')}\` is not modelled by the lab engine)`);
  return 1;
}

/** Split `-o FILE` / `--output FILE` / `-i FILE` style options from the operands. */
function options(
  args: string[],
  withValue: string[],
): { opts: Map<string, string>; flags: Set<string>; rest: string[] } {
  const opts = new Map<string, string>();
  const flags = new Set<string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const eq = a.indexOf('=');
    if (a.startsWith('-') && eq > 0 && withValue.includes(a.slice(0, eq))) {
      opts.set(a.slice(0, eq), a.slice(eq + 1));
    } else if (withValue.includes(a)) opts.set(a, args[++i] ?? '');
    else if (a.startsWith('-') && a !== '-') flags.add(a);
    else rest.push(a);
  }
  return { opts, flags, rest };
}

function imageInspect(images: string[]): number {
  let code = 0;
  const found: object[] = [];
  for (const i of images) {
    if (imageExists(full(i))) found.push({ RepoTags: [full(i)], Id: `lab:${imagePath(full(i))}` });
    else {
      err(`Error: No such image: ${i}`);
      code = 1;
    }
  }
  out(JSON.stringify(found, null, 4));
  return code;
}

function pull(image: string | undefined): number {
  if (!image) {
    err('"docker pull" requires exactly 1 argument.');
    return 1;
  }
  return pullImage(full(image)) ? 0 : 1;
}

/** `docker save [-o FILE] IMAGE...`: the engine's image archive, to stdout or a file. */
function save(args: string[]): number {
  const { opts, rest } = options(args, ['-o', '--output']);
  if (rest.length === 0) {
    err('"docker save" requires at least 1 argument.');
    return 1;
  }
  const file = opts.get('-o') ?? opts.get('--output');
  if (file === undefined && process.stdout.isTTY) {
    err('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    return 1;
  }
  let fd = 1;
  if (file !== undefined) {
    fd = openSync(file, 'w', 0o600);
  }
  const missing = saveImages(rest.map(full), fd);
  if (missing !== null) {
    err(`Error response from daemon: reference does not exist`);
    if (file !== undefined) rmSync(file, { force: true });
    return 1;
  }
  return 0;
}

/** `docker load [-i FILE] [-q]`: prints `Loaded image: repo:tag` per image. */
function load(args: string[]): number {
  const { opts, flags } = options(args, ['-i', '--input']);
  const file = opts.get('-i') ?? opts.get('--input');
  if (file === undefined && process.stdin.isTTY) {
    err('requested load from stdin, but stdin is empty');
    return 1;
  }
  let loaded: string[];
  try {
    loaded = loadImages(file ?? 0);
  } catch (e) {
    err(e instanceof Error ? e.message : String(e));
    return 1;
  }
  if (!flags.has('-q') && !flags.has('--quiet')) for (const r of loaded) out(`Loaded image: ${r}`);
  return 0;
}

/** `docker image rm|rmi [-f] IMAGE...`. */
function imageRm(images: string[]): number {
  let code = 0;
  for (const i of images) {
    const ref = full(i);
    if (!imageExists(ref)) {
      err(`Error response from daemon: No such image: ${i}`);
      code = 1;
      continue;
    }
    const dir = imagePath(ref);
    rmSync(dir, { recursive: true, force: true });
    // an empty repo folder is no image; leave the engine as docker would list it
    try {
      rmSync(dirname(dir), { recursive: false });
    } catch {
      // other tags remain
    }
    out(`Untagged: ${ref}`);
  }
  return code;
}

/** `docker container ls|ps [-a] [-q]`: running (or all) containers, newest first. */
function containerLs(args: string[]): number {
  const { flags } = options(args, ['--format', '-f', '--filter']);
  const all = flags.has('-a') || flags.has('--all');
  const quiet = flags.has('-q') || flags.has('--quiet');
  const rows = listContainers()
    .filter((c) => all || containerStatus(c) === 'running')
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  if (!quiet) out('CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES');
  for (const c of rows) {
    out(
      quiet
        ? c.id.slice(0, 12)
        : `${c.id.slice(0, 12)}   ${c.image}   "${c.cmd}"   ${c.createdAt}   ${containerStatus(c)}   ${c.name}`,
    );
  }
  return 0;
}

/** Resolve a container by (a prefix of) its id, or its name. */
function findContainer(ref: string): ReturnType<typeof readContainer> {
  const all = listContainers();
  return (
    all.find((c) => c.name === ref) ??
    all.find((c) => ref.length >= 3 && c.id.startsWith(ref)) ??
    null
  );
}

/** The few `-f` templates Dokku and its tests use; anything else is unsupported. */
function inspectField(
  c: NonNullable<ReturnType<typeof readContainer>>,
  template: string,
): string | null {
  const t = template.replace(/\s+/g, ' ').trim();
  if (/^\{\{ ?\.(ID|Id) ?\}\}$/.test(t)) return c.id;
  if (/^\{\{ ?\.State\.Status ?\}\}$/.test(t)) return containerStatus(c);
  if (/^\{\{ ?\.State\.Running ?\}\}$/.test(t)) return String(containerStatus(c) === 'running');
  if (/^\{\{ ?\.Name ?\}\}$/.test(t)) return `/${c.name}`;
  // Dokku's test helper skips devcontainers; lab containers never are one
  if (t.includes('com.dokku.devcontainer') && t.includes('{{.ID}}')) return `${c.id} `;
  return null;
}

function inspect(args: string[]): number {
  const { opts, rest } = options(args, ['-f', '--format', '--type']);
  const template = opts.get('-f') ?? opts.get('--format');
  let code = 0;
  const found: object[] = [];
  for (const ref of rest) {
    const c = findContainer(ref);
    if (c === null) {
      if (imageExists(full(ref))) {
        if (template === undefined)
          found.push({ RepoTags: [full(ref)], Id: `lab:${imagePath(full(ref))}` });
        continue;
      }
      err(`Error: No such object: ${ref}`);
      code = 1;
      continue;
    }
    if (template !== undefined) {
      const v = inspectField(c, template);
      if (v === null) return unsupported(['inspect', '-f', template]);
      out(v);
    } else {
      found.push({
        Id: c.id,
        Name: `/${c.name}`,
        State: { Status: containerStatus(c) },
        Config: { Image: c.image },
      });
    }
  }
  if (template === undefined) out(JSON.stringify(found, null, 4));
  return code;
}

async function containerRm(args: string[]): Promise<number> {
  const { rest } = options(args, []);
  let code = 0;
  for (const ref of rest) {
    const c = findContainer(ref);
    if (c === null) {
      err(`Error response from daemon: No such container: ${ref}`);
      code = 1;
      continue;
    }
    await removeContainer(c);
    out(ref);
  }
  return code;
}

function networkLs(args: string[]): number {
  const { opts, flags } = options(args, ['--format', '-f', '--filter']);
  const quiet = flags.has('-q') || flags.has('--quiet') || opts.has('--format');
  const filter = opts.get('-f') ?? opts.get('--filter');
  let nets = listNetworks();
  if (filter?.startsWith('name=')) {
    const want = filter.slice(5);
    nets = nets.filter((n) => n.Name.includes(want));
  }
  const format = opts.get('--format');
  if (format === 'json') {
    for (const n of nets) {
      out(
        JSON.stringify({
          CreatedAt: n.CreatedAt === '' ? '' : '2024-02-25 01:55:24.275184461 +0000 UTC',
          Driver: n.Driver,
          ID: n.ID.slice(0, 12),
          IPv6: String(n.IPv6),
          Internal: String(n.Internal),
          Labels: Object.entries(n.Labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
          Name: n.Name,
          Scope: n.Scope,
        }),
      );
    }
    return 0;
  }
  if (!quiet) out('NETWORK ID     NAME      DRIVER    SCOPE');
  for (const n of nets) {
    if (format !== undefined) out(n.Name);
    else if (quiet) out(n.ID.slice(0, 12) || n.Name);
    else out(`${n.ID.slice(0, 12) || '-'}  ${n.Name}  ${n.Driver}  ${n.Scope}`);
  }
  return 0;
}

function networkCreate(rest: string[]): number {
  const name = rest
    .filter((x, i) => !x.startsWith('-') && !rest[i - 1]?.startsWith('--label'))
    .pop();
  const r = createNetwork(name ?? '');
  if (!r.ok) {
    err(r.error);
    return 1;
  }
  out(name ?? '');
  return 0;
}

function networkRm(rest: string[]): number {
  let code = 0;
  for (const n of rest.filter((x) => !x.startsWith('-'))) {
    const r = removeNetwork(n);
    if (!r.ok) {
      err(r.error);
      code = 1;
    } else out(n);
  }
  return code;
}

export async function docker(args: string[]): Promise<number> {
  const [a, b, ...rest] = args;
  const tail = [b ?? '', ...rest].filter((x, i) => i > 0 || x !== '');
  if (a === 'pull') return pull(b);
  if (a === 'image' && b === 'pull') return pull(rest[0]);
  if (a === 'image' && b === 'inspect') return imageInspect(rest.filter((x) => !x.startsWith('-')));
  if ((a === 'image' && (b === 'ls' || b === 'list')) || a === 'images') {
    const { flags, rest: refs } = options(a === 'images' ? tail : rest, [
      '--format',
      '-f',
      '--filter',
    ]);
    const i = refs[0];
    if (flags.has('-q') || flags.has('--quiet')) {
      if (i && imageExists(full(i))) out(imagePath(full(i)).split('/').slice(-2).join(':'));
      return 0;
    }
    return unsupported(args);
  }
  if (a === 'save' || (a === 'image' && b === 'save')) return save(a === 'save' ? tail : rest);
  if (a === 'load' || (a === 'image' && b === 'load')) return load(a === 'load' ? tail : rest);
  if (a === 'rmi' || (a === 'image' && (b === 'rm' || b === 'remove'))) {
    return imageRm((a === 'rmi' ? tail : rest).filter((x) => !x.startsWith('-')));
  }
  if (a === 'ps' || (a === 'container' && (b === 'ls' || b === 'list' || b === 'ps'))) {
    return containerLs(a === 'ps' ? tail : rest);
  }
  if (a === 'inspect' || (a === 'container' && b === 'inspect')) {
    return inspect(a === 'inspect' ? tail : rest);
  }
  if (a === 'rm' || (a === 'container' && b === 'rm')) return containerRm(a === 'rm' ? tail : rest);
  if (a === 'container' && b === 'prune') {
    // every container that is not running goes
    const dead = listContainers().filter((c) => containerStatus(c) !== 'running');
    for (const c of dead) await removeContainer(c);
    out('Deleted Containers:');
    for (const c of dead) out(c.id);
    out('');
    out('Total reclaimed space: 0B');
    return 0;
  }
  if (a === 'port' || (a === 'container' && b === 'port')) {
    // `docker port CID`: the published mapping of a bind-all-interfaces container
    const c = findContainer((a === 'port' ? b : rest[0]) ?? '');
    if (c === null) {
      err(`Error response from daemon: No such container: ${a === 'port' ? b : rest[0]}`);
      return 1;
    }
    if (c.publishedPort !== undefined) out(`5000/tcp -> 0.0.0.0:${c.publishedPort}`);
    return 0;
  }
  if (a === 'network' && (b === 'ls' || b === 'list')) return networkLs(rest);
  if (a === 'network' && b === 'create') return networkCreate(rest);
  if (a === 'network' && (b === 'rm' || b === 'remove')) return networkRm(rest);
  if (a === 'info' && args.includes('-f')) {
    // storage:ensure-directory asks about user namespaces; the lab has none
    out('');
    return 0;
  }
  return unsupported(args);
}

process.exitCode = await docker(process.argv.slice(2));
