/**
 * Input text to a value plus the source positions of every node, so each
 * problem can be reported at `file:line:column`; and the guards that keep
 * hostile input (binary files, huge files, alias bombs, deep nesting, tags
 * that construct objects) from reaching the parser or the program.
 */
import { open, stat } from 'node:fs/promises';
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type YAMLError,
} from 'yaml';
import { type Diagnostic, InputError } from '../errors.js';
import { describeChar } from './host-fields.js';

/** A path into a parsed value: map keys and list indexes. */
export type Path = readonly (string | number)[];

/** A parsed YAML file: its value, its syntax tree and where each line starts. */
export interface SourceFile {
  file: string;
  /** What the whole file is called in messages: `the inventory`, `the playbook`. */
  subject: string;
  doc: Document.Parsed;
  lines: LineCounter;
  value: unknown;
  /**
   * Path segments shown before each path in messages, for text that is part
   * of a larger value (an INI variable's `{…}` mapping is `dokku_ferry`).
   */
  label?: Path;
}

/** Where a node starts, 1-based. */
export interface Position {
  line: number;
  column: number;
}

/**
 * The largest input read, in bytes. An inventory of 15,000 hosts is 1 MiB;
 * the YAML parser keeps about 75 bytes of syntax tree per byte of text, so
 * 1 MiB costs some 75 MB and a second to parse, within the controller's
 * 200 MB budget. Anything larger is a wrong file, or an attack.
 */
export const MAX_INPUT_BYTES = 1024 * 1024;

/** The deepest nesting of mappings and lists read. ferry's files need 6; Ansible groups two per level. */
export const MAX_DEPTH = 64;

/**
 * How many nodes aliases may repeat (the `yaml` package's own guard, whose
 * default this is). Without it, nine lines of anchors and aliases expand to
 * billions of nodes ("billion laughs").
 */
export const MAX_ALIAS_COUNT = 100;

/** The YAML core schema's own tags (`!!str 22`): plain data. Every other tag is refused. */
const CORE_TAGS = ['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map(
  (t) => `tag:yaml.org,2002:${t}`,
);

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

/** The line and column (1-based) of character `index` of `text`. */
function textPosition(text: string, index: number): Position {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: [...text.slice(start, index)].length + 1 };
}

/** Characters a text file does not hold. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const NOT_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/**
 * Why `text` cannot be input, or undefined: too large, or holding a control
 * character (a NUL says binary; YAML allows none but tab, LF and CR).
 */
export function textProblem(text: string): (Partial<Position> & { message: string }) | undefined {
  if (text.length > MAX_INPUT_BYTES) {
    return {
      message: `it is ${kib(text.length)}; ferry reads files of at most ${kib(MAX_INPUT_BYTES)}`,
    };
  }
  // C0 controls but tab, LF and CR; DEL; C1 controls (U+0085 is a line break in YAML 1.1).
  const m = NOT_TEXT.exec(text);
  if (!m) return undefined;
  const ch = m[0];
  return {
    ...textPosition(text, m.index),
    message:
      ch === '\u0000'
        ? 'it holds a NUL byte: this is not a text file'
        : `it holds the control character ${describeChar(ch)}: this is not a text file ferry reads (YAML allows no control characters but tab and line breaks)`,
  };
}

/**
 * UTF-16 without a byte order mark: in its first bytes, every other byte is
 * NUL (the high byte of ASCII characters) and the others are not.
 */
function looksLikeUtf16(b: Uint8Array): boolean {
  const n = Math.min(b.length, 256) & ~1;
  if (n < 4) return false;
  let even = 0;
  let odd = 0;
  for (let i = 0; i < n; i += 2) {
    if (b[i] === 0) even++;
    if (b[i + 1] === 0) odd++;
  }
  const half = n / 2;
  return (even === 0 && odd >= half * 0.5) || (odd === 0 && even >= half * 0.5);
}

/** Index of the first byte that breaks UTF-8 (RFC 3629), or -1. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Lead byte: sequence length and the allowed range of the second byte
    // (which rules out overlong forms, surrogates and code points past U+10FFFF).
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}

/**
 * Bytes read from a file to text, or an InputError in one line naming the
 * file: UTF-16 or other non-UTF-8 bytes, binary content, control characters,
 * too large. A UTF-8 byte order mark is dropped.
 */
