/**
 * The lab: N Dokku-like hosts on this machine, each a set of Linux namespaces
 * (network, mount, UTS, IPC, PID) with its own address on a bridge, its own
 * hostname, its own Dokku folders and its own OpenSSH sshd. See
 * docs/contracts.md ("The lab") for the layout other parts rely on.
 *
 * Everything a running lab holds is recorded in
 * `/var/lib/ferry-lab/<instance>/state.json`, so `down` works from a fresh
 * process, and `up` first removes whatever an earlier run of the same instance
 * left (also after a crash or a kill).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { CLEAN_ENV, type ExecResult, LabError, must, run, sleep } from './sys.js';

export { type ExecResult, LabError } from './sys.js';

/** Root of all lab state (not under /tmp: each host has its own /tmp). */
export const LAB_ROOT = '/var/lib/ferry-lab';
/**
 * Where every host sees its image "registry" (`<repo>/<tag>/` holds an image's
 * tree): a mount point, bound in each host to its instance's own registry
 * ({@link registryDir}), so two checkouts seeding at once never publish over
 * each other's plugins and images.
 */
export const REGISTRY_DIR = `${LAB_ROOT}/registry`;
/** Where the emulator copy lives (a symlink to a content-addressed copy). */
export const EMULATOR_DIR = `${LAB_ROOT}/emulator`;
/** The `dokku` wrapper installed for the hosts. */
export const DOKKU_WRAPPER = '/usr/bin/dokku';
/** Dokku version a host gets when its spec names none. */
export const DEFAULT_DOKKU_VERSION = '0.38.27';
/** Host names for `up N` (the default lab is `old`, `new`, `scratch`). */
export const DEFAULT_HOST_NAMES = ['old', 'new', 'scratch', 'h4', 'h5', 'h6', 'h7', 'h8'] as const;
/** Debian packages the lab needs; installed when missing. */
export const LAB_PACKAGES = [
  'openssh-server',
  'procps',
  'postgresql',
  'mariadb-server',
  'redis-server',
  'memcached',
  'git',
  'zstd',
  // encrypts fetched copies on the source and decrypts them here (backup --encrypt, restore --identity)
  'age',
  'rsync',
  'iproute2',
  'curl',
  // crontab(1) for the dokku user's crontab (Dokku's cron plugin writes it); no cron daemon runs.
  'cron',
] as const;

const NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;
const WRAPPER_MARK = '# dokku-ferry lab wrapper';
/**
 * The lab engine's `docker` CLI (test/lab/emulator/docker.ts). Inside each
 * host it is bind-mounted over the `docker` found on the controller's PATH
 * (this machine kind ships a Docker client without an engine), or installed as
 * /usr/bin/docker when there is none.
 */
const DOCKER_SHIM = `${LAB_ROOT}/docker-shim`;
const DOCKER_WRAPPER = '/usr/bin/docker';
const HOST_DATA = [
  ['home-dokku', '/home/dokku'],
  ['lib-dokku', '/var/lib/dokku'],
  ['tmp', '/tmp'],
  ['docker', '/var/lib/docker'],
  // Root's home of its own: the controller's /root/.bashrc (pyenv here) would run on
  // every SSH command and cost seconds each; a real server's root has its own home too.
  ['root', '/root'],
  // dokku-ferry's own folder (archives, stages) belongs to each host, as on real servers.
  ['ferry', '/var/lib/dokku-ferry'],
  // A host's cron entries (a datastore's backup-schedule writes one here) are its own.
  ['cron', '/etc/cron.d'],
  // And its users' crontabs (the dokku user's: app.json cron tasks, certificate renewals).
  ['crontabs', '/var/spool/cron/crontabs'],
] as const;

/** One host to bring up. */
export interface HostSpec {
  name: string;
  /** Dokku version the emulator installs (default {@link DEFAULT_DOKKU_VERSION}). */
  dokkuVersion?: string;
}

/** Options of {@link Lab.up}. */
export interface LabUpOptions {
  /** Lab instance (default `default`, subnet 10.251.0.0/24). Tests use their own. */
  instance?: string;
  hosts: (string | HostSpec)[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /**
   * Run the emulator's `dokku --lab-install` and `dokku --lab-proxy` in each
   * host (default true; skipped with a warning while the emulator is not built).
   * The lab's own tests turn it off to stay independent of the emulator.
   */
  emulator?: boolean;
  /**
   * Keep the hosts' folders (their Dokku paths, /tmp, engine) on a tmpfs
   * instead of the controller's disk. For the benchmark: the disk here is
   * shared ext4 with online discard, and deleting a gigabyte before a run
   * made the same copy take 9 to 16 s; in memory it takes 5.6 to 6.6 s.
   */
  memory?: boolean;
  /**
   * A host that is the only way to the others: every other host's sshd
   * refuses connections (TCP reset, by nftables in the host's own network
   * namespace) from anywhere but this host's address. The controller and
   * the other hosts then reach them only through it (ProxyJump).
   */
  bastion?: string;
}

/** What state.json records about one host. */
export interface HostState {
  name: string;
  address: string;
  dokkuVersion: string;
  /** Network namespace name (`ip netns`). */
  netns: string;
  /** Controller side of the host's veth pair. */
  veth: string;
  /** PID (in the controller's PID namespace) of the host's init, 0 before it runs. */
  pid: number;
  /** Start time of that PID (/proc/PID/stat field 22), so a reused PID is never killed. */
  pidStart: string;
  dir: string;
}

/** `/var/lib/ferry-lab/<instance>/state.json`. */
export interface LabState {
  version: 1;
  instance: string;
  /** N in 10.251.N.0/24. */
  subnet: number;
  bridge: string;
  controllerAddress: string;
  /** The emulator copy this instance's hosts run (content-addressed, kept while it is up). */
  emulator?: string;
  hosts: HostState[];
}

/** Result of {@link Lab.status}: one running (or half-dead) instance. */
export interface InstanceStatus {
  instance: string;
  subnet: string;
  hosts: { name: string; address: string; pid: number; alive: boolean; sshd: boolean }[];
}

/** Options of {@link LabHost.exec}. */
export interface HostExecOptions {
  /** Written to the command's stdin (default: /dev/null). */
  input?: string | Buffer;
}

/** The argv prefix that runs a program as root inside the host whose init is `pid`. */
export function nsenterArgv(pid: number): string[] {
  return ['nsenter', '-t', String(pid), '-a', '--'];
}

/** Runs `bash -c cmd` as root inside the host whose init is `pid` (no SSH involved). */
export function execInHost(
  pid: number,
  cmd: string,
  opts: HostExecOptions = {},
): Promise<ExecResult> {
  const [file, ...args] = nsenterArgv(pid);
  return run(
    file as string,
    [...args, 'bash', '-c', cmd],
    opts.input === undefined ? {} : { input: opts.input },
  );
}

/** One host of a running lab. */
export class LabHost {
  /** Host name, also its hostname and its key in the inventory. */
  readonly name: string;
  /** Its address on the lab bridge (sshd listens there, port 22). */
  readonly address: string;
  /** Its folder on the controller: `/var/lib/ferry-lab/<instance>/hosts/<name>`. */
  readonly dir: string;
  /** PID of its init (PID 1 inside the host) as the controller sees it. */
  readonly pid: number;
  readonly netns: string;
  readonly dokkuVersion: string;
  /** Its sshd host key fingerprint, `SHA256:...`. */
  readonly hostKeyFingerprint: string;
  private readonly pidStart: string;

