/**
 * The planner: binds a playbook's roles to inventory hosts and expands every
 * step into the exact actions it will take. Pure: no host is contacted, no
 * file read, no clock read (the run id comes in with the options), so
 * `ferry plan`, `--dry-run` and the tests all see what a run would do.
 */
import type { Diagnostic } from '../errors.js';
import { InputError, InternalError } from '../errors.js';
import type { Host, Inventory } from '../inventory/index.js';
import { CONTROLLER, type Playbook } from '../playbook/index.js';
import { closest, listWords } from '../schema/suggest.js';
import { getTask } from '../tasks/index.js';
import { describeSelection } from '../tasks/selection.js';
import type { ActionSpec, PlannedAction, PlanOptions } from '../tasks/types.js';

/** Role → inventory host name. */
export type Bindings = Record<string, string>;

/** One step of a plan. */
export interface PlannedStep {
  id: string;
  task: string;
  /** The role it runs on, or `controller`. */
  role: string;
  /** The host it runs on (inventory name), or `controller`. */
  host: string;
  /** The task's one-line summary. */
  summary: string;
  why?: string;
  /** Set when the step will not run, with the reason (e.g. `only with --fetch`). */
  skipped?: string;
  actions: PlannedAction[];
}

/** A plan, as printed by `ferry plan --json` (versioned for machines). */
export interface Plan {
  version: 1;
  playbook: { name: string; file: string; description?: string };
  bindings: Record<
    string,
    { host: string; address: string; user: string; port: number; sudo: boolean }
  >;
  options: PlanOptions;
  steps: PlannedStep[];
  /** The playbook's undo range: a failure from `from` until `until` finished undoes the steps between. */
  undo?: { from: string; until: string };
}

/**
 * Parses `ROLE=HOST` arguments into bindings, checking each role is declared
 * by the playbook and each host is in the inventory. Throws an InputError
 * listing every problem, with the known roles and hosts.
 */
export function parseBindings(
  args: readonly string[],
  playbook: Playbook,
  inventory: Inventory,
): Bindings {
  const roles = Object.keys(playbook.roles);
  const hosts = Object.keys(inventory.hosts);
  const out: Bindings = {};
  const problems: Diagnostic[] = [];
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0 || eq === a.length - 1) {
      problems.push({
        file: a,
        message: 'expected ROLE=HOST',
        hint: `roles of ${playbook.name}: ${listWords(roles)}; for example ${roles[0] ?? 'source'}=${hosts[0] ?? 'old'}`,
      });
      continue;
    }
    const role = a.slice(0, eq);
    const host = a.slice(eq + 1);
    if (!roles.includes(role)) {
      const near = closest(role, roles);
      problems.push({
        file: a,
        message: `${playbook.name} has no role "${role}"${near ? `; did you mean "${near}"?` : ''}`,
        hint: `roles of ${playbook.name}: ${listWords(roles)}`,
      });
    } else if (out[role] !== undefined) {
      problems.push({
        file: a,
        message: `role "${role}" is bound twice (${out[role]} and ${host})`,
      });
    }
    if (!hosts.includes(host)) {
      const near = closest(host, hosts);
      problems.push({
        file: a,
        message: `unknown host "${host}"${near ? `; did you mean "${near}"?` : ''}`,
        hint: `hosts in ${inventory.file}: ${listWords(hosts)}`,
      });
    }
    if (roles.includes(role) && out[role] === undefined) out[role] = host;
  }
  if (problems.length > 0) throw new InputError(problems);
  return out;
}

/** Checks that every required role is bound and no two roles share a host. */
export function checkBindings(playbook: Playbook, inventory: Inventory, bindings: Bindings): void {
  const problems: Diagnostic[] = [];
  for (const [role, def] of Object.entries(playbook.roles)) {
    if (!def.optional && bindings[role] === undefined) {
      problems.push({
        file: playbook.file,
        message: `role "${role}" is not bound to a host`,
        hint: `Add ${role}=HOST, HOST one of ${listWords(Object.keys(inventory.hosts))}. ${role}: ${def.description}`,
      });
    }
    const name = bindings[role];
    if (name !== undefined && !inventory.hosts[name]) {
      problems.push({
        file: inventory.file,
        message: `unknown host "${name}" for role "${role}"`,
        hint: `hosts: ${listWords(Object.keys(inventory.hosts))}`,
      });
    }
  }
  const entries = Object.entries(bindings).filter(([, h]) => inventory.hosts[h]);
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [ra, ha] = entries[i]!;
      const [rb, hb] = entries[j]!;
      const a = inventory.hosts[ha]!;
      const b = inventory.hosts[hb]!;
      if (ha === hb) {
        problems.push({
          file: `${ra}=${ha} ${rb}=${hb}`,
          message: `${ra} and ${rb} are the same host (${ha})`,
          hint: `${playbook.name} moves data between two hosts; bind ${rb} to another one.`,
        });
      } else if (a.address === b.address && a.port === b.port) {
        problems.push({
          file: `${ra}=${ha} ${rb}=${hb}`,
          message: `${ra} (${ha}) and ${rb} (${hb}) are the same machine: both are ${a.address}:${a.port}`,
          hint: `Check the addresses in ${inventory.file}.`,
        });
      }
    }
  }
  if (problems.length > 0) throw new InputError(problems);
}

