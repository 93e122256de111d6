/**
 * Ansible inventories, read as they are. Both formats (YAML here, INI in
 * ansible-ini.ts) are first read into one model (groups with their hosts,
 * children and vars; hosts with their vars; where each was written), which
 * `resolveAnsible` turns into ferry's Inventory the way Ansible combines
 * variables: `all`, then each group by depth (a child after its parents;
 * `ansible_group_priority`, then the name, among equals), then the host.
 *
 * What ferry reads: ansible_host, ansible_port, ansible_user,
 * ansible_ssh_private_key_file, ansible_become (→ sudo), and its own
 * `dokku_ferry` variable (src/schema/ansible-inventory.ts). Variables it cannot
 * honour are refused (a jump host in OpenSSH's arguments, become other than
 * sudo to root, a Jinja2 template or a vault-encrypted value in a variable it
 * reads) or, when they change nothing that matters to it, ignored with a
 * warning. Each host is then resolved through ssh_config, as Ansible's ssh
 * connection would be (ssh-hosts.ts).
 */
import type { ValidateFunction } from 'ajv';
import type { Diagnostic } from '../errors.js';
import {
  FERRY_VAR,
  FERRY_VAR_KEYS,
  type FerryAllVar,
  ferryAllVarSchema,
  ferryGroupVarSchema,
  ferryHostVarSchema,
} from '../schema/ansible-inventory.js';
import { compile, diagnose } from '../schema/diagnose.js';
import {
  addressProblem,
  CONTROL_CHAR,
  describeChar,
  normaliseAddress,
  userProblem,
} from '../schema/host-fields.js';
import { type Path, positionAt, type SourceFile } from '../schema/source.js';
import { closest, listWords } from '../schema/suggest.js';
import { expandHostPattern } from './host-patterns.js';
import {
  backupDirProblem,
  expandPath,
  hostNameProblem,
  missingIdentityHint,
  type Problem,
  repeatedRepos,
} from './rules.js';
import { applySshResolved, resolveWithSshConfig } from './ssh-hosts.js';
import type { Host, Inventory, InventoryOptions } from './types.js';

/** Where something was written: a node of a YAML file, or a line and column of a text file. */
export type Where =
  | { kind: 'yaml'; source: SourceFile; path: Path; at?: 'key' | 'value' }
  | { kind: 'text'; file: string; line: number; column: number };

/** A variable's value, where it was set, and on what (`old`, `group web`), for messages. */
export interface Var {
  value: unknown;
  where: Where;
  of: string;
}

/** A group as written: its own hosts, child groups and vars. */
export interface AnsibleGroup {
  name: string;
  where: Where;
  /** Its own hosts, in the order written. */
  hosts: Set<string>;
  children: { name: string; where: Where }[];
  vars: Map<string, Var>;
}

/** A host as written: its own vars (an INI `host:port` or YAML `host:port` key sets ansible_port). */
export interface AnsibleHost {
  name: string;
  where: Where;
  vars: Map<string, Var>;
}

/** What the YAML and INI readers produce. */
export interface AnsibleModel {
  file: string;
  format: 'ansible-yaml' | 'ansible-ini';
  groups: Map<string, AnsibleGroup>;
  hosts: Map<string, AnsibleHost>;
  problems: Diagnostic[];
  warnings: Diagnostic[];
}

/** A new, empty model; `all` and `ungrouped` always exist, as in Ansible. */
export function emptyModel(file: string, format: AnsibleModel['format']): AnsibleModel {
  const model: AnsibleModel = {
    file,
    format,
    groups: new Map(),
    hosts: new Map(),
    problems: [],
    warnings: [],
  };
  const top: Where = { kind: 'text', file, line: 1, column: 1 };
  addGroup(model, 'all', top);
  addGroup(model, 'ungrouped', top);
  return model;
}

/** The group named `name`, made when new. */
export function addGroup(model: AnsibleModel, name: string, where: Where): AnsibleGroup {
  let g = model.groups.get(name);
  if (!g) {
    g = { name, where, hosts: new Set(), children: [], vars: new Map() };
    model.groups.set(name, g);
  }
  return g;
}

/** Adds a host (made when new) to a group. */
export function addHost(
  model: AnsibleModel,
  group: AnsibleGroup,
  name: string,
  where: Where,
): AnsibleHost {
  let h = model.hosts.get(name);
  if (!h) {
    h = { name, where, vars: new Map() };
    model.hosts.set(name, h);
  }
  group.hosts.add(name);
  return h;
}

