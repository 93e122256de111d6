/**
 * Ansible inventories end to end: the lab's inventory rewritten as an
 * Ansible YAML inventory and as an INI one (as a team that runs Dokku with
 * Ansible would have it), then `ferry plan migrate` and `ferry check` through
 * the real CLI against the lab's hosts, and a `ferry migrate` of a seeded
 * host, old to new, driven by the YAML inventory: the target checked as the
 * release matrix checks one (test/lab/landed.ts), the source left as it was.
 * One migrate is enough: the first test shows that the YAML, INI and
 * extensionless inventories load to the same hosts, so a second migrate by
 * the INI one would run the same code on the same values (it cost the suite
 * two minutes).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { loadInventory } from '../../src/inventory/index.js';
import { labTest, useLab } from '../lab/ava.js';
import { seed } from '../lab/emulator/seed.js';
import { digest, landed, withoutRunState } from '../lab/landed.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'ansible', hosts: ['old', 'new', 'new2'] });
const dir = mkdtempSync(join(tmpdir(), 'ferry-ansible-e2e-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    env: { ...process.env, FERRY_STATE_DIR: dir, CI: '1' },
  });
}

/**
 * The lab's inventory in Ansible's two formats: hosts in a `dokku` group
 * under a `production` parent, connection variables on `all` (the key
 * through the group, as an override Ansible's precedence must resolve), and
 * ferry's settings in `dokku_ferry`.
 */
async function ansibleInventories(): Promise<{ yml: string; ini: string }> {
  const own = await loadInventory(lab().inventoryPath);
  const hosts = Object.values(own.hosts);
  // The lab's hosts share one user, port, key and known_hosts.
  const d = hosts[0]!;
  const ferryAll = { known_hosts: d.known_hosts, backup: own.backup };
  const yml = stringify({
    all: {
      vars: {
        ansible_user: d.user,
        ansible_port: d.port,
        ansible_ssh_private_key_file: '/nonexistent/overridden-by-the-group',
        ansible_become: d.sudo,
        dokku_ferry: ferryAll,
      },
      children: {
        production: {
          children: {
            dokku: {
              hosts: Object.fromEntries(hosts.map((h) => [h.name, { ansible_host: h.address }])),
              vars: { ansible_ssh_private_key_file: d.identity },
            },
          },
        },
      },
    },
  });
  const ini = [
    '# The lab, as an Ansible INI inventory.',
    '[dokku]',
    ...hosts.map((h) => `${h.name} ansible_host=${h.address}  # a lab host`),
    '',
    '[dokku:vars]',
    `ansible_ssh_private_key_file=${d.identity}`,
    '',
    '[production:children]',
    'dokku',
    '',
    '[all:vars]',
    `ansible_user=${d.user}`,
    `ansible_port=${d.port}`,
    'ansible_ssh_private_key_file=/nonexistent/overridden-by-the-group',
    `ansible_become=${d.sudo ? 'True' : 'False'}`,
    `dokku_ferry=${JSON.stringify(ferryAll)}`,
    '',
  ].join('\n');
  return { yml, ini };
}

let files: { yml: string; ini: string; hosts: string } | undefined;
async function written(): Promise<{ yml: string; ini: string; hosts: string }> {
  if (!files) {
    const { yml, ini } = await ansibleInventories();
    files = { yml: join(dir, 'hosts.yml'), ini: join(dir, 'hosts.ini'), hosts: join(dir, 'hosts') };
    writeFileSync(files.yml, yml);
    writeFileSync(files.ini, ini);
    // Ansible's classic extensionless `hosts` file: read as INI.
    writeFileSync(files.hosts, ini);
  }
  return files;
}

labTest('the Ansible inventories load to the same hosts as the lab inventory', async (t) => {
  const f = await written();
  const own = await loadInventory(lab().inventoryPath);
  for (const file of [f.yml, f.ini, f.hosts]) {
    const inv = await loadInventory(file);
    t.deepEqual(inv.hosts, own.hosts, file);
    t.deepEqual(inv.backup, own.backup, file);
    t.deepEqual(inv.groups?.dokku, ['old', 'new', 'new2'], file);
    t.deepEqual(inv.groups?.production, ['old', 'new', 'new2'], file);
    t.deepEqual(inv.warnings, [], file);
  }
});