export function decodeInput(bytes: Uint8Array, file: string, subject = 'the file'): string {
  const fail = (message: string, at: Partial<Position> = {}): never => {
    throw new InputError([{ file, ...at, message }]);
  };
  if (bytes.length > MAX_INPUT_BYTES) {
    fail(`it is ${kib(bytes.length)}; ferry reads files of at most ${kib(MAX_INPUT_BYTES)}`);
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    fail(`${subject} is UTF-16 text; save it as UTF-8`, { line: 1, column: 1 });
  }
  if (looksLikeUtf16(bytes))
    fail(`${subject} is UTF-16 text; save it as UTF-8`, { line: 1, column: 1 });
  const nul = bytes.indexOf(0);
  const bad = firstInvalidUtf8(bytes);
  const first = nul !== -1 && (bad === -1 || nul < bad) ? nul : bad;
  if (first !== -1) {
    const before = new TextDecoder('utf-8').decode(bytes.subarray(0, first));
    const at = textPosition(before, before.length);
    fail(
      first === nul
        ? 'it holds a NUL byte: this is not a text file'
        : `byte 0x${bytes[first]!.toString(16).toUpperCase().padStart(2, '0')} is not UTF-8: this is not a text file, or not saved as UTF-8`,
      at,
    );
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  const problem = textProblem(text);
  if (problem) fail(problem.message, problem);
  return text;
}

/**
 * Reads an input file (inventory, playbook) as text, refusing before it
 * parses anything what is not a regular file, larger than
 * {@link MAX_INPUT_BYTES} or not UTF-8 text. File-system errors (ENOENT,
 * EACCES) are thrown as they are, for the caller to word.
 */
export async function readInput(path: string, shown = path, subject = 'the file'): Promise<string> {
  const fail = (message: string): never => {
    throw new InputError([{ file: shown, message }]);
  };
  // stat first: opening a FIFO would wait for a writer, reading /dev/zero would never end.
  const st = await stat(path);
  if (st.isDirectory()) fail('it is a directory, not a file');
  if (!st.isFile()) fail('it is not a regular file');
  if (st.size > MAX_INPUT_BYTES) {
    fail(`it is ${kib(st.size)}; ferry reads files of at most ${kib(MAX_INPUT_BYTES)}`);
  }
  const handle = await open(path, 'r');
  try {
    // Read at most one byte past the limit, whatever the size said (the file may grow).
    const buf = Buffer.alloc(MAX_INPUT_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, null);
      if (bytesRead === 0 || n + bytesRead >= buf.length) {
        n += bytesRead;
        break;
      }
      n += bytesRead;
    }
    return decodeInput(buf.subarray(0, n), shown, subject);
  } finally {
    await handle.close();
  }
}

/**
 * Nesting past which the text is refused before parsing: the parser recurses
 * once per level and runs out of stack some 800 levels down. The exact check
 * ({@link MAX_DEPTH}) runs on the parsed tree; this one need only be cheap and
 * never low.
 */
const SCAN_DEPTH = 200;

/**
 * Where the nesting of `text` first exceeds {@link SCAN_DEPTH}, estimated line
 * by line from indentation, `- ` entries and flow brackets outside quotes and
 * comments (an upper bound: it may count a bracket inside plain text).
 */
function tooDeep(text: string): Position | undefined {
  const indents: number[] = [];
  let flow = 0;
  const lines = text.split(/\r\n|\n|\r/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let j = 0;
    if (flow === 0) {
      const lead = /^( *)((?:-[ \t]+)*)/.exec(line)!;
      const rest = line.slice(lead[0].length);
      if (rest === '' || rest.startsWith('#')) continue;
      const indent = lead[1]!.length;
      while (indents.length > 0 && indents.at(-1)! >= indent) indents.pop();
      indents.push(indent);
      for (const _ of lead[2]!.matchAll(/-/g)) indents.push(indent);
      j = lead[0].length;
    }
    let quote = '';
    for (; j < line.length; j++) {
      const c = line[j]!;
      if (quote) {
        if (c === quote) quote = '';
        continue;
      }
      if (c === '"' || c === "'") quote = c;
      else if (c === '#' && (j === 0 || /\s/.test(line[j - 1]!))) break;
      else if (c === '[' || c === '{') {
        flow++;
        if (indents.length + flow > SCAN_DEPTH) return { line: i + 1, column: j + 1 };
      } else if ((c === ']' || c === '}') && flow > 0) flow--;
    }
    if (indents.length > SCAN_DEPTH) return { line: i + 1, column: 1 };
  }
  return undefined;
}

/** Options of {@link parseSource}. */
export interface ParseOptions {
  /**
   * Local tags (`!vault`, `!unsafe`) allowed besides the core schema's; their
   * values are read as plain strings. Ansible inventories may hold them.
   */
  allowTags?: readonly string[];
}

/**
 * Parses YAML text. Syntax errors, duplicate keys, tags, nesting deeper than
 * {@link MAX_DEPTH} and aliases that expand too far come back as
 * diagnostics; `value` is undefined when the text cannot be read as one
 * document (`syntaxOk` false).
 */
