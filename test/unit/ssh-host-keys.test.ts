import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  entryMatches,
  fingerprintOf,
  hostKeyOf,
  keyTypeOf,
  knownHostsLine,
  knownHostsName,
  knownKeyTypes,
  normaliseFingerprint,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/ssh/host-keys.js';

/** Real keys from ssh-keygen, so fingerprints are checked against OpenSSH itself. */
const dir = mkdtempSync(join(tmpdir(), 'ferry-hk-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function makeKey(name: string, type = 'ed25519'): { blob: Buffer; line: string; fp: string } {
  const f = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', f]);
  const line = readFileSync(`${f}.pub`, 'utf8').trim();
  const fp =
    execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${f}.pub`], {
      encoding: 'utf8',
    }).split(' ')[1] ?? '';
  return { blob: Buffer.from(line.split(' ')[1] ?? '', 'base64'), line, fp };
}

const k1 = makeKey('k1');
const k2 = makeKey('k2');
const ecdsa = makeKey('k3', 'ecdsa');

test('fingerprint matches ssh-keygen -l', (t) => {
  t.is(fingerprintOf(k1.blob), k1.fp);
  t.is(fingerprintOf(ecdsa.blob), ecdsa.fp);
  t.not(fingerprintOf(k1.blob), fingerprintOf(k2.blob));
  t.regex(k1.fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
});

test('key type is read from the blob', (t) => {
  t.is(keyTypeOf(k1.blob), 'ssh-ed25519');
  t.is(keyTypeOf(ecdsa.blob), 'ecdsa-sha2-nistp256');
  t.is(keyTypeOf(Buffer.from([0, 0])), 'unknown');
  t.is(hostKeyOf(k1.blob).base64, k1.line.split(' ')[1] ?? 'missing');
});

test('fingerprints are normalised as users write them', (t) => {
  const bare = k1.fp.slice('SHA256:'.length);
  t.is(normaliseFingerprint(`sha256:${bare}=`), k1.fp);
  t.is(normaliseFingerprint(`  ${k1.fp} `), k1.fp);
});

test('known_hosts names: plain on port 22, [host]:port otherwise', (t) => {
  t.is(knownHostsName('10.0.0.1', 22), '10.0.0.1');
  t.is(knownHostsName('10.0.0.1', 2222), '[10.0.0.1]:2222');
  t.is(
    knownHostsLine('h', 2222, hostKeyOf(k1.blob)),
    `[h]:2222 ${k1.line.split(' ').slice(0, 2).join(' ')}`,
  );
});

test('parses plain, port, marker, comment and bad lines', (t) => {
  const text = [
    '# comment',
    '',
    `a.example,10.0.0.1 ${k1.line}`,
    `[b.example]:2222 ${k2.line.split(' ').slice(0, 2).join(' ')}`,
    `@revoked * ${ecdsa.line}`,
    '@bogus x ssh-ed25519 AAAA',
    'only-two fields',
  ].join('\n');
  const e = parseKnownHosts(text);
  t.is(e.length, 3);
  t.deepEqual(e[0]?.patterns, ['a.example', '10.0.0.1']);
  t.is(e[0]?.line, 3);
  t.is(e[2]?.marker, 'revoked');
});

test('wildcards and negation', (t) => {
  const [e] = parseKnownHosts(`*.example,!bad.example ${k1.line}`);
  if (!e) return t.fail();
  t.true(entryMatches(e, 'good.example'));
  t.false(entryMatches(e, 'bad.example'));
  t.false(entryMatches(e, 'example.org'));
  const [q] = parseKnownHosts(`10.0.0.? ${k1.line}`);
  if (!q) return t.fail();
  t.true(entryMatches(q, '10.0.0.7'));
  t.false(entryMatches(q, '10.0.0.17'));
});

test('hashed entries (ssh-keygen -H) match their host and port', (t) => {
  const f = join(dir, 'known_hashed');
  writeFileSync(f, `10.1.2.3 ${k1.line}\n[10.1.2.4]:2222 ${k2.line}\n`);
  execFileSync('ssh-keygen', ['-q', '-H', '-f', f], { stdio: 'ignore' });
  const text = readFileSync(f, 'utf8');
  t.true(text.startsWith('|1|'));
  t.false(text.includes('10.1.2.3'));
  const k1key = hostKeyOf(k1.blob);
  t.deepEqual(
    verifyHostKey(k1key, { address: '10.1.2.3', port: 22, knownHosts: text }).status,
    'match',
  );
  t.is(verifyHostKey(k1key, { address: '10.1.2.9', port: 22, knownHosts: text }).status, 'unknown');
  t.is(
    verifyHostKey(hostKeyOf(k2.blob), { address: '10.1.2.4', port: 2222, knownHosts: text }).status,
    'match',
  );
  t.is(
    verifyHostKey(hostKeyOf(k2.blob), { address: '10.1.2.4', port: 22, knownHosts: text }).status,
    'unknown',
  );
});

test('a different key of the same type for a known host is a mismatch showing the expected fingerprint', (t) => {
  const text = `10.0.0.1 ${k1.line}\n`;
  const v = verifyHostKey(hostKeyOf(k2.blob), { address: '10.0.0.1', port: 22, knownHosts: text });
  t.is(v.status, 'mismatch');
  if (v.status === 'mismatch') {
    t.is(v.expected, k1.fp);
    t.is(v.line, 1);
    t.is(v.source, 'known_hosts');
  }
});

test('keys on file only of other types leave the host unknown, and are offered first', (t) => {
  const text = `10.0.0.1 ${ecdsa.line}\n`;
  const v = verifyHostKey(hostKeyOf(k1.blob), { address: '10.0.0.1', port: 22, knownHosts: text });
  t.deepEqual(v, { status: 'unknown', otherTypes: ['ecdsa-sha2-nistp256'] });
  t.deepEqual(knownKeyTypes(text, '10.0.0.1', 22), ['ecdsa-sha2-nistp256']);
  t.deepEqual(knownKeyTypes(text, '10.0.0.2', 22), []);
});

test('the inventory pin wins over known_hosts, both ways', (t) => {
  const text = `10.0.0.1 ${k1.line}\n`;
  const k2key = hostKeyOf(k2.blob);
  t.is(
    verifyHostKey(k2key, { address: '10.0.0.1', port: 22, knownHosts: text, pinned: k2.fp }).status,
    'match',
  );
  const v = verifyHostKey(hostKeyOf(k1.blob), {
    address: '10.0.0.1',
    port: 22,
    knownHosts: text,
    pinned: k2.fp,
  });
  t.is(v.status, 'mismatch');
  if (v.status === 'mismatch') t.is(v.source, 'inventory');
});

test('a revoked key is refused even when pinned', (t) => {
  const text = `@revoked * ${k1.line}\n10.0.0.1 ${k1.line}\n`;
  const v = verifyHostKey(hostKeyOf(k1.blob), {
    address: '10.0.0.1',
    port: 22,
    knownHosts: text,
    pinned: k1.fp,
  });
  t.is(v.status, 'mismatch');
});

test('an empty known_hosts knows nothing', (t) => {
  t.deepEqual(verifyHostKey(hostKeyOf(k1.blob), { address: 'x', port: 22, knownHosts: '' }), {
    status: 'unknown',
    otherTypes: [],
  });
});
