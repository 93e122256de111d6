/** storage:mount / storage:list (reference §8; D plugins/storage). */
import { createHash } from 'node:crypto';
import { appendFileSync, chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Command,
  chownDokku,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  fail,
  info1,
  isQuiet,
  mkdirDokku,
  println,
  readOr,
  verbose,
  verifyApp,
  verifyAppBash,
  versionAtLeast,
  warn,
  writeFileDokku,
} from '../lib.js';
import { byteCompare } from '../report.js';

interface Entry {
  name: string;
  scheduler: string;
  host_path: string;
  schema_version: number;
}
interface Attachment {
  entry_name: string;
  container_path: string;
  phases: string[];
  process_type: string;
  readonly?: boolean;
  volume_options?: string;
}

const entriesDir = (): string => join(DOKKU_LIB_ROOT, 'data', 'storage-registry', 'entries');
const mountsFile = (app: string): string =>
  join(DOKKU_LIB_ROOT, 'config', 'storage', app, 'mounts');

function readAttachments(app: string): Attachment[] {
  return readOr(mountsFile(app))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Attachment);
}

function readEntry(name: string): Entry | null {
  const t = readOr(join(entriesDir(), `${name}.json`));
  return t === '' ? null : (JSON.parse(t) as Entry);
}

/** Split `host:container[:opts]` and validate as storage.go does. */
function parseMount(spec: string): { host: string; container: string; opts: string } {
  const parts = spec.split(':');
  const host = parts[0] ?? '';
  const container = parts[1] ?? '';
  const opts = parts.slice(2).join(':');
  if (!container.startsWith('/')) fail('Storage path must be two valid paths divided by colon.');
  if (!host.startsWith('/') && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(host)) {
    fail(
      'Volume name must be two characters or more. Volume name must not contain invalid characters. Storage path must be two valid paths divided by colon.',
    );
  }
  return { host, container, opts };
}

const mount: Command = async (args) => {
  const pos = args.filter((a) => !a.startsWith('--'));
  const app = pos[0];
  verifyApp(app);
  const spec = pos[1] ?? '';
  if (!spec.includes(':')) {
    fail(`storage entry "${spec}" does not exist; create it first with \`dokku storage:create\``);
  }
  const { host, container, opts } = parseMount(spec);
  if (!versionAtLeast('0.38.0')) {
    const line = `-v ${spec}`;
    for (const phase of ['DEPLOY', 'RUN']) {
      const f = join(DOKKU_ROOT, app, `DOCKER_OPTIONS_${phase}`);
      if (readOr(f).split('\n').includes(line)) fail('Mount path already exists.');
    }
    for (const phase of ['DEPLOY', 'RUN']) {
      const f = join(DOKKU_ROOT, app, `DOCKER_OPTIONS_${phase}`);
      appendFileSync(f, `${line}\n`);
      chownDokku(f);
    }
    return;
  }
  const hashInput = host.startsWith('/') ? host : `vol:${host}`;
  const name = `legacy-${createHash('sha1').update(hashInput).digest('hex').slice(0, 10)}`;
  const existing = readAttachments(app);
  if (existing.some((a) => a.entry_name === name && a.container_path === container)) {
    fail('Mount path already exists.');
  }
  const entryPath = join(entriesDir(), `${name}.json`);
  if (!existsSync(entryPath)) {
    const entry: Entry = { name, scheduler: 'docker-local', host_path: host, schema_version: 1 };
    writeFileDokku(entryPath, JSON.stringify(entry, null, 2), 0o600);
  }
  const att: Attachment = {
    entry_name: name,
    container_path: container,
    phases: ['deploy', 'run'],
    process_type: '_default_',
  };
  if (opts === 'ro') att.readonly = true;
  else if (opts !== '') att.volume_options = opts;
  mkdirDokku(join(mountsFile(app), '..'));
  appendFileSync(mountsFile(app), `${JSON.stringify(att)}\n`, { mode: 0o600 });
  chownDokku(mountsFile(app));
};