/**
 * Expands a playbook into a plan. Bindings are checked first (every required
 * role bound, no two roles on one host); a problem throws an InputError.
 */
export function plan(
  playbook: Playbook,
  inventory: Inventory,
  bindings: Bindings,
  options: PlanOptions,
): Plan {
  checkBindings(playbook, inventory, bindings);
  const roles: Record<string, Host | undefined> = {};
  for (const role of Object.keys(playbook.roles)) {
    const name = bindings[role];
    roles[role] = name === undefined ? undefined : inventory.hosts[name];
  }
  const steps = playbook.steps.map((step, index): PlannedStep => {
    const task = getTask(step.task)!;
    const host = step.on === CONTROLLER ? undefined : roles[step.on];
    const base = {
      id: step.id,
      task: step.task,
      role: step.on,
      host: step.on === CONTROLLER ? CONTROLLER : (host?.name ?? `<${step.on}>`),
      summary: task.summary,
      ...(step.why ? { why: step.why.trim() } : {}),
    };
    if (step.when && !options[step.when]) {
      return { ...base, skipped: `only with --${step.when}`, actions: [] };
    }
    if (step.on !== CONTROLLER && !host) {
      return { ...base, skipped: `role ${step.on} is not bound`, actions: [] };
    }
    const ctx = {
      step: { id: step.id, task: step.task, on: step.on, index },
      params: step.params,
      host,
      roles,
      inventory,
      options,
    };
    const nothing = task.skip?.(ctx);
    if (nothing) return { ...base, skipped: nothing, actions: [] };
    const actions = task.plan(ctx);
    checkActions(step.task, task.actions, actions);
    return { ...base, actions };
  });
  const bound: Plan['bindings'] = {};
  for (const [role, h] of Object.entries(roles)) {
    if (h)
      bound[role] = { host: h.name, address: h.address, user: h.user, port: h.port, sudo: h.sudo };
  }
  return {
    version: 1,
    playbook: {
      name: playbook.name,
      file: playbook.file,
      ...(playbook.description ? { description: playbook.description } : {}),
    },
    bindings: bound,
    options,
    steps,
    ...(playbook.undo ? { undo: { from: playbook.undo.from, until: playbook.undo.until } } : {}),
  };
}

/**
 * A task's plan keeps its own contract: every action has an id the task
 * declares, one id is planned once (or once per `item`), and every hole of a
 * command is a value the task declares for that id, so its run can fill it.
 * A broken contract is a bug in the task, caught here by every `ferry plan`.
 */
export function checkActions(
  task: string,
  spec: ActionSpec,
  actions: readonly PlannedAction[],
): void {
  const seen = new Map<string, string>();
  const walk = (list: readonly PlannedAction[]): void => {
    for (const a of list) {
      const inputs = Object.hasOwn(spec, a.id) ? spec[a.id] : undefined;
      if (!inputs) throw new InternalError(`task ${task} planned an undeclared action "${a.id}"`);
      const key = `${a.id}\0${a.item ?? ''}`;
      // One fallback may serve several actions: the same action, so the same id.
      const what = JSON.stringify(a);
      if (seen.has(key) && seen.get(key) !== what) {
        throw new InternalError(
          `task ${task} planned two different "${a.id}"${a.item ? ` for ${a.item}` : ''}`,
        );
      }
      seen.set(key, what);
      const commands = a.kind === 'stream' ? [a.send, a.receive] : [a.command];
      const holes = commands.flatMap((c) => c.holes());
      const stray = holes.filter((h) => !inputs.includes(h));
      if (stray.length > 0) {
        throw new InternalError(
          `task ${task}, action "${a.id}": <${stray.join('>, <')}> is not among its declared values (${inputs.join(', ') || 'none'})`,
        );
      }
      if (a.kind !== 'stream' && a.fallback) walk(a.fallback);
    }
  };
  walk(actions);
}

