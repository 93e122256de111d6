/**
 * The host-key check of a connection, beside the known_hosts rules it applies
 * (host-keys.ts): which key algorithms to ask for first, and the verifier
 * ssh2 calls with the key the server presented.
 */
import type { ServerHostKeyAlgorithm } from 'ssh2';
import { HostKeyError } from '../errors.js';
import {
  algorithmsForKeyType,
  type HostKey,
  hasCertAuthority,
  hostKeyOf,
  knownKeyTypes,
  parseCertificate,
  verifyHostCertificate,
  verifyHostKey,
} from './host-keys.js';
import type { HostTarget } from './target.js';

const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/**
 * Host key algorithms in the order to offer them: the types known_hosts
 * already holds for the host first, so the server presents a key we can check.
 */
export function hostKeyOrder(knownHosts: string, host: HostTarget): ServerHostKeyAlgorithm[] {
  const preferred = knownKeyTypes(knownHosts, host.address, host.port).flatMap(
    algorithmsForKeyType,
  );
  return [
    ...preferred.filter((a): a is ServerHostKeyAlgorithm =>
      (HOST_KEY_ALGORITHMS as string[]).includes(a),
    ),
    ...HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a)),
  ];
}

/** How a host key was trusted. */
export type HostKeyTrust = 'inventory' | 'known_hosts' | 'accepted' | 'cert-authority';

/** One connection's check: `verify` for ssh2, then what it saw and decided. */
export interface HostKeyCheck {
  /**
   * ssh2's hostVerifier: true or false at once, or undefined and `done`
   * later (a host certificate being fetched and checked).
   */
  verify(blob: Buffer, done?: (ok: boolean) => void): boolean | undefined;
  /** The key the server presented (once `verify` ran). */
  presented(): HostKey | undefined;
  trust(): HostKeyTrust;
  /** The refusal, when `verify` said no. */
  refusal(): HostKeyError | undefined;
  /** True when an unknown key was accepted (it must be appended to known_hosts). */
  accepted(): boolean;
}

/** Makes the check for `host` against the pinned key and the known_hosts text. */
export function hostKeyCheck(
  host: HostTarget,
  knownHosts: string,
  knownHostsPath: string,
  acceptNew: boolean,
  /** The host's certificates (ssh2 cannot ask for them in its handshake); for `@cert-authority`. */
  fetchCertificates?: () => Promise<Buffer[]>,
): HostKeyCheck {
  let presented: HostKey | undefined;
  let refusal: HostKeyError | undefined;
  let trust: HostKeyTrust = 'known_hosts';
  let accepted = false;
  return {
    verify(blob, done) {
      const key = hostKeyOf(blob);
      presented = key;
      const verdict = verifyHostKey(key, {
        address: host.address,
        port: host.port,
        pinned: host.hostKey,
        knownHosts,
      });
      if (verdict.status === 'match') {
        trust = verdict.source;
        return true;
      }
      if (verdict.status === 'mismatch') {
        refusal = new HostKeyError({
          host,
          kind: 'mismatch',
          presented: key,
          expected: verdict.expected,
          where:
            verdict.source === 'inventory'
              ? `hosts.${host.name}.host_key in the inventory`
              : verdict.source === 'revoked'
                ? `marked @revoked in ${knownHostsPath}:${verdict.line}`
                : `${knownHostsPath}:${verdict.line}`,
        });
        return false;
      }
      if (fetchCertificates && done && hasCertAuthority(knownHosts, host.address, host.port)) {
        const unknown = new HostKeyError({
          host,
          kind: 'unknown',
          presented: key,
          otherTypes: verdict.otherTypes,
        });
        fetchCertificates()
          .catch(() => [] as Buffer[])
          .then((certs) => {
            const reasons: string[] = [];
            for (const c of certs) {
              let v: ReturnType<typeof verifyHostCertificate>;
              try {
                v = verifyHostCertificate(parseCertificate(c), key, {
                  address: host.address,
                  port: host.port,
                  knownHosts,
                });
              } catch (e) {
                reasons.push((e as Error).message);
                continue;
              }
              if (v.ok) {
                trust = 'cert-authority';
                done(true);
                return;
              }
              reasons.push(v.reason);
            }
            if (acceptNew) {
              trust = 'accepted';
              accepted = true;
              done(true);
              return;
            }
            refusal = unknown;
            if (reasons.length) {
              process.emitWarning(
                `${host.name}: host certificate not trusted: ${reasons.join('; ')}`,
              );
            }
            done(false);
          });
        return undefined;
      }
      if (acceptNew) {
        trust = 'accepted';
        accepted = true;
        return true;
      }
      refusal = new HostKeyError({
        host,
        kind: 'unknown',
        presented: key,
        otherTypes: verdict.otherTypes,
      });
      return false;
    },
    presented: () => presented,
    trust: () => trust,
    refusal: () => refusal,
    accepted: () => accepted,
  };
}
