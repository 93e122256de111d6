/**
 * The end of a stream's text, kept in bounded memory: enough for an error
 * message, never a whole multi-gigabyte stream. The one tail collector for
 * remote commands, relays and processes run here.
 */

/** Default bytes kept: the last 64 KiB. */
export const TAIL_BYTES = 64 * 1024;

/** Keeps the last `limit` bytes pushed into it. */
export class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit = TAIL_BYTES) {}

  push(chunk: Buffer | string): void {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.chunks.push(b);
    this.size += b.length;
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.limit) {
      this.size -= this.chunks.shift()!.length;
    }
  }

  /** Reads `stream` to its end into this tail; returns the tail for chaining. */
  collect(stream: NodeJS.ReadableStream): this {
    stream.on('data', (b: Buffer | string) => this.push(b));
    return this;
  }

  /** The kept text (UTF-8), at most `limit` bytes. */
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * Drops progress lines (`<n> bytes …`, as `dd status=progress` and the
 * transfer's hasher print them) from a command's stderr as an error shows it:
 * hundreds of them would bury the line that says what failed.
 */
export function withoutProgressLines(text: string): string {
  const lines = text.split(/\r?\n|\r/);
  const kept = lines.filter((l) => !/^\d+ bytes(?:$| \(.*\) copied| copied)/.test(l));
  return kept.length === lines.length ? text : kept.join('\n');
}

/**
 * An array of chunks that keeps only the last `limit` bytes: what zx stores of
 * a local process's output, so a gigabyte piped through one is not also held
 * in memory (zx keeps every chunk it sees in its store).
 */
export function boundedChunks(limit = TAIL_BYTES): (string | Buffer)[] {
  const chunks: (string | Buffer)[] = [];
  let size = 0;
  chunks.push = (...items: (string | Buffer)[]): number => {
    for (const item of items) {
      Array.prototype.push.call(chunks, item);
      size += item.length;
    }
    while (chunks.length > 1 && size - chunks[0]!.length >= limit) {
      size -= (chunks.shift() as string | Buffer).length;
    }
    return chunks.length;
  };
  return chunks;
}
