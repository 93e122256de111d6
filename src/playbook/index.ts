/**
 * Playbooks: a procedure as data. `validatePlaybook` is pure (text in, typed
 * playbook or every problem out); `loadPlaybook` finds a playbook by name or
 * path and reads it. Passes: the schema, each step's params against its
 * task's schema, then the rules across steps (roles declared, tasks on the
 * right kind of place, a transfer before what needs one).
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ValidateFunction } from 'ajv';
import type { Diagnostic } from '../errors.js';
import { InputError } from '../errors.js';
import { sortDiagnostics } from '../inventory/index.js';
import { compile, diagnose } from '../schema/diagnose.js';
import { type PlaybookDocument, playbookSchema, type StepDocument } from '../schema/playbook.js';
import {
  type Path,
  parseSource,
  positionAt,
  readInput,
  type SourceFile,
} from '../schema/source.js';
import { closest, listWords } from '../schema/suggest.js';
import { getTask, TASK_NAMES } from '../tasks/index.js';

/** The role name that means this machine. */
export const CONTROLLER = 'controller';

/** A step with its id decided and its params validated (defaults filled in). */
export type Step = StepDocument & { id: string; params: Record<string, unknown> };

/** A validated playbook. */
export type Playbook = Omit<PlaybookDocument, 'steps'> & {
  /** The file it was read from. */
  file: string;
  steps: Step[];
};

const validateSchema = compile(playbookSchema);
const paramValidators = new Map<string, ValidateFunction>();

function paramsValidator(task: string): ValidateFunction {
  let v = paramValidators.get(task);
  if (!v) {
    v = compile(getTask(task)!.params);
    paramValidators.set(task, v);
  }
  return v;
}

