/**
 * caddy:* and the caddy-vhosts plugin's triggers (D plugins/caddy-vhosts at
 * v0.38.27: command-functions, internal-functions, subcommands/set,
 * report.go, pre-restore, install, docker-args-process-deploy,
 * templates/compose.yml.sigil; v0.37.9 for the bash report; v0.30.0 for
 * the pre-restore before 0.31.0).
 *
 * The proxy is a compose project `caddy` whose one container,
 * `caddy-caddy-1`, runs lucaslorentz/caddy-docker-proxy: it reads the
 * `caddy` and `caddy.reverse_proxy` labels of the running app containers
 * and routes their domains on the host's port 80. Here that container is a
 * record in the emulated engine whose process is `dokku --lab-proxy caddy`
 * (proxy.ts), and app containers get their labels at deploy
 * ({@link caddyContainerLabels}, called by deploy.ts), as the
 * docker-args-process-deploy trigger adds them.
 *
 * Properties (all `config/caddy/--global/<key>` unless said): image,
 * letsencrypt-email, letsencrypt-server, log-level, polling-interval,
 * tls-internal (per app, global too since 0.38.5), proxy-status (written by
 * caddy:start and caddy:stop, read by the pre-restore trigger).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import {
  type ContainerRecord,
  containerLogTail,
  containerRunning,
  copyTree,
  imageExists,
  imagePath,
  imageRef,
  listContainers,
  removeContainer,
  stopContainer,
} from '../engine.js';
import {
  appEnvPath,
  type Command,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  DokkuExit,
  deleteProperty,
  EMULATOR_DIR,
  ENGINE_ROOT,
  eprintln,
  fail,
  getProperty,
  info1,
  info2Quiet,
  isQuiet,
  labConfig,
  listApps,
  mkdirDokku,
  println,
  readEnv,
  readOr,
  reportCommand,
  setProperty,
  type Trigger,
  verbose,
  verifyAppBash,
  versionAtLeast,
  warn,
} from '../lib.js';
import { computedProxyType, proxyEnabled } from './proxy.js';

/** Compose project, service and container name (`docker compose -p caddy`). */
export const CADDY_PROJECT = 'caddy';
/** The container compose names `<project>-<service>-1`. */
export const CADDY_CONTAINER = 'caddy-caddy-1';

/** A compose service container: an engine record plus what compose and caddy need. */
export interface ComposeContainer extends ContainerRecord {
  kind: 'compose-service';
  project: string;
  service: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  /** Published host ports, as `host:container`. */
  ports: string[];
  /** Bind mounts, as `host:container`. */
  binds: string[];
  /** compose's com.docker.compose.config-hash: a changed config recreates the container. */
  configHash: string;
}

// ---------------------------------------------------------------- properties

/** FROM of plugins/caddy-vhosts/Dockerfile (before 0.33.8 the default was inline), by release. */
export function defaultCaddyImage(): string {
  const table: Array<[string, string]> = [
    ['0.38.21', '2.13'],
    ['0.37.8', '2.12'],
    ['0.37.7', '2.11'],
    ['0.36.0', '2.10'],
    ['0.34.5', '2.9'],
    ['0.31.0', '2.8'],
  ];
  const tag = table.find(([v]) => versionAtLeast(v))?.[1] ?? '2.7';
  return `lucaslorentz/caddy-docker-proxy:${tag}`;
}

const global = (key: string): string => getProperty('caddy', '--global', key);

/** Computed settings (internal-functions fn-caddy-computed-*). */
export function caddySettings(): {
  image: string;
  email: string;
  server: string;
  logLevel: string;
  pollingInterval: string;
} {
  return {
    image: global('image') || defaultCaddyImage(),
    email: global('letsencrypt-email'),
    server: global('letsencrypt-server') || 'https://acme-v02.api.letsencrypt.org/directory',
    logLevel: (global('log-level') || 'ERROR').toUpperCase(),
    pollingInterval: global('polling-interval') || '5s',
  };
}

/** fn-caddy-computed-tls-internal: app, else global (0.38.5+), else false. */
function computedTlsInternal(app: string): string {
  const own = getProperty('caddy', app, 'tls-internal');
  if (own !== '') return own;
  return (versionAtLeast('0.38.5') ? global('tls-internal') : '') || 'false';
}

// ---------------------------------------------------------------- compose file

