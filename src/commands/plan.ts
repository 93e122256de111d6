/**
 * `ferry plan PLAYBOOK ROLE=HOST...`: prints every step of a playbook and
 * the exact commands it would run, contacting no host. `--dry-run` of
 * migrate/backup/restore/drill prints the same through `showPlan`.
 *
 * The identity files are not checked here: the plan contacts no host, and a
 * plan is useful before keys exist (the lab's key exists only after `npm run
 * lab -- up`). Every command that connects checks them first.
 */
import { ExitCode } from '../errors.js';
import { type Inventory, inventoryWarnings, loadInventory } from '../inventory/index.js';
import {
  type Bindings,
  formatPlan,
  plan as makePlan,
  type Plan,
  parseBindings,
} from '../plan/index.js';
import { loadPlaybook, type Playbook } from '../playbook/index.js';
import type { PlanOptions } from '../tasks/types.js';
import { runIdFor } from '../util/run-id.js';
import type { Io, PlanCommandOptions } from './options.js';

/** What `buildPlan` needs: a playbook (name or path), role bindings, the inventory file. */
export interface PlanRequest {
  playbook: string;
  /** `ROLE=HOST` arguments, or bindings already made. */
  bindings: readonly string[] | Bindings;
  inventoryPath: string;
  /** Options of the run; `runId` defaults to one made from `now`. */
  options?: Partial<PlanOptions>;
  now?: Date;
  /** Check that identity files exist (default false: a plan contacts no host). */
  checkIdentity?: boolean;
  /** The environment ssh_config reads (SSH_AUTH_SOCK, `${VAR}`). */
  sshEnv?: Readonly<Record<string, string | undefined>>;
}

/** Loads the inventory and playbook, binds roles and plans. Throws InputError on bad input. */
export async function buildPlan(
  req: PlanRequest,
): Promise<{ plan: Plan; inventory: Inventory; playbook: Playbook }> {
  const inventory = await loadInventory(req.inventoryPath, {
    checkIdentity: req.checkIdentity ?? false,
    ...(req.sshEnv ? { sshEnv: req.sshEnv } : {}),
  });
  const playbook = await loadPlaybook(req.playbook);
  const bindings = Array.isArray(req.bindings)
    ? parseBindings(req.bindings as readonly string[], playbook, inventory)
    : (req.bindings as Bindings);
  const options: PlanOptions = {
    ...req.options,
    runId: req.options?.runId ?? runIdFor(req.now ?? new Date()),
  };
  return { plan: makePlan(playbook, inventory, bindings, options), inventory, playbook };
}

/** Builds a plan and writes it (text, or JSON with `json`); what `--dry-run` prints. */
export async function showPlan(
  req: PlanRequest & {
    json: boolean;
    stdout: NodeJS.WritableStream;
    stderr?: NodeJS.WritableStream;
  },
): Promise<Plan> {
  const { plan, inventory } = await buildPlan(req);
  for (const w of inventoryWarnings(inventory)) req.stderr?.write(w);
  req.stdout.write(req.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan, inventory));
  return plan;
}

/** `ferry plan PLAYBOOK ROLE=HOST...`. */
export async function plan(opts: PlanCommandOptions, io: Io): Promise<number> {
  await showPlan({
    playbook: opts.playbook,
    bindings: opts.bindings,
    inventoryPath: opts.inventory,
    ...(opts.sshEnv ? { sshEnv: opts.sshEnv } : {}),
    json: opts.json,
    stdout: io.stdout,
    stderr: io.stderr,
  });
  return ExitCode.ok;
}
