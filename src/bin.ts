#!/usr/bin/env node
/**
 * The `ferry` executable. It always runs: npm links it as `ferry` (a symlink),
 * npx runs it from a cache, a user may copy it; none of those names say
 * "cli.js", so nothing here guesses from argv[1] whether it was invoked.
 *
 * When the command is done, the process ends with its exit code even if a
 * handle (a socket, a timer) is still open: a failed run must never linger.
 */
import { main, report } from './cli.js';

process.on('SIGPIPE', () => {});

function exit(code: number): void {
  process.exitCode = code;
  // Let what is written reach the terminal or pipe first, then leave whatever is left.
  let pending = 2;
  const done = (): void => {
    pending--;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(exit, (e: unknown) => exit(report(e, process.stderr)));
