/**
 * Host keys, OpenSSH style: fingerprints and known_hosts files. Pure apart from
 * the two small file helpers at the end, so the rules can be tested without a host.
 */
import {
  createHash,
  createHmac,
  createPublicKey,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A public host key as the server presented it (SSH wire-format blob). */
export interface HostKey {
  /** Key type from the blob, e.g. `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`. */
  type: string;
  /** The wire-format blob, base64 (the second field of a known_hosts line). */
  base64: string;
  /** OpenSSH fingerprint: `SHA256:` + base64 of sha256(blob), unpadded. */
  fingerprint: string;
}

/** OpenSSH's SHA256 fingerprint of a wire-format key blob. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Reads the type string that opens an SSH wire-format key blob. */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  if (n <= 0 || n > 64 || blob.length < 4 + n) return 'unknown';
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** Builds a {@link HostKey} from the blob ssh2 hands its hostVerifier. */
export function hostKeyOf(blob: Buffer): HostKey {
  return {
    type: keyTypeOf(blob),
    base64: blob.toString('base64'),
    fingerprint: fingerprintOf(blob),
  };
}

/** Normalises a fingerprint as users write it (`SHA256:x`, `sha256:x`, padded or not). */
export function normaliseFingerprint(fp: string): string {
  const m = /^\s*sha256:([A-Za-z0-9+/]+)=*\s*$/i.exec(fp);
  return m ? `SHA256:${m[1]}` : fp.trim();
}

/** The name OpenSSH looks up for an address: `host`, or `[host]:port` off port 22. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** One usable line of a known_hosts file. */
export interface KnownHostsEntry {
  /** 1-based line in the file, for messages. */
  line: number;
  /** `@revoked` or `@cert-authority` when the line carries a marker. */
  marker: 'revoked' | 'cert-authority' | undefined;
  /** The comma-separated host patterns, or one `|1|salt|hash` hashed name. */
  patterns: string[];
  type: string;
  base64: string;
}

/** Parses an OpenSSH known_hosts file; malformed lines are skipped as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostsEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return;
    }
    const [hosts, type, base64] = fields;
    if (!hosts || !type || !base64) return;
    entries.push({ line: i + 1, marker, patterns: hosts.split(','), type, base64 });
  });
  return entries;
}

/** Whether one known_hosts pattern (plain, wildcard, or `|1|` hashed) names `name`. */
function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  return globMatches(pattern.toLowerCase(), name.toLowerCase());
}

/** OpenSSH host patterns: `*` any run, `?` one character; nothing else is special. */
function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}

/** Whether an entry's host list names `name`; a matching `!pattern` excludes it. */
export function entryMatches(entry: KnownHostsEntry, name: string): boolean {
  let hit = false;
  for (const p of entry.patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) {
      hit = true;
    }
  }
  return hit;
}

/** The verdict on a presented key. */
export type HostKeyVerdict =
  | { status: 'match'; source: 'inventory' | 'known_hosts'; line?: number }
  | {
      status: 'mismatch';
      source: 'inventory' | 'known_hosts' | 'revoked';
      /** The fingerprint we expected (the one on file). */
      expected: string;
      line?: number;
    }
  | {
      status: 'unknown';
      /** Key types on file for this host that the server did not present, if any. */
      otherTypes: string[];
    };

/**
 * Decides on a presented key, as OpenSSH would:
 * a pinned fingerprint (inventory host_key) wins; otherwise a known_hosts
 * entry for the same name and the same key type decides; a revoked key is
 * always refused; keys on file only of other types leave the host unknown.
 */
export function verifyHostKey(
  presented: HostKey,
  opts: {
    address: string;
    port: number;
    pinned?: string | undefined;
    knownHosts?: string | undefined;
  },
): HostKeyVerdict {
  const name = knownHostsName(opts.address, opts.port);
  const entries = opts.knownHosts === undefined ? [] : parseKnownHosts(opts.knownHosts);
  const revoked = entries.find((e) => e.marker === 'revoked' && e.base64 === presented.base64);
  if (revoked) {
    return {
      status: 'mismatch',
      source: 'revoked',
      expected: presented.fingerprint,
      line: revoked.line,
    };
  }
  if (opts.pinned !== undefined && opts.pinned.trim() !== '') {
    const want = normaliseFingerprint(opts.pinned);
    return want === presented.fingerprint
      ? { status: 'match', source: 'inventory' }
      : { status: 'mismatch', source: 'inventory', expected: want };
  }
  const mine = entries.filter((e) => e.marker === undefined && entryMatches(e, name));
  const same = mine.find((e) => e.base64 === presented.base64);
  if (same) return { status: 'match', source: 'known_hosts', line: same.line };
  const sameType = mine.find((e) => e.type === presented.type);
  if (sameType) {
    return {
      status: 'mismatch',
      source: 'known_hosts',
      expected: fingerprintOf(Buffer.from(sameType.base64, 'base64')),
      line: sameType.line,
    };
  }
  return { status: 'unknown', otherTypes: [...new Set(mine.map((e) => e.type))] };
}

