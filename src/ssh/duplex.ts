/**
 * Two-way streams between hosts, for a client on the target that talks to a
 * server on the source over a remote shell (rsync's `-e`): the target's
 * command runs its client with `"$FERRY_RSH"` as that shell, and the source's
 * command is the server, which takes the client's request line (what the
 * client asks the shell to run) from `$FERRY_DUPLEX_REQUEST`, or from the
 * first line of its stdin when that is `-`, and decides itself what it runs.
 *
 *  - direct: `$FERRY_RSH` is an OpenSSH client with a key made for this one
 *    stream on the target, allowed on the source only to run the server
 *    command (a forced command; sshd hands it the request in
 *    SSH_ORIGINAL_COMMAND), removed again afterwards, as `direct` does;
 *  - relay: `$FERRY_RSH` is a bridge on the target: it writes the request
 *    line, then carries bytes between the client and the controller's
 *    channel, which this process joins to the server's, both ways, with
 *    backpressure. The data passes through this machine, never onto its disk.
 */
import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../errors.js';
import { Tail } from '../util/tail.js';
import { forcedCommand } from './direct.js';
import { algorithmsForKeyType, knownHostsLine } from './host-keys.js';
import {
  addKeyScript,
  authorizedKeyOptions,
  authorizedKeysFileExpr,
  authorizedKeysFileScript,
  removeKeyScript,
} from './pull-key.js';
import { interruptedError, type TransferOptions, type TransferResult, throttle } from './relay.js';
import type { Remote, RemoteProcess } from './remote.js';
import { $, type Command } from './shell.js';

/** The ciphers the direct route offers, fastest here first (as `direct`). */
const PULL_CIPHERS = 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com';

/**
 * The relay's remote shell: sends the request (the words after the host) as
 * one line, then joins the client's pipes to fds 3 (bytes from the server)
 * and 4 (bytes to it). It ends, as ssh would, when the server's side ends.
 * A background job's stdin is /dev/null unless given: hence `<&0`.
 */
const BRIDGE = [
  '#!/bin/bash',
  'shift',
  'printf \'%s\\n\' "$*" >&4',
  'cat <&0 >&4 & w=$!',
  'cat <&3',
  'kill "$w" 2>/dev/null || true',
  '',
].join('\n');

/** The target's side of the relay: the bridge in a root-only temp dir, the client's own output on stderr. */
export function relayClientCommand(toCmd: Command): Command {
  return $`d=$(mktemp -d /tmp/ferry-duplex.XXXXXXXX)
trap 'rm -rf -- "$d"' EXIT
printf '%s' ${BRIDGE} >"$d/rsh" && chmod 0700 "$d/rsh"
exec 3<&0 4>&1
export FERRY_RSH="$d/rsh"
{ ${toCmd}; } </dev/null 1>&2`;
}

/** The source's side of the relay: the server takes its request from the first line of stdin. */
export function relayServerCommand(fromCmd: Command): Command {
  return $`export FERRY_DUPLEX_REQUEST=- && ${fromCmd}`;
}

/** Counts bytes through. */
function counter(onBytes: (n: number) => void): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      onBytes(n);
      cb(null, chunk);
    },
  });
}

