/**
 * The direct route: the target pulls from the source over OpenSSH, so the
 * data never passes through the controller. Access is a short-lived key made
 * for this one transfer:
 *
 *  - the key pair is generated ON THE TARGET in a root-only temp dir; the
 *    private key never leaves it;
 *  - its public key goes into the source user's authorized keys file (found
 *    with `sshd -T` against the running sshd's own config), restricted to the
 *    one export command, with an expiry time as a last resort, marked with a
 *    unique comment;
 *  - the target pins the source's host key that this run already verified
 *    (StrictHostKeyChecking=yes against a temp known_hosts);
 *  - afterwards, whatever happened (failure, SIGINT, abort), the key line is
 *    removed from the source and the temp dir from the target.
 */
import { randomBytes } from 'node:crypto';
import { FerryError } from '../errors.js';
import { Tail } from '../util/tail.js';
import { algorithmsForKeyType, knownHostsLine } from './host-keys.js';
import {
  addKeyScript,
  authorizedKeyOptions,
  authorizedKeysFileExpr,
  authorizedKeysFileScript,
  forcedCommand,
  makeKeyPairCommand,
  PULL_MARKER_PREFIX,
  PULL_PID_LINE,
  removeKeyScript,
} from './pull-key.js';
import {
  DISK_FULL,
  interruptedError,
  type TransferOptions,
  type TransferResult,
  throttle,
} from './relay.js';
import type { ExitStatus, Remote, RemoteProcess } from './remote.js';
import { $, bashC, type Command } from './shell.js';
import { strict } from './wrap.js';

export {
  authorizedKeyOptions,
  authorizedKeysFileExpr,
  authorizedKeysFileScript,
  forcedCommand,
  removeKeyScript,
} from './pull-key.js';

/** Options of {@link direct}. */
export interface DirectOptions extends TransferOptions {
  /** The address the target uses to reach the source (default: the source's inventory address). */
  sourceAddress?: string;
  /** Its ssh port (default: the source's inventory port). */
  sourcePort?: number;
  /**
   * `toCmd` prints `<n> bytes` progress lines on stderr itself. Otherwise a
   * `dd` counts in the pipe: one more copy of every byte, which cost 0.6 to
   * 1 s of a 5 s copy of 339 MB here.
   */
  counted?: boolean;
  /**
   * A connection to a host for the clean-up when the transfer's own
   * connection to it is gone (the pool's `fresh`, which closes it). Without
   * it, a clean-up on a lost connection fails and says so.
   */
  reconnect?: (host: string) => Promise<Remote>;
  /** How long the clean-up may take before the transfer's end is reported anyway (default 4000 ms). */
  cleanupMs?: number;
  /** Told what could not be removed (a key line, a temp dir), in a sentence for the report. */
  onLeftover?: (sentence: string) => void;
}

/** The ciphers the pull offers, fastest here first. */
const PULL_CIPHERS = 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com';

/**
 * Whether `target` can open a TCP connection to `source`'s ssh port within 3 s:
 * the direct route is possible only then.
 */
export async function canReach(
  target: Remote,
  source: Remote | { address: string; port: number },
  timeoutSeconds = 3,
): Promise<boolean> {
  const { address, port } = 'host' in source ? source.host : source;
  // The address reaches the inner bash as a parameter: parsed again, it could be a command.
  const probe = bashC($`exec 3<>/dev/tcp/${address}/${port}`);
  const r = await target.run($`timeout ${timeoutSeconds} ${probe}`, { allowCodes: [0, 1, 124] });
  return r.code === 0;
}

/** Runs every cleanup at once, each within `ms`, even when one fails; returns the failures. */
async function runCleanups(
  cleanups: { what: string; run: () => Promise<unknown> }[],
  ms: number,
): Promise<{ what: string; error: unknown }[]> {
  const settled = await Promise.allSettled(cleanups.map((c) => withDeadline(c.run(), ms, c.what)));
  return settled.flatMap((r, i) =>
    r.status === 'rejected' ? [{ what: cleanups[i]!.what, error: r.reason }] : [],
  );
}

