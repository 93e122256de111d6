/**
 * Runs a playbook for real: plan it, open the journal (or find the run to
 * resume), bind each planned step to its task's run, hand the steps to the
 * listr2 runner over one SSH connection per host, and write the report.
 * It receives a {@link RunRequest}: never argv, never the environment.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, InternalError } from '../errors.js';
import { type Inventory, inventoryWarnings, loadInventory } from '../inventory/index.js';
import { type Bindings, formatPlan, type Plan, plan } from '../plan/index.js';
import { CONTROLLER, loadPlaybook, type Playbook } from '../playbook/index.js';
import { nativeCryptoAvailable, nativeCryptoHint } from '../ssh/native.js';
import { Connections } from '../ssh/pool.js';
import { getTask } from '../tasks/index.js';
import { latestManifest } from '../tasks/manifest.js';
import type {
  JournalView,
  PlanContext,
  PlanOptions,
  StepOutputs,
  TaskDefinition,
} from '../tasks/types.js';
import { runIdFor, runIdOfJournal } from '../util/run-id.js';
import {
  hashText,
  Journal,
  type JournalRecord,
  type RunState,
  readJournal,
  resumeRun,
  runsDir,
} from './journal.js';
import {
  formatFailure,
  formatSummary,
  type ReportInput,
  toJsonReport,
  toJunitXml,
} from './report.js';
import {
  type RendererChoice,
  type RunObserver,
  type RunResult,
  runSteps,
  type Step,
  type StepTask,
} from './runner.js';
import { createRuntime, type SshShared, sshExecutor } from './runtime.js';
import { stepFromPlan } from './steps.js';

/** What a command asks of {@link runPlaybook}. */
export interface RunRequest {
  /** `migrate`, `backup`, `restore`, `drill`. */
  command: string;
  /** The playbook's name in playbooks/ or a path. */
  playbook: string;
  inventory: string;
  /** The environment ssh_config reads (SSH_AUTH_SOCK, `${VAR}`), as ssh would see it. */
  sshEnv?: Readonly<Record<string, string | undefined>>;
  bindings: Bindings;
  /** Options that change the plan. */
  plan: Omit<PlanOptions, 'runId'>;
  /** The user's argv after `ferry` (journal, resume hint). */
  argv: string[];
  dryRun: boolean;
  resume: boolean;
  acceptNewHostKeys: boolean;
  json: boolean;
  junit?: string;
  renderer: RendererChoice;
  /** Where journals go; default {@link runsDir}(). */
  stateDir?: string;
  /** Facts for the report that only the command knows. */
  facts?: (result: RunResult) => Record<string, string>;
  /** Measured numbers for `--json` and JUnit (`downtimeMs`), from the result. */
  metrics?: (result: RunResult) => Record<string, number>;
  /** Told of every step's start, end and output (a fleet's view of its hosts). */
  observer?: RunObserver;
  /** Seconds between progress lines, when not the renderer's own default. */
  progressInterval?: number;
  /** The caller already warned that ssh2's native binding is missing (a fleet warns once). */
  nativeWarned?: boolean;
}

/** How a run ended: its exit code, and what its report is made of when steps ran. */
export interface PlaybookOutcome {
  code: number;
  /** Absent for --dry-run (the plan was printed). */
  report?: ReportInput;
}

/** Where a command writes. */
export interface RunIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Loads inputs, plans, runs (or prints the plan for --dry-run), reports; returns the exit code. */
export async function runPlaybook(req: RunRequest, io: RunIo): Promise<number> {
  const outcome = await executePlaybook(req, io);
  if (outcome.report) await writeReport(req, outcome.report, io);
  return outcome.code;
}

/**
 * {@link runPlaybook} without the report: a fleet runs one per host and
 * writes one report of them all.
 */
