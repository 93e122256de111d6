/**
 * Inventory hosts through ssh_config: an alias is enough, inventory values win,
 * HostName and ProxyJump are checked as addresses at the config's line, and a
 * ProxyJump list becomes a chain of bastions in connection order.
 */
import test from 'ava';
import { InputError } from '../../src/errors.js';
import { validateInventory } from '../../src/inventory/index.js';
import { matchPattern, type SshConfigContext } from '../../src/ssh/config.js';

const HOME = '/home/ann';
const CONFIG = `${HOME}/.ssh/config`;

function ssh(files: Record<string, string>, agentSocket?: string) {
  const context: SshConfigContext = {
    home: HOME,
    localUser: 'ann',
    uid: 1000,
    localHost: 'laptop',
    env: {},
    readFile: (p) => files[p],
    glob: (p) => Object.keys(files).filter((f) => matchPattern(f, p)),
  };
  return { ssh: { context, ...(agentSocket ? { agentSocket } : {}) }, home: HOME };
}

const SSH_CONFIG = `Host prod-old
  HostName 203.0.113.10
  User deploy
  Port 2222
  IdentityFile ~/.ssh/prod_%r
  ProxyJump ops@bastion.example.com:2200

Host prod-new
  HostName 203.0.113.20
  ProxyJump edge,inner

Host inner
  HostName 10.0.0.5
  IdentityFile ~/.ssh/inner

Host edge
  HostName edge.example.com
  User jumper

Host *
  IdentitiesOnly yes
`;

test('an inventory host may be just an ssh_config alias; the config fills what the inventory leaves', (t) => {
  const inv = validateInventory(
    'version: 1\nhosts:\n  prod-old: {}\n  new:\n    address: prod-new\n    user: root\n',
    'i.yml',
    ssh({ [CONFIG]: SSH_CONFIG }, '/run/agent.sock'),
  );
  const old = inv.hosts['prod-old']!;
  t.is(old.address, '203.0.113.10');
  t.is(old.user, 'deploy');
  t.is(old.port, 2222);
  t.deepEqual(old.identities, [`${HOME}/.ssh/prod_deploy`]);
  t.is(old.identity, `${HOME}/.ssh/prod_deploy`);
  t.true(old.identities_only);
  t.is(old.agent, '/run/agent.sock');
  t.is(old.ssh_alias, 'prod-old');
  t.deepEqual(
    old.jump?.map((j) => [j.name, j.user, j.address, j.port]),
    [['bastion.example.com', 'ops', 'bastion.example.com', 2200]],
  );
  const neu = inv.hosts.new!;
  t.is(neu.address, '203.0.113.20');
  t.is(neu.user, 'root', 'a user written in the inventory wins');
  t.is(neu.port, 22);
  t.deepEqual(
    neu.jump?.map((j) => `${j.user}@${j.address}:${j.port}`),
    ['jumper@edge.example.com:22', 'ann@10.0.0.5:22'],
    'edge first, then inner through it; a bastion defaults to the local user, as ssh does',
  );
  t.deepEqual(neu.jump?.[1]?.identities, [`${HOME}/.ssh/inner`]);
});

test('without any ssh_config, a host without an address is refused at its key', (t) => {
  const e = t.throws(() => validateInventory('version: 1\nhosts:\n  a: {}\n', 'i.yml'), {
    instanceOf: InputError,
  });
  t.like(e.diagnostics[0], { line: 3, column: 3 });
  t.regex(e.message, /hosts\.a has no address/);
  const none = t.throws(
    () =>
      validateInventory(
        'version: 1\ndefaults:\n  ssh_config: none\nhosts:\n  a: {}\n',
        'i.yml',
        ssh({ [CONFIG]: 'Host a\n  HostName 10.0.0.1\n' }),
      ),
    { instanceOf: InputError },
  );
  t.regex(none.message, /ssh_config is none/);
});

test('an alias ssh_config does not name is refused; a config path is relative to the inventory', (t) => {
  const e = t.throws(
    () =>
      validateInventory('version: 1\nhosts:\n  typo: {}\n', 'i.yml', ssh({ [CONFIG]: SSH_CONFIG })),
    { instanceOf: InputError },
  );
  t.regex(e.message, /no Host entry for "typo"/);
  const inv = validateInventory(
    'version: 1\ndefaults:\n  ssh_config: ssh/cfg\nhosts:\n  x: {}\n',
    '/srv/inv/hosts.yml',
    ssh({ '/srv/inv/ssh/cfg': 'Host x\n  HostName 192.0.2.1\n' }),
  );
  t.is(inv.hosts.x!.address, '192.0.2.1');
});

test('HostName, User and ProxyJump from ssh_config are checked as the inventory checks them, at their line', (t) => {
  const e = t.throws(
    () =>
      validateInventory(
        'version: 1\nhosts:\n  a: {}\n  b: {}\n  c: {}\n',
        'i.yml',
        ssh({
          [CONFIG]: `Host a
  HostName -oProxyCommand=evil
Host b
  HostName 10.0.0.2
  User "x;rm -rf"
Host c
  HostName 10.0.0.3
  ProxyJump $(reboot)
`,
        }),
      ),
    { instanceOf: InputError },
  );
  t.deepEqual(
    e.diagnostics.map((d) => `${d.file}:${d.line}:${d.column}`),
    [`${CONFIG}:2:12`, `${CONFIG}:5:8`, `${CONFIG}:8:13`],
  );
  t.regex(e.diagnostics[0]!.message, /starts with "-"/);
});

