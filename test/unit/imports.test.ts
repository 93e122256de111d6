/**
 * The arrows between the parts of src/ run one way: no import cycle among its
 * files (type imports included), and what plans (the planner, the task
 * catalogue, `ferry plan`) loads no SSH, no process runner and no renderer.
 * Read from the sources with TypeScript's own parser: what is checked is what
 * the code says, not a list kept by hand.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');

interface Edge {
  to: string;
  /** `import type` / `export type`: erased, loads nothing at run time. */
  typeOnly: boolean;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every import and re-export of a file (static and `import()`), resolved to files or packages. */
function edgesOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out: Edge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    const to = spec.startsWith('.')
      ? resolve(dirname(file), spec).replace(/\.js$/, '.ts')
      : spec.startsWith('node:')
        ? spec
        : spec
            .split('/')
            .slice(0, spec.startsWith('@') ? 2 : 1)
            .join('/');
    out.push({ to, typeOnly });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      const allTypes =
        c?.isTypeOnly === true ||
        (c !== undefined &&
          c.name === undefined &&
          c.namedBindings !== undefined &&
          ts.isNamedImports(c.namedBindings) &&
          c.namedBindings.elements.length > 0 &&
          c.namedBindings.elements.every((e) => e.isTypeOnly));
      add(n.moduleSpecifier.text, allTypes);
    } else if (
      ts.isExportDeclaration(n) &&
      n.moduleSpecifier &&
      ts.isStringLiteral(n.moduleSpecifier)
    ) {
      add(n.moduleSpecifier.text, n.isTypeOnly);
    } else if (
      ts.isCallExpression(n) &&
      n.expression.kind === ts.SyntaxKind.ImportKeyword &&
      n.arguments[0] &&
      ts.isStringLiteral(n.arguments[0])
    ) {
      add(n.arguments[0].text, false);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, edgesOf(f)]));
const name = (f: string) => relative(ROOT, f);

test('no import cycle among src files, type imports included', (t) => {
  // Tarjan's strongly connected components: a component of more than one file is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const cycles: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const { to } of graph.get(v) ?? []) {
      if (!graph.has(to)) continue;
      if (!idx.has(to)) {
        strong(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (on.has(to)) low.set(v, Math.min(low.get(v)!, idx.get(to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).some((e) => e.to === v);
      if (comp.length > 1 || selfLoop) cycles.push(comp.map(name).sort());
    }
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  t.deepEqual(cycles, [], `cycles: ${JSON.stringify(cycles, null, 1)}`);
  t.true(files.length > 50, `${files.length} files read`);
});

/** Every file and package `start` loads at run time (type-only imports are erased). */
function loads(start: string): Set<string> {
  const seen = new Set<string>();
  const walk = (f: string): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const e of graph.get(f) ?? []) if (!e.typeOnly) walk(e.to);
  };
  walk(start);
  return seen;
}

const HEAVY = ['node-ssh', 'ssh2', 'zx', 'listr2'];

for (const entry of ['src/plan/index.ts', 'src/commands/plan.ts', 'src/tasks/index.ts']) {
  test(`${entry} loads no SSH, process runner or renderer`, (t) => {
    const got = loads(join(ROOT, entry));
    t.deepEqual(
      HEAVY.filter((p) => got.has(p)),
      [],
    );
    // It does load every task (the catalogue), so the check above covers their runs too.
    t.true(got.has(join(SRC, 'tasks/transfer.ts')));
  });
}

test('the arrows run one way: tasks never reach run/, commands never reach cli', (t) => {
  const reaches = (from: string, prefix: string) =>
    files
      .filter((f) => f.startsWith(join(SRC, from)))
      .flatMap((f) =>
        (graph.get(f) ?? [])
          .filter((e) => e.to.startsWith(join(SRC, prefix)))
          .map((e) => `${name(f)} → ${name(e.to)}`),
      );
  t.deepEqual(reaches('tasks/', 'run/'), []);
  t.deepEqual(reaches('tasks/', 'commands/'), []);
  t.deepEqual(reaches('commands/', 'cli.ts'), []);
  t.deepEqual(reaches('run/', 'commands/'), []);
  t.deepEqual(reaches('ssh/', 'tasks/'), []);
  t.deepEqual(reaches('ssh/', 'run/'), []);
});