export function parseSource(
  text: string,
  file: string,
  subject = 'the file',
  options: ParseOptions = {},
): { source: SourceFile; diagnostics: Diagnostic[]; syntaxOk: boolean } {
  const lines = new LineCounter();
  const deep = tooDeep(text);
  const problem =
    textProblem(text) ??
    (deep
      ? {
          ...deep,
          message: `nested more than ${MAX_DEPTH} levels deep: ${subject} is never this deep`,
        }
      : undefined);
  // Duplicate keys are found by `findDuplicateKeys`, which can also say where
  // the first one was; the parser's own check would only repeat it.
  const doc = parseDocument(problem ? '' : text, {
    lineCounter: lines,
    keepSourceTokens: true,
    uniqueKeys: false,
    // `<<: *base` merges a mapping, as YAML 1.1 (and Ansible) read it.
    merge: true,
    customTags: (options.allowTags ?? []).map((tag) => ({
      tag,
      resolve: (s: string) => s,
    })),
  });
  const source: SourceFile = { file, subject, doc, lines, value: undefined };
  if (problem) {
    return { source, diagnostics: [{ file, ...problem }], syntaxOk: false };
  }
  // One message per line: the parser often reports derived errors right after the first.
  const diagnostics: Diagnostic[] = [];
  const places = new Set<string>();
  for (const e of doc.errors) {
    const d = syntaxDiagnostic(e, file);
    const place = `${d.line}`;
    if (places.has(place)) continue;
    places.add(place);
    diagnostics.push(d);
  }
  if (diagnostics.length > 0) return { source, diagnostics, syntaxOk: false };
  const fatal = shapeProblems(source, options.allowTags ?? []);
  if (fatal.length > 0) return { source, diagnostics: fatal, syntaxOk: false };
  try {
    source.value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    return { source, diagnostics: [aliasDiagnostic(source, e)], syntaxOk: false };
  }
  diagnostics.push(...findDuplicateKeys(source));
  return { source, diagnostics, syntaxOk: true };
}

/**
 * Nesting deeper than {@link MAX_DEPTH} and tags other than the core
 * schema's (and `allowTags`), at the first node of each kind. Iterative, so
 * a deep file cannot overflow the stack here.
 */
function shapeProblems(source: SourceFile, allowTags: readonly string[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const stack: { node: unknown; depth: number }[] = [{ node: source.doc.contents, depth: 0 }];
  let deep = false;
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (!node || typeof node !== 'object') continue;
    const tag = (node as { tag?: string }).tag;
    if (tag && !CORE_TAGS.includes(tag) && !allowTags.includes(tag)) {
      const shown = tag.replace(/^tag:yaml\.org,2002:/, '!!');
      out.push({
        file: source.file,
        ...nodePosition(source, node as Node),
        message: `YAML tag ${shown} is not allowed: ${source.subject} holds plain data (strings, numbers, true/false, lists, mappings)`,
        hint: 'Remove the tag; quote the value if it should be a string.',
      });
    }
    if (isMap(node) || isSeq(node)) {
      if (depth >= MAX_DEPTH) {
        if (!deep) {
          out.push({
            file: source.file,
            ...nodePosition(source, node as Node),
            message: `nested more than ${MAX_DEPTH} levels deep: ${source.subject} is never this deep`,
          });
        }
        deep = true;
        continue;
      }
      const items = (node.items as unknown[]).slice().reverse();
      for (const item of items) {
        if (isPair(item)) {
          stack.push({ node: item.value, depth: depth + 1 });
          stack.push({ node: item.key, depth: depth + 1 });
        } else stack.push({ node: item, depth: depth + 1 });
      }
    }
  }
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/**
 * Where aliases expand too far: the innermost node whose value alone is too
 * large, found by converting ever smaller parts (each conversion stops at
 * the same guard, so the search is cheap).
 */
function aliasDiagnostic(source: SourceFile, e: Error): Diagnostic {
  const fails = (n: unknown): boolean => {
    if (!n || typeof n !== 'object' || !('toJS' in n)) return false;
    try {
      (n as Node).toJS(source.doc, { maxAliasCount: MAX_ALIAS_COUNT });
      return false;
    } catch {
      return true;
    }
  };
  let node: unknown = source.doc.contents;
  for (;;) {
    const children: unknown[] = isMap(node)
      ? node.items.map((p) => p.value)
      : isSeq(node)
        ? node.items
        : [];
    const next = children.find(fails);
    if (next === undefined) break;
    node = next;
  }
  return {
    file: source.file,
    ...nodePosition(source, node as Node),
    message: /excessive alias count/i.test(e.message)
      ? `YAML aliases here expand to too much data (more than ${MAX_ALIAS_COUNT} repeated nodes): an alias bomb ("billion laughs")?`
      : `YAML alias: ${e.message}`,
  };
}

const SYNTAX_WORDS: Record<string, string> = {
  BAD_INDENT: 'the keys of one mapping must start in the same column',
  TAB_AS_INDENT: 'tabs cannot indent YAML; use spaces',
  MISSING_CHAR: 'a closing quote or bracket is missing',
  MULTILINE_IMPLICIT_KEY: 'a key must fit on one line (is a ":" or a quote missing above?)',
  BLOCK_AS_IMPLICIT_KEY:
    'a value contains ": " (put it in quotes), or the next line is indented deeper than its key',
  UNEXPECTED_TOKEN: 'unexpected text here',
  DUPLICATE_KEY: 'this key appears twice in the same mapping',
  BAD_SCALAR_START: 'a plain value cannot start with this character; quote it',
  MULTIPLE_DOCS: 'only one YAML document is allowed per file (remove the "---" separator)',
};

function syntaxDiagnostic(e: YAMLError, file: string): Diagnostic {
  const pos = e.linePos?.[0];
  const first = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
  const words = /end with an? [\]}]/.test(first)
    ? `a ${first.includes('sequence') ? '"[" list' : '"{" mapping'} is not closed (a "${first.includes('sequence') ? ']' : '}'}" is missing)`
    : SYNTAX_WORDS[e.code];
  return {
    file,
    ...(pos ? { line: pos.line, column: pos.col } : {}),
    message: `YAML syntax error: ${words ?? first.charAt(0).toLowerCase() + first.slice(1)}`,
    ...(words ? { hint: `(the YAML parser says: ${first})` } : {}),
  };
}

