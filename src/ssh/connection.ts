/**
 * The one way dokku-ferry talks to a host: node-ssh for the connection, and a
 * thin exec layer of our own on its ssh2 client, so node-ssh's traps cannot
 * slip through (execCommand resolving on failure, `cwd` as `cd X ; cmd`,
 * putDirectory answering false): every non-zero exit rejects with a
 * RemoteError, no command ever runs in a directory it failed to enter, and
 * files move only as streams through `spawn`.
 */
import { homedir } from 'node:os';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { NodeSSH } from 'node-ssh';
import type { Client, ClientChannel, ServerHostKeyAlgorithm } from 'ssh2';
import { ExitCode, FerryError, RemoteError, StopError } from '../errors.js';
import {
  algorithmsForKeyType,
  appendKnownHost,
  type HostKey,
  hostKeyOf,
  knownKeyTypes,
  readKnownHosts,
  verifyHostKey,
} from './host-keys.js';
import { quote, quoteArgv } from './quote.js';
import { trace } from './trace.js';

/** A host to connect to, as the inventory describes it (paths already expanded). */
export interface HostTarget {
  /** The inventory name (`old`, `new`): what messages call the host. */
  name: string;
  address: string;
  port: number;
  user: string;
  /** Path of the private key file. */
  identity: string;
  /** Pinned fingerprint (`SHA256:...`); wins over known_hosts. */
  hostKey?: string | undefined;
  /** known_hosts file to look the key up in (OpenSSH format). Default `~/.ssh/known_hosts`. */
  knownHosts?: string | undefined;
  /** Run every command through `sudo -n` (the user is not root). */
  sudo: boolean;
}