/** The plan for people: each step, why, and every command with the host it runs on. */
export function formatPlan(p: Plan, inventory: Inventory): string {
  const lines: string[] = [];
  lines.push(`Plan: ${p.playbook.name} (${p.playbook.file}), run ${p.options.runId}`);
  if (p.playbook.description) lines.push(`  ${p.playbook.description}`);
  for (const [role, b] of Object.entries(p.bindings)) {
    lines.push(
      `  ${role} = ${b.host} (${b.user}@${b.address}:${b.port}${b.sudo ? ', sudo -n' : ''})`,
    );
  }
  const flags = [
    p.options.force ? '--force' : '',
    p.options.route ? `--route ${p.options.route}` : '',
    p.options.fetch ? `--fetch ${p.options.fetch}` : '',
    ...(p.options.encrypt ?? []).map((r) => `--encrypt '${r}'`),
    p.options.ageIdentity ? `--identity ${p.options.ageIdentity}` : '',
  ].filter(Boolean);
  if (flags.length > 0) lines.push(`  options: ${flags.join(' ')}`);
  const selection = describeSelection(p.options.selection, p.options.rename);
  if (selection) lines.push(`  selection: ${selection}`);
  lines.push(
    'Nothing has been run. Remote commands run as root (`sudo -n` where the host says so).',
  );
  if (p.undo) {
    lines.push(
      `A failure from step ${p.undo.from} until ${p.undo.until} has finished runs the "only if a later step fails" actions of the steps in between (their undo), each host's in reverse order.`,
    );
  }
  const prompt = (h: string) =>
    h === CONTROLLER ? 'here$' : `${h}${inventory.hosts[h]?.sudo ? '#sudo' : ''}$`;
  const width = String(p.steps.length).length;
  p.steps.forEach((s, i) => {
    lines.push('');
    lines.push(
      `${String(i + 1).padStart(width)}. ${s.id} on ${s.role}${s.host !== s.role ? ` (${s.host})` : ''}: ${s.summary}`,
    );
    const pad = ' '.repeat(width + 2);
    if (s.why) lines.push(`${pad}why: ${s.why.replace(/\s+/g, ' ')}`);
    if (s.skipped) {
      lines.push(`${pad}skipped: ${s.skipped}`);
      return;
    }
    if (s.actions.length === 0) lines.push(`${pad}(no commands)`);
    const write = (a: PlannedAction, at: string): void => {
      let indent = at;
      const each =
        'forEach' in a && a.forEach
          ? `for each ${a.forEach}${'where' in a && a.where ? ` (${a.where})` : ''}${a.items ? `, ${a.items.join(', ')} first` : ''}:`
          : '';
      if (a.only) {
        lines.push(`${indent}only if ${a.only}:`);
        indent = `${indent}  `;
      }
      if (a.kind === 'stream') {
        lines.push(
          a.duplex
            ? `${indent}two-way stream ${a.from} ⇄ ${a.to} (route ${a.route}; $FERRY_RSH reaches the first command from the second):`
            : `${indent}stream ${a.from} → ${a.to} (route ${a.route}):`,
        );
        lines.push(`${indent}  ${prompt(a.from)} ${a.send}`);
        lines.push(`${indent}  ${prompt(a.to)} ${a.receive}`);
      } else {
        const where = a.kind === 'remote' ? prompt(a.host) : prompt(CONTROLLER);
        if (each) lines.push(`${indent}${each}`);
        lines.push(`${indent}${each ? '  ' : ''}${where} ${a.command}`);
        const notes = [
          a.kind === 'remote' && a.capture ? `output → <${a.capture}>` : '',
          a.kind === 'remote' && a.stdin ? `stdin: ${a.stdin}` : '',
          a.expect ? `expect: ${a.expect}` : '',
        ].filter(Boolean);
        if (notes.length > 0) lines.push(`${indent}${each ? '  ' : ''}  (${notes.join('; ')})`);
      }
      if (a.why) lines.push(`${indent}  # ${a.why}`);
      if (a.kind !== 'stream' && a.fallback && a.fallback.length > 0) {
        lines.push(`${indent}  if that fails:`);
        for (const f of a.fallback) write(f, `${indent}    `);
      }
    };
    for (const a of s.actions) write(a, pad);
  });
  return `${lines.join('\n')}\n`;
}
