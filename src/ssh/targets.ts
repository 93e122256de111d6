/**
 * From the inventory to the SSH layer: the one place that maps an inventory
 * host onto a connection target, and a pool for a whole inventory.
 */
import type { Host, Inventory } from '../inventory/index.js';
import { Connections, type ConnectOptions, type HostTarget } from './connection.js';

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
  };
}

/** A pool over every host of an inventory (connections open lazily, one per host). */
export function connectionsFor(inventory: Inventory, opts: ConnectOptions = {}): Connections {
  const targets = new Map<string, HostTarget>();
  for (const [name, h] of Object.entries(inventory.hosts)) targets.set(name, hostTargetOf(h));
  return new Connections(targets, opts);
}
