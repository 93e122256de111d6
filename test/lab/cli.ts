/**
 * `npm run lab -- <command>`: bring the lab up and down by hand.
 *
 *   up [N | NAME[@VERSION]...]   bring up N hosts (default 3: old, new, scratch);
 *                                --no-emulator skips `dokku --lab-install` and the proxy
 *   down                         stop the lab and remove what it made
 *   status                       list running instances and their hosts
 *   seed HOST                    put the sample apps and services on HOST
 *   exec HOST -- CMD...          run CMD as root inside HOST (no SSH)
 *   dokku-tests [FILE...]        run Dokku's own bats unit tests against the emulator
 *
 * Every command takes `--instance NAME` (default `default`).
 */
import { spawn } from 'node:child_process';
import { defaultHostNames, type HostSpec, Lab, type LabHost, nsenterArgv } from './lab.js';
import { CLEAN_ENV, LabError } from './sys.js';

const USAGE = `usage: npm run lab -- <command> [--instance NAME]
  up [N | NAME[@DOKKU_VERSION]...]   bring up N hosts (default 3: old, new, scratch)
     [--no-emulator]                 skip the emulator (dokku --lab-install, proxy)
  down                               stop the lab and remove what it made
  status                             list running lab instances
  seed HOST                          seed HOST with the sample apps and services
  exec HOST -- CMD...                run CMD as root inside HOST (no SSH)
  shape HOST RATE|off                shape HOST's outgoing link (tc tbf, e.g. 100mbit), or not

  dokku-tests [--release X] [--dokku-src DIR] [--keep] [FILE...]
                                     run Dokku's bats unit tests (tests/unit) in a lab host`;

async function main(argv: string[]): Promise<number> {
  let instance = 'default';
  let emulator = true;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--instance') {
      instance = argv[++i] ?? '';
      if (!instance) throw new LabError('--instance needs a name');
    } else if (a.startsWith('--instance=')) {
      instance = a.slice('--instance='.length);
    } else if (a === '--no-emulator') {
      emulator = false;
    } else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      return 0;
    } else {
      rest.push(a);
    }
  }
  const [cmd, ...args] = rest;
  switch (cmd) {
    case 'up':
      return up(instance, args, emulator);
    case 'down': {
      const t0 = Date.now();
      await Lab.down(instance);
      console.log(`lab ${instance} is down (${ms(t0)})`);
      return 0;
    }
    case 'status':
      return status();
    case 'seed':
      return seed(instance, args);
    case 'exec':
      return exec(instance, args);
    case 'shape': {
      const [name, rate] = args;
      if (!name || !rate) throw new LabError('usage: shape HOST RATE|off');
      const lab = await Lab.open(instance);
      await lab.host(name).shape(rate === 'off' ? undefined : rate);
      console.log(`${name}: ${rate === 'off' ? 'not shaped' : `outgoing link shaped to ${rate}`}`);
      return 0;
    }
    case 'dokku-tests':
      return dokkuTests(instance === 'default' ? 'dokku-tests' : instance, args);
    default:
      console.error(cmd ? `unknown command: ${cmd}\n${USAGE}` : USAGE);
      return 2;
  }
}

async function up(instance: string, args: string[], emulator: boolean): Promise<number> {
  let hosts: (string | HostSpec)[];
  if (args.length === 0) hosts = defaultHostNames(3);
  else if (args.length === 1 && /^\d+$/.test(args[0] as string))
    hosts = defaultHostNames(Number(args[0]));
  else {
    hosts = args.map((a) => {
      const [name, version] = a.split('@');
      return version ? { name: name as string, dokkuVersion: version } : (name as string);
    });
  }
  const t0 = Date.now();
  const lab = await Lab.up({ instance, hosts, emulator, log: (l) => console.error(l) });
  console.log(
    `lab ${instance} is up (${ms(t0)}), subnet ${lab.subnet}, controller ${lab.controllerAddress}`,
  );
  for (const h of lab.hosts) {
    console.log(
      `  ${h.name.padEnd(10)} ${h.address.padEnd(14)} dokku ${h.dokkuVersion.padEnd(8)} pid ${h.pid}  ${h.hostKeyFingerprint}`,
    );
  }
  console.log(`  key        ${lab.keyPath}`);
  console.log(`  known_hosts ${lab.knownHostsPath}`);
  console.log(`  inventory  ${lab.inventoryPath}`);
  const first = lab.hosts[0] as LabHost;
  console.log(
    `  try: ssh -i ${lab.keyPath} -o UserKnownHostsFile=${lab.knownHostsPath} root@${first.address}`,
  );
  return 0;
}

