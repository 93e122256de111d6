/**
 * `ferry check [HOST...] [--accept-new-host-keys] [--json]`: everything that
 * can be checked without changing anything, before anything changes. The
 * inventory and every playbook are validated first (bad input: exit 2), then
 * each host is reached over one connection and asked about itself
 * (check-probe.ts); check-report.ts prints what was found.
 */
import { type Diagnostic, ExitCode, HostKeyError, InputError, UsageError } from '../errors.js';
import { type Host, type Inventory, inventoryWarnings, loadInventory } from '../inventory/index.js';
import { listPlaybooks, loadPlaybook } from '../playbook/index.js';
import { nativeCryptoAvailable, nativeCryptoFix, nativeCryptoPath } from '../ssh/native.js';
import { Connections } from '../ssh/pool.js';
import type { Remote } from '../ssh/remote.js';
import { type HostTarget, hostTargetOf } from '../ssh/target.js';
import { messageOf, probe } from './check-probe.js';
import { type CheckReport, formatReport, type HostCheck } from './check-report.js';
import type { CheckOptions, Io } from './options.js';

/**
 * Connects to each host (at most one connection each) and reports on it.
 * Reusable as a pre-flight by the other commands.
 */
export async function checkHosts(
  inventory: Inventory,
  names: string[],
  opts: { acceptNewHostKeys?: boolean; pool?: Connections } = {},
): Promise<{ hosts: HostCheck[]; connections: number }> {
  const targets = new Map<string, HostTarget>(
    names.map((n) => [n, hostTargetOf(inventory.hosts[n] as Host)]),
  );
  const pool =
    opts.pool ??
    new Connections(targets, opts.acceptNewHostKeys ? { acceptNewHostKeys: true } : {});
  try {
    const hosts = await Promise.all(
      names.map(async (name): Promise<HostCheck> => {
        const t = targets.get(name) as HostTarget;
        const out: HostCheck = {
          host: name,
          address: t.address,
          port: t.port,
          user: t.user,
          ok: false,
          reachable: false,
          hostKey: { status: 'unchecked' },
          problems: [],
          warnings: [],
        };
        let r: Remote;
        try {
          r = await pool.get(name);
        } catch (e) {
          if (e instanceof HostKeyError) {
            out.reachable = true;
            out.hostKey = {
              status: e.kind,
              fingerprint: e.presented.fingerprint,
              type: e.presented.type,
              ...(e.expected ? { expected: e.expected } : {}),
            };
          }
          out.problems.push(messageOf(e));
          return out;
        }
        out.reachable = true;
        out.hostKey = {
          status: r.hostKeyTrust,
          fingerprint: r.hostKey.fingerprint,
          type: r.hostKey.type,
        };
        if (r.hostKeyTrust === 'accepted') {
          out.warnings.push(
            `host key ${r.hostKey.fingerprint} (${r.hostKey.type}) was new and is now trusted: appended to ${t.knownHosts ?? '~/.ssh/known_hosts'}`,
          );
        }
        await probe(r, out);
        out.ok = out.problems.length === 0;
        return out;
      }),
    );
    return { hosts, connections: pool.opened };
  } finally {
    if (!opts.pool) await pool.closeAll();
  }
}

/**
 * Validates every playbook `ferry` can find by name (./playbooks, then the
 * shipped ones). Every problem of every playbook is reported together.
 */
export async function validatePlaybooks(cwd = process.cwd()): Promise<string[]> {
  const names = listPlaybooks(cwd);
  const diagnostics: Diagnostic[] = [];
  for (const name of names) {
    try {
      await loadPlaybook(name, cwd);
    } catch (e) {
      if (e instanceof InputError) diagnostics.push(...e.diagnostics);
      else throw e;
    }
  }
  if (diagnostics.length > 0) throw new InputError(diagnostics);
  return names;
}

/** `ferry check`. */
export async function check(opts: CheckOptions, io: Io): Promise<number> {
  const inventory = await loadInventory(opts.inventory, {
    ...(opts.sshEnv ? { sshEnv: opts.sshEnv } : {}),
  });
  for (const w of inventoryWarnings(inventory)) io.stderr.write(w);
  const all = Object.keys(inventory.hosts);
  const unknown = opts.hosts.filter((n) => !inventory.hosts[n]);
  // Before the playbooks (a second of schema work on a loaded machine): a typo fails at once.
  if (unknown.length > 0) {
    throw new UsageError(
      `no host named ${unknown.map((n) => `"${n}"`).join(', ')} in ${opts.inventory}`,
      `Hosts there: ${all.join(', ') || '(none)'}.`,
    );
  }
  const playbooks = await validatePlaybooks();
  const names = opts.hosts.length > 0 ? [...new Set(opts.hosts)] : all;
  const { hosts, connections } = await checkHosts(inventory, names, {
    acceptNewHostKeys: opts.acceptNewHostKeys,
  });
  const path = nativeCryptoPath();
  const native = nativeCryptoAvailable();
  const rep: CheckReport = {
    ok: hosts.every((h) => h.ok),
    inventory: opts.inventory,
    playbooks,
    controller: {
      node: process.version,
      nativeCrypto: native,
      ...(path ? { nativeCryptoPath: path } : {}),
      ...(native ? {} : { nativeCryptoFix: nativeCryptoFix() }),
    },
    hosts,
    connections,
  };
  io.stdout.write(opts.json ? `${JSON.stringify(rep, null, 2)}\n` : formatReport(rep));
  return rep.ok ? ExitCode.ok : ExitCode.failed;
}
