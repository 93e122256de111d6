/** Bounded concurrency: a counting semaphore and a batched map that stops at the first failure. */

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

/**
 * Maps `items` through `fn`, at most `n` at a time, keeping their order. The
 * first failure stops the batch: no worker starts another item after it, and
 * the call rejects only once every item already started has settled, so
 * nothing is left running behind the caller's back (a failed step must not
 * leave a worker that reopens a connection after the pool closed).
 */
export async function inBatches<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  let first: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (e) {
        if (!failed) first = e;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed) throw first;
  return out;
}
