/**
 * What `ferry check` asks each host: one script over one channel (each channel
 * costs a login shell start), in sections read one by one, so one failing
 * probe does not hide the others. Never changes anything on the host.
 */
import { parsePluginList } from '../dokku/plugins.js';
import { parseDokkuVersion } from '../dokku/version.js';
import { FerryError } from '../errors.js';
import type { Remote } from '../ssh/remote.js';
import { $ } from '../ssh/shell.js';
import { DATASTORE_PLUGINS } from '../tasks/common.js';
import { formatBytes } from '../util/format.js';
import type { HostCheck } from './check-report.js';

/** The Dokku directories whose size a copy needs room for. */
export const DOKKU_DIRS = ['/home/dokku', '/var/lib/dokku'] as const;

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

export function messageOf(e: unknown): string {
  if (e instanceof FerryError) return e.hint ? `${e.message}\n    hint: ${e.hint}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Everything `check` asks a host, as one script: one channel per host (each
 * channel costs a login shell start), sections marked so each answer is read
 * on its own and one failing probe does not hide the others.
 */
export const PROBE_SCRIPT = $`set +e
section() { printf '\\n@@ferry %s\\n' "$1"; }
section dokku-version; dokku version 2>&1 || printf '@@rc %s\\n' "$?"
section plugin-list; dokku plugin:list 2>&1 || printf '@@rc %s\\n' "$?"
section uid; id -u
section arch; uname -m
section zstd; command -v zstd || printf '@@rc 1\\n'
dirs=()
for d in ${DOKKU_DIRS}; do if [ -e "$d" ]; then dirs+=("$d"); fi; done
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
export async function probe(r: Remote, out: HostCheck): Promise<void> {
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
