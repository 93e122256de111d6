/**
 * The run journal: one append-only JSON-lines file per run, on the controller,
 * so an interrupted run can say where it stopped and `--resume` can go on from
 * there with the outputs the finished steps recorded.
 *
 * Location (first that applies):
 *   1. `$FERRY_STATE_DIR/runs/<run-id>/journal.jsonl`
 *   2. `$XDG_STATE_HOME/dokku-ferry/runs/<run-id>/journal.jsonl`
 *   3. `~/.local/state/dokku-ferry/runs/<run-id>/journal.jsonl`
 * It is controller state, not project content (XDG "state"): outside the working
 * tree, so it is never committed by accident; CI sets FERRY_STATE_DIR to keep it
 * as an artefact. Directories are 0700 and files 0600.
 *
 * Every record is written with one `write` and `fsync`ed before the call returns,
 * so a crash loses at most the record being written; a torn last line is ignored
 * on read. Records pass through {@link redactJson}: no secret is ever written.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { StopError } from '../errors.js';
import type { Json, StepOutputs } from '../tasks/types.js';
import { journalIdFor } from '../util/run-id.js';
import { redactJson } from './redact.js';

/**
 * Outputs a step hands to later steps (manifest, archive path, checksum, bytes).
 * The journal stores them redacted, so a resumed run sees `***` where a secret
 * was: outputs must not carry secrets a later step needs (re-read those on the host).
 */
export type { StepOutputs };

/** Journal format version, in every `run-started` record. */
export const JOURNAL_VERSION = 1;

/** The first record of a run. */
export interface RunStarted {
  type: 'run-started';
  v: typeof JOURNAL_VERSION;
  at: string;
  runId: string;
  /** `migrate`, `backup`, `restore`, `drill`. */
  command: string;
  playbook: { path: string; hash: string };
  inventory: { path: string; hash: string };
  /** Role → inventory host (`source: old`, `target: new`). */
  bindings: Record<string, string>;
  /** The user's argv after `ferry` (for the resume command). */
  argv: string[];
  /** Step ids in plan order. */
  steps: string[];
  /** The first run of the chain this one resumes, if any (its id names the host folders). */
  resumes?: string;
}

/** Everything after `run-started`. */
export type JournalEvent =
  | { type: 'step-started'; step: string; host: string; title: string; attempt: number }
  | {
      type: 'step-finished';
      step: string;
      host: string;
      durationMs: number;
      outputs: StepOutputs;
      bytes?: number;
      /** The run in which the step really ran (differs from this run when replayed on resume). */
      doneIn: string;
    }
  | { type: 'step-skipped'; step: string; host: string; reason: string }
  | {
      type: 'step-failed';
      step: string;
      host: string;
      durationMs: number;
      message: string;
      command?: string;
      code?: number | null;
      stderrTail?: string;
      /** True when the step will be tried again (retry). */
      willRetry?: boolean;
    }
  | { type: 'host-state'; host: string; note: string; step?: string }
  /**
   * A failure inside the playbook's undo range: these steps are being undone.
   * What they did no longer holds, so a resumed run starts again at `from`.
   */
  | { type: 'undo-started'; from: string; steps: string[] }
  | {
      type: 'step-undone';
      step: string;
      host: string;
      ok: boolean;
      durationMs: number;
      message?: string;
    }
  | { type: 'warning'; message: string; step?: string; host?: string }
  | { type: 'run-finished'; status: RunStatus; durationMs: number };

/** How a run ended. */
export type RunStatus = 'ok' | 'failed' | 'interrupted';

/** A record as stored: an event plus its timestamp, or the run start. */
export type JournalRecord = RunStarted | (JournalEvent & { at: string });

/** The runs directory for this environment (see the module comment). */
export function runsDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  if (env.FERRY_STATE_DIR) return join(env.FERRY_STATE_DIR, 'runs');
  const state = env.XDG_STATE_HOME || join(home, '.local', 'state');
  return join(state, 'dokku-ferry', 'runs');
}

