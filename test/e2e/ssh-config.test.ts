/**
 * The operator's world, end to end: two lab hosts that only a bastion may
 * reach (nftables in their own network namespaces), named by ssh_config
 * aliases with ProxyJump, the only key that opens them held by an ssh-agent
 * this test starts (its file deleted), host keys in a hashed known_hosts.
 * `ferry migrate` moves the seeded host through all of it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, seed } from '../lab/emulator/seed.js';
import type { LabHost } from '../lab/lab.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({
  instance: 'e2e-sshconf',
  hosts: ['jump', 'old', 'new', 'spare'],
  bastion: 'jump',
});
const dir = mkdtempSync(join(tmpdir(), 'ferry-sshconf-'));
let agent: { sock: string; pid: number } | undefined;

function ferry(args: string[], env: Record<string, string | undefined>): Promise<ExecResult> {
  const base = { ...process.env };
  delete base.SSH_AUTH_SOCK;
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    env: { ...base, FERRY_STATE_DIR: join(dir, 'state'), CI: '1', ...env },
  });
}

function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function answers(t: ExecutionContext, name: string): Promise<void> {
  const host = lab().host(name);
  const vhost = (await host.must('cat /home/dokku/VHOST')).trim();
  const notes = await host.must(`curl -sS -m 10 -H 'Host: notes.${vhost}' http://127.0.0.1/`);
  for (const row of SEEDED.services[0]!.rows)
    t.true(notes.includes(row), `row "${row}" on ${name}`);
}

labTest(
  'migrate between hosts reached only through a bastion, by ssh_config aliases, with the key only in an agent',
  async (t) => {
    const l = lab();
    const [jump, old, neu] = ['jump', 'old', 'new'].map((n) => l.host(n)) as [
      ReturnType<typeof l.host>,
      ReturnType<typeof l.host>,
      ReturnType<typeof l.host>,
    ];

    // The firewall holds: this machine cannot open old's sshd, the bastion can.
    const direct = spawnSync('ssh', [...l.sshOptions(), `root@${old.address}`, 'true'], {
      encoding: 'utf8',
    });
    t.not(direct.status, 0, 'the controller reaches old only through the bastion');
    t.regex(direct.stderr, /refused|reset|closed/i);
    t.is((await jump.exec(`timeout 3 bash -c 'exec 3<>/dev/tcp/${old.address}/22'`)).code, 0);
    t.not((await neu.exec(`timeout 3 bash -c 'exec 3<>/dev/tcp/${old.address}/22'`)).code, 0);

    // Seed old through the bastion (the lab key, for the seed only).
    const seedConfig = join(dir, 'seed_ssh_config');
    writeFileSync(
      seedConfig,
      `Host ${old.address}\n  ProxyJump seed-jump\nHost seed-jump\n  HostName ${jump.address}\n  User root\n  IdentityFile ${l.keyPath}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${l.knownHostsPath}\n  StrictHostKeyChecking yes\n  BatchMode yes\n`,
      { mode: 0o600 },
    );
    await seed(old, {
      keyPath: l.keyPath,
      knownHostsPath: l.knownHostsPath,
      dir: join(dir, 'seed'),
      sshOptions: ['-F', seedConfig],
    });

    // The only key root accepts from now on lives in an agent and nowhere else.
    const sock = join(dir, 'agent.sock');
    const started = sh('ssh-agent', ['-a', sock, '-s']);
    agent = { sock, pid: Number(/SSH_AGENT_PID=(\d+)/.exec(started)?.[1]) };
    const key = join(dir, 'agent_key');
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-e2e-agent', '-f', key]);
    sh('ssh-add', ['-q', key], { SSH_AUTH_SOCK: sock });
    const pub = readFileSync(`${key}.pub`, 'utf8');
    rmSync(key);
    rmSync(`${key}.pub`);
    // Each lab host has its own root authorized_keys, as real servers have.
    for (const h of l.hosts) {
      writeFileSync(h.pathOnController('/root/.ssh/authorized_keys'), pub, { mode: 0o600 });
    }

    // Host keys as ssh writes them with HashKnownHosts: hashed names.
    const known = join(dir, 'known_hosts');
    writeFileSync(known, readFileSync(l.knownHostsPath, 'utf8'));
    sh('ssh-keygen', ['-q', '-H', '-f', known]);
    t.false(readFileSync(known, 'utf8').includes(old.address), 'no plain address left in it');

    const sshConfig = join(dir, 'ssh_config');
    writeFileSync(
      sshConfig,
      `Include ${join(dir, 'ssh_config.d')}/*.conf

Host lab-old
  HostName ${old.address}
Host lab-new
  HostName ${neu.address}
Host lab-spare
  HostName ${l.host('spare').address}
Host lab-* !lab-jump
  ProxyJump lab-jump
Host lab-jump
  HostName ${jump.address}
Host *
  User root
`,
      { mode: 0o600 },
    );
    sh('mkdir', ['-p', join(dir, 'ssh_config.d')]);
    writeFileSync(
      join(dir, 'ssh_config.d', 'known.conf'),
      `Host *\n  UserKnownHostsFile ${known}\n`,
    );
    chmodSync(join(dir, 'ssh_config.d', 'known.conf'), 0o600);
    const inventory = join(dir, 'inventory.yml');
    writeFileSync(
      inventory,
      `version: 1\ndefaults:\n  ssh_config: ${sshConfig}\nhosts:\n  lab-old: {}\n  lab-new: {}\n`,
    );

    // Without the agent there is no key: refused before anything runs.
    const noAgent = await ferry(['check', '-i', inventory, 'lab-old'], {});
    t.not(noAgent.code, 0);
    t.regex(`${noAgent.stdout}${noAgent.stderr}`, /id_ed25519 does not exist|no key to offer/);

    const r = await ferry(
      ['migrate', 'lab-old', 'lab-new', '-i', inventory, '--leave-source-running'],
      {
        SSH_AUTH_SOCK: sock,
      },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    t.is(r.code, 0, `ferry migrate failed:\n${out}`);
    await answers(t, 'new');
    // One connection per host and one for the bastion they share.
    t.regex(out, /ssh connections\s*:?\s*3\b/);
    t.regex(out, /relay\); through this machine: lab-new cannot reach/, 'the fallback says why');
  },
);

/** How many logins sshd of `host` accepted from `from` so far. */
function logins(host: LabHost, from: string): number {
  const log = readFileSync(join(host.dir, 'sshd.log'), 'utf8');
  return log.split('\n').filter((l) => l.includes(`Accepted publickey for root from ${from} `))
    .length;
}