/** How to connect. */
export interface ConnectOptions {
  /** Trust (and append to known_hosts) a host key not known yet. Never a changed one. */
  acceptNewHostKeys?: boolean;
  /** Called when an unknown key was accepted, so the caller can say so. */
  onNewHostKey?: (host: HostTarget, key: HostKey, file: string) => void;
  /** Handshake timeout (default 15 s). */
  readyTimeoutMs?: number;
  /** SSH keepalive interval (default 15 s); 3 missed ones drop the connection. */
  keepaliveIntervalMs?: number;
  /** Channels open at once on this connection; OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
}

/** How a remote process ended. */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** What a finished command said. */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Options of {@link Remote.run} and {@link Remote.spawn}. */
export interface RunOptions {
  /** Fed to the command's stdin, which is then closed. */
  stdin?: string | Buffer | Readable;
  /** Override the host's `sudo` setting for this one command. */
  sudo?: boolean;
  /** The playbook step this runs for; carried on the error. */
  step?: string;
  /** Exit codes that count as success (default `[0]`). */
  allowCodes?: number[];
  /** Kill the command (close its channel) after this long. */
  timeoutMs?: number;
}

/** A running remote command, for streams (`tar | zstd` pipelines). */
export interface RemoteProcess {
  /** The command's stdin; end it when done writing (unless `stdin` was given). */
  stdin: Writable;
  /** The command's stdout; read it (or pipe it) or the command will stall: backpressure is real. */
  stdout: Readable;
  /** The command's stderr; its tail is kept for the error, so reading it is optional. */
  stderr: Readable;
  /**
   * Resolves when the command has ended with an allowed code; rejects with a
   * {@link RemoteCommandError} otherwise (already handled: no unhandled-rejection crash).
   */
  done: Promise<ExitStatus>;
  /** Stops the command: TERM to its whole process group, then its channel is closed. */
  kill(): Promise<void>;
}

/** A remote command that failed, with the step it ran for. */
export class RemoteCommandError extends RemoteError {
  readonly step: string | undefined;
  constructor(
    fields: ConstructorParameters<typeof RemoteError>[0] & { step?: string | undefined },
  ) {
    super(fields);
    this.step = fields.step;
  }
}

/** A host key that did not check out: unknown (not accepted) or changed. */
export class HostKeyError extends StopError {
  readonly host: string;
  readonly kind: 'unknown' | 'mismatch';
  readonly presented: HostKey;
  readonly expected: string | undefined;
  constructor(fields: {
    host: HostTarget;
    kind: 'unknown' | 'mismatch';
    presented: HostKey;
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

/** Connections opened by this process, all pools together (the benchmark reports it). */
let opened = 0;
/** How many SSH connections this process has opened so far. */
export function connectionsOpened(): number {
  return opened;
}

/** Ciphers in our order: AES-GCM measured 1.1-1.2x faster than chacha20 here (AES-NI). */
export const CIPHERS = [
  'aes128-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-ctr',
  'aes256-ctr',
] as const;

const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Expands a leading `~/` the way a shell would. */
export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

/** The known_hosts file a host uses. */
export function knownHostsPathOf(host: HostTarget): string {
  return expandHome(host.knownHosts ?? '~/.ssh/known_hosts');
}

/**
 * The exact command line sent to the host: strict bash, optionally under
 * `sudo -n` (never a password prompt). Argv arrays are quoted; strings are
 * trusted shell text (build them with `sh`).
 */
export function wrapCommand(
  cmd: string | readonly string[],
  opts: { sudo: boolean; announcePgid?: boolean },
): string {
  const text = typeof cmd === 'string' ? cmd : quoteArgv(cmd);
  // The process group goes out first on stderr so the command can be killed for
  // real later (see `stop`); the line never reaches the caller.
  const announce = opts.announcePgid
    ? `read -r _ _ _ _ ferry_pgid _ </proc/$$/stat && printf '${PGID_MARKER}%s\\n' "$ferry_pgid" >&2 && unset ferry_pgid\n`
    : '';
  const script = quote(`set -euo pipefail\n${announce}${text}`);
  return opts.sudo ? `sudo -n -- bash -c ${script}` : `bash -c ${script}`;
}

/** Starts the stderr line that announces a command's process group (a unit separator, then a tag). */
const PGID_MARKER = '\\037ferry-pgid ';
const PGID_LINE = new RegExp(`${String.fromCharCode(0x1f)}ferry-pgid (\\d+)\n`);

/**
 * Strips the process-group line from the head of stderr and reports the number;
 * everything else passes through untouched.
 */
class PgidFilter extends Transform {
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

/** Shows a command in messages: the argv quoted, or the shell text as is. */
export function displayCommand(cmd: string | readonly string[]): string {
  return typeof cmd === 'string' ? cmd : quoteArgv(cmd);
}

const TAIL_BYTES = 64 * 1024;

/** Keeps only the last few KB of a stream's text: enough for an error, never the whole stream. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.limit && this.chunks.length > 1) {
      this.size -= this.chunks.shift()?.length ?? 0;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return withoutProgress(all.subarray(Math.max(0, all.length - this.limit)).toString('utf8'));
  }
}

/**
 * Drops progress lines (`<n> bytes …`, as `dd status=progress` and the
 * transfer's hasher print them) from a command's stderr as an error shows it:
 * a long copy's hundreds of them would bury the line that says what failed.
 */
export function withoutProgress(text: string): string {
  const lines = text.split(/\r\n|\r|\n/);
  const kept = lines.filter((l) => !/^\d+ bytes(?:$| \(.*\) copied| copied)/.test(l));
  return kept.length === lines.length ? text : kept.join('\n');
}

/** A tiny counting semaphore: channels on one connection are limited by the server. */
class Slots {
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

const SUDO_PASSWORD = /sudo: (a password is required|a terminal is required|no tty present)/;

/** One SSH connection to one host. Get these from {@link Connections}, not directly. */
export class Remote {
  private readonly slots: Slots;
  private lost: string | undefined;

  private constructor(
    readonly host: HostTarget,
    /** The host key the server presented and we verified. */
    readonly hostKey: HostKey,
    /** How the key was trusted. */
    readonly hostKeyTrust: 'inventory' | 'known_hosts' | 'accepted',
    private readonly ssh: NodeSSH,
    private readonly client: Client,
    maxChannels: number,
  ) {
    this.slots = new Slots(maxChannels);
    client.on('close', () => {
      this.lost ??= 'the connection closed';
    });
    client.on('error', (e: Error) => {
      this.lost = `the connection failed: ${e.message}`;
    });
  }

  /** Opens and authenticates one connection, verifying the host key first. */
  static async connect(host: HostTarget, opts: ConnectOptions = {}): Promise<Remote> {
    const khPath = knownHostsPathOf(host);
    const knownText = await readKnownHosts(khPath);
    const preferred = knownKeyTypes(knownText, host.address, host.port).flatMap(
      algorithmsForKeyType,
    );
    const hostKeyOrder = [
      ...preferred.filter((a): a is ServerHostKeyAlgorithm =>
        (HOST_KEY_ALGORITHMS as string[]).includes(a),
      ),
      ...HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a)),
    ];
    let refusal: HostKeyError | undefined;
    let presented: HostKey | undefined;
    let trust: Remote['hostKeyTrust'] = 'known_hosts';
    let accepted = false;
    const hostVerifier = (blob: Buffer): boolean => {
      const key = hostKeyOf(blob);
      presented = key;
      const verdict = verifyHostKey(key, {
        address: host.address,
        port: host.port,
        pinned: host.hostKey,
        knownHosts: knownText,
      });
      if (verdict.status === 'match') {
        trust = verdict.source;
        return true;
      }
      if (verdict.status === 'mismatch') {
        refusal = new HostKeyError({
          host,
          kind: 'mismatch',
          presented: key,
          expected: verdict.expected,
          where:
            verdict.source === 'inventory'
              ? `hosts.${host.name}.host_key in the inventory`
              : verdict.source === 'revoked'
                ? `marked @revoked in ${khPath}:${verdict.line}`
                : `${khPath}:${verdict.line}`,
        });
        return false;
      }
      if (opts.acceptNewHostKeys) {
        trust = 'accepted';
        accepted = true;
        return true;
      }
      refusal = new HostKeyError({
        host,
        kind: 'unknown',
        presented: key,
        otherTypes: verdict.otherTypes,
      });
      return false;
    };
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host: host.address,
        port: host.port,
        username: host.user,
        privateKeyPath: expandHome(host.identity),
        hostVerifier,
        readyTimeout: opts.readyTimeoutMs ?? 15_000,
        keepaliveInterval: opts.keepaliveIntervalMs ?? 15_000,
        keepaliveCountMax: 3,
        algorithms: { cipher: [...CIPHERS], serverHostKey: hostKeyOrder },
      });
    } catch (e) {
      ssh.dispose();
      if (refusal) throw refusal;
      throw new FerryError(
        `cannot connect to ${host.name} (${host.user}@${host.address}:${host.port}): ${(e as Error).message}`,
        {
          cause: e,
          hint: /authentication/i.test((e as Error).message)
            ? `Check hosts.${host.name}.user and identity (${host.identity}); the key must be in that user's authorized_keys.`
            : `Check that the address and port are right and that sshd runs there: ssh -p ${host.port} ${host.user}@${host.address}`,
        },
      );
    }
    const client = ssh.connection;
    if (!client || !presented) {
      ssh.dispose();
      throw new FerryError(`cannot connect to ${host.name}: no connection after the handshake`);
    }
    opened++;
    // Each command is a handful of small packets (open, exec, eof, close): with
    // Nagle's algorithm on, they waited out delayed ACKs and a `true` took 57 ms
    // here; without it, 19 ms. Bulk data goes in full packets either way.
    client.setNoDelay(true);
    if (accepted) {
      await appendKnownHost(khPath, host.address, host.port, presented);
      opts.onNewHostKey?.(host, presented, khPath);
    }
    return new Remote(host, presented, trust, ssh, client, opts.maxChannels ?? 8);
  }

