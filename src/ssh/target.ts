/**
 * Who to connect to and how: the SSH layer's view of an inventory host, and
 * the one place that maps an inventory host onto it.
 */
import { homedir } from 'node:os';
import type { Host } from '../inventory/index.js';

/** A host to connect to, as the inventory describes it (paths already expanded). */
export interface HostTarget {
  /** The inventory name (`old`, `new`): what messages call the host. */
  name: string;
  address: string;
  port: number;
  user: string;
  /** Path of the private key file (the first of `identities`). */
  identity: string;
  /** Identity files in the order ssh tries them (default: just `identity`). */
  identities?: string[] | undefined;
  /** Offer no agent key but those of `identities` (ssh_config IdentitiesOnly). */
  identitiesOnly?: boolean | undefined;
  /** ssh-agent socket to take keys from (SSH_AUTH_SOCK, IdentityAgent). */
  agent?: string | undefined;
  /** Bastions to pass, in connection order (ProxyJump); each reached through the ones before it. */
  jump?: HostTarget[] | undefined;
  /** Pinned fingerprint (`SHA256:...`); wins over known_hosts. */
  hostKey?: string | undefined;
  /** known_hosts file to look the key up in (OpenSSH format). Default `~/.ssh/known_hosts`. */
  knownHosts?: string | undefined;
  /** Run every command through `sudo -n` (the user is not root). */
  sudo: boolean;
}

/** How to connect. */
export interface ConnectOptions {
  /** Trust (and append to known_hosts) a host key not known yet. Never a changed one. */
  acceptNewHostKeys?: boolean;
  /** Handshake timeout (default 15 s). */
  readyTimeoutMs?: number;
  /** SSH keepalive interval (default 15 s); 3 missed ones drop the connection. */
  keepaliveIntervalMs?: number;
  /** Channels open at once on this connection; OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
}

/** The connection fields of an inventory host, as the SSH layer wants them. */
export function hostTargetOf(h: Host): HostTarget {
  return {
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    identity: h.identity,
    knownHosts: h.known_hosts,
    sudo: h.sudo,
    ...(h.host_key ? { hostKey: h.host_key } : {}),
    ...(h.identities ? { identities: h.identities } : {}),
    ...(h.identities_only ? { identitiesOnly: true } : {}),
    ...(h.agent ? { agent: h.agent } : {}),
    ...(h.jump?.length
      ? {
          jump: h.jump.map(
            (j): HostTarget => ({
              name: `bastion ${j.name}`,
              address: j.address,
              port: j.port,
              user: j.user,
              identity: j.identities[0] ?? '',
              identities: j.identities,
              identitiesOnly: j.identities_only,
              knownHosts: j.known_hosts,
              sudo: false,
              ...(j.agent ? { agent: j.agent } : {}),
            }),
          ),
        }
      : {}),
  };
}

/** Expands a leading `~/` the way a shell would. */
export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

/** The known_hosts file a host uses. */
export function knownHostsPathOf(host: HostTarget): string {
  return expandHome(host.knownHosts ?? '~/.ssh/known_hosts');
}
