/**
 * A minimal `docker` CLI over the lab's engine folder (/var/lib/docker): the
 * few commands a migration runs against the container engine itself, outside
 * Dokku: pulling a datastore image, asking whether an image is there, and
 * listing or creating networks. Output and exit codes follow the Docker CLI;
 * anything else answers like a Docker CLI whose daemon is not running, so a
 * command the lab does not model fails loudly instead of pretending.
 */
import { createNetwork, imageExists, imagePath, imageRef, listNetworks } from './engine.js';
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

export function docker(args: string[]): number {
  const [a, b, ...rest] = args;
  if (a === 'pull') return pull(b);
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
