/**
 * `ferry check [HOST...] [--accept-new-host-keys] [--json]`: everything that
 * can be checked without changing anything, before anything changes. The
 * inventory and every playbook are validated first (bad input: exit 2), then
 * each host is reached over one connection and asked about itself.
 */
import type { CommandContext } from '../cli.js';
import { parsePluginList } from '../dokku/plugins.js';
import { parseDokkuVersion } from '../dokku/version.js';
import { type Diagnostic, ExitCode, FerryError, InputError, UsageError } from '../errors.js';
import { type Host, type Inventory, loadInventory } from '../inventory/index.js';
import { listPlaybooks, loadPlaybook } from '../playbook/index.js';
import { Connections, HostKeyError, type HostTarget, type Remote } from '../ssh/connection.js';
import { nativeCryptoAvailable, nativeCryptoPath } from '../ssh/native.js';
import { hostTargetOf } from '../ssh/targets.js';
import { DATASTORE_PLUGINS } from '../tasks/common.js';

export { hostTargetOf };

/** The Dokku directories whose size a copy needs room for. */
const DOKKU_DIRS = ['/home/dokku', '/var/lib/dokku'] as const;

/** What `ferry check` found on one host. */
export interface HostCheck {
  host: string;
  address: string;
  port: number;
  user: string;
  /** No problem found (warnings allowed). */
  ok: boolean;
  reachable: boolean;
  hostKey: {
    status: 'inventory' | 'known_hosts' | 'accepted' | 'unknown' | 'mismatch' | 'unchecked';
    /** What the host presented. */
    fingerprint?: string;
    type?: string;
    /** What was on file, for a mismatch. */
    expected?: string;
  };
  /** `dokku version`, e.g. `0.38.27`; null when Dokku is missing or broken. */
  dokku?: string | null;
  /** Datastore plugins installed (enabled or not), e.g. `postgres 1.48.0`. */
  datastores?: { name: string; version: string; enabled: boolean }[];
  /** Free bytes on the filesystem(s) of the Dokku directories against their total size. */
  disk?: { freeBytes: number; dokkuBytes: number; enough: boolean };
  /** `root` (no sudo needed), `ok` (sudo -n works), `failed`. */
  sudo?: 'root' | 'ok' | 'failed';
  arch?: string;
  zstd?: boolean;
  /** Each problem, with what to do, as printed. */
  problems: string[];
  warnings: string[];
}

/** The whole report (`--json` prints it). */
export interface CheckReport {
  ok: boolean;
  inventory: string;
  playbooks: string[];
  controller: { node: string; nativeCrypto: boolean; nativeCryptoPath?: string };
  hosts: HostCheck[];
  /** SSH connections this check opened (one per host at most). */
  connections: number;
}

/** Parses `df -PB1` output: the "Available" column of each filesystem line. */
export function parseDfAvailable(stdout: string): number[] {
  return stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 6)
    .map((f) => Number(f[3]))
    .filter((n) => Number.isFinite(n));
}

/** Parses `du -sb A B` output: the sum of the sizes. */
export function parseDuTotal(stdout: string): number {
  return stdout
    .trim()
    .split('\n')
    .map((l) => Number(l.split('\t')[0]))
    .filter((n) => Number.isFinite(n))
    .reduce((a, b) => a + b, 0);
}

/** Human sizes in powers of 1024, as df -h prints them. */
export function formatBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v < 10 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