test('a ProxyJump that loops is reported once, not followed forever', (t) => {
  const e = t.throws(
    () =>
      validateInventory(
        'version: 1\nhosts:\n  a: {}\n',
        'i.yml',
        ssh({ [CONFIG]: 'Host a\n  HostName 10.0.0.1\n  ProxyJump b\nHost b\n  ProxyJump a\n' }),
      ),
    { instanceOf: InputError },
  );
  t.regex(e.message, /loops back|more than 8/);
});

test('ProxyCommand is refused: ferry runs no command from ssh_config', (t) => {
  const e = t.throws(
    () =>
      validateInventory(
        'version: 1\nhosts:\n  a: {}\n',
        'i.yml',
        ssh({ [CONFIG]: 'Host a\n  HostName 10.0.0.1\n  ProxyCommand nc %h %p\n' }),
      ),
    { instanceOf: InputError },
  );
  t.like(e.diagnostics[0], { line: 3 });
  t.regex(e.message, /ProxyCommand is not supported/);
});

test('no ssh_config file: the inventory as before; the default key is not required when an agent is there', (t) => {
  const text = 'version: 1\nhosts:\n  a:\n    address: 10.0.0.1\n';
  const inv = validateInventory(text, 'i.yml', ssh({}));
  t.is(inv.hosts.a!.address, '10.0.0.1');
  t.is(inv.hosts.a!.user, 'root');
  t.is(inv.hosts.a!.jump, undefined);
  t.throws(() => validateInventory(text, 'i.yml', { ...ssh({}), fileExists: () => false }), {
    message: /default ~\/\.ssh\/id_ed25519/,
  });
  t.notThrows(() =>
    validateInventory(text, 'i.yml', { ...ssh({}, '/run/agent'), fileExists: () => false }),
  );
});

test('Ansible hosts go through ssh_config as Ansible’s ssh connection does: its variables win, the config fills the rest', (t) => {
  const yml = `all:
  vars:
    ansible_user: root
  children:
    dokku:
      hosts:
        old:
          ansible_host: prod-old
        new:
          ansible_host: prod-new
          ansible_port: 22
`;
  const ini = `[all:vars]
ansible_user=root

[dokku]
old ansible_host=prod-old
new ansible_host=prod-new ansible_port=22
`;
  for (const [text, file] of [
    [yml, 'hosts.yml'],
    [ini, 'hosts.ini'],
  ] as const) {
    const inv = validateInventory(text, file, ssh({ [CONFIG]: SSH_CONFIG }, '/run/agent.sock'));
    const old = inv.hosts.old!;
    t.is(old.address, '203.0.113.10', file);
    t.is(old.user, 'root', `${file}: ansible_user wins over User`);
    t.is(old.port, 2222, `${file}: Port fills an unset ansible_port`);
    t.deepEqual(old.identities, [`${HOME}/.ssh/prod_root`], file);
    t.is(old.agent, '/run/agent.sock', file);
    t.is(old.ssh_alias, 'prod-old', file);
    t.deepEqual(
      old.jump?.map((j) => `${j.user}@${j.address}:${j.port}`),
      ['ops@bastion.example.com:2200'],
      file,
    );
    t.deepEqual(
      inv.hosts.new!.jump?.map((j) => j.address),
      ['edge.example.com', '10.0.0.5'],
      `${file}: a ProxyJump list is a chain`,
    );
  }
  // `none` on all's dokku_ferry: no config read, the host is its ansible_host.
  const none = validateInventory(
    `${yml}  vars:\n    dokku_ferry:\n      ssh_config: none\n`.replace(
      'all:\n  vars:\n    ansible_user: root\n',
      'all:\n',
    ),
    'hosts.yml',
    ssh({ [CONFIG]: SSH_CONFIG }),
  );
  t.is(none.hosts.old!.address, 'prod-old');
  t.is(none.hosts.old!.jump, undefined);
});

test('Ansible: the unwritten default key is not required with an agent; a bad HostName is reported at its line', (t) => {
  const text = '[dokku]\nold ansible_host=10.0.0.1\n';
  t.throws(() => validateInventory(text, 'h.ini', { ...ssh({}), fileExists: () => false }), {
    message: /no ansible_ssh_private_key_file, so ~\/\.ssh\/id_ed25519/,
  });
  const inv = validateInventory(text, 'h.ini', {
    ...ssh({}, '/run/agent'),
    fileExists: () => false,
  });
  t.is(inv.hosts.old!.agent, '/run/agent');
  const e = t.throws(
    () =>
      validateInventory(
        '[dokku]\nold ansible_host=evil\n',
        'h.ini',
        ssh({ [CONFIG]: 'Host evil\n  HostName -oProxyCommand=x\n' }),
      ),
    { instanceOf: InputError },
  );
  t.like(e.diagnostics[0], { file: CONFIG, line: 2 });
});
