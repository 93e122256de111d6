import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import test from 'ava';
import {
  PROBE_SCRIPT,
  parseDfAvailable,
  parseDuTotal,
  parseProbe,
} from '../../src/commands/check-probe.js';
import {
  authorizedKeyOptions,
  authorizedKeysFileScript,
  forcedCommand,
  removeKeyScript,
} from '../../src/ssh/direct.js';
import { $, Command } from '../../src/ssh/shell.js';
import { hostTargetOf } from '../../src/ssh/target.js';
import { wrapCommand } from '../../src/ssh/wrap.js';
import { formatBytes } from '../../src/util/format.js';
import { withoutProgressLines as withoutProgress } from '../../src/util/tail.js';

/** Runs a command line the way sshd would hand it to the login shell. */
function shell(line: string, input = ''): { out: string; code: number } {
  try {
    return {
      out: execFileSync('sh', ['-c', line], {
        input,
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
      code: 0,
    };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { out: err.stdout, code: err.status };
  }
}

test('values are quoted word by word and survive the remote shell', (t) => {
  const words = ["it's", 'a b', '$HOME', '`id`', ';rm -rf /', ''];
  const line = wrapCommand($`printf %s'|' ${words}`, { sudo: false });
  t.true(line.startsWith('bash -c '));
  t.is(shell(line).out, "it's|a b|$HOME|`id`|;rm -rf /||");
});

test('commands run strictly: a failure inside a pipe, or an unset variable, fails the whole', (t) => {
  t.is(shell(wrapCommand($`false | cat; echo after`, { sudo: false })).code, 1);
  t.is(shell(wrapCommand($`echo $UNSET_VAR_FERRY`, { sudo: false })).code, 1);
  t.is(shell(wrapCommand($`echo ${'a b'} | tr a-z A-Z`, { sudo: false })).out, 'A B\n');
});

test('sudo wraps the whole strict script with sudo -n', (t) => {
  const line = wrapCommand($`id -u`, { sudo: true });
  t.regex(line, /^sudo -n -- bash -c '/);
  t.true(line.includes('set -euo pipefail'));
});

test('the forced command runs the exact script, quotes and newlines included', (t) => {
  const cmd = $`printf '%s\n' ${'x "y" \'z\''}
echo second-line`;
  const forced = forcedCommand(cmd, { sudo: false });
  t.false(forced.includes('\n'));
  t.is(shell(forced).out, `x "y" 'z'\nsecond-line\n`);
  // What sshd reads back out of command="...": \" becomes ".
  const opts = authorizedKeyOptions(forced);
  const m = /command="((?:[^"\\]|\\.)*)"/.exec(opts);
  t.truthy(m);
  const parsed = (m?.[1] ?? '').replace(/\\"/g, '"');
  t.is(parsed, forced);
  t.true(opts.startsWith('restrict,'));
  for (const o of ['no-pty', 'no-agent-forwarding', 'no-port-forwarding', 'no-X11-forwarding'])
    t.true(opts.includes(o));
});

test('the forced command fails when its script fails', (t) => {
  t.is(shell(forcedCommand(Command.script('exit 7'), { sudo: false })).code, 7);
});

test('key removal keeps every other line', (t) => {
  const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
  const f = `${dir}/authorized_keys`;
  const other = 'ssh-ed25519 AAAAother user@laptop';
  execFileSync('sh', [
    '-c',
    `printf '%s\\n' '${other}' 'restrict ssh-ed25519 AAAAx ferry-direct-abc' '# keep' > ${f}; chmod 600 ${f}`,
  ]);
  const r = shell(wrapCommand(removeKeyScript(f, 'ferry-direct-abc'), { sudo: false }));
  t.is(r.code, 0);
  t.is(execFileSync('cat', [f], { encoding: 'utf8' }), `${other}\n# keep\n`);
  t.is(execFileSync('stat', ['-c', '%a', f], { encoding: 'utf8' }).trim(), '600');
  t.is(shell(wrapCommand(removeKeyScript(`${dir}/missing`, 'm'), { sudo: false })).code, 0);
  execFileSync('rm', ['-rf', dir]);
});

test('the authorized keys lookup falls back to ~/.ssh/authorized_keys', (t) => {
  const r = shell(wrapCommand(authorizedKeysFileScript(userInfo().username), { sudo: false }));
  t.is(r.code, 0);
  // No sshd is our ancestor here: the system config's (or OpenSSH's default) first entry.
  t.is(r.out, `${userInfo().homedir}/.ssh/authorized_keys\n`);
});

test('df and du output parse', (t) => {
  const df = `Filesystem     1-blocks        Used   Available Capacity Mounted on
/dev/sda1    100000000000 40000000000 60000000000      40% /
tmpfs          1000   0   1000   0% /x`;
  t.deepEqual(parseDfAvailable(df), [60000000000, 1000]);
  t.is(parseDuTotal('123\t/home/dokku\n877\t/var/lib/dokku\n'), 1000);
  t.is(formatBytes(1536), '1.54 kB');
  t.is(formatBytes(5 * 1000 ** 3), '5.00 GB');
  t.is(formatBytes(12), '12 B');
});

test('inventory hosts map onto SSH targets', (t) => {
  const h = hostTargetOf({
    name: 'old',
    address: '10.0.0.1',
    port: 22,
    user: 'root',
    identity: '/k',
    known_hosts: '/kh',
    sudo: false,
    host_key: 'SHA256:x',
  });
  t.deepEqual(h, {
    name: 'old',
    address: '10.0.0.1',
    port: 22,
    user: 'root',
    identity: '/k',
    knownHosts: '/kh',
    sudo: false,
    hostKey: 'SHA256:x',
  });
});

test('the check probe splits into sections with their exit codes', (t) => {
  const out =
    '\n@@ferry dokku-version\nbash: dokku: command not found\n@@rc 127\n\n@@ferry uid\n0\n\n@@ferry zstd\n/usr/bin/zstd\n\n@@ferry du\n';
  const s = parseProbe(out);
  t.deepEqual(s.get('dokku-version'), { text: 'bash: dokku: command not found', code: 127 });
  t.deepEqual(s.get('uid'), { text: '0\n', code: 0 });
  t.is(s.get('zstd')?.code, 0);
  t.is(s.get('du')?.text, '');
  t.is(s.get('missing'), undefined);
});

test('the check probe runs under strict bash and reports every section', (t) => {
  const r = shell(wrapCommand(PROBE_SCRIPT, { sudo: false }));
  t.is(r.code, 0);
  const s = parseProbe(r.out);
  t.deepEqual([...s.keys()], ['dokku-version', 'plugin-list', 'uid', 'arch', 'zstd', 'df', 'du']);
  t.regex(s.get('uid')?.text ?? '', /^\d+\n$/);
  t.true(parseDfAvailable(s.get('df')?.text ?? '').length > 0);
});

test('progress lines are dropped from the stderr an error shows; everything else stays', (t) => {
  const dd =
    '1048576 bytes (1.0 MB, 1.0 MiB) copied, 1 s, 1.0 MB/s\r2097152 bytes (2.1 MB) copied\r';
  const stderr = `${dd}512 bytes\n1024 bytes\ntar: var/lib/dokku/x: Cannot open: Permission denied\n`;
  t.is(withoutProgress(stderr), 'tar: var/lib/dokku/x: Cannot open: Permission denied\n');
  const plain = 'psql: error: connection refused\r\n2 bytes short\n';
  t.is(withoutProgress(plain), plain, 'untouched when there is no progress line');
});
