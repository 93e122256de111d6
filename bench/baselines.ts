/**
 * The baselines ferry's copy phase is measured against, run on the same data
 * and route: a raw OpenSSH tar | zstd | ssh | zstd -d | tar pipe (direct: the
 * target pulls; relay: through the controller), and the seed's own three
 * commands (tar -czf, scp -O, tar -xzf).
 */
import { spawn } from 'node:child_process';
import type { Lab, LabHost } from '../test/lab/lab.js';
import { DOKKU_PATHS } from './dataset.js';

const SSH_OPTS = (lab: Lab) => [
  '-i',
  lab.keyPath,
  '-o',
  `UserKnownHostsFile=${lab.knownHostsPath}`,
  '-o',
  'StrictHostKeyChecking=yes',
  '-o',
  'BatchMode=yes',
];

/** Runs a bash pipeline on the controller; rejects on a non-zero exit. */
export function local(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`exit ${code}: ${script}\n${err.slice(-2000)}`)),
    );
  });
}

/** Gives `target` a way to ssh to `source` as root for the raw direct pipe (bench only). */
export async function allowDirect(lab: Lab, target: LabHost): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const key = await readFile(lab.keyPath, 'utf8');
  const kh = await readFile(lab.knownHostsPath, 'utf8');
  await target.must('umask 077; cat > /tmp/bench-key', { input: key });
  await target.must('cat > /tmp/bench-kh', { input: kh });
}

const tarList = DOKKU_PATHS.join(' ');

export async function rawDirect(lab: Lab, source: LabHost, target: LabHost): Promise<void> {
  await target.must(
    `set -euo pipefail
     ssh -i /tmp/bench-key -o UserKnownHostsFile=/tmp/bench-kh -o StrictHostKeyChecking=yes -o BatchMode=yes \
       -c aes128-gcm@openssh.com root@${source.address} 'tar -C / -cf - ${tarList} | zstd -1 -T0 -q' \
       | zstd -d -q | tar -C / --numeric-owner -xpf -`,
  );
  void lab;
}

export async function rawRelay(lab: Lab, source: LabHost, target: LabHost): Promise<void> {
  const ssh = `ssh ${SSH_OPTS(lab).join(' ')} -c aes128-gcm@openssh.com`;
  await local(
    `${ssh} root@${source.address} 'tar -C / -cf - ${tarList} | zstd -1 -T0 -q' | ${ssh} root@${target.address} 'zstd -d -q | tar -C / --numeric-owner -xpf -'`,
  );
}

/** The seed's procedure: tar -czf on the source, scp -O, tar -xzf on the target. */
export async function seedCommands(lab: Lab, source: LabHost, target: LabHost): Promise<void> {
  await source.must(
    `mkdir -p /tmp/dokku-backups && tar -C / -czf /tmp/dokku-backups/b.tar.gz ${tarList}`,
  );
  const opts = SSH_OPTS(lab).join(' ');
  await local(
    `scp -O -3 ${opts} root@${source.address}:/tmp/dokku-backups/b.tar.gz root@${target.address}:/tmp/b.tar.gz`,
  );
  await target.must('tar -C / -xzf /tmp/b.tar.gz && rm -f /tmp/b.tar.gz');
  await source.must('rm -rf /tmp/dokku-backups');
}
