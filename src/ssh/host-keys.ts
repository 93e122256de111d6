/**
 * Host keys, OpenSSH style: fingerprints and known_hosts files. Pure apart from
 * the two small file helpers at the end, so the rules can be tested without a host.
 */
import { createHash, createHmac } from 'node:crypto';
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