  constructor(s: HostState, hostKeyFingerprint: string) {
    this.name = s.name;
    this.address = s.address;
    this.dir = s.dir;
    this.pid = s.pid;
    this.netns = s.netns;
    this.dokkuVersion = s.dokkuVersion;
    this.hostKeyFingerprint = hostKeyFingerprint;
    this.pidStart = s.pidStart;
  }

  /**
   * Runs `bash -c cmd` as root inside the host, through nsenter. Never throws
   * for a non-zero exit; throws a {@link LabError} when the host is not running.
   */
  async exec(cmd: string, opts: HostExecOptions = {}): Promise<ExecResult> {
    // A dead host's PID may belong to another process by now: never enter that one's namespaces.
    if (!this.running())
      throw new LabError(
        `lab host ${this.name} is not running (its init, PID ${this.pid}, is gone)`,
      );
    return execInHost(this.pid, cmd, opts);
  }

  /**
   * Shapes the host's outgoing link (eth0) to `rate` (tc's units: `100mbit`),
   * a token bucket (netem does not work in these namespaces; tbf does), as a
   * WAN would; `undefined` removes the shaping.
   */
  async shape(rate: string | undefined): Promise<void> {
    if (rate === undefined) {
      await this.must('tc qdisc del dev eth0 root 2>/dev/null || true');
      return;
    }
    if (!/^\d+(\.\d+)?([kmg]?bit|[kmg]?bps)$/.test(rate))
      throw new LabError(`a link rate is like 100mbit, got ${rate}`);
    // A burst of 1 ms at the rate (at least 64 KiB) and packets queued up to 50 ms: a WAN's router.
    await this.must(`tc qdisc replace dev eth0 root tbf rate ${rate} burst 256kb latency 50ms`);
  }

  /** Whether the host's init still runs (same PID and start time as recorded). */
  running(): boolean {
    return this.pid > 0 && pidStart(this.pid) === this.pidStart;
  }

  /** Like {@link exec}, but throws a {@link LabError} when the command fails; returns stdout. */
  async must(cmd: string, opts: HostExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, opts);
    if (r.code !== 0) {
      const said = summarize(r.stderr.trim() || r.stdout.trim());
      throw new LabError(
        `on lab host ${this.name}: \`${cmd}\` exited ${r.code}${said ? `:\n    ${said}` : ''}`,
      );
    }
    return r.stdout;
  }

  /** Path on the controller of a file inside one of the host's own folders (`/home/dokku/...`, `/var/lib/dokku/...`, `/tmp/...`, `/var/lib/docker/...`). */
  pathOnController(hostPath: string): string {
    for (const [sub, mnt] of HOST_DATA) {
      if (hostPath === mnt || hostPath.startsWith(`${mnt}/`))
        return path.join(this.dir, sub, hostPath.slice(mnt.length));
    }
    throw new LabError(`${hostPath} is not in one of the host's own folders`);
  }
}

/** A running lab instance. */
export class Lab {
  readonly instance: string;
  /** `/var/lib/ferry-lab/<instance>`. */
  readonly dir: string;
  readonly hosts: LabHost[];
  /** The instance's private key (root's, and dokku's `admin` key). */
  readonly keyPath: string;
  /** OpenSSH known_hosts with every host's key under its address. */
  readonly knownHostsPath: string;
  /** An inventory (docs/contracts.md) for this lab. */
  readonly inventoryPath: string;
  /** The controller's address on the bridge, e.g. 10.251.0.1. */
  readonly controllerAddress: string;
  /** The lab subnet, e.g. 10.251.0.0/24. */
  readonly subnet: string;
  readonly state: LabState;

  private constructor(state: LabState, hosts: LabHost[]) {
    this.state = state;
    this.instance = state.instance;
    this.dir = instanceDir(state.instance);
    this.hosts = hosts;
    this.keyPath = path.join(this.dir, 'id_ed25519');
    this.knownHostsPath = path.join(this.dir, 'known_hosts');
    this.inventoryPath = path.join(this.dir, 'inventory.yml');
    this.controllerAddress = state.controllerAddress;
    this.subnet = `10.251.${state.subnet}.0/24`;
  }