function messageOf(e: unknown): string {
  if (e instanceof FerryError) return e.hint ? `${e.message}\n    hint: ${e.hint}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Everything `check` asks a host, as one script: one channel per host (each
 * channel costs a login shell start), sections marked so each answer is read
 * on its own and one failing probe does not hide the others.
 */
export const PROBE_SCRIPT = `set +e
section() { printf '\\n@@ferry %s\\n' "$1"; }
section dokku-version; dokku version 2>&1 || printf '@@rc %s\\n' "$?"
section plugin-list; dokku plugin:list 2>&1 || printf '@@rc %s\\n' "$?"
section uid; id -u
section arch; uname -m
section zstd; command -v zstd || printf '@@rc 1\\n'
dirs=()
for d in ${DOKKU_DIRS.join(' ')}; do if [ -e "$d" ]; then dirs+=("$d"); fi; done
section df; df -PB1 -- "\${dirs[@]:-/}" 2>&1 || printf '@@rc %s\\n' "$?"
section du; if [ \${#dirs[@]} -gt 0 ]; then du -sb -- "\${dirs[@]}" 2>/dev/null; fi
true`;

/** One section of the probe's output: its text and the exit code it recorded (0 when none). */
export interface ProbeSection {
  text: string;
  code: number;
}

/** Splits the probe's output into its sections. */
export function parseProbe(stdout: string): Map<string, ProbeSection> {
  const out = new Map<string, ProbeSection>();
  const parts = stdout.split(/\n@@ferry (\S+)\n/);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    let text = parts[i + 1] ?? '';
    let code = 0;
    const m = /(?:^|\n)@@rc (\d+)\n?$/.exec(text);
    if (m) {
      code = Number(m[1]);
      text = text.slice(0, m.index);
    }
    out.set(parts[i] ?? '', { text, code });
  }
  return out;
}

/** Fills `out` from one connected host; never throws. */
async function probe(r: Remote, out: HostCheck): Promise<void> {
  let sections: Map<string, ProbeSection>;
  try {
    sections = parseProbe((await r.run(PROBE_SCRIPT, { step: 'check' })).stdout);
  } catch (e) {
    out.sudo = r.host.user === 'root' ? 'root' : 'failed';
    out.problems.push(`cannot run commands: ${messageOf(e)}`);
    return;
  }
  const get = (name: string): ProbeSection => sections.get(name) ?? { text: '', code: 255 };
  const asOutput = (s: ProbeSection) => ({ stdout: s.text, stderr: '', code: s.code });

  const version = get('dokku-version');
  try {
    out.dokku = parseDokkuVersion(asOutput(version)).raw;
  } catch {
    out.dokku = null;
    const said = version.text.trim().split('\n').slice(-3).join(' ');
    out.problems.push(
      version.code === 127
        ? 'Dokku is not installed (no `dokku` command)'
        : `\`dokku version\` failed (exit ${version.code})${said ? `: ${said}` : ''}`,
    );
  }
  try {
    out.datastores = parsePluginList(asOutput(get('plugin-list')))
      .filter((p) => (DATASTORE_PLUGINS as readonly string[]).includes(p.name))
      .map((p) => ({ name: p.name, version: p.version, enabled: p.enabled }));
  } catch (e) {
    if (out.dokku !== null) out.warnings.push(`cannot list Dokku plugins: ${messageOf(e)}`);
  }

  const uid = get('uid').text.trim();
  if (uid === '0') {
    out.sudo = r.host.user === 'root' ? 'root' : 'ok';
  } else {
    out.sudo = 'failed';
    out.problems.push(
      `sudo: commands do not run as root (uid ${uid || '?'}). Set hosts.${r.host.name}.sudo: true, or log in as root.`,
    );
  }
  out.arch = get('arch').text.trim() || undefined;
  out.zstd = get('zstd').code === 0;
  if (!out.zstd)
    out.problems.push('zstd is not installed: transfers compress with it (apt-get install zstd)');

  const free = Math.min(...parseDfAvailable(get('df').text));
  const used = parseDuTotal(get('du').text);
  if (Number.isFinite(free)) {
    out.disk = { freeBytes: free, dokkuBytes: used, enough: free >= used };
    if (!out.disk.enough) {
      out.warnings.push(
        `disk: ${formatBytes(free)} free, less than the ${formatBytes(used)} of ${DOKKU_DIRS.join(' and ')}: an archive or a copy of them will not fit`,
      );
    }
  } else {
    out.warnings.push(`cannot measure disk: ${get('df').text.trim() || 'no df output'}`);
  }
}

/**
 * Connects to each host (at most one connection each) and reports on it.
 * Reusable as a pre-flight by the other commands.
 */
