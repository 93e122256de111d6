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
import { interruptedError, type TransferOptions, type TransferResult, throttle } from './relay.js';
import type { ExitStatus, Remote, RemoteProcess } from './remote.js';
import { $, bashC, type Command } from './shell.js';
import { strict, wrapCommand } from './wrap.js';

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

/**
 * The command line an authorized_keys `command="..."` option runs: the
 * script travels base64-encoded so that neither newlines nor quotes can break
 * out of the option.
 */
export function forcedCommand(cmd: Command, opts: { sudo: boolean }): string {
  const inner = wrapCommand(cmd, { sudo: false });
  const b64 = Buffer.from(inner, 'utf8').toString('base64');
  const run = `bash -c "$(printf %s ${b64} | base64 -d)"`;
  return opts.sudo ? `sudo -n -- ${run}` : run;
}

/** The authorized_keys line for the one-transfer key (expiry-time is filled in on the source). */
export function authorizedKeyOptions(command: string): string {
  const escaped = command.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return `restrict,command="${escaped}",no-pty,no-agent-forwarding,no-port-forwarding,no-X11-forwarding`;
}

/**
 * Shell (run as root on the source) that prints the authorized keys file sshd
 * uses for `user`: asks the sshd we are connected through (its `-f` config,
 * found by walking up our process tree) with `sshd -T`, falls back to
 * `~user/.ssh/authorized_keys`.
 */
export function authorizedKeysFileScript(user: string): Command {
  return $`u=${user}
home=$(getent passwd "$u" | cut -d: -f6)
uid=$(id -u "$u")
[ -n "$home" ] || { echo "no user $u" >&2; exit 1; }
conf=
p=$$
# bash builtins only: a fork per ancestor made this walk 130 ms of a 160 ms lookup.
while [ "$p" -gt 1 ] 2>/dev/null; do
  c=; read -r c </proc/$p/comm 2>/dev/null || true
  if [ "$c" = sshd ]; then
    a=(); mapfile -d '' -t a </proc/$p/cmdline 2>/dev/null || true
    args="\${a[*]}"
    if [[ $args =~ (^|[[:space:]])-f[[:space:]]*([^[:space:]]+) ]]; then conf=\${BASH_REMATCH[2]}; else conf=; fi
  fi
  q=0
  while read -r k v; do if [ "$k" = PPid: ]; then q=$v; break; fi; done </proc/$p/status 2>/dev/null || true
  p=$q
done
line=$(PATH=$PATH:/usr/sbin:/sbin sshd -T \${conf:+-f "$conf"} -C "user=$u,host=localhost,addr=127.0.0.1" 2>/dev/null | awk 'tolower($1)=="authorizedkeysfile"{print $2; exit}' || true)
[ -n "$line" ] && [ "$line" != none ] || line=.ssh/authorized_keys
line=\${line//%%/$'\\001'}
line=\${line//%h/$home}
line=\${line//%u/$u}
line=\${line//%U/$uid}
line=\${line//$'\\001'/%}
case $line in /*) ;; *) line=$home/$line ;; esac
printf '%s\\n' "$line"`;
}

/** Shell (root, on the source) that appends the key line under an exclusive lock. */
export function addKeyScript(
  user: string,
  file: string | Command,
  options: string,
  pub: string,
  marker: string,
): Command {
  return $`u=${user}
f=${file}
if [ ! -e "$f" ]; then
  d=$(dirname "$f")
  if [ ! -d "$d" ]; then mkdir -p "$d"; chown "$u": "$d"; chmod 700 "$d"; fi
  ( umask 077; : >>"$f" )
  chown "$u": "$f"
fi
exp=$(date -d '+12 hours' +%Y%m%d%H%M)
exec 9>>"$f"
flock -x 9
if [ -s "$f" ] && [ -n "$(tail -c1 "$f")" ]; then printf '\\n' >&9; fi
printf '%s,expiry-time="%s" %s %s\\n' ${options} "$exp" ${pub} ${marker} >&9
printf '%s\\n' "$f"`;
}

/** A shell expression for the authorized keys file of `user` (found as {@link authorizedKeysFileScript} does). */
export function authorizedKeysFileExpr(user: string): Command {
  return $`"$(${bashC(authorizedKeysFileScript(user))})"`;
}

/** Shell (root, on the source) that removes every line carrying `marker`, keeping the file's inode, owner and mode. */
export function removeKeyScript(file: string | Command, marker: string): Command {
  return $`f=${file}
m=${marker}
[ -f "$f" ] || exit 0
exec 9<"$f"
flock -x 9
grep -qF -- "$m" "$f" || exit 0
t=$(mktemp "$f.ferry.XXXXXX")
grep -vF -- "$m" "$f" >"$t" || true
cat "$t" >"$f"
rm -f "$t"
! grep -qF -- "$m" "$f"`;
}

/** Runs every cleanup at once, even when one fails; returns the failures. */
async function runCleanups(cleanups: (() => Promise<unknown>)[]): Promise<unknown[]> {
  const settled = await Promise.allSettled(cleanups.map((c) => c()));
  return settled.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
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
  const marker = `ferry-direct-${randomBytes(8).toString('hex')}`;
  const cleanups: (() => Promise<unknown>)[] = [];
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
  try {
    // 1. Key pair on the target, in a root-only temp dir; meanwhile the source
    //    says which authorized keys file its sshd reads.
    const user = from.host.user;
    const [made, found] = await Promise.all([
      to.run(
        $`umask 077
d=$(mktemp -d /tmp/ferry-direct.XXXXXXXX)
ssh-keygen -q -t ed25519 -N '' -C ${marker} -f "$d/id" </dev/null >/dev/null
printf '%s\\n' "$d"
cat "$d/id.pub"`,
        { ...step, sudo: true },
      ),
      // A failed lookup is not fatal here: the addition looks again and reports it.
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
    const pub = `${m[1]} ${m[2]}`;
    if (interrupted) throw interruptedError('the transfer');

    // 2. The key, restricted to the one export command, on the source.
    const fromSudo = from.host.sudo && user !== 'root';
    const options = authorizedKeyOptions(forcedCommand(fromCmd, { sudo: fromSudo }));
    // Removal is registered before the addition, so a failure half-way through it
    // still gets cleaned up; it uses the file the addition wrote to once known.
    let akFile: string | Command = found.startsWith('/') ? found : authorizedKeysFileExpr(user);
    cleanups.push(() => from.run(removeKeyScript(akFile, marker), { sudo: true }));
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
    // on pulling into an orphaned pipe.
    const script = $`d=${dir}
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
    let statuses: number[] | undefined;
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
        }
        const s = /^ferry-pipestatus (\d+) (\d+)$/.exec(p);
        if (s) statuses = [Number(s[1]), Number(s[2])];
      }
    });
    const output = new Tail().collect(proc.stdout);
    try {
      await proc.done;
    } catch (e) {
      if (interrupted) throw interruptedError('the transfer');
      throw e;
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
    const cleanupErrors = await runCleanups(cleanups);
    process.removeListener('SIGINT', onInterrupt);
    if (failure === undefined && cleanupErrors.length > 0) failure = cleanupErrors[0];
    else if (cleanupErrors.length > 0 && failure instanceof FerryError) {
      // The transfer's failure is the story, but a key left behind must not go unsaid.
      process.emitWarning(`direct transfer cleanup also failed: ${String(cleanupErrors[0])}`);
    }
  }
  if (failure !== undefined) throw failure;
  if (!result) throw new FerryError('the direct transfer ended without a result');
  return result;
}
