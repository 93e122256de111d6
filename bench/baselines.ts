/**
 * The baselines ferry's copy phase is measured against, run on the same data
 * and route: a raw OpenSSH `tar | zstd | ssh | zstd -d | tar` pipe (direct:
 * the target pulls from the source; relay: through the controller), the same
 * pipe with ferry's SHA-256 at both ends (what the checksum costs), and the
 * seed's own three commands (tar -czf, scp -O, tar -xzf).
 */
import { readFile } from 'node:fs/promises';
import { quote } from '../src/ssh/quote.js';
import { $ } from '../src/ssh/shell.js';
import { COMPRESSION, hashed } from '../src/tasks/common.js';
import type { Lab, LabHost } from '../test/lab/lab.js';
import { run } from '../test/lab/sys.js';
import { DOKKU_PATHS } from './dataset.js';

/** Runs a bash pipeline on the controller; rejects on a non-zero exit. */
export async function local(script: string): Promise<void> {
  const r = await run('bash', ['-c', `set -euo pipefail\n${script}`], { env: process.env });
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${script}\n${r.stderr.slice(-2000)}`);
}

/** Seconds `fn` takes. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

// The cipher ferry prefers (AES-GCM ran faster than chacha20 here), so both sides pay the same.
const CIPHER = ['-c', 'aes128-gcm@openssh.com'];
const TAR_LIST = DOKKU_PATHS.join(' ');
const SEND_CMD = $`tar -C / -cf - ${DOKKU_PATHS} | ${COMPRESSION.zstd.compress}`;
const RECEIVE_CMD = $`${COMPRESSION.zstd.decompress} | tar -C / --numeric-owner -xpf -`;
const SEND = SEND_CMD.render();
const RECEIVE = RECEIVE_CMD.render();
const sq = quote;

/** Gives `target` the lab key and known_hosts, so it can pull from the source (bench only). */
export async function allowDirect(lab: Lab, target: LabHost): Promise<void> {
  const key = await readFile(lab.keyPath, 'utf8');
  const kh = await readFile(lab.knownHostsPath, 'utf8');
  await target.must('umask 077; cat > /tmp/bench-key', { input: key });
  await target.must('cat > /tmp/bench-kh', { input: kh });
}

/** The ssh command (no destination) the target pulls with: the bench's key, known_hosts and cipher (rsync's -e). */
export function pullRsh(): string {
  return `ssh -F /dev/null -i /tmp/bench-key -o IdentitiesOnly=yes -o UserKnownHostsFile=/tmp/bench-kh -o StrictHostKeyChecking=yes -o BatchMode=yes ${CIPHER.join(' ')}`;
}

function pullSsh(source: LabHost): string {
  return `${pullRsh()} root@${source.address}`;
}

/** `ssh source CMD` as the target runs it to pull (the bench's own key and known_hosts). */
export function pullCommand(source: LabHost, cmd: string): string {
  return `${pullSsh(source)} ${sq(cmd)}`;
}

function relaySsh(lab: Lab): string {
  return ['ssh', ...lab.sshOptions(), ...CIPHER].join(' ');
}

/** Raw direct pipe: the target runs `ssh source 'tar | zstd' | zstd -d | tar x`. Returns seconds. */
export function rawDirect(_lab: Lab, source: LabHost, target: LabHost): Promise<number> {
  return timed(() => target.must(`set -euo pipefail; ${pullSsh(source)} ${sq(SEND)} | ${RECEIVE}`));
}

/** Raw relay pipe: `ssh source 'tar | zstd' | ssh target 'zstd -d | tar x'` on the controller. */
export function rawRelay(lab: Lab, source: LabHost, target: LabHost): Promise<number> {
  const ssh = relaySsh(lab);
  return timed(() =>
    local(
      `${ssh} root@${source.address} ${sq(SEND)} | ${ssh} root@${target.address} ${sq(RECEIVE)}`,
    ),
  );
}

/**
 * The raw direct pipe with ferry's own checksum wrapper at both ends (a FIFO
 * tee into sha256sum), and a check that the two sums agree: what ferry's
 * end-to-end checksum costs on top of the bare pipe.
 */
export function rawDirectSummed(_lab: Lab, source: LabHost, target: LabHost): Promise<number> {
  const send = hashed(SEND_CMD, '/tmp/bench-sent.sha256', 'out').render();
  const receive = hashed(RECEIVE_CMD, '/tmp/bench-recv.sha256', 'in').render();
  return timed(async () => {
    await target.must(`set -euo pipefail; ${pullSsh(source)} ${sq(send)} | bash -c ${sq(receive)}`);
    const [a, b] = await Promise.all([
      source.must('cat /tmp/bench-sent.sha256'),
      target.must('cat /tmp/bench-recv.sha256'),
    ]);
    if (a.trim() !== b.trim() || !/^[0-9a-f]{64}$/.test(a.trim())) {
      throw new Error(`checksums differ: sent ${a.trim()}, received ${b.trim()}`);
    }
  });
}

/** Seconds of each of the seed's three commands. */
export interface SeedTimes {
  tar: number;
  scp: number;
  untar: number;
  total: number;
}

/**
 * The seed's procedure (Dokku's "Backup and Recovery"): tar -czf on the
 * source, scp -O to the target (through the controller: -3), tar -xzf there.
 */
export async function seedCommands(lab: Lab, source: LabHost, target: LabHost): Promise<SeedTimes> {
  const tar = await timed(() =>
    source.must(
      `mkdir -p /tmp/dokku-backups && tar -C / -czf /tmp/dokku-backups/b.tar.gz ${TAR_LIST}`,
    ),
  );
  const opts = [...lab.sshOptions(), ...CIPHER].join(' ');
  const scp = await timed(() =>
    local(
      `scp -O -3 ${opts} root@${source.address}:/tmp/dokku-backups/b.tar.gz root@${target.address}:/tmp/b.tar.gz`,
    ),
  );
  const untar = await timed(() => target.must('tar -C / -xzf /tmp/b.tar.gz'));
  await Promise.all([target.must('rm -f /tmp/b.tar.gz'), source.must('rm -rf /tmp/dokku-backups')]);
  return { tar, scp, untar, total: tar + scp + untar };
}
