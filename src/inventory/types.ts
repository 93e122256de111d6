/**
 * The inventory's types, apart from the loaders (src/inventory/index.ts reads
 * ferry's format, ansible*.ts Ansible's): every reader imports them from here.
 */
import type { Diagnostic } from '../errors.js';
import type { HostDocument, InventoryDocument } from '../schema/inventory.js';
import type { SshConfigContext } from '../ssh/config.js';
import type { JumpHost } from './ssh-hosts.js';

export type { JumpHost } from './ssh-hosts.js';

/** A host with every connection field decided (its own, else ssh_config, else the defaults). */
export type Host = { name: string } & Required<Omit<HostDocument, 'host_key'>> &
  Pick<HostDocument, 'host_key'> & {
    /**
     * Identity files in the order ssh tries them (the inventory's first,
     * then ssh_config's); `identity` is the first. Unset: just `identity`.
     */
    identities?: string[];
    /** IdentitiesOnly: offer no agent key but those of `identities`. */
    identities_only?: boolean;
    /** The ssh-agent socket to ask for keys (SSH_AUTH_SOCK or IdentityAgent). */
    agent?: string;
    /** Bastions to pass, in connection order (ProxyJump); empty or unset: direct. */
    jump?: JumpHost[];
    /** The ssh_config alias the host was resolved from. */
    ssh_alias?: string;
  };

/** A local clone whose Dokku remote is rewritten on a move; `path` is absolute. */
export type Repo = InventoryDocument['repos'][number];

/** How an inventory file is written. */
export type InventoryFormat = 'ferry' | 'ansible-yaml' | 'ansible-ini';

/** A validated, normalised inventory. Paths on this machine are absolute. */
export type Inventory = Omit<InventoryDocument, 'hosts' | 'defaults'> & {
  /** The file it was read from, as given. */
  file: string;
  hosts: Record<string, Host>;
  // The fields below are always set by validateInventory and loadInventory;
  // they are optional so that inventories built by hand (tests) need not.
  /** How the file was written. */
  format?: InventoryFormat;
  /**
   * Group name to its hosts (its own and its child groups'), in the order
   * written. `all` holds every host; ferry's own format has no other group.
   * Read it with {@link groupMembers}.
   */
  groups?: Record<string, string[]>;
  /**
   * What ferry read but does not act on (an Ansible variable it ignores, a
   * host it leaves out); the inventory is valid. Show them to the user.
   */
  warnings?: Diagnostic[];
};

/** How `validateInventory` treats what lies outside the text. */
export interface InventoryOptions {
  /** What `~` means; defaults to the current user's home. */
  home?: string;
  /**
   * When given, each host's identity file is checked with it and a missing
   * one is an error. `ferry plan` leaves it out: it contacts no host.
   */
  fileExists?: (path: string) => boolean;
  /**
   * When given, hosts are resolved through the ssh_config file the
   * inventory names (default ~/.ssh/config) as `ssh` would resolve them.
   * `loadInventory` gives this machine's; pure callers (tests) their own.
   */
  ssh?: {
    context: SshConfigContext;
    /** SSH_AUTH_SOCK as the command line got it (cli.ts reads the environment). */
    agentSocket?: string;
  };
}
