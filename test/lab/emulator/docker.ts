/**
 * A minimal `docker` CLI over the lab's engine folder (/var/lib/docker): the
 * few commands a migration runs against the container engine itself, outside
 * Dokku: pulling a datastore image, asking whether an image is there, saving
 * and loading images as tar streams (`docker save` on one host piped into
 * `docker load` on another carries an image that exists on no registry), and
 * listing or creating networks. Output and exit codes follow the Docker CLI;
 * anything else answers like a Docker CLI whose daemon is not running, so a
 * command the lab does not model fails loudly instead of pretending.
 */
import { openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  createNetwork,
  imageExists,
  imagePath,
  imageRef,
  listNetworks,
  loadImages,
  saveImages,
} from './engine.js';
import { pullImage } from './plugins/postgres.js';

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

export function docker(args: string[]): number {
  const [a, b, ...rest] = args;
  const tail = [b ?? '', ...rest].filter((x, i) => i > 0 || x !== '');
  if (a === 'pull') return pull(b);
  if (a === 'save' || (a === 'image' && b === 'save')) return save(a === 'save' ? tail : rest);
  if (a === 'load' || (a === 'image' && b === 'load')) return load(a === 'load' ? tail : rest);
  if (a === 'rmi' || (a === 'image' && (b === 'rm' || b === 'remove'))) {
    return imageRm((a === 'rmi' ? tail : rest).filter((x) => !x.startsWith('-')));
  }
  if (a === 'image' && b === 'pull') return pull(rest[0]);
  if (a === 'image' && b === 'inspect') return imageInspect(rest.filter((x) => !x.startsWith('-')));
  if (a === 'images' && b === '-q') {
    const i = rest[0];
    if (i && imageExists(full(i))) out(imagePath(full(i)).split('/').slice(-2).join(':'));
    return 0;
  }
  if (a === 'network' && b === 'ls') {
    // `--format '{{.Name}}'` and the default table both start with the name here.
    const quiet = rest.includes('--format') || rest.includes('-q');
    if (!quiet) out('NETWORK ID     NAME      DRIVER    SCOPE');
    for (const n of listNetworks())
      out(quiet ? n.Name : `${n.ID.slice(0, 12) || '-'}  ${n.Name}  ${n.Driver}  ${n.Scope}`);
    return 0;
  }
  if (a === 'network' && b === 'create') {
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
  return unsupported(args);
}

process.exitCode = docker(process.argv.slice(2));
