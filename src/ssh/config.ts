/**
 * OpenSSH's client configuration (`~/.ssh/config`), read as `ssh` reads it
 * (ssh_config(5); readconf.c of OpenSSH for what the page leaves out).
 *
 * The text is tokenised by the `ssh-config` package (cyjake/ssh-config:
 * quotes, `key=value`, multi-word values). Its `compute()` is not used: it
 * does not follow `Include`, reads `?` as "zero or one character", and runs
 * `Match exec` commands through a shell. The evaluation is ours:
 *
 *  - `Host` patterns are words, each `*`/`?` glob, `!` negating; matched
 *    case-sensitively against the name as given (`ssh NAME`);
 *  - for each keyword the first value obtained wins; `IdentityFile` (and
 *    `CertificateFile`) add to a list instead;
 *  - `Include` reads files (globs, sorted; relative paths are under
 *    `~/.ssh`) in place, at most 16 deep, only where its section applies;
 *  - `Match` with `all`, `host`, `originalhost`, `user`, `localuser`,
 *    `canonical` (never: ferry does not canonicalise) and `final` (a second
 *    pass, as ssh makes); a `Match` with another criterion (`exec`,
 *    `localnetwork`, `tagged`, ...) is not evaluated: its section is skipped
 *    with a warning (ferry runs no command from a config file);
 *  - tokens (`%d %h %u %r %p %n %i %l %L %C %j %k %%`), `~` and `${VAR}` are
 *    expanded in IdentityFile, IdentityAgent, UserKnownHostsFile and Include;
 *    `%h` and `%%` in HostName.
 *
 * Every value keeps the file, line and column it came from, so a bad
 * HostName or ProxyJump is reported where it is written.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import SSHConfig, { type Line, LineType } from 'ssh-config';
import type { Diagnostic } from '../errors.js';

/** What the configuration is read against: this machine's user, files and environment. */
export interface SshConfigContext {
  /** The local user's home (`~`, `%d`). */
  home: string;
  /** The local user's name (`%u`, the default remote user). */
  localUser: string;
  /** The local user id (`%i`). */
  uid: number;
  /** This machine's name (`%L`, `%l`). */
  localHost: string;
  /** For `${VAR}` in paths. */
  env: Readonly<Record<string, string | undefined>>;
  /** A file's text, or undefined when there is none. Throws an InputError-worthy message otherwise. */
  readFile(path: string): string | undefined;
  /** The files a glob names, sorted as glob(3) sorts them. */
  glob(pattern: string): string[];
}

/** A value and where it was written. */
export interface Located<T> {
  value: T;
  file: string;
  line: number;
  column: number;
}

/** One hop of a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

/** What the configuration says about one destination, as ssh would use it. */
export interface SshHostConfig {
  /** The name looked up (what would follow `ssh`). */
  alias: string;
  /** Whether a `Host` or `Match` line other than a bare `*` applied to it. */
  named: boolean;
  hostName?: Located<string>;
  user?: Located<string>;
  port?: Located<number>;
  /** IdentityFile values in order, tokens not yet expanded (they need the final user and port). */
  identityFiles: Located<string>[];
  identitiesOnly?: Located<boolean>;
  identityAgent?: Located<string>;
  proxyJump?: Located<JumpSpec[] | 'none'>;
  proxyCommand?: Located<string>;
  userKnownHostsFile?: Located<string[]>;
  hostKeyAlias?: Located<string>;
  /** What was read but not acted on (a Match ferry does not evaluate). */
  warnings: Diagnostic[];
  /** What is wrong in the configuration for this host. */
  problems: Diagnostic[];
}

/** How deep Include may nest (OpenSSH's READCONF_MAX_DEPTH). */
const MAX_DEPTH = 16;

/** One directive of a file, flattened, with its position. */
interface Entry {
  keyword: string;
  args: string[];
  /** Where the directive's first argument starts. */
  file: string;
  line: number;
  column: number;
  /** Directives of a Host/Match section. */
  section?: Entry[];
}

/**
 * Parses one file's text into directives with their positions. Lines are
 * counted from the whitespace the tokeniser keeps around each directive.
 */
