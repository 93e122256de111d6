/**
 * argv to a command, and the only place that sets the exit code.
 * Commands are imported lazily so `ferry --help` stays instant.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ExitCode, FerryError, InputError, InternalError, UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const GLOBAL: Options = {
  inventory: { type: 'string', short: 'i' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const RUN: Options = {
  'dry-run': { type: 'boolean' },
  resume: { type: 'boolean' },
  force: { type: 'boolean' },
  playbook: { type: 'string', short: 'p' },
  'accept-new-host-keys': { type: 'boolean' },
  route: { type: 'string' },
  junit: { type: 'string' },
};

interface CommandSpec {
  usage: string;
  summary: string;
  help: string;
  options: Options;
  load: () => Promise<(ctx: CommandContext) => Promise<number>>;
}

/** What every command receives: parsed values, positionals, where to write. */
export interface CommandContext {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  /** The argv after `ferry`, as given (for the journal and the resume hint). */
  argv: string[];
  inventoryPath: string;
  json: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const COMMANDS: Record<string, CommandSpec> = {
  migrate: {
    usage: 'ferry migrate SOURCE TARGET [--dry-run] [--resume] [--force] [--route direct|relay]',
    summary: 'move every app, datastore, plugin and repo from SOURCE to TARGET',
    help: `Runs playbooks/migrate.yml with source=SOURCE and target=TARGET (inventory host names).
The source is only read, except for the archive it writes; an app stopped for the
cut-over is started again if the run fails.

  --dry-run      print the plan (every step and remote command) and change nothing
  --resume       continue the last interrupted run of the same command and hosts
  --force        allow a TARGET that already holds Dokku data (a safety archive of it is taken first)
  --route R      direct (TARGET pulls from SOURCE; default when they can reach each other) or relay
  --accept-new-host-keys
                 trust host keys not yet known (prints each fingerprint); off by default
  -p, --playbook FILE   use another playbook than playbooks/migrate.yml
  --junit FILE   also write a JUnit report (for CI)

Example:
  ferry migrate old new --dry-run
  ferry migrate old new`,
    options: RUN,
    load: async () => (await import('./commands/migrate.js')).migrate,
  },
  backup: {
    usage: 'ferry backup HOST [--fetch DIR]',
    summary: 'archive HOST (apps, config, datastores, plugins) with checksums',
    help: `Runs playbooks/backup.yml: quiet check, inventory, datastore exports, archive.
The archive is written mode 0600 in a root-only directory on HOST; the inventory's
backup.keep decides how many are kept.

  --fetch DIR    also stream the archive, exports and manifest to DIR here, checksummed
  --dry-run      print the plan and change nothing

Example:
  ferry backup old --fetch ./backups`,
    options: { ...RUN, fetch: { type: 'string' } },
    load: async () => (await import('./commands/backup.js')).backup,
  },
  restore: {
    usage: 'ferry restore ARCHIVE HOST [--force]',
    summary: 'put an archive (here, or HOST:PATH) onto HOST and bring everything up',
    help: `Runs playbooks/restore.yml. ARCHIVE is a path on this machine or HOST:PATH on a host.
The archive's checksum is verified before anything is extracted.

Example:
  ferry restore ./backups/old-2026-11-23T10-00-00Z new`,
    options: RUN,
    load: async () => (await import('./commands/restore.js')).restore,
  },
  drill: {
    usage: 'ferry drill HOST --to SCRATCH',
    summary: 'restore the latest backup of HOST onto SCRATCH, prove it works, report RTO/RPO',
    help: `Runs playbooks/drill.yml. SCRATCH is overwritten (it is a scratch host).

Example:
  ferry drill old --to scratch --junit drill.xml`,
    options: { ...RUN, to: { type: 'string' } },
    load: async () => (await import('./commands/drill.js')).drill,
  },
  plan: {
    usage: 'ferry plan PLAYBOOK ROLE=HOST... [--json]',
    summary: 'print every step and remote command a playbook would run; contacts no host',
    help: `PLAYBOOK is a name from playbooks/ (migrate, backup, restore, drill) or a file.
Each ROLE=HOST binds a role the playbook declares to an inventory host.

Example:
  ferry plan migrate source=old target=new
  ferry plan playbooks/migrate.yml source=old target=new --json`,
    options: {},
    load: async () => (await import('./commands/plan.js')).plan,
  },
  check: {
    usage: 'ferry check [HOST...] [--accept-new-host-keys]',
    summary: 'validate the inventory and playbooks, then reach every host and report',
    help: `Validates the inventory and every playbook, then connects to each host (or those
named) and prints: reachable, host key, Dokku version, datastore plugins, free disk
against the size of the Dokku directories, sudo, and ssh2's native crypto.
An unknown host key is refused with its fingerprint and how to pin it.

Example:
  ferry check -i inventory/lab.yml`,
    options: { 'accept-new-host-keys': { type: 'boolean' } },
    load: async () => (await import('./commands/check.js')).check,
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `ferry: move, back up and restore a whole Dokku server over SSH

Usage: ferry COMMAND [ARGS] [-i INVENTORY] [--json]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Options for every command:
  -i, --inventory FILE   inventory to read (default: inventory/hosts.yml)
  --json                 machine-readable output on stdout
  -h, --help             help for ferry or for one command (ferry migrate --help)

Environment:
  FERRY_STATE_DIR        where run journals go (default: ~/.local/state/dokku-ferry)
  FERRY_RENDERER=silent  no step tree on stderr (the report still prints)
  FERRY_TRACE=1          one stderr line per remote command: host, time, exit status

Exit codes: 0 done, 1 a step failed or a check refused, 2 bad input, 130 interrupted.
`;
}

function commandHelp(spec: CommandSpec): string {
  return `Usage: ${spec.usage}\n\n${spec.summary}.\n\n${spec.help}\n\nAlso: -i/--inventory FILE, --json, -h/--help (see \`ferry --help\`).\n`;
}

export async function main(
  argv: string[],
  io = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    io.stdout.write(mainHelp());
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (name === '--version' || name === '-V') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(
      await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    io.stdout.write(`${pkg.version}\n`);
    return ExitCode.ok;
  }
  const spec = COMMANDS[name];
  try {
    if (!spec) {
      const near = Object.keys(COMMANDS).find((c) => c.startsWith(name.slice(0, 2)));
      throw new UsageError(
        `unknown command "${name}"`,
        near
          ? `Did you mean \`ferry ${near}\`? Run \`ferry --help\` for the list.`
          : 'Run `ferry --help` for the list.',
      );
    }
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...GLOBAL, ...spec.options },
        allowPositionals: true,
        strict: true,
      });
    } catch (e) {
      throw new UsageError(
        (e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''),
        `Usage: ${spec.usage}`,
      );
    }
    const values = parsed.values as CommandContext['values'];
    if (values.help) {
      io.stdout.write(commandHelp(spec));
      return ExitCode.ok;
    }
    const run = await spec.load();
    return await run({
      values,
      positionals: parsed.positionals,
      argv,
      inventoryPath:
        typeof values.inventory === 'string' ? values.inventory : 'inventory/hosts.yml',
      json: values.json === true,
      stdout: io.stdout,
      stderr: io.stderr,
    });
  } catch (e) {
    return report(e, io.stderr);
  }
}

/** Turns any error into one message and an exit code; stack traces only for bugs. */
export function report(e: unknown, stderr: NodeJS.WritableStream): number {
  if (e instanceof FerryError) {
    const head = e instanceof InputError ? e.message : `error: ${e.message}`;
    stderr.write(`${head}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    if (e instanceof InternalError && e.cause instanceof Error) stderr.write(`${e.cause.stack}\n`);
    return e.exitCode;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  stderr.write(`internal error: ${err.message}\n${err.stack ?? ''}\n`);
  stderr.write(
    'hint: This is a bug in dokku-ferry. Please report it with the command you ran and this output.\n',
  );
  return ExitCode.internal;
}
