/**
 * Ansible's INI inventory format, read into the model of ansible.ts:
 *
 *     web1.example.com               # before any section: ungrouped
 *     [web]                          # a group and its hosts
 *     web[01:03].example.com ansible_user=deploy ansible_port=2222
 *     [web:vars]                     # the group's vars, one per line
 *     ansible_become=true
 *     [prod:children]                # child groups (declared elsewhere in the file)
 *     web
 *
 * Written from Ansible's documentation and its ini plugin
 * (lib/ansible/plugins/inventory/ini.py): host lines are split as POSIX
 * shell words (Python's shlex, `#` starting a comment), values are read as
 * Python literals where they are one (`2222` is a number, `True` a boolean,
 * `'x'` a string, `{...}` a mapping), and text otherwise.
 */
import { parseSource } from '../schema/source.js';
import {
  type AnsibleModel,
  addGroup,
  addHost,
  at,
  emptyModel,
  type Var,
  type Where,
} from './ansible.js';
import { expandHostPattern } from './host-patterns.js';

/** One word of a host line, and the column (0-based) where it starts. */
export interface Word {
  text: string;
  start: number;
}

/**
 * Splits a line into words as Python's `shlex.split(line, comments=True)`
 * does: whitespace separates, quotes group (no escapes inside '…'; `\"` and
 * `\\` inside "…"), a backslash outside quotes takes the next character as
 * it is, and `#` starts a comment even inside a word. Throws on an
 * unclosed quote.
 */
export function splitWords(line: string): Word[] {
  const words: Word[] = [];
  let cur: Word | undefined;
  let i = 0;
  const end = (): void => {
    if (cur) words.push(cur);
    cur = undefined;
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      end();
      i++;
    } else if (c === '#') {
      break;
    } else if (c === '\\') {
      cur ??= { text: '', start: i };
      if (i + 1 >= line.length) throw new Error('no character after "\\"');
      cur.text += line[i + 1];
      i += 2;
    } else if (c === "'" || c === '"') {
      cur ??= { text: '', start: i };
      const close = c;
      i++;
      for (;;) {
        if (i >= line.length) throw new Error(`no closing quotation (${close})`);
        const d = line[i]!;
        if (d === close) {
          i++;
          break;
        }
        if (close === '"' && d === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          cur.text += line[i + 1];
          i += 2;
          continue;
        }
        cur.text += d;
        i++;
      }
    } else {
      cur ??= { text: '', start: i };
      cur.text += c;
      i++;
    }
  }
  end();
  return words;
}

const PY_ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '0': '\0',
};