labTest('ferry plan migrate reads an Ansible YAML and an INI inventory', async (t) => {
  const f = await written();
  for (const file of [f.yml, f.ini]) {
    const r = await ferry(['plan', 'migrate', 'source=old', 'target=new', '-i', file]);
    t.is(r.code, 0, `${file}:\n${r.stdout}${r.stderr}`);
    // the two hosts bound, at the addresses the inventory gives; not new2
    for (const h of ['old', 'new'].map((n) => lab().host(n))) {
      t.true(r.stdout.includes(`root@${h.address}:22`), `${file}: ${h.name} at ${h.address}`);
    }
    t.false(r.stdout.includes(`root@${lab().host('new2').address}:22`), `${file}: not new2`);
    const j = await ferry(['plan', 'migrate', 'source=old', 'target=new', '-i', file, '--json']);
    t.is(j.code, 0, j.stderr);
    const plan = JSON.parse(j.stdout) as {
      bindings: Record<string, { host: string; address: string; sudo: boolean }>;
    };
    t.like(plan.bindings.source, { host: 'old', address: lab().host('old').address, sudo: false });
    t.like(plan.bindings.target, { host: 'new', address: lab().host('new').address, sudo: false });
  }
});

labTest(
  'ferry check reaches every host of an Ansible YAML, INI and extensionless inventory',
  async (t) => {
    const f = await written();
    for (const file of [f.yml, f.ini, f.hosts]) {
      const r = await ferry(['check', '-i', file]);
      t.is(r.code, 0, `${file}:\n${r.stdout}${r.stderr}`);
      for (const h of lab().hosts) {
        t.regex(
          r.stdout,
          new RegExp(
            `^${h.name}\\s+root@${h.address.replace(/\./g, '\\.')}\\s+ok\\s+known, ok`,
            'm',
          ),
          file,
        );
      }
      t.regex(r.stdout, /all 3 host\(s\) ok/);
    }
  },
);

labTest(
  'a hostile address in an Ansible inventory stops ferry before any host is contacted',
  async (t) => {
    const f = await written();
    const bad = join(dir, 'bad.ini');
    writeFileSync(
      bad,
      readFileSync(f.ini, 'utf8').replace(
        `old ansible_host=${lab().host('old').address}`,
        `old ansible_host="${lab().host('old').address}; touch /tmp/ferry-pwned #"`,
      ),
    );
    for (const args of [
      ['check', '-i', bad],
      ['plan', 'migrate', 'source=old', 'target=new', '-i', bad],
    ]) {
      const r = await ferry(args);
      t.is(r.code, 2, r.stdout + r.stderr);
      t.regex(
        r.stderr,
        /bad\.ini:3:19: ansible_host of old: ".*" is not a host name or IP address/,
      );
    }
    const pwned = await lab().host('old').exec('ls /tmp/ferry-pwned');
    t.not(pwned.code, 0, 'nothing ran on the host');
  },
);

/** The seeding of old and the digest of its Dokku files right after. */
let seeding: Promise<string[]> | undefined;
function seeded(): Promise<string[]> {
  const l = lab();
  const old = l.host('old');
  seeding ??= seed(old, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir }).then(
    () => digest(old),
  );
  return seeding;
}

// Seeding takes minutes on a busy machine: a test of its own (AVA's timeout
// counts per test).
labTest('the seeded source, old', async (t) => {
  t.timeout(20 * 60_000);
  const started = Date.now();
  t.true((await seeded()).length > 0);
  t.log(`seeded old in ${Math.round((Date.now() - started) / 1000)} s`);
});

async function migrateBy(t: ExecutionContext, file: string, target: string): Promise<void> {
  t.timeout(20 * 60_000);
  const before = await seeded();
  const started = Date.now();
  const r = await ferry(['migrate', 'old', target, '-i', file, '--leave-source-running']);
  t.log(`migrate old ${target} -i ${file}: ${Math.round((Date.now() - started) / 1000)} s`);
  t.is(r.code, 0, `ferry migrate old ${target} -i ${file} failed:\n${r.stdout}\n${r.stderr}`);
  if (r.code !== 0) return;
  await landed(t, lab().host(target));
  t.deepEqual(
    withoutRunState(await digest(lab().host('old'))),
    withoutRunState(before),
    'the Dokku files of old changed',
  );
}

labTest('ferry migrate driven by the Ansible YAML inventory: old to new', async (t) =>
  migrateBy(t, (await written()).yml, 'new'),
);
