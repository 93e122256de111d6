/**
 * An inventory host seen through OpenSSH's configuration: its address is
 * looked up in ssh_config as `ssh ADDRESS` would look it up (an inventory
 * host may be nothing but an alias there), and HostName, User, Port,
 * IdentityFile, IdentitiesOnly, IdentityAgent, UserKnownHostsFile and
 * ProxyJump fill what the inventory does not say.
 *
 * Precedence, as `ssh -l USER -p PORT -i KEY` over the config file: a value
 * written in the inventory (on the host or in `defaults`) wins, then the
 * config file, then ferry's defaults (user root, port 22, ~/.ssh/id_ed25519
 * and OpenSSH's other default keys). A value from the config file is
 * untrusted input like the inventory's: HostName and ProxyJump hosts are
 * checked with the inventory's address rule, users with its user rule, and
 * a problem is reported at the config file's line and column.
 */
import { join } from 'node:path';
import type { Diagnostic } from '../errors.js';
import { addressProblem, normaliseAddress, userProblem } from '../schema/host-fields.js';
import {
  expandPathValue,
  type JumpSpec,
  type Located,
  resolveSshHost,
  type SshConfigContext,
  type SshHostConfig,
} from '../ssh/config.js';

/** One bastion on the way to a host (ProxyJump), fully resolved. */
export interface JumpHost {
  /** The name as ProxyJump wrote it (an alias or an address). */
  name: string;
  address: string;
  port: number;
  user: string;
  /** Identity files in the order ssh tries them. */
  identities: string[];
  identities_only: boolean;
  /** ssh-agent socket, when one is to be used. */
  agent?: string;
  known_hosts: string;
}

/** What ssh_config adds to a host. */
export interface SshResolved {
  address: string;
  port: number;
  user: string;
  identities: string[];
  identities_only: boolean;
  agent?: string;
  known_hosts: string;
  /** Bastions in the order they are connected to; empty when the host is reached directly. */
  jump: JumpHost[];
  /** The alias looked up, when ssh_config named the host. */
  ssh_alias?: string;
}

/** The inventory's side of one host, for {@link resolveWithSshConfig}. */
export interface InventorySide {
  name: string;
  /** The address as written, or the host's name when none is. */
  alias: string;
  addressWritten: boolean;
  /** Values written in the inventory (host or defaults), paths already absolute. */
  written: { user?: string; port?: number; identity?: string; known_hosts?: string };
  /** ferry's defaults for what nobody wrote. */
  fallback: { user: string; port: number; identity: string; known_hosts: string };
  /** Where to report a problem of the host itself (its key in the inventory). */
  at: Omit<Diagnostic, 'message'>;
}

/** OpenSSH's default identity files, in its order (readconf.c fill_default_options). */
export const DEFAULT_IDENTITIES = [
  '.ssh/id_rsa',
  '.ssh/id_ecdsa',
  '.ssh/id_ecdsa_sk',
  '.ssh/id_ed25519',
  '.ssh/id_ed25519_sk',
] as const;

/** At most this many bastions on one route (a config loop ends here). */
const MAX_HOPS = 8;

/**
 * Resolves one inventory host through the config file `configFile`.
 * Returns the connection fields and every problem and warning found.
 */