export function parseSshConfig(text: string, file: string): Entry[] {
  const config = SSHConfig.parse(text);
  let line = 1;
  const walk = (lines: readonly Line[]): Entry[] => {
    const out: Entry[] = [];
    for (const l of lines) {
      const before = l.before ?? '';
      const nlBefore = before.split('\n').length - 1;
      const startLine = line + nlBefore;
      const indent = before.slice(before.lastIndexOf('\n') + 1).length;
      line = startLine + ((l.after ?? '').split('\n').length - 1);
      if (l.type !== LineType.DIRECTIVE) continue;
      const args = Array.isArray(l.value) ? l.value.map((v) => v.val) : [l.value];
      const entry: Entry = {
        keyword: l.param.toLowerCase(),
        args,
        file,
        line: startLine,
        column: indent + l.param.length + l.separator.length + 1,
      };
      if ('config' in l && l.config) {
        entry.section = walk(l.config);
      }
      out.push(entry);
    }
    return out;
  };
  return walk(config);
}

/** OpenSSH's `match_pattern`: `*` any run, `?` exactly one character, the rest literal. */
export function matchPattern(text: string, pattern: string): boolean {
  let re = '';
  for (const ch of pattern) {
    re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's').test(text);
}

/**
 * A comma-separated pattern-list (ssh_config(5) PATTERNS): false when a
 * negated pattern matches, else true when any other does.
 */
export function matchPatternList(text: string, list: string, lower = false): boolean {
  const t = lower ? text.toLowerCase() : text;
  let hit = false;
  for (const raw of list.split(',')) {
    const neg = raw.startsWith('!');
    const p = lower ? (neg ? raw.slice(1) : raw).toLowerCase() : neg ? raw.slice(1) : raw;
    if (matchPattern(t, p)) {
      if (neg) return false;
      hit = true;
    }
  }
  return hit;
}

/** Whether a `Host` line's words apply to `host` (a matching `!word` vetoes the line). */
export function hostLineMatches(words: readonly string[], host: string): boolean {
  let hit = false;
  for (const w of words) {
    if (w.startsWith('!')) {
      if (matchPattern(host, w.slice(1))) return false;
    } else if (matchPattern(host, w)) {
      hit = true;
    }
  }
  return hit;
}

/** Parses a ProxyJump value; throws a message on a malformed hop. */
export function parseProxyJump(value: string): JumpSpec[] | 'none' {
  const v = value.replace(/#.*$/, '').trim();
  if (v.toLowerCase() === 'none') return 'none';
  if (v === '') throw new Error('ProxyJump is empty');
  return v.split(',').map((hop) => {
    let rest = hop;
    const uri = /^ssh:\/\//i.exec(rest);
    if (uri) {
      rest = rest.slice(uri[0].length);
      if (rest.includes('/')) throw new Error(`"${hop}": an ssh:// URI with a path`);
    }
    let user: string | undefined;
    const at = rest.lastIndexOf('@');
    if (at >= 0) {
      user = rest.slice(0, at);
      rest = rest.slice(at + 1);
      if (uri) user = decodeURIComponent(user).replace(/;.*$/, '');
    }
    let host = rest;
    let port: number | undefined;
    const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(rest);
    if (bracket) {
      host = bracket[1] ?? '';
      if (bracket[2] !== undefined) port = portOf(bracket[2], hop);
    } else if (rest.split(':').length === 2) {
      const [h, p] = rest.split(':');
      host = h ?? '';
      port = portOf(p ?? '', hop);
    }
    if (host === '') throw new Error(`"${hop}" names no host`);
    if (user === '') throw new Error(`"${hop}" has an empty user before "@"`);
    return { host, ...(user !== undefined ? { user } : {}), ...(port ? { port } : {}) };
  });
}

function portOf(text: string, hop: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new Error(`"${hop}": "${text}" is not a port (1 to 65535)`);
  }
  return Number(text);
}

/** The values a token may stand for; a missing one makes its use an error. */
export type Tokens = Partial<Record<string, string>>;

/**
 * Expands `%x` tokens (ssh_config(5) TOKENS), `${VAR}` and a leading `~` in a
 * value; throws a message naming what could not be expanded.
 */