/** `sha256:<hex>` of a file's text, for the playbook and inventory hashes. */
export function hashText(text: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** A sortable, readable run id: `20261123T224300Z-migrate-3fa9`. */
export function newRunId(command: string, now: Date = new Date()): string {
  return journalIdFor(now, command);
}

/** What {@link Journal.create} needs to start a run. */
export interface JournalStart {
  command: string;
  playbook: { path: string; hash: string };
  inventory: { path: string; hash: string };
  bindings: Record<string, string>;
  argv: string[];
  steps: string[];
  resumes?: string;
  /** Runs directory; default {@link runsDir}(). */
  dir?: string;
  now?: () => Date;
}

/** An open journal of one run. Writes are synchronous and fsync'd. */
export class Journal {
  readonly runId: string;
  readonly file: string;
  readonly start: RunStarted;
  private fd: number | undefined;
  private readonly now: () => Date;

  private constructor(runId: string, file: string, fd: number, start: RunStarted, now: () => Date) {
    this.runId = runId;
    this.file = file;
    this.fd = fd;
    this.start = start;
    this.now = now;
  }

  /** Creates the run's directory and journal and writes `run-started`. */
  static create(opts: JournalStart): Journal {
    const now = opts.now ?? (() => new Date());
    const dir = opts.dir ?? runsDir();
    const runId = newRunId(opts.command, now());
    const runDir = join(dir, runId);
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const file = join(runDir, 'journal.jsonl');
    const fd = openSync(file, 'ax', 0o600);
    syncDir(runDir);
    syncDir(dir);
    const start: RunStarted = {
      type: 'run-started',
      v: JOURNAL_VERSION,
      at: now().toISOString(),
      runId,
      command: opts.command,
      playbook: opts.playbook,
      inventory: opts.inventory,
      bindings: { ...opts.bindings },
      argv: redactJson(opts.argv) as string[],
      steps: [...opts.steps],
    };
    if (opts.resumes) start.resumes = opts.resumes;
    const journal = new Journal(runId, file, fd, start, now);
    journal.write(start);
    return journal;
  }

  /** Appends one event (redacted, timestamped, fsync'd). */
  append(event: JournalEvent): void {
    const clean = redactJson(event as unknown as Json) as { [key: string]: Json };
    const record = { ...clean, at: this.now().toISOString() };
    this.write(record as JournalRecord);
  }

  /** Closes the file; later appends fail. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private write(record: JournalRecord): void {
    if (this.fd === undefined) throw new Error(`journal ${this.file} is closed`);
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
    fsyncSync(this.fd);
  }
}

function syncDir(dir: string): void {
  // A new file's directory entry is durable only once its directory is synced.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the file itself is still synced.
  }
}

/** Reads a journal file; a torn (partial) last line from a crash is ignored. */
export function readJournal(file: string): JournalRecord[] {
  const text = readFileSync(file, 'utf8');
  const records: JournalRecord[] = [];
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (row.trim() === '') continue;
    try {
      records.push(JSON.parse(row) as JournalRecord);
    } catch (e) {
      if (i >= rows.length - 2) break;
      throw new StopError(`journal ${file} is damaged at line ${i + 1}: ${(e as Error).message}`, {
        hint: 'Move that run directory away to start afresh.',
      });
    }
  }
  return records;
}

/** A finished step as recorded, ready to be replayed. */
export interface FinishedStep {
  step: string;
  host: string;
  outputs: StepOutputs;
  bytes?: number;
  durationMs: number;
  doneIn: string;
}

/** The state of one run, folded from its journal. */
export interface RunState {
  start: RunStarted;
  file: string;
  records: JournalRecord[];
  finished: Map<string, FinishedStep>;
  /** The last step that failed for good, if the run stopped on one. */
  failed?: Extract<JournalEvent, { type: 'step-failed' }>;
  /** The last step started and neither finished nor failed (a crash or interrupt). */
  inProgress?: string;
  hostStates: Record<string, string>;
  status: RunStatus | 'unfinished';
  /** Set when the run undid its undo range after a failure: resume starts again at this step. */
  undoneFrom?: string;
}

/** Folds a journal's records into a {@link RunState}. */
export function foldJournal(file: string, records: JournalRecord[]): RunState {
  const start = records[0];
  if (start?.type !== 'run-started') {
    throw new StopError(`journal ${file} does not start with run-started`);
  }
  const state: RunState = {
    start,
    file,
    records,
    finished: new Map(),
    hostStates: {},
    status: 'unfinished',
  };
  for (const r of records.slice(1)) {
    switch (r.type) {
      case 'step-started':
        state.inProgress = r.step;
        break;
      case 'step-finished':
        state.finished.set(r.step, {
          step: r.step,
          host: r.host,
          outputs: r.outputs,
          ...(r.bytes === undefined ? {} : { bytes: r.bytes }),
          durationMs: r.durationMs,
          doneIn: r.doneIn,
        });
        if (state.inProgress === r.step) state.inProgress = undefined;
        break;
      case 'step-skipped':
        if (state.inProgress === r.step) state.inProgress = undefined;
        break;
      case 'step-failed':
        if (!r.willRetry) {
          state.failed = r;
          if (state.inProgress === r.step) state.inProgress = undefined;
        }
        break;
      case 'host-state':
        state.hostStates[r.host] = r.note;
        break;
      case 'undo-started': {
        const at = start.steps.indexOf(r.from);
        for (const id of start.steps.slice(Math.max(at, 0))) state.finished.delete(id);
        state.undoneFrom = r.from;
        break;
      }
      case 'run-finished':
        state.status = r.status;
        break;
      default:
        break;
    }
  }
  return state;
}

/** Every run in `dir`, oldest first (by start time). Unreadable runs are skipped. */
export function listRuns(dir: string = runsDir()): RunState[] {
  if (!existsSync(dir)) return [];
  const runs: RunState[] = [];
  for (const name of readdirSync(dir)) {
    const file = join(dir, name, 'journal.jsonl');
    if (!existsSync(file)) continue;
    try {
      runs.push(foldJournal(file, readJournal(file)));
    } catch {
      // A damaged or foreign directory must not block other runs.
    }
  }
  return runs.sort((a, b) =>
    a.start.at === b.start.at
      ? a.start.runId < b.start.runId
        ? -1
        : 1
      : a.start.at < b.start.at
        ? -1
        : 1,
  );
}

function sameBindings(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/**
 * The run `--resume` continues: the latest run of the same command with the same
 * role → host bindings, if it did not finish successfully. Undefined when the
 * latest such run succeeded or there is none.
 */
export function findResumable(
  command: string,
  bindings: Record<string, string>,
  dir: string = runsDir(),
): RunState | undefined {
  const same = listRuns(dir).filter(
    (r) => r.start.command === command && sameBindings(r.start.bindings, bindings),
  );
  const last = same[same.length - 1];
  return last && last.status !== 'ok' ? last : undefined;
}

/**
 * Refuses to resume when the playbook or inventory changed since the run: the
 * recorded outputs would not match what the new files would plan.
 */
export function assertResumable(
  run: RunState,
  current: { playbookHash: string; inventoryHash: string },
): void {
  const changed: string[] = [];
  if (run.start.playbook.hash !== current.playbookHash) {
    changed.push(
      `playbook ${run.start.playbook.path} (${short(run.start.playbook.hash)} then, ${short(current.playbookHash)} now)`,
    );
  }
  if (run.start.inventory.hash !== current.inventoryHash) {
    changed.push(
      `inventory ${run.start.inventory.path} (${short(run.start.inventory.hash)} then, ${short(current.inventoryHash)} now)`,
    );
  }
  if (changed.length > 0) {
    throw new StopError(
      `cannot resume run ${run.start.runId}: the ${changed.join(' and the ')} changed since it started`,
      {
        hint: `Restore the files as they were to resume, or run without --resume to start afresh (journal: ${run.file}).`,
      },
    );
  }
}

/**
 * {@link findResumable} plus {@link assertResumable}: the run to continue, or a
 * StopError that says why there is none.
 */
export function resumeRun(opts: {
  command: string;
  bindings: Record<string, string>;
  playbookHash: string;
  inventoryHash: string;
  dir?: string;
}): RunState {
  const run = findResumable(opts.command, opts.bindings, opts.dir);
  if (!run) {
    const hosts = Object.entries(opts.bindings)
      .map(([role, host]) => `${role}=${host}`)
      .join(' ');
    throw new StopError(`nothing to resume: no unfinished \`${opts.command}\` run for ${hosts}`, {
      hint: `Run it without --resume. Journals are kept in ${opts.dir ?? runsDir()}.`,
    });
  }
  assertResumable(run, opts);
  return run;
}

function short(hash: string): string {
  return hash.replace(/^sha256:/, '').slice(0, 12);
}
