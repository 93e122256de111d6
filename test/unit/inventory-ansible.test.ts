/**
 * Ansible inventories, YAML and INI, read as Ansible reads them: groups,
 * children, ranges, variable precedence, INI's quoting and value types, the
 * connection variables ferry maps, its own `dokku_ferry` variable, and the
 * format detection that tells them from ferry's own inventories.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { InputError } from '../../src/errors.js';
import { iniValue, splitWords } from '../../src/inventory/ansible-ini.js';
import { expandHostPattern, MAX_RANGE_HOSTS } from '../../src/inventory/host-patterns.js';
import {
  groupMembers,
  type Inventory,
  inventoryFormat,
  loadInventory,
  validateInventory,
} from '../../src/inventory/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HOME = '/home/u';
const KEY = `SHA256:${'47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU'}`;

const read = (text: string, file = '/srv/inv/hosts.yml'): Inventory =>
  validateInventory(text, file, { home: HOME });

/** The groups with their members sorted by name, for comparing two inventories. */
function sortedGroups(inv: Inventory): [string, string[]][] {
  return Object.entries(inv.groups ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
}

test('the shipped examples: the YAML and the INI inventory are the same inventory', async (t) => {
  const yml = await loadInventory(`${ROOT}inventory/ansible.example.yml`, { checkIdentity: false });
  const ini = await loadInventory(`${ROOT}inventory/ansible.example.ini`, { checkIdentity: false });
  t.is(yml.format, 'ansible-yaml');
  t.is(ini.format, 'ansible-ini');
  t.deepEqual(ini.hosts, yml.hosts);
  t.deepEqual(sortedGroups(ini), sortedGroups(yml));
  t.deepEqual([ini.apps, ini.repos, ini.backup], [yml.apps, yml.repos, yml.backup]);
  t.deepEqual(ini.warnings, []);
  t.deepEqual(Object.keys(yml.hosts), [
    'old',
    'new',
    'web01.example.com',
    'web02.example.com',
    'web03.example.com',
  ]);
  t.like(yml.hosts.old, {
    address: '203.0.113.10',
    port: 22,
    user: 'deploy',
    sudo: true,
    host_key: KEY,
  });
  t.like(yml.hosts.new, { address: 'new.example.com', port: 2222, user: 'deploy', sudo: true });
  t.is(yml.hosts.new!.host_key, undefined);
  // web's vars (a child of production, a child of all) win over all's.
  t.like(yml.hosts['web02.example.com'], { user: 'root', sudo: false });
  t.true(yml.hosts.old!.identity.endsWith('/.ssh/deploy_ed25519'));
  t.deepEqual(yml.apps.order, ['db-migrator', 'api', 'web']);
  t.is(yml.repos[0]!.remote, 'dokku');
  t.deepEqual(yml.backup, { dir: '/var/lib/dokku-ferry/archives', keep: 7 });
  t.deepEqual(groupMembers(yml, 'dokku'), ['old', 'new']);
  t.deepEqual(groupMembers(yml, 'production'), Object.keys(yml.hosts));
  t.deepEqual(groupMembers(yml, 'ungrouped'), []);
  t.is(groupMembers(yml, 'nope'), undefined);
});

test("Ansible's documentation inventory: groups of groups, hosts in several groups", (t) => {
  // The shape of the example in Ansible's "How to build your inventory".
  const ini = read(
    `mail.example.com

[webservers]
foo.example.com
bar.example.com

[dbservers]
one.example.com
two.example.com
three.example.com

[atlanta]
host1 ansible_host=192.0.2.1
host2 ansible_host=192.0.2.2

[raleigh]
host2 ansible_host=192.0.2.2
host3 ansible_host=192.0.2.3

[southeast:children]
atlanta
raleigh

[southeast:vars]
some_server=foo.southeast.example.com
halon_system_timeout=30
escape_pods=2

[usa:children]
southeast
northeast
southwest
northwest

[northeast]
[southwest]
[northwest]
`,
    '/etc/ansible/hosts',
  );
  t.is(ini.format, 'ansible-ini');
  t.deepEqual(groupMembers(ini, 'ungrouped'), ['mail.example.com']);
  t.deepEqual(groupMembers(ini, 'southeast'), ['host1', 'host2', 'host3']);
  t.deepEqual(groupMembers(ini, 'usa'), ['host1', 'host2', 'host3']);
  t.deepEqual(groupMembers(ini, 'northeast'), []);
  t.is(ini.hosts.host2!.address, '192.0.2.2');
  t.is(ini.hosts['mail.example.com']!.address, 'mail.example.com');
  t.is(groupMembers(ini, 'all')!.length, 9);

  const yml = read(`ungrouped:
  hosts:
    mail.example.com:
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
east:
  hosts:
    foo.example.com:
    one.example.com:
    two.example.com:
west:
  hosts:
    bar.example.com:
    three.example.com:
prod:
  children:
    east:
test:
  children:
    west:
`);
  t.is(yml.format, 'ansible-yaml');
  t.deepEqual(groupMembers(yml, 'prod'), ['foo.example.com', 'one.example.com', 'two.example.com']);
  t.deepEqual(groupMembers(yml, 'ungrouped'), ['mail.example.com']);
  t.is(Object.keys(yml.hosts).length, 6);
});

test('variables: host over child group over parent group over all; priority; name order', (t) => {
  const inv = read(`all:
  vars:
    ansible_port: 2201
    ansible_user: fromall
    ansible_become: yes
  children:
    parent:
      vars:
        ansible_port: 2202
        ansible_user: fromparent
      children:
        child:
          vars:
            ansible_port: 2203
          hosts:
            a:
              ansible_port: 2204
            b:
    zeta:
      vars: {ansible_user: fromzeta}
      hosts: {c:}
    alpha:
      vars: {ansible_user: fromalpha}
      hosts: {c:}
    low:
      vars: {ansible_user: fromlow, ansible_group_priority: 10}
      hosts: {d:}
    high:
      vars: {ansible_user: fromhigh}
      hosts: {d:}
`);
  t.like(inv.hosts.a, { port: 2204, user: 'fromparent', sudo: true });
  t.like(inv.hosts.b, { port: 2203, user: 'fromparent' });
  // Same depth: by name, the later wins.
  t.is(inv.hosts.c!.user, 'fromzeta');
  // ansible_group_priority: higher is applied later, so it wins.
  t.is(inv.hosts.d!.user, 'fromlow');
});

test('connection variables: current names, old aliases, defaults; become is a boolean', (t) => {
  const inv = read(`all:
  hosts:
    a:
      ansible_ssh_host: 192.0.2.1
      ansible_ssh_port: "2222"
      ansible_ssh_user: admin
      ansible_private_key_file: keys/a
      ansible_become: "True"
    b:
      ansible_host: "[2001:db8::2]"
      ansible_become: "no"
      dokku_ferry: {known_hosts: ./kh}
    c:
      ansible_host: 192.0.2.3
      ansible_connection: ssh
      ansible_become: 1
      ansible_become_method: sudo
      ansible_become_user: root
`);
  t.deepEqual(inv.hosts.a, {
    name: 'a',
    address: '192.0.2.1',
    port: 2222,
    user: 'admin',
    identity: '/srv/inv/keys/a',
    known_hosts: '/home/u/.ssh/known_hosts',
    sudo: true,
  });
  t.like(inv.hosts.b, {
    address: '2001:db8::2',
    port: 22,
    user: 'root',
    identity: '/home/u/.ssh/id_ed25519',
    known_hosts: '/srv/inv/kh',
    sudo: false,
  });
  t.like(inv.hosts.c, { sudo: true });
});

test('dokku_ferry: each key from the most specific place that sets it', (t) => {
  const inv = read(`all:
  vars:
    dokku_ferry:
      known_hosts: ~/kh-all
      apps: {order: [api]}
      repos: [{path: ../web, app: web, remote: production}]
      backup: {keep: 3}
  children:
    eu:
      vars:
        dokku_ferry: {known_hosts: ~/kh-eu}
      hosts:
        a:
          dokku_ferry: {host_key: "${KEY}"}
        b:
    us:
      hosts:
        c:
`);
  t.like(inv.hosts.a, { known_hosts: '/home/u/kh-eu', host_key: KEY });
  t.like(inv.hosts.b, { known_hosts: '/home/u/kh-eu' });
  t.is(inv.hosts.b!.host_key, undefined);
  t.like(inv.hosts.c, { known_hosts: '/home/u/kh-all' });
  t.deepEqual(inv.apps.order, ['api']);
  t.deepEqual(inv.repos, [{ path: '/srv/web', app: 'web', remote: 'production' }]);
  t.deepEqual(inv.backup, { dir: '/var/lib/dokku-ferry/archives', keep: 3 });
});

test('warnings: what ferry ignores or leaves out, once where it is written', (t) => {
  const inv = read(`all:
  vars:
    ansible_ssh_common_args: -o StrictHostKeyChecking=no
    ansible_become_password: hunter2
  hosts:
    localhost:
      ansible_connection: local
    a:
      ansible_host: 192.0.2.1
    b:
      ansible_host: 192.0.2.2
  children:
    a:
      hosts:
        b:
`);
  t.deepEqual(Object.keys(inv.hosts), ['a', 'b']);
  t.deepEqual(
    inv.warnings!.map((w) => `${w.line}:${w.column} ${w.message.split(':')[0]}`),
    [
      '3:30 ansible_ssh_common_args of group all is ignored',
      '4:30 ansible_become_password of group all is ignored',
      '6:5 host localhost is left out',
      "8:5 a names both a host and a group; on ferry's command line it means the host",
    ],
  );
  t.false(groupMembers(inv, 'all')!.includes('localhost'));
});

test('values ferry does not read may be anything: templates, vault, !unsafe, lists', (t) => {
  const inv = read(`all:
  vars:
    secret: !vault |
      $ANSIBLE_VAULT;1.1;AES256
      6231336539666234
    motd: "{{ lookup('file', 'motd') }}"
    raw: !unsafe "{{ not a template }}"
    packages: [nginx, git]
  hosts:
    a:
      ansible_host: !unsafe 192.0.2.1
`);
  t.is(inv.hosts.a!.address, '192.0.2.1');
  t.deepEqual(inv.warnings, []);
});

test('host patterns: ports, ranges (padded, letters, steps, several), a bound', (t) => {
  t.deepEqual(expandHostPattern('web1'), { names: ['web1'] });
  t.deepEqual(expandHostPattern('web1:2222'), { names: ['web1'], port: 2222 });
  t.deepEqual(expandHostPattern('[2001:db8::1]:2222'), { names: ['2001:db8::1'], port: 2222 });
  t.deepEqual(expandHostPattern('2001:db8::1'), { names: ['2001:db8::1'] });
  t.deepEqual(expandHostPattern('web[01:03].example.com'), {
    names: ['web01.example.com', 'web02.example.com', 'web03.example.com'],
  });
  t.deepEqual(expandHostPattern('db-[a:c]'), { names: ['db-a', 'db-b', 'db-c'] });
  t.deepEqual(expandHostPattern('n[0:10:5]'), { names: ['n0', 'n5', 'n10'] });
  t.deepEqual(expandHostPattern('r[1:2]c[a:b]:22'), {
    names: ['r1ca', 'r1cb', 'r2ca', 'r2cb'],
    port: 22,
  });
  t.deepEqual(expandHostPattern('w[:2]'), { names: ['w0', 'w1', 'w2'] });
  for (const [p, why] of [
    ['web[1:3', /without "]"/],
    ['web[3:1]', /begin <= end/],
    ['web[01:3]', /same length/],
    ['web[1:2:0]', /step/],
    ['web[a:3]', /numbers/],
    ['web:', /cannot end in ":"/],
    ['web:70000', /not between 1 and 65535/],
    [`web[0:${MAX_RANGE_HOSTS}]`, /more than 10000 hosts/],
    ['a[0:999]b[0:999]', /more than 10000 hosts/],
  ] as const) {
    const r = expandHostPattern(p);
    t.true('problem' in r, p);
    if ('problem' in r) t.regex(r.problem, why, p);
  }
});

test("INI host lines are split as Python's shlex.split(line, comments=True) splits them", (t) => {
  // Each expectation is what Python 3.11's shlex gave for the same line.
  const cases: [string, string[]][] = [
    ['web1 ansible_host=10.0.0.1 # the first', ['web1', 'ansible_host=10.0.0.1']],
    ['web2 a="two words" b=\'single $x\' c=x\\ y', ['web2', 'a=two words', 'b=single $x', 'c=x y']],
    ['web3 msg="say \\"hi\\"" path=\'C:\\dir\'', ['web3', 'msg=say "hi"', 'path=C:\\dir']],
    ['web4 k=a#b other=1', ['web4', 'k=a']],
    ['web5 k="a#b" j=\'{"x": 1}\'', ['web5', 'k=a#b', 'j={"x": 1}']],
    ['web6 a"b c"d', ['web6', 'ab cd']],
  ];
  for (const [line, words] of cases) {
    t.deepEqual(
      splitWords(line).map((w) => w.text),
      words,
      line,
    );
  }
  t.deepEqual(
    splitWords('  web1   a=1').map((w) => w.start),
    [2, 9],
  );
  t.throws(() => splitWords('web "open'), { message: /no closing quotation/ });
});

test("INI values are read as Ansible's literal_eval reads them", (t) => {
  const v = (raw: string) =>
    iniValue(raw, { file: 'h', line: 1, column: 1, of: 'x', name: 'k' }).value;
  t.is(v('2222'), 2222);
  t.is(v('0022'), '0022');
  t.is(v('-3'), -3);
  t.is(v('1.5'), 1.5);
  t.is(v('True'), true);
  t.is(v('true'), 'true');
  t.is(v('None'), null);
  t.is(v("'03#pa33w0rd'"), '03#pa33w0rd');
  t.is(v('"a\\tb"'), 'a\tb');
  t.is(v('8080 # comment'), 8080);
  t.is(v('pool.example # x'), 'pool.example # x');
  t.deepEqual(v('{"a": [1, 2], \'b\': True}'), { a: [1, 2], b: true });
  t.is(v('{not: closed'), '{not: closed');
});

test('INI: ungrouped hosts, host:port, quoted values, comments, children declared later', (t) => {
  const inv = read(
    `; a comment
# another
old.example.com:2222 ansible_user=admin   # trailing comment

[dokku]
new ansible_host="192.0.2.20" ansible_become=True dokku_ferry='{"host_key": "${KEY}"}'

[prod:children]
dokku
web

[web]
web[1:2] ansible_host=192.0.2.30

[dokku:vars]
ansible_port = 2200 # a comment after a literal is dropped
ansible_user=deploy
`,
    '/srv/inv/hosts.ini',
  );
  t.like(inv.hosts['old.example.com'], { port: 2222, user: 'admin', address: 'old.example.com' });
  t.like(inv.hosts.new, {
    address: '192.0.2.20',
    sudo: true,
    port: 2200,
    user: 'deploy',
    host_key: KEY,
  });
  t.deepEqual(groupMembers(inv, 'prod'), ['new', 'web1', 'web2']);
  t.deepEqual(groupMembers(inv, 'ungrouped'), ['old.example.com']);
});

test('format detection: by extension, then by the first line', (t) => {
  t.is(inventoryFormat('anything', 'hosts.ini'), 'ini');
  t.is(inventoryFormat('[web]\nweb1', 'hosts.yml'), 'yaml');
  t.is(inventoryFormat('[web]\nweb1', 'hosts.YAML'), 'yaml');
  t.is(inventoryFormat('[web]\nweb1', 'hosts'), 'ini');
  t.is(inventoryFormat('web1 ansible_host=1.2.3.4 note="a: b"', 'hosts'), 'ini');
  t.is(inventoryFormat('host:2222\n', 'hosts'), 'ini');
  t.is(inventoryFormat('# c\n\nall:\n  hosts:\n', 'hosts'), 'yaml');
  t.is(inventoryFormat('version: 1\n', 'inventory'), 'yaml');
  t.is(inventoryFormat('---\nall:\n', 'hosts.cfg'), 'yaml');
  t.is(inventoryFormat('{"all": {}}', 'hosts.txt'), 'yaml');
  // A YAML mapping is ferry's own format with `version`, Ansible's without.
  t.is(read('version: 1\nhosts:\n  a:\n    address: 192.0.2.1\n').format, 'ferry');
  t.is(read('web:\n  hosts:\n    a:\n').format, 'ansible-yaml');
  // Neither: ferry's format explains what is missing.
  const e = t.throws(() => read('hosts:\n  a:\n    address: 192.0.2.1\n'), {
    instanceOf: InputError,
  });
  t.regex(e.message, /missing "version"/);
});

test('loadInventory reads an INI file and an extensionless one, and checks identity files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ansible-'));
  try {
    writeFileSync(join(dir, 'key'), 'x');
    const text = '[dokku]\nold ansible_host=192.0.2.1 ansible_ssh_private_key_file=./key\n';
    for (const name of ['hosts.ini', 'hosts']) {
      writeFileSync(join(dir, name), text);
      const inv = await loadInventory(join(dir, name));
      t.is(inv.format, 'ansible-ini');
      t.is(inv.hosts.old!.identity, join(dir, 'key'));
    }
    writeFileSync(
      join(dir, 'hosts.ini'),
      '[dokku]\nold ansible_host=192.0.2.1 ansible_ssh_private_key_file=./missing\n',
    );
    const e = await t.throwsAsync(loadInventory(join(dir, 'hosts.ini')), {
      instanceOf: InputError,
    });
    t.regex(
      e.message,
      /hosts\.ini:2:57: ansible_ssh_private_key_file of old: .*missing does not exist/,
    );
    await t.notThrowsAsync(loadInventory(join(dir, 'hosts.ini'), { checkIdentity: false }));
    // Ansible would read group_vars/ beside the file; ferry says it does not.
    mkdirSync(join(dir, 'group_vars'));
    const warned = await loadInventory(join(dir, 'hosts.ini'), { checkIdentity: false });
    t.deepEqual(
      warned.warnings?.map((w) => w.message),
      ['group_vars/ is not read: ferry takes variables from the inventory file only'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ferry own inventories keep their shape and gain format, groups and warnings', (t) => {
  const inv = read(
    'version: 1\nhosts:\n  a:\n    address: 192.0.2.1\n  b:\n    address: b.example\n',
  );
  t.is(inv.format, 'ferry');
  t.deepEqual(inv.groups, { all: ['a', 'b'] });
  t.deepEqual(inv.warnings, []);
  t.deepEqual(groupMembers(inv, 'all'), ['a', 'b']);
  // An inventory built by hand (no groups) still has `all`.
  t.deepEqual(groupMembers({ ...inv, groups: undefined }, 'all'), ['a', 'b']);
});

test('missing identity files: one message per place written, one for the default', (t) => {
  const text = `[web]
a
b ansible_ssh_private_key_file=/keys/b
c

[db]
d
e

[db:vars]
ansible_ssh_private_key_file=/keys/db
`;
  const e = t.throws(
    () => validateInventory(text, 'h.ini', { home: HOME, fileExists: () => false }),
    { instanceOf: InputError },
  );
  t.deepEqual(
    e.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`),
    [
      '2:1 the identity file of a and 1 other host(s) (no ansible_ssh_private_key_file, so ~/.ssh/id_ed25519): /home/u/.ssh/id_ed25519 does not exist',
      '3:32 ansible_ssh_private_key_file of b: /keys/b does not exist',
      '11:30 ansible_ssh_private_key_file of group db: /keys/db does not exist',
    ],
  );
  t.notThrows(() => validateInventory(text, 'h.ini', { home: HOME, fileExists: () => true }));
});
