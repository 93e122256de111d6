/**
 * The inventory: hosts and how to reach them, the app rebuild order, the local
 * repos whose remote follows a move, where archives go. `validateInventory` is
 * pure (text in, typed value or every problem out); `loadInventory` reads the
 * file. Both read ferry's own YAML format and Ansible's inventories (YAML and
 * INI, src/inventory/ansible*.ts); {@link inventoryFormat} tells them apart.
 *
 * ferry's format in three passes, every message collected before failing: the
 * schema (ajv), normalising (defaults inherited, `~` and relative paths
 * expanded), then the rules that span fields.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import type { Diagnostic } from '../errors.js';
import { formatDiagnostic, InputError } from '../errors.js';
import { compile, diagnose } from '../schema/diagnose.js';
import { CONTROL_CHAR, normaliseAddress } from '../schema/host-fields.js';
import { type HostDocument, type InventoryDocument, inventorySchema } from '../schema/inventory.js';
import {
  decodeInput,
  type Path,
  parseSource,
  positionAt,
  readInput,
  type SourceFile,
} from '../schema/source.js';
import { systemContext } from '../ssh/config.js';
import { looksLikeAnsibleYaml, readAnsibleYaml, resolveAnsible } from './ansible.js';
import { readAnsibleIni } from './ansible-ini.js';
import {
  backupDirProblem,
  DOKKU_PATHS,
  expandPath,
  hostNameProblem,
  missingIdentityHint,
  RESERVED_HOST_NAMES,
  repeatedRepos,
} from './rules.js';
import { applySshResolved, resolveWithSshConfig } from './ssh-hosts.js';

import type { Host, Inventory, InventoryOptions } from './types.js';

export type { Host, Inventory, InventoryFormat, InventoryOptions, Repo } from './types.js';
export { DOKKU_PATHS, expandPath, RESERVED_HOST_NAMES };

/** What an inventory asks the user to know (an Ansible variable ferry ignores…), one line each. */
export function inventoryWarnings(inventory: Inventory): string[] {
  return (inventory.warnings ?? []).map((d) => `warning: ${formatDiagnostic(d)}\n`);
}

/**
 * The hosts of a group (its own and its child groups'), or undefined when
 * the inventory has no such group. `all` is every host, in every format.
 */
export function groupMembers(inventory: Inventory, group: string): string[] | undefined {
  if (group === 'all') return inventory.groups?.all ?? Object.keys(inventory.hosts);
  return inventory.groups?.[group];
}

const validateSchema = compile(inventorySchema);

/** Local YAML tags an Ansible inventory may hold (vault-encrypted and unsafe strings). */
const ANSIBLE_TAGS = ['!vault', '!unsafe'];

/**
 * How a file is written, from its name and first line: `.ini` is Ansible INI;
 * `.yml`, `.yaml` and `.json` are YAML; any other name (Ansible's classic
 * `hosts` file has none) is YAML when its first line that is neither blank
 * nor a comment is `---`, starts with `{`, or is a `key:` line, and INI
 * otherwise. A YAML file is then ferry's own format when it has a top-level
 * `version`, and Ansible's when it has an `all` group or only group-shaped
 * entries (see `looksLikeAnsibleYaml`).
 */
