/** The inventory loader: defaults, paths, identity checks, the lab file. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { InputError } from '../../src/errors.js';
import { loadInventory, validateInventory } from '../../src/inventory/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('inventory/lab.yml holds the lab hosts of docs/contracts.md', async (t) => {
  const inv = await loadInventory(`${ROOT}inventory/lab.yml`, { checkIdentity: false });
  t.deepEqual(Object.keys(inv.hosts), ['old', 'new', 'scratch']);
  t.is(inv.hosts.old!.address, '10.251.0.11');
  t.is(inv.hosts.new!.address, '10.251.0.12');
  t.is(inv.hosts.scratch!.address, '10.251.0.13');
  for (const h of Object.values(inv.hosts)) {
    t.is(h.identity, '/var/lib/ferry-lab/default/id_ed25519');
    t.is(h.known_hosts, '/var/lib/ferry-lab/default/known_hosts');
    t.is(h.user, 'root');
    t.is(h.port, 22);
    t.false(h.sudo);
  }
});

test('hosts inherit defaults, their own fields win, schema defaults fill the rest', (t) => {
  const inv = validateInventory(
    `version: 1
defaults:
  user: admin
  sudo: true
hosts:
  a:
    address: 192.0.2.1
  b:
    address: 192.0.2.2
    user: root
    sudo: false
    port: 2222
    host_key: SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU
`,
    '/etc/ferry/inv.yml',
    { home: '/home/u' },
  );
  t.like(inv.hosts.a, { user: 'admin', sudo: true, port: 22, identity: '/home/u/.ssh/id_ed25519' });
  t.like(inv.hosts.b, { user: 'root', sudo: false, port: 2222 });
  t.is(inv.hosts.a!.host_key, undefined);
  t.is(inv.hosts.b!.host_key, 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU');
  t.deepEqual(inv.backup, { dir: '/var/lib/dokku-ferry/archives', keep: 7 });
  t.deepEqual(inv.apps.order, []);
  t.deepEqual(inv.repos, []);
});

test('~ is the home; relative paths are relative to the inventory file', (t) => {
  const inv = validateInventory(
    `version: 1
hosts:
  a:
    address: a.example
    identity: keys/a
    known_hosts: ~/kh
repos:
  - path: ../code/web
    app: web
`,
    '/srv/ferry/inventory/hosts.yml',
    { home: '/home/u' },
  );
  t.is(inv.hosts.a!.identity, '/srv/ferry/inventory/keys/a');
  t.is(inv.hosts.a!.known_hosts, '/home/u/kh');
  t.deepEqual(inv.repos, [{ path: '/srv/ferry/code/web', app: 'web', remote: 'dokku' }]);
});

test('identity files are checked only when asked, one message per place written', (t) => {
  const text =
    'version: 1\ndefaults:\n  identity: /no/key\nhosts:\n  a:\n    address: x\n  b:\n    address: y\n';
  t.notThrows(() => validateInventory(text, 'i.yml'));
  const e = t.throws(() => validateInventory(text, 'i.yml', { fileExists: () => false }), {
    instanceOf: InputError,
  });
  t.is(e.diagnostics.length, 1);
  t.like(e.diagnostics[0], { line: 3, column: 13 });
  t.regex(e.diagnostics[0]!.message, /\/no\/key does not exist/);
  t.notThrows(() => validateInventory(text, 'i.yml', { fileExists: (p) => p === '/no/key' }));
});

test('loadInventory: a missing file is bad input with a hint; identity checked by default', async (t) => {
  const e = await t.throwsAsync(loadInventory('/nonexistent/inventory.yml'), {
    instanceOf: InputError,
  });
  t.is(e.exitCode, 2);
  t.regex(e.message, /does not exist/);
  t.regex(e.hint ?? '', /-i FILE/);

  const dir = mkdtempSync(join(tmpdir(), 'ferry-inv-'));
  try {
    const file = join(dir, 'hosts.yml');
    writeFileSync(file, 'version: 1\nhosts:\n  a:\n    address: x\n    identity: ./missing-key\n');
    const err = await t.throwsAsync(loadInventory(file), { instanceOf: InputError });
    t.regex(err.message, /hosts\.a\.identity: .*missing-key does not exist/);
    await t.notThrowsAsync(loadInventory(file, { checkIdentity: false }));
    writeFileSync(join(dir, 'missing-key'), 'x');
    await t.notThrowsAsync(loadInventory(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every problem of a file is reported at once, in file order', (t) => {
  const e = t.throws(
    () =>
      validateInventory(
        'version: 1\nhosts:\n  a:\n    address: x\n    port: 0\n    colour: red\n  b:\n    user: root\nbackup:\n  keep: -1\n',
        'i.yml',
      ),
    { instanceOf: InputError },
  );
  t.deepEqual(
    e.diagnostics.map((d) => d.line),
    [5, 6, 7, 10],
  );
  t.true(e.message.startsWith('4 problems:\n'));
});