/** `p`, or a rejection after `ms` (`p` goes on; a late connection is closed by the pool). */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FerryError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Moves `fromCmd`'s stdout on `from` into `toCmd`'s stdin on `to`, with the
 * target pulling straight from the source over OpenSSH (see the file's head).
 * Same result shape as `relay`. Both exit statuses count: the source's reaches
 * the target as the exit status of its `ssh`.
 */
export async function direct(
  from: Remote,
  fromCmd: Command,
  to: Remote,
  toCmd: Command,
  opts: DirectOptions = {},
): Promise<TransferResult> {
  if (opts.signal?.aborted) throw interruptedError('the transfer');
  const started = Date.now();
  const step = opts.step === undefined ? {} : { step: opts.step };
  const address = opts.sourceAddress ?? from.host.address;
  const port = opts.sourcePort ?? from.host.port;
  const marker = `${PULL_MARKER_PREFIX}${randomBytes(8).toString('hex')}`;
  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  // A clean-up runs over the transfer's connection, or a new one when that one is gone
  // (the pool's: it closes it at the run's end, and later clean-ups share it).
  const on = async (r: Remote): Promise<Remote> =>
    r.connected || !opts.reconnect ? r : opts.reconnect(r.host.name);
  let proc: RemoteProcess | undefined;
  let interrupted = false;
  const onInterrupt = (): void => {
    interrupted = true;
    void proc?.kill();
  };
  opts.signal?.addEventListener('abort', onInterrupt, { once: true });
  process.once('SIGINT', onInterrupt);
  let failure: unknown;
  let result: TransferResult | undefined;
  let pullStderr = '';
  /** The pull's first line saying the disk is full, once seen. */
  let full: string | undefined;
  let statuses: number[] | undefined;
  try {
    // 1. Key pair on the target, in a root-only temp dir; meanwhile the source
    //    says which authorized keys file its sshd reads.
    const user = from.host.user;
    const [made, found] = await Promise.all([
      to.run(makeKeyPairCommand(marker), { ...step, sudo: true }),
      // A failed lookup is not fatal here: the addition looks again and reports it.
      from
        .run(authorizedKeysFileScript(user), { ...step, sudo: true })
        .then((r) => r.stdout.trim().split('\n').pop() ?? '')
        .catch(() => ''),
    ]);
    const [dir, pubLine] = made.stdout.trim().split('\n');
    if (!dir?.startsWith('/tmp/ferry-direct.'))
      throw new FerryError(`on ${to.host.name}: could not make a temp dir for the pull key`);
    cleanups.push({
      what: `removing the pull key's temp dir ${dir} on ${to.host.name}`,
      run: async () => (await on(to)).run($`rm -rf -- ${dir}`, { sudo: true }),
    });
    const m = /^(ssh-ed25519) ([A-Za-z0-9+/]+=*)( |$)/.exec(pubLine ?? '');
    if (!m) throw new FerryError(`on ${to.host.name}: ssh-keygen gave no ed25519 public key`);
    const pub = `${m[1]} ${m[2]}`;
    if (interrupted) throw interruptedError('the transfer');

    // 2. The key, restricted to the one export command, on the source.
    const fromSudo = from.host.sudo && user !== 'root';
    const options = authorizedKeyOptions(forcedCommand(fromCmd, { sudo: fromSudo }));
    // Removal is registered before the addition, so a failure half-way through it
    // still gets cleaned up; it uses the file the addition wrote to once known.
    let akFile: string | Command = found.startsWith('/') ? found : authorizedKeysFileExpr(user);
    cleanups.push({
      what: `removing the pull key ${marker} from ${from.host.name}`,
      run: async () => (await on(from)).run(removeKeyScript(akFile, marker), { sudo: true }),
    });
    const added = await from.run(addKeyScript(user, akFile, options, pub, marker), {
      ...step,
      sudo: true,
    });
    const written = added.stdout.trim().split('\n').pop() ?? '';
    if (written.startsWith('/')) akFile = written;
    if (interrupted) throw interruptedError('the transfer');

    // 3. Pin the source's host key as this run verified it, then pull.
    const pin = knownHostsLine(address, port, from.hostKey);
    const algs = algorithmsForKeyType(from.hostKey.type).join(',');
    const counter = opts.counted ? $`` : $`dd bs=1M status=progress | `;
    // The pipeline runs in the background so that a TERM (kill, abort, SIGINT) reaches
    // the trap at once and takes the whole process group down: ssh would otherwise go
    // on pulling into an orphaned pipe. Its PID goes into the temp dir first, for a sweep.
    const script = $`d=${dir}
${PULL_PID_LINE}
printf '%s\\n' ${pin} >"$d/known_hosts"
trap 'trap - TERM INT HUP; kill -TERM 0 2>/dev/null; exit 143' TERM INT HUP
set +e
(
  ssh -F /dev/null -i "$d/id" -p ${port} -l ${user} \\
    -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \\
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$d/known_hosts" -o GlobalKnownHostsFile=/dev/null \\
    -o HostKeyAlgorithms=${algs} -o Ciphers=${PULL_CIPHERS} -o Compression=no \\
    -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=3 -o LogLevel=ERROR \\
    -T -- ${address} ferry-export </dev/null \\
    | ${counter}${strict(toCmd)}
  st=("\${PIPESTATUS[@]}")
  printf '\\nferry-pipestatus %s %s\\n' "\${st[0]}" "\${st[-1]}" >&2
  for x in "\${st[@]}"; do [ "$x" = 0 ] || exit 1; done
) &
wait $!`;
    proc = await to.spawn(script, { ...step, sudo: true, stdin: '' });
    if (interrupted) void proc.kill();
    let bytes = 0;
    let pending = '';
    const progress = throttle((n) => opts.onProgress?.(n), 250);
    proc.stderr.on('data', (b: Buffer) => {
      pending += b.toString('latin1');
      const parts = pending.split(/[\r\n]/);
      pending = parts.pop() ?? '';
      for (const p of parts) {
        const c = /^(\d+) bytes\b/.exec(p);
        if (c) {
          bytes = Number(c[1]);
          progress.push(bytes);
          continue;
        }
        const s = /^ferry-pipestatus (\d+) (\d+)$/.exec(p);
        if (s) statuses = [Number(s[1]), Number(s[2])];
        else if (p.trim() !== '') {
          // tar goes on reading the whole stream after a failed write: on a full disk
          // the pull would run on for as long as the data takes. It stops here at once.
          if (full === undefined && DISK_FULL.test(p)) {
            full = p.trim().slice(0, 240);
            void proc?.kill();
          }
          if (pullStderr.length < 4096) pullStderr += `${p}\n`;
        }
      }
    });
    const output = new Tail().collect(proc.stdout);
    try {
      await proc.done;
    } catch (e) {
      if (interrupted) throw interruptedError('the transfer');
      if (full !== undefined) {
        throw new FerryError(
          `on ${to.host.name}, the pull was stopped at its first failed write: ${full}`,
          {
            cause: e,
          },
        );
      }
      throw pullFailure(e, from, to, statuses, pullStderr);
    }
    progress.flush(bytes);
    const status = (n: number | undefined): ExitStatus => ({ code: n ?? 0, signal: null });
    result = {
      route: 'direct',
      bytes,
      seconds: (Date.now() - started) / 1000,
      from: status(statuses?.[0]),
      to: status(statuses?.[1]),
      output: output.text(),
    };
  } catch (e) {
    failure = e;
  } finally {
    opts.signal?.removeEventListener('abort', onInterrupt);
    const left = await runCleanups(cleanups, opts.cleanupMs ?? 4000);
    process.removeListener('SIGINT', onInterrupt);
    for (const l of left) {
      const why = l.error instanceof Error ? l.error.message.split('\n')[0] : String(l.error);
      opts.onLeftover?.(
        `${l.what} failed (${why}); the next ferry run on these hosts sweeps it (its expiry is 12 h)`,
      );
    }
    // The transfer's failure is the story; a clean-up failure alone fails the transfer.
    if (failure === undefined && left.length > 0) failure = left[0]!.error;
  }
  if (failure !== undefined) throw failure;
  if (!result) throw new FerryError('the direct transfer ended without a result');
  return result;
}

/**
 * What a failed pull says first: the connection that broke, or the cause
 * the pull's own stderr names (ssh's "Connection closed", tar's "No space
 * left on device"), before the script that ran.
 */
function pullFailure(
  e: unknown,
  from: Remote,
  to: Remote,
  statuses: number[] | undefined,
  stderr: string,
): unknown {
  if (!(e instanceof Error)) return e;
  if (!to.connected) {
    return new FerryError(
      `the SSH connection to ${to.host.name} was lost during the transfer (${e.message.split('\n')[0]})`,
      { cause: e, hint: `Check ${to.host.name}, then run the same command with --resume.` },
    );
  }
  if (statuses?.[0] === 255 || (!from.connected && statuses?.[0] !== 0)) {
    const said = stderr
      .split('\n')
      .map((l) => l.trim())
      .find((l) => /ssh|connect|closed|reset|broken pipe/i.test(l));
    return new FerryError(
      `the pull from ${from.host.name} was cut: ${to.host.name}'s ssh to ${from.host.name} ended with status ${statuses?.[0] ?? '?'}${said ? ` (${said})` : ''}`,
      {
        cause: e,
        hint: `Check ${from.host.name} and the network between the hosts, then run the same command with --resume.`,
      },
    );
  }
  return e;
}
