/**
 * The lab itself: isolated hosts, real sshd with the lab's keys, the dokku
 * user's forced command, and nothing left behind by `down` or by a killed run.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labTest, useLab } from '../lab/ava.js';
import { LAB_ROOT, Lab, type LabHost, REGISTRY_DIR, registryDir } from '../lab/lab.js';
import { CLEAN_ENV, run } from '../lab/sys.js';

const NAME = 'lab-test';
/** useLab prefixes the name with FERRY_LAB_PREFIX; this file's own calls must use the same. */
const INSTANCE = `${process.env.FERRY_LAB_PREFIX ?? ''}${NAME}`;
const lab = useLab({
  instance: NAME,
  hosts: ['one', 'two', { name: 'three', dokkuVersion: '0.37.7' }],
  // These tests are about the harness: they must not depend on the emulator's state.
  emulator: false,
});

function ssh(user: string, host: LabHost, command: string, knownHosts?: string) {
  const [file, ...args] = lab().sshArgv(host, user, command);
  if (knownHosts)
    args.splice(
      args.indexOf(`UserKnownHostsFile=${lab().knownHostsPath}`),
      1,
      `UserKnownHostsFile=${knownHosts}`,
    );
  return run(file as string, args);
}

labTest('each host has its own folders, hostname, host key and processes', async (t) => {
  const [one, two] = [lab().host('one'), lab().host('two')];
  const mark = `probe-${process.pid}-${Date.now()}`;
  for (const dir of ['/var/lib/dokku', '/home/dokku', '/tmp', '/var/lib/docker']) {
    await one.must(`echo ${mark} > ${dir}/lab-probe`);
    t.is((await one.exec(`cat ${dir}/lab-probe`)).stdout.trim(), mark, `${dir} on one`);
    t.not((await two.exec(`cat ${dir}/lab-probe`)).code, 0, `${dir} must not be shared`);
    t.false(fs.existsSync(`${dir}/lab-probe`), `${dir} of the controller untouched`);
    t.true(fs.existsSync(one.pathOnController(`${dir}/lab-probe`)));
  }
  t.is((await one.must('hostname')).trim(), 'one');
  t.is((await two.must('hostname')).trim(), 'two');
  t.not(one.hostKeyFingerprint, two.hostKeyFingerprint);
  t.regex(one.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  // Own PID namespace: PID 1 is the lab init, and no process of the other host is visible.
  t.regex(await one.must('cat /proc/1/cmdline | tr "\\0" " "'), /init\.sh .*\/hosts\/one one /);
  t.false((await one.must('ps -eo args')).includes('/hosts/two/'));
  const lj = JSON.parse(await one.must('cat /var/lib/docker/lab.json')) as Record<string, string>;
  t.like(lj, {
    host: 'one',
    address: one.address,
    registry: REGISTRY_DIR,
    registryHere: registryDir(lab().instance),
  });
  // The registry the hosts see is this instance's own, not the shared mount point.
  await fsp.writeFile(path.join(registryDir(lab().instance), 'lab-probe'), mark);
  t.is(await two.must(`cat ${REGISTRY_DIR}/lab-probe`), mark);
  t.false(fs.existsSync(path.join(REGISTRY_DIR, 'lab-probe')), 'the mount point stays empty');
  t.regex(lj.pgVersion ?? '', /^\d+\.\d+/);
  t.true(fs.existsSync(path.join(lj.pgBin ?? '', 'postgres')));
  t.is(await one.must('cat', { input: 'stdin reaches the host' }), 'stdin reaches the host');
});

labTest('init reaps orphans', async (t) => {
  const one = lab().host('one');
  // The subshell exits at once, so each sleep is reparented to PID 1 and dies there.
  await one.must('for i in 1 2 3 4 5; do (sleep 0.1 &) ; done');
  await new Promise((r) => setTimeout(r, 600));
  t.is((await one.must("ps -eo stat= | grep -c '^Z' || true")).trim(), '0');
});

labTest('hosts reach each other and the controller, and nothing else', async (t) => {
  const [one, two] = [lab().host('one'), lab().host('two')];
  t.is((await one.must(`exec 3<>/dev/tcp/${two.address}/22 && head -c 8 <&3`)).trim(), 'SSH-2.0-');
  // Refused, not unreachable: the controller answers on the bridge.
  const ctl = await one.exec(`exec 3<>/dev/tcp/${lab().controllerAddress}/9`);
  t.regex(ctl.stderr, /refused/);
  t.is(
    (await one.must('ip -4 route show')).trim(),
    `${lab().subnet} dev eth0 proto kernel scope link src ${one.address}`,
  );
  // No packet is sent: the kernel has no route for any address outside the lab subnet.
  for (const outside of ['1.1.1.1', '10.251.250.1', '127.0.0.1']) {
    const r = await one.exec(`ip route get ${outside}`);
    if (outside === '127.0.0.1') t.regex(r.stdout, /dev lo/);
    else t.regex(r.stderr, /unreachable/i, outside);
  }
});

labTest('root logs in over SSH with the lab key and known_hosts only', async (t) => {
  for (const h of lab().hosts) {
    const r = await ssh('root', h, 'hostname; id -u');
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `${h.name}\n0\n`);
  }
  // The same login against an empty known_hosts is refused: the check is real.
  const empty = path.join(lab().dir, 'empty_known_hosts');
  await fsp.writeFile(empty, '');
  const r = await ssh('root', lab().host('one'), 'true', empty);
  t.not(r.code, 0);
  t.regex(r.stderr, /Host key verification failed|No ED25519 host key is known/);
  const cfg = await fsp.readFile(path.join(lab().host('one').dir, 'sshd_config'), 'utf8');
  t.notRegex(cfg, /Subsystem/);
});

