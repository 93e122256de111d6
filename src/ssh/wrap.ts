/**
 * What goes on the wire for a command: strict bash (`set -euo pipefail`),
 * under `sudo -n` when the host says so (never a password prompt), and,
 * for commands that may have to be stopped, a first stderr line announcing
 * the command's process group, which the reading side strips again.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { quote } from './quote.js';
import { $, type Command } from './shell.js';

/** The exact command line sent to the host for `cmd`. */
export function wrapCommand(cmd: Command, opts: { sudo: boolean; announcePgid?: boolean }): string {
  // The process group goes out first on stderr so the command can be killed for
  // real later (see Remote's `stop`); the line never reaches the caller.
  const announce = opts.announcePgid
    ? `read -r _ _ _ _ ferry_pgid _ </proc/$$/stat && printf '${PGID_MARKER}%s\\n' "$ferry_pgid" >&2 && unset ferry_pgid\n`
    : '';
  const script = quote(`set -euo pipefail\n${announce}${cmd.render()}`);
  return opts.sudo ? `sudo -n -- bash -c ${script}` : `bash -c ${script}`;
}

/** The command line that TERMs a process group (over its own channel). */
export function killGroupLine(pgid: number, sudo: boolean): string {
  const line = `set -euo pipefail\nkill -TERM -- -${Math.trunc(pgid)} 2>/dev/null || true`;
  return sudo ? `sudo -n -- bash -c ${quote(line)}` : `bash -c ${quote(line)}`;
}

/** Starts the stderr line that announces a command's process group (a unit separator, then a tag). */
const PGID_MARKER = '\\037ferry-pgid ';
const PGID_LINE = new RegExp(`${String.fromCharCode(0x1f)}ferry-pgid (\\d+)\n`);

/**
 * Strips the process-group line from the head of stderr and reports the number;
 * everything else passes through untouched.
 */
export class PgidFilter extends Transform {
  private head: Buffer | undefined = Buffer.alloc(0);
  constructor(private readonly onPgid: (pgid: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.head === undefined) {
      cb(null, chunk);
      return;
    }
    this.head = Buffer.concat([this.head, chunk]);
    const text = this.head.toString('latin1');
    const m = PGID_LINE.exec(text);
    if (m) {
      this.onPgid(Number(m[1]));
      const rest = Buffer.concat([
        this.head.subarray(0, m.index),
        this.head.subarray(m.index + m[0].length),
      ]);
      this.head = undefined;
      cb(null, rest.length ? rest : undefined);
      return;
    }
    if (this.head.length > 4096) {
      const all = this.head;
      this.head = undefined;
      cb(null, all);
      return;
    }
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (this.head?.length) this.push(this.head);
    this.head = undefined;
    cb();
  }
}

/** `cmd` under strict bash, as one command (the inner end of a pull pipeline). */
export function strict(cmd: Command): Command {
  return $`bash -c ${`set -euo pipefail\n${cmd.render()}`}`;
}