export function inventoryFormat(text: string, file: string): 'yaml' | 'ini' {
  const ext = extname(file).toLowerCase();
  if (ext === '.ini') return 'ini';
  if (['.yml', '.yaml', '.json'].includes(ext)) return 'yaml';
  const first = text
    .split(/\r\n|\n|\r/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
  if (first === undefined) return 'yaml';
  return first === '---' || first.startsWith('{') || /^[^\s#'"[{][^\s:]*:(\s|$)/.test(first)
    ? 'yaml'
    : 'ini';
}

/**
 * Validates inventory text (or the bytes of a file, checked to be UTF-8
 * text first). Returns the normalised inventory, or throws an InputError
 * holding every problem found, each at its file:line:column.
 */
export function validateInventory(
  input: string | Uint8Array,
  file: string,
  options: InventoryOptions = {},
): Inventory {
  const text = typeof input === 'string' ? input : decodeInput(input, file, 'the inventory');
  const home = options.home ?? homedir();
  if (inventoryFormat(text, file) === 'ini') {
    const model = readAnsibleIni(text, file);
    return finishAnsible(resolveAnsible(model, { ...options, home }));
  }
  const parsed = parseSource(text, file, 'the inventory', { allowTags: ANSIBLE_TAGS });
  if (!parsed.syntaxOk) throw new InputError(parsed.diagnostics);
  const value = parsed.source.value;
  if (value === null || value === undefined) {
    throw new InputError([
      {
        file,
        line: 1,
        column: 1,
        message: 'the inventory is empty',
        hint: 'Start from inventory/hosts.example.yml.',
      },
    ]);
  }
  if (isObject(value) && looksLikeAnsibleYaml(value)) {
    const model = readAnsibleYaml(parsed.source);
    model.problems.push(...parsed.diagnostics);
    return finishAnsible(resolveAnsible(model, { ...options, home }));
  }
  // ferry's own format has no use for Ansible's tags: read it again without them.
  const { source, diagnostics, syntaxOk } = ANSIBLE_TAGS.some((t) => text.includes(t))
    ? parseSource(text, file, 'the inventory')
    : parsed;
  if (!syntaxOk) throw new InputError(diagnostics);
  if (!validateSchema(value)) {
    diagnostics.push(...diagnose(source, validateSchema.errors ?? []));
  }
  diagnostics.push(...reservedNames(source, value));
  // The rules across fields run on every part that is well formed, even when
  // others are not, so one pass reports all there is.
  const { doc, checkIdentity } = wellFormedParts(value);
  const inventory = normalise(doc, file, home);
  diagnostics.push(...sshConfigRules(source, doc, inventory, options, home));
  diagnostics.push(
    ...crossFieldRules(
      source,
      doc,
      inventory,
      checkIdentity ? options : { ...options, fileExists: undefined },
    ),
  );
  if (diagnostics.length > 0) throw new InputError(sortDiagnostics(diagnostics));
  return inventory;
}

function finishAnsible({
  inventory,
  problems,
}: {
  inventory: Inventory;
  problems: Diagnostic[];
}): Inventory {
  if (problems.length > 0) throw new InputError(sortDiagnostics(problems));
  if (Object.keys(inventory.hosts).length === 0) {
    throw new InputError([
      {
        file: inventory.file,
        line: 1,
        column: 1,
        message: 'the inventory has no host ferry can reach over SSH',
        hint: 'An Ansible inventory lists hosts under a group: all: hosts: NAME: (YAML), or one per line (INI).',
      },
    ]);
  }
  return inventory;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The parts of a (possibly invalid) inventory value that have the right
 * types, schema defaults filled in. For a valid file this is the file.
 */
function wellFormedParts(value: unknown): { doc: InventoryDocument; checkIdentity: boolean } {
  const v = isObject(value) ? value : {};
  const str = (x: unknown, d: string) => (typeof x === 'string' ? x : d);
  const int = (x: unknown, d: number) => (typeof x === 'number' && Number.isInteger(x) ? x : d);
  const bool = (x: unknown, d: boolean) => (typeof x === 'boolean' ? x : d);
  const d = isObject(v.defaults) ? v.defaults : {};
  const hosts: InventoryDocument['hosts'] = {};
  const types: Record<string, string> = {
    address: 'string',
    user: 'string',
    port: 'number',
    identity: 'string',
    known_hosts: 'string',
    sudo: 'boolean',
    host_key: 'string',
  };
  for (const [name, h] of Object.entries(isObject(v.hosts) ? v.hosts : {})) {
    if (!isObject(h) || (h.address !== undefined && typeof h.address !== 'string')) continue;
    if (Object.entries(types).some(([k, t]) => h[k] !== undefined && typeof h[k] !== t)) continue;
    hosts[name] = h as HostDocument;
  }
  const backup = isObject(v.backup) ? v.backup : {};
  const apps = isObject(v.apps) ? v.apps : {};
  return {
    checkIdentity: d.identity === undefined || typeof d.identity === 'string',
    doc: {
      version: 1,
      defaults: {
        user: str(d.user, 'root'),
        port: int(d.port, 22),
        identity: str(d.identity, '~/.ssh/id_ed25519'),
        known_hosts: str(d.known_hosts, '~/.ssh/known_hosts'),
        sudo: bool(d.sudo, false),
        ssh_config: str(d.ssh_config, '~/.ssh/config'),
      },
      hosts,
      apps: {
        order: Array.isArray(apps.order)
          ? apps.order.filter((a): a is string => typeof a === 'string')
          : [],
      },
      repos: (Array.isArray(v.repos) ? v.repos : []).flatMap((r: unknown) =>
        isObject(r) && typeof r.path === 'string' && typeof r.app === 'string'
          ? [{ path: r.path, app: r.app, remote: str(r.remote, 'dokku') }]
          : [],
      ),
      backup: {
        dir: str(backup.dir, '/var/lib/dokku-ferry/archives'),
        keep: int(backup.keep, 7),
        ...(Array.isArray(backup.encrypt) &&
        backup.encrypt.every((r: unknown) => typeof r === 'string')
          ? { encrypt: [...(backup.encrypt as string[])] }
          : {}),
      },
    },
  };
}

/** The environment OpenSSH's configuration reads: `${VAR}` in paths, SSH_AUTH_SOCK. */
export type SshEnv = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates an inventory file; identity files must exist unless
 * told otherwise. Hosts are resolved through the ssh_config file the
 * inventory names (default ~/.ssh/config), read as this machine's user.
 */
export async function loadInventory(
  path: string,
  options: InventoryOptions & {
    checkIdentity?: boolean;
    /** The environment ssh_config reads (`${VAR}`, SSH_AUTH_SOCK), as cli.ts got it. */
    sshEnv?: SshEnv;
  } = {},
): Promise<Inventory> {
  let text: string;
  try {
    text = await readInput(path, path, 'the inventory');
  } catch (e) {
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(
      [
        {
          file: path,
          message:
            code === 'ENOENT' ? 'the inventory file does not exist' : `cannot read it (${code})`,
        },
      ],
      code === 'ENOENT'
        ? 'Pass one with -i FILE, or copy inventory/hosts.example.yml to inventory/hosts.yml.'
        : undefined,
    );
  }
  const { checkIdentity = true, sshEnv, ...rest } = options;
  const inventory = validateInventory(text, path, {
    ...rest,
    ...(checkIdentity && !rest.fileExists ? { fileExists: existsSync } : {}),
    ssh: rest.ssh ?? {
      context: systemContext({ ...(rest.home ? { home: rest.home } : {}), env: sshEnv ?? {} }),
      ...(sshEnv?.SSH_AUTH_SOCK ? { agentSocket: sshEnv.SSH_AUTH_SOCK } : {}),
    },
  });
  // Ansible would read variables from these folders beside the inventory; ferry does not.
  if (inventory.format !== 'ferry') {
    for (const d of ['group_vars', 'host_vars']) {
      if (!existsSync(join(dirname(path), d))) continue;
      inventory.warnings?.push({
        file: join(dirname(path), d),
        message: `${d}/ is not read: ferry takes variables from the inventory file only`,
        hint: 'Set the variables ferry reads (ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file, ansible_become, dokku_ferry) in the inventory.',
      });
    }
  }
  return inventory;
}

function normalise(doc: InventoryDocument, file: string, home: string): Inventory {
  const d = doc.defaults;
  const hosts: Record<string, Host> = {};
  for (const [name, h] of Object.entries(doc.hosts)) {
    hosts[name] = {
      name,
      address: normaliseAddress(h.address ?? name),
      user: h.user ?? d.user,
      port: h.port ?? d.port,
      identity: expandPath(h.identity ?? d.identity, file, home),
      known_hosts: expandPath(h.known_hosts ?? d.known_hosts, file, home),
      sudo: h.sudo ?? d.sudo,
      ...(h.host_key ? { host_key: h.host_key } : {}),
    };
  }
  return {
    file,
    version: doc.version,
    format: 'ferry',
    hosts,
    groups: { all: Object.keys(hosts) },
    apps: { order: [...doc.apps.order] },
    repos: doc.repos.map((r) => ({ ...r, path: expandPath(r.path, file, home) })),
    backup: { ...doc.backup },
    warnings: [],
  };
}

/**
 * Hosts through ssh_config (when the caller gives a context): every host's
 * address is looked up as `ssh ADDRESS` would, values written here winning.
 * Without a context, a host must have an address of its own.
 */
function sshConfigRules(
  source: SourceFile,
  doc: InventoryDocument,
  inv: Inventory,
  options: InventoryOptions,
  home: string,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const configPath = doc.defaults.ssh_config;
  const useConfig = options.ssh !== undefined && configPath.toLowerCase() !== 'none';
  const configFile = expandPath(configPath, source.file, home);
  for (const host of Object.values(inv.hosts)) {
    const h = doc.hosts[host.name] ?? {};
    const at = { file: source.file, ...positionAt(source, ['hosts', host.name], 'key') };
    if (!useConfig || !options.ssh) {
      if (h.address === undefined) {
        out.push({
          ...at,
          message: `hosts.${host.name} has no address${options.ssh ? ' (and defaults.ssh_config is none)' : ''}`,
          hint: 'Give it an address: a DNS name or IP address, or a Host alias of your ssh_config.',
        });
      }
      continue;
    }
    const written = (k: 'user' | 'port' | 'identity' | 'known_hosts') =>
      h[k] !== undefined || source.doc.hasIn(['defaults', k]);
    const { resolved, problems, warnings } = resolveWithSshConfig(
      {
        name: host.name,
        alias: h.address === undefined ? host.name : host.address,
        addressWritten: h.address !== undefined,
        written: {
          ...(written('user') ? { user: host.user } : {}),
          ...(written('port') ? { port: host.port } : {}),
          ...(written('identity') ? { identity: host.identity } : {}),
          ...(written('known_hosts') ? { known_hosts: host.known_hosts } : {}),
        },
        fallback: {
          user: host.user,
          port: host.port,
          identity: host.identity,
          known_hosts: host.known_hosts,
        },
        at,
      },
      configFile,
      options.ssh.context,
      options.ssh.agentSocket,
    );
    out.push(...problems);
    inv.warnings?.push(...warnings);
    applySshResolved(host, resolved);
  }
  // The same warning for every host that read the same Match line is said once.
  if (inv.warnings) {
    const seen = new Set<string>();
    inv.warnings = inv.warnings.filter((w) => {
      const k = `${w.file}:${w.line}:${w.column}:${w.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }
  return dedupe(out);
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.file}:${d.line}:${d.column}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function reservedNames(source: SourceFile, value: unknown): Diagnostic[] {
  const hosts = (value as { hosts?: unknown }).hosts;
  if (!isObject(hosts)) return [];
  return Object.keys(hosts).flatMap((name) => {
    const p = hostNameProblem(name);
    return p ? [{ file: source.file, ...positionAt(source, ['hosts', name], 'key'), ...p }] : [];
  });
}

function crossFieldRules(
  source: SourceFile,
  doc: InventoryDocument,
  inv: Inventory,
  options: InventoryOptions,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (path: Path, which: 'key' | 'value' = 'value') => ({
    file: source.file,
    ...positionAt(source, path, which),
  });

  if (options.fileExists) {
    const reported = new Set<string>();
    for (const host of Object.values(inv.hosts)) {
      // A path with control characters is already reported by the schema.
      if (CONTROL_CHAR.test(host.identity) || options.fileExists(host.identity)) continue;
      const own = doc.hosts[host.name]?.identity !== undefined;
      const written = own || source.doc.hasIn(['defaults', 'identity']);
      // Unwritten, the default key is one way among others (an agent, ssh_config's keys).
      if (
        !written &&
        (host.agent || (host.identities ?? []).some((p) => options.fileExists?.(p)))
      ) {
        continue;
      }
      // One message per place the path is written, not one per host that inherits it.
      const key = own ? `host:${host.name}` : 'defaults';
      if (reported.has(key)) continue;
      reported.add(key);
      const where = own
        ? ['hosts', host.name, 'identity']
        : source.doc.hasIn(['defaults', 'identity'])
          ? ['defaults', 'identity']
          : ['hosts', host.name];
      out.push({
        ...at(where, own || where[0] === 'defaults' ? 'value' : 'key'),
        message: `${own ? `hosts.${host.name}.identity` : `the identity file for ${host.name}${where[0] === 'defaults' ? ' (defaults.identity)' : ' (default ~/.ssh/id_ed25519)'}`}: ${host.identity} does not exist`,
        hint: missingIdentityHint(host.identity),
      });
    }
  }

  const dirProblem = backupDirProblem(inv.backup.dir);
  if (dirProblem) out.push({ ...at(['backup', 'dir']), ...dirProblem });

  for (const { index, first } of repeatedRepos(inv.repos)) {
    const r = inv.repos[index]!;
    out.push({
      ...at(['repos', index, 'path']),
      message: `repos[${index}] repeats repos[${first}]: the same clone (${doc.repos[index]?.path ?? r.path}) and remote "${r.remote}"`,
      hint: 'A remote points at one app; remove one entry, or use another remote name.',
    });
  }
  return out;
}

/** Diagnostics in file order, so a user can fix them from the top. */
export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
