/**
 * The inventory: hosts and how to reach them, the app rebuild order, the local
 * repos whose remote follows a move, where archives go. `validateInventory` is
 * pure (text in, typed value or every problem out); `loadInventory` reads the file.
 *
 * Three passes, every message collected before failing: the schema (ajv),
 * normalising (defaults inherited, `~` and relative paths expanded), then the
 * rules that span fields.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Diagnostic } from '../errors.js';
import { InputError } from '../errors.js';
import { compile, diagnose } from '../schema/diagnose.js';
import { type HostDocument, type InventoryDocument, inventorySchema } from '../schema/inventory.js';
import { type Path, parseSource, positionAt, type SourceFile } from '../schema/source.js';

/** A host with every connection field decided (its own, else the defaults). */
export type Host = { name: string } & Required<Omit<HostDocument, 'host_key'>> &
  Pick<HostDocument, 'host_key'>;

/** A local clone whose Dokku remote is rewritten on a move; `path` is absolute. */
export type Repo = InventoryDocument['repos'][number];

/** A validated, normalised inventory. Paths on this machine are absolute. */
export type Inventory = Omit<InventoryDocument, 'hosts' | 'defaults'> & {
  /** The file it was read from, as given. */
  file: string;
  hosts: Record<string, Host>;
};

/** How `validateInventory` treats what lies outside the text. */
export interface InventoryOptions {
  /** What `~` means; defaults to the current user's home. */
  home?: string;
  /**
   * When given, each host's identity file is checked with it and a missing
   * one is an error. `ferry plan` leaves it out: it contacts no host.
   */
  fileExists?: (path: string) => boolean;
}

/** Names that cannot be host names, because they mean something else in a playbook. */
export const RESERVED_HOST_NAMES = ['controller'] as const;

/** Paths the seed's archive holds; an archive directory inside them would archive itself. */
export const DOKKU_PATHS = [
  '/home/dokku',
  '/var/lib/dokku/config',
  '/var/lib/dokku/data',
  '/var/lib/dokku/services',
  '/var/lib/dokku/plugins',
] as const;

const validateSchema = compile(inventorySchema);

/** Expands `~` and makes a path absolute (relative to the inventory's folder). */
export function expandPath(p: string, file: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return resolve(home, p.slice(2));
  return isAbsolute(p) ? p : resolve(dirname(resolve(file)), p);
}

/**
 * Validates inventory text. Returns the normalised inventory, or throws an
 * InputError holding every problem found, each at its file:line:column.
 */
export function validateInventory(
  text: string,
  file: string,
  options: InventoryOptions = {},
): Inventory {
  const { source, diagnostics, syntaxOk } = parseSource(text, file, 'the inventory');
  if (!syntaxOk) throw new InputError(diagnostics);
  const value = source.value;
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
  if (!validateSchema(value)) {
    diagnostics.push(...diagnose(source, validateSchema.errors ?? []));
  }
  diagnostics.push(...reservedNames(source, value));
  // The rules across fields run on every part that is well formed, even when
  // others are not, so one pass reports all there is.
  const { doc, checkIdentity } = wellFormedParts(value);
  const inventory = normalise(doc, file, options.home ?? homedir());
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
    if (!isObject(h) || typeof h.address !== 'string') continue;
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
      },
    },
  };
}

/** Reads and validates an inventory file; identity files must exist unless told otherwise. */
export async function loadInventory(
  path: string,
  options: InventoryOptions & { checkIdentity?: boolean } = {},
): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
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
  const { checkIdentity = true, ...rest } = options;
  return validateInventory(text, path, {
    ...rest,
    ...(checkIdentity && !rest.fileExists ? { fileExists: existsSync } : {}),
  });
}