/** fn-caddy-template-compose-file: the sigil template rendered (`| cat -s` changes nothing here). */
export function composeFile(): string {
  const s = caddySettings();
  const email = s.email !== '';
  const lines = ['---'];
  // compose's version key went away in 0.35.0
  if (!versionAtLeast('0.35.0')) lines.push('version: "3.7"', '');
  lines.push(
    'services:',
    '  caddy:',
    `    image: "${s.image}"`,
    '',
    '    environment:',
    '      - CADDY_INGRESS_NETWORKS=bridge',
    `      - CADDY_DOCKER_POLLING_INTERVAL=${s.pollingInterval}`,
    '',
    '    labels: # Global options',
    '      - caddy.log.format=json',
    `      - caddy.log.level=${s.logLevel}`,
    // the `{{ if }}`/`{{ else }}`/`{{ end }}` lines leave their indentation behind
    '      ',
    ...(email
      ? [`      - "caddy.email=${s.email}"`, `      - "caddy.acme_ca=${s.server}"`]
      : ['      - "caddy.auto_https=off"']),
    '      ',
    '',
    '    network_mode: bridge',
    '',
    '    ports:',
    '      - "80:80"',
    '      ',
    ...(email ? ['      - "443:443"', '      '] : []),
    '',
    '    restart: unless-stopped',
    '',
    '    volumes:',
    '      - "/var/run/docker.sock:/var/run/docker.sock:ro"',
    `      - "${join(DOKKU_LIB_ROOT, 'data', 'caddy')}:/data"`,
  );
  return `${lines.join('\n')}\n`;
}

/** What `docker compose up` would create from the compose file. */
function desiredContainer(): Pick<
  ComposeContainer,
  'image' | 'labels' | 'env' | 'ports' | 'binds' | 'configHash'
> {
  const s = caddySettings();
  const labels: Record<string, string> = {
    'caddy.log.format': 'json',
    'caddy.log.level': s.logLevel,
  };
  if (s.email !== '') {
    labels['caddy.email'] = s.email;
    labels['caddy.acme_ca'] = s.server;
  } else labels['caddy.auto_https'] = 'off';
  const env = {
    CADDY_INGRESS_NETWORKS: 'bridge',
    CADDY_DOCKER_POLLING_INTERVAL: s.pollingInterval,
  };
  const ports = s.email !== '' ? ['80:80', '443:443'] : ['80:80'];
  const binds = [
    '/var/run/docker.sock:/var/run/docker.sock:ro',
    `${join(DOKKU_LIB_ROOT, 'data', 'caddy')}:/data`,
  ];
  const image = s.image.includes(':') ? s.image : `${s.image}:latest`;
  const configHash = createHash('sha256')
    .update(JSON.stringify({ image, labels, env, ports, binds }))
    .digest('hex');
  return { image, labels, env, ports, binds, configHash };
}

// ---------------------------------------------------------------- the engine side of compose

/** The compose container of the caddy project, or null. */
export function caddyContainer(): ComposeContainer | null {
  for (const c of listContainers()) {
    const k = c as Partial<ComposeContainer>;
    if (k.kind === 'compose-service' && k.project === CADDY_PROJECT && c.name === CADDY_CONTAINER) {
      return c as ComposeContainer;
    }
  }
  return null;
}

function writeRecord(c: ComposeContainer): void {
  const d = join(ENGINE_ROOT, 'containers', c.id);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json.tmp'), JSON.stringify(c, null, 2));
  renameSync(join(d, 'config.json.tmp'), join(d, 'config.json'));
}

function pidStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** Progress lines compose writes to stderr when it has no TTY (pkg/progress plain writer). */
class ComposeOutput {
  text = '';
  event(status: string): void {
    this.line(` Container ${CADDY_CONTAINER}  ${status}`);
  }
  line(l: string): void {
    this.text += `${l}\n`;
    eprintln(l);
  }
}

/** Can a host port be bound on 0.0.0.0 (what docker-proxy does for a published port)? */
function bindError(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code === 'EACCES' ? 'permission denied' : 'address already in use');
    });
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(null)));
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
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
    s.connect(port, '127.0.0.1');
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * docker start: publish the ports (refused when another process holds one,
 * as docker-proxy is), then run the proxy process as root (the image's
 * user), in its own session, output to the container log.
 */
