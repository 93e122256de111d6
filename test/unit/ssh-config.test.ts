/**
 * ssh_config read as OpenSSH reads it: Host patterns, the first value
 * obtained wins, Include, Match, tokens, ProxyJump forms. Files live in
 * memory; the real-file checks (permissions, glob on disk) are at the end.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  expandPathValue,
  globFiles,
  hostLineMatches,
  matchPattern,
  matchPatternList,
  parseProxyJump,
  readConfigFile,
  resolveSshHost,
  type SshConfigContext,
} from '../../src/ssh/config.js';

const HOME = '/home/ann';

function ctx(files: Record<string, string>, env: Record<string, string> = {}): SshConfigContext {
  return {
    home: HOME,
    localUser: 'ann',
    uid: 1000,
    localHost: 'laptop.example.org',
    env,
    readFile: (p) => files[p],
    glob: (p) =>
      /[*?]/.test(p)
        ? Object.keys(files)
            .filter((f) => matchPattern(f, p))
            .sort()
        : [p],
  };
}

const CONFIG = `${HOME}/.ssh/config`;

test('patterns: * any run, ? exactly one character, the rest literal and case-sensitive', (t) => {
  t.true(matchPattern('web1', 'web?'));
  t.false(matchPattern('web', 'web?'), '? is one character, not zero or one');
  t.false(matchPattern('web12', 'web?'));
  t.true(matchPattern('db.example.com', '*.example.com'));
  t.false(matchPattern('dbxexample.com', 'db.example.com'), '. is literal');
  t.false(matchPattern('Web1', 'web?'), 'Host patterns are case-sensitive');
  t.true(matchPattern('', '*'));
});

test('a Host line: any word matches, a matching !word vetoes the whole line', (t) => {
  t.true(hostLineMatches(['web-*', '!web-bad'], 'web-1'));
  t.false(hostLineMatches(['web-*', '!web-bad'], 'web-bad'));
  t.false(hostLineMatches(['!web-bad'], 'other'), 'a negation alone matches nothing');
  t.true(hostLineMatches(['a', 'b'], 'b'));
});

test('a pattern-list (Match): commas, negation first, optional lower-casing', (t) => {
  t.true(matchPatternList('host3', '!host1,!host2,*'));
  t.false(matchPatternList('host3', '!host1,!host2'));
  t.false(matchPatternList('host1', '*,!host1'));
  t.true(matchPatternList('DB.Example.COM', '*.example.com', true));
});

test('the first value obtained wins; IdentityFile adds up, in order', (t) => {
  const c = ctx({
    [CONFIG]: `# a comment
Host prod-old
  HostName 203.0.113.10
  User deploy
  IdentityFile ~/.ssh/prod

Host prod-*
  User nobody
  Port 2222
  IdentityFile ~/.ssh/prod-all

Host *
  User root
  Port 22
  IdentityFile ~/.ssh/id_ed25519
  IdentitiesOnly yes
`,
  });
  const r = resolveSshHost(CONFIG, 'prod-old', c);
  t.deepEqual(r.problems, []);
  t.is(r.hostName?.value, '203.0.113.10');
  t.like(r.hostName, { file: CONFIG, line: 3, column: 12 });
  t.is(r.user?.value, 'deploy');
  t.is(r.port?.value, 2222);
  t.like(r.port, { line: 9 });
  t.deepEqual(
    r.identityFiles.map((f) => f.value),
    ['~/.ssh/prod', '~/.ssh/prod-all', '~/.ssh/id_ed25519'],
  );
  t.is(r.identitiesOnly?.value, true);
  t.true(r.named);

  const other = resolveSshHost(CONFIG, 'staging', c);
  t.is(other.hostName, undefined);
  t.is(other.user?.value, 'root');
  t.false(other.named, 'only Host * applied');
});

test('a value before any Host applies to every host and wins over later sections', (t) => {
  const c = ctx({ [CONFIG]: 'User early\nHost x\n  User late\n' });
  t.is(resolveSshHost(CONFIG, 'x', c).user?.value, 'early');
});

test('key=value, quotes and keyword case are read as ssh reads them', (t) => {
  const c = ctx({
    [CONFIG]: 'HOST "my box" other\n  hostname=10.0.0.7\n  IDENTITYFILE "~/.ssh/my key"\n',
  });
  const r = resolveSshHost(CONFIG, 'my box', c);
  t.is(r.hostName?.value, '10.0.0.7');
  t.deepEqual(
    r.identityFiles.map((f) => f.value),
    ['~/.ssh/my key'],
  );
});

test('HostName expands %h and %%', (t) => {
  const c = ctx({ [CONFIG]: 'Host *\n  HostName %h.internal.example.com\n' });
  t.is(resolveSshHost(CONFIG, 'web1', c).hostName?.value, 'web1.internal.example.com');
});

test('Include: relative to ~/.ssh, globs in lexical order, in place, only where its section applies', (t) => {
  const c = ctx({
    [CONFIG]: `Include conf.d/*.conf
Host web
  Include web-extra
Host *
  User fallback
`,
    [`${HOME}/.ssh/conf.d/20-b.conf`]: 'Host web\n  Port 2202\n  User from-b\n',
    [`${HOME}/.ssh/conf.d/10-a.conf`]: 'Host web\n  Port 2201\n',
    [`${HOME}/.ssh/web-extra`]: 'HostName 198.51.100.7\nUser from-extra\n',
    [`${HOME}/.ssh/conf.d/notes.txt`]: 'Host web\n  Port 9999\n',
  });
  const r = resolveSshHost(CONFIG, 'web', c);
  t.deepEqual(r.problems, []);
  t.is(r.port?.value, 2201, '10-a.conf is read before 20-b.conf');
  t.is(r.port?.file, `${HOME}/.ssh/conf.d/10-a.conf`);
  t.is(r.user?.value, 'from-b', 'the included file came first');
  t.is(r.hostName?.value, '198.51.100.7');
  t.like(r.hostName, { file: `${HOME}/.ssh/web-extra`, line: 1 });
  const db = resolveSshHost(CONFIG, 'db', c);
  t.is(db.hostName, undefined, 'web-extra is included only under Host web');
  t.is(db.user?.value, 'fallback');
});

test('a Host line inside an included file does not leak into the including file', (t) => {
  const c = ctx({
    [CONFIG]: 'Include inc\nUser after-include\n',
    [`${HOME}/.ssh/inc`]: 'Host nothing-matches\n  Port 1\n',
  });
  t.is(resolveSshHost(CONFIG, 'x', c).user?.value, 'after-include');
});

test('Include that includes itself stops at 16 levels with one problem', (t) => {
  const c = ctx({ [CONFIG]: 'Include config\n' });
  const r = resolveSshHost(CONFIG, 'x', c);
  t.is(r.problems.length, 1);
  t.regex(r.problems[0]!.message, /nests more than 16/);
});

// biome-ignore lint/suspicious/noTemplateCurlyInString: ssh_config's own ${VAR} syntax
test('Include with ~, ${VAR} and tokens; an unset variable is a problem at its line', (t) => {
  const c = ctx(
    {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ssh_config's own ${VAR} syntax
      [CONFIG]: 'Include ~/cfg/${TEAM}.conf %d/other-%u\nHost *\n  Include ${NOPE}/x\n',
      [`${HOME}/cfg/ops.conf`]: 'Port 2022\n',
      [`${HOME}/other-ann`]: 'User from-token\n',
    },
    { TEAM: 'ops' },
  );
  const r = resolveSshHost(CONFIG, 'x', c);
  t.is(r.port?.value, 2022);
  t.is(r.user?.value, 'from-token');
  t.is(r.problems.length, 1);
  t.like(r.problems[0], { line: 3 });
  t.regex(r.problems[0]!.message, /NOPE is not set/);
});

test('Match host/originalhost/user/localuser, negation, all; exec is not run', (t) => {
  const c = ctx({
    [CONFIG]: `Host short
  HostName long.example.com
Match host *.example.com !user root
  Port 2200
Match originalhost short localuser ann
  IdentityFile ~/.ssh/short
Match exec "touch /tmp/ferry-should-not-exist"
  User from-exec
Match all
  User everyone
`,
  });
  const r = resolveSshHost(CONFIG, 'short', c);
  t.is(r.port?.value, 2200, 'Match host sees the HostName');
  t.deepEqual(
    r.identityFiles.map((f) => f.value),
    ['~/.ssh/short'],
  );
  t.is(r.user?.value, 'everyone');
  t.is(r.warnings.length, 1);
  t.like(r.warnings[0], { line: 7 });
  t.regex(r.warnings[0]!.message, /Match exec is not evaluated/);
  const asRoot = resolveSshHost(CONFIG, 'short', c, { user: 'root' });
  t.is(asRoot.port, undefined, '!user root vetoes for the user decided elsewhere');
});

test('Match final: a second pass, with Host patterns matched against the HostName', (t) => {
  const c = ctx({
    [CONFIG]: `Host alias
  HostName real.example.com
Match final host real.example.com
  Port 2300
Host real.example.com
  User from-final-pass
`,
  });
  const r = resolveSshHost(CONFIG, 'alias', c);
  t.is(r.port?.value, 2300);
  t.is(r.user?.value, 'from-final-pass');
});

test('bad values are problems where they are written', (t) => {
  const c = ctx({
    [CONFIG]: 'Host x\n  Port twenty\n  IdentitiesOnly maybe\n  ProxyJump a@:22\n',
  });
  const r = resolveSshHost(CONFIG, 'x', c);
  t.deepEqual(
    r.problems.map((p) => p.line),
    [2, 3, 4],
  );
  t.like(r.problems[0], { column: 8 });
});

test('ProxyJump: user@host:port, ssh:// URIs, [IPv6]:port, chains, none', (t) => {
  t.deepEqual(parseProxyJump('bastion'), [{ host: 'bastion' }]);
  t.deepEqual(parseProxyJump('jump@bastion:2200'), [{ host: 'bastion', user: 'jump', port: 2200 }]);
  t.deepEqual(parseProxyJump('ssh://ops@gw.example.com:2222,inner'), [
    { host: 'gw.example.com', user: 'ops', port: 2222 },
    { host: 'inner' },
  ]);
  t.deepEqual(parseProxyJump('[2001:db8::1]:22'), [{ host: '2001:db8::1', port: 22 }]);
  t.deepEqual(parseProxyJump('a@b@c'), [{ host: 'c', user: 'a@b' }], 'the last @ splits');
  t.is(parseProxyJump('NONE'), 'none');
  t.throws(() => parseProxyJump('host:99999'), { message: /not a port/ });
  t.throws(() => parseProxyJump('ssh://h/path'), { message: /path/ });
  t.throws(() => parseProxyJump('a,,b'), { message: /names no host/ });
});

test('the first ProxyJump wins, none included', (t) => {
  const c = ctx({ [CONFIG]: 'Host inner\n  ProxyJump none\nHost *\n  ProxyJump bastion\n' });
  t.is(resolveSshHost(CONFIG, 'inner', c).proxyJump?.value, 'none');
  t.deepEqual(resolveSshHost(CONFIG, 'outer', c).proxyJump?.value, [{ host: 'bastion' }]);
});

// biome-ignore lint/suspicious/noTemplateCurlyInString: ssh_config's own ${VAR} syntax
test('IdentityFile tokens: %d %h %u %r %p %n %% ~ and ${VAR}, as ssh expands them', (t) => {
  const c = ctx({}, { KEYS: '/keys' });
  const conn = { alias: 'prod', host: 'prod.example.com', user: 'deploy', port: 2222, jump: '' };
  t.is(expandPathValue('~/.ssh/%h-%r', c, conn), `${HOME}/.ssh/prod.example.com-deploy`);
  t.is(expandPathValue('%d/k/%u/%n/%p/100%%', c, conn), `${HOME}/k/ann/prod/2222/100%`);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ssh_config's own ${VAR} syntax
  t.is(expandPathValue('${KEYS}/%r', c, conn), '/keys/deploy');
  t.regex(expandPathValue('/x/%C', c, conn), /^\/x\/[0-9a-f]{40}$/);
  t.throws(() => expandPathValue('/x/%T', c, conn), { message: /%T is not supported/ });
  t.throws(() => expandPathValue('~bob/key', c, conn), { message: /only ~\// });
});

test('on disk: a config others may write is refused; a missing one is no config; globs', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sshcfg-'));
  try {
    const f = join(dir, 'config');
    t.is(readConfigFile(f, process.getuid?.() ?? 0), undefined);
    writeFileSync(f, 'Host x\n');
    chmodSync(f, 0o666);
    t.throws(() => readConfigFile(f, process.getuid?.() ?? 0), {
      message: /bad owner or permissions/,
    });
    chmodSync(f, 0o600);
    t.is(readConfigFile(f, process.getuid?.() ?? 0), 'Host x\n');
    mkdirSync(join(dir, 'conf.d'));
    for (const n of ['b.conf', 'a.conf', '.hidden.conf', 'c.txt']) {
      writeFileSync(join(dir, 'conf.d', n), '');
    }
    t.deepEqual(globFiles(join(dir, 'conf.d', '*.conf')), [
      join(dir, 'conf.d', 'a.conf'),
      join(dir, 'conf.d', 'b.conf'),
    ]);
    t.deepEqual(globFiles(join(dir, 'conf.d', '[ab].co?f')), [
      join(dir, 'conf.d', 'a.conf'),
      join(dir, 'conf.d', 'b.conf'),
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same answers as OpenSSH itself (`ssh -G`) on one configuration', async (t) => {
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('ssh', ['-V']).error) {
    t.pass('no ssh on this machine');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sshcfg-'));
  try {
    const cfg = join(dir, 'config');
    writeFileSync(
      cfg,
      `Include ${dir}/inc/*.conf
Host web? !web9
  HostName %h.example.com
  IdentityFile ${dir}/k-%r-%p
Host db
  ProxyJump ops@gw:2200,inner
Match host *.example.com
  Port 2201
Host *
  User deployer
  IdentityFile ${dir}/fallback
`,
    );
    mkdirSync(join(dir, 'inc'));
    writeFileSync(join(dir, 'inc', 'b.conf'), 'Host web1\n  Port 2999\n');
    writeFileSync(join(dir, 'inc', 'a.conf'), 'Host web1\n  User from-a\n');
    for (const f of [cfg, join(dir, 'inc', 'a.conf'), join(dir, 'inc', 'b.conf')])
      chmodSync(f, 0o600);
    const c = {
      ...ctx({}),
      readFile: (p: string) => readConfigFile(p, process.getuid?.() ?? 0),
      glob: (p: string) => (/[*?[]/.test(p) ? globFiles(p) : [p]),
    };
    for (const alias of ['web1', 'web9', 'db', 'other']) {
      const g = spawnSync('ssh', ['-G', '-F', cfg, alias], { encoding: 'utf8' });
      const want = new Map<string, string[]>();
      for (const l of g.stdout.split('\n')) {
        const [k, ...v] = l.split(' ');
        if (k) want.set(k, [...(want.get(k) ?? []), v.join(' ')]);
      }
      const r = resolveSshHost(cfg, alias, c);
      const host = r.hostName?.value ?? alias;
      const port = r.port?.value ?? 22;
      t.is(host, want.get('hostname')?.[0] ?? '(none)', `${alias}: hostname`);
      t.is(r.user?.value, want.get('user')?.[0], `${alias}: user`);
      t.is(String(port), want.get('port')?.[0] ?? '(none)', `${alias}: port`);
      // ssh -G prints IdentityFile before its tokens are expanded (they are at connect time).
      t.deepEqual(
        r.identityFiles.map((f) => f.value),
        want.get('identityfile') ?? [],
        `${alias}: identity files`,
      );
      const pj = r.proxyJump?.value;
      t.is(
        pj === undefined || pj === 'none'
          ? undefined
          : pj
              .map((h) => `${h.user ? `${h.user}@` : ''}${h.host}${h.port ? `:${h.port}` : ''}`)
              .join(','),
        want.get('proxyjump')?.[0],
        `${alias}: proxyjump`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
