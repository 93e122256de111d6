/**
 * argv to a command, and the only place that sets the exit code. Each command
 * declares exactly the flags it takes: a flag another command takes is a
 * usage error here, not silently ignored. Argv and the environment are read
 * here and nowhere else; commands get typed options. Commands are imported
 * lazily so `ferry --help` stays instant.
 */
import { resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  type BackupOptions,
  type CheckOptions,
  DEFAULT_FORWARD_TTL,
  DEFAULT_PARALLEL,
  type DrillOptions,
  domainSuffixOf,
  durationOf,
  type FlagValues,
  type ForwardOptions,
  forwardOf,
  type Io,
  type MigrateOptions,
  type PlanCommandOptions,
  parallelOf,
  type RestoreOptions,
  type RunOptions,
  recipientsOf,
  renamesOf,
  selectionOf,
} from './commands/options.js';
import { ExitCode, FerryError, InputError, InternalError, UsageError } from './errors.js';
import type { RendererChoice } from './run/runner.js';
import { trace } from './ssh/trace.js';
import type { Route } from './tasks/types.js';

type Flags = NonNullable<ParseArgsConfig['options']>;
type Values = FlagValues;

const GLOBAL: Flags = {
  inventory: { type: 'string', short: 'i' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/** Flags of every command that runs a playbook. */
const RUN: Flags = {
  'dry-run': { type: 'boolean' },
  resume: { type: 'boolean' },
  playbook: { type: 'string', short: 'p' },
  'accept-new-host-keys': { type: 'boolean' },
  junit: { type: 'string' },
};
const FORCE: Flags = { force: { type: 'boolean' } };
const ROUTE: Flags = { route: { type: 'string' } };
/** Part of a host: migrate, backup and restore. */
const SELECT: Flags = {
  app: { type: 'string', multiple: true },
  'exclude-app': { type: 'string', multiple: true },
  service: { type: 'string', multiple: true },
  'exclude-service': { type: 'string', multiple: true },
};

const SELECT_HELP = `  --app NAME     take only this app (repeat for more) and the services linked to it
  --service PLUGIN/NAME
                 take this service (repeat for more); with neither, every app and service
  --exclude-app NAME, --exclude-service PLUGIN/NAME
                 leave this one out (a linked service too; the app's link to it is removed)`;

/** How a selection is carried out, for the help of the commands that take one. */
const SELECT_NOTE = `A selection narrows the manifest (the plan shows it; the run lists each service taken
and why). The seed's paths hold every app, so the data still travels and is extracted
whole, checksummed as one; only the taken services are exported, and on the target what
was left out is removed with Dokku's own apps:destroy and PLUGIN:destroy before any
datastore starts or app is rebuilt. A target ends with exactly what was taken.`;

/** What `main` knows of the process beyond argv. */
export interface Context extends Io {
  env: NodeJS.ProcessEnv;
  /** Whether stderr is a terminal (the live step tree). */
  stderrIsTty: boolean;
}

interface CommandSpec {
  usage: string;
  summary: string;
  help: string;
  flags: Flags;
  /** Runs the command with typed options built from the parsed values. */
  run(values: Values, positionals: string[], argv: string[], ctx: Context): Promise<number>;
}

const RUN_HELP = `  --dry-run      print the plan (every step and remote command) and change nothing
  --resume       continue the last interrupted run of the same command and hosts
  --accept-new-host-keys
                 trust host keys not yet known (prints each fingerprint); off by default
  -p, --playbook FILE   use another playbook than the shipped one
  --junit FILE   also write a JUnit report (for CI)`;

const COMMANDS: Record<string, CommandSpec> = {
  migrate: {
    usage:
      'ferry migrate SOURCE TARGET [--live] [--forward [--forward-ttl D] | --leave-source-running] [--dry-run] [--resume] [--force] [--route direct|relay]',
    summary: 'move every app, datastore, plugin and repo from SOURCE to TARGET',
    help: `Runs playbooks/migrate.yml with source=SOURCE and target=TARGET (inventory host names).

The move is consistent: at the cut-over ferry freezes SOURCE's apps (dokku-maintenance's
page where it is installed, ps:stop otherwise), takes the final datastore exports and
stops the datastores, so every write SOURCE acknowledged is on TARGET. Downtime runs
from the first app frozen to the last app verified on TARGET, and is reported. If
anything fails before TARGET is verified, SOURCE is brought back exactly as it was.
Afterwards SOURCE stays frozen (cron held too); the report says how to bring it back
or retire it.

  --live         copy while SOURCE serves (rsync, repeatable, each pass shorter), then
                 freeze only for the last delta: downtime is that last pass and the
                 start on TARGET (playbooks/migrate-live.yml)
  --leave-source-running
                 bring SOURCE back once TARGET is verified (it then serves stale data)
  --forward      once TARGET is verified, SOURCE carries every connection to its ports 80
                 and 443 to TARGET (whatever its proxy), so clients whose DNS still points
                 at SOURCE write to TARGET; until \`ferry forward SOURCE --stop\` or the TTL
  --forward-ttl D
                 how long forwarding lasts: 90s, 30m, 12h, 2d (default 24h)
  --force        allow a TARGET that already holds Dokku data (a safety archive of it is taken first)
  --route R      direct (TARGET pulls from SOURCE; default when they can reach each other) or relay
${SELECT_HELP}
${RUN_HELP}

${SELECT_NOTE}

Example:
  ferry migrate old new --dry-run
  ferry migrate old new --live --forward --forward-ttl 6h
  ferry migrate old new --app notes --exclude-service redis/cache`,
    flags: {
      ...RUN,
      ...FORCE,
      ...ROUTE,
      ...SELECT,
      live: { type: 'boolean' },
      'leave-source-running': { type: 'boolean' },
      forward: { type: 'boolean' },
      'forward-ttl': { type: 'string' },
    },
    async run(values, positionals, argv, ctx) {
      const [source, target, ...extra] = positionals;
      if (!source || !target || extra.length > 0) {
        throw new UsageError(
          'ferry migrate takes two inventory host names: SOURCE TARGET',
          'Example: ferry migrate old new --dry-run',
        );
      }
      const opts: MigrateOptions = {
        ...runOptions(values, argv, ctx),
        source,
        target,
        force: values.force === true,
        ...routeOf(values),
        ...(values.live === true ? { live: true } : {}),
        ...(values['leave-source-running'] === true ? { leaveSourceRunning: true } : {}),
        ...forwardOf(values),
        ...selectionOf(values),
      };
      if (opts.forward && opts.leaveSourceRunning) {
        throw new UsageError(
          '--forward and --leave-source-running contradict each other',
          'Forwarding sends every request to TARGET; a source left running would answer none of them.',
        );
      }
      return (await import('./commands/migrate.js')).migrate(opts, ctx);
    },
  },
  backup: {
    usage:
      'ferry backup HOST|GROUP|--all [--fetch DIR [--encrypt RECIPIENT]...] [--parallel N] [--dry-run] [--resume]',
    summary: 'archive HOST (apps, config, datastores, plugins) with checksums; or every host',
    help: `Runs playbooks/backup.yml: quiet check, inventory, datastore exports, archive.
The archive is written mode 0600 in a root-only directory on HOST; the inventory's
backup.keep decides how many are kept.

  --fetch DIR    also stream the archive, exports and manifest to DIR here, checksummed
  --encrypt RECIPIENT
                 encrypt that copy on HOST (age) before it leaves: only ciphertext reaches DIR;
                 an age X25519 public key (age1...) or an ssh-ed25519 public key line,
                 or a file of them, one per line (~/.ssh/id_ed25519.pub, as age -R reads);
                 repeat for more recipients (any one decrypts); replaces backup.encrypt
  --all          back up every host of the inventory (a fleet)
  GROUP          a group of an Ansible inventory instead of HOST: back up its hosts
  --parallel N   hosts backed up at once in a fleet (default ${DEFAULT_PARALLEL})
${SELECT_HELP}
${RUN_HELP}

With a selection the archive still holds the whole tree (one checksum), but only the
taken services are exported and its manifest records what was left out: a restore or
drill of it brings up only what was taken.

A fleet runs each host as its own run (its journal; resume a failed one with the
command the report gives). One host's failure does not stop the others; the report
lists every host and the exit code says how many finished: 0 all, 3 some, 1 none.
Progress: a line per host (its step, bytes, rate, ETA) on a terminal; timestamped
lines naming the host in CI.

Example:
  ferry backup old --fetch ./backups
  ferry backup old --fetch ./backups --encrypt age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  ferry backup --all --parallel 2 --junit backups.xml`,
    flags: {
      ...RUN,
      fetch: { type: 'string' },
      encrypt: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      parallel: { type: 'string' },
      ...SELECT,
    },
    async run(values, positionals, argv, ctx) {
      const [host, ...extra] = positionals;
      const all = values.all === true;
      if ((!host && !all) || (host && all) || extra.length > 0) {
        throw new UsageError(
          'ferry backup takes one inventory host name (or a group), or --all',
          'Example: ferry backup old --fetch ./backups, or ferry backup --all',
        );
      }
      const encrypt = recipientsOf(values.encrypt);
      if (encrypt && typeof values.fetch !== 'string') {
        throw new UsageError(
          '--encrypt encrypts the copy --fetch DIR brings here; the archive on the host stays as it is',
          'Example: ferry backup old --fetch ./backups --encrypt age1...',
        );
      }
      const opts: BackupOptions = {
        ...runOptions(values, argv, ctx),
        ...(host ? { host } : {}),
        all,
        ...parallelOf(values),
        ...selectionOf(values),
        ...(typeof values.fetch === 'string' ? { fetch: resolve(values.fetch) } : {}),
        ...(encrypt ? { encrypt } : {}),
      };
      return (await import('./commands/backup.js')).backup(opts, ctx);
    },
  },
  restore: {
    usage:
      'ferry restore ARCHIVE HOST [--identity FILE] [--force] [--route direct|relay] [--app NAME] [--rename OLD=NEW] [--dry-run] [--resume]',
    summary: 'put an archive (here, or HOST:PATH) onto HOST and bring everything up',
    help: `Runs playbooks/restore.yml. ARCHIVE is a folder or dokku.tar.* file on this machine,
or HOST:PATH on an inventory host. Its checksum is verified before anything is extracted.

  --identity FILE
                 decrypt an encrypted copy (backup --encrypt) here with this age identity
                 (age-keygen's key file, or an ssh-ed25519 private key); the whole copy is
                 authenticated before a byte is sent, then streamed decrypted to HOST
  --force        allow a HOST that already holds Dokku data (a safety archive of it is taken first)
  --route R      direct (HOST pulls from the archive's host) or relay
${SELECT_HELP}
  --rename OLD=NEW, --rename PLUGIN/OLD=NEW
                 restore an app (or a service) under a new name, its links and ENV following:
                 apps:rename for an app; PLUGIN:clone, then each linked app relinked under
                 the same variable, for a service (repeat for more)
${RUN_HELP}

${SELECT_NOTE}

Example:
  ferry restore ./backups/old-20261123T100000Z new
  ferry restore old:/var/lib/dokku-ferry/archives/old-20261123T100000Z new
  ferry restore ./backups/old-20261123T100000Z new --app notes --rename notes=memo --rename postgres/notes-db=memo-db
  ferry restore ./backups/old-20261123T100000Z new --identity ~/.config/age/ferry.key`,
    flags: {
      ...RUN,
      ...FORCE,
      ...ROUTE,
      ...SELECT,
      rename: { type: 'string', multiple: true },
      identity: { type: 'string' },
    },
    async run(values, positionals, argv, ctx) {
      const [archive, target, ...extra] = positionals;
      if (!archive || !target || extra.length > 0) {
        throw new UsageError(
          'ferry restore takes an archive and an inventory host name: ARCHIVE HOST',
          'Example: ferry restore ./backups/old-20261123T100000Z new, or ferry restore old:/var/lib/dokku-ferry/archives/old-20261123T100000Z new',
        );
      }
      const remote = /^([A-Za-z0-9][A-Za-z0-9_.-]*):(\/.*)$/.exec(archive);
      const identity = typeof values.identity === 'string' ? values.identity : undefined;
      if (identity !== undefined && remote) {
        throw new UsageError(
          '--identity decrypts a copy on this machine (ferry backup --fetch DIR --encrypt), not HOST:PATH',
          'Example: ferry restore ./backups/old-20261123T100000Z new --identity ~/.config/age/ferry.key',
        );
      }
      const opts: RestoreOptions = {
        ...runOptions(values, argv, ctx),
        archive: remote ? { host: remote[1]!, path: remote[2]! } : { path: resolve(archive) },
        ...(identity !== undefined ? { identity: resolve(identity) } : {}),
        target,
        force: values.force === true,
        ...routeOf(values),
        ...selectionOf(values),
        ...renamesOf(values),
      };
      return (await import('./commands/restore.js')).restore(opts, ctx);
    },
  },
  drill: {
    usage:
      'ferry drill HOST --to SCRATCH [--domain-suffix DOMAIN] [--route direct|relay] [--junit FILE]',
    summary: 'restore the latest backup of HOST onto SCRATCH, prove it works, report RTO/RPO',
    help: `Runs playbooks/drill.yml. SCRATCH is overwritten (it is a scratch host).
SCRATCH never acts as production: each app with domains answers APP.DOMAIN
instead of its production names (so no certificate is asked for them),
letsencrypt auto-renew, app.json cron tasks, the dokku user's crontab and
/etc/cron.d/dokku-* entries are disabled there; the report lists each.

  --to SCRATCH   the scratch host (an inventory host name)
  --domain-suffix DOMAIN
                 the names SCRATCH's apps answer under (APP.DOMAIN); default:
                 SCRATCH's own global VHOST (before the restore replaced it)
  --route R      direct (SCRATCH pulls from HOST) or relay
${RUN_HELP}

Example:
  ferry drill old --to scratch --junit drill.xml
  ferry drill old --to scratch --domain-suffix drill.example.com`,
    flags: { ...RUN, ...ROUTE, to: { type: 'string' }, 'domain-suffix': { type: 'string' } },
    async run(values, positionals, argv, ctx) {
      const [source, ...extra] = positionals;
      const scratch = values.to;
      if (!source || extra.length > 0 || typeof scratch !== 'string') {
        throw new UsageError(
          'ferry drill takes a host and --to SCRATCH',
          'Example: ferry drill old --to scratch',
        );
      }
      const opts: DrillOptions = {
        ...runOptions(values, argv, ctx),
        source,
        scratch,
        ...routeOf(values),
        ...domainSuffixOf(values),
      };
      return (await import('./commands/drill.js')).drill(opts, ctx);
    },
  },
  forward: {
    usage: 'ferry forward HOST (--to TARGET [--ttl D] | --stop) [--dry-run]',
    summary: "forward HOST's web ports (80, 443) to TARGET while DNS moves, or stop it",
    help: `While DNS still sends clients to HOST (a migrated source), HOST carries every connection
to its ports 80 and 443 to TARGET: each request is answered there and every write lands in
TARGET's database. HOST's own proxy (nginx, a caddy container) is left as it is: the kernel
redirects connections from other hosts (iptables rules marked ferry-forward) to a small
forwarder on HOST. TLS passes through untouched. \`ferry migrate --forward\` starts it for you.

  --to TARGET    the host that answers (an inventory host name)
  --ttl D        how long: 90s, 30m, 12h, 2d (default 24h); then it ends by itself
  --stop         end forwarding: HOST's own proxy answers again
  --dry-run      print the plan and change nothing
  --json, --junit FILE, --accept-new-host-keys, -p/--playbook as for migrate

Example:
  ferry forward old --to new --ttl 12h
  ferry forward old --stop`,
    flags: {
      ...RUN,
      to: { type: 'string' },
      ttl: { type: 'string' },
      stop: { type: 'boolean' },
    },
    async run(values, positionals, argv, ctx) {
      const [host, ...extra] = positionals;
      const stop = values.stop === true;
      const to = typeof values.to === 'string' ? values.to : undefined;
      if (!host || extra.length > 0 || stop === (to !== undefined)) {
        throw new UsageError(
          'ferry forward takes a host and either --to TARGET or --stop',
          'Example: ferry forward old --to new --ttl 12h, or ferry forward old --stop',
        );
      }
      if (stop && values.ttl !== undefined)
        throw new UsageError('--ttl goes with --to, not --stop');
      const opts: ForwardOptions = {
        ...runOptions(values, argv, ctx),
        host,
        ...(to ? { target: to } : {}),
        stop,
        ttlSeconds: durationOf(values.ttl, '--ttl') ?? DEFAULT_FORWARD_TTL,
      };
      return (await import('./commands/forward.js')).forward(opts, ctx);
    },
  },
  plan: {
    usage: 'ferry plan PLAYBOOK ROLE=HOST... [--json]',
    summary: 'print every step and remote command a playbook would run; contacts no host',
    help: `PLAYBOOK is a name from playbooks/ (migrate, backup, restore, drill) or a file.
Each ROLE=HOST binds a role the playbook declares to an inventory host.

Example:
  ferry plan migrate source=old target=new
  ferry plan playbooks/migrate.yml source=old target=new --json`,
    flags: {},
    async run(values, positionals, _argv, ctx) {
      const [playbook, ...bindings] = positionals;
      if (!playbook) {
        throw new UsageError(
          'which playbook? `ferry plan PLAYBOOK ROLE=HOST...`',
          'For example: ferry plan migrate source=old target=new',
        );
      }
      const opts: PlanCommandOptions = { ...commonOptions(values, ctx), playbook, bindings };
      return (await import('./commands/plan.js')).plan(opts, ctx);
    },
  },
  check: {
    usage: 'ferry check [HOST...] [--accept-new-host-keys]',
    summary: 'validate the inventory and playbooks, then reach every host and report',
    help: `Validates the inventory and every playbook, then connects to each host (or those
named) and prints: reachable, host key, Dokku version, datastore plugins, free disk
against the size of the Dokku directories, sudo, and ssh2's native crypto.
An unknown host key is refused with its fingerprint and how to pin it.

  --accept-new-host-keys
                 trust host keys not yet known (prints each fingerprint); off by default

Example:
  ferry check -i inventory/lab.yml`,
    flags: { 'accept-new-host-keys': { type: 'boolean' } },
    async run(values, positionals, _argv, ctx) {
      const opts: CheckOptions = {
        ...commonOptions(values, ctx),
        hosts: positionals,
        acceptNewHostKeys: values['accept-new-host-keys'] === true,
      };
      return (await import('./commands/check.js')).check(opts, ctx);
    },
  },
};

function commonOptions(
  values: Values,
  ctx: Context,
): { inventory: string; json: boolean; sshEnv: Context['env'] } {
  return {
    inventory: typeof values.inventory === 'string' ? values.inventory : 'inventory/hosts.yml',
    json: values.json === true,
    // ssh_config is read as ssh reads it: SSH_AUTH_SOCK and ${VAR} come from this environment.
    sshEnv: ctx.env,
  };
}

function runOptions(values: Values, argv: string[], ctx: Context): RunOptions {
  const stateDir = ctx.env.FERRY_STATE_DIR;
  return {
    ...commonOptions(values, ctx),
    dryRun: values['dry-run'] === true,
    resume: values.resume === true,
    acceptNewHostKeys: values['accept-new-host-keys'] === true,
    ...(typeof values.playbook === 'string' ? { playbook: values.playbook } : {}),
    ...(typeof values.junit === 'string' ? { junit: values.junit } : {}),
    argv,
    renderer: rendererFor(ctx),
    ...(stateDir ? { stateDir } : {}),
  };
}

/** A live tree on a terminal; timestamped lines in CI, in pipes and on dumb terminals. */
function rendererFor(ctx: Context): RendererChoice {
  if (ctx.env.FERRY_RENDERER === 'silent') return 'silent';
  const live = ctx.stderrIsTty && !ctx.env.CI && ctx.env.TERM !== 'dumb';
  return live ? 'default' : 'simple';
}

function routeOf(values: Values): { route?: Route } {
  const r = values.route;
  if (r === undefined) return {};
  if (r === 'direct' || r === 'relay' || r === 'auto') return { route: r };
  throw new UsageError(`--route must be direct, relay or auto, got "${String(r)}"`);
}

/** The exit codes, as \`ferry --help\` and the README list them. */
export const EXIT_CODES = `Exit codes:
  0    done (a fleet: every host done)
  1    a step failed or a check refused (a fleet: every host failed)
  2    bad input (arguments, inventory, playbook): nothing was contacted or changed
  3    a fleet (backup --all or a group) in which some hosts failed and the others finished
  70   a bug in dokku-ferry (the message says where to report it)
  130  interrupted (Ctrl-C); --resume continues where it stopped
`;

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `ferry: move, back up and restore a whole Dokku server over SSH

Usage: ferry COMMAND [ARGS] [-i INVENTORY] [--json]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Options for every command:
  -i, --inventory FILE   inventory to read: ferry's YAML, or an Ansible inventory (YAML or INI)
                         (default: inventory/hosts.yml)
  --json                 machine-readable output on stdout
  -h, --help             help for ferry or for one command (ferry migrate --help)

Environment:
  FERRY_STATE_DIR        where run journals go (default: ~/.local/state/dokku-ferry)
  FERRY_RENDERER=silent  no step tree on stderr (the report still prints)
  FERRY_TRACE=1          one stderr line per remote command: host, time, exit status

${EXIT_CODES}`;
}

function commandHelp(spec: CommandSpec): string {
  return `Usage: ${spec.usage}\n\n${spec.summary}.\n\n${spec.help}\n\nAlso: -i/--inventory FILE, --json, -h/--help (see \`ferry --help\`).\n`;
}

/** The flag a parseArgs error is about, as the user typed it. */
function flagOf(message: string): string | undefined {
  return /option '(-{1,2}[^' ]+)/i.exec(message)?.[1];
}

