/**
 * The parsers of flag values (src/commands/options.ts), called directly with
 * what `parseArgs` gives; cli.test.ts covers them through `ferry` itself.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  domainSuffixOf,
  parallelOf,
  recipientsOf,
  renamesOf,
  selectionOf,
} from '../../src/commands/options.js';
import { UsageError } from '../../src/errors.js';

const X25519 = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const SSH = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN';

test('selectionOf: absent with no flag; the four lists as given; bad names are a usage error', (t) => {
  t.deepEqual(selectionOf({}), {});
  t.deepEqual(selectionOf({ app: [], json: true }), {});
  t.deepEqual(selectionOf({ app: ['notes', 'api'], 'exclude-service': ['redis/cache'] }), {
    selection: {
      apps: ['notes', 'api'],
      excludeApps: [],
      services: [],
      excludeServices: ['redis/cache'],
    },
  });
  const bad = t.throws(() => selectionOf({ service: ['db'], 'exclude-app': ["x';reboot"] }), {
    instanceOf: UsageError,
  });
  t.regex(bad.message, /--exclude-app x';reboot: not an app name Dokku accepts/);
  t.regex(bad.message, /--service db: expected PLUGIN\/NAME/);
  t.regex(bad.hint ?? '', /PLUGIN\/NAME/);
  t.throws(() => selectionOf({ app: ['a'], 'exclude-app': ['a'] }), {
    message: /app a is both taken/,
  });
});

test('renamesOf: apps and services by their old names; a malformed or clashing rename is refused', (t) => {
  t.deepEqual(renamesOf({}), {});
  t.deepEqual(renamesOf({ rename: ['notes=memo', 'postgres/notes-db=memo-db'] }), {
    rename: { apps: { notes: 'memo' }, services: { 'postgres/notes-db': 'memo-db' } },
  });
  t.throws(() => renamesOf({ rename: ['notes'] }), {
    instanceOf: UsageError,
    message: /--rename notes: expected OLD=NEW/,
  });
  t.throws(() => renamesOf({ rename: ['notes=Memo'] }), { message: /an app name must begin/ });
});

test('parallelOf: a whole number of hosts from 1 to 64', (t) => {
  t.deepEqual(parallelOf({}), {});
  t.deepEqual(parallelOf({ parallel: '1' }), { parallel: 1 });
  t.deepEqual(parallelOf({ parallel: '64' }), { parallel: 64 });
  for (const p of ['0', '65', '-1', '2.5', '3 ', 'two', '']) {
    t.throws(() => parallelOf({ parallel: p }), {
      instanceOf: UsageError,
      message: /--parallel takes a number of hosts from 1 to 64/,
    });
  }
});

test('recipientsOf: age and ssh-ed25519 recipients, normalised; anything else is refused', (t) => {
  t.is(recipientsOf(undefined), undefined);
  t.is(recipientsOf([]), undefined);
  t.deepEqual(recipientsOf([X25519, `${SSH} ops@example`]), [X25519, SSH]);
  const e = t.throws(() => recipientsOf([X25519, '-r /etc/passwd']), { instanceOf: UsageError });
  t.regex(e.message, /--encrypt "-r \/etc\/passwd" is not an age recipient/);
  t.regex(e.hint ?? '', /X25519 public key/);
  const long = t.throws(() => recipientsOf(['x'.repeat(200)]), { instanceOf: UsageError });
  t.regex(long.message, /"x{80}…"/);
});

test('recipientsOf: a file of recipients, as age -R reads it; its errors name the line and never echo it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-recipients-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, body: string | Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };
  const pub = file('id_ed25519.pub', `${SSH} ops@laptop\n`);
  const team = file('team.txt', `# the ops team\n\n${X25519}\r\n  ${SSH}  \n`);
  t.deepEqual(recipientsOf([pub]), [SSH]);
  t.deepEqual(recipientsOf([team, X25519]), [X25519, SSH, X25519]);

  const secret = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
  const identity = file('key.txt', `# created: 2026-11-29\n# public key: ${X25519}\n${secret}\n`);
  const e1 = t.throws(() => recipientsOf([identity]), { instanceOf: UsageError });
  t.is(e1.message, `--encrypt ${identity}:3: a private key, not a recipient`);
  t.regex(e1.hint ?? '', /age-keygen -y/);
  const pem = file('id_ed25519', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n');
  t.regex(t.throws(() => recipientsOf([pem]))!.message, /id_ed25519:1: a private key/);

  const bad = file('bad.txt', `${X25519}\nssh-rsa AAAAB3NzaC1yc2E hunter2\n`);
  const e2 = t.throws(() => recipientsOf([bad]), { instanceOf: UsageError });
  t.is(e2.message, `--encrypt ${bad}:2: not an age recipient`);
  t.false(`${e2.message}${e2.hint}`.includes('hunter2'), 'the line is not echoed');
  const binary = file('blob.bin', Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 0x80]));
  t.is(
    t.throws(() => recipientsOf([binary]))!.message,
    `--encrypt ${binary}:1: not an age recipient`,
  );
  t.regex(
    t.throws(() => recipientsOf([file('empty', '# nobody\n')]))!.message,
    /no recipient in it/,
  );
  t.regex(
    t.throws(() => recipientsOf([file('big', 'x'.repeat(70_000))]))!.message,
    /over 64 KiB, not a recipients file/,
  );
  // a folder, or a path that is not there, is still just a bad value
  t.regex(
    t.throws(() => recipientsOf([dir]))!.message,
    /is not an age recipient, nor a file of them/,
  );
});

test('domainSuffixOf: a DNS name, lower-cased, without its final dot', (t) => {
  t.deepEqual(domainSuffixOf({}), {});
  t.deepEqual(domainSuffixOf({ 'domain-suffix': 'Drill.Example.com.' }), {
    domainSuffix: 'drill.example.com',
  });
  for (const d of ['-bad.example', 'a..b', 'under_score.example', 'x'.repeat(64), 'a b', '$(id)']) {
    t.throws(() => domainSuffixOf({ 'domain-suffix': d }), {
      instanceOf: UsageError,
      message: /--domain-suffix must be a DNS name/,
    });
  }
});