  /**
   * OpenSSH client options for this lab: the lab key only, and host keys
   * checked strictly against the lab's known_hosts (no ~/.ssh/config).
   */
  sshOptions(): string[] {
    return [
      '-F',
      '/dev/null',
      '-i',
      this.keyPath,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${this.knownHostsPath}`,
      '-o',
      'ConnectTimeout=5',
    ];
  }

  /** `ssh` argv (program first) that runs `command` as `user` on `host` through its sshd. */
  sshArgv(host: LabHost | string, user: string, command?: string): string[] {
    const h = typeof host === 'string' ? this.host(host) : host;
    return [
      'ssh',
      ...this.sshOptions(),
      `${user}@${h.address}`,
      ...(command === undefined ? [] : [command]),
    ];
  }

  /** A value for GIT_SSH_COMMAND, so `git push dokku@ADDRESS:app` uses the lab key and known_hosts. */
  gitSshCommand(): string {
    return ['ssh', ...this.sshOptions()].join(' ');
  }

  /** The host called `name`; throws when there is none. */
  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h)
      throw new LabError(
        `lab ${this.instance} has no host ${name} (it has: ${this.hosts.map((x) => x.name).join(', ')})`,
      );
    return h;
  }

  /**
   * Stops host `name` as a power cut would: its init is killed, and with it
   * every process of the host at once (sshd, its sessions, datastores, apps).
   * Its folders stay, as a disk does. {@link startHost} brings it back.
   */
  async stopHost(name: string): Promise<void> {
    const h = this.stateOf(name);
    if (h.pid > 0 && pidStart(h.pid) === h.pidStart) {
      // SIGKILL to a PID namespace's init kills every process in that namespace.
      process.kill(h.pid, 'SIGKILL');
      for (let i = 0; i < 500 && pidStart(h.pid) === h.pidStart; i++) await sleep(10);
    }
    h.pid = 0;
    h.pidStart = '';
    await writeState(this.state);
  }

  /**
   * Boots a stopped host again: a new init, then sshd and the proxy (not the
   * emulator's install: the host is installed). Nothing else comes back by
   * itself (the emulator has no restart policy for datastores and apps).
   * Returns the host's new {@link LabHost}; `host(name)` answers it from now on.
   */
  async startHost(name: string): Promise<LabHost> {
    const h = this.stateOf(name);
    const old = this.host(name);
    await fsp.rm(path.join(h.dir, 'ready'), { force: true });
    await startInit(h);
    await writeState(this.state);
    const fresh = new LabHost(h, old.hostKeyFingerprint);
    this.hosts[this.hosts.indexOf(old)] = fresh;
    const emulatorBuilt = fs.existsSync(path.join(this.state.emulator ?? EMULATOR_DIR, 'main.js'));
    await startServices(fresh, emulatorBuilt, { install: false });
    return fresh;
  }

  private stateOf(name: string): HostState {
    const h = this.state.hosts.find((x) => x.name === name);
    if (!h) throw new LabError(`lab ${this.instance} has no host ${name}`);
    return h;
  }

  /** Stops this lab and removes everything it made (see {@link Lab.down}). */
  down(): Promise<void> {
    return Lab.down(this.instance);
  }

  /**
   * Brings up a lab instance, after removing what an earlier run of it left.
   * On failure everything made so far is removed again before the error is thrown.
   */
  static async up(opts: LabUpOptions): Promise<Lab> {
    const instance = opts.instance ?? 'default';
    const log = opts.log ?? (() => {});
    assertRoot();
    checkName('instance', instance);
    const specs = opts.hosts.map((h) => (typeof h === 'string' ? { name: h } : h));
    if (specs.length === 0) throw new LabError('a lab needs at least one host');
    if (specs.length > 200) throw new LabError('at most 200 hosts per lab');
    for (const s of specs) checkName('host', s.name);
    if (new Set(specs.map((s) => s.name)).size !== specs.length)
      throw new LabError('host names must differ');

    const idir = instanceDir(instance);
    const t0 = Date.now();
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${Date.now() - t0} ms`);
    // Under the lock: shared set-up, and a state.json that counts this instance
    // as running before a parallel `down` of another one can remove the emulator.
    const state = await withLock(async (): Promise<LabState> => {
      // nft for the bastion's firewall, only when a lab has one.
      await ensurePackages(log, opts.bastion ? ['nftables'] : []);
      assertTools();
      await ensureUsers();
      const emulator = await installEmulator(log);
      await mkdirRootOnly(LAB_ROOT);
      await fsp.mkdir(REGISTRY_DIR, { recursive: true });
      await mkdirRootOnly(idir);
      await fsp.mkdir(registryDir(instance), { recursive: true });
      const subnet = await allocateSubnet(instance);
      await cleanup(instance, log);
      if (opts.memory) {
        // Unmounted by `down` with every other mount below the instance folder.
        const hosts = path.join(idir, 'hosts');
        await fsp.mkdir(hosts, { recursive: true });
        await must('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=60%', 'ferry-lab', hosts]);
      }
      const fresh: LabState = {
        version: 1,
        instance,
        subnet,
        bridge: `ferrylab${subnet}`,
        controllerAddress: `10.251.${subnet}.1`,
        ...(emulator ? { emulator } : {}),
        hosts: specs.map((s, i) => ({
          name: s.name,
          address: `10.251.${subnet}.${11 + i}`,
          dokkuVersion: s.dokkuVersion ?? DEFAULT_DOKKU_VERSION,
          netns: `ferry.${instance}.${s.name}`,
          veth: `fl${subnet}h${i + 1}`,
          pid: 0,
          pidStart: '',
          dir: path.join(idir, 'hosts', s.name),
        })),
      };
      // Recorded before anything exists, so that a crash from here on is cleaned by `down` or the next `up`.
      await writeState(fresh);
      return fresh;
    });
    phase('set-up and clean-up');
    try {
      const pg = await findPostgres();
      const key = await ensureKey(idir, instance);
      const ids = await dokkuIds();
      await assertSubnetFree(state.subnet);
      const fingerprints = await Promise.all(
        state.hosts.map((h) => prepareHost(state, h, key, pg, ids)),
      );
      phase('host folders and keys');
      await makeNetwork(state);
      phase('network');
      await Promise.all(state.hosts.map((h) => startInit(h)));
      await writeState(state);
      phase('inits');
      const hosts = state.hosts.map((h, i) => new LabHost(h, fingerprints[i] as string));
      const emulatorBuilt =
        opts.emulator !== false &&
        fs.existsSync(path.join(state.emulator ?? EMULATOR_DIR, 'main.js'));
      if (!emulatorBuilt && opts.emulator !== false)
        log(
          'warning: the dokku emulator is not built (no dist/test/lab/emulator/main.js): skipped `dokku --lab-install` and the proxy',
        );
      await Promise.all(hosts.map((h) => startServices(h, emulatorBuilt)));
      phase(emulatorBuilt ? 'lab-install, sshd, proxy' : 'sshd');
      if (opts.bastion !== undefined) {
        const bastion = hosts.find((h) => h.name === opts.bastion);
        if (!bastion)
          throw new LabError(`the bastion ${opts.bastion} is not one of the lab's hosts`);
        await Promise.all(hosts.filter((h) => h !== bastion).map((h) => onlyThrough(h, bastion)));
        phase('firewall');
      }
      await writeClientFiles(state, hosts, key);
      log(`up ${instance}: ${phases.join(', ')} (cumulative)`);
      const lab = new Lab(state, hosts);
      if (instance === 'default') checkRepoInventory(lab, log);
      return lab;
    } catch (e) {
      await Lab.down(instance).catch(() => {});
      throw e;
    }
  }

  /** Attaches to a running instance (from its state.json), e.g. from another process. */
  static async open(instance = 'default'): Promise<Lab> {
    checkName('instance', instance);
    const state = await readState(instance);
    if (!state)
      throw new LabError(`lab ${instance} is not up`, { hint: 'Run `npm run lab -- up 3` first.' });
    const hosts = await Promise.all(
      state.hosts.map(
        async (h) =>
          new LabHost(
            h,
            await fingerprint(path.join(h.dir, 'ssh_host_ed25519_key.pub')).catch(() => ''),
          ),
      ),
    );
    return new Lab(state, hosts);
  }

  /**
   * Stops an instance and removes all it made on the system: processes,
   * network namespaces, veths, the bridge, mounts, the hosts' data and
   * state.json. The instance's keys stay, so known_hosts files and
   * inventories keep working across runs. Harmless when nothing is up.
   * The last instance down also removes /usr/bin/dokku and the emulator copy.
   */
  static async down(instance = 'default'): Promise<void> {
    assertRoot();
    checkName('instance', instance);
    const state = await readState(instance);
    await cleanup(instance, () => {});
    if (state) {
      await Promise.all(state.hosts.map((h) => removeHostData(h.dir)));
    }
    await fsp.rm(stateFile(instance), { force: true });
    await withLock(async () => {
      if ((await runningInstances()).length === 0) await uninstallEmulator();
    });
  }

  /** Every instance that has a state.json, and whether its hosts are alive. */
  static async status(): Promise<InstanceStatus[]> {
    const out: InstanceStatus[] = [];
    for (const instance of await runningInstances()) {
      const state = await readState(instance);
      if (!state) continue;
      const hosts = await Promise.all(
        state.hosts.map(async (h) => ({
          name: h.name,
          address: h.address,
          pid: h.pid,
          alive: h.pid > 0 && pidStart(h.pid) === h.pidStart,
          sshd: await portOpen(h.address, 22, 300),
        })),
      );
      out.push({ instance, subnet: `10.251.${state.subnet}.0/24`, hosts });
    }
    return out;
  }
}

