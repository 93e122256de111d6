/**
 * One playbook on many hosts at once (`ferry backup --all`, or a group of
 * the inventory): at most `parallel` hosts at a time, each its own run (its
 * journal, its SSH connections, its `--resume`), a host's failure never
 * stopping the others, then one report of them all and one exit code that
 * says whether every host, some hosts or none finished.
 *
 * The view is listr2's, one line per host showing the step it is on and,
 * under it, the step's last line (a copy's bytes, rate and ETA): a live
 * tree on a terminal, plain timestamped lines in CI and pipes. Each host's
 * own step tree stays silent; an observer feeds the host's line instead.
 */
import { writeFile } from 'node:fs/promises';
import {
  Listr,
  type ListrBaseClassOptions,
  ListrLogger,
  type ListrTask,
  PRESET_TIMESTAMP,
  ProcessOutput,
} from 'listr2';
import { ExitCode, FerryError } from '../errors.js';
import { nativeCryptoAvailable, nativeCryptoHint } from '../ssh/native.js';
import { formatDuration } from '../util/format.js';
import { executePlaybook, type RunIo, type RunRequest } from './execute.js';
import {
  type FleetHost,
  type FleetResult,
  fleetExitCode,
  formatFleetFailures,
  formatFleetSummary,
  oneLine,
  toFleetJson,
  toFleetJunitXml,
} from './fleet-report.js';
import { redact } from './redact.js';
import type { RendererChoice, RunObserver } from './runner.js';

/** What {@link runFleet} runs: one request per host, and how to show and report them. */
export interface FleetRequest {
  /** `backup`. */
  command: string;
  /** How the hosts were named: `--all` or a group's name (for the report). */
  label: string;
  /** One run per host, in the order they are shown and started. */
  runs: { host: string; request: RunRequest }[];
  /** Hosts run at once (at least 1). */
  parallel: number;
  renderer: RendererChoice;
  json: boolean;
  junit?: string;
  /** Stream for the live view (default process.stderr). */
  stream?: NodeJS.WriteStream;
}

/** Seconds between progress lines of a host: often on a terminal, seldom in a log. */
function progressInterval(renderer: RendererChoice): number {
  return renderer === 'default' ? 0.25 : 15;
}

/** Runs every host's request, `parallel` at a time; writes one report; returns the exit code. */
export async function runFleet(req: FleetRequest, io: RunIo): Promise<number> {
  if (!nativeCryptoAvailable()) io.stderr.write(`warning: ${nativeCryptoHint()}\n`);
  const started = Date.now();
  const hosts = new Map<string, FleetHost>();
  // The first ^C: hosts not started yet are not started (the running ones abort on their own).
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  const live = req.renderer === 'default';

  const tasks = req.runs.map(
    ({ host, request }): ListrTask<unknown> => ({
      title: host,
      task: async (_ctx, wrapper) => {
        const at = Date.now();
        const base = { host, startedAt: new Date(at).toISOString() };
        if (interrupted) {
          hosts.set(host, {
            ...base,
            code: ExitCode.interrupted,
            durationMs: 0,
            error: { message: 'not started: the run was interrupted' },
          });
          wrapper.skip(`${host}: not started (interrupted)`);
          return;
        }
        // A line in CI stands alone: it names its host.
        const show = (line: string): void => {
          wrapper.output = live ? line : `${host}: ${line}`;
        };
        const observer: RunObserver = {
          step(e) {
            if (e.status === 'started') {
              const step = `${e.title} (${e.index + 1}/${e.total})`;
              wrapper.title = `${host}: ${step}`;
              // The simple renderer prints no title change: a line says where the host is.
              if (!live) show(step);
            } else if (e.status === 'failed') show(`${e.id} failed: ${e.reason ?? ''}`);
          },
          output(_step, line) {
            show(line);
          },
        };
        let outcome: FleetHost;
        try {
          const o = await executePlaybook(
            {
              ...request,
              renderer: 'silent',
              json: false,
              observer,
              progressInterval: progressInterval(req.renderer),
              nativeWarned: true,
            },
            io,
          );
          outcome = {
            ...base,
            code: o.code,
            durationMs: Date.now() - at,
            ...(o.report ? { report: o.report } : {}),
          };
        } catch (e) {
          // The run could not start (its inventory, its journal): this host only.
          outcome = {
            ...base,
            code: e instanceof FerryError ? e.exitCode : ExitCode.internal,
            durationMs: Date.now() - at,
            error: {
              message: redact(e instanceof Error ? e.message : String(e)),
              ...(e instanceof FerryError && e.hint ? { hint: redact(e.hint) } : {}),
            },
          };
        }
        hosts.set(host, outcome);
        const seconds = formatDuration(outcome.durationMs);
        if (outcome.code === ExitCode.ok) {
          wrapper.title = `${host}: done in ${seconds}`;
          return;
        }
        const failure = outcome.report?.result.failure;
        throw new Error(
          `${host}: FAILED in ${seconds}${failure ? ` at ${failure.stepId}: ${oneLine(failure.message)}` : outcome.error ? `: ${oneLine(outcome.error.message)}` : ''}`,
        );
      },
      rendererOptions: { outputBar: 1, persistentOutput: false },
    }),
  );

  const stream = req.stream ?? process.stderr;
  const logger = new ListrLogger({
    useIcons: true,
    processOutput: new ProcessOutput(stream, stream),
  });
  const opts: ListrBaseClassOptions<unknown, 'default', 'simple'> = {
    concurrent: Math.max(1, req.parallel),
    exitOnError: false,
    registerSignalListeners: false,
    renderer: 'default',
    rendererOptions: { logger, collapseSubtasks: false, showErrorMessage: true },
    fallbackRenderer: 'simple',
    fallbackRendererOptions: { logger, timestamp: PRESET_TIMESTAMP },
    fallbackRendererCondition: req.renderer !== 'default',
    silentRendererCondition: req.renderer === 'silent' || req.renderer === 'test',
    forceTTY: live,
  };
  try {
    await new Listr<unknown, 'default', 'simple'>(tasks, opts).run();
  } finally {
    process.removeListener('SIGINT', onSigint);
  }

  const result: FleetResult = {
    command: req.command,
    label: req.label,
    parallel: Math.max(1, req.parallel),
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    // Every host has an outcome: a task that threw set its own first.
    hosts: req.runs.map(({ host }) => hosts.get(host)!),
  };
  if (req.junit) await writeFile(req.junit, toFleetJunitXml(result));
  if (req.json) io.stdout.write(`${JSON.stringify(toFleetJson(result), null, 2)}\n`);
  else io.stdout.write(formatFleetSummary(result));
  const failures = formatFleetFailures(result);
  if (failures) io.stderr.write(failures);
  return fleetExitCode(result);
}
