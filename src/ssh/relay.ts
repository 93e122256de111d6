/**
 * Streams between hosts through the controller: stdout of a command on one
 * host into stdin of a command on another, with backpressure end to end (ssh2
 * windows on both connections), so memory stays flat whatever the size.
 */
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExitCode, FerryError } from '../errors.js';
import { Tail } from '../util/tail.js';
import type { ExitStatus, Remote, RemoteProcess } from './remote.js';
import type { Command } from './shell.js';

/** Options of {@link relay} and `direct`. */
export interface TransferOptions {
  /** Bytes moved so far; called at most every 250 ms, and once at the end. */
  onProgress?: (bytes: number) => void;
  /** The playbook step this runs for; carried on errors. */
  step?: string;
  /** Aborts the transfer (both commands are stopped). */
  signal?: AbortSignal;
}

/** How a transfer ended. */
export interface TransferResult {
  route: 'relay' | 'direct';
  /** Bytes that went from the source command into the target command. */
  bytes: number;
  seconds: number;
  from: ExitStatus;
  to: ExitStatus;
  /** What the target command printed on stdout (its last 64 KB), e.g. a checksum. */
  output: string;
}

/**
 * A line of a target's stderr that ends a transfer: nothing more can be
 * written. GNU tar may report only the short write of the block the disk
 * could not hold, and goes on reading the whole stream after it.
 */
export const DISK_FULL = /No space left on device|Disk quota exceeded|Wrote only \d+ of \d+ bytes/;

/** Calls `fn` with the first line of `stream` that matches `re`, once. */
export function onFirstLine(stream: Readable, re: RegExp, fn: (line: string) => void): void {
  let pending = '';
  let seen = false;
  const watch = (b: Buffer): void => {
    pending += b.toString('latin1');
    const lines = pending.split(/[\r\n]/);
    pending = lines.pop() ?? '';
    // a line with no end yet is kept to 4 KB: what matters is at its start
    if (pending.length > 4096) pending = pending.slice(0, 4096);
    const hit = lines.find((l) => re.test(l));
    if (hit !== undefined && !seen) {
      seen = true;
      stream.off('data', watch);
      fn(hit.trim().slice(0, 240));
    }
  };
  stream.on('data', watch);
}

/** Calls `fn` with the latest value at most every `ms`; `flush` sends the last one. */
export function throttle(
  fn: (n: number) => void,
  ms: number,
): { push(n: number): void; flush(n: number): void } {
  let last = 0;
  return {
    push(n) {
      const now = Date.now();
      if (now - last >= ms) {
        last = now;
        fn(n);
      }
    },
    flush(n) {
      fn(n);
    },
  };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The error a transfer stopped by the user (or its signal) ends with. */
export function interruptedError(what: string): FerryError {
  return new FerryError(`${what} was interrupted`, {
    exitCode: ExitCode.interrupted,
    hint: 'Run the same command with --resume to continue.',
  });
}

/**
 * Pipes `fromCmd`'s stdout on `from` into `toCmd`'s stdin on `to`, through
 * this process. The target's stdin is closed only once the source command
 * has exited 0, so a failed or interrupted source never hands the target a
 * truncated stream as if it were complete: the target is stopped instead.
 * A failure on either side stops the other; the first failure is thrown.
 */
export async function relay(
  from: Remote,
  fromCmd: Command,
  to: Remote,
  toCmd: Command,
  opts: TransferOptions = {},
): Promise<TransferResult> {
  if (opts.signal?.aborted) throw interruptedError('the transfer');
  const started = Date.now();
  const step = opts.step === undefined ? {} : { step: opts.step };
  const dst = await to.spawn(toCmd, step);
  const output = new Tail().collect(dst.stdout);
  let src: RemoteProcess;
  try {
    src = await from.spawn(fromCmd, { ...step, stdin: '' });
  } catch (e) {
    await dst.kill();
    await settle(dst.done);
    throw e;
  }
  let bytes = 0;
  const progress = throttle((n) => opts.onProgress?.(n), 250);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      progress.push(bytes);
      cb(null, chunk);
    },
  });

  // Whichever side fails first is the story; the other side's failure is its consequence.
  let first: unknown;
  let interrupted = false;
  const stopBoth = (): Promise<unknown> => Promise.all([src.kill(), dst.kill()]);
  const onAbort = (): void => {
    interrupted = true;
    void stopBoth();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // The target's tar reads on to the end of the stream after its disk is full: stop at once.
  onFirstLine(dst.stderr, DISK_FULL, (line) => {
    first ??= new FerryError(
      `on ${to.host.name}, the copy was stopped at its first failed write: ${line}`,
    );
    void stopBoth();
  });
  const srcDone = settle(src.done);
  const dstDone = settle(dst.done);
  void srcDone.then((r) => {
    if (!r.ok) {
      first ??= r.error;
      void dst.kill();
    }
  });
  void dstDone.then((r) => {
    if (!r.ok) {
      first ??= r.error;
      void src.kill();
    } else if (!src.stdout.readableEnded) {
      // The target ended before reading everything: nothing more can be delivered.
      void src.kill();
    }
  });
  try {
    const piped = await settle(pipeline(src.stdout, counter, dst.stdin, { end: false }));
    const s = await srcDone;
    if (piped.ok && s.ok && !interrupted) dst.stdin.end();
    else await stopBoth();
    const d = await dstDone;
    progress.flush(bytes);
    if (interrupted) throw interruptedError('the transfer');
    if (first !== undefined) throw first;
    if (!s.ok) throw s.error;
    if (!d.ok) throw d.error;
    if (!piped.ok) throw piped.error;
    return {
      route: 'relay',
      bytes,
      seconds: (Date.now() - started) / 1000,
      from: s.value,
      to: d.value,
      output: output.text(),
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