/** `-v host:container[:opts]` mounts of a phase's docker-options (≤0.37 layout). */
function legacyMounts(app: string, phase: 'DEPLOY' | 'RUN'): string[] {
  return readOr(join(DOKKU_ROOT, app, `DOCKER_OPTIONS_${phase}`))
    .split('\n')
    .filter((l) => l.startsWith('-v '))
    .map((l) => l.slice(3));
}

/** host_path/container_path/volume_options of `host:container[:opts]` (SplitN 3 / awk -F:). */
function legacyEntry(mount: string): {
  host_path: string;
  container_path: string;
  volume_options: string;
} {
  const parts = mount.split(':');
  return {
    host_path: parts[0] ?? '',
    container_path: parts[1] ?? '',
    volume_options: versionAtLeast('0.37.0') ? parts.slice(2).join(':') : (parts[2] ?? ''),
  };
}

/**
 * storage:list before 0.37 (bash, internal-functions cmd-storage-list): only
 * `APP --format text|json` in that order. Without --format it prints the bare
 * mounts (the header and indent come only with an explicit `--format text`);
 * json is jq's pretty-printed array (`[]` when there is none).
 */
function listBash(args: string[]): void {
  const [app = '', flag = '', value = ''] = args;
  let format = 'text';
  if (flag === '--format') {
    if (value !== 'json' && value !== 'text') fail('Invalid --format value specified');
    format = value;
  } else if (flag !== '') fail('Invalid argument specified');
  verifyAppBash(app);
  const mounts = legacyMounts(app, 'DEPLOY');
  if (format === 'json') {
    if (mounts.length === 0) {
      println('[]');
      return;
    }
    println(JSON.stringify(mounts.map(legacyEntry), null, 2));
    return;
  }
  if (value === 'text') {
    if (!isQuiet()) info1(`${app} volume bind-mounts:`);
    for (const m of mounts) println(`       ${m}`);
    return;
  }
  for (const m of mounts) println(m);
}

/**
 * storage:list 0.37 (Go over docker-options, subcommands.go CommandList): the
 * storage-list trigger's output, trimmed; json is the compact array, `[]`
 * for an app without mounts.
 */
function listGoLegacy(app: string, format: string): void {
  verifyApp(app);
  if (format !== 'text' && format !== 'json') fail('Invalid --format value specified');
  const mounts = legacyMounts(app, 'DEPLOY');
  if (format === 'json') {
    println(JSON.stringify(mounts.map(legacyEntry)));
    return;
  }
  if (!isQuiet()) info1(`${app} volume bind-mounts:`);
  for (const m of mounts) {
    if (isQuiet()) println(m);
    else verbose(m);
  }
}

const list: Command = async (args) => {
  if (!versionAtLeast('0.37.0')) {
    listBash(args);
    return;
  }
  let format = 'text';
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format') format = args[++i] ?? '';
    else if (a.startsWith('--format=')) format = a.slice(9);
    else pos.push(a);
  }
  const app = pos[0];
  if (!versionAtLeast('0.38.0')) {
    listGoLegacy(app ?? '', format);
    return;
  }
  verifyApp(app);
  if (format !== 'text' && format !== 'json') fail('Invalid --format value specified');
  const rows = readAttachments(app)
    .filter((a) => a.phases.includes('deploy'))
    .map((a) => ({ a, e: readEntry(a.entry_name) }))
    .sort(
      (x, y) =>
        byteCompare(x.a.entry_name, y.a.entry_name) ||
        byteCompare(x.a.container_path, y.a.container_path),
    );
  if (format === 'json') {
    println(
      JSON.stringify(
        rows.map(({ a, e }) => ({
          entry_name: a.entry_name,
          host_path: e?.host_path ?? '',
          container_path: a.container_path,
          ...(a.readonly ? { readonly: true } : {}),
          ...(a.volume_options ? { volume_options: a.volume_options } : {}),
        })),
      ),
    );
    return;
  }
  const lines = rows.map(({ a, e }) => {
    const opt = a.readonly ? ':ro' : a.volume_options ? `:${a.volume_options}` : '';
    return `${e?.host_path ?? ''}:${a.container_path}${opt}`;
  });
  if (isQuiet()) {
    for (const l of lines) println(l);
    return;
  }
  info1(`${app} volume bind-mounts:`);
  for (const l of lines) verbose(l);
};

