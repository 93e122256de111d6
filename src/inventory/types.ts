/**
 * The inventory's types, apart from the loaders (src/inventory/index.ts reads
 * ferry's format, ansible*.ts Ansible's): every reader imports them from here.
 */
import type { Diagnostic } from '../errors.js';
import type { HostDocument, InventoryDocument } from '../schema/inventory.js';

/** A host with every connection field decided (its own, else the defaults). */
export type Host = { name: string } & Required<Omit<HostDocument, 'host_key'>> &
  Pick<HostDocument, 'host_key'>;

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
}