  /** Runs a command to its end and collects its output; rejects unless the exit code is allowed. */
  async run(cmd: string | readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const proc = await this.spawn(cmd, { ...opts, stdin: opts.stdin ?? '' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout.on('data', (b: Buffer) => out.push(b));
    proc.stderr.on('data', (b: Buffer) => err.push(b));
    // `close` can come before the last chunks are delivered: wait for both ends too.
    const drained = Promise.allSettled([
      finished(proc.stdout, { writable: false }),
      finished(proc.stderr),
    ]);
    let status: ExitStatus;
    try {
      status = await proc.done;
      await drained;
    } catch (e) {
      await drained;
      if (e instanceof RemoteCommandError) {
        throw new RemoteCommandError({
          host: e.host,
          command: e.command,
          code: e.code,
          signal: e.signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: e.stderr,
          step: e.step,
          ...(e.hint ? { hint: e.hint } : {}),
        });
      }
      throw e;
    }
    return {
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      code: status.code ?? -1,
    };
  }

  /** A guard ("already done?"): true on exit 0, false on exit 1; anything else is an error. */
  async test(
    cmd: string | readonly string[],
    opts: Omit<RunOptions, 'allowCodes'> = {},
  ): Promise<boolean> {
    const r = await this.run(cmd, { ...opts, allowCodes: [0, 1] });
    return r.code === 0;
  }

  /** Starts a command and hands back its streams; see {@link RemoteProcess}. */
  async spawn(cmd: string | readonly string[], opts: RunOptions = {}): Promise<RemoteProcess> {
    if (this.lost) throw this.lostError(cmd, opts);
    const sudo = (opts.sudo ?? this.host.sudo) && this.host.user !== 'root';
    const line = wrapCommand(cmd, { sudo, announcePgid: true });
    const traced = trace.enabled ? trace.start(this.host.name, displayCommand(cmd)) : undefined;
    await this.slots.take();
    let channel: ClientChannel;
    let exit: ExitStatus | undefined;
    try {
      channel = await new Promise<ClientChannel>((resolve, reject) => {
        this.client.exec(line, (err, ch) => {
          if (err) {
            reject(err);
            return;
          }
          // A quick command's exit status can arrive in the same read as the
          // channel's opening, before an await returns: listen right away.
          ch.on('exit', (code: number | null, signal?: string) => {
            exit = { code, signal: signal ?? null };
          });
          resolve(ch);
        });
      });
    } catch (e) {
      this.slots.give();
      throw this.lost
        ? this.lostError(cmd, opts)
        : new FerryError(
            `on ${this.host.name}: cannot start \`${displayCommand(cmd)}\`: ${(e as Error).message}`,
            {
              cause: e,
            },
          );
    }
    const stderrTail = new Tail(TAIL_BYTES);
    let pgid: number | undefined;
    const stderrOut = new PgidFilter((n) => {
      pgid = n;
    });
    channel.stderr.pipe(stderrOut);
    stderrOut.on('data', (b: Buffer) => stderrTail.push(b));
    let stopping: Promise<void> | undefined;
    /**
     * Ends the command for good. Closing the channel alone only gives the process
     * EOF, and `cat >f && mark-done` would carry on as if its input were complete;
     * SSH's signal request is refused for root sessions (OpenSSH: "session
     * signalling requires privilege separation"). So its process group is killed
     * over a second channel first, and only then is the channel closed.
     */
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (pgid !== undefined && !settled && this.connected) {
          await this.kill(pgid, sudo).catch(() => {});
        }
        channel.close();
      })();
      return stopping;
    };
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        void stop();
      }, opts.timeoutMs);
    }
    const allow = opts.allowCodes ?? [0];
    // Settles once the exit status and all of stderr are in (stdout is the consumer's:
    // waiting for it would hang when nobody reads it), or when the channel closes.
    let stderrEnded = false;
    let settled = false;
    let settle: () => void = () => {};
    const done = new Promise<ExitStatus>((resolve, reject) => {
      settle = () => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        const status: ExitStatus = exit ?? { code: null, signal: null };
        traced?.(status.code ?? status.signal ?? 'closed');
        if (!timedOut && status.code !== null && allow.includes(status.code)) {
          resolve(status);
          return;
        }
        const stderr = stderrTail.text();
        const reason = timedOut
          ? `its ${opts.timeoutMs} ms timeout`
          : status.code === null && status.signal === null
            ? (this.lost ?? 'its channel closed before it ended')
            : undefined;
        reject(
          new RemoteCommandError({
            host: this.host.name,
            command: displayCommand(cmd),
            code: status.code,
            signal: timedOut ? (reason ?? null) : (status.signal ?? reason ?? null),
            // stdout belongs to the consumer (a listener here would defeat backpressure);
            // `run` puts what it collected back on the error.
            stdout: '',
            stderr,
            step: opts.step,
            ...(SUDO_PASSWORD.test(stderr)
              ? {
                  hint: `sudo on ${this.host.name} wants a password. Allow ${this.host.user} passwordless sudo (NOPASSWD in /etc/sudoers.d/), or log in as root.`,
                }
              : {}),
          }),
        );
      };
    });
    stderrOut.on('end', () => {
      stderrEnded = true;
      if (exit && !timedOut) settle();
    });
    channel.on('exit', () => {
      // the status itself is recorded by the listener attached when the channel opened
      if (stderrEnded && !timedOut) settle();
    });
    channel.on('close', () => {
      this.slots.give();
      settle();
    });
    done.catch(() => {});
    if (opts.stdin !== undefined) {
      const input = opts.stdin;
      if (input instanceof Readable) {
        input.on('error', () => void stop());
        input.pipe(channel);
      } else {
        channel.end(input);
      }
    }
    return {
      stdin: channel,
      stdout: channel,
      stderr: stderrOut,
      done,
      kill: stop,
    };
  }

  /** TERMs a process group on the host, over its own channel (outside the channel limit). */
  private kill(pgid: number, sudo: boolean): Promise<void> {
    const line = wrapCommand(`kill -TERM -- -${pgid} 2>/dev/null || true`, { sudo });
    return new Promise<void>((resolve, reject) => {
      this.client.exec(line, (err, ch) => {
        if (err) {
          reject(err);
          return;
        }
        ch.on('close', () => resolve());
        ch.resume();
        ch.stderr.resume();
        ch.end();
      });
    });
  }

  /** Whether the connection is still up. */
  get connected(): boolean {
    return this.lost === undefined;
  }

  /** Closes the connection (running commands end with it). */
  close(): void {
    this.lost ??= 'the connection was closed';
    this.ssh.dispose();
  }

  private lostError(cmd: string | readonly string[], opts: RunOptions): RemoteCommandError {
    return new RemoteCommandError({
      host: this.host.name,
      command: displayCommand(cmd),
      code: null,
      signal: this.lost ?? 'connection lost',
      stdout: '',
      stderr: '',
      step: opts.step,
      hint: `The SSH connection to ${this.host.name} is gone; check the host and run again (--resume continues).`,
    });
  }
}