/**
 * storage:unmount APP HOST:CONTAINER[:OPTS]: before 0.38 the `-v` option
 * leaves the deploy and run docker-options ("Mount path does not exist."
 * otherwise); since, the legacy entry's attachment at that container path goes.
 */
const unmount: Command = async (args) => {
  const pos = args.filter((a) => !a.startsWith('--'));
  const app = pos[0];
  if (versionAtLeast('0.37.0')) verifyApp(app);
  else verifyAppBash(app);
  const spec = pos[1] ?? '';
  const { host, container } = parseMount(spec);
  if (!versionAtLeast('0.38.0')) {
    const line = `-v ${spec}`;
    const files = ['DEPLOY', 'RUN'].map((p) => join(DOKKU_ROOT, app, `DOCKER_OPTIONS_${p}`));
    if (!files.some((f) => readOr(f).split('\n').includes(line)))
      fail('Mount path does not exist.');
    for (const f of files) {
      if (!existsSync(f)) continue;
      const kept = readOr(f)
        .split('\n')
        .filter((l) => l !== '' && l !== line);
      writeFileDokku(f, kept.map((l) => `${l}\n`).join(''), 0o600);
    }
    return;
  }
  const hashInput = host.startsWith('/') ? host : `vol:${host}`;
  const name = `legacy-${createHash('sha1').update(hashInput).digest('hex').slice(0, 10)}`;
  const all = readAttachments(app);
  const kept = all.filter((a) => !(a.entry_name === name && a.container_path === container));
  if (kept.length === all.length) fail('Mount path does not exist.');
  writeFileDokku(mountsFile(app), kept.map((a) => `${JSON.stringify(a)}\n`).join(''), 0o600);
};

/** storage:ensure-directory [--chown herokuish|heroku|paketo|root|false] DIR: a folder under data/storage. */
const ensureDirectory: Command = async (args) => {
  let chown = 'herokuish';
  let dir = '';
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--chown') chown = args[++i] ?? '';
    else if (dir === '') dir = a;
  }
  // 0.38: storage:create replaces it (src/subcommands/subcommands.go)
  if (versionAtLeast('0.38.0')) {
    warn("Deprecated: please use 'storage:create' instead of 'storage:ensure-directory'");
  }
  if (dir === '') fail('Please specify a directory to create');
  if (!/^[A-Za-z0-9_-]+$/.test(dir)) {
    fail('Directory can only contain the following set of characters: [A-Za-z0-9_-]');
  }
  const ids: Record<string, string> = {
    herokuish: '32767',
    heroku: '1000',
    packeto: '2000',
    false: 'false',
    ...(versionAtLeast('0.34.0') ? { root: '0' } : {}),
    ...(versionAtLeast('0.37.0') ? { paketo: '2000' } : {}),
  };
  const id = ids[chown];
  if (id === undefined) fail('Unsupported chown permissions');
  const path = join(DOKKU_LIB_ROOT, 'data', 'storage', dir);
  info1(`Ensuring ${path} exists`);
  mkdirSync(path, { recursive: true, mode: 0o755 });
  if (id !== 'false') {
    if (!isQuiet()) verbose(`Setting directory ownership to ${id}:${id}`);
    chownSync(path, Number(id), Number(id));
  }
  if (!isQuiet()) verbose('Directory ready for mounting');
};

export const commands: Record<string, Command> = {
  'storage:unmount': unmount,
  'storage:ensure-directory': ensureDirectory,
  'storage:mount': mount,
  'storage:list': list,
};