/** Host names for `up N`: `old`, `new`, `scratch`, then `h4`... */
export function defaultHostNames(n: number): string[] {
  if (!Number.isInteger(n) || n < 1 || n > DEFAULT_HOST_NAMES.length) {
    throw new LabError(`the number of hosts must be 1 to ${DEFAULT_HOST_NAMES.length}`);
  }
  return DEFAULT_HOST_NAMES.slice(0, n);
}

/** Why the lab cannot run here (not root, not Linux), or undefined when it can. */
export function labUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `need Linux (this is ${process.platform})`;
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) return `need root (uid ${uid})`;
  return undefined;
}

// ---------------------------------------------------------------- internals

/** The useful part of a failed command's output: no JavaScript stack frames, at most 10 lines. */
function summarize(text: string): string {
  const lines = text.split('\n').filter((l) => !/^\s+at /.test(l));
  return (lines.length > 10 ? [...lines.slice(0, 5), '...', ...lines.slice(-4)] : lines).join(
    '\n    ',
  );
}

function assertRoot(): void {
  const why = labUnavailableReason();
  if (why)
    throw new LabError(`the lab cannot run: ${why}`, {
      hint: 'Run it as root, e.g. `sudo npm run lab -- up 3`.',
    });
}

function checkName(what: string, name: string): void {
  if (!NAME_RE.test(name))
    throw new LabError(
      `bad ${what} name ${JSON.stringify(name)}: use a-z, 0-9 and -, starting with a letter, at most 31 characters`,
    );
  // Folders of LAB_ROOT that are not instances.
  if (what === 'instance' && ['registry', 'emulator', 'docker-shim'].includes(name))
    throw new LabError(
      `bad instance name ${JSON.stringify(name)}: the lab keeps its ${name} there`,
    );
}

function instanceDir(instance: string): string {
  return path.join(LAB_ROOT, instance);
}

/** The instance's registry on the controller; its hosts see it at {@link REGISTRY_DIR}. */
export function registryDir(instance: string): string {
  return path.join(instanceDir(instance), 'registry');
}

function stateFile(instance: string): string {
  return path.join(instanceDir(instance), 'state.json');
}

async function readState(instance: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(stateFile(instance), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as LabState;
  } catch {
    throw new LabError(
      `${stateFile(instance)} is not valid JSON; remove it, then clean up by hand (ip netns, ip link)`,
    );
  }
}

async function writeState(state: LabState): Promise<void> {
  const file = stateFile(state.instance);
  await fsp.writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await fsp.rename(`${file}.tmp`, file);
}

async function runningInstances(): Promise<string[]> {
  const names = await fsp.readdir(LAB_ROOT).catch(() => [] as string[]);
  return names.filter((n) => NAME_RE.test(n) && fs.existsSync(stateFile(n))).sort();
}

async function mkdirRootOnly(dir: string): Promise<void> {
  // Root-owned and not group/world writable: sshd's StrictModes checks the parents of the key files.
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  await fsp.chmod(dir, 0o755);
  await fsp.chown(dir, 0, 0);
}

/**
 * A machine-wide lock (a directory holding the owner's PID), so that labs
 * brought up in parallel do not race on apt, users, subnets or the emulator copy.
 */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  await fsp.mkdir(LAB_ROOT, { recursive: true });
  const lock = path.join(LAB_ROOT, '.lock');
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      await fsp.mkdir(lock);
      await fsp.writeFile(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(await fsp.readFile(path.join(lock, 'pid'), 'utf8').catch(() => ''));
      if (owner > 0 && !fs.existsSync(`/proc/${owner}`)) {
        await fsp.rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new LabError(
          `${lock} is held by PID ${owner || '?'}; remove it if that process is gone`,
        );
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lock, { recursive: true, force: true });
  }
}

async function ensurePackages(
  log: (l: string) => void,
  extra: readonly string[] = [],
): Promise<void> {
  const wanted = [...LAB_PACKAGES, ...extra];
  const r = await run('dpkg-query', [
    '-W',
    // dpkg-query's own format fields, not a template.
    `-f=\${Package} \${db:Status-Status}\n`,
    ...wanted,
  ]).catch(() => undefined);
  if (!r)
    throw new LabError(
      'dpkg-query not found: the lab needs Debian (or install its packages by hand)',
    );
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      .map((l) => l.split(' ')[0]),
  );
  const missing = wanted.filter((p) => !installed.has(p));
  if (missing.length === 0) return;
  log(`installing ${missing.join(', ')} (apt-get)`);
  // Keep the packages' services (sshd on *:22, the stock PostgreSQL cluster) from starting on the controller.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !fs.existsSync(policy);
  if (ownPolicy) await fsp.writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    await must('apt-get', ['update']);
    await must('apt-get', ['install', '-y', '--no-install-recommends', ...missing]);
  } finally {
    if (ownPolicy) await fsp.rm(policy, { force: true });
  }
}

/** Programs the lab runs; all come with its packages or with Debian's essential set. */
const LAB_TOOLS = [
  'ip',
  'unshare',
  'nsenter',
  'mount',
  'hostname',
  'sshd',
  'ssh-keygen',
  'useradd',
  'getent',
];

function assertTools(): void {
  const dirs = (CLEAN_ENV.PATH ?? '').split(':');
  const missing = LAB_TOOLS.filter((t) => !dirs.some((d) => fs.existsSync(path.join(d, t))));
  if (missing.length) {
    throw new LabError(`the lab needs ${missing.join(', ')}, not found in ${CLEAN_ENV.PATH}`, {
      hint: 'Install iproute2, util-linux, openssh-server, passwd (Debian packages).',
    });
  }
}

async function ensureUsers(): Promise<void> {
  if ((await run('getent', ['passwd', 'dokku'])).code !== 0) {
    await must('useradd', [
      '--home-dir',
      '/home/dokku',
      '--no-create-home',
      '--shell',
      '/bin/bash',
      '--user-group',
      'dokku',
    ]);
  }
  // With UsePAM no, sshd refuses any account whose password is locked ("!"), even for key logins.
  const shadow = (await run('getent', ['shadow', 'dokku'])).stdout.split(':')[1] ?? '';
  if (shadow.startsWith('!')) await must('usermod', ['-p', '*', 'dokku']);
  if ((await run('getent', ['passwd', 'postgres'])).code !== 0) {
    throw new LabError('user postgres is missing although postgresql is installed', {
      hint: 'Reinstall the postgresql package.',
    });
  }
  for (const [, mnt] of HOST_DATA) await fsp.mkdir(mnt, { recursive: true });
}

async function dokkuIds(): Promise<{ uid: number; gid: number }> {
  const f = (await must('getent', ['passwd', 'dokku'])).split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function repoRoot(): string {
  // This file runs as dist/test/lab/lab.js.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
}

async function treeHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = (await fsp.readdir(path.join(dir, rel), { withFileTypes: true })).sort(
      (a, b) => (a.name < b.name ? -1 : 1),
    );
    for (const e of entries) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) await walk(r);
      else if (e.isFile())
        h.update(`${r}\0`)
          .update(await fsp.readFile(path.join(dir, r)))
          .update('\0');
    }
  };
  await walk('');
  return h.digest('hex').slice(0, 16);
}