/** Joins a client on `to` with its server on `from` through this process (see the head). */
export async function duplexRelay(
  from: Remote,
  fromCmd: Command,
  to: Remote,
  toCmd: Command,
  opts: TransferOptions = {},
): Promise<TransferResult> {
  if (opts.signal?.aborted) throw interruptedError('the transfer');
  const started = Date.now();
  const step = opts.step === undefined ? {} : { step: opts.step };
  const src = await from.spawn(relayServerCommand(fromCmd), step);
  let dst: RemoteProcess;
  try {
    dst = await to.spawn(relayClientCommand(toCmd), step);
  } catch (e) {
    await src.kill();
    await src.done.catch(() => undefined);
    throw e;
  }
  const output = new Tail().collect(dst.stderr);
  let bytes = 0;
  const progress = throttle((n) => opts.onProgress?.(n), 250);
  let interrupted = false;
  const stopBoth = (): Promise<unknown> => Promise.all([src.kill(), dst.kill()]);
  const onAbort = (): void => {
    interrupted = true;
    void stopBoth();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // A side that ended takes the other down only when it failed; a pipe that
  // breaks because its reader is gone is the other side's story.
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
  const down = quiet(
    pipeline(
      src.stdout,
      counter((n) => {
        bytes = n;
        progress.push(n);
      }),
      dst.stdin,
    ),
  );
  const up = quiet(pipeline(dst.stdout, src.stdin));
  try {
    const [s, d] = await Promise.allSettled([
      src.done.catch(async (e: unknown) => {
        await dst.kill();
        throw e;
      }),
      dst.done.catch(async (e: unknown) => {
        await src.kill();
        throw e;
      }),
    ]);
    await Promise.all([down, up]);
    progress.flush(bytes);
    if (interrupted) throw interruptedError('the transfer');
    if (d.status === 'rejected') throw d.reason;
    if (s.status === 'rejected') throw s.reason;
    return {
      route: 'relay',
      bytes,
      seconds: (Date.now() - started) / 1000,
      from: s.value,
      to: d.value,
      output: output.text(),
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Joins a client on `to` with its server on `from`, the target connecting to
 * the source itself over OpenSSH with a key for this one stream (see `direct`
 * for how the key is made, restricted, pinned and removed).
 */
export async function duplexDirect(
  from: Remote,
  fromCmd: Command,
  to: Remote,
  toCmd: Command,
  opts: TransferOptions & { sourceAddress?: string; sourcePort?: number } = {},
): Promise<TransferResult> {
  if (opts.signal?.aborted) throw interruptedError('the transfer');
  const started = Date.now();
  const step = opts.step === undefined ? {} : { step: opts.step };
  const address = opts.sourceAddress ?? from.host.address;
  const port = opts.sourcePort ?? from.host.port;
  const user = from.host.user;
  const marker = `ferry-direct-${randomBytes(8).toString('hex')}`;
  const cleanups: (() => Promise<unknown>)[] = [];
  let proc: RemoteProcess | undefined;
  let interrupted = false;
  const onInterrupt = (): void => {
    interrupted = true;
    void proc?.kill();
  };
  opts.signal?.addEventListener('abort', onInterrupt, { once: true });
  try {
    const [made, found] = await Promise.all([
      to.run(
        $`umask 077
d=$(mktemp -d /tmp/ferry-direct.XXXXXXXX)
ssh-keygen -q -t ed25519 -N '' -C ${marker} -f "$d/id" </dev/null >/dev/null
printf '%s\\n' "$d"
cat "$d/id.pub"`,
        { ...step, sudo: true },
      ),
      from
        .run(authorizedKeysFileScript(user), { ...step, sudo: true })
        .then((r) => r.stdout.trim().split('\n').pop() ?? '')
        .catch(() => ''),
    ]);
    const [dir, pubLine] = made.stdout.trim().split('\n');
    if (!dir?.startsWith('/tmp/ferry-direct.'))
      throw new FerryError(`on ${to.host.name}: could not make a temp dir for the pull key`);
    cleanups.push(() => to.run($`rm -rf -- ${dir}`, { sudo: true }));
    const m = /^(ssh-ed25519) ([A-Za-z0-9+/]+=*)( |$)/.exec(pubLine ?? '');
    if (!m) throw new FerryError(`on ${to.host.name}: ssh-keygen gave no ed25519 public key`);
    if (interrupted) throw interruptedError('the transfer');

    const fromSudo = from.host.sudo && user !== 'root';
    const options = authorizedKeyOptions(forcedCommand(fromCmd, { sudo: fromSudo }));
    let akFile: string | Command = found.startsWith('/') ? found : authorizedKeysFileExpr(user);
    cleanups.push(() => from.run(removeKeyScript(akFile, marker), { sudo: true }));
    const added = await from.run(addKeyScript(user, akFile, options, `${m[1]} ${m[2]}`, marker), {
      ...step,
      sudo: true,
    });
    const written = added.stdout.trim().split('\n').pop() ?? '';
    if (written.startsWith('/')) akFile = written;
    if (interrupted) throw interruptedError('the transfer');

    const pin = knownHostsLine(address, port, from.hostKey);
    const algs = algorithmsForKeyType(from.hostKey.type).join(',');
    const ssh = $`exec ssh -F /dev/null -i ${`${dir}/id`} -p ${port} -l ${user} -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${`${dir}/known_hosts`} -o GlobalKnownHostsFile=/dev/null -o HostKeyAlgorithms=${algs} -o Ciphers=${PULL_CIPHERS} -o Compression=no -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=3 -o LogLevel=ERROR -T -- ${address} "$@"`;
    const rsh = `#!/bin/bash\nshift\n${ssh.render()}\n`;
    // The client's output goes to stderr, like the relay's, so both routes read alike.
    const script = $`d=${dir}
printf '%s\\n' ${pin} >"$d/known_hosts"
printf '%s' ${rsh} >"$d/rsh" && chmod 0700 "$d/rsh"
export FERRY_RSH="$d/rsh"
{ ${toCmd}; } </dev/null 1>&2`;
    proc = await to.spawn(script, { ...step, sudo: true, stdin: '' });
    if (interrupted) void proc.kill();
    const output = new Tail().collect(proc.stderr);
    proc.stdout.resume();
    let status: Awaited<RemoteProcess['done']>;
    try {
      status = await proc.done;
    } catch (e) {
      if (interrupted) throw interruptedError('the transfer');
      throw e;
    }
    return {
      route: 'direct',
      bytes: 0,
      seconds: (Date.now() - started) / 1000,
      from: { code: 0, signal: null },
      to: status,
      output: output.text(),
    };
  } finally {
    opts.signal?.removeEventListener('abort', onInterrupt);
    const settled = await Promise.allSettled(cleanups.map((c) => c()));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed && failed.status === 'rejected') {
      process.emitWarning(`duplex transfer cleanup failed: ${String(failed.reason)}`);
    }
  }
}
