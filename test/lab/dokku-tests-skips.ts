/**
 * Dokku unit tests (tests/unit/*.bats) the lab's emulator cannot run, each
 * with its reason. The `dokku-tests` runner marks them skipped; every other
 * test of the files it runs must pass.
 */
import type { SkippedTest } from './dokku-tests-lib.js';

/** The list, by file. */
export const DOKKU_TEST_SKIPS: SkippedTest[] = [];