export async function executePlaybook(req: RunRequest, io: RunIo): Promise<PlaybookOutcome> {
  const inventory = await loadInventory(req.inventory, {
    ...(req.sshEnv ? { sshEnv: req.sshEnv } : {}),
  });
  for (const w of inventoryWarnings(inventory)) io.stderr.write(w);
  const playbook = await loadPlaybook(req.playbook);
  const now = new Date();
  const dir = req.stateDir ? join(req.stateDir, 'runs') : runsDir();

  let resume: RunState | undefined;
  const playbookHash = hashText(await readFile(playbook.file));
  const inventoryHash = hashText(await readFile(inventory.file));
  if (req.resume) {
    resume = resumeRun({
      command: req.command,
      bindings: req.bindings,
      playbookHash,
      inventoryHash,
      dir,
    });
  }
  // A resumed run keeps its plan's run id (host folders are named after it): the
  // first run's, also when it resumes a run that was itself a resume.
  const first = resume ? (resume.start.resumes ?? resume.start.runId) : undefined;
  const runId = first ? runIdOfJournal(first) : runIdFor(now);
  const thePlan = plan(playbook, inventory, req.bindings, { ...req.plan, runId });

  if (req.dryRun) {
    io.stdout.write(
      req.json ? `${JSON.stringify(thePlan, null, 2)}\n` : formatPlan(thePlan, inventory),
    );
    return { code: ExitCode.ok };
  }

  const journal = Journal.create({
    dir,
    command: req.command,
    playbook: { path: playbook.file, hash: playbookHash },
    inventory: { path: inventory.file, hash: inventoryHash },
    bindings: req.bindings,
    argv: req.argv,
    steps: thePlan.steps.map((s) => s.id),
    ...(first ? { resumes: first } : {}),
    // The run id carries the plan's time (host paths are named after it); records carry real times.
    now: firstThenReal(now),
  });
  if (resume) {
    const where = resume.failed
      ? `step ${resume.failed.step} failed on ${resume.failed.host}`
      : resume.inProgress
        ? `step ${resume.inProgress} was interrupted`
        : 'it stopped';
    const again = resume.undoneFrom
      ? `; its steps from ${resume.undoneFrom} on were undone, so they run again`
      : '';
    io.stderr.write(
      `resuming run ${resume.start.runId} (${where}${again}); ${resume.finished.size} step(s) done there are not run again\n`,
    );
  }
  if (!req.nativeWarned && !nativeCryptoAvailable()) {
    io.stderr.write(`warning: ${nativeCryptoHint()}\n`);
  }

  const connections = Connections.forInventory(inventory, {
    acceptNewHostKeys: req.acceptNewHostKeys,
  });
  const shared: SshShared = { connections, reach: new Map() };
  const steps = buildSteps(thePlan, playbook, inventory, shared, () =>
    journalView(readJournal(journal.file)),
  );
  let result: RunResult;
  try {
    result = await runSteps(steps, {
      shared,
      journal,
      ...(resume ? { resume } : {}),
      renderer: req.renderer,
      ...(req.observer ? { observer: req.observer } : {}),
      ...(req.progressInterval === undefined ? {} : { progressInterval: req.progressInterval }),
    });
  } finally {
    await connections.closeAll();
    journal.close();
  }

  const manifest = latestManifest(result.outputs);
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
    ...(req.metrics ? { metrics: req.metrics(result) } : {}),
  };
  const code =
    result.status === 'ok'
      ? ExitCode.ok
      : result.status === 'interrupted'
        ? ExitCode.interrupted
        : ExitCode.failed;
  return { code, report: input };
}

/** The end of a run: JUnit file, summary (or --json) on stdout, the failure on stderr. */
async function writeReport(req: RunRequest, input: ReportInput, io: RunIo): Promise<void> {
  const result = input.result;
  if (req.junit) await writeFile(req.junit, toJunitXml(input));
  if (req.json) io.stdout.write(`${JSON.stringify(toJsonReport(input), null, 2)}\n`);
  else io.stdout.write(`${formatSummary(input)}\n`);
  if (result.status !== 'ok') io.stderr.write(`${formatFailure(input)}\n`);
}

/** The journal's records as a task may read them. */
function journalView(records: readonly JournalRecord[]): JournalView[] {
  return records.map((r): JournalView => {
    if (r.type === 'run-started') return { type: r.type, runId: r.runId, steps: r.steps };
    if (r.type === 'step-finished') {
      return { type: r.type, step: r.step, durationMs: r.durationMs, doneIn: r.doneIn };
    }
    if (r.type === 'step-failed') return { type: r.type, step: r.step, durationMs: r.durationMs };
    return { type: 'other' };
  });
}

/** Binds each planned step to its task's run, over the run's SSH executor. */
export function buildSteps(
  thePlan: Plan,
  playbook: Playbook,
  inventory: Inventory,
  shared: SshShared,
  journal: () => JournalView[],
): Step<SshShared>[] {
  const roles: Record<string, Inventory['hosts'][string] | undefined> = {};
  for (const [role, b] of Object.entries(thePlan.bindings)) roles[role] = inventory.hosts[b.host];
  const executor = sshExecutor(shared);
  return thePlan.steps.map((planned, index) => {
    const pbStep = playbook.steps[index]!;
    const def = getTask(planned.task);
    if (!def) throw new InternalError(`unknown task ${planned.task}`);
    const ctx: PlanContext<unknown> = {
      step: { id: planned.id, task: planned.task, on: pbStep.on, index },
      params: pbStep.params,
      host: planned.host === CONTROLLER ? undefined : inventory.hosts[planned.host],
      roles,
      inventory,
      options: thePlan.options,
    };
    const runtime = (run: { outputs: Readonly<Record<string, StepOutputs>> }, task: StepTask) =>
      createRuntime({
        ctx,
        actions: planned.actions,
        task,
        outputs: run.outputs,
        executor,
        journal,
      });
    const undo = undoOf(thePlan, index, def.undo);
    return stepFromPlan<SshShared>(
      planned,
      async (run, task) => (await def.run(runtime(run, task))) ?? undefined,
      {
        rerunOnResume: def.rerunOnResume === true,
        ...(pbStep.retry === undefined ? {} : { retry: pbStep.retry }),
        ...(pbStep.continue_on_error ? { continueOnError: true } : {}),
        ...(undo ? { undo: { ...undo, run: (run, task) => undo.fn(runtime(run, task)) } } : {}),
      },
    );
  });
}

/** The undo of the step at `index` when it lies inside the plan's undo range and its task has one. */
function undoOf(
  thePlan: Plan,
  index: number,
  fn: TaskDefinition<unknown>['undo'],
): { from: string; until: string; fn: NonNullable<TaskDefinition<unknown>['undo']> } | undefined {
  const range = thePlan.undo;
  if (!range || !fn || thePlan.steps[index]?.skipped) return undefined;
  const ids = thePlan.steps.map((s) => s.id);
  const [a, b] = [ids.indexOf(range.from), ids.indexOf(range.until)];
  if (index < a || index >= b) return undefined;
  return { ...range, fn };
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