/** Validates playbook text; returns the playbook or throws an InputError with every problem. */
export function validatePlaybook(text: string, file: string): Playbook {
  const { source, diagnostics, syntaxOk } = parseSource(text, file, 'the playbook');
  if (!syntaxOk) throw new InputError(diagnostics);
  const value = source.value;
  if (value === null || value === undefined) {
    throw new InputError([
      {
        file,
        line: 1,
        column: 1,
        message: 'the playbook is empty',
        hint: 'Start from a copy of playbooks/migrate.yml.',
      },
    ]);
  }
  const shapeOk = validateSchema(value);
  if (!shapeOk) diagnostics.push(...diagnose(source, validateSchema.errors ?? []));
  diagnostics.push(...roleNames(source, value), ...stepTasks(source, value));
  // The rules across steps run on every step that is whole, even when others
  // are not, so one pass reports all there is.
  const roles = isObject((value as { roles?: unknown }).roles)
    ? Object.keys((value as { roles: object }).roles)
    : [];
  diagnostics.push(...crossStepRules(source, roles, wholeSteps(value)));
  diagnostics.push(...undoRange(source, value, wholeSteps(value)));
  if (diagnostics.length > 0 || !shapeOk) throw new InputError(sortDiagnostics(diagnostics));
  const doc = value as PlaybookDocument;
  return { ...doc, file, steps: wholeSteps(doc).map((s) => s.step) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Steps with a known task, a role and params, with their index and decided id. */
function wholeSteps(value: unknown): { step: Step; index: number }[] {
  const steps = (value as { steps?: unknown }).steps;
  if (!Array.isArray(steps)) return [];
  const counts = new Map<string, number>();
  const out: { step: Step; index: number }[] = [];
  steps.forEach((s: unknown, index) => {
    if (!isObject(s) || typeof s.task !== 'string' || !getTask(s.task)) return;
    if (typeof s.on !== 'string' || !isObject(s.params)) return;
    const n = (counts.get(s.task) ?? 0) + 1;
    counts.set(s.task, n);
    const id = typeof s.id === 'string' ? s.id : n === 1 ? s.task : `${s.task}-${n}`;
    out.push({ step: { ...(s as StepDocument), id, params: s.params }, index });
  });
  return out;
}

function roleNames(source: SourceFile, value: unknown): Diagnostic[] {
  const roles = (value as { roles?: unknown }).roles;
  if (!roles || typeof roles !== 'object' || Array.isArray(roles)) return [];
  return Object.keys(roles).flatMap((name) => {
    if (name === CONTROLLER) {
      return [
        {
          file: source.file,
          ...positionAt(source, ['roles', name], 'key'),
          message: `"${CONTROLLER}" cannot be declared as a role: it always means this machine`,
          hint: `Steps run here with \`on: ${CONTROLLER}\`; remove the role.`,
        },
      ];
    }
    if (!/^[a-z][a-z0-9_-]*$/.test(name)) {
      return [
        {
          file: source.file,
          ...positionAt(source, ['roles', name], 'key'),
          message: `role name ${JSON.stringify(name)} must start with a lowercase letter and contain only lowercase letters, digits, "_" and "-"`,
          hint: 'It is typed on the command line as ROLE=HOST.',
        },
      ];
    }
    return [];
  });
}

/** Unknown tasks, and each known task's params against its own schema. */
function stepTasks(source: SourceFile, value: unknown): Diagnostic[] {
  const steps = (value as { steps?: unknown }).steps;
  if (!Array.isArray(steps)) return [];
  const out: Diagnostic[] = [];
  steps.forEach((step: unknown, i) => {
    if (!step || typeof step !== 'object' || Array.isArray(step)) return;
    const { task, params } = step as { task?: unknown; params?: unknown };
    if (typeof task !== 'string' || task === '') return;
    if (!getTask(task)) {
      const near = closest(task, TASK_NAMES);
      out.push({
        file: source.file,
        ...positionAt(source, ['steps', i, 'task']),
        message: `steps[${i}].task: unknown task "${task}"${near ? `; did you mean "${near}"?` : ''}`,
        hint: `known tasks: ${listWords(TASK_NAMES)}`,
      });
      return;
    }
    if (params === undefined || (params && typeof params === 'object' && !Array.isArray(params))) {
      const p = params ?? {};
      const v = paramsValidator(task);
      if (!v(p)) out.push(...diagnose(source, v.errors ?? [], ['steps', i, 'params']));
      (step as { params?: unknown }).params = p;
    }
  });
  return out;
}

function crossStepRules(
  source: SourceFile,
  roles: string[],
  steps: { step: Step; index: number }[],
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (path: Path, which: 'key' | 'value' = 'value') => ({
    file: source.file,
    ...positionAt(source, path, which),
  });
  const ids = new Map<string, number>();
  const transferredTo = new Set<string>();
  for (const { step, index: i } of steps) {
    const task = getTask(step.task)!;
    const first = ids.get(step.id);
    if (first !== undefined) {
      out.push({
        ...at(['steps', i, source.doc.hasIn(['steps', i, 'id']) ? 'id' : 'task']),
        message: `steps[${i}] has the id "${step.id}" of steps[${first}]`,
        hint: 'Give one of them another `id:`; ids name steps in reports and for --resume.',
      });
    } else ids.set(step.id, i);

    const before = out.length;
    if (task.runsOn === 'controller' && step.on !== CONTROLLER) {
      out.push({
        ...at(['steps', i, 'on']),
        message: `steps[${i}]: ${step.task} runs on this machine, so "on" must be "${CONTROLLER}", got "${step.on}"`,
      });
    } else if (task.runsOn === 'host' && step.on === CONTROLLER) {
      out.push({
        ...at(['steps', i, 'on']),
        message: `steps[${i}]: ${step.task} runs on a host, so "on" must be one of the roles (${listWords(roles)}), not "${CONTROLLER}"`,
      });
    } else if (step.on !== CONTROLLER && !roles.includes(step.on)) {
      out.push(undeclared(at(['steps', i, 'on']), `steps[${i}].on`, step.on, roles));
    }

    // A step on the wrong role gets one message, not one more per param.
    const onOk = out.length === before;
    for (const key of onOk ? task.roleParams : []) {
      const v = step.params[key];
      if (typeof v !== 'string') continue;
      if (!roles.includes(v)) {
        out.push(
          undeclared(at(['steps', i, 'params', key]), `steps[${i}].params.${key}`, v, roles),
        );
      } else if (v === step.on) {
        out.push({
          ...at(['steps', i, 'params', key]),
          message: `steps[${i}].params.${key} is "${v}", the role the step runs on: source and target must differ`,
          hint: `${step.task} ${ROLE_PARAM_WORDS[key] ?? 'works with'} another host.`,
        });
      }
    }

    if (step.task === 'transfer' || step.task === 'sync') transferredTo.add(step.on);
    if (
      (step.task === 'verify-archive' || step.task === 'extract') &&
      !transferredTo.has(step.on)
    ) {
      out.push({
        ...at(['steps', i, 'task']),
        message: `steps[${i}]: ${step.task} on ${step.on} needs a transfer (or sync) step on ${step.on} before it`,
        hint: 'Move it after the transfer, or add one.',
      });
    }
  }
  return out;
}

/** The undo range names two steps of the playbook, the first before the second. */
function undoRange(
  source: SourceFile,
  value: unknown,
  steps: { step: Step; index: number }[],
): Diagnostic[] {
  const undo = (value as { undo?: unknown }).undo;
  if (!isObject(undo) || typeof undo.from !== 'string' || typeof undo.until !== 'string') return [];
  const ids = steps.map((s) => s.step.id);
  const out: Diagnostic[] = [];
  for (const key of ['from', 'until'] as const) {
    const id = undo[key] as string;
    if (!ids.includes(id)) {
      const near = closest(id, ids);
      out.push({
        file: source.file,
        ...positionAt(source, ['undo', key]),
        message: `undo.${key}: no step has the id "${id}"${near ? `; did you mean "${near}"?` : ''}`,
        hint: `step ids: ${listWords(ids)}`,
      });
    }
  }
  if (out.length === 0 && ids.indexOf(undo.from) >= ids.indexOf(undo.until)) {
    out.push({
      file: source.file,
      ...positionAt(source, ['undo', 'until']),
      message: `undo.until ("${undo.until}") must come after undo.from ("${undo.from}")`,
    });
  }
  return out;
}

const ROLE_PARAM_WORDS: Record<string, string> = {
  from: 'takes data from',
  against: 'compares this host with',
  to: 'points at',
};

function undeclared(
  where: { file: string; line: number; column: number },
  what: string,
  role: string,
  roles: string[],
): Diagnostic {
  const near = closest(role, [...roles, CONTROLLER]);
  return {
    ...where,
    message: `${what}: role "${role}" is not declared in roles${near ? `; did you mean "${near}"?` : ''}`,
    hint: `declared roles: ${listWords(roles)} (and "${CONTROLLER}" for this machine)`,
  };
}

/** The shipped playbooks' folder (playbooks/ at the package root). */
export const SHIPPED_PLAYBOOKS = fileURLToPath(new URL('../../../playbooks/', import.meta.url));

/**
 * Where a playbook named on the command line is: a path (has a `/` or ends
 * in .yml/.yaml), else NAME.yml in ./playbooks (the user's copies win), else
 * in the shipped playbooks.
 */
export function resolvePlaybook(nameOrPath: string, cwd = process.cwd()): string {
  if (nameOrPath.includes('/') || /\.ya?ml$/.test(nameOrPath)) return resolve(cwd, nameOrPath);
  const mine = join(cwd, 'playbooks', `${nameOrPath}.yml`);
  if (existsSync(mine)) return mine;
  const shipped = join(SHIPPED_PLAYBOOKS, `${nameOrPath}.yml`);
  if (existsSync(shipped)) return shipped;
  const known = listPlaybooks(cwd);
  const near = closest(nameOrPath, known);
  throw new InputError(
    [
      {
        file: nameOrPath,
        message: `no playbook named "${nameOrPath}"${near ? `; did you mean "${near}"?` : ''}`,
      },
    ],
    `known playbooks: ${listWords(known)}; or give a path to a .yml file`,
  );
}

/** Names of the playbooks `loadPlaybook` finds by name: ./playbooks and the shipped ones. */
export function listPlaybooks(cwd = process.cwd()): string[] {
  const names = [join(cwd, 'playbooks'), SHIPPED_PLAYBOOKS].flatMap((d) =>
    existsSync(d)
      ? readdirSync(d)
          .filter((f) => f.endsWith('.yml'))
          .map((f) => basename(f, '.yml'))
      : [],
  );
  return [...new Set(names)].sort();
}

/** Finds (by name or path), reads and validates a playbook. */
export async function loadPlaybook(nameOrPath: string, cwd = process.cwd()): Promise<Playbook> {
  const file = resolvePlaybook(nameOrPath, cwd);
  const shown = file.startsWith(`${cwd}/`) ? file.slice(cwd.length + 1) : file;
  let text: string;
  try {
    // Refuses binary, huge and non-UTF-8 files before parsing (src/schema/source.ts).
    text = await readInput(file, shown, 'the playbook');
  } catch (e) {
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError([
      {
        file: nameOrPath,
        message:
          code === 'ENOENT' ? 'the playbook file does not exist' : `cannot read it (${code})`,
      },
    ]);
  }
  return validatePlaybook(text, shown);
}