async function startContainer(c: ComposeContainer, out: ComposeOutput): Promise<boolean> {
  for (const p of c.ports) {
    const host = Number(p.split(':')[0]);
    const why = await bindError(host);
    if (why !== null) {
      out.line(
        `Error response from daemon: driver failed programming external connectivity on endpoint ${c.name} (${randomBytes(32).toString('hex')}): Error starting userland proxy: listen tcp4 0.0.0.0:${host}: bind: ${why}`,
      );
      return false;
    }
  }
  // the bind mount's host folder: docker creates it (root) when it is missing
  mkdirSync(join(DOKKU_LIB_ROOT, 'data', 'caddy'), { recursive: true });
  const dir = join(ENGINE_ROOT, 'containers', c.id);
  const log = openSync(join(dir, 'container.log'), 'a');
  const child = spawn(process.execPath, [join(EMULATOR_DIR, 'main.js'), '--lab-proxy', 'caddy'], {
    cwd: imagePath(c.image),
    env: {
      ...c.env,
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTNAME: c.id.slice(0, 12),
      XDG_DATA_HOME: '/data',
    },
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  c.pid = child.pid ?? 0;
  c.pidStart = c.pid > 0 ? pidStartTime(c.pid) : '';
  c.state = 'running';
  writeRecord(c);
  // docker reports Started once the process runs; wait until it serves so callers can rely on it
  const until = Date.now() + 10_000;
  while (Date.now() < until && containerRunning(c) && !(await listening(80))) await sleep(100);
  return true;
}

/** Pull from the lab registry as `--quiet-pull` does (nothing printed unless it fails). */
function pullImage(image: string, out: ComposeOutput): boolean {
  if (imageExists(image)) return true;
  const { repo, tag } = imageRef(image);
  const src = join(labConfig().registry, repo, tag);
  if (!existsSync(src)) {
    out.line(
      `Error response from daemon: pull access denied for ${repo}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`,
    );
    return false;
  }
  copyTree(src, imagePath(image));
  return true;
}

/** `docker compose -p caddy up --detach --quiet-pull`: true when the project runs. */
async function composeUp(out: ComposeOutput): Promise<boolean> {
  const want = desiredContainer();
  const c = caddyContainer();
  if (c !== null && c.configHash === want.configHash) {
    if (containerRunning(c)) {
      out.event('Running');
      return true;
    }
    out.event('Starting');
    if (!(await startContainer(c, out))) return false;
    out.event('Started');
    return true;
  }
  if (!pullImage(want.image, out)) return false;
  const recreate = c !== null;
  if (c !== null) {
    out.event('Recreate');
    await removeContainer(c);
  } else out.event('Creating');
  const rec: ComposeContainer = {
    id: randomBytes(32).toString('hex'),
    name: CADDY_CONTAINER,
    app: '',
    proc: 'caddy',
    index: 1,
    image: want.image,
    cmd: 'caddy docker-proxy',
    port: 80,
    pid: 0,
    pidStart: '',
    state: 'created',
    createdAt: new Date().toISOString(),
    kind: 'compose-service',
    project: CADDY_PROJECT,
    service: 'caddy',
    labels: {
      ...want.labels,
      'com.docker.compose.project': CADDY_PROJECT,
      'com.docker.compose.service': 'caddy',
      'com.docker.compose.container-number': '1',
      'com.docker.compose.config-hash': want.configHash,
    },
    env: want.env,
    ports: want.ports,
    binds: want.binds,
    configHash: want.configHash,
  };
  writeRecord(rec);
  out.event(recreate ? 'Recreated' : 'Created');
  out.event('Starting');
  if (!(await startContainer(rec, out))) return false;
  out.event('Started');
  return true;
}

/** `docker compose -p caddy down --remove-orphans`. */
async function composeDown(out: ComposeOutput): Promise<void> {
  const c = caddyContainer();
  if (c === null) {
    out.line(
      `time="${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}" level=warning msg="Warning: No resource found to remove for project \\"${CADDY_PROJECT}\\"."`,
    );
    return;
  }
  if (containerRunning(c)) {
    out.event('Stopping');
    await stopContainer(c, 10);
    out.event('Stopped');
  }
  out.event('Removing');
  await removeContainer(c);
  out.event('Removed');
}

// ---------------------------------------------------------------- commands

/** cmd-caddy-start: proxy-status=started, then compose up; 1 when compose fails. */
async function startCaddy(): Promise<number> {
  setProperty('caddy', '--global', 'proxy-status', 'started');
  const out = new ComposeOutput();
  if (!(await composeUp(out))) {
    // common compose-up: the streamed stderr is repeated in the error (LogFailWithErrorQuiet)
    if (!isQuiet()) eprintln(` !     Unable to start compose project: ${out.text}`);
    return 1;
  }
  return 0;
}

const start: Command = async () => startCaddy();

const stop: Command = async () => {
  setProperty('caddy', '--global', 'proxy-status', 'stopped');
  await composeDown(new ComposeOutput());
};

const showConfig: Command = async () => {
  process.stdout.write(composeFile());
};

const logs: Command = async (args) => {
  let num = 100;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-n' || a === '--num') num = Number(args[++i] ?? '100');
    else if (a.startsWith('--num=')) num = Number(a.slice(6));
    else if (a === '-t' || a === '--tail' || a === '-h' || a === '--help') {
      // --tail follows the log in Dokku; the emulator prints what there is
    } else {
      eprintln(`dokku caddy:logs: unrecognized option '${a}'`);
      eprintln('Usage: dokku caddy:logs');
      eprintln(' display recent caddy log output');
      eprintln('');
      eprintln(' -n, --num NUM        # the number of lines to display');
      eprintln(' -t, --tail           # continually stream logs');
      throw new DokkuExit(1);
    }
  }
  const c = caddyContainer();
  if (c === null) {
    eprintln(`Error response from daemon: No such container: ${CADDY_CONTAINER}`);
    throw new DokkuExit(1);
  }
  for (const l of containerLogTail(c, Number.isFinite(num) && num >= 0 ? num : 100)) println(l);
};

/** subcommands/set, per release: 0.36 had label-key, 0.38.3 refuses per-app global-only keys, 0.38.5 allows a global tls-internal. */
const set: Command = async (args) => {
  const [app = '', key = '', value = ''] = args;
  const valid = [
    'image',
    'letsencrypt-email',
    'letsencrypt-server',
    'log-level',
    'polling-interval',
  ];
  if (versionAtLeast('0.36.0') && !versionAtLeast('0.37.0')) valid.push('label-key');
  valid.push('tls-internal');
  const globalOnly = [
    'image',
    'letsencrypt-email',
    'letsencrypt-server',
    'log-level',
    'polling-interval',
  ];
  const globalKeys = versionAtLeast('0.38.5') ? [...globalOnly, 'tls-internal'] : globalOnly;
  if (key === '') fail('No key specified');
  if (!valid.includes(key)) fail(`Invalid key specified, valid keys include: ${valid.join(' ')}`);
  if (!globalKeys.includes(key)) {
    if (app === '--global') fail(`The key '${key}' cannot be set globally`);
    verifyAppBash(app);
  }
  if (versionAtLeast('0.38.3') && globalOnly.includes(key) && app !== '--global') {
    fail(`The key '${key}' can only be set globally`);
  }
  if (value !== '') {
    info2Quiet(`Setting ${key} to ${value}`);
    setProperty('caddy', app, key, value);
  } else {
    info2Quiet(`Unsetting ${key}`);
    deleteProperty('caddy', app, key);
  }
};

/** report.go (0.38.22+; earlier 0.38 releases printed the same keys from bash). */
function reportInfo(app: string, isGlobal: boolean): Record<string, string> {
  const s = caddySettings();
  const info: Record<string, string> = {
    '--caddy-computed-image': s.image,
    '--caddy-computed-letsencrypt-email': s.email,
    '--caddy-computed-letsencrypt-server': s.server,
    '--caddy-computed-log-level': s.logLevel,
    '--caddy-computed-polling-interval': s.pollingInterval,
    '--caddy-computed-tls-internal': computedTlsInternal(app),
    '--caddy-global-image': global('image'),
    '--caddy-global-letsencrypt-email': global('letsencrypt-email'),
    '--caddy-global-letsencrypt-server': global('letsencrypt-server'),
    '--caddy-global-log-level': global('log-level'),
    '--caddy-global-polling-interval': global('polling-interval'),
    '--caddy-global-tls-internal': global('tls-internal'),
  };
  if (!isGlobal) info['--caddy-tls-internal'] = getProperty('caddy', app, 'tls-internal');
  return info;
}

const reportGo = reportCommand('caddy', (s, g) => reportInfo(s, g), false);

/** ≤0.37 bash cmd-caddy-report: `printf "%-30s %-25s"` lines, no --global, no --format. */
const reportBash: Command = async (args) => {
  let app = args[0] ?? '';
  let flag = args[1] ?? '';
  if (app.startsWith('--')) {
    flag = app;
    app = '';
  }
  const single = (a: string, infoFlag: string): void => {
    verifyAppBash(a);
    const s = caddySettings();
    const map: Array<[string, string]> = [
      ['--caddy-image', s.image],
      ['--caddy-letsencrypt-email', s.email],
      ['--caddy-letsencrypt-server', s.server],
      ['--caddy-log-level', s.logLevel],
      ['--caddy-polling-interval', s.pollingInterval],
      ['--caddy-tls-internal', getProperty('caddy', a, 'tls-internal') || 'false'],
    ];
    if (infoFlag === '') {
      info2Quiet(`${a} caddy information`);
      for (const [k, v] of map) {
        const label = k.slice(2).replace(/-/g, ' ');
        const key = `${label.charAt(0).toUpperCase()}${label.slice(1)}:`;
        verbose(`${key.padEnd(30)} ${v.padEnd(25)}`);
      }
      return;
    }
    const hit = map.find(([k]) => k === infoFlag);
    if (hit === undefined) {
      fail(`Invalid flag passed, valid flags:${map.map(([k]) => ` ${k}`).join('')}`);
    }
    if (hit[1] !== '') println(hit[1]);
  };
  if (app !== '') return single(app, flag);
  const apps = listApps();
  if (apps.length === 0) warn("You haven't deployed any applications yet");
  for (const a of apps) {
    // `cmd-caddy-report-single ... | tee || true`: one app's failure does not stop the loop
    try {
      single(a, flag);
    } catch (e) {
      if (!(e instanceof DokkuExit)) throw e;
    }
  }
};

const report: Command = (args) => (versionAtLeast('0.38.0') ? reportGo(args) : reportBash(args));

// ---------------------------------------------------------------- deploy labels

/**
 * The docker-args-process-deploy trigger's labels for an app's web
 * container, or none when the app is not routed by caddy. The emulator has
 * no ports plugin: the app's one mapping is `http:80:<port>`, `port` being
 * the port its web process listens on (Dokku: the container port, 5000).
 * Prints the trigger's warnings, as a deploy shows them.
 */
export function caddyContainerLabels(app: string, port: number): Record<string, string> {
  const labels: Record<string, string> = {};
  if (computedProxyType(app) !== 'caddy') return labels;
  if (!proxyEnabled(app)) return labels;
  if (readEnv(appEnvPath(app)).get('NO_VHOST') === '1') return labels;
  const domains = readOr(join(DOKKU_ROOT, app, 'VHOST'))
    .split(/\s+/)
    .filter((d) => d !== '');
  if (domains.length > 0) {
    const email = caddySettings().email;
    if (email !== '') {
      // no https:443 mapping: the first http one serves https
      warn('Warning: https:443 port mapping not found');
      warn(`Utilizing first https port mapping, http:80:${port}`);
      labels.caddy = domains.join(', ');
    } else {
      labels.caddy = domains.map((d) => `${d}:80`).join(', ');
    }
    labels['caddy.reverse_proxy'] = `{{ upstreams ${port} }}`;
  }
  // caddy:labels:add writes `name=value` lines here (proxy/functions)
  for (const line of readOr(join(DOKKU_LIB_ROOT, 'config', 'caddy', app, 'labels')).split('\n')) {
    const eq = line.indexOf('=');
    if (line.trim() === '' || eq <= 0) continue;
    labels[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return labels;
}

/** core-post-deploy: the line a caddy-routed deploy prints. */
export function caddyPostDeploy(app: string): void {
  if (computedProxyType(app) !== 'caddy') return;
  info1('Routing app via caddy');
  if (computedTlsInternal(app) === 'true') {
    warn(
      "Warning: using caddy's internal, locally-trusted CA to produce certificates for this site",
    );
  }
}

// ---------------------------------------------------------------- triggers

/**
 * pre-restore (run by ps:restore): start caddy again when caddy:start was
 * the last word (0.31.0+), or unless caddy:stop was (before 0.31.0).
 */
const preRestore: Trigger = async () => {
  const status = getProperty('caddy', '--global', 'proxy-status');
  if (versionAtLeast('0.31.0') ? status !== 'started' : status === 'stopped') return;
  if ((await startCaddy()) !== 0) {
    warn('Failed to restore caddy proxy, requests may not route as expected');
  }
};

/** install: the data folder the container mounts at /data. */
const install: Trigger = async () => {
  mkdirDokku(join(DOKKU_LIB_ROOT, 'data', 'caddy'));
  mkdirDokku(join(DOKKU_LIB_ROOT, 'config', 'caddy'));
};

/** The caddy-vhosts plugin's in-process triggers. */
export const triggers: Record<string, Trigger> = { 'pre-restore': preRestore, install };

export const commands: Record<string, Command> = {
  'caddy:start': start,
  'caddy:stop': stop,
  'caddy:set': set,
  'caddy:report': report,
  'caddy:show-config': showConfig,
  'caddy:logs': logs,
};
