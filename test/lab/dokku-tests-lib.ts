/**
 * Pure parts of the `dokku-tests` runner: marking bats tests as skipped, and
 * reading bats' TAP output back into counts.
 */

/** One test the emulator cannot run, and why. */
export interface SkippedTest {
  /** bats file name without `.bats`, e.g. `apps_1`. */
  file: string;
  /** The exact `@test "..."` name. */
  test: string;
  /** Why the lab cannot run it (it needs Docker itself, a buildpack, nginx, the internet...). */
  reason: string;
  /** Releases (X.Y.Z) the entry applies to; every release when absent. */
  releases?: string[];
}

/** Escape a string for a double-quoted bash word. */
function bashDouble(s: string): string {
  return `"${s.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

/**
 * Returns the bats source with `skip "reason"` as the first statement of each
 * named test, and, since a file's setup() runs before the test body (and may
 * need what the lab lacks: a clone from GitHub), the same skip as the first
 * statement of setup() and an early return in teardown() for those tests.
 * Tests are found by their `@test "NAME" {` line. Also returns the names that
 * were not found, so a stale skip list shows.
 */
export function injectSkips(
  source: string,
  skips: ReadonlyArray<{ test: string; reason: string }>,
): { source: string; missing: string[] } {
  const lines = source.split('\n');
  const wanted = new Map(skips.map((s) => [s.test, s.reason]));
  const found = new Set<string>();
  const out: string[] = [];
  const guards = (action: (reason: string) => string): string[] =>
    [...wanted]
      .filter(([name]) => lines.some((l) => l.startsWith('@test ') && l.includes(name)))
      .map(
        ([name, reason]) =>
          `  [[ "$BATS_TEST_DESCRIPTION" == ${bashDouble(name)} ]] && ${action(reason)}`,
      );
  for (const line of lines) {
    out.push(line);
    if (/^setup\(\)\s*\{\s*$/.test(line)) out.push(...guards((r) => `skip ${bashDouble(r)}`));
    if (/^teardown\(\)\s*\{\s*$/.test(line)) out.push(...guards(() => 'return 0'));
    const m = /^@test\s+(["'])(.*)\1\s*\{\s*$/.exec(line);
    if (m === null) continue;
    const name = m[2] ?? '';
    const reason = wanted.get(name);
    if (reason === undefined) continue;
    found.add(name);
    out.push(`  skip ${bashDouble(reason)}`);
  }
  return { source: out.join('\n'), missing: [...wanted.keys()].filter((n) => !found.has(n)) };
}

/** Names of the tests a bats file declares, in order. */
export function testNames(source: string): string[] {
  const names: string[] = [];
  for (const line of source.split('\n')) {
    const m = /^@test\s+(["'])(.*)\1\s*\{\s*$/.exec(line);
    if (m !== null) names.push(m[2] ?? '');
  }
  return names;
}

/** One test's outcome in bats' TAP output. */
export interface TapResult {
  name: string;
  outcome: 'pass' | 'fail' | 'skip';
  /** The `# ...` lines bats printed after a failure. */
  detail: string[];
}

/** Counts of one file's run. */
export interface TapSummary {
  planned: number;
  pass: number;
  skip: number;
  fail: number;
  results: TapResult[];
}

/** Parses `bats --tap` output. Planned tests that never reported count as failures. */
export function parseTap(text: string): TapSummary {
  const results: TapResult[] = [];
  let planned = 0;
  let last: TapResult | undefined;
  for (const line of text.split('\n')) {
    const plan = /^1\.\.(\d+)$/.exec(line);
    if (plan !== null) {
      planned = Number(plan[1]);
      continue;
    }
    const m = /^(ok|not ok) \d+ (.*)$/.exec(line);
    if (m !== null) {
      let name = m[2] ?? '';
      let outcome: TapResult['outcome'] = m[1] === 'ok' ? 'pass' : 'fail';
      // bats: `ok N name # skip reason` (the reason as given, no parentheses)
      const skip = / # skip(?: .*)?$/.exec(name);
      if (skip !== null && outcome === 'pass') {
        outcome = 'skip';
        name = name.slice(0, skip.index);
      }
      last = { name, outcome, detail: [] };
      results.push(last);
      continue;
    }
    if (line.startsWith('# ') && last !== undefined && last.outcome === 'fail') {
      last.detail.push(line.slice(2));
    }
  }
  const count = (o: TapResult['outcome']): number => results.filter((r) => r.outcome === o).length;
  const unreported = Math.max(0, planned - results.length);
  return {
    planned,
    pass: count('pass'),
    skip: count('skip'),
    fail: count('fail') + unreported,
    results,
  };
}

/** The skip entries that apply to `file` at `release`. */
export function skipsFor(
  list: readonly SkippedTest[],
  file: string,
  release: string,
): SkippedTest[] {
  return list.filter(
    (s) => s.file === file && (s.releases === undefined || s.releases.includes(release)),
  );
}
