/**
 * Runs a playbook for real: plan it, open the journal (or find the run to
 * resume), bind each planned step to its task's `run`, hand the steps to the
 * listr2 runner over one SSH connection per host, and write the report.
 * The commands `migrate`, `backup`, `restore` and `drill` are thin wrappers.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { CommandContext } from '../cli.js';
import { ExitCode, StopError } from '../errors.js';
import { type Inventory, loadInventory } from '../inventory/index.js';
import { type Bindings, formatPlan, type Plan, plan } from '../plan/index.js';
import { CONTROLLER, loadPlaybook, type Playbook } from '../playbook/index.js';
import { Connections, type HostTarget } from '../ssh/connection.js';
import { nativeCryptoAvailable } from '../ssh/native.js';
import { getTask } from '../tasks/index.js';
import type { Manifest } from '../tasks/manifest.js';
import { createRuntime, runActions, type Shared, type TaskRun } from '../tasks/runtime.js';
import type { PlanContext, PlanOptions } from '../tasks/types.js';
import { hashText, Journal, type RunState, resumeRun } from './journal.js';
import {
  formatFailure,
  formatSummary,
  type ReportInput,
  toJsonReport,
  toJunitXml,
} from './report.js';
import { type RunResult, runSteps, type Step } from './runner.js';
import { stepFromPlan } from './steps.js';

/** What a command asks of {@link runPlaybook}. */
export interface PlaybookRun {
  /** `migrate`, `backup`, `restore`, `drill`. */
  command: string;
  /** The playbook's name in playbooks/ or a path. */
  playbook: string;
  bindings: Bindings;
  options: Omit<PlanOptions, 'runId'>;
  /** The user's argv after `ferry` (journal, resume hint). */
  argv: string[];
  /** Facts for the report that only the command knows. */
  facts?: (result: RunResult) => Record<string, string>;
}

/** The inventory hosts as SSH targets. */
export function hostTargets(inventory: Inventory): Record<string, HostTarget> {
  const out: Record<string, HostTarget> = {};
  for (const [name, h] of Object.entries(inventory.hosts)) {
    out[name] = {
      name,
      address: h.address,
      port: h.port,
      user: h.user,
      identity: h.identity,
      hostKey: h.host_key,
      knownHosts: h.known_hosts,
      sudo: h.sudo,
    };
  }
  return out;
}