labTest('each host has its own authorized keys for root, as real servers have', async (t) => {
  const [one, two] = [lab().host('one'), lab().host('two')];
  const dir = await fsp.mkdtemp(path.join(lab().dir, 'other-key-'));
  try {
    const key = path.join(dir, 'id');
    const made = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    t.is(made.code, 0, made.stderr);
    const pub = await fsp.readFile(`${key}.pub`, 'utf8');
    // Added to one's /root/.ssh/authorized_keys only: one lets it in, two does not.
    await one.must('cat >> /root/.ssh/authorized_keys', { input: pub });
    t.is((await one.must('stat -c %a /root/.ssh /root/.ssh/authorized_keys')).trim(), '700\n600');
    const login = (h: LabHost) => {
      const [file, ...args] = lab().sshArgv(h, 'root', 'hostname');
      args[args.indexOf(lab().keyPath)] = key;
      return run(file as string, args);
    };
    t.is((await login(one)).stdout, 'one\n');
    const refused = await login(two);
    t.not(refused.code, 0);
    t.regex(refused.stderr, /Permission denied/);
    t.false((await two.must('cat /root/.ssh/authorized_keys')).includes(pub.trim()));
  } finally {
    await one.exec(
      `grep -v -F -- "$(cat)" /root/.ssh/authorized_keys > /tmp/ak; cat /tmp/ak > /root/.ssh/authorized_keys`,
      {
        input: (await fsp.readFile(path.join(dir, 'id.pub'), 'utf8').catch(() => 'none')).trim(),
      },
    );
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

labTest(
  'a host stopped like a power cut starts again with its files, address and sshd',
  async (t) => {
    const two = lab().host('two');
    await two.must(
      'echo kept > /var/lib/dokku/lab-restart-probe && { setsid sleep 6000 </dev/null >/dev/null 2>&1 & }',
    );
    t.is((await two.must('pgrep -xf "sleep 6000" | wc -l')).trim(), '1');
    await lab().stopHost('two');
    t.false(two.running());
    await t.throwsAsync(two.exec('true'), { message: /not running/ });
    const r = await ssh('root', two, 'true');
    t.not(r.code, 0, 'nothing answers while it is down');
    const again = await lab().startHost('two');
    t.not(again.pid, two.pid);
    t.is(lab().host('two'), again);
    t.is((await again.must('cat /var/lib/dokku/lab-restart-probe')).trim(), 'kept');
    t.is((await again.must('pgrep -xf "sleep 6000" | wc -l')).trim(), '0', 'no process survived');
    t.is((await ssh('root', again, 'hostname')).stdout, 'two\n');
  },
);

labTest('the dokku user only gets the sshcommand forced command', async (t) => {
  const three = lab().host('three');
  const keys = await three.must('cat /home/dokku/.ssh/authorized_keys');
  const pub = (await fsp.readFile(`${lab().keyPath}.pub`, 'utf8')).trim();
  const { stdout: fp } = await run('ssh-keygen', ['-lf', `${lab().keyPath}.pub`]);
  t.is(
    keys,
    `command="FINGERPRINT=${fp.split(' ')[1]} NAME=\\"admin\\" \`cat /home/dokku/.sshcommand\` $SSH_ORIGINAL_COMMAND",no-agent-forwarding,no-user-rc,no-X11-forwarding,no-port-forwarding ${pub}\n`,
  );
  const ls = await three.must("stat -c '%U:%G %a' /home/dokku /home/dokku/.ssh /var/lib/dokku");
  t.is(ls, 'dokku:dokku 755\ndokku:dokku 700\ndokku:dokku 755\n');
  // What the forced command runs, with what: a stand-in for /usr/bin/dokku records it.
  const saved = await three.must('cat /home/dokku/.sshcommand');
  await three.must(
    `printf '#!/bin/bash\\necho "args=$*"; echo "name=$NAME"; echo "fp=$FINGERPRINT"; echo "user=$(id -un)"\\n' > /tmp/fake-dokku && chmod 755 /tmp/fake-dokku && echo /tmp/fake-dokku > /home/dokku/.sshcommand`,
  );
  try {
    const r = await ssh('dokku', three, "git-upload-pack 'myapp'");
    t.is(r.code, 0, r.stderr);
    t.is(
      r.stdout,
      `args=git-upload-pack 'myapp'\nname=admin\nfp=${fp.split(' ')[1]}\nuser=dokku\n`,
    );
    const shell = await ssh('dokku', three, 'echo marker-$((6*7)) && true');
    t.false(shell.stdout.includes('marker-42'), 'the client command must not reach a shell');
  } finally {
    await three.must(`printf '%s' '${saved.replace(/'/g, '')}' > /home/dokku/.sshcommand`);
  }
  // The git transport works through the forced command (the emulator plays Dokku's part;
  // here a stand-in serves bare repos under /tmp): push, then ls-remote.
  const standIn = `#!/bin/bash\ncmd=$1; repo=\${2//\\'/}; exec "$cmd" "/tmp/\${repo#/}"\n`;
  await three.must(
    'cat > /tmp/git-dokku && chmod 755 /tmp/git-dokku && git init -q --bare /tmp/app.git && chown -R dokku:dokku /tmp/app.git && echo /tmp/git-dokku > /home/dokku/.sshcommand',
    { input: standIn },
  );
  try {
    const work = await fsp.mkdtemp('/tmp/lab-git-');
    const env = { ...CLEAN_ENV, GIT_SSH_COMMAND: lab().gitSshCommand() };
    const git = (...a: string[]) => run('git', ['-C', work, ...a], { env });
    await git('init', '-q', '-b', 'main');
    await fsp.writeFile(path.join(work, 'Procfile'), 'web: true\n');
    await git('add', 'Procfile');
    await git('-c', 'user.name=lab', '-c', 'user.email=lab@invalid', 'commit', '-qm', 'one');
    const push = await git('push', '-q', `dokku@${three.address}:app.git`, 'main');
    t.is(push.code, 0, push.stderr);
    const head = (await git('rev-parse', 'HEAD')).stdout.trim();
    const remote = await git('ls-remote', `dokku@${three.address}:app.git`);
    t.is(remote.stdout, `${head}\trefs/heads/main\n`);
    t.is((await three.must('runuser -u dokku -- git -C /tmp/app.git rev-parse main')).trim(), head);
    await fsp.rm(work, { recursive: true, force: true });
  } finally {
    await three.must(`printf '%s' '${saved.replace(/'/g, '')}' > /home/dokku/.sshcommand`);
  }
  // With the real .sshcommand (/usr/bin/dokku) no shell either.
  const r = await ssh('dokku', three, 'echo marker-$((6*7))');
  t.false(r.stdout.includes('marker-42'));
});

labTest('/usr/bin/dokku refuses to run outside a lab host', async (t) => {
  const r = await run('/usr/bin/dokku', ['version']);
  t.is(r.code, 1);
  t.is(r.stderr, ' !     dokku: not inside a ferry lab host\n');
});

labTest('the CLI runs commands in a host and fails in one line', async (t) => {
  const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '../lab/cli.js');
  const node = (...a: string[]) => run(process.execPath, [cli, '--instance', INSTANCE, ...a]);
  const ok = await node('exec', 'two', '--', 'cat', '/proc/sys/kernel/hostname');
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, 'two\n');
  t.is((await node('exec', 'two', '--', 'exit 7')).code, 7);
  const bad = await node('exec', 'nosuch', '--', 'true');
  t.is(bad.code, 1);
  t.regex(
    bad.stderr,
    new RegExp(`^lab: lab ${INSTANCE} has no host nosuch \\(it has: one, two, three\\)\n$`),
  );
  const st = await node('status');
  t.regex(
    st.stdout,
    new RegExp(
      `${INSTANCE} \\(10\\.251\\.\\d+\\.0/24\\)\n {2}one +10\\.251\\.\\d+\\.11 +pid \\d+ +alive sshd up\n`,
    ),
  );
});

labTest('a killed lab is cleaned by the next up, and down leaves nothing', async (t) => {
  const before = lab();
  const netnsNames = before.hosts.map((h) => h.netns);
  // Kill every host's init, as a crashed test or a `kill -9` of the runner would leave it.
  for (const h of before.hosts) process.kill(h.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  const leftover = (await run('ip', ['netns', 'list'])).stdout;
  for (const n of netnsNames) t.true(leftover.includes(n), `${n} is left after the kill`);
  t.false(before.host('one').running());
  await t.throwsAsync(before.host('one').exec('true'), { message: /not running/ });

  const t0 = Date.now();
  const again = await Lab.up({ instance: INSTANCE, hosts: ['one', 'two'], emulator: false });
  t.log(`up after a kill: ${Date.now() - t0} ms`);
  t.is(again.hosts.length, 2);
  t.is((await ssh('root', again.host('two'), 'hostname')).stdout, 'two\n');
  t.false((await run('ip', ['netns', 'list'])).stdout.includes(`ferry.${INSTANCE}.three`));

  const inodes = await Promise.all(
    again.hosts.map(async (h) => (await fsp.stat(`/proc/${h.pid}/ns/net`)).ino),
  );
  const t1 = Date.now();
  await again.down();
  t.log(`down: ${Date.now() - t1} ms`);

  t.false((await run('ip', ['netns', 'list'])).stdout.includes(`ferry.${INSTANCE}.`), 'no netns');
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
  const n = again.state.subnet;
  t.notRegex(links, new RegExp(`: (ferrylab${n}|fl${n}h\\d+)[:@]`), 'no bridge, no veth');
  t.notRegex(
    (await run('ip', ['-o', '-4', 'addr', 'show'])).stdout,
    new RegExp(`10\\.251\\.${n}\\.`),
  );
  const inLab: number[] = [];
  for (const p of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const st = await fsp.stat(`/proc/${p}/ns/net`).catch(() => undefined);
    if (st && inodes.includes(st.ino)) inLab.push(Number(p));
  }
  t.deepEqual(inLab, [], 'no process in the lab netns');
  const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .filter((l) => l.includes(`${LAB_ROOT}/`) || l.includes(`/run/netns/ferry.${INSTANCE}.`));
  t.deepEqual(mounts, [], 'no mounts');
  t.false(fs.existsSync(path.join(LAB_ROOT, INSTANCE, 'state.json')));
  t.false(fs.existsSync(path.join(LAB_ROOT, INSTANCE, 'hosts/one/lib-dokku')));
  t.deepEqual(await Lab.status().then((s) => s.filter((x) => x.instance === INSTANCE)), []);
});
