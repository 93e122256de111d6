/**
 * What every Dokku command's output has in common (reference §0.1, §0.2): the
 * ` !     ` warning prefix, `=====>`/`----->` headers, 7-space verbose lines, the
 * exit codes, and the ANSI cursor codes some `----->` lines start with.
 */
import { FerryError } from '../errors.js';

/** The result of one remote command, as any executor returns it. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
  /** Exit code; `null` when the process was killed by a signal. */
  code: number | null;
}

/** Dokku exit code for "app does not exist" (reference §0.2). */
export const EXIT_APP_MISSING = 20;

/** Output that did not have the shape the reference documents, or a failed command. */
export class DokkuOutputError extends FerryError {
  readonly command: string;
  readonly code: number | null;
  constructor(command: string, message: string, code: number | null = null, hint?: string) {
    super(`\`dokku ${command}\`: ${message}`, hint ? { hint } : {});
    this.command = command;
    this.code = code;
  }
}

// One leading space in the source (` !     `); tolerate none or two, as some wrappers re-indent.
const WARNING = /^ {0,2}! {5}/;
// `\e[1G\e[K` precedes some `----->` lines (git-hook, §5.4); other SGR codes may appear on a TTY.
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

/** Removes ANSI escape sequences. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** Lines of a command's output without the final empty line and without `\r`. */
export function lines(text: string): string[] {
  const all = stripAnsi(text).replace(/\r\n?/g, '\n').split('\n');
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  return all;
}

/** True for a ` !     ` line (warn, fail and `LogExclaim` all use it). */
export function isWarning(line: string): boolean {
  return WARNING.test(line);
}

/** The ` !     ` messages of a stream, prefix removed, in order. */
export function warnings(text: string): string[] {
  return lines(text)
    .filter(isWarning)
    .map((l) => l.replace(WARNING, '').trimEnd());
}

/** `=====> X` → `X`; `-----> X` → `X`; anything else → undefined. */
export function headerText(line: string): string | undefined {
  const m = /^(?:=====|-----)> (.*)$/.exec(stripAnsi(line));
  return m ? m[1]!.trimEnd() : undefined;
}

/** True for a `=====>` or `----->` line. */
export function isHeader(line: string): boolean {
  return headerText(line) !== undefined;
}

/**
 * Throws a {@link DokkuOutputError} carrying Dokku's own message when the command
 * failed. Exit 20 is named as a missing app.
 */
export function expectSuccess(command: string, out: CommandOutput): void {
  if (out.code === 0) return;
  // 0.38 merges stderr into stdout for build-captured commands (§0.5), so look in both.
  const said = [...warnings(out.stderr), ...warnings(out.stdout)];
  const text = said.length > 0 ? said.join('; ') : lastNonEmpty(out.stderr || out.stdout);
  const how = out.code === null ? 'was killed by a signal' : `exited ${out.code}`;
  const why = out.code === EXIT_APP_MISSING ? ' (the app does not exist)' : '';
  throw new DokkuOutputError(command, `${how}${why}${text ? `: ${text}` : ''}`, out.code);
}

function lastNonEmpty(text: string): string {
  const all = lines(text).filter((l) => l.trim() !== '');
  return (all[all.length - 1] ?? '').trim();
}

/**
 * The content lines of a list-like output: headers, ` !     ` lines and blank lines
 * dropped, trailing spaces removed. Used by commands whose quiet form prints bare names.
 */
export function bodyLines(stdout: string): string[] {
  return lines(stdout)
    .filter((l) => !isHeader(l) && !isWarning(l))
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '');
}

/** Parses JSON output, failing with the command's name rather than a bare SyntaxError. */
export function parseJson(command: string, stdout: string): unknown {
  const text = stripAnsi(stdout).trim();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DokkuOutputError(
      command,
      `expected JSON, got ${JSON.stringify(text.slice(0, 80))}`,
      0,
      'The Dokku version on this host may predate `--format json` for this command.',
    );
  }
}

/** Checks a JSON value is an array, else fails naming the command. */
export function expectArray(command: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new DokkuOutputError(command, 'expected a JSON array', 0);
  return value;
}

/**
 * A `<command> --format json` list of objects, after checking the command
 * succeeded (the error names it as `<command> --format json`).
 */
export function jsonObjects(command: string, out: CommandOutput): Record<string, unknown>[] {
  expectSuccess(`${command} --format json`, out);
  // An empty list may come as nothing at all: a trigger with nothing to say prints
  // nothing, and the Go side prints only what it got (storage:list before 0.38).
  if (stripAnsi(out.stdout).trim() === '') return [];
  return expectArray(command, parseJson(command, out.stdout)).map((v) => expectObject(command, v));
}

/** Checks a JSON value is a plain object, else fails naming the command. */
export function expectObject(command: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DokkuOutputError(command, 'expected a JSON object', 0);
  }
  return value as Record<string, unknown>;
}

/** Reads a string field of a JSON object ('' when absent or not a string). */
export function str(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  return typeof v === 'string' ? v : '';
}