/**
 * Copies dist/test/lab/emulator/ to a content-addressed folder and points
 * /var/lib/ferry-lab/emulator at it with an atomic symlink swap, so that hosts
 * of another instance never see a half-written copy. Installs /usr/bin/dokku.
 */
async function installEmulator(log: (l: string) => void): Promise<string | undefined> {
  const src = path.join(repoRoot(), 'dist/test/lab/emulator');
  if (fs.existsSync(DOKKU_WRAPPER)) {
    const text = await fsp.readFile(DOKKU_WRAPPER, 'utf8').catch(() => '');
    if (!text.includes(WRAPPER_MARK)) {
      throw new LabError(
        `${DOKKU_WRAPPER} exists and is not the lab's wrapper (a real Dokku?); the lab will not replace it`,
      );
    }
  }
  const wrapper = [
    '#!/bin/bash',
    WRAPPER_MARK,
    '# Runs the Dokku CLI emulator, and only inside a lab host (see test/lab/lab.ts).',
    '# Each host runs the emulator copy its lab was brought up with (lab.json "emulator"),',
    '# so labs of different checkouts can run side by side.',
    'if [[ ! -f /var/lib/docker/lab.json ]]; then',
    '  echo " !     dokku: not inside a ferry lab host" >&2',
    '  exit 1',
    'fi',
    `emu=$(sed -n 's/^ *"emulator": *"\\([^"]*\\)".*/\\1/p' /var/lib/docker/lab.json)`,
    `exec ${process.execPath} "\${emu:-${EMULATOR_DIR}}/main.js" "$@"`,
    '',
  ].join('\n');
  await fsp.writeFile(`${DOKKU_WRAPPER}.lab-tmp`, wrapper, { mode: 0o755 });
  await fsp.rename(`${DOKKU_WRAPPER}.lab-tmp`, DOKKU_WRAPPER);
  const shim = wrapper.replace('main.js', 'docker.js').replace('dokku:', 'docker:');
  await fsp.writeFile(`${DOCKER_SHIM}.lab-tmp`, shim, { mode: 0o755 });
  await fsp.rename(`${DOCKER_SHIM}.lab-tmp`, DOCKER_SHIM);
  if (!dockerOnPath()) await fsp.writeFile(DOCKER_WRAPPER, shim, { mode: 0o755 });

  if (!fs.existsSync(path.join(src, 'main.js'))) return undefined;
  const hash = await treeHash(src);
  const target = `emulator.${hash}`;
  const dest = path.join(LAB_ROOT, target);
  const current = await fsp.readlink(EMULATOR_DIR).catch(() => undefined);
  if (current === target && fs.existsSync(dest)) return dest;
  if (!fs.existsSync(dest)) {
    await fsp.rm(`${dest}.tmp`, { recursive: true, force: true });
    await fsp.cp(src, `${dest}.tmp`, { recursive: true });
    // The copy has no package.json above it, and main.js is an ES module.
    await fsp.writeFile(path.join(`${dest}.tmp`, 'package.json'), '{"type":"module"}\n');
    await fsp.rename(`${dest}.tmp`, dest);
  }
  const st = await fsp.lstat(EMULATOR_DIR).catch(() => undefined);
  if (st && !st.isSymbolicLink()) await fsp.rm(EMULATOR_DIR, { recursive: true, force: true });
  await fsp.rm(`${EMULATOR_DIR}.lab-tmp`, { force: true });
  await fsp.symlink(target, `${EMULATOR_DIR}.lab-tmp`);
  await fsp.rename(`${EMULATOR_DIR}.lab-tmp`, EMULATOR_DIR);
  log(`emulator ${hash} installed in ${EMULATOR_DIR}`);
  // Older copies go once nothing can still be loading from them (a host's proxy loads
  // at start) and no running instance was brought up with them.
  const pinned = new Set<string>();
  for (const i of await runningInstances()) {
    const e = (await readState(i).catch(() => undefined))?.emulator;
    if (e) pinned.add(path.basename(e));
  }
  for (const n of await fsp.readdir(LAB_ROOT)) {
    if (!/^emulator\.[0-9a-f]{16}$/.test(n) || n === target || pinned.has(n)) continue;
    const st = await fsp.stat(path.join(LAB_ROOT, n)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 3_600_000)
      await fsp.rm(path.join(LAB_ROOT, n), { recursive: true, force: true });
  }
  return dest;
}

/** A `docker` on the controller's PATH that is not the lab's own wrapper, if any. */
function dockerOnPath(): string | undefined {
  for (const dir of [
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ]) {
    const p = path.join(dir, 'docker');
    if (!fs.existsSync(p)) continue;
    const head = fs.readFileSync(p).subarray(0, 200).toString('latin1');
    if (!head.includes(WRAPPER_MARK)) return p;
  }
  return undefined;
}

async function uninstallEmulator(): Promise<void> {
  for (const w of [DOKKU_WRAPPER, DOCKER_WRAPPER]) {
    const text = await fsp.readFile(w, 'utf8').catch(() => '');
    if (text.includes(WRAPPER_MARK)) await fsp.rm(w, { force: true });
  }
  await fsp.rm(DOCKER_SHIM, { force: true });
  for (const n of await fsp.readdir(LAB_ROOT).catch(() => [] as string[])) {
    if (n === 'emulator' || n.startsWith('emulator.'))
      await fsp.rm(path.join(LAB_ROOT, n), { recursive: true, force: true });
  }
}

async function allocateSubnet(instance: string): Promise<number> {
  if (instance === 'default') return 0;
  const file = path.join(instanceDir(instance), 'subnet');
  const mine = Number(await fsp.readFile(file, 'utf8').catch(() => 'NaN'));
  if (Number.isInteger(mine) && mine > 0) return mine;
  const used = new Set<number>([0]);
  for (const n of await fsp.readdir(LAB_ROOT).catch(() => [] as string[])) {
    const v = Number(
      await fsp.readFile(path.join(LAB_ROOT, n, 'subnet'), 'utf8').catch(() => 'NaN'),
    );
    if (Number.isInteger(v)) used.add(v);
  }
  const taken = await addressesInUse();
  const free = (n: number) => !taken.some((a) => a.startsWith(`10.251.${n}.`));
  for (let n = 1; n < 255; n++) {
    if (used.has(n) || !free(n)) continue;
    await fsp.writeFile(file, `${n}\n`);
    return n;
  }
  // All 254 are remembered (an instance keeps its subnet after `down`, so the
  // inventories and known_hosts naming its addresses keep working): take one from
  // an instance that is down, which gets another at its next `up`.
  const up = new Set(await runningInstances());
  for (const n of await fsp.readdir(LAB_ROOT).catch(() => [] as string[])) {
    if (up.has(n) || n === instance) continue;
    const other = path.join(LAB_ROOT, n, 'subnet');
    const v = Number(await fsp.readFile(other, 'utf8').catch(() => 'NaN'));
    if (!Number.isInteger(v) || v <= 0 || !free(v)) continue;
    await fsp.rm(other, { force: true });
    await fsp.writeFile(file, `${v}\n`);
    return v;
  }
  throw new LabError(
    'no free lab subnet left in 10.251.1-254.0/24; `down` and remove unused instances in /var/lib/ferry-lab',
  );
}