/** Restarts `host`'s sshd with `lines` added to its config (before the Match block, where they apply to all). */
async function restartSshd(host: LabHost, lines: string): Promise<void> {
  const cfg = join(host.dir, 'sshd_config');
  const text = readFileSync(cfg, 'utf8');
  // Before any Match block (the lab's sshd_config may have none): global keywords go first.
  const at = text.search(/^Match /m);
  const next =
    at < 0 ? `${text.trimEnd()}\n${lines}\n` : `${text.slice(0, at)}${lines}\n${text.slice(at)}`;
  writeFileSync(cfg, next, { mode: 0o600 });
  const pid = join(host.dir, 'sshd.pid');
  await host.must(
    `kill "$(cat ${pid})"; for i in $(seq 100); do [ -e ${pid} ] || break; sleep 0.05; done
     setsid /usr/sbin/sshd -D -f ${cfg} -E ${join(host.dir, 'sshd.log')} </dev/null >/dev/null 2>&1 &
     for i in $(seq 100); do (exec 3<>/dev/tcp/${host.address}/22) 2>/dev/null && exit 0; sleep 0.05; done; exit 1`,
  );
}

labTest(
  'a ProxyJump chain: the second bastion is opened through the first, the host through the second',
  async (t) => {
    const l = lab();
    t.truthy(agent, 'the first test started the agent');
    const [jump, old] = [l.host('jump'), l.host('old')];
    // The second hop is the jump host's loopback: only the jump host itself can open it
    // (nothing listens on this machine's 127.0.0.1:22), so only a real chain gets through.
    await restartSshd(jump, 'ListenAddress 127.0.0.1:22');
    const [type, b64] = readFileSync(join(jump.dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ');
    const known = join(dir, 'known_hosts_chain');
    writeFileSync(
      known,
      `${readFileSync(join(dir, 'known_hosts'), 'utf8')}127.0.0.1 ${type} ${b64}\n`,
    );
    const cfg = join(dir, 'ssh_config_chain');
    const write = (hopTwoPort: number) =>
      writeFileSync(
        cfg,
        `Host chained-old\n  HostName ${old.address}\n  ProxyJump hop-one,hop-two\nHost hop-one\n  HostName ${jump.address}\nHost hop-two\n  HostName 127.0.0.1\n  Port ${hopTwoPort}\nHost *\n  User root\n  UserKnownHostsFile ${known}\n`,
        { mode: 0o600 },
      );
    write(22);
    const inv = join(dir, 'inventory_chain.yml');
    writeFileSync(inv, `version: 1\ndefaults:\n  ssh_config: ${cfg}\nhosts:\n  chained-old: {}\n`);
    const [loopBefore, oldBefore] = [logins(jump, '127.0.0.1'), logins(old, jump.address)];
    const r = await ferry(['check', '-i', inv, 'chained-old'], { SSH_AUTH_SOCK: agent?.sock });
    t.is(r.code, 0, `${r.stdout}${r.stderr}`);
    t.regex(r.stdout, /chained-old\s/);
    t.true(logins(jump, '127.0.0.1') > loopBefore, 'the second hop logged in through the first');
    t.true(logins(old, jump.address) > oldBefore, 'old was reached from the jump host');

    // A second hop that does not answer fails there, saying which bastion could not reach it.
    write(2);
    const broken = await ferry(['check', '-i', inv, 'chained-old'], {
      SSH_AUTH_SOCK: agent?.sock,
    });
    t.not(broken.code, 0);
    t.regex(
      `${broken.stdout}${broken.stderr}`,
      /hop-one cannot open a connection to 127\.0\.0\.1:2/,
    );
  },
);

labTest(
  'the same migrate from an Ansible YAML inventory (host names that are aliases); an INI one checks the hosts',
  async (t) => {
    t.truthy(agent, 'the first test started the agent');
    const sshConfig = join(dir, 'ssh_config');
    const yml = join(dir, 'hosts.yml');
    writeFileSync(
      yml,
      `all:\n  vars:\n    ansible_user: root\n    dokku_ferry:\n      ssh_config: ${sshConfig}\n  children:\n    dokku:\n      hosts:\n        lab-old:\n        lab-spare:\n`,
    );
    const ini = join(dir, 'hosts.ini');
    writeFileSync(
      ini,
      `[all:vars]\ndokku_ferry={'ssh_config': '${sshConfig}'}\n\n[dokku]\nold ansible_host=lab-old\nspare ansible_host=lab-spare ansible_user=root\n`,
    );
    const checked = await ferry(['check', '-i', ini, 'old', 'spare'], {
      SSH_AUTH_SOCK: agent?.sock,
    });
    t.is(checked.code, 0, `${checked.stdout}${checked.stderr}`);
    t.regex(checked.stdout, /\bold\s/);
    t.regex(checked.stdout, /\bspare\s/);

    const r = await ferry(
      ['migrate', 'lab-old', 'lab-spare', '-i', yml, '--leave-source-running'],
      {
        SSH_AUTH_SOCK: agent?.sock,
      },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    t.is(r.code, 0, `ferry migrate failed:\n${out}`);
    await answers(t, 'spare');
    t.regex(out, /ssh connections\s*:?\s*3\b/);
    t.regex(out, /relay\); through this machine: lab-spare cannot reach/);
  },
);

/** Signs `host`'s key with `ca` (principal: its address) and restarts its sshd presenting the certificate. */
async function certify(host: LabHost, ca: string): Promise<void> {
  sh('ssh-keygen', [
    '-q',
    '-s',
    ca,
    '-I',
    host.name,
    '-h',
    '-n',
    host.address,
    '-V',
    '-5m:+1h',
    join(host.dir, 'ssh_host_ed25519_key.pub'),
  ]);
  await restartSshd(host, `HostCertificate ${join(host.dir, 'ssh_host_ed25519_key-cert.pub')}`);
}

labTest(
  'host keys signed by a CA of known_hosts (@cert-authority) are trusted, through the bastion too',
  async (t) => {
    const l = lab();
    t.truthy(agent, 'the first test started the agent');
    const [jump, neu] = [l.host('jump'), l.host('new')];
    const ca = join(dir, 'host_ca');
    const otherCa = join(dir, 'other_ca');
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ca]);
    sh('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', otherCa]);
    await certify(jump, ca);
    await certify(neu, ca);
    const subnet = `${jump.address.split('.').slice(0, 3).join('.')}.*`;
    const tryWith = async (caFile: string): Promise<ExecResult> => {
      const known = join(dir, `known_hosts_ca_${caFile.split('/').pop()}`);
      const [type, b64] = readFileSync(`${caFile}.pub`, 'utf8').trim().split(' ');
      // Nothing but the CA line: every host key must be vouched for by it.
      writeFileSync(known, `@cert-authority ${subnet} ${type} ${b64}\n`);
      const cfg = join(dir, `ssh_config_ca_${caFile.split('/').pop()}`);
      writeFileSync(
        cfg,
        `Host lab-new\n  HostName ${neu.address}\n  ProxyJump ${jump.address}\nHost *\n  User root\n  UserKnownHostsFile ${known}\n`,
        { mode: 0o600 },
      );
      const inv = join(dir, `inventory_ca_${caFile.split('/').pop()}.yml`);
      writeFileSync(inv, `version: 1\ndefaults:\n  ssh_config: ${cfg}\nhosts:\n  lab-new: {}\n`);
      return ferry(['check', '-i', inv, 'lab-new'], { SSH_AUTH_SOCK: agent?.sock });
    };
    const ok = await tryWith(ca);
    t.is(ok.code, 0, `${ok.stdout}${ok.stderr}`);
    t.regex(ok.stdout, /lab-new\s.*CA-signed, ok/);
    const refused = await tryWith(otherCa);
    t.not(refused.code, 0);
    t.regex(`${refused.stdout}${refused.stderr}`, /is unknown/);
  },
);

test.after.always(() => {
  if (agent?.pid) {
    try {
      process.kill(agent.pid);
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});