export function expandValue(
  value: string,
  tokens: Tokens,
  ctx: Pick<SshConfigContext, 'home' | 'env'>,
  opts: { env?: boolean; tilde?: boolean } = {},
): string {
  let out = value.replace(/%(.)/gs, (_m, t: string) => {
    if (t === '%') return '%';
    const v = tokens[t];
    if (v === undefined) throw new Error(`the token %${t} is not supported here`);
    return v;
  });
  if (/%$/.test(value.replace(/%%/g, ''))) throw new Error('a lone % at the end');
  if (opts.env) {
    out = out.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
      const v = ctx.env[name];
      if (v === undefined) throw new Error(`the environment variable ${name} is not set`);
      return v;
    });
  }
  if (opts.tilde !== false) {
    if (out === '~') out = ctx.home;
    else if (out.startsWith('~/')) out = join(ctx.home, out.slice(2));
    else if (out.startsWith('~')) throw new Error(`"${out}": only ~/ (your own home) is supported`);
  }
  return out;
}

/** Keywords that add to a list instead of keeping their first value. */
const LISTS = new Set(['identityfile', 'certificatefile']);

/** Keywords ferry acts on (others are read and ignored, as settings for other programs). */
const KNOWN = new Set([
  'hostname',
  'user',
  'port',
  'identityfile',
  'identitiesonly',
  'identityagent',
  'proxyjump',
  'proxycommand',
  'userknownhostsfile',
  'hostkeyalias',
]);

/** Criteria of `Match` ferry evaluates; the others are skipped with a warning. */
const MATCH_CRITERIA = new Set([
  'all',
  'canonical',
  'final',
  'host',
  'originalhost',
  'user',
  'localuser',
]);

interface PassState {
  /** First value of each keyword. */
  first: Map<string, Entry>;
  lists: Map<string, Entry[]>;
  named: boolean;
  wantFinal: boolean;
  warnings: Diagnostic[];
  problems: Diagnostic[];
  /** Include files already read in this pass, to report a loop once. */
  depthExceeded: boolean;
}

/**
 * Resolves what `file` says for destination `alias` (the word after `ssh`),
 * as ssh would. `user` is a user already decided elsewhere (`ssh -l`, the
 * inventory): it wins over `User`, and is what `Match user` sees.
 */
