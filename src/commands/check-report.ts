/**
 * What `ferry check` found, as data (`--json`) and as the table people read.
 */
import { formatBytes } from '../util/format.js';

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
    status:
      | 'inventory'
      | 'known_hosts'
      | 'cert-authority'
      | 'accepted'
      | 'unknown'
      | 'mismatch'
      | 'unchecked';
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
  controller: {
    node: string;
    nativeCrypto: boolean;
    nativeCryptoPath?: string;
    /** The command that builds the binding for this install, when it is missing. */
    nativeCryptoFix?: string;
  };
  hosts: HostCheck[];
  /** SSH connections this check opened (one per host at most). */
  connections: number;
}

function hostKeyCell(h: HostCheck): string {
  switch (h.hostKey.status) {
    case 'inventory':
      return 'pinned, ok';
    case 'known_hosts':
      return 'known, ok';
    case 'cert-authority':
      return 'CA-signed, ok';
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
    `controller: node ${rep.controller.node}, ssh2 native crypto ${rep.controller.nativeCrypto ? 'built' : 'NOT built: copies through this machine run about 2x slower'}`,
  );
  if (!rep.controller.nativeCrypto) {
    out.push(
      `hint: build it (needs python3, make and a C++ compiler): ${rep.controller.nativeCryptoFix ?? 'npm rebuild ssh2 cpu-features'}`,
    );
  }
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
