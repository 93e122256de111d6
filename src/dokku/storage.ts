/**
 * `storage:list <app> [--format text|json]` (reference §8). 0.38 prints a
 * `-----> <app> volume bind-mounts:` header and 7-space-indented lines; `--quiet`
 * prints bare lines; ≤0.37 (bash) printed raw lines with no header.
 */
import {
  bodyLines,
  type CommandOutput,
  DokkuOutputError,
  expectSuccess,
  jsonObjects,
  str,
} from './output.js';

/** One bind mount or volume of an app (deploy phase). */
export interface StorageMount {
  /** Absolute host path, or a docker volume name. */
  hostPath: string;
  containerPath: string;
  /** Mount options after the second colon (`ro,Z`), '' when none. */
  options: string;
  /** Storage-registry entry name (JSON form only). */
  entryName?: string;
  readonly?: boolean;
}

/** Splits `host:container[:opts]`. */
export function parseMountSpec(spec: string): StorageMount {
  const text = spec.trim();
  const first = text.indexOf(':');
  if (first <= 0) throw new DokkuOutputError('storage:list', `not host:container: ${text}`, 0);
  const rest = text.slice(first + 1);
  const second = rest.indexOf(':');
  const containerPath = second === -1 ? rest : rest.slice(0, second);
  if (containerPath === '') {
    throw new DokkuOutputError('storage:list', `no container path in ${text}`, 0);
  }
  return {
    hostPath: text.slice(0, first),
    containerPath,
    options: second === -1 ? '' : rest.slice(second + 1),
  };
}

/** Parses `storage:list` text output of any version (header or not). */
export function parseStorageList(out: CommandOutput): StorageMount[] {
  expectSuccess('storage:list', out);
  // ≤0.37 kept `-v host:ctr` lines in DOCKER_OPTIONS; a raw line may still carry the flag.
  return bodyLines(out.stdout).map((l) => parseMountSpec(l.trim().replace(/^-v\s+/, '')));
}

/** Parses `storage:list --format json` (0.38+): `[]` when none. */
export function parseStorageListJson(out: CommandOutput): StorageMount[] {
  return jsonObjects('storage:list', out).map((o) => {
    const options = str(o, 'volume_options');
    const mount: StorageMount = {
      hostPath: str(o, 'host_path'),
      containerPath: str(o, 'container_path'),
      options: o.readonly === true && options === '' ? 'ro' : options,
    };
    if (str(o, 'entry_name')) mount.entryName = str(o, 'entry_name');
    if (typeof o.readonly === 'boolean') mount.readonly = o.readonly;
    return mount;
  });
}
