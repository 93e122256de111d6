/**
 * Small process helpers for the lab: run a program (through zx, as the
 * product runs its own local processes), capture what it said, and turn a
 * failure into one readable error.
 */
import { $ as zx } from 'zx/core';
import { FerryError } from '../../src/errors.js';

/** How a finished process ended and what it printed. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Written to the process's stdin, which is then closed. */
  input?: string | Buffer;
  /** Replaces the environment (default: {@link CLEAN_ENV}). */
  env?: NodeJS.ProcessEnv;
  /** Working directory (default: this process's). */
  cwd?: string;
}

/** A lab problem the person running it can act on; the CLI prints only its message. */
export class LabError extends FerryError {}

/**
 * The environment given to everything the lab runs: the caller's own (ava's,
 * npm's) must not leak into the hosts.
 */
export const CLEAN_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
};

/** Runs `file args`, never throws for a non-zero exit: returns code and output. */
export async function run(
  file: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<ExecResult> {
  const out = await zx({
    quiet: true,
    nothrow: true,
    env: opts.env ?? CLEAN_ENV,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    // Without input, stdin is closed: nothing the lab runs may wait for an answer.
    ...(opts.input === undefined ? { stdio: ['ignore', 'pipe', 'pipe'] } : { input: opts.input }),
  })`exec ${file} ${args}`;
  if (out.exitCode === 127 && /(not found|No such file)/.test(out.stderr)) {
    throw new LabError(`${file}: command not found`, {
      hint: 'Install it, or run the lab as root so it installs its packages.',
    });
  }
  return {
    code: out.exitCode ?? (out.signal ? 128 : 1),
    stdout: out.stdout,
    stderr: out.stderr,
  };
}

/** Runs `file args` and throws a {@link LabError} with the tail of stderr when it fails. */
export async function must(
  file: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<string> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n    ');
    throw new LabError(
      `\`${[file, ...args].join(' ')}\` exited ${r.code}${said ? `:\n    ${said}` : ''}`,
    );
  }
  return r.stdout;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