export async function checkHosts(
  inventory: Inventory,
  names: string[],
  opts: { acceptNewHostKeys?: boolean; pool?: Connections } = {},
): Promise<{ hosts: HostCheck[]; connections: number }> {
  const targets = Object.fromEntries(
    names.map((n) => [n, hostTargetOf(inventory.hosts[n] as Host)]),
  );
  const pool =
    opts.pool ??
    new Connections(targets, opts.acceptNewHostKeys ? { acceptNewHostKeys: true } : {});
  try {
    const hosts = await Promise.all(
      names.map(async (name): Promise<HostCheck> => {
        const t = targets[name] as HostTarget;
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

function hostKeyCell(h: HostCheck): string {
  switch (h.hostKey.status) {
    case 'inventory':
      return 'pinned, ok';
    case 'known_hosts':
      return 'known, ok';
    case 'accepted':
      return 'NEW, accepted';
    case 'unknown':
      return 'UNKNOWN';
    case 'mismatch':
      return 'MISMATCH';
    default:
      return '-';
  }
}

/** The human table: one row per host, then the controller, then each problem. */
export function formatReport(rep: CheckReport): string {
  const header = [
    'HOST',
    'ADDRESS',
    'SSH',
    'HOST KEY',
    'DOKKU',
    'DATASTORES',
    'DISK FREE / DOKKU',
    'SUDO',
    'ARCH',
    'ZSTD',
  ];
  const rows = rep.hosts.map((h) => [
    h.host,
    `${h.user}@${h.address}${h.port === 22 ? '' : `:${h.port}`}`,
    h.reachable ? 'ok' : 'FAILED',
    hostKeyCell(h),
    h.dokku === undefined ? '-' : h.dokku === null ? 'MISSING' : h.dokku,
    h.datastores === undefined
      ? '-'
      : h.datastores.length === 0
        ? 'none'
        : h.datastores
            .map((d) => `${d.name} ${d.version}${d.enabled ? '' : ' (disabled)'}`)
            .join(', '),
    h.disk
      ? `${formatBytes(h.disk.freeBytes)} / ${formatBytes(h.disk.dokkuBytes)}${h.disk.enough ? '' : ' LOW'}`
      : '-',
    h.sudo === undefined ? '-' : h.sudo === 'failed' ? 'FAILED' : h.sudo,
    h.arch ?? '-',
    h.zstd === undefined ? '-' : h.zstd ? 'yes' : 'MISSING',
  ]);
  const widths = header.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  out.push('');
  out.push(
    `controller: node ${rep.controller.node}, ssh2 native crypto ${rep.controller.nativeCrypto ? 'built' : 'NOT built (bulk transfers run about 2x slower; reinstall with a C++ toolchain: npm rebuild ssh2)'}`,
  );
  out.push(
    `inventory ${rep.inventory}: valid; playbooks: ${rep.playbooks.length ? `${rep.playbooks.join(', ')} valid` : 'none found'}`,
  );
  for (const h of rep.hosts) {
    for (const p of h.problems) out.push(`error: ${h.host}: ${p}`);
    for (const w of h.warnings) out.push(`warning: ${h.host}: ${w}`);
  }
  const bad = rep.hosts.filter((h) => !h.ok).length;
  out.push(
    bad === 0
      ? `all ${rep.hosts.length} host(s) ok`
      : `${bad} of ${rep.hosts.length} host(s) have problems`,
  );
  return `${out.join('\n')}\n`;
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
export async function check(ctx: CommandContext): Promise<number> {
  const inventory = await loadInventory(ctx.inventoryPath);
  const playbooks = await validatePlaybooks();
  const all = Object.keys(inventory.hosts);
  const unknown = ctx.positionals.filter((n) => !inventory.hosts[n]);
  if (unknown.length > 0) {
    throw new UsageError(
      `no host named ${unknown.map((n) => `"${n}"`).join(', ')} in ${ctx.inventoryPath}`,
      `Hosts there: ${all.join(', ') || '(none)'}.`,
    );
  }
  const names = ctx.positionals.length > 0 ? [...new Set(ctx.positionals)] : all;
  const { hosts, connections } = await checkHosts(inventory, names, {
    acceptNewHostKeys: ctx.values['accept-new-host-keys'] === true,
  });
  const path = nativeCryptoPath();
  const rep: CheckReport = {
    ok: hosts.every((h) => h.ok),
    inventory: ctx.inventoryPath,
    playbooks,
    controller: {
      node: process.version,
      nativeCrypto: nativeCryptoAvailable(),
      ...(path ? { nativeCryptoPath: path } : {}),
    },
    hosts,
    connections,
  };
  ctx.stdout.write(ctx.json ? `${JSON.stringify(rep, null, 2)}\n` : formatReport(rep));
  return rep.ok ? ExitCode.ok : ExitCode.failed;
}