/** The file, line and column of a place. */
export function placeOf(where: Where): { file: string; line?: number; column?: number } {
  if (where.kind === 'text') return { file: where.file, line: where.line, column: where.column };
  return { file: where.source.file, ...positionAt(where.source, where.path, where.at ?? 'value') };
}

/** A diagnostic at a place. */
export function at(where: Where, p: Problem): Diagnostic {
  return { ...placeOf(where), message: p.message, ...(p.hint ? { hint: p.hint } : {}) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------
// The YAML reader.

const GROUP_KEYS = ['hosts', 'vars', 'children'];

/**
 * Whether a parsed YAML mapping is an Ansible inventory rather than ferry's
 * own: it has no `version`, and either an `all` group or only group-shaped
 * entries (null, or mappings of hosts, vars and children).
 */
export function looksLikeAnsibleYaml(value: Record<string, unknown>): boolean {
  if ('version' in value) return false;
  // `plugin:` is a dynamic inventory's configuration: the Ansible reader says so.
  if ('all' in value || 'plugin' in value) return true;
  const entries = Object.entries(value);
  return (
    entries.length > 0 &&
    entries.every(
      ([, v]) => v === null || (isObject(v) && Object.keys(v).every((k) => GROUP_KEYS.includes(k))),
    )
  );
}

/** Reads a parsed Ansible YAML inventory into the model. */
export function readAnsibleYaml(source: SourceFile): AnsibleModel {
  const model = emptyModel(source.file, 'ansible-yaml');
  const value = source.value as Record<string, unknown>;
  const where = (path: Path, which: 'key' | 'value' = 'value'): Where => ({
    kind: 'yaml',
    source,
    path,
    at: which,
  });
  if ('plugin' in value) {
    model.problems.push(
      at(where(['plugin'], 'key'), {
        message: `this is the configuration of the Ansible inventory plugin ${JSON.stringify(value.plugin)}, not an inventory`,
        hint: 'ferry reads static inventories. Write one out with: ansible-inventory -i THIS-FILE --list --yaml --output hosts.yml',
      }),
    );
    return model;
  }
  const readGroup = (name: string, data: unknown, path: Path): void => {
    const group = addGroup(model, name, where(path, 'key'));
    if (data === null || data === undefined) return;
    if (!isObject(data)) {
      model.warnings.push(
        at(where(path), {
          message: `${JSON.stringify(name)} is not a group (a mapping of hosts, vars and children): ignored, as Ansible does`,
        }),
      );
      return;
    }
    for (const [key, section] of Object.entries(data)) {
      const p = [...path, key];
      if (!GROUP_KEYS.includes(key)) {
        const near = closest(key, GROUP_KEYS);
        model.warnings.push(
          at(where(p, 'key'), {
            message: `unknown key "${key}" in group ${name}: ignored, as Ansible does${near ? `; did you mean "${near}"?` : ''}`,
            hint: 'A group holds hosts, vars and children.',
          }),
        );
        continue;
      }
      if (section === null || section === undefined) continue;
      // Ansible reads `hosts: web1` as a one-host mapping.
      const entries: [string, unknown][] =
        typeof section === 'string' && key !== 'vars'
          ? [[section, null]]
          : isObject(section)
            ? Object.entries(section)
            : [];
      if (!isObject(section) && !(typeof section === 'string' && key !== 'vars')) {
        model.problems.push(
          at(where(p), {
            message: `${name}.${key} must be a mapping (name: value lines), got ${Array.isArray(section) ? 'a list' : JSON.stringify(section)}`,
            hint:
              key === 'hosts'
                ? 'Write each host as a key ending in ":", for example\n      hosts:\n        web1:\n        web2:'
                : undefined,
          }),
        );
        continue;
      }
      if (key === 'vars') {
        for (const [k, v] of entries) {
          group.vars.set(k, { value: v, where: where([...p, k]), of: `group ${name}` });
        }
      } else if (key === 'children') {
        for (const [child, childData] of entries) {
          group.children.push({ name: child, where: where([...p, child], 'key') });
          readGroup(child, childData, [...p, child]);
        }
      } else {
        for (const [pattern, hostVars] of entries) {
          const hp = [...p, pattern];
          const expanded = expandHostPattern(pattern);
          if ('problem' in expanded) {
            model.problems.push(
              at(where(hp, 'key'), {
                message: `host ${JSON.stringify(pattern)}: ${expanded.problem}`,
              }),
            );
            continue;
          }
          if (hostVars !== null && hostVars !== undefined && !isObject(hostVars)) {
            model.problems.push(
              at(where(hp), {
                message: `the vars of host ${pattern} must be a mapping (name: value lines), got ${Array.isArray(hostVars) ? 'a list' : JSON.stringify(hostVars)}`,
                hint: 'A host with no vars is written as "name:" alone.',
              }),
            );
            continue;
          }
          for (const hostName of expanded.names) {
            const host = addHost(model, group, hostName, where(hp, 'key'));
            if (expanded.port !== undefined) {
              host.vars.set('ansible_port', {
                value: expanded.port,
                where: where(hp, 'key'),
                of: pattern,
              });
            }
            for (const [k, v] of Object.entries(hostVars ?? {})) {
              host.vars.set(k, { value: v, where: where([...hp, k]), of: pattern });
            }
          }
        }
      }
    }
  };
  for (const [name, data] of Object.entries(value)) {
    if (name === FERRY_VAR) {
      model.problems.push(
        at(where([name], 'key'), {
          message: `${FERRY_VAR} at the top of an Ansible inventory would be a group`,
          hint: `Set it as a variable of the all group:\n      all:\n        vars:\n          ${FERRY_VAR}:\n            ...`,
        }),
      );
      continue;
    }
    readGroup(name, data, [name]);
  }
  return model;
}

// ---------------------------------------------------------------------------
// From the model to ferry's Inventory.

/** Ansible's spellings of true and false (module_utils/parsing/convert_bool.py). */
const TRUE = ['y', 'yes', 'on', '1', 'true', 't'];
const FALSE = ['n', 'no', 'off', '0', 'false', 'f'];

/** `ansible_connection` values that mean SSH. */
const SSH_CONNECTIONS = [
  'ssh',
  'smart',
  'paramiko',
  'paramiko_ssh',
  'ansible.builtin.ssh',
  'ansible.builtin.paramiko_ssh',
];

/** Variables read for a setting: the current name first, then the older alias. */
const ALIASES = {
  address: ['ansible_host', 'ansible_ssh_host'],
  port: ['ansible_port', 'ansible_ssh_port'],
  user: ['ansible_user', 'ansible_ssh_user'],
  identity: ['ansible_ssh_private_key_file', 'ansible_private_key_file'],
} as const;

/** OpenSSH options that send the connection through another host. */
const PROXY_OPTION = /ProxyCommand|ProxyJump|(^|\s)-[A-Za-z]*J/i;

/** Variables ferry does not read, with why, warned about once where each is set. */
const IGNORED: Record<string, string> = {
  ansible_password: 'ferry logs in with a key (ansible_ssh_private_key_file), never a password',
  ansible_ssh_pass: 'ferry logs in with a key (ansible_ssh_private_key_file), never a password',
  ansible_ssh_password: 'ferry logs in with a key (ansible_ssh_private_key_file), never a password',
  ansible_become_password: 'ferry runs `sudo -n`, which never asks for a password',
  ansible_become_pass: 'ferry runs `sudo -n`, which never asks for a password',
  ansible_sudo_pass: 'ferry runs `sudo -n`, which never asks for a password',
};
const SSH_ARGS = ['ansible_ssh_common_args', 'ansible_ssh_extra_args', 'ansible_ssh_args'];

const validateAllVar = compile(ferryAllVarSchema);
const validateGroupVar = compile(ferryGroupVarSchema);
const validateHostVar = compile(ferryHostVarSchema);

function whereKey(w: Where): string {
  const p = placeOf(w);
  return `${p.file}:${p.line}:${p.column}`;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** Why a variable's value cannot be read as text, or undefined. */
function unreadable(name: string, { value: v, of }: Var): Problem | undefined {
  if (typeof v !== 'string') return undefined;
  if (v.startsWith('$ANSIBLE_VAULT;')) {
    return {
      message: `${name} of ${of} is encrypted with ansible-vault: ferry cannot decrypt it`,
      hint: `Give ferry the plain value: ferry reads ${name} from the inventory only.`,
    };
  }
  if (/\{\{|\{%/.test(v)) {
    return {
      message: `${name} of ${of} is a Jinja2 template (${JSON.stringify(v)}): ferry reads inventories without Ansible and cannot evaluate it`,
      hint: `Write the value itself, or export a resolved inventory: ansible-inventory -i FILE --list --yaml --output hosts.yml`,
    };
  }
  return undefined;
}

/** Groups in the order Ansible combines their vars: by depth, then priority, then name. */
function groupOrder(
  model: AnsibleModel,
  parents: Map<string, Set<string>>,
): { sort: (names: Iterable<string>) => string[] } {
  const depth = new Map<string, number>();
  const depthOf = (g: string, seen: Set<string>): number => {
    const known = depth.get(g);
    if (known !== undefined) return known;
    if (seen.has(g)) return 0; // a cycle, reported separately
    seen.add(g);
    let d = 0;
    for (const p of parents.get(g) ?? []) d = Math.max(d, depthOf(p, seen) + 1);
    seen.delete(g);
    depth.set(g, d);
    return d;
  };
  const priority = (g: string): number => {
    const v = model.groups.get(g)?.vars.get('ansible_group_priority')?.value;
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
    return Number.isInteger(n) ? n : 1;
  };
  for (const g of model.groups.keys()) depthOf(g, new Set());
  return {
    sort: (names) =>
      [...names].sort(
        (a, b) =>
          (depth.get(a) ?? 0) - (depth.get(b) ?? 0) ||
          priority(a) - priority(b) ||
          (a < b ? -1 : a > b ? 1 : 0),
      ),
  };
}

/** Turns the model into ferry's Inventory; every problem found is in `problems`. */
export function resolveAnsible(
  model: AnsibleModel,
  options: InventoryOptions & { home: string },
): { inventory: Inventory; problems: Diagnostic[] } {
  const { file, groups } = model;
  const problems = [...model.problems];
  const warnings = [...model.warnings];
  const reported = new Set<string>();
  // One message per place a value is written, however many hosts inherit it.
  const once = (list: Diagnostic[], where: Where, p: Problem, topic = p.message): void => {
    const key = `${whereKey(where)} ${topic}`;
    if (reported.has(key)) return;
    reported.add(key);
    list.push(at(where, p));
  };

  // Parents, and every group without one under `all`, as Ansible reconciles.
  const parents = new Map<string, Set<string>>();
  for (const g of groups.values()) {
    for (const c of g.children) {
      if (!parents.has(c.name)) parents.set(c.name, new Set());
      parents.get(c.name)!.add(g.name);
    }
  }
  const all = groups.get('all')!;
  for (const g of groups.values()) {
    if (g.name !== 'all' && !parents.get(g.name)?.size) {
      all.children.push({ name: g.name, where: g.where });
      parents.set(g.name, new Set(['all']));
    }
  }
  // A group among its own descendants: Ansible refuses it, so does ferry.
  const cycle = findCycle(groups);
  if (cycle) {
    problems.push(
      at(cycle.where, {
        message: `group ${cycle.path.join(' → ')}: a group cannot be its own child`,
      }),
    );
  }
  // Hosts in no group but `all` are `ungrouped`; hosts in another group are not.
  const memberOf = new Map<string, Set<string>>();
  for (const g of groups.values()) {
    for (const h of g.hosts) {
      if (!memberOf.has(h)) memberOf.set(h, new Set());
      memberOf.get(h)!.add(g.name);
    }
  }
  const ungrouped = groups.get('ungrouped')!;
  for (const [h, gs] of memberOf) {
    const others = [...gs].filter((g) => g !== 'all' && g !== 'ungrouped');
    if (others.length === 0) ungrouped.hosts.add(h);
    else ungrouped.hosts.delete(h);
  }
  const order = groupOrder(model, parents);
  const ancestors = (g: string, out = new Set<string>()): Set<string> => {
    if (out.has(g)) return out;
    out.add(g);
    for (const p of parents.get(g) ?? []) ancestors(p, out);
    return out;
  };

  // Each dokku_ferry, checked once where it is written.
  const ferryVars: { owner: 'all' | 'group' | 'host'; name: string; v: Var }[] = [];
  for (const g of groups.values()) {
    const v = g.vars.get(FERRY_VAR);
    if (v) ferryVars.push({ owner: g.name === 'all' ? 'all' : 'group', name: g.name, v });
  }
  for (const h of model.hosts.values()) {
    const v = h.vars.get(FERRY_VAR);
    if (v) ferryVars.push({ owner: 'host', name: h.name, v });
  }
  // Each one's valid keys (defaults filled in): the rest of the rules run on them even
  // when others are wrong, so one pass reports all there is.
  const goodFerryVars = new Map<Var, Record<string, unknown>>();
  for (const f of ferryVars) {
    const good = checkFerryVar(f.owner, f.name, f.v, problems);
    if (good) goodFerryVars.set(f.v, good);
  }

  // OpenSSH's client config, which Ansible's ssh connection reads too.
  const allFerryVar = all.vars.get(FERRY_VAR);
  const sshConfigPath = (allFerryVar && goodFerryVars.get(allFerryVar))?.ssh_config;
  const sshConfig =
    options.ssh && !(typeof sshConfigPath === 'string' && sshConfigPath.toLowerCase() === 'none')
      ? {
          ...options.ssh,
          file: expandPath(
            typeof sshConfigPath === 'string' ? sshConfigPath : '~/.ssh/config',
            file,
            options.home,
          ),
        }
      : undefined;

  const hosts: Record<string, Host> = {};
  const usable = new Set<string>();
  const identityVars = new Map<string, { name: string; v: Var }>();
  for (const host of model.hosts.values()) {
    const direct = memberOf.get(host.name) ?? new Set();
    const chain = new Set<string>(['all']);
    for (const g of direct) for (const a of ancestors(g)) chain.add(a);
    // The host's variables, each with the place that set it: groups in order, then the host.
    const vars = new Map<string, Var>();
    const ferry = new Map<string, Var>();
    const layer = (source: Map<string, Var>): void => {
      for (const [k, v] of source) {
        vars.set(k, v);
        const good = k === FERRY_VAR ? goodFerryVars.get(v) : undefined;
        if (good) {
          for (const [fk, fv] of Object.entries(good)) {
            if (v.where.kind === 'yaml') {
              ferry.set(fk, {
                value: fv,
                where: { ...v.where, path: [...v.where.path, fk] },
                of: v.of,
              });
            } else ferry.set(fk, { value: fv, where: v.where, of: v.of });
          }
        }
      }
    };
    for (const g of order.sort(chain)) layer(groups.get(g)!.vars);
    layer(host.vars);

    const connection = vars.get('ansible_connection');
    if (
      connection &&
      typeof connection.value === 'string' &&
      !SSH_CONNECTIONS.includes(connection.value)
    ) {
      warnings.push(
        at(host.where, {
          message: `host ${host.name} is left out: ansible_connection is ${JSON.stringify(connection.value)}, and ferry reaches hosts over SSH only`,
        }),
      );
      continue;
    }
    const before = problems.length;
    const nameProblem = hostNameProblem(host.name);
    if (nameProblem) once(problems, host.where, nameProblem);
    const resolved = resolveHost(host, vars, ferry, { file, home: options.home }, (w, p, topic) =>
      once(problems, w, p, topic),
    );
    const keyVar = pickVar(vars, ALIASES.identity);
    if (keyVar) identityVars.set(host.name, keyVar);
    for (const [k, why] of Object.entries(IGNORED)) {
      const v = vars.get(k);
      if (v) once(warnings, v.where, { message: `${k} of ${v.of} is ignored: ${why}` });
    }
    for (const k of SSH_ARGS) {
      const v = vars.get(k);
      if (!v) continue;
      if (typeof v.value === 'string' && PROXY_OPTION.test(v.value)) {
        once(problems, v.where, {
          message: `${k} of ${v.of} sends SSH through another host (${v.value.trim()}): ferry does not read OpenSSH's command line`,
          hint: 'Put the ProxyJump in ~/.ssh/config (or the file dokku_ferry.ssh_config names): ferry reads it and connects through the bastions itself.',
        });
      } else {
        once(warnings, v.where, {
          message: `${k} of ${v.of} is ignored: ferry connects with its own SSH client, not OpenSSH's command line`,
        });
      }
    }
    if (resolved && sshConfig && problems.length === before) {
      // As Ansible's ssh connection runs `ssh -o User=.. -o Port=.. -i KEY HOST`: what the
      // inventory sets wins, ssh_config fills the rest (HostName, ProxyJump, keys, the agent).
      const r = resolveWithSshConfig(
        {
          name: host.name,
          alias: resolved.address,
          addressWritten: true,
          written: {
            ...(pickVar(vars, ALIASES.user) ? { user: resolved.user } : {}),
            ...(pickVar(vars, ALIASES.port) ? { port: resolved.port } : {}),
            ...(keyVar ? { identity: resolved.identity } : {}),
            ...(ferry.has('known_hosts') ? { known_hosts: resolved.known_hosts } : {}),
          },
          fallback: {
            user: resolved.user,
            port: resolved.port,
            identity: resolved.identity,
            known_hosts: resolved.known_hosts,
          },
          at: placeOf(host.where),
        },
        sshConfig.file,
        sshConfig.context,
        sshConfig.agentSocket,
      );
      // A line of ssh_config that every host reads is reported once.
      for (const [list, ds] of [
        [problems, r.problems],
        [warnings, r.warnings],
      ] as const) {
        for (const d of ds) {
          const key = `${d.file}:${d.line}:${d.column} ${d.message}`;
          if (reported.has(key)) continue;
          reported.add(key);
          list.push(d);
        }
      }
      applySshResolved(resolved, r.resolved);
    }
    if (resolved && problems.length === before) {
      hosts[host.name] = resolved;
      usable.add(host.name);
    }
  }

  // Inventory-wide settings: dokku_ferry on `all`.
  const allFerry = all.vars.get(FERRY_VAR);
  const settings = ((allFerry && goodFerryVars.get(allFerry)) ?? {}) as Partial<FerryAllVar>;
  // ajv filled in the defaults of a valid value; an absent one gets them here.
  const apps = settings.apps ?? { order: [] };
  const repos = (settings.repos ?? []).map((r) => ({
    ...r,
    remote: r.remote ?? 'dokku',
    path: expandPath(r.path, file, options.home),
  }));
  // backup.dir's own rule runs even when another part of dokku_ferry is wrong.
  const rawBackup = isObject(allFerry?.value) ? allFerry.value.backup : undefined;
  const rawDir = isObject(rawBackup) ? rawBackup.dir : undefined;
  const backup = {
    dir:
      settings.backup?.dir ??
      (typeof rawDir === 'string' ? rawDir : '/var/lib/dokku-ferry/archives'),
    keep: settings.backup?.keep ?? 7,
    ...(settings.backup?.encrypt ? { encrypt: settings.backup.encrypt } : {}),
  };
  const ferryAt = (path: Path): Where =>
    allFerry?.where.kind === 'yaml'
      ? { ...allFerry.where, path: [...allFerry.where.path, ...path] }
      : (allFerry?.where ?? { kind: 'text', file, line: 1, column: 1 });
  const dirProblem = backupDirProblem(backup.dir, `${FERRY_VAR}.backup.dir`);
  if (dirProblem) problems.push(at(ferryAt(['backup', 'dir']), dirProblem));
  for (const { index, first } of repeatedRepos(repos)) {
    problems.push(
      at(ferryAt(['repos', index, 'path']), {
        message: `${FERRY_VAR}.repos[${index}] repeats repos[${first}]: the same clone (${settings.repos?.[index]?.path}) and remote "${repos[index]!.remote}"`,
        hint: 'A remote points at one app; remove one entry, or use another remote name.',
      }),
    );
  }

  // Identity files: one message per place the path is written; one for the default.
  if (options.fileExists) {
    const byDefault: string[] = [];
    for (const h of Object.values(hosts)) {
      if (options.fileExists(h.identity)) continue;
      const set = identityVars.get(h.name);
      if (!set) {
        // Unwritten, the default key is one way among others (an agent, ssh_config's keys).
        if (h.agent || (h.identities ?? []).some((p) => options.fileExists?.(p))) continue;
        byDefault.push(h.name);
        continue;
      }
      once(problems, set.v.where, {
        message: `${set.name} of ${set.v.of}: ${h.identity} does not exist`,
        hint: missingIdentityHint(h.identity),
      });
    }
    const first = byDefault[0];
    if (first !== undefined) {
      const path = hosts[first]!.identity;
      const others = byDefault.length > 1 ? ` and ${byDefault.length - 1} other host(s)` : '';
      problems.push(
        at(model.hosts.get(first)!.where, {
          message: `the identity file of ${first}${others} (no ansible_ssh_private_key_file, so ~/.ssh/id_ed25519): ${path} does not exist`,
          hint: `Set ansible_ssh_private_key_file, or create the key: ssh-keygen -t ed25519 -f ${path}`,
        }),
      );
    }
  }

  // Groups: each with its hosts and its descendants', in the order written.
  const members = (g: string, seen = new Set<string>()): string[] => {
    if (seen.has(g)) return [];
    seen.add(g);
    const group = groups.get(g);
    if (!group) return [];
    const out = [...group.hosts].filter((h) => usable.has(h));
    for (const c of group.children) for (const h of members(c.name, seen)) out.push(h);
    return [...new Set(out)];
  };
  const groupsOut: Record<string, string[]> = {};
  for (const g of groups.keys()) groupsOut[g] = members(g);
  groupsOut.all = [...new Set([...groupsOut.all!, ...usable])];
  for (const name of Object.keys(hosts)) {
    if (groups.has(name) && name !== 'all' && name !== 'ungrouped') {
      warnings.push(
        at(model.hosts.get(name)!.where, {
          message: `${name} names both a host and a group; on ferry's command line it means the host`,
        }),
      );
    }
  }

  return {
    inventory: {
      file,
      version: 1,
      format: model.format,
      hosts,
      groups: groupsOut,
      apps: { order: [...apps.order] },
      repos,
      backup,
      warnings: sortByPlace(warnings),
    },
    problems,
  };
}

function sortByPlace(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

function findCycle(
  groups: Map<string, AnsibleGroup>,
): { path: string[]; where: Where } | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (g: string): { path: string[]; where: Where } | undefined => {
    state.set(g, 'open');
    stack.push(g);
    for (const c of groups.get(g)?.children ?? []) {
      if (state.get(c.name) === 'open') {
        return { path: [...stack.slice(stack.indexOf(c.name)), c.name], where: c.where };
      }
      if (!state.has(c.name)) {
        const found = visit(c.name);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(g, 'done');
    return undefined;
  };
  for (const g of groups.keys()) {
    if (!state.has(g)) {
      const found = visit(g);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Checks one `dokku_ferry` value against the schema for where it is set.
 * Returns its keys that belong there, defaults filled in, when they are
 * valid (keys that do not belong are reported, and left out).
 */
function checkFerryVar(
  owner: 'all' | 'group' | 'host',
  name: string,
  v: Var,
  problems: Diagnostic[],
): Record<string, unknown> | undefined {
  const label = owner === 'host' ? `host ${name}` : `group ${name}`;
  if (!isObject(v.value)) {
    problems.push(
      at(v.where, {
        message: `${FERRY_VAR} of ${label} must be a mapping, got ${describe(v.value)}`,
        hint:
          v.where.kind === 'text'
            ? `In INI, write it as one flow mapping: ${FERRY_VAR}={"known_hosts": "~/.ssh/known_hosts"}`
            : undefined,
      }),
    );
    return undefined;
  }
  const allowed: readonly string[] = FERRY_VAR_KEYS[owner];
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(v.value)) {
    if (allowed.includes(key)) {
      kept[key] = value;
      continue;
    }
    const elsewhere = (['all', 'group', 'host'] as const).filter((o) =>
      (FERRY_VAR_KEYS[o] as readonly string[]).includes(key),
    );
    const keyWhere: Where =
      v.where.kind === 'yaml' ? { ...v.where, path: [...v.where.path, key], at: 'key' } : v.where;
    if (elsewhere.length > 0) {
      problems.push(
        at(keyWhere, {
          message: `${FERRY_VAR}.${key} cannot be set on ${label}: it belongs on ${elsewhere
            .map((o) => (o === 'all' ? 'the all group' : o === 'group' ? 'a group' : 'a host'))
            .join(' or ')}`,
        }),
      );
    } else {
      const near = closest(key, allowed);
      problems.push(
        at(keyWhere, {
          message: `unknown key "${key}" in ${FERRY_VAR} of ${label}`,
          hint: near ? `did you mean "${near}"?` : `known keys here: ${listWords(allowed)}`,
        }),
      );
    }
  }
  const validate: ValidateFunction =
    owner === 'all' ? validateAllVar : owner === 'group' ? validateGroupVar : validateHostVar;
  if (validate(kept)) return kept;
  if (v.where.kind === 'yaml') {
    problems.push(...diagnose(v.where.source, validate.errors ?? [], v.where.path));
  } else {
    for (const e of validate.errors ?? []) {
      problems.push(
        at(v.where, { message: `${FERRY_VAR}${e.instancePath.replace(/\//g, '.')} ${e.message}` }),
      );
    }
  }
  return undefined;
}

/** The variable for a setting; its old alias only when the current name is not set. */
function pickVar(
  vars: Map<string, Var>,
  names: readonly string[],
): { name: string; v: Var } | undefined {
  for (const name of names) {
    const v = vars.get(name);
    if (v !== undefined && v.value !== null && v.value !== undefined) return { name, v };
  }
  return undefined;
}

/** One host's connection settings from its variables, each problem reported where it was set. */
function resolveHost(
  host: AnsibleHost,
  vars: Map<string, Var>,
  ferry: Map<string, Var>,
  ctx: { file: string; home: string },
  report: (where: Where, p: Problem, topic: string) => void,
): Host | undefined {
  let ok = true;
  const fail = (where: Where, p: Problem, topic: string): undefined => {
    ok = false;
    report(where, p, topic);
    return undefined;
  };
  const pick = (names: readonly string[]) => pickVar(vars, names);
  const text = (s: { name: string; v: Var } | undefined): string | undefined => {
    if (!s) return undefined;
    const bad = unreadable(s.name, s.v);
    if (bad) return fail(s.v.where, bad, s.name);
    if (typeof s.v.value !== 'string') {
      return fail(
        s.v.where,
        { message: `${s.name} of ${s.v.of} must be a string, got ${describe(s.v.value)}` },
        s.name,
      );
    }
    return s.v.value;
  };

  const addrVar = pick(ALIASES.address);
  let address = text(addrVar);
  if (addrVar && address !== undefined) {
    const why = addressProblem(address);
    if (why) {
      fail(
        addrVar.v.where,
        {
          message: `${addrVar.name} of ${addrVar.v.of}: ${JSON.stringify(address)} is not a host name or IP address: ${why}`,
          hint: 'It reaches ssh as an argument: a DNS name, an IPv4 address or an IPv6 address, nothing else.',
        },
        addrVar.name,
      );
    }
  } else if (!addrVar) {
    address = host.name;
    const why = addressProblem(address);
    if (why) {
      fail(
        host.where,
        {
          message: `host ${JSON.stringify(host.name)} has no ansible_host, and its name is not an address: ${why}`,
          hint: 'Set ansible_host to its DNS name or IP address.',
        },
        'address',
      );
    }
  }

  let port = 22;
  const portVar = pick(ALIASES.port);
  if (portVar) {
    const v = portVar.v.value;
    const n =
      typeof v === 'number'
        ? v
        : typeof v === 'string' && /^[0-9]+$/.test(v.trim())
          ? Number(v)
          : Number.NaN;
    const bad = unreadable(portVar.name, portVar.v);
    if (bad) fail(portVar.v.where, bad, portVar.name);
    else if (!Number.isInteger(n) || n < 1 || n > 65535) {
      fail(
        portVar.v.where,
        {
          message: `${portVar.name} of ${portVar.v.of} must be a number between 1 and 65535, got ${describe(v)}`,
        },
        portVar.name,
      );
    } else port = n;
  }

  const userVar = pick(ALIASES.user);
  let user = text(userVar) ?? 'root';
  if (userVar && typeof userVar.v.value === 'string') {
    const why = userProblem(user);
    if (why) {
      fail(
        userVar.v.where,
        {
          message: `${userVar.name} of ${userVar.v.of}: ${JSON.stringify(user)} is not a user name ferry accepts: ${why}`,
          hint: 'A user name has letters, digits, ".", "_" and "-", starts with a letter or "_", and has at most 32 characters.',
        },
        userVar.name,
      );
      user = 'root';
    }
  }

  const keyVar = pick(ALIASES.identity);
  const identityText = text(keyVar) ?? '~/.ssh/id_ed25519';
  const control = CONTROL_CHAR.exec(identityText)?.[0];
  if (keyVar && (identityText === '' || control)) {
    fail(
      keyVar.v.where,
      {
        message: `${keyVar.name} of ${keyVar.v.of} is not a usable path: ${control ? `it holds ${describeChar(control)}` : 'it is empty'}`,
      },
      keyVar.name,
    );
  }

  let sudo = false;
  const become = vars.get('ansible_become');
  if (become && become.value !== null && become.value !== undefined) {
    const v = become.value;
    const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
    if (typeof s === 'boolean') sudo = s;
    else if (typeof s === 'number' && (s === 0 || s === 1)) sudo = s === 1;
    else if (typeof s === 'string' && TRUE.includes(s)) sudo = true;
    else if (typeof s === 'string' && FALSE.includes(s)) sudo = false;
    else {
      fail(
        become.where,
        unreadable('ansible_become', become) ?? {
          message: `ansible_become of ${become.of} must be true or false, got ${describe(v)}`,
        },
        'ansible_become',
      );
    }
  }
  if (sudo) {
    const method = vars.get('ansible_become_method');
    if (method && method.value !== 'sudo' && method.value !== 'ansible.builtin.sudo') {
      fail(
        method.where,
        {
          message: `ansible_become_method of ${method.of} is ${describe(method.value)}: ferry becomes root with sudo only`,
          hint: 'Use sudo (passwordless for this user), or log in as root.',
        },
        'ansible_become_method',
      );
    }
    const to = vars.get('ansible_become_user');
    if (to && to.value !== 'root') {
      fail(
        to.where,
        {
          message: `ansible_become_user of ${to.of} is ${describe(to.value)}: ferry becomes root only`,
        },
        'ansible_become_user',
      );
    }
  }

  const kh = ferry.get('known_hosts');
  const hk = ferry.get('host_key');
  if (!ok || address === undefined) return undefined;
  return {
    name: host.name,
    address: normaliseAddress(address),
    port,
    user,
    identity: expandPath(identityText, ctx.file, ctx.home),
    known_hosts: expandPath(
      typeof kh?.value === 'string' ? kh.value : '~/.ssh/known_hosts',
      ctx.file,
      ctx.home,
    ),
    sudo,
    ...(typeof hk?.value === 'string' ? { host_key: hk.value } : {}),
  };
}
