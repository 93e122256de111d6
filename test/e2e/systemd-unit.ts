/**
 * Just enough of systemd's unit file syntax to run a unit's command lines
 * as systemd would (systemd.syntax(7), systemd.service(5) "Command lines",
 * systemd.exec(5) Environment=): sections, `Key=Value` (comments with `#`
 * or `;`, `\` continuing a line), Environment= assignments (quoted or not),
 * and an Exec line's words: quotes, backslash escapes, `${VAR}` replaced
 * inside a word, `$VAR` alone split into words at whitespace, `$$` a dollar,
 * and the `-@:+!` prefixes of the program dropped.
 */

/** A parsed unit: the last value of a key (or all of them), and the Environment= variables. */
export interface Unit {
  get(section: string, key: string): string | undefined;
  all(section: string, key: string): string[];
  environment(): Record<string, string>;
}

/** Splits text into words the way systemd does (quotes, backslash escapes). */
function words(text: string): { word: string; quoted: boolean }[] {
  const out: { word: string; quoted: boolean }[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    let word = '';
    let quoted = false;
    while (i < text.length && !/\s/.test(text[i]!)) {
      const c = text[i]!;
      if (c === '"' || c === "'") {
        quoted = true;
        const end = text.indexOf(c, i + 1);
        if (end === -1) throw new Error(`unterminated quote in ${text}`);
        word += text.slice(i + 1, end).replace(/\\(.)/g, '$1');
        i = end + 1;
      } else if (c === '\\' && i + 1 < text.length) {
        word += text[i + 1];
        i += 2;
      } else {
        word += c;
        i++;
      }
    }
    out.push({ word, quoted });
  }
  return out;
}

/** Parses a unit file's text. */
export function parseUnit(text: string): Unit {
  const values = new Map<string, string[]>();
  let section = '';
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = head[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not Key=Value: ${line}`);
    const key = `${section}\0${line.slice(0, eq).trim()}`;
    values.set(key, [...(values.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  const all = (s: string, k: string): string[] => values.get(`${s}\0${k}`) ?? [];
  return {
    all,
    get: (s, k) => all(s, k).at(-1),
    environment() {
      const env: Record<string, string> = {};
      for (const assignments of all('Service', 'Environment')) {
        for (const { word } of words(assignments)) {
          const eq = word.indexOf('=');
          if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1);
        }
      }
      return env;
    },
  };
}

/** An Exec*= line as the argv systemd runs, its variables taken from `env`. */
export function systemdArgv(line: string, env: Record<string, string>): string[] {
  const argv: string[] = [];
  for (const { word, quoted } of words(line)) {
    const alone = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (alone && !quoted) {
      argv.push(...(env[alone[1]!] ?? '').split(/\s+/).filter((w) => w !== ''));
      continue;
    }
    argv.push(
      word
        .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => env[name] ?? '')
        .replace(/\$\$/g, '$'),
    );
  }
  if (argv[0]) argv[0] = argv[0].replace(/^[-@:+!]+/, '');
  return argv;
}