/**
 * At most one connection per host per run, opened on first use and shared by
 * every step; `closeAll()` at the end.
 */
export class Connections {
  private readonly pending = new Map<string, Promise<Remote>>();
  /** Connections this pool has opened. */
  opened = 0;

  constructor(
    private readonly hosts: ReadonlyMap<string, HostTarget> | Record<string, HostTarget>,
    private readonly opts: ConnectOptions = {},
  ) {}

  /** The connection to `name`, opened now if this is the first use. */
  get(name: string): Promise<Remote> {
    const existing = this.pending.get(name);
    if (existing) return existing;
    const host =
      this.hosts instanceof Map
        ? this.hosts.get(name)
        : (this.hosts as Record<string, HostTarget>)[name];
    if (!host) {
      return Promise.reject(
        new FerryError(`no host named "${name}" in the inventory`, { exitCode: ExitCode.usage }),
      );
    }
    const p = Remote.connect(host, this.opts).then((r) => {
      this.opened++;
      return r;
    });
    // A failed connect is not cached as a success, but is not retried behind the caller's back either.
    p.catch(() => {});
    this.pending.set(name, p);
    return p;
  }

  /** Every connection opened so far, by host name. */
  async all(): Promise<Map<string, Remote>> {
    const out = new Map<string, Remote>();
    for (const [name, p] of this.pending) {
      try {
        out.set(name, await p);
      } catch {
        // a host that failed to connect has no connection to list
      }
    }
    return out;
  }

  /** Closes every connection; safe to call more than once. */
  async closeAll(): Promise<void> {
    for (const r of (await this.all()).values()) r.close();
    this.pending.clear();
  }
}
