/**
 * The official datastore plugins (postgres, mysql, redis, mongo, …) share one
 * code base (`common-functions`), so `<plugin>:list` and `<plugin>:info` have one
 * shape (reference §11).
 */
import {
  bodyLines,
  type CommandOutput,
  DokkuOutputError,
  expectSuccess,
  headerText,
  isWarning,
  lines,
  warnings,
} from './output.js';

/** One service from `<plugin>:list`. Version and status only from the pre-1.10 table. */
export interface ServiceListEntry {
  name: string;
  version?: string;
  status?: string;
}

/**
 * Parses `<plugin>:list`: 1.10+ prints names under `=====> Postgres services`
 * (bare with `--quiet`); older releases printed a `column -t` table headed
 * `NAME VERSION STATUS EXPOSED PORTS LINKS`. None: a warning on stderr, exit 0.
 */
export function parseServiceList(out: CommandOutput, plugin = 'postgres'): ServiceListEntry[] {
  expectSuccess(`${plugin}:list`, out);
  const body = bodyLines(out.stdout);
  const first = body[0]?.trim().split(/\s+/) ?? [];
  if (first[0] === 'NAME' && first.includes('VERSION')) {
    return body.slice(1).map((row) => {
      const [name, version, status] = row.trim().split(/\s+/);
      const entry: ServiceListEntry = { name: name! };
      if (version !== undefined) entry.version = version;
      if (status !== undefined) entry.status = status;
      return entry;
    });
  }
  return body.map((l) => {
    const name = l.trim();
    if (/\s/.test(name)) {
      throw new DokkuOutputError(`${plugin}:list`, `unexpected line ${JSON.stringify(l)}`, 0);
    }
    return { name };
  });
}

/** `<plugin>:info <svc>` as typed fields. Every label is also kept in {@link ServiceInfo.fields}. */
export interface ServiceInfo {
  /** The service name from the header, when the header was printed (not `--quiet`). */
  name?: string;
  configDir: string;
  configOptions: string;
  dataDir: string;
  /** Holds the service password: never log it unredacted. */
  dsn: string;
  /** `5432->NNNN` entries; empty when not exposed (`-`). */
  exposedPorts: string[];
  id: string;
  internalIp: string;
  initialNetwork: string;
  /** Linked apps; empty when none (`-`). */
  links: string[];
  postCreateNetwork: string;
  postStartNetwork: string;
  serviceRoot: string;
  /** docker `.State.Status` (`running`, `exited`, …) or `missing`. */
  status: string;
  /** The image of the container, `postgres:18.4`. */
  version: string;
  /** Every line, keyed by the flag name without `--` (`config-dir`, `post-start-network`). */
  fields: Record<string, string>;
}

/** `Post create network` → `post-create-network` (the matching `--flag` without dashes). */
export function labelToKey(label: string): string {
  return label.trim().toLowerCase().replace(/\s+/g, '-');
}

/**
 * Parses `<plugin>:info <svc>`: `printf "%-20s %-25s"` lines in a fixed order, with
 * trailing spaces after short values, and a header unless `--quiet`.
 */
export function parseServiceInfo(out: CommandOutput, plugin = 'postgres'): ServiceInfo {
  expectSuccess(`${plugin}:info`, out);
  const fields: Record<string, string> = {};
  let name: string | undefined;
  for (const line of lines(out.stdout)) {
    if (line.trim() === '' || isWarning(line)) continue;
    const head = headerText(line);
    if (head !== undefined) {
      const m = /^(\S+) \S+ service information$/.exec(head);
      if (m) name = m[1];
      continue;
    }
    const m = /^\s*([A-Za-z][A-Za-z ]*?):(?:\s+(.*))?$/.exec(line);
    if (!m)
      throw new DokkuOutputError(`${plugin}:info`, `unexpected line ${JSON.stringify(line)}`, 0);
    fields[labelToKey(m[1]!)] = (m[2] ?? '').trim();
  }
  if (Object.keys(fields).length === 0) {
    throw new DokkuOutputError(`${plugin}:info`, 'no fields in the output', 0);
  }
  const get = (k: string): string => fields[k] ?? '';
  const list = (k: string): string[] => {
    const v = get(k);
    return v === '' || v === '-' ? [] : v.split(/\s+/);
  };
  const info: ServiceInfo = {
    configDir: get('config-dir'),
    configOptions: get('config-options'),
    dataDir: get('data-dir'),
    dsn: get('dsn'),
    exposedPorts: list('exposed-ports'),
    id: get('id'),
    internalIp: get('internal-ip'),
    initialNetwork: get('initial-network'),
    links: list('links'),
    postCreateNetwork: get('post-create-network'),
    postStartNetwork: get('post-start-network'),
    serviceRoot: get('service-root'),
    status: get('status'),
    version: get('version'),
    fields,
  };
  if (name !== undefined) info.name = name;
  return info;
}

/** Parses `<plugin>:info <svc> --flag`: the value alone, padding removed. */
export function parseServiceInfoFlag(out: CommandOutput, plugin = 'postgres'): string {
  expectSuccess(`${plugin}:info`, out);
  return lines(out.stdout)
    .filter((l) => !isWarning(l))
    .join('\n')
    .trim();
}

/**
 * Reads `<plugin>:exists <svc>`: `-----> Service x exists` (exit 0) → true;
 * ` !     Postgres service x does not exist` (exit 1) → false.
 */
export function parseServiceExists(out: CommandOutput, plugin = 'postgres'): boolean {
  const said = [...warnings(out.stderr), ...warnings(out.stdout)];
  if (out.code === 1 && said.some((w) => / service \S+ does not exist$/.test(w))) return false;
  expectSuccess(`${plugin}:exists`, out);
  return true;
}