function findDuplicateKeys(source: SourceFile): Diagnostic[] {
  const out: Diagnostic[] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      const seen = new Map<string, Position>();
      for (const pair of node.items) {
        const key = keyText(pair.key);
        const here = nodePosition(source, pair.key as Node);
        const first = seen.get(key);
        if (first) {
          out.push({
            file: source.file,
            ...here,
            message: `duplicate key "${key}" in ${describePath(path, source.subject)} (first at line ${first.line})`,
            hint: 'YAML keeps only one of them; remove or rename the other.',
          });
        } else seen.set(key, here);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        walk(item, [...path, i]);
      });
    }
  };
  walk(source.doc.contents, []);
  return out;
}

/** The line and column where a node starts (1-based). */
export function nodePosition(source: SourceFile, node: Node | null | undefined): Position {
  const offset = node?.range?.[0] ?? 0;
  const { line, col } = source.lines.linePos(offset);
  return { line, column: col };
}

/**
 * The position of the value at `path`, or of its key when `at` is 'key'. When
 * the path goes beyond what the file holds (a missing key), the nearest
 * existing ancestor is used: its key if it has one.
 */
export function positionAt(
  source: SourceFile,
  path: Path,
  at: 'key' | 'value' = 'value',
): Position {
  let node: unknown = source.doc.contents;
  let keyNode: unknown;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(source.doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
      if (!pair) {
        // A key brought in by a merge (`<<: *base`) is shown at the merge.
        const merge = node.items.find((p) => keyText(p.key) === '<<');
        if (merge && mergedHas(source, merge.value, String(seg))) {
          return nodePosition(source, merge.key as Node);
        }
        break;
      }
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      keyNode = undefined;
      node = item;
    } else break;
  }
  const chosen = at === 'key' && keyNode ? keyNode : (node ?? keyNode);
  return nodePosition(source, chosen as Node);
}

/** A mapping key as text; the merge key `<<` (a symbol in the tree) as written. */
function keyText(key: unknown): string {
  if (!isScalar(key)) return String(key);
  return typeof key.value === 'symbol' ? '<<' : String(key.value);
}

/** Whether the mapping(s) a merge key brings in hold `key`. */
function mergedHas(source: SourceFile, value: unknown, key: string): boolean {
  const sources = isSeq(value) ? value.items : [value];
  return sources.some((v) => {
    const m = isAlias(v) ? v.resolve(source.doc) : v;
    return isMap(m) && m.items.some((p) => keyText(p.key) === key);
  });
}

/** Splits an ajv `instancePath` (a JSON Pointer) into path segments. */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9]\d*)$/.test(s) ? Number(s) : s));
}

/** A path as a user reads it: `hosts.new.port`, `steps[3].params`, or `root` for the whole file. */
export function describePath(path: Path, root = 'the file'): string {
  if (path.length === 0) return root;
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A value as a user reads it in "got …". */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}
