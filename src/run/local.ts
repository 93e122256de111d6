/**
 * Processes run here, on the controller (git on the user's clones, the local
 * end of a stream), through zx: one process runner with a ProcessOutput
 * (exit code, signal, output), under strict bash like every remote command.
 * A failure is a LocalError naming the command, never a "remote" error from a
 * host that does not exist.
 */
import { type ProcessPromise, $ as zx } from 'zx/core';
import { LocalError } from '../errors.js';
import type { Command } from '../ssh/shell.js';
import type { CommandResult } from '../tasks/types.js';
import { boundedChunks, withoutProgressLines } from '../util/tail.js';

/** Options of {@link runLocal}. */
export interface LocalOptions {
  stdin?: string | Buffer;
  /** Exit codes that count as success (default [0]). */
  allowCodes?: number[];
  /** Kills the process when aborted. */
  signal?: AbortSignal;
}

// git's ssh must never sit waiting for a password or a host key answer.
const ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0' };

function strictScript(cmd: Command): string {
  return `set -euo pipefail\n${cmd.render()}`;
}

/** Runs `cmd` here to its end; rejects with a LocalError unless its exit code is allowed. */
export async function runLocal(cmd: Command, opts: LocalOptions = {}): Promise<CommandResult> {
  const out = await zx({
    quiet: true,
    nothrow: true,
    env: ENV,
    // Without input, stdin is closed: nothing may wait for an answer.
    ...(opts.stdin === undefined ? { stdio: ['ignore', 'pipe', 'pipe'] } : { input: opts.stdin }),
    ...(opts.signal ? { signal: opts.signal } : {}),
  })`bash -c ${strictScript(cmd)}`;
  const code = out.exitCode;
  if (code !== null && (opts.allowCodes ?? [0]).includes(code)) {
    return { stdout: out.stdout, stderr: out.stderr, code };
  }
  throw new LocalError({
    command: cmd.toString(),
    code,
    signal: out.signal,
    stderr: withoutProgressLines(out.stderr),
  });
}

/** A process here whose stdin and stdout the caller pipes (the local end of a stream). */
export interface LocalProcess {
  stdin: NodeJS.WritableStream;
  stdout: NodeJS.ReadableStream;
  /** Resolves with how it ended; a non-zero exit is a LocalError. */
  done: Promise<{ code: number | null; signal: string | null }>;
  kill(): void;
}

/** Starts `cmd` here with piped stdio; output beyond a small tail is never held in memory. */
export function spawnLocal(cmd: Command): LocalProcess {
  const p: ProcessPromise = zx({
    quiet: true,
    nothrow: true,
    env: ENV,
    stdio: ['pipe', 'pipe', 'pipe'],
    store: { stdout: boundedChunks(), stderr: boundedChunks(), stdall: boundedChunks() },
  })`bash -c ${strictScript(cmd)}`;
  const done = (async (): Promise<{ code: number | null; signal: string | null }> => {
    const out = await p;
    if (out.exitCode === 0) return { code: 0, signal: null };
    throw new LocalError({
      command: cmd.toString(),
      code: out.exitCode,
      signal: out.signal,
      stderr: withoutProgressLines(out.stderr),
    });
  })();
  done.catch(() => {});
  // A command that exits before reading its input must not crash us with EPIPE.
  p.stdin.on('error', () => {});
  return {
    stdin: p.stdin,
    stdout: p.stdout,
    done,
    kill: () => {
      try {
        void p.kill().catch(() => {});
      } catch {
        // zx throws when the process has already ended ("Too late to kill the process"):
        // nothing to stop, and that must not hide why the stream failed.
      }
    },
  };
}
