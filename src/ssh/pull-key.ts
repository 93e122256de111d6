/**
 * The commands of the direct route's one-transfer pull key, as data (no
 * connection here, so the planner and the sweep task can use them): make the
 * key pair on the target, find the source user's authorized keys file, add
 * the restricted key line, remove it, and sweep what an earlier run could not
 * remove (a run killed with SIGKILL, a host that went down mid-transfer).
 *
 * What a pull leaves while it runs, and how the sweep tells live from stale:
 *  - on the target, `/tmp/ferry-direct.XXXXXXXX/` (0700) with the private key
 *    `id` (its comment is the marker), `known_hosts`, and `pid` (the pull
 *    script's PID and start time, written when it starts). The dir is stale
 *    once that process is gone, or, with no `pid` yet, after a minute.
 *  - on the source, one authorized keys line ending in the marker, with
 *    `expiry-time` 12 h after it was added. A line is needed only until the
 *    pull has authenticated (ssh's ConnectTimeout is 10 s), so one added over
 *    a minute ago is stale whoever made it; so is one whose marker a stale
 *    temp dir names.
 */
import { $, bashC, type Command } from './shell.js';
import { wrapCommand } from './wrap.js';

/** Every pull key's comment starts with this, then 16 hex digits. */
export const PULL_MARKER_PREFIX = 'ferry-direct-';

/** A marker: {@link PULL_MARKER_PREFIX} and 16 hex digits. */
export const PULL_MARKER = /^ferry-direct-[0-9a-f]{16}$/;

/** The target's temp dirs of pulls: `mktemp -d` of this template. */
export const PULL_DIR_TEMPLATE = '/tmp/ferry-direct.XXXXXXXX';

/** Seconds after which a pull key line, or a temp dir without a `pid` file, is stale. */
export const PULL_STALE_SECONDS = 60;

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

/** Makes the key pair in a new root-only temp dir on the target; prints the dir, then the public key. */
export function makeKeyPairCommand(marker: string): Command {
  return $`umask 077
d=$(mktemp -d ${PULL_DIR_TEMPLATE})
ssh-keygen -q -t ed25519 -N '' -C ${marker} -f "$d/id" </dev/null >/dev/null
printf '%s\\n' "$d"
cat "$d/id.pub"`;
}

/**
 * The first lines of the pull script: its PID and start time in `$d/pid`, so
 * a later sweep can tell a pull that still runs from one whose controller or
 * host died. Renamed into place: a sweep never reads it half written.
 */
export const PULL_PID_LINE = $`read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ ferry_start _ </proc/$$/stat
printf '%s %s\\n' "$$" "$ferry_start" >"$d/pid.new" && mv -f "$d/pid.new" "$d/pid"`;

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

/** A shell expression for the authorized keys file of `user` (found as {@link authorizedKeysFileScript} does). */
export function authorizedKeysFileExpr(user: string): Command {
  return $`"$(${bashC(authorizedKeysFileScript(user))})"`;
}

/*
 * sshd reads the authorized keys file at every login: rewriting it in place
 * (truncate, then write) shows a concurrent login an empty or partial file,
 * and a pull that authenticates then is refused (seen: two ferry runs on one
 * source, one removing its key while the other's pull logged in). So a
 * removal writes a new file beside it and renames it over (same owner and
 * mode; a symlink's target is what changes), and the lock is the folder's,
 * since the file's inode changes. An addition appends in place: readers see
 * the old lines throughout.
 */

/** Locks the folder of `$f` (a symlink resolved first) on fd 9, exclusively. */
const LOCK_FOLDER = $`f=$(readlink -f -- "$f")
exec 9<"$(dirname -- "$f")"
flock -x 9`;

/** Replaces `$f` with `$t` in one rename, with `$f`'s owner and mode. */
const REPLACE = $`chown --reference="$f" -- "$t" && chmod --reference="$f" -- "$t" && mv -f -- "$t" "$f"`;

/** Shell (root, on the source) that appends the key line under the folder's lock; prints the file. */
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
${LOCK_FOLDER}
if [ -s "$f" ] && [ -n "$(tail -c1 "$f")" ]; then printf '\\n' >>"$f"; fi
printf '%s,expiry-time="%s" %s %s\\n' ${options} "$exp" ${pub} ${marker} >>"$f"
printf '%s\\n' "$f"`;
}

/** Shell (root, on the source) that removes every line carrying `marker`, keeping the file's owner and mode; one rename. */
export function removeKeyScript(file: string | Command, marker: string): Command {
  return $`f=${file}
m=${marker}
[ -f "$f" ] || exit 0
${LOCK_FOLDER}
grep -qF -- "$m" "$f" || exit 0
t=$(mktemp "$f.ferry.XXXXXX")
trap 'rm -f -- "$t"' EXIT
grep -vF -- "$m" "$f" >"$t" || true
${REPLACE}
! grep -qF -- "$m" "$f"`;
}

/**
 * Shell (root, on any host) that removes the stale pull temp dirs (see the
 * file's head) and prints `ferry-swept-dir DIR MARKER` for each, and
 * `ferry-live-dir DIR` for each left alone; and checksum FIFOs older than
 * `staleSeconds` (`ferry-swept-fifo PATH`).
 */
export function sweepPullDirsCommand(staleSeconds = PULL_STALE_SECONDS): Command {
  return $`now=$(date +%s)