async function addressesInUse(): Promise<string[]> {
  const out = await must('ip', ['-o', '-4', 'addr', 'show']);
  return [...out.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1] as string);
}

async function assertSubnetFree(subnet: number): Promise<void> {
  const out = await must('ip', ['-o', '-4', 'addr', 'show']);
  for (const line of out.split('\n')) {
    const m = line.match(/^\d+:\s+(\S+)\s+inet (10\.251\.(\d+)\.\d+)\//);
    if (m && Number(m[3]) === subnet) {
      throw new LabError(`lab subnet 10.251.${subnet}.0/24 is taken: ${m[1]} has ${m[2]}`, {
        hint: 'Remove that address or bridge, or use another instance.',
      });
    }
  }
  const links = await must('ip', ['-o', 'link', 'show']);
  if (new RegExp(`^\\d+: ferrylab${subnet}[:@]`, 'm').test(links)) {
    throw new LabError(`bridge ferrylab${subnet} exists and is not this lab's`, {
      hint: `Remove it: ip link del ferrylab${subnet}`,
    });
  }
}

async function findPostgres(): Promise<{ bin: string; version: string }> {
  const base = '/usr/lib/postgresql';
  const versions = (await fsp.readdir(base).catch(() => [] as string[]))
    .filter((v) => fs.existsSync(path.join(base, v, 'bin/postgres')))
    .sort((a, b) => Number(b) - Number(a));
  const major = versions[0];
  if (!major)
    throw new LabError(`no PostgreSQL server under ${base}/*/bin`, {
      hint: 'apt-get install postgresql',
    });
  const bin = path.join(base, major, 'bin');
  const out = await must(path.join(bin, 'postgres'), ['--version']);
  const m = out.match(/PostgreSQL\)\s+([0-9][0-9.]*)/);
  return { bin, version: m?.[1] ?? major };
}

/**
 * The other datastore servers the emulator runs (plugins/mysql.ts, redis.ts,
 * memcached.ts): binary and version, for lab.json. A missing one is left
 * out; its plugin then fails to start services with a line in the container log.
 */
let datastoreServers: Promise<Record<string, string>> | undefined;
function findDatastoreServers(): Promise<Record<string, string>> {
  datastoreServers ??= (async () => {
    const found: Record<string, string> = {};
    const servers: [string, string, string[], RegExp][] = [
      ['mysql', '/usr/sbin/mariadbd', ['--version'], /Ver\s+([0-9][0-9.]*)/],
      ['redis', '/usr/bin/redis-server', ['--version'], /v=([0-9][0-9.]*)/],
      ['memcached', '/usr/bin/memcached', ['-V'], /memcached\s+([0-9][0-9.]*)/],
    ];
    for (const [name, bin, args, re] of servers) {
      if (!fs.existsSync(bin)) continue;
      const r = await run(bin, args);
      found[`${name}Bin`] = bin;
      found[`${name}Version`] = re.exec(r.stdout)?.[1] ?? '';
    }
    return found;
  })();
  return datastoreServers;
}

interface LabKey {
  pub: string;
  fingerprint: string;
}

