/**
 * Encryption at rest without a host: which recipients are accepted (schema
 * and --encrypt), the flags' rules, and what backup --encrypt and restore
 * --identity plan (age on the source inside the stream; age here, over the
 * whole file, before anything is sent). Behaviour is proven in e2e/encrypt.
 */
import { execFileSync } from 'node:child_process';
import test from 'ava';
import { main } from '../../src/cli.js';
import { FerryError, InputError } from '../../src/errors.js';
import { validateInventory } from '../../src/inventory/index.js';
import { plan } from '../../src/plan/index.js';
import { loadPlaybook } from '../../src/playbook/index.js';
import { AGE_RECIPIENT_PATTERN, normaliseRecipient } from '../../src/schema/age.js';
import type { PlannedAction } from '../../src/tasks/types.js';

const RUN = '20261123T100000Z';
const X25519 = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const SSH = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN';

function inventory(backup = ''): ReturnType<typeof validateInventory> {
  return validateInventory(
    `version: 1
hosts:
  old: {address: 192.0.2.10}
  new: {address: 192.0.2.20}
backup:
  dir: /srv/archives
${backup}`,
    '/tmp/inv.yml',
    { home: '/home/u' },
  );
}

async function ferry(...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const sink = (f: (s: string) => void) =>
    ({
      write: (s: string) => {
        f(s);
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  const code = await main(argv, {
    stdout: sink(() => undefined),
    stderr: sink((s) => (err += s)),
    env: {},
    stderrIsTty: false,
  });
  return { code, err };
}

function text(a: PlannedAction | undefined): string {
  if (!a) return '';
  if (a.kind === 'stream') return `${a.send.toString()} => ${a.receive.toString()}`;
  return a.command.toString();
}

test('recipients: X25519 and ssh-ed25519 (comment dropped); anything else refused', (t) => {
  t.is(normaliseRecipient(X25519), X25519);
  t.is(normaliseRecipient(`  ${X25519}\n`), X25519);
  t.is(normaliseRecipient(`${SSH} ops@example`), SSH);
  t.is(normaliseRecipient(SSH), SSH);
  // A real age-keygen key, when age is installed here.
  try {
    const pub = execFileSync('bash', ['-c', 'age-keygen 2>/dev/null | age-keygen -y'], {
      encoding: 'utf8',
    }).trim();
    t.is(normaliseRecipient(pub), pub);
  } catch {
    t.log('age-keygen not installed here: the generated-key case is skipped');
  }
  for (const bad of [
    '',
    'age1',
    X25519.toUpperCase(),
    `${X25519.slice(0, -1)}b`, // b is not Bech32
    `${X25519}x`,
    `-r ${X25519}`,
    `${X25519} -o /tmp/x`,
    `${X25519}\nrm -rf /`,
    'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC',
    `${SSH}=`,
    `${SSH} comment\nnext`,
    SSH.replace('AAAAI', 'AAAAJ'),
    'age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t',
  ]) {
    t.is(normaliseRecipient(bad), undefined, JSON.stringify(bad));
  }
  const re = new RegExp(AGE_RECIPIENT_PATTERN);
  t.true(re.test(X25519) && re.test(`${SSH} ops@example`));
  t.false(re.test(`${X25519}\n`) || re.test('age1 x'));
});

test('inventory backup.encrypt: a list of recipients; a bad one is an error at its line', (t) => {
  const inv = inventory(`  encrypt:\n    - ${X25519}\n    - ${SSH} ops@example\n`);
  t.deepEqual(inv.backup.encrypt, [X25519, `${SSH} ops@example`]);
  t.is(inventory().backup.encrypt, undefined);
  const e = t.throws(() => inventory(`  encrypt:\n    - ${X25519}\n    - "-r /etc/passwd"\n`), {
    instanceOf: InputError,
  });
  t.regex(e.message, /inv\.yml:9:7: backup\.encrypt\[1\] must be an age recipient/);
});

test('--encrypt needs --fetch, takes only recipients, and only backup takes it', async (t) => {
  const noFetch = await ferry('backup', 'old', '--encrypt', X25519, '-i', '/nonexistent.yml');
  t.is(noFetch.code, 2);
  t.regex(noFetch.err, /--encrypt encrypts the copy --fetch DIR brings here/);
  const bad = await ferry('backup', 'old', '--fetch', '/tmp/f', '--encrypt', 'age1nope');
  t.is(bad.code, 2);
  t.regex(bad.err, /--encrypt "age1nope" is not an age recipient/);
  t.regex(bad.err, /X25519 public key/);
  const migrate = await ferry('migrate', 'old', 'new', '--encrypt', X25519);
  t.is(migrate.code, 2);
  t.regex(migrate.err, /does not take --encrypt/);
  const remote = await ferry('restore', 'old:/srv/a/old-1', 'new', '--identity', '/k');
  t.is(remote.code, 2);
  t.regex(remote.err, /--identity decrypts a copy on this machine/);
  const missing = await ferry(
    'restore',
    '/tmp/a',
    'new',
    '--identity',
    '/nonexistent/key',
    '-i',
    '/nonexistent.yml',
  );
  t.is(missing.code, 2);
  t.regex(missing.err, /--identity \/nonexistent\/key: no such file/);
  const help = await ferry('backup', '--help');
  t.is(help.code, 0);
});

test('backup --encrypt plans age on the source inside the stream; nothing decrypts here', async (t) => {
  const pb = await loadPlaybook('backup');
  const inv = inventory(`  encrypt: [${X25519}]\n`);
  const fetchOf = (o: { encrypt?: string[] }) =>
    plan(pb, inv, { source: 'old' }, { runId: RUN, fetch: '/tmp/my backups', ...o }).steps.at(-1)!;
  const fromInventory = fetchOf({});
  t.deepEqual(
    fromInventory.actions.map((a) => `${a.id}${a.item ? `:${a.item}` : ''}`),
    [
      'prepare-encrypt',
      'archive-name',
      'fetch-meta',
      'fetch-encrypted:zstd',
      'fetch-encrypted:gzip',
      'fetch-image',
      'sent-sums',
      'check-here',
      'write-sums',
    ],
  );
  const all = fromInventory.actions.map(text).join('\n');
  t.regex(all, new RegExp(`age --encrypt -r ${X25519}`));
  t.notRegex(all, /age --decrypt|tar[^|]* -x/, 'nothing is decrypted or unpacked here');
  const archive = fromInventory.actions.find((a) => a.id === 'fetch-encrypted')!;
  t.true(archive.kind === 'stream' && archive.to === 'controller');
  if (archive.kind === 'stream') {
    // The plaintext's sum before age, the ciphertext's after it, on the source.
    t.regex(archive.send.toString(), /\/sent\/archive .*age --encrypt .*\/sent\/archive\.age/s);
    t.regex(
      archive.receive.toString(),
      /cat > '\/tmp\/my backups\/old-.*dokku\.tar\.zst\.age\.part'/,
    );
  }
  // Each saved image (and their sums) is encrypted on the host too, into images/<file>.age here.
  const image = fromInventory.actions.find((a) => a.id === 'fetch-image')!;
  t.true(image.kind === 'stream' && image.to === 'controller');
  if (image.kind === 'stream') {
    t.regex(
      image.send.toString(),
      /cat -- .*\/images\/<file> \| age --encrypt .*\/sent\/images\/<file>\.age/s,
    );
    t.regex(
      image.receive.toString(),
      /cat > '\/tmp\/my backups\/old-[^']*'\/images\/<file>\.age\.part/,
    );
  }
  // --encrypt replaces the inventory's list; an ssh key is one quoted word.
  const given = fetchOf({ encrypt: [SSH] });
  const g = given.actions.map(text).join('\n');
  t.true(g.includes(`age --encrypt -r '${SSH}'`));
  t.false(g.includes(X25519));
  // No recipients anywhere: the plain fetch, as before.
  const plain = plan(pb, inventory(), { source: 'old' }, { runId: RUN, fetch: '/tmp/f' });
  t.deepEqual(
    plain.steps.at(-1)!.actions.map((a) => a.id),
    ['fetch', 'check-here'],
  );
});

test('restore --identity: sums and age over each whole file here, then age streams to the target', async (t) => {
  const pb = await loadPlaybook('restore');
  const inv = inventory();
  const p = plan(
    pb,
    inv,
    { target: 'new' },
    { runId: RUN, archive: { path: '/b/old-1' }, ageIdentity: '/home/u/my key.txt' },
  );
  const transfer = p.steps.find((s) => s.task === 'transfer')!;
  const ids = transfer.actions.map((a) => `${a.id}${a.item ? `:${a.item}` : ''}`);
  const at = (id: string) => ids.indexOf(id);
  for (const id of ['ciphertext-sums', 'authenticate:meta', 'authenticate:zstd']) {
    t.true(at(id) >= 0 && at(id) < at('meta'), `${id} before anything is sent`);
  }
  const byId = (id: string, item?: string) =>
    text(transfer.actions.find((a) => a.id === id && (item === undefined || a.item === item)));
  t.is(
    byId('archive-name'),
    'cd /b/old-1 && { ls -1 dokku.tar.zst.age dokku.tar.gz.age 2>/dev/null || true; } | head -n 1',
  );
  t.is(
    byId('authenticate', 'zstd'),
    "age --decrypt -i '/home/u/my key.txt' -o /dev/null -- /b/old-1/dokku.tar.zst.age",
  );
  t.regex(
    byId('meta'),
    /^age --decrypt -i '\/home\/u\/my key\.txt' -- \/b\/old-1\/meta\.tar\.age => tar -xf - /,
  );
  t.regex(byId('archive', 'gzip'), /^age --decrypt .* -- \/b\/old-1\/dokku\.tar\.gz\.age => /);
  // The images come out of images/<file>.age, decrypted as a stream on the way to the target.
  const carry = p.steps.find((s) => s.task === 'carry-images')!;
  const carried = (id: string) => text(carry.actions.find((a) => a.id === id));
  t.is(
    carried('archived-images'),
    "if [ -f /b/old-1/images/SHA256SUMS.age ]; then age --decrypt -i '/home/u/my key.txt' -- /b/old-1/images/SHA256SUMS.age; fi",
  );
  t.regex(
    carried('archived-image'),
    /^age --decrypt -i '\/home\/u\/my key\.txt' -- \/b\/old-1\/images\/<file>\.age => .*docker load/s,
  );
  // A named file fixes the compression.
  const named = plan(
    pb,
    inv,
    { target: 'new' },
    { runId: RUN, archive: { path: '/b/old-1/dokku.tar.gz.age' }, ageIdentity: '/k' },
  );
  const items = named.steps
    .find((s) => s.task === 'transfer')!
    .actions.filter((a) => a.id === 'archive' || a.id === 'authenticate')
    .map((a) => a.item);
  t.deepEqual(items, ['meta', 'gzip', 'gzip']);
  // On a host: refused (the identity stays here).
  t.throws(
    () =>
      plan(
        pb,
        inv,
        { target: 'new', source: 'old' },
        { runId: RUN, archive: { host: 'old', path: '/b/old-1' }, ageIdentity: '/k' },
      ),
    { instanceOf: FerryError, message: /--identity decrypts an archive on this machine/ },
  );
});
