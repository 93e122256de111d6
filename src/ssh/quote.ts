/**
 * POSIX shell quoting, the one way any value reaches a remote shell.
 * Untrusted strings (app names, paths, output of a remote) pass through `quote`.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one argument for a POSIX shell; safe strings stay readable. */
export function quote(arg: string): string {
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each argument and joins them: an argv array as one command line. */
export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quote).join(' ');
}

/** A fragment of shell text that `sh` inserts as is (pipes, redirections). */
export class Raw {
  constructor(readonly text: string) {}
}

/** Marks trusted shell text (never built from untrusted input). */
export function raw(text: string): Raw {
  return new Raw(text);
}

type Interpolable = string | number | Raw | readonly (string | number)[];

/**
 * Tagged template: every interpolated value is quoted (arrays element by
 * element), except values wrapped in `raw()`.
 *   sh`tar -C ${dir} -cf - ${paths}`
 */
export function sh(strings: TemplateStringsArray, ...values: Interpolable[]): string {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return out;
}

function render(v: Interpolable): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return v.map((x) => quote(String(x))).join(' ');
  return quote(String(v));
}
