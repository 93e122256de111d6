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
  /** A fleet run (`ferry backup --all`) in which some hosts failed and the others finished. */
  partial: 3,
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

/** A remote command that failed: where, for which step, what ran, how it ended, what it said. */
export class RemoteError extends FerryError {
  readonly host: string;
  readonly command: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The playbook step it ran for, when there is one. */
  readonly step: string | undefined;
  constructor(fields: {
    host: string;
    command: string;
    code: number | null;
    signal?: string | null;
    stdout: string;
    stderr: string;
    step?: string | undefined;
    hint?: string;
  }) {
    const how =
      fields.code === null
        ? `was killed by ${fields.signal ?? 'a signal'}`
        : `exited ${fields.code}${exitMeaning(fields.code)}`;
    const tail = lastLines(fields.stderr || fields.stdout, 8);
    const cause = knownCause(fields.stderr || fields.stdout);
    const ran = `\`${firstLineOf(fields.command)}\` ${how}`;
    super(
      `on ${fields.host}: ${cause ? `${cause} (${ran})` : ran}${tail ? `\n${indent(tail, '    │ ')}` : ''}`,
      fields.hint ? { hint: fields.hint } : {},
    );
    this.host = fields.host;
    this.command = fields.command;
    this.code = fields.code;
    this.signal = fields.signal ?? null;
    this.stdout = fields.stdout;
    this.stderr = fields.stderr;
    this.step = fields.step;
  }
}

/**
 * A command run here, on the controller (git on the user's clones, a local end
 * of a stream), that failed. Not a RemoteError: no host was involved.
 */
export class LocalError extends FerryError {
  readonly command: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderr: string;
  constructor(fields: {
    command: string;
    code: number | null;
    signal?: string | null;
    stderr: string;
    hint?: string;
  }) {
    const how =
      fields.code === null
        ? `was killed by ${fields.signal ?? 'a signal'}`
        : `exited ${fields.code}${exitMeaning(fields.code)}`;
    const tail = lastLines(fields.stderr, 8);
    const cause = knownCause(fields.stderr);
    const ran = `\`${firstLineOf(fields.command)}\` ${how}`;
    super(
      `here: ${cause ? `${cause} (${ran})` : ran}${tail ? `\n${indent(tail, '    │ ')}` : ''}`,
      fields.hint ? { hint: fields.hint } : {},
    );
    this.command = fields.command;
    this.code = fields.code;
    this.signal = fields.signal ?? null;
    this.stderr = fields.stderr;
  }
}

/**
 * Errors of the system a command ran into, which say more than the command
 * that met them: the message leads with the first such line of its output.
 */
const CAUSES =
  /No space left on device|Disk quota exceeded|Wrote only \d+ of \d+ bytes|Read-only file system|Input\/output error|Cannot allocate memory|Too many open files/;

/** The first line of `output` naming a cause from {@link CAUSES}, trimmed; else undefined. */
export function knownCause(output: string): string | undefined {
  const line = output.split('\n').find((l) => CAUSES.test(l));
  return line === undefined ? undefined : line.trim().slice(0, 240);
}

/** A command's first line, with `…` when more follow (a whole script is shown in the report's "ran:"). */
function firstLineOf(command: string): string {
  const lines = command.split('\n');
  return lines.length > 1 ? `${lines[0]} …` : command;
}

/** What an exit code usually means, for the few a shell gives itself. */
function exitMeaning(code: number): string {
  if (code === 127) return ' (command not found)';
  if (code === 126) return ' (not executable)';
  if (code > 128 && code < 160) return ` (killed by signal ${code - 128})`;
  return '';
}

/** The host key a server presented, as messages show it. */
export interface PresentedKey {
  type: string;
  fingerprint: string;
}

/** A host key that did not check out: unknown (not accepted) or changed. */
export class HostKeyError extends FerryError {
  readonly host: string;
  readonly kind: 'unknown' | 'mismatch';
  readonly presented: PresentedKey;
  readonly expected: string | undefined;
  constructor(fields: {
    host: { name: string; address: string; port: number; knownHosts?: string | undefined };
    kind: 'unknown' | 'mismatch';
    presented: PresentedKey;
    expected?: string | undefined;
    where?: string | undefined;
    otherTypes?: string[];
  }) {
    const { host, kind, presented } = fields;
    const at = `${host.name} (${host.address}:${host.port})`;
    if (kind === 'mismatch') {
      super(
        `host key MISMATCH for ${at}: possible man-in-the-middle attack, or the host was reinstalled.\n` +
          `    expected ${fields.expected} (${fields.where ?? 'on file'})\n` +
          `    presented ${presented.fingerprint} (${presented.type})`,
        {
          hint: `Do not go on unless you know why the key changed. If it did change legitimately, verify the new fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_${presented.type.replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub) and update ${fields.where ?? 'the inventory or known_hosts'}.`,
        },
      );
    } else {
      const others = fields.otherTypes?.length
        ? `\n    (keys of other types are on file for it: ${fields.otherTypes.join(', ')})`
        : '';
      super(
        `host key of ${at} is unknown: ${presented.fingerprint} (${presented.type}); refusing to connect${others}`,
        {
          hint: `Check that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then either run \`ferry check ${host.name} --accept-new-host-keys\` (appends it to ${host.knownHosts ?? '~/.ssh/known_hosts'}) or set hosts.${host.name}.host_key: ${presented.fingerprint} in the inventory.`,
        },
      );
    }
    this.host = host.name;
    this.kind = kind;
    this.presented = presented;
    this.expected = fields.expected;
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