/** An ed25519 key pair at `file`, made (again) unless both halves are there. */
async function ensureKeyPair(file: string, comment: string): Promise<void> {
  if (fs.existsSync(file) && fs.existsSync(`${file}.pub`)) return;
  await fsp.rm(file, { force: true });
  await fsp.rm(`${file}.pub`, { force: true });
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

async function ensureKey(idir: string, instance: string): Promise<LabKey> {
  const key = path.join(idir, 'id_ed25519');
  await ensureKeyPair(key, `ferry-lab-${instance}`);
  await fsp.chmod(key, 0o600);
  return {
    pub: await fsp.readFile(`${key}.pub`, 'utf8'),
    fingerprint: await fingerprint(`${key}.pub`),
  };
}

async function fingerprint(pubFile: string): Promise<string> {
  const out = await must('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile]);
  const fp = out.split(' ')[1];
  if (!fp?.startsWith('SHA256:')) throw new LabError(`cannot read the fingerprint of ${pubFile}`);
  return fp;
}

/** The gid of Debian's `crontab` group (root's when the cron package is not there yet). */
function crontabGid(): number {
  const line = fs
    .readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('crontab:'));
  return Number(line?.split(':')[2] ?? 0) || 0;
}

async function removeHostData(dir: string): Promise<void> {
  for (const [sub] of HOST_DATA)
    await fsp.rm(path.join(dir, sub), { recursive: true, force: true });
  for (const f of ['ready', 'sshd.pid']) await fsp.rm(path.join(dir, f), { force: true });
}

/** Makes the host's folders, host key, sshd_config, lab.json and dokku's authorized_keys; returns the host key fingerprint. */
async function prepareHost(
  state: LabState,
  h: HostState,
  key: LabKey,
  pg: { bin: string; version: string },
  ids: { uid: number; gid: number },
): Promise<string> {
  await fsp.mkdir(h.dir, { recursive: true, mode: 0o700 });
  await removeHostData(h.dir);
  const d = (sub: string) => path.join(h.dir, sub);
  await fsp.mkdir(d('home-dokku'), { mode: 0o755 });
  await fsp.mkdir(d('lib-dokku'), { mode: 0o755 });
  await fsp.mkdir(d('docker'), { mode: 0o710 });
  await fsp.mkdir(d('tmp'));
  await fsp.chmod(d('tmp'), 0o1777);
  await fsp.mkdir(d('root'), { mode: 0o700 });
  // Root's keys are this host's own file, in its own /root, as on a real server: a key
  // added to one host (ferry's pull key) is not accepted by the others.
  await fsp.mkdir(path.join(d('root'), '.ssh'), { mode: 0o700 });
  await fsp.writeFile(path.join(d('root'), '.ssh', 'authorized_keys'), key.pub, { mode: 0o600 });
  await fsp.mkdir(d('ferry'), { mode: 0o755 });
  await fsp.mkdir(d('cron'), { mode: 0o755 });
  // crontab(1) is setgid crontab and wants its spool as Debian makes it: root:crontab 1730.
  await fsp.mkdir(d('crontabs'));
  await fsp.chmod(d('crontabs'), 0o1730);
  await fsp.chown(d('crontabs'), 0, crontabGid());
  await fsp.chmod(d('home-dokku'), 0o755);
  await fsp.chmod(d('lib-dokku'), 0o755);
  await fsp.chown(d('home-dokku'), ids.uid, ids.gid);
  await fsp.chown(d('lib-dokku'), ids.uid, ids.gid);

  // The dokku user logs in only through sshcommand's forced command (reference §5.1).
  const ssh = path.join(d('home-dokku'), '.ssh');
  await fsp.mkdir(ssh, { mode: 0o700 });
  const line = `command="FINGERPRINT=${key.fingerprint} NAME=\\"admin\\" \`cat /home/dokku/.sshcommand\` $SSH_ORIGINAL_COMMAND",no-agent-forwarding,no-user-rc,no-X11-forwarding,no-port-forwarding ${key.pub.trim()}\n`;
  await fsp.writeFile(path.join(ssh, 'authorized_keys'), line, { mode: 0o700 });
  await fsp.chown(ssh, ids.uid, ids.gid);
  await fsp.chown(path.join(ssh, 'authorized_keys'), ids.uid, ids.gid);
  // As `sshcommand create` leaves it; without it the forced command would run the client's command as is.
  await fsp.writeFile(path.join(d('home-dokku'), '.sshcommand'), '/usr/bin/dokku\n');
  await fsp.chown(path.join(d('home-dokku'), '.sshcommand'), ids.uid, ids.gid);

  const labJson = {
    host: h.name,
    address: h.address,
    registry: REGISTRY_DIR,
    /** The same folder as the controller sees it (the seed publishes there). */
    registryHere: registryDir(state.instance),
    pgBin: pg.bin,
    pgVersion: pg.version,
    ...(await findDatastoreServers()),
    ...(state.emulator ? { emulator: state.emulator } : {}),
  };
  await fsp.writeFile(path.join(d('docker'), 'lab.json'), `${JSON.stringify(labJson, null, 2)}\n`);

  const hostKey = d('ssh_host_ed25519_key');
  await ensureKeyPair(hostKey, `${h.name}.${state.instance}.ferry-lab`);
  const config = [
    `# sshd of lab host ${h.name} (instance ${state.instance}); written by test/lab/lab.ts`,
    `ListenAddress ${h.address}:22`,
    `HostKey ${hostKey}`,
    `PidFile ${d('sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes yes',
    'UseDNS no',
    'PrintMotd no',
    'X11Forwarding no',
    'PermitUserEnvironment no',
    // No AcceptEnv line: no client variable is accepted. No Subsystem line: no sftp, the tool must not need it.
    // One connection per host per run carries many channels.
    'MaxSessions 64',
    'MaxStartups 64:30:256',
    'AuthorizedKeysFile .ssh/authorized_keys',
    '',
  ].join('\n');
  await fsp.writeFile(d('sshd_config'), config, { mode: 0o600 });
  await fsp.writeFile(d('init.sh'), INIT_SCRIPT, { mode: 0o700 });
  return fingerprint(`${hostKey}.pub`);
}

/** PID 1 of a host: network, bind mounts, hostname, then it waits and reaps orphans. */
const INIT_SCRIPT = `#!/bin/bash
# PID 1 of a dokku-ferry lab host (written by test/lab/lab.ts).
# Args: HOST_DIR NAME ADDRESS [DOCKER_SHIM DOCKER_PATH]. bash reaps every child in its SIGCHLD handler,
# so orphans reparented here (daemons, sshd sessions) do not stay zombies.
set -u
H=$1 NAME=$2 ADDR=$3
fail() { echo "lab init \${NAME}: $*" >&2; exit 1; }
ip link set lo up || fail "lo up failed"
# replace, not add: a restarted host finds its address still on eth0 (the netns outlives init)
ip addr replace "$ADDR/24" dev eth0 && ip link set eth0 up || fail "eth0 setup failed"
# Only the bridge's IPv4 subnet: no IPv6 link-local traffic either.
for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 >"$f"; done 2>/dev/null
# This mount namespace copied the /run/netns mounts of every lab netns that
# existed: drop them, or they would keep those netns alive after their \`down\`.
awk '$0 ~ / - nsfs / {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
mount --bind "$H/home-dokku" /home/dokku || fail "bind mount /home/dokku failed"
mount --bind "$H/lib-dokku" /var/lib/dokku || fail "bind mount /var/lib/dokku failed"
mount --bind "$H/tmp" /tmp || fail "bind mount /tmp failed"
mount --bind "$H/docker" /var/lib/docker || fail "bind mount /var/lib/docker failed"
mount --bind "$H/root" /root || fail "bind mount /root failed"
mount --bind "$H/ferry" /var/lib/dokku-ferry || fail "bind mount /var/lib/dokku-ferry failed"
mount --bind "$H/cron" /etc/cron.d || fail "bind mount /etc/cron.d failed"
mount --bind "$H/crontabs" /var/spool/cron/crontabs || fail "bind mount /var/spool/cron/crontabs failed"
# The instance's own registry (HOST_DIR is <instance>/hosts/<name>).
mount --bind "$H/../../registry" ${REGISTRY_DIR} || fail "bind mount of the registry failed"
# The host's docker is the lab engine's CLI, not the controller's client.
if [ -n "\${5:-}" ] && [ -f "\${4:-}" ]; then
  mount --bind "$4" "$5" || fail "bind mount of the docker CLI failed"
fi
hostname "$NAME" || fail "hostname failed"
mkdir -p /run/sshd && chmod 0755 /run/sshd
cd /
echo ready >"$H/ready"
while :; do
  sleep 86400 &
  wait $!
done
`;

async function makeNetwork(state: LabState): Promise<void> {
  const lines = [
    `link add ${state.bridge} type bridge`,
    `addr add ${state.controllerAddress}/24 dev ${state.bridge}`,
    `link set ${state.bridge} up`,
  ];
  for (const h of state.hosts) {
    lines.push(`netns add ${h.netns}`);
    lines.push(`link add ${h.veth} type veth peer name eth0 netns ${h.netns}`);
    lines.push(`link set ${h.veth} master ${state.bridge} up`);
  }
  await fsp
    .writeFile(`/proc/sys/net/ipv6/conf/default/disable_ipv6`, '1')
    .catch(() => {})
    .then(() => undefined);
  await must('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n` });
  for (const n of [state.bridge, ...state.hosts.map((h) => h.veth)]) {
    await fsp.writeFile(`/proc/sys/net/ipv6/conf/${n}/disable_ipv6`, '1').catch(() => {});
  }
}