export function resolveWithSshConfig(
  side: InventorySide,
  configFile: string,
  ctx: SshConfigContext,
  agentSocket: string | undefined,
): { resolved: SshResolved; problems: Diagnostic[]; warnings: Diagnostic[] } {
  const problems: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const r = resolveSshHost(
    configFile,
    side.alias,
    ctx,
    side.written.user ? { user: side.written.user } : {},
  );
  problems.push(...r.problems);
  warnings.push(...r.warnings);
  if (!side.addressWritten && !r.hostName && !r.named) {
    problems.push({
      ...side.at,
      message: `hosts.${side.name} has no address, and ${configFile} has no Host entry for "${side.alias}"`,
      hint: `Give it an address, or a "Host ${side.alias}" section with a HostName in ${configFile}.`,
    });
  }
  const address = checkedAddress(r.hostName, side.alias, problems, side);
  const user = side.written.user ?? checkedUser(r.user, problems) ?? side.fallback.user;
  const port = side.written.port ?? r.port?.value ?? side.fallback.port;
  const jumpText = jumpTextOf(r.proxyJump);
  const conn = { alias: side.alias, host: address, user, port, jump: jumpText };
  const fromConfig = expandAll(r.identityFiles, ctx, conn, problems);
  const identities = unique([
    ...(side.written.identity ? [side.written.identity] : []),
    ...fromConfig,
  ]);
  const resolved: SshResolved = {
    address,
    port,
    user,
    identities:
      identities.length > 0
        ? identities
        : unique([side.fallback.identity, ...DEFAULT_IDENTITIES.map((p) => join(ctx.home, p))]),
    identities_only: r.identitiesOnly?.value ?? false,
    known_hosts:
      side.written.known_hosts ?? knownHostsOf(r, ctx, conn, problems) ?? side.fallback.known_hosts,
    jump: [],
    ...(r.named || r.hostName ? { ssh_alias: side.alias } : {}),
  };
  const agent = agentOf(r, ctx, conn, agentSocket, problems);
  if (agent) resolved.agent = agent;
  if (r.proxyCommand && r.proxyCommand.value.toLowerCase() !== 'none' && !r.proxyJump) {
    problems.push({
      file: r.proxyCommand.file,
      line: r.proxyCommand.line,
      column: r.proxyCommand.column,
      message: `ProxyCommand is not supported by ferry (it runs no command from ssh_config) for ${side.alias}`,
      hint: 'Use ProxyJump [user@]bastion[:port] instead: ferry connects through it itself.',
    });
  }
  if (r.proxyJump && r.proxyJump.value !== 'none') {
    resolved.jump = jumpChain(
      r.proxyJump.value,
      r.proxyJump,
      configFile,
      ctx,
      agentSocket,
      side.fallback.known_hosts,
      problems,
      warnings,
      [`${user}@${address}:${port}`],
    );
  }
  return { resolved, problems, warnings };
}

/**
 * Sets what ssh_config decided on an inventory host: the connection fields,
 * and only what it adds (a host it says nothing about keeps no empty lists).
 */
export function applySshResolved<H extends { identity: string }>(host: H, r: SshResolved): void {
  Object.assign(host, {
    address: r.address,
    port: r.port,
    user: r.user,
    identity: r.identities[0] ?? host.identity,
    known_hosts: r.known_hosts,
    ...(r.identities.length > 1 || r.identities[0] !== host.identity
      ? { identities: r.identities }
      : {}),
    ...(r.identities_only ? { identities_only: true } : {}),
    ...(r.jump.length > 0 ? { jump: r.jump } : {}),
    ...(r.agent ? { agent: r.agent } : {}),
    ...(r.ssh_alias ? { ssh_alias: r.ssh_alias } : {}),
  });
}

/**
 * The bastions to pass, in connection order, for a ProxyJump list: as ssh
 * does, the last hop is reached through the ones before it (or, when it is
 * alone, through its own ProxyJump in the config).
 */
function jumpChain(
  hops: JumpSpec[],
  where: Located<unknown>,
  configFile: string,
  ctx: SshConfigContext,
  agentSocket: string | undefined,
  knownHostsFallback: string,
  problems: Diagnostic[],
  warnings: Diagnostic[],
  seen: string[],
): JumpHost[] {
  const last = hops[hops.length - 1];
  if (!last) return [];
  if (seen.length > MAX_HOPS) {
    problems.push({
      file: where.file,
      line: where.line,
      column: where.column,
      message: `ProxyJump leads through more than ${MAX_HOPS} bastions (a loop in ${configFile}?)`,
    });
    return [];
  }
  const at = { file: where.file, line: where.line, column: where.column };
  const r = resolveSshHost(configFile, last.host, ctx, last.user ? { user: last.user } : {});
  problems.push(...r.problems);
  warnings.push(...r.warnings);
  const nameProblem = addressProblem(last.host);
  if (!r.hostName && nameProblem) {
    problems.push({
      ...at,
      message: `ProxyJump host "${last.host}" is not a host name or IP address: ${nameProblem}`,
    });
  }
  const address = r.hostName
    ? checkedAddress(r.hostName, last.host, problems)
    : normaliseAddress(last.host);
  const user = last.user ?? checkedUser(r.user, problems) ?? ctx.localUser;
  if (last.user) {
    const p = userProblem(last.user);
    if (p)
      problems.push({ ...at, message: `ProxyJump user "${last.user}" is not a user name: ${p}` });
  }
  const port = last.port ?? r.port?.value ?? 22;
  const key = `${user}@${address}:${port}`;
  if (seen.includes(key)) {
    problems.push({ ...at, message: `ProxyJump loops back to ${key}` });
    return [];
  }
  const before =
    hops.length > 1
      ? jumpChain(
          hops.slice(0, -1),
          where,
          configFile,
          ctx,
          agentSocket,
          knownHostsFallback,
          problems,
          warnings,
          [...seen, key],
        )
      : r.proxyJump && r.proxyJump.value !== 'none'
        ? jumpChain(
            r.proxyJump.value,
            r.proxyJump,
            configFile,
            ctx,
            agentSocket,
            knownHostsFallback,
            problems,
            warnings,
            [...seen, key],
          )
        : [];
  const conn = { alias: last.host, host: address, user, port, jump: jumpTextOf(r.proxyJump) };
  const files = expandAll(r.identityFiles, ctx, conn, problems);
  const hop: JumpHost = {
    name: last.host,
    address,
    port,
    user,
    identities: files.length > 0 ? files : DEFAULT_IDENTITIES.map((p) => join(ctx.home, p)),
    identities_only: r.identitiesOnly?.value ?? false,
    known_hosts: knownHostsOf(r, ctx, conn, problems) ?? knownHostsFallback,
  };
  const agent = agentOf(r, ctx, conn, agentSocket, problems);
  if (agent) hop.agent = agent;
  return [...before, hop];
}

