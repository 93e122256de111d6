/**
 * The few error kinds dokku-ferry raises. Each carries what the user should do
 * next; `src/cli.ts` is the only place that turns them into output and an exit code.
 */

/** Exit codes, stable for scripts and CI. */
export const ExitCode = {
  ok: 0,
  /** A step failed on a host, or a check refused to go on. */
  failed: 1,
  /** Bad input: argv, inventory, playbook. Nothing was contacted or changed. */
  usage: 2,
  /** Interrupted by the user (SIGINT); the journal says where to resume. */
  interrupted: 130,
  /** A bug in dokku-ferry itself. */
  internal: 70,
} as const;

/** Base class: a message for the user, an optional next step, an exit code. */
export class FerryError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: number;
  constructor(
    message: string,
    options: { hint?: string; exitCode?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.failed;
  }
}

/** One problem in an input file, with its position (1-based) when known. */
export interface Diagnostic {
  file: string;
  line?: number;
  column?: number;
  message: string;
  hint?: string;
}

/** Formats a diagnostic as `file:line:col: message (hint)`, the shape editors link. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line === undefined ? d.file : `${d.file}:${d.line}:${d.column ?? 1}`;
  return d.hint ? `${where}: ${d.message}\n    ${d.hint}` : `${where}: ${d.message}`;
}

/** Bad input: every problem found, reported together; exit code 2. */
export class InputError extends FerryError {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[], hint?: string) {
    const summary =
      diagnostics.length === 1
        ? formatDiagnostic(diagnostics[0]!)
        : `${diagnostics.length} problems:\n${diagnostics.map(formatDiagnostic).join('\n')}`;
    super(summary, { exitCode: ExitCode.usage, ...(hint ? { hint } : {}) });
    this.diagnostics = diagnostics;
  }
}

/** A usage mistake on the command line; exit code 2. */
export class UsageError extends FerryError {
  constructor(message: string, hint = 'Run `ferry --help` for usage.') {
    super(message, { hint, exitCode: ExitCode.usage });
  }
}

/** A remote command that failed: where, what ran, how it ended, what it said. */
export class RemoteError extends FerryError {
  readonly host: string;
  readonly command: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(fields: {
    host: string;
    command: string;
    code: number | null;
    signal?: string | null;
    stdout: string;
    stderr: string;
    hint?: string;
  }) {
    const how =
      fields.code === null
        ? `was killed by ${fields.signal ?? 'a signal'}`
        : `exited ${fields.code}`;
    const tail = lastLines(fields.stderr || fields.stdout, 8);
    super(
      `on ${fields.host}: \`${fields.command}\` ${how}${tail ? `\n${indent(tail, '    │ ')}` : ''}`,
      fields.hint ? { hint: fields.hint } : {},
    );
    this.host = fields.host;
    this.command = fields.command;
    this.code = fields.code;
    this.signal = fields.signal ?? null;
    this.stdout = fields.stdout;
    this.stderr = fields.stderr;
  }
}

/** A deliberate stop: a check refused to go on, with the explanation of what to do. */
export class StopError extends FerryError {}

/** A bug: printed with where to report it. */
export class InternalError extends FerryError {
  constructor(message: string, cause?: unknown) {
    super(message, {
      exitCode: ExitCode.internal,
      hint: 'This is a bug in dokku-ferry. Please report it with the command you ran and this output.',
      cause,
    });
  }
}

export function lastLines(text: string, n: number): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  return lines.slice(-n).join('\n');
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}