export function resolveSshHost(
  file: string,
  alias: string,
  ctx: SshConfigContext,
  opts: { user?: string } = {},
): SshHostConfig {
  const state: PassState = {
    first: new Map(),
    lists: new Map(),
    named: false,
    wantFinal: false,
    warnings: [],
    problems: [],
    depthExceeded: false,
  };
  const hostNow = (): string => {
    const hn = state.first.get('hostname');
    if (!hn) return alias;
    try {
      return expandValue(hn.args[0] ?? '', { h: alias }, ctx, { tilde: false });
    } catch {
      return alias;
    }
  };
  const userNow = (): string => opts.user ?? state.first.get('user')?.args[0] ?? ctx.localUser;

  const runPass = (final: boolean): void => {
    const matchHost = final ? hostNow() : alias;
    const apply = (entries: readonly Entry[], active: boolean, depth: number): void => {
      for (const e of entries) {
        if (e.keyword === 'host') {
          const on = hostLineMatches(e.args, matchHost);
          if (on && !(e.args.length === 1 && e.args[0] === '*')) state.named = true;
          apply(e.section ?? [], on, depth);
          continue;
        }
        if (e.keyword === 'match') {
          const on = evaluateMatch(e, final);
          apply(e.section ?? [], on, depth);
          continue;
        }
        if (!active) continue;
        if (e.keyword === 'include') {
          include(e, depth);
          continue;
        }
        if (!KNOWN.has(e.keyword)) continue;
        if (LISTS.has(e.keyword)) {
          const list = state.lists.get(e.keyword) ?? [];
          list.push(e);
          state.lists.set(e.keyword, list);
        } else if (!state.first.has(e.keyword)) {
          state.first.set(e.keyword, e);
        }
      }
    };
    const evaluateMatch = (e: Entry, inFinal: boolean): boolean => {
      const words = [...e.args];
      let result = true;
      while (words.length > 0) {
        const raw = words.shift() ?? '';
        const neg = raw.startsWith('!');
        const key = (neg ? raw.slice(1) : raw).toLowerCase();
        if (!MATCH_CRITERIA.has(key)) {
          state.warnings.push({
            file: e.file,
            line: e.line,
            column: e.column,
            message: `Match ${key} is not evaluated by ferry (it runs nothing and reads no network state from ssh_config): this Match section is skipped`,
            hint: 'Give ferry what it needs in a Host section, or in the inventory.',
          });
          return false;
        }
        let ok: boolean;
        if (key === 'all') ok = true;
        else if (key === 'canonical') ok = false;
        else if (key === 'final') {
          if (!inFinal) state.wantFinal = true;
          ok = inFinal;
        } else {
          const arg = words.shift();
          if (arg === undefined) {
            state.problems.push({
              file: e.file,
              line: e.line,
              column: e.column,
              message: `Match ${key} needs an argument`,
            });
            return false;
          }
          const subject =
            key === 'host'
              ? hostNow()
              : key === 'originalhost'
                ? alias
                : key === 'user'
                  ? userNow()
                  : ctx.localUser;
          ok = matchPatternList(subject, arg, key === 'host' || key === 'originalhost');
        }
        if (neg) ok = !ok;
        if (!ok) result = false;
      }
      if (result && !(e.args.length === 1 && e.args[0]?.toLowerCase() === 'all'))
        state.named = true;
      return result;
    };
    const include = (e: Entry, depth: number): void => {
      if (depth >= MAX_DEPTH) {
        if (!state.depthExceeded) {
          state.problems.push({
            file: e.file,
            line: e.line,
            column: e.column,
            message: `Include nests more than ${MAX_DEPTH} deep (a file that includes itself?)`,
          });
        }
        state.depthExceeded = true;
        return;
      }
      for (const arg of e.args) {
        let path: string;
        try {
          path = expandValue(arg, baseTokens(), ctx, { env: true });
        } catch (err) {
          state.problems.push({
            file: e.file,
            line: e.line,
            column: e.column,
            message: `Include ${arg}: ${(err as Error).message}`,
          });
          continue;
        }
        if (!isAbsolute(path)) path = join(ctx.home, '.ssh', path);
        for (const f of ctx.glob(path)) {
          let text: string | undefined;
          try {
            text = ctx.readFile(f);
          } catch (err) {
            state.problems.push({
              file: e.file,
              line: e.line,
              column: e.column,
              message: `Include ${f}: ${(err as Error).message}`,
            });
            continue;
          }
          if (text === undefined) continue;
          const entries = parseSshConfig(text, f);
          // A Host line inside an included file applies to the rest of that file only.
          apply(entries, true, depth + 1);
        }
      }
    };
    const baseTokens = (): Tokens => localTokens(ctx, alias, hostNow(), userNow());
    let text: string | undefined;
    try {
      text = ctx.readFile(file);
    } catch (err) {
      state.problems.push({ file, message: (err as Error).message });
      return;
    }
    if (text === undefined) return;
    apply(parseSshConfig(text, file), true, 0);
  };

  runPass(false);
  if (state.wantFinal) runPass(true);
  return finish(alias, state, ctx);
}

/** Tokens known before the connection is made (the local side and the names). */
function localTokens(ctx: SshConfigContext, alias: string, host: string, user: string): Tokens {
  return {
    d: ctx.home,
    u: ctx.localUser,
    i: String(ctx.uid),
    L: ctx.localHost.split('.')[0] ?? ctx.localHost,
    l: ctx.localHost,
    h: host,
    n: alias,
    k: alias,
    r: user,
  };
}

function at(e: Entry): { file: string; line: number; column: number } {
  return { file: e.file, line: e.line, column: e.column };
}