/** A usage error for a flag this command does not take, saying which commands do. */
function notAFlagOf(name: string, spec: CommandSpec, flag: string): UsageError {
  const long = flag.replace(/^-+/, '').replace(/=.*$/, '');
  const takers = Object.entries(COMMANDS)
    .filter(([, c]) =>
      Object.entries(c.flags).some(
        ([k, f]) => k === long || (flag.length === 2 && f.short === long),
      ),
    )
    .map(([n]) => n);
  const own = Object.keys(spec.flags)
    .map((f) => `--${f}`)
    .join(', ');
  return new UsageError(
    takers.length > 0
      ? `ferry ${name} does not take ${flag} (only ${takers.map((t) => `ferry ${t}`).join(', ')} ${takers.length === 1 ? 'does' : 'do'})`
      : `unknown option ${flag} for ferry ${name}`,
    `${own ? `Its options: ${own}, and ` : 'It takes only '}-i/--inventory, --json, --help. Usage: ${spec.usage}`,
  );
}

/** Runs the command `argv` names; returns the exit code. Never throws. */
export async function main(
  argv: string[],
  ctx: Context = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    stderrIsTty: process.stderr.isTTY === true,
  },
): Promise<number> {
  trace.enabled = /^(1|true|yes)$/i.test(ctx.env.FERRY_TRACE ?? '');
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    ctx.stdout.write(mainHelp());
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  try {
    if (name === '--version' || name === '-V') {
      const { readFile } = await import('node:fs/promises');
      const pkg = JSON.parse(
        await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
      ) as { version: string };
      ctx.stdout.write(`${pkg.version}\n`);
      return ExitCode.ok;
    }
    const spec = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
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
        options: { ...GLOBAL, ...spec.flags },
        allowPositionals: true,
        strict: true,
      });
    } catch (e) {
      const err = e as Error & { code?: string };
      const flag = flagOf(err.message);
      if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) throw notAFlagOf(name, spec, flag);
      throw new UsageError(
        err.message.replace(/^TypeError \[[A-Z_]+\]: /, ''),
        `Usage: ${spec.usage}`,
      );
    }
    const values = parsed.values as Values;
    if (values.help) {
      ctx.stdout.write(commandHelp(spec));
      return ExitCode.ok;
    }
    return await spec.run(values, parsed.positionals, argv, ctx);
  } catch (e) {
    return report(e, ctx.stderr);
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