/** Loads inputs, plans, runs (or prints the plan for --dry-run); returns the exit code. */
export async function runPlaybook(cli: CommandContext, req: PlaybookRun): Promise<number> {
  const inventory = await loadInventory(cli.inventoryPath);
  const playbook = await loadPlaybook(
    typeof cli.values.playbook === 'string' ? cli.values.playbook : req.playbook,
  );
  const dryRun = cli.values['dry-run'] === true;
  const now = new Date();
  const planRunIdOf = (journalRunId: string) => journalRunId.slice(0, 16);

  let resume: RunState | undefined;
  const playbookHash = hashText(await readFile(playbook.file));
  const inventoryHash = hashText(await readFile(inventory.file));
  if (cli.values.resume === true) {
    resume = resumeRun({
      command: req.command,
      bindings: req.bindings,
      playbookHash,
      inventoryHash,
    });
  }
  const runId = resume
    ? planRunIdOf(resume.start.runId)
    : now
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d{3}Z$/, 'Z');
  const thePlan = plan(playbook, inventory, req.bindings, { ...req.options, runId });

  if (dryRun) {
    cli.stdout.write(
      cli.json ? `${JSON.stringify(thePlan, null, 2)}\n` : formatPlan(thePlan, inventory),
    );
    return ExitCode.ok;
  }

  const journal = Journal.create({
    command: req.command,
    playbook: { path: playbook.file, hash: playbookHash },
    inventory: { path: inventory.file, hash: inventoryHash },
    bindings: req.bindings,
    argv: req.argv,
    steps: thePlan.steps.map((s) => s.id),
    ...(resume ? { resumes: resume.start.runId } : {}),
    // The run id carries the plan's time (host paths are named after it); records carry real times.
    now: firstThenReal(now),
  });
  if (resume) {
    const where = resume.failed
      ? `step ${resume.failed.step} failed on ${resume.failed.host}`
      : resume.inProgress
        ? `step ${resume.inProgress} was interrupted`
        : 'it stopped';
    cli.stderr.write(
      `resuming run ${resume.start.runId} (${where}); ${resume.finished.size} step(s) done there are not run again\n`,
    );
  }
  if (!nativeCryptoAvailable()) {
    cli.stderr.write(
      "warning: ssh2's native crypto binding is not built; copies through this machine run about 2x slower (run `npm rebuild ssh2`)\n",
    );
  }

  const connections = new Connections(hostTargets(inventory), {
    acceptNewHostKeys: cli.values['accept-new-host-keys'] === true,
  });
  const shared: Shared = { connections, reach: new Map() };
  const steps = buildSteps(thePlan, playbook, inventory);
  let result: RunResult;
  try {
    result = await runSteps(steps, {
      shared,
      journal,
      ...(resume ? { resume } : {}),
      renderer: process.env.FERRY_RENDERER === 'silent' ? 'silent' : 'auto',
    });
  } finally {
    await connections.closeAll();
    journal.close();
  }

  const manifest = result.outputs.inventory?.manifest as unknown as Manifest | undefined;
  const input: ReportInput = {
    command: req.command,
    argv: req.argv,
    result,
    bindings: req.bindings,
    journalFile: journal.file,
    ...(manifest
      ? {
          apps: manifest.apps.map((a) => a.name),
          services: manifest.services.map((s) => ({ plugin: s.plugin, name: s.name })),
        }
      : {}),
    facts: {
      'ssh connections': String(connections.opened),
      // maxRSS is in KiB: the controller's peak, to show data never piles up here.
      'controller peak memory': `${Math.round(process.resourceUsage().maxRSS / 1024)} MB`,
      ...(req.facts ? req.facts(result) : {}),
    },
  };
  if (typeof cli.values.junit === 'string') await writeFile(cli.values.junit, toJunitXml(input));
  if (cli.json) cli.stdout.write(`${JSON.stringify(toJsonReport(input), null, 2)}\n`);
  else cli.stdout.write(`${formatSummary(input)}\n`);
  if (result.status !== 'ok') {
    cli.stderr.write(`${formatFailure(input)}\n`);
    return result.status === 'interrupted' ? ExitCode.interrupted : ExitCode.failed;
  }
  return ExitCode.ok;
}

/** Binds each planned step to its task's run (its module's `run`, else the actions as planned). */
export function buildSteps(
  thePlan: Plan,
  playbook: Playbook,
  inventory: Inventory,
): Step<Shared>[] {
  const roles: Record<string, Inventory['hosts'][string] | undefined> = {};
  for (const [role, b] of Object.entries(thePlan.bindings)) roles[role] = inventory.hosts[b.host];
  return thePlan.steps.map((planned, index) => {
    const pbStep = playbook.steps[index]!;
    const def = getTask(planned.task);
    if (!def) throw new StopError(`unknown task ${planned.task}`);
    const ctx: PlanContext<unknown> = {
      step: { id: planned.id, task: planned.task, on: pbStep.on, index },
      params: pbStep.params,
      host: planned.host === CONTROLLER ? undefined : inventory.hosts[planned.host],
      roles,
      inventory,
      options: thePlan.options,
    };
    return stepFromPlan<Shared>(
      planned,
      async (run, task) => {
        const mod = (await import(`../tasks/${planned.task}.js`)) as { run?: TaskRun };
        const rt = createRuntime({ ctx, actions: planned.actions, task, run });
        return (await (mod.run ?? runActions)(rt)) ?? undefined;
      },
      { rerunOnResume: planned.task === 'check-quiet' },
    );
  });
}

/** A clock that answers `first` once, then the real time. */
function firstThenReal(first: Date): () => Date {
  let used = false;
  return () => {
    if (used) return new Date();
    used = true;
    return first;
  };
}
