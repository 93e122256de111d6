/**
 * `@cert-authority` in known_hosts: a host key certified by a CA whose line
 * matches the host is trusted, as OpenSSH trusts it. Every key and
 * certificate here is made by ssh-keygen; the rules are OpenSSH's
 * (sshkey.c sshkey_cert_check_host).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  type HostKey,
  hasCertAuthority,
  hostKeyOf,
  parseCertificate,
  verifyHostCertificate,
} from '../../src/ssh/host-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-certs-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function keygen(args: string[]): void {
  const r = spawnSync('ssh-keygen', ['-q', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen ${args.join(' ')}: ${r.stderr}`);
}
function key(name: string, type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519'): string {
  const p = join(dir, name);
  keygen(['-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', name, '-f', p]);
  return p;
}
function pubLine(p: string): [string, string] {
  const [type, b64] = readFileSync(`${p}.pub`, 'utf8').trim().split(' ');
  return [type!, b64!];
}
/** Signs `host`'s public key with `ca`; returns the certificate blob. */
function certify(ca: string, host: string, id: string, extra: string[]): Buffer {
  keygen(['-s', ca, '-I', id, ...extra, `${host}.pub`]);
  return Buffer.from(readFileSync(`${host}-cert.pub`, 'utf8').trim().split(' ')[1]!, 'base64');
}
function presented(p: string): HostKey {
  return hostKeyOf(Buffer.from(pubLine(p)[1], 'base64'));
}

test('a CA-signed host key is trusted when the CA line matches the host; each OpenSSH rule refuses', (t) => {
  const ca = key('ca');
  const other = key('other-ca', 'ecdsa');
  const host = key('host');
  const [caType, caB64] = pubLine(ca);
  const known = `# the CA for our hosts\n@cert-authority *.example.org,10.0.0.5 ${caType} ${caB64}\n`;
  const at: { address: string; port: number; knownHosts: string; now?: Date } = {
    address: 'db.example.org',
    port: 22,
    knownHosts: known,
  };

  const good = parseCertificate(
    certify(ca, host, 'db host', ['-h', '-n', 'db.example.org,10.0.0.5', '-V', '-5m:+1h']),
  );
  t.is(good.type, 2);
  t.is(good.keyId, 'db host');
  t.deepEqual(good.principals, ['db.example.org', '10.0.0.5']);
  t.deepEqual(verifyHostCertificate(good, presented(host), at), {
    ok: true,
    line: 2,
    keyId: 'db host',
  });
  t.true(verifyHostCertificate(good, presented(host), { ...at, address: '10.0.0.5' }).ok);
  t.true(hasCertAuthority(known, 'db.example.org', 22));
  t.false(hasCertAuthority(known, 'db.example.com', 22));

  const refused = (cert: ReturnType<typeof parseCertificate>, opts = at, k = presented(host)) => {
    const v = verifyHostCertificate(cert, k, opts);
    return v.ok ? 'trusted' : v.reason;
  };
  t.regex(
    refused(good, { ...at, address: 'web.example.org' }),
    /principals .* do not name web\.example\.org/,
  );
  t.regex(refused(good, { ...at, address: 'db.example.com' }), /principals/);
  t.regex(refused(good, at, presented(key('impostor'))), /another key/);
  t.regex(
    refused(good, { ...at, port: 2222 }),
    /no @cert-authority line for \[db\.example\.org\]:2222/,
  );
  t.regex(refused(good, { ...at, now: new Date(Date.now() + 2 * 3600_000) }), /expired/);
  t.regex(refused(good, { ...at, now: new Date(Date.now() - 3600_000) }), /not yet valid/);
  t.regex(
    refused(good, { ...at, knownHosts: `${known}@revoked * ${caType} ${caB64}\n` }),
    /@revoked/,
  );

  const user = parseCertificate(certify(ca, host, 'user cert', ['-n', 'db.example.org']));
  t.regex(refused(user), /not a host certificate/);
  const wild = parseCertificate(certify(ca, host, 'wild', ['-h', '-n', '*.example.org']));
  t.true(verifyHostCertificate(wild, presented(host), at).ok, 'principals may be wildcards');
  const critical = parseCertificate(
    certify(ca, host, 'crit', ['-h', '-n', 'db.example.org', '-O', 'force-command=true']),
  );
  t.regex(refused(critical), /critical options/);

  const byOther = parseCertificate(certify(other, host, 'other', ['-h', '-n', 'db.example.org']));
  t.regex(refused(byOther), /no @cert-authority line .* holds the key that signed it/);
  const [oType, oB64] = pubLine(other);
  t.true(
    verifyHostCertificate(byOther, presented(host), {
      ...at,
      knownHosts: `@cert-authority *.example.org ${oType} ${oB64}\n`,
    }).ok,
    'an ECDSA CA verifies too',
  );

  // A forged certificate: one byte of the signed part changed after signing.
  const last = good.signed.length - 1;
  const signed = Buffer.from(good.signed);
  signed[last] = (signed[last] ?? 0) ^ 1;
  const tampered = { ...good, signed };
  t.regex(refused(tampered), /signature does not verify/);
});

test('an RSA CA signs an ECDSA host key', (t) => {
  const ca = key('rsa-ca', 'rsa');
  const host = key('host2', 'ecdsa');
  const [caType, caB64] = pubLine(ca);
  const cert = parseCertificate(certify(ca, host, 'h2', ['-h', '-n', 'h2.example.net']));
  t.is(cert.certType, 'ecdsa-sha2-nistp256-cert-v01@openssh.com');
  t.true(
    verifyHostCertificate(cert, presented(host), {
      address: 'h2.example.net',
      port: 22,
      knownHosts: `@cert-authority h2.example.net ${caType} ${caB64}\n`,
    }).ok,
  );
});