/**
 * Key types on file for a host, in file order: offered first in the
 * negotiation so a known host presents the key we hold for it (OpenSSH does the same).
 */
export function knownKeyTypes(knownHosts: string, address: string, port: number): string[] {
  const name = knownHostsName(address, port);
  const types = parseKnownHosts(knownHosts)
    .filter((e) => e.marker === undefined && entryMatches(e, name))
    .map((e) => e.type);
  return [...new Set(types)];
}

/** The known_hosts line that pins `key` for an address (plain name, as `ssh` writes with HashKnownHosts=no). */
export function knownHostsLine(address: string, port: number, key: HostKey): string {
  return `${knownHostsName(address, port)} ${key.type} ${key.base64}`;
}

/** Reads a known_hosts file; a missing file is an empty one. */
export async function readKnownHosts(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

/** Appends one pinned key to a known_hosts file, creating it (0600, dir 0700) if needed. */
export async function appendKnownHost(
  path: string,
  address: string,
  port: number,
  key: HostKey,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const existing = await readKnownHosts(path);
  const sep = existing === '' || existing.endsWith('\n') ? '' : '\n';
  await appendFile(path, `${sep}${knownHostsLine(address, port, key)}\n`, { mode: 0o600 });
}

/** Where a key algorithm name stands for a key type (rsa keys sign with several). */
export function algorithmsForKeyType(type: string): string[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [type];
}

/** An OpenSSH certificate (PROTOCOL.certkeys), the fields a host check needs. */
export interface Certificate {
  /** `ssh-ed25519-cert-v01@openssh.com`, ... */
  certType: string;
  /** The certified key, as a plain wire-format blob (`ssh-ed25519` + its fields). */
  key: Buffer;
  serial: bigint;
  /** 1 user, 2 host. */
  type: number;
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: Buffer;
  /** The CA's public key blob. */
  signatureKey: Buffer;
  /** The signature blob (algorithm name + signature). */
  signature: Buffer;
  /** The bytes the signature covers. */
  signed: Buffer;
}

/** A reader of SSH wire-format fields. */
class Wire {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  string(): Buffer {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated');
    const n = this.buf.readUInt32BE(this.pos);
    if (this.pos + 4 + n > this.buf.length) throw new Error('truncated');
    const out = this.buf.subarray(this.pos + 4, this.pos + 4 + n);
    this.pos += 4 + n;
    return out;
  }
  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint64(): bigint {
    if (this.pos + 8 > this.buf.length) throw new Error('truncated');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
}

function wireString(b: Buffer | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** The public fields of each key type, after the type name and the nonce. */
const CERT_KEY_FIELDS: Record<string, { plain: string; fields: number }> = {
  'ssh-ed25519-cert-v01@openssh.com': { plain: 'ssh-ed25519', fields: 1 },
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': { plain: 'ecdsa-sha2-nistp256', fields: 2 },
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': { plain: 'ecdsa-sha2-nistp384', fields: 2 },
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': { plain: 'ecdsa-sha2-nistp521', fields: 2 },
  'ssh-rsa-cert-v01@openssh.com': { plain: 'ssh-rsa', fields: 2 },
};

/** Parses an OpenSSH certificate blob; throws on anything else. */
export function parseCertificate(blob: Buffer): Certificate {
  const w = new Wire(blob);
  const certType = w.string().toString('latin1');
  const shape = CERT_KEY_FIELDS[certType];
  if (!shape) throw new Error(`not a certificate type ferry reads: ${certType}`);
  w.string(); // nonce
  const fields: Buffer[] = [];
  for (let i = 0; i < shape.fields; i++) fields.push(w.string());
  const serial = w.uint64();
  const type = w.uint32();
  const keyId = w.string().toString('utf8');
  const pw = new Wire(w.string());
  const principals: string[] = [];
  while (pw.pos < pw.buf.length) principals.push(pw.string().toString('utf8'));
  const validAfter = w.uint64();
  const validBefore = w.uint64();
  const criticalOptions = w.string();
  w.string(); // extensions
  w.string(); // reserved
  const signatureKey = w.string();
  const signedEnd = w.pos;
  const signature = w.string();
  return {
    certType,
    key: Buffer.concat([wireString(shape.plain), ...fields.map(wireString)]),
    serial,
    type,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    signatureKey,
    signature,
    signed: blob.subarray(0, signedEnd),
  };
}

/** A public key blob as a Node KeyObject (ed25519, ECDSA P-256/384/521, RSA). */
function publicKeyObject(blob: Buffer): KeyObject {
  const w = new Wire(blob);
  const type = w.string().toString('latin1');
  const b64u = (b: Buffer) => b.toString('base64url');
  const unsigned = (b: Buffer) => (b[0] === 0 ? b.subarray(1) : b);
  if (type === 'ssh-ed25519') {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: b64u(w.string()) },
      format: 'jwk',
    });
  }
  if (type === 'ssh-rsa') {
    const e = unsigned(w.string());
    const n = unsigned(w.string());
    return createPublicKey({ key: { kty: 'RSA', e: b64u(e), n: b64u(n) }, format: 'jwk' });
  }
  const curve = {
    'ecdsa-sha2-nistp256': 'P-256',
    'ecdsa-sha2-nistp384': 'P-384',
    'ecdsa-sha2-nistp521': 'P-521',
  }[type];
  if (curve) {
    w.string();
    const q = w.string();
    const size = (q.length - 1) / 2;
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: curve,
        x: b64u(q.subarray(1, 1 + size)),
        y: b64u(q.subarray(1 + size)),
      },
      format: 'jwk',
    });
  }
  throw new Error(`a CA key of type ${type} is not supported`);
}

