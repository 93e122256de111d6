/** Bounded concurrency: a counting semaphore, a batched map that cancels at the first failure, a shared answer. */

/** A counting semaphore: channels on one SSH connection are limited by the server. */
export class Slots {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}

  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** Options of {@link inBatches}. */
export interface BatchOptions {
  /** Aborts the whole batch from outside (a ^C): no new item starts, running ones are told. */
  signal?: AbortSignal;
  /**
   * How long to wait, after the first failure, for the items still running to
   * end once told to stop (default 2000 ms). One that ignores its signal is
   * left behind after that: the caller must not hang on it.
   */
  settleMs?: number;
}

/**
 * Maps `items` through `fn`, at most `n` at a time, keeping their order. The
 * first failure cancels the rest: no worker starts another item, and the
 * signal each running item was given is aborted (their remote commands are
 * killed), so a failed step neither waits on a sibling that hangs nor leaves
 * one running that reopens a connection after the pool closed. The call
 * rejects with that first failure once the running items have ended, or
 * after `settleMs` at the latest.
 */
export async function inBatches<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
  opts: BatchOptions = {},
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  const cancel = new AbortController();
  const outer = opts.signal;
  const fromOutside = (): void => cancel.abort(outer?.reason);
  if (outer?.aborted) fromOutside();
  else outer?.addEventListener('abort', fromOutside, { once: true });
  let next = 0;
  let failed = false;
  let first: unknown;
  let onFailure: () => void = () => {};
  const failure = new Promise<void>((resolve) => {
    onFailure = resolve;
  });
  const worker = async (): Promise<void> => {
    while (!failed && !cancel.signal.aborted && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, cancel.signal);
      } catch (e) {
        if (!failed) {
          first = e;
          failed = true;
          cancel.abort(e);
          onFailure();
        }
      }
    }
  };
  try {
    const all = Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
    await Promise.race([all, failure]);
    if (failed) {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, opts.settleMs ?? 2000);
      });
      await Promise.race([all, bound]);
      clearTimeout(timer);
      throw first;
    }
    await all;
    // Stopped from outside before every item ran: there is no whole answer.
    if (next < items.length) throw outer?.reason ?? new Error('cancelled');
    return out;
  } finally {
    outer?.removeEventListener('abort', fromOutside);
  }
}

/**
 * `cache`'s answer for `key`, asked once: callers that come while the first
 * is still waiting share its promise (a map of results would let each of
 * them start its own). A rejection is not kept: the next caller asks again.
 */
export function once<K, V>(cache: Map<K, Promise<V>>, key: K, ask: () => Promise<V>): Promise<V> {
  const known = cache.get(key);
  if (known) return known;
  const p = ask();
  cache.set(key, p);
  p.catch(() => {
    if (cache.get(key) === p) cache.delete(key);
  });
  return p;
}