function finish(alias: string, state: PassState, ctx: SshConfigContext): SshHostConfig {
  const out: SshHostConfig = {
    alias,
    named: state.named,
    identityFiles: [],
    warnings: state.warnings,
    problems: state.problems,
  };
  const problem = (e: Entry, message: string, hint?: string) =>
    state.problems.push({ ...at(e), message, ...(hint ? { hint } : {}) });
  const first = (k: string) => state.first.get(k);

  const hn = first('hostname');
  if (hn) {
    try {
      out.hostName = {
        value: expandValue(hn.args[0] ?? '', { h: alias }, ctx, { tilde: false }),
        ...at(hn),
      };
    } catch (err) {
      problem(hn, `HostName ${hn.args[0]}: ${(err as Error).message}`);
    }
  }
  const user = first('user');
  if (user) out.user = { value: user.args[0] ?? '', ...at(user) };
  const port = first('port');
  if (port) {
    const v = port.args[0] ?? '';
    if (/^[0-9]{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535) {
      out.port = { value: Number(v), ...at(port) };
    } else problem(port, `Port ${JSON.stringify(v)} is not a port number (1 to 65535)`);
  }
  const only = first('identitiesonly');
  if (only) {
    const v = (only.args[0] ?? '').toLowerCase();
    if (v === 'yes' || v === 'no') out.identitiesOnly = { value: v === 'yes', ...at(only) };
    else problem(only, `IdentitiesOnly must be yes or no, got ${JSON.stringify(only.args[0])}`);
  }
  const agent = first('identityagent');
  if (agent) out.identityAgent = { value: agent.args[0] ?? '', ...at(agent) };
  const jump = first('proxyjump');
  if (jump) {
    try {
      out.proxyJump = { value: parseProxyJump(jump.args.join(' ')), ...at(jump) };
    } catch (err) {
      problem(
        jump,
        `ProxyJump: ${(err as Error).message}`,
        'Write it as [user@]host[:port], hops separated by commas, or none.',
      );
    }
  }
  const pc = first('proxycommand');
  if (pc) out.proxyCommand = { value: pc.args.join(' '), ...at(pc) };
  const kh = first('userknownhostsfile');
  if (kh) out.userKnownHostsFile = { value: [...kh.args], ...at(kh) };
  const alias2 = first('hostkeyalias');
  if (alias2) out.hostKeyAlias = { value: alias2.args[0] ?? '', ...at(alias2) };
  for (const e of state.lists.get('identityfile') ?? []) {
    out.identityFiles.push({ value: e.args[0] ?? '', ...at(e) });
  }
  return out;
}

/**
 * Expands the tokens of a path-like value (IdentityFile, IdentityAgent,
 * UserKnownHostsFile) once the connection's user, host and port are known.
 */
export function expandPathValue(
  value: string,
  ctx: SshConfigContext,
  conn: { alias: string; host: string; user: string; port: number; jump: string },
): string {
  const tokens: Tokens = {
    ...localTokens(ctx, conn.alias, conn.host, conn.user),
    p: String(conn.port),
    j: conn.jump,
    C: createHash('sha1')
      .update(`${ctx.localHost}${conn.host}${conn.port}${conn.user}${conn.jump}`)
      .digest('hex'),
  };
  return expandValue(value, tokens, ctx, { env: true });
}

/** A glob(3) of one path: `*`, `?` and `[...]` in any segment; dot files only when named. */
export function globFiles(pattern: string): string[] {
  const parts = pattern.split('/');
  let paths = [parts[0] === '' ? '/' : '.'];
  for (const part of parts.slice(1)) {
    if (part === '') continue;
    if (!/[*?[]/.test(part)) {
      paths = paths.map((p) => join(p, part));
      continue;
    }
    const re = new RegExp(`^${globToRegex(part)}$`, 's');
    paths = paths.flatMap((dir) => {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return [];
      }
      return names
        .filter((n) => re.test(n) && (part.startsWith('.') || !n.startsWith('.')))
        .sort()
        .map((n) => join(dir, n));
    });
  }
  return paths.filter((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

function globToRegex(part: string): string {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const ch = part[i] as string;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = part.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = part.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += ch.replace(/[.+^${}()|\\/-]/g, '\\$&');
  }
  return re;
}

/**
 * Reads a configuration file as ssh does: a missing file is no
 * configuration; one that others may write is refused ("Bad owner or
 * permissions"), since whoever writes it chooses where ferry connects.
 */
export function readConfigFile(path: string, uid: number): string | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  if (!st.isFile()) throw new Error('it is not a regular file');
  if ((st.mode & 0o022) !== 0 || (st.uid !== uid && st.uid !== 0)) {
    throw new Error(
      `bad owner or permissions on ${path}: it must be yours (or root's) and writable by no one else (chmod go-w)`,
    );
  }
  return readFileSync(path, 'utf8');
}

/** The context of this machine's user: home, name, uid, host name, the given environment. */
export function systemContext(
  opts: { home?: string; env?: Readonly<Record<string, string | undefined>> } = {},
): SshConfigContext {
  let user = '';
  try {
    user = userInfo().username;
  } catch {
    // a uid without a passwd entry (some containers): %u is then empty
  }
  const uid = process.getuid?.() ?? 0;
  return {
    home: opts.home ?? homedir(),
    localUser: user,
    uid,
    localHost: hostname(),
    env: opts.env ?? {},
    readFile: (p) => readConfigFile(p, uid),
    glob: (p) => (/[*?[]/.test(p) ? globFiles(p) : [p]),
  };
}