async function status(): Promise<number> {
  const all = await Lab.status();
  if (all.length === 0) {
    console.log('no lab is up');
    return 0;
  }
  for (const s of all) {
    console.log(`${s.instance} (${s.subnet})`);
    for (const h of s.hosts) {
      console.log(
        `  ${h.name.padEnd(10)} ${h.address.padEnd(14)} pid ${String(h.pid).padEnd(8)} ${h.alive ? 'alive' : 'DEAD '} sshd ${h.sshd ? 'up' : 'DOWN'}`,
      );
    }
  }
  return 0;
}

/** Runs the emulator's seed (test/lab/emulator/seed.ts) against one host. */
async function seed(instance: string, args: string[]): Promise<number> {
  const [name] = args;
  if (!name || args.length !== 1) throw new LabError('usage: seed HOST');
  const lab = await Lab.open(instance);
  const host = lab.host(name);
  // Loaded only when needed, so the rest of the CLI works while the emulator is being written.
  const mod = (await import('./emulator/seed.js')) as typeof import('./emulator/seed.js');
  const r = await mod.seed(host, {
    keyPath: lab.keyPath,
    knownHostsPath: lab.knownHostsPath,
    dir: lab.dir,
    log: (l) => console.error(l),
  });
  console.log(`seeded ${name} (${(r.ms / 1000).toFixed(2)} s)`);
  for (const s of r.steps) console.log(`  ${s.step.padEnd(40)} ${(s.ms / 1000).toFixed(2)} s`);
  return 0;
}

async function exec(instance: string, args: string[]): Promise<number> {
  const sep = args.indexOf('--');
  const name = args[0];
  const cmd = sep >= 0 ? args.slice(sep + 1) : args.slice(1);
  if (!name || name === '--' || cmd.length === 0) throw new LabError('usage: exec HOST -- CMD...');
  const lab = await Lab.open(instance);
  const host = lab.host(name);
  if (!host.running())
    throw new LabError(`lab host ${name} is not running; run \`npm run lab -- up\` again`);
  const [file, ...pre] = nsenterArgv(host.pid);
  // One word runs through bash (so `exec old -- 'ls /tmp | wc -l'` works); several run as an argv.
  const argv = cmd.length === 1 ? [...pre, 'bash', '-c', cmd[0] as string] : [...pre, ...cmd];
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, argv, {
      stdio: 'inherit',
      env: { ...CLEAN_ENV, TERM: process.env.TERM ?? 'dumb' },
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Runs Dokku's own unit tests against the emulator (test/lab/dokku-tests.ts). */
async function dokkuTests(instance: string, args: string[]): Promise<number> {
  const files: string[] = [];
  let release: string | undefined;
  let dokkuSrc: string | undefined;
  let keep = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--release') release = args[++i];
    else if (a === '--dokku-src') dokkuSrc = args[++i];
    else if (a === '--keep') keep = true;
    else files.push(a.replace(/\.bats$/, ''));
  }
  const { formatDokkuTests, runDokkuTests } = await import('./dokku-tests.js');
  const r = await runDokkuTests({
    instance,
    files,
    keep,
    ...(release === undefined ? {} : { release }),
    ...(dokkuSrc === undefined ? {} : { dokkuSrc }),
    log: (l) => console.error(l),
  });
  console.log(formatDokkuTests(r));
  if (r.skipped) return 0;
  return r.files.some((f) => (f.summary?.fail ?? 0) > 0) ? 1 : 0;
}

function ms(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(2)} s`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const err = e as { message?: string; hint?: string };
    console.error(`lab: ${err.message ?? String(e)}`);
    if (err.hint) console.error(`     ${err.hint}`);
    process.exitCode = 1;
  },
);