/** Whether `signature` (SSH signature blob) by the key `keyBlob` covers `data`. */
export function verifySshSignature(keyBlob: Buffer, data: Buffer, signature: Buffer): boolean {
  const w = new Wire(signature);
  const alg = w.string().toString('latin1');
  const sig = w.string();
  const key = publicKeyObject(keyBlob);
  if (alg === 'ssh-ed25519') return cryptoVerify(null, data, key, sig);
  if (alg === 'rsa-sha2-256' || alg === 'rsa-sha2-512' || alg === 'ssh-rsa') {
    const hash = alg === 'rsa-sha2-512' ? 'sha512' : alg === 'rsa-sha2-256' ? 'sha256' : 'sha1';
    return cryptoVerify(hash, data, key, sig);
  }
  const ec = {
    'ecdsa-sha2-nistp256': ['sha256', 32],
    'ecdsa-sha2-nistp384': ['sha384', 48],
    'ecdsa-sha2-nistp521': ['sha512', 66],
  } as const;
  const spec = ec[alg as keyof typeof ec];
  if (spec) {
    const rs = new Wire(sig);
    const pad = (b: Buffer) => {
      const x = b[0] === 0 ? b.subarray(1) : b;
      return Buffer.concat([Buffer.alloc(Math.max(0, spec[1] - x.length)), x]);
    };
    const raw = Buffer.concat([pad(rs.string()), pad(rs.string())]);
    return cryptoVerify(spec[0], data, { key, dsaEncoding: 'ieee-p1363' }, raw);
  }
  return false;
}

/** The verdict on a host certificate. */
export type CertificateVerdict =
  | { ok: true; line: number; keyId: string }
  | { ok: false; reason: string };

/**
 * Whether `cert` vouches for `presented` as the host `name` (port `port`),
 * as OpenSSH decides: a host certificate for that very key, signed by a CA
 * whose `@cert-authority` line matches the host (and is not `@revoked`),
 * valid now, naming the host among its principals (wildcards allowed), with
 * no critical option.
 */
export function verifyHostCertificate(
  cert: Certificate,
  presented: HostKey,
  opts: { address: string; port: number; knownHosts: string; now?: Date },
): CertificateVerdict {
  const name = knownHostsName(opts.address, opts.port);
  const entries = parseKnownHosts(opts.knownHosts);
  if (cert.type !== 2) return { ok: false, reason: 'it is not a host certificate' };
  if (cert.key.toString('base64') !== presented.base64) {
    return { ok: false, reason: 'it certifies another key than the one the host presented' };
  }
  const now = BigInt(Math.floor((opts.now ?? new Date()).getTime() / 1000));
  if (now < cert.validAfter) return { ok: false, reason: 'it is not yet valid' };
  if (now >= cert.validBefore) return { ok: false, reason: 'it has expired' };
  if (cert.principals.length === 0) return { ok: false, reason: 'it lacks a principal list' };
  if (!cert.principals.some((p) => globMatches(p, opts.address))) {
    return {
      ok: false,
      reason: `its principals (${cert.principals.join(', ')}) do not name ${opts.address}`,
    };
  }
  if (cert.criticalOptions.length > 0) return { ok: false, reason: 'it has critical options' };
  const caB64 = cert.signatureKey.toString('base64');
  if (entries.some((e) => e.marker === 'revoked' && e.base64 === caB64)) {
    return { ok: false, reason: 'its CA key is marked @revoked' };
  }
  const ca = entries.find(
    (e) => e.marker === 'cert-authority' && e.base64 === caB64 && entryMatches(e, name),
  );
  if (!ca)
    return {
      ok: false,
      reason: `no @cert-authority line for ${name} holds the key that signed it`,
    };
  if (!verifySshSignature(cert.signatureKey, cert.signed, cert.signature)) {
    return { ok: false, reason: 'its CA signature does not verify' };
  }
  return { ok: true, line: ca.line, keyId: cert.keyId };
}

/** Whether known_hosts has an `@cert-authority` line for the host (then a certificate is worth fetching). */
export function hasCertAuthority(knownHosts: string, address: string, port: number): boolean {
  const name = knownHostsName(address, port);
  return parseKnownHosts(knownHosts).some(
    (e) => e.marker === 'cert-authority' && entryMatches(e, name),
  );
}