/** Starts the host's init in new mount, UTS, IPC and PID namespaces inside its netns; records its PID. */
async function startInit(h: HostState): Promise<void> {
  const logFile = path.join(h.dir, 'init.log');
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${h.netns}`,
      'unshare',
      '--mount',
      '--uts',
      '--ipc',
      '--pid',
      '--fork',
      '--mount-proc',
      '--propagation',
      'private',
      'bash',
      path.join(h.dir, 'init.sh'),
      h.dir,
      h.name,
      h.address,
      DOCKER_SHIM,
      dockerOnPath() ?? '',
    ],
    { detached: true, stdio: ['ignore', fd, fd], env: CLEAN_ENV },
  );
  fs.closeSync(fd);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  child.on('error', () => {
    exited = -1;
  });
  child.unref();
  const deadline = Date.now() + 15_000;
  const ready = path.join(h.dir, 'ready');
  while (!fs.existsSync(ready)) {
    if (exited !== undefined || Date.now() > deadline) {
      const said = (await fsp.readFile(logFile, 'utf8').catch(() => '')).trim();
      throw new LabError(`lab host ${h.name} did not start${said ? `: ${said}` : ''}`, {
        hint: `See ${logFile}`,
      });
    }
    await sleep(10);
  }
  const parent = child.pid;
  const pid = parent === undefined ? undefined : childOf(parent);
  if (pid === undefined) throw new LabError(`lab host ${h.name}: cannot find its init process`);
  h.pid = pid;
  h.pidStart = pidStart(pid) ?? '';
}

function childOf(pid: number): number | undefined {
  const text = (() => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    } catch {
      return '';
    }
  })();
  const first = Number(text.trim().split(/\s+/)[0]);
  return Number.isInteger(first) && first > 0 ? first : undefined;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), or undefined when PID does not exist. */
function pidStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Runs `dokku --lab-install` (unless told not to), then sshd and the proxy, each a child of the host's init. */
async function startServices(
  h: LabHost,
  emulatorBuilt: boolean,
  opts: { install?: boolean } = {},
): Promise<void> {
  const cfg = path.join(h.dir, 'sshd_config');
  if (emulatorBuilt && opts.install !== false)
    await h.must(`dokku --lab-install ${h.dokkuVersion}`);
  await h.must(`/usr/sbin/sshd -t -f ${cfg}`);
  // Backgrounded and detached so that nsenter returns; init inherits them as orphans.
  await h.must(
    `setsid /usr/sbin/sshd -D -f ${cfg} -E ${h.dir}/sshd.log </dev/null >/dev/null 2>&1 &`,
  );
  if (emulatorBuilt) {
    await h.must(`setsid /usr/bin/dokku --lab-proxy </dev/null >>${h.dir}/proxy.log 2>&1 &`);
  }
  if (!(await portOpen(h.address, 22, 10_000))) {
    const said = (await fsp.readFile(path.join(h.dir, 'sshd.log'), 'utf8').catch(() => '')).trim();
    throw new LabError(
      `sshd of lab host ${h.name} is not listening on ${h.address}:22${said ? `: ${said}` : ''}`,
    );
  }
}

/** Lets only `bastion` (and the host itself) connect to `h`'s sshd. */
async function onlyThrough(h: LabHost, bastion: LabHost): Promise<void> {
  const rules = `table inet ferrylab {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 22 iifname "lo" accept
    tcp dport 22 ip saddr ${bastion.address} accept
    tcp dport 22 reject with tcp reset
  }
}
`;
  await h.must('nft -f -', { input: rules });
}

/** Whether a TCP connect to address:port succeeds within `ms` (retrying). */
async function portOpen(address: string, port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: address, port, timeout: 500 });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok || Date.now() > deadline) return ok;
    await sleep(20);
  }
}

async function writeClientFiles(state: LabState, hosts: LabHost[], key: LabKey): Promise<void> {
  const idir = instanceDir(state.instance);
  const known = await Promise.all(
    hosts.map(async (h) => {
      const pub = (await fsp.readFile(path.join(h.dir, 'ssh_host_ed25519_key.pub'), 'utf8'))
        .trim()
        .split(' ');
      return `${h.address} ${pub[0]} ${pub[1]}\n`;
    }),
  );
  await fsp.writeFile(path.join(idir, 'known_hosts'), known.join(''), { mode: 0o644 });
  void key;
  await fsp.writeFile(path.join(idir, 'inventory.yml'), stringifyYaml(inventoryFor(state)));
}

/** The inventory (docs/contracts.md) that describes a lab. */
export function inventoryFor(state: Pick<LabState, 'instance' | 'hosts'>): {
  version: 1;
  defaults: { user: string; identity: string; known_hosts: string };
  hosts: Record<string, { address: string }>;
} {
  const idir = instanceDir(state.instance);
  return {
    version: 1,
    defaults: {
      user: 'root',
      identity: path.join(idir, 'id_ed25519'),
      known_hosts: path.join(idir, 'known_hosts'),
    },
    hosts: Object.fromEntries(state.hosts.map((h) => [h.name, { address: h.address }])),
  };
}

/** Warns when the repo's inventory/lab.yml (owned by the input side) disagrees with the default lab. */
function checkRepoInventory(lab: Lab, log: (l: string) => void): void {
  const file = path.join(repoRoot(), 'inventory/lab.yml');
  let doc: unknown;
  try {
    doc = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  const want = inventoryFor(lab.state);
  const d = doc as {
    defaults?: Record<string, unknown>;
    hosts?: Record<string, { address?: unknown }>;
  } | null;
  const problems: string[] = [];
  for (const k of ['user', 'identity', 'known_hosts'] as const) {
    if (d?.defaults?.[k] !== undefined && d.defaults[k] !== want.defaults[k])
      problems.push(`defaults.${k}`);
  }
  for (const [name, h] of Object.entries(want.hosts)) {
    const got = d?.hosts?.[name]?.address;
    if (got !== undefined && got !== h.address) problems.push(`hosts.${name}.address`);
  }
  if (problems.length)
    log(`warning: ${file} disagrees with the default lab at ${problems.join(', ')}`);
}

/**
 * Removes everything of an instance from the system: its hosts' processes
 * (by recorded PID, checked against its start time, and by netns), its
 * network namespaces, veths and bridge, and any mount under its folder.
 */
async function cleanup(instance: string, log: (l: string) => void): Promise<void> {
  const state = await readState(instance);
  for (const h of state?.hosts ?? []) {
    if (h.pid > 0 && pidStart(h.pid) === h.pidStart) {
      try {
        // SIGKILL to a PID namespace's init kills every process in that namespace.
        process.kill(h.pid, 'SIGKILL');
      } catch {}
    }
  }
  const prefix = `ferry.${instance}.`;
  const nsList = (await run('ip', ['netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix) && NAME_RE.test(n.slice(prefix.length)));
  for (const ns of nsList) {
    for (let i = 0; i < 100; i++) {
      const pids = (await run('ip', ['netns', 'pids', ns])).stdout
        .split('\n')
        .filter((p) => /^\d+$/.test(p));
      if (pids.length === 0) break;
      for (const p of pids) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {}
      }
      await sleep(20);
    }
    await run('ip', ['netns', 'del', ns]);
  }
  if (nsList.length) log(`removed ${nsList.length} network namespace(s) of lab ${instance}`);
  const subnet = state?.subnet ?? (await readSubnet(instance));
  if (subnet !== undefined) {
    const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
    const ours = [...links.matchAll(/^\d+: ([^:@\s]+)[:@]/gm)]
      .map((m) => m[1] as string)
      .filter((n) => new RegExp(`^fl${subnet}h\\d+$`).test(n) || n === `ferrylab${subnet}`);
    // Veths first (they normally went with their netns), then the bridge.
    for (const n of ours.sort(
      (a, b) => (a.startsWith('ferrylab') ? 1 : 0) - (b.startsWith('ferrylab') ? 1 : 0),
    )) {
      await run('ip', ['link', 'del', n]);
    }
  }
  const idir = `${instanceDir(instance)}/`;
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(idir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]);
}

async function readSubnet(instance: string): Promise<number | undefined> {
  if (instance === 'default') return 0;
  const v = Number(
    await fsp.readFile(path.join(instanceDir(instance), 'subnet'), 'utf8').catch(() => 'NaN'),
  );
  return Number.isInteger(v) ? v : undefined;
}