function normalise(doc: InventoryDocument, file: string, home: string): Inventory {
  const d = doc.defaults;
  const hosts: Record<string, Host> = {};
  for (const [name, h] of Object.entries(doc.hosts)) {
    hosts[name] = {
      name,
      address: h.address,
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
    hosts,
    apps: { order: [...doc.apps.order] },
    repos: doc.repos.map((r) => ({ ...r, path: expandPath(r.path, file, home) })),
    backup: { ...doc.backup },
  };
}

function reservedNames(source: SourceFile, value: unknown): Diagnostic[] {
  const hosts = (value as { hosts?: unknown }).hosts;
  if (!hosts || typeof hosts !== 'object' || Array.isArray(hosts)) return [];
  const out: Diagnostic[] = [];
  for (const name of Object.keys(hosts)) {
    if ((RESERVED_HOST_NAMES as readonly string[]).includes(name)) {
      out.push({
        file: source.file,
        ...positionAt(source, ['hosts', name], 'key'),
        message: `"${name}" cannot be a host name: playbooks use it for this machine`,
        hint: 'Rename the host.',
      });
    } else if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
      out.push({
        file: source.file,
        ...positionAt(source, ['hosts', name], 'key'),
        message: `host name ${JSON.stringify(name)} must start with a letter or digit and contain only letters, digits, ".", "_" and "-"`,
        hint: 'You type it on the command line (`ferry migrate old new`); keep it plain.',
      });
    }
  }
  return out;
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
      if (options.fileExists(host.identity)) continue;
      const own = doc.hosts[host.name]?.identity !== undefined;
      // One message per place the path is written, not one per host that inherits it.
      const key = own ? `host:${host.name}` : 'defaults';
      if (reported.has(key)) continue;
      reported.add(key);
      const where = own
        ? ['hosts', host.name, 'identity']
        : source.doc.hasIn(['defaults', 'identity'])
          ? ['defaults', 'identity']
          : ['hosts', host.name];
      const lab = host.identity.startsWith('/var/lib/ferry-lab/');
      out.push({
        ...at(where, own || where[0] === 'defaults' ? 'value' : 'key'),
        message: `${own ? `hosts.${host.name}.identity` : `the identity file for ${host.name}${where[0] === 'defaults' ? ' (defaults.identity)' : ' (default ~/.ssh/id_ed25519)'}`}: ${host.identity} does not exist`,
        hint: lab
          ? 'The lab writes this key when it starts: run `npm run lab -- up` first.'
          : `Point identity at your SSH private key, or create one: ssh-keygen -t ed25519 -f ${host.identity}`,
      });
    }
  }

  const dir = inv.backup.dir;
  if (!dir.startsWith('/')) {
    out.push({
      ...at(['backup', 'dir']),
      message: `backup.dir must be an absolute path on the host, got ${JSON.stringify(dir)}`,
      hint: "For example /var/lib/dokku-ferry/archives (`~` would mean the remote user's home, which differs between hosts).",
    });
  } else {
    const clean = dir.replace(/\/+$/, '') || '/';
    const inside = DOKKU_PATHS.find(
      (p) => clean === p || clean.startsWith(`${p}/`) || p.startsWith(`${clean}/`) || clean === '/',
    );
    if (inside) {
      out.push({
        ...at(['backup', 'dir']),
        message: `backup.dir ${dir} overlaps ${inside}, which every archive holds: archives would end up inside archives`,
        hint: 'Use a directory outside /home/dokku and /var/lib/dokku, such as /var/lib/dokku-ferry/archives.',
      });
    }
  }

  const seen = new Map<string, number>();
  inv.repos.forEach((r, i) => {
    const key = `${r.path}\0${r.remote}`;
    const first = seen.get(key);
    if (first !== undefined) {
      out.push({
        ...at(['repos', i, 'path']),
        message: `repos[${i}] repeats repos[${first}]: the same clone (${doc.repos[i]?.path ?? r.path}) and remote "${r.remote}"`,
        hint: 'A remote points at one app; remove one entry, or use another remote name.',
      });
    } else seen.set(key, i);
  });
  return out;
}

/** Diagnostics in file order, so a user can fix them from the top. */
export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