/** A Python scalar literal as Ansible's `literal_eval` reads it, or undefined when it is none. */
function pythonScalar(s: string): { value: unknown } | undefined {
  if (/^[+-]?(0|[1-9][0-9]*)$/.test(s)) return { value: Number(s) };
  if (/^[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(s)) return { value: Number(s) };
  if (s === 'True') return { value: true };
  if (s === 'False') return { value: false };
  if (s === 'None') return { value: null };
  const q = /^(['"])((?:(?!\1)[^\\]|\\.)*)\1$/s.exec(s);
  if (q) return { value: q[2]!.replace(/\\(.)/gs, (_, ch: string) => PY_ESCAPES[ch] ?? `\\${ch}`) };
  return undefined;
}

/**
 * An INI value as Ansible reads it: a Python literal when it is one (a
 * trailing `# comment` then does not count), a `{…}` or `[…]` structure read
 * as a YAML flow collection (placed at its line and column, so its problems
 * point into the file), text otherwise. `of` names the host or group.
 */
export function iniValue(
  raw: string,
  at: { file: string; line: number; column: number; of: string; name: string },
): Var {
  const { file, line, column, of } = at;
  const here: Where = { kind: 'text', file, line, column };
  const direct = pythonScalar(raw);
  if (direct) return { value: direct.value, where: here, of };
  const commented = /^(.*?)\s+#.*$/s.exec(raw);
  const head = commented ? pythonScalar(commented[1]!) : undefined;
  if (head) return { value: head.value, where: here, of };
  if (/^[[{]/.test(raw)) {
    // Padding puts the value at its line and column, so positions inside it are the file's.
    const padded = `${'\n'.repeat(line - 1)}${' '.repeat(column - 1)}${raw}`;
    const { source, syntaxOk } = parseSource(padded, file, at.name);
    if (syntaxOk && typeof source.value === 'object' && source.value !== null) {
      source.label = [at.name];
      return { value: source.value, where: { kind: 'yaml', source, path: [] }, of };
    }
  }
  return { value: raw, where: here, of };
}

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_LINE = /^([^:\]\s]+)\s*(?:#.*)?$/;

/** Reads an Ansible INI inventory into the model. */
export function readAnsibleIni(text: string, file: string): AnsibleModel {
  const model = emptyModel(file, 'ansible-ini');
  const declared = new Set(['all', 'ungrouped']);
  const varsSections: { group: string; where: Where }[] = [];
  const childLines: { parent: string; child: string; where: Where }[] = [];
  let group = model.groups.get('ungrouped')!;
  let state = 'hosts';
  const lines = text.split(/\r\n|\n|\r/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const indent = raw.length - raw.trimStart().length;
    const where = (col: number): Where => ({ kind: 'text', file, line, column: col + 1 });
    const problem = (col: number, message: string, hint?: string): void => {
      model.problems.push(at(where(col), { message, ...(hint ? { hint } : {}) }));
    };
    const section = SECTION.exec(trimmed);
    if (section) {
      const name = section[1]!;
      const kind = section[2] ?? 'hosts';
      if (!['hosts', 'children', 'vars'].includes(kind)) {
        problem(
          indent + 1 + name.length + 1,
          `section [${name}:${kind}] has an unknown type "${kind}"`,
          'A section is [GROUP], [GROUP:vars] or [GROUP:children].',
        );
        state = 'skip';
        return;
      }
      group = addGroup(model, name, where(indent + 1));
      state = kind;
      if (kind === 'vars') varsSections.push({ group: name, where: where(indent + 1) });
      else declared.add(name);
      return;
    }
    if (trimmed.startsWith('[') && trimmed.endsWith(']')) {
      problem(
        indent,
        `${trimmed} is not a section header`,
        'A section is [GROUP], [GROUP:vars] or [GROUP:children], without spaces.',
      );
      state = 'skip';
      return;
    }
    if (state === 'skip') return;
    if (state === 'children') {
      const m = GROUP_LINE.exec(trimmed);
      if (!m) {
        problem(indent, `expected a group name in [${group.name}:children], got "${trimmed}"`);
        return;
      }
      childLines.push({ parent: group.name, child: m[1]!, where: where(indent) });
      return;
    }
    if (state === 'vars') {
      const eq = trimmed.indexOf('=');
      if (eq === -1) {
        problem(indent, `expected name=value in [${group.name}:vars], got "${trimmed}"`);
        return;
      }
      const key = trimmed.slice(0, eq).trim();
      const rest = trimmed.slice(eq + 1);
      const value = rest.trim();
      const col = indent + eq + 1 + (rest.length - rest.trimStart().length);
      if (key === '') {
        problem(indent, `a variable needs a name before "=" in [${group.name}:vars]`);
        return;
      }
      group.vars.set(
        key,
        iniValue(value, { file, line, column: col + 1, of: `group ${group.name}`, name: key }),
      );
      return;
    }
    // A host line: a host pattern, then name=value words.
    let words: Word[];
    try {
      words = splitWords(raw);
    } catch (e) {
      problem(indent, `cannot read this host line: ${(e as Error).message}`);
      return;
    }
    const [first, ...rest] = words;
    if (!first) return;
    if (first.text === '---') {
      problem(first.start, 'a host named "---": is this a YAML file? Name it .yml');
      return;
    }
    const expanded = expandHostPattern(first.text);
    if ('problem' in expanded) {
      problem(first.start, `host ${JSON.stringify(first.text)}: ${expanded.problem}`);
      return;
    }
    const vars: [string, Var][] = [];
    for (const w of rest) {
      const eq = w.text.indexOf('=');
      if (eq <= 0) {
        problem(
          w.start,
          `expected name=value after the host name, got "${w.text}"`,
          'Quote a value that holds spaces: name="a value".',
        );
        return;
      }
      // The value's column: after `name=` in the line, and after an opening quote.
      const after = w.start + eq + 1;
      const quoted = raw[after] === '"' || raw[after] === "'";
      const name = w.text.slice(0, eq);
      vars.push([
        name,
        iniValue(w.text.slice(eq + 1), {
          file,
          line,
          column: after + (quoted ? 2 : 1),
          of: first.text,
          name,
        }),
      ]);
    }
    for (const name of expanded.names) {
      const host = addHost(model, group, name, where(first.start));
      if (expanded.port !== undefined) {
        host.vars.set('ansible_port', {
          value: expanded.port,
          where: where(first.start),
          of: first.text,
        });
      }
      for (const [k, v] of vars) host.vars.set(k, v);
    }
  });
  for (const { group: g, where } of varsSections) {
    if (!declared.has(g)) {
      model.problems.push(
        at(where, {
          message: `[${g}:vars] sets variables of group ${g}, which this file never declares`,
          hint: `Declare it with a [${g}] or [${g}:children] section, or fix the name.`,
        }),
      );
    }
  }
  for (const { parent, child, where } of childLines) {
    if (!declared.has(child)) {
      model.problems.push(
        at(where, {
          message: `[${parent}:children] names group ${child}, which this file never declares`,
          hint: `Declare it with a [${child}] section (it may be empty), or fix the name.`,
        }),
      );
      continue;
    }
    model.groups.get(parent)!.children.push({ name: child, where });
  }
  return model;
}