for d in /tmp/ferry-direct.*; do
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  live=
  if [ -f "$d/pid" ]; then
    p=; s=; read -r p s <"$d/pid" || true
    if [[ $p =~ ^[0-9]+$ ]] && [ -r "/proc/$p/stat" ]; then
      read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ st _ <"/proc/$p/stat" || st=
      [ "$st" = "$s" ] && live=1
    fi
  elif [ $((now - $(stat -c %Y "$d"))) -lt ${String(staleSeconds)} ]; then
    live=1
  fi
  if [ -n "$live" ]; then printf 'ferry-live-dir %s\\n' "$d"; continue; fi
  m=; [ -f "$d/id.pub" ] && read -r _ _ m _ <"$d/id.pub" || true
  rm -rf -- "$d"
  printf 'ferry-swept-dir %s %s\\n' "$d" "\${m:-?}"
done
# The FIFO a checksum falls back to without python3 (tasks/common's hashed), left by a killed run.
for f in /tmp/ferry-sum.*; do
  [ -p "$f" ] && [ $((now - $(stat -c %Y "$f"))) -ge ${String(staleSeconds)} ] || continue
  rm -f -- "$f"
  printf 'ferry-swept-fifo %s\\n' "$f"
done`;
}

/**
 * Shell (root, on any host) that removes the stale pull key lines from the
 * authorized keys file of `user` (see the file's head): those carrying one of
 * the markers read from stdin, one a line (named by stale temp dirs), and
 * those added more than `staleSeconds` ago. Keeps the file's inode, owner and
 * mode and every other line; prints `ferry-swept-key FILE MARKER` for each
 * line removed.
 */
export function sweepPullKeysCommand(user: string, staleSeconds = PULL_STALE_SECONDS): Command {
  return $`declare -A gone=()
while read -r m; do if [[ $m =~ ^ferry-direct-[0-9a-f]+$ ]]; then gone[$m]=1; fi; done
f=${authorizedKeysFileExpr(user)}
[ -f "$f" ] || exit 0
grep -qF -- ${PULL_MARKER_PREFIX} "$f" || exit 0
${LOCK_FOLDER}
# expiry-time is the addition time plus 12 hours, in the host's own clock, to the minute.
age=${String(staleSeconds)}
cutoff=$(date -d "+12 hours -$age seconds" +%Y%m%d%H%M)
t=$(mktemp "$f.ferry.XXXXXX")
trap 'rm -f -- "$t"' EXIT
swept=()
while IFS= read -r line || [ -n "$line" ]; do
  if [[ $line =~ [[:space:]](ferry-direct-[0-9a-f]+)[[:space:]]*$ ]]; then
    m=\${BASH_REMATCH[1]}
    e=; [[ $line =~ expiry-time=\\"([0-9]{12})\\" ]] && e=\${BASH_REMATCH[1]}
    if [ -n "\${gone[$m]:-}" ] || [ -z "$e" ] || [[ ! $e > $cutoff ]]; then swept+=("$m"); continue; fi
  fi
  printf '%s\\n' "$line"
done <"$f" >"$t"
if [ \${#swept[@]} -gt 0 ]; then ${REPLACE}; fi
for m in "\${swept[@]}"; do printf 'ferry-swept-key %s %s\\n' "$f" "$m"; done`;
}

/** What a sweep command printed. */
export interface SweepOutput {
  /** `DIR MARKER` of each temp dir removed. */
  dirs: { dir: string; marker: string }[];
  /** Checksum FIFOs removed. */
  fifos: string[];
  /** Temp dirs of pulls still running, left alone. */
  live: string[];
  /** `FILE MARKER` of each key line removed. */
  keys: { file: string; marker: string }[];
}

/** Parses the output of {@link sweepPullDirsCommand} and {@link sweepPullKeysCommand}. */
export function parseSweep(stdout: string): SweepOutput {
  const out: SweepOutput = { dirs: [], fifos: [], live: [], keys: [] };
  for (const line of stdout.split('\n')) {
    const d = /^ferry-swept-dir (\/tmp\/ferry-direct\.\S+) (\S+)$/.exec(line);
    if (d) out.dirs.push({ dir: d[1]!, marker: d[2]! });
    const f = /^ferry-swept-fifo (\/tmp\/ferry-sum\.\S+)$/.exec(line);
    if (f) out.fifos.push(f[1]!);
    const l = /^ferry-live-dir (\S+)$/.exec(line);
    if (l) out.live.push(l[1]!);
    const k = /^ferry-swept-key (.+) (ferry-direct-[0-9a-f]+)$/.exec(line);
    if (k) out.keys.push({ file: k[1]!, marker: k[2]! });
  }
  return out;
}