function checkedAddress(
  hostName: Located<string> | undefined,
  alias: string,
  problems: Diagnostic[],
  side?: InventorySide,
): string {
  const value = hostName?.value ?? alias;
  const p = addressProblem(value);
  if (p) {
    problems.push(
      hostName
        ? {
            file: hostName.file,
            line: hostName.line,
            column: hostName.column,
            message: `HostName "${value}" is not a host name or IP address: ${p}`,
          }
        : {
            ...(side?.at ?? { file: '?' }),
            message: `"${value}" is not a host name or IP address: ${p}`,
          },
    );
  }
  return normaliseAddress(value);
}

function checkedUser(
  user: Located<string> | undefined,
  problems: Diagnostic[],
): string | undefined {
  if (!user) return undefined;
  const p = userProblem(user.value);
  if (p) {
    problems.push({
      file: user.file,
      line: user.line,
      column: user.column,
      message: `User "${user.value}" is not a user name: ${p}`,
    });
  }
  return user.value;
}

function jumpTextOf(j: SshHostConfig['proxyJump']): string {
  if (!j || j.value === 'none') return '';
  return j.value
    .map((h) => `${h.user ? `${h.user}@` : ''}${h.host}${h.port ? `:${h.port}` : ''}`)
    .join(',');
}

function expandAll(
  files: Located<string>[],
  ctx: SshConfigContext,
  conn: { alias: string; host: string; user: string; port: number; jump: string },
  problems: Diagnostic[],
): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (f.value.toLowerCase() === 'none') continue;
    try {
      const p = expandPathValue(f.value, ctx, conn);
      out.push(p.startsWith('/') ? p : join(ctx.home, p));
    } catch (e) {
      problems.push({
        file: f.file,
        line: f.line,
        column: f.column,
        message: `IdentityFile ${f.value}: ${(e as Error).message}`,
      });
    }
  }
  return unique(out);
}

function knownHostsOf(
  r: SshHostConfig,
  ctx: SshConfigContext,
  conn: { alias: string; host: string; user: string; port: number; jump: string },
  problems: Diagnostic[],
): string | undefined {
  const first = r.userKnownHostsFile?.value[0];
  if (!r.userKnownHostsFile || first === undefined || first.toLowerCase() === 'none')
    return undefined;
  try {
    return expandPathValue(first, ctx, conn);
  } catch (e) {
    problems.push({
      file: r.userKnownHostsFile.file,
      line: r.userKnownHostsFile.line,
      column: r.userKnownHostsFile.column,
      message: `UserKnownHostsFile ${first}: ${(e as Error).message}`,
    });
    return undefined;
  }
}

/** The agent socket: IdentityAgent (none, SSH_AUTH_SOCK, $VAR or a path), else SSH_AUTH_SOCK. */
function agentOf(
  r: SshHostConfig,
  ctx: SshConfigContext,
  conn: { alias: string; host: string; user: string; port: number; jump: string },
  agentSocket: string | undefined,
  problems: Diagnostic[],
): string | undefined {
  const a = r.identityAgent;
  if (!a) return agentSocket || undefined;
  if (a.value.toLowerCase() === 'none') return undefined;
  if (a.value === 'SSH_AUTH_SOCK') return agentSocket || undefined;
  if (a.value.startsWith('$')) return ctx.env[a.value.slice(1)] || undefined;
  try {
    return expandPathValue(a.value, ctx, conn);
  } catch (e) {
    problems.push({
      file: a.file,
      line: a.line,
      column: a.column,
      message: `IdentityAgent ${a.value}: ${(e as Error).message}`,
    });
    return undefined;
  }
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
