/**
 * YAML text to a value plus the source positions of every node, so each
 * problem can be reported at `file:line:column`.
 */
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
import type { Diagnostic } from '../errors.js';

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
}

/** Where a node starts, 1-based. */
export interface Position {
  line: number;
  column: number;
}

/**
 * Parses YAML text. Syntax errors and duplicate keys come back as diagnostics;
 * `value` is undefined when the text cannot be read as one document.
 */
export function parseSource(
  text: string,
  file: string,
  subject = 'the file',
): { source: SourceFile; diagnostics: Diagnostic[]; syntaxOk: boolean } {
  const lines = new LineCounter();
  // Duplicate keys are found by `findDuplicateKeys`, which can also say where
  // the first one was; the parser's own check would only repeat it.
  const doc = parseDocument(text, {
    lineCounter: lines,
    keepSourceTokens: true,
    uniqueKeys: false,
  });
  const source: SourceFile = { file, subject, doc, lines, value: undefined };
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
  const syntaxOk = diagnostics.length === 0;
  if (syntaxOk) {
    diagnostics.push(...findDuplicateKeys(source));
    source.value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  }
  return { source, diagnostics, syntaxOk };
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
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
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
      const pair = node.items.find(
        (p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg),
      );
      if (!pair) break;
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
