/**
 * At most one connection per host per run, opened on first use and shared by
 * every step; `closeAll()` at the end. A closed pool opens nothing more: a
 * straggler (a worker of a failed step) gets an error instead of a fresh
 * connection nobody would close, which kept a failed run alive for minutes.
 *
 * A host behind bastions (ProxyJump) is reached through a forwarding on the
 * last bastion's connection, that one through the one before it, and so on:
 * one connection per bastion per run, shared by every host behind it.
 */

import { ExitCode, FerryError } from '../errors.js';
import type { Inventory } from '../inventory/index.js';
import { Remote } from './remote.js';
import { type ConnectOptions, type HostTarget, hostTargetOf } from './target.js';

export class Connections {
  private readonly pending = new Map<string, Promise<Remote>>();
  private readonly live = new Set<Remote>();
  /** The clean-up connections of {@link fresh}, by host name. */
  private readonly spares = new Map<string, Promise<Remote>>();
  /** Bastion connections by route (`user@address:port` of each hop so far). */
  private readonly bastions = new Map<string, Promise<Remote>>();
  private readonly bastionsLive = new Set<Remote>();
  private closed = false;
  /** Connections this pool has opened. */
  opened = 0;

  constructor(
    private readonly hosts: ReadonlyMap<string, HostTarget>,
    private readonly opts: ConnectOptions = {},
  ) {}

  /** A pool over every host of an inventory. */
  static forInventory(inventory: Inventory, opts: ConnectOptions = {}): Connections {
    const targets = new Map<string, HostTarget>();
    for (const [name, h] of Object.entries(inventory.hosts)) targets.set(name, hostTargetOf(h));
    return new Connections(targets, opts);
  }

  /** The connection to `name`, opened now if this is the first use. */
  get(name: string): Promise<Remote> {
    const existing = this.pending.get(name);
    if (existing) return existing;
    const p = this.open(name);
    // A failed connect is not cached as a success, but is not retried behind the caller's back either.
    this.pending.set(name, p);
    return p;
  }

  /**
   * A connection to `name` besides the shared one, for a clean-up that must
   * run although the shared one broke (a key left on a host). One at a time
   * per host: the clean-ups of one failure (the pull key's temp dir, then the
   * stage) share it instead of each waiting for a handshake, which on a loaded
   * machine took seconds of the 5 a failed run has to exit. Closed by closeAll.
   */
  fresh(name: string): Promise<Remote> {
    const had = this.spares.get(name);
    if (!had) return this.spare(name);
    return had.then(
      (r) => (r.connected ? r : this.spare(name)),
      () => this.spare(name),
    );
  }

  private spare(name: string): Promise<Remote> {
    const p = this.open(name);
    this.spares.set(name, p);
    return p;
  }

  private open(name: string): Promise<Remote> {
    if (this.closed) {
      return Promise.reject(new FerryError(`the run is over: no new connection to ${name}`));
    }
    const host = this.hosts.get(name);
    if (!host) {
      return Promise.reject(
        new FerryError(`no host named "${name}" in the inventory`, { exitCode: ExitCode.usage }),
      );
    }
    const p = this.through(host.jump ?? []).then((via) => Remote.connect(host, this.opts, via));
    const q = p.then((r) => {
      this.opened++;
      // closeAll may have run while this one was connecting: it must not outlive the pool.
      if (this.closed) {
        r.close();
        throw new FerryError(`the run is over: the connection to ${name} was closed`);
      }
      this.live.add(r);
      return r;
    });
    q.catch(() => {});
    return q;
  }

  /** The connection to the last of `chain`, each hop opened (once per run) through the one before. */
  private through(chain: readonly HostTarget[]): Promise<Remote | undefined> {
    let via: Promise<Remote | undefined> = Promise.resolve(undefined);
    let route = '';
    for (const hop of chain) {
      route += `${route ? ' ' : ''}${hop.user}@${hop.address}:${hop.port}`;
      const existing = this.bastions.get(route);
      if (existing) {
        via = existing;
        continue;
      }
      const before = via;
      const p = before.then(async (v) => {
        if (this.closed) throw new FerryError(`the run is over: no new connection to ${hop.name}`);
        const r = await Remote.connect(hop, this.opts, v);
        this.opened++;
        if (this.closed) {
          r.close();
          throw new FerryError(`the run is over: the connection to ${hop.name} was closed`);
        }
        this.bastionsLive.add(r);
        return r;
      });
      p.catch(() => {});
      this.bastions.set(route, p);
      via = p;
    }
    return via;
  }

  /** Every connection opened so far, by host name. */
  async all(): Promise<Map<string, Remote>> {
    const out = new Map<string, Remote>();
    for (const [name, p] of this.pending) {
      try {
        out.set(name, await p);
      } catch {
        // a host that failed to connect has no connection to list
      }
    }
    return out;
  }

  /**
   * Closes every connection and refuses new ones; safe to call more than once.
   * Does not wait for a connect still under way (an unreachable host can take
   * its whole handshake timeout): that one closes itself when it completes.
   */
  async closeAll(): Promise<void> {
    this.closed = true;
    for (const r of this.live) r.close();
    this.live.clear();
    this.pending.clear();
    this.spares.clear();
    // Bastions last: the connections above ran through them.
    for (const r of [...this.bastionsLive].reverse()) r.close();
    this.bastionsLive.clear();
    this.bastions.clear();
  }
}
