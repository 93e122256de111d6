/**
 * AVA runs two test files at a time (2 cores), each lab file's tests one
 * after another. By name, the longest lab files (the fault matrix, ~14 min,
 * and the release matrix, ~12) start a third and two thirds of the way in,
 * and a long file started late runs alone at the end. Longest first (LPT
 * scheduling) lets the two lanes end together. The minutes are a schedule
 * hint, measured in a whole-suite run on 2 cores (2026-11-29); a file not
 * listed runs after these, by name. A stale figure costs time, never a result.
 */
const MINUTES = {
  'e2e/faults': 14,
  'e2e/releases': 12,
  'e2e/cutover': 11,
  'e2e/migrate': 10,
  'e2e/selection': 6.5,
  'e2e/ssh-config': 4,
  'e2e/ansible': 3.5,
  'e2e/install': 2.6,
  'e2e/drill': 2.6,
  'e2e/encrypt': 2.5,
  'e2e/emulator-datastores': 2.4,
  'e2e/emulator-releases': 2,
  'e2e/lab': 1.9,
  'e2e/backup': 1.9,
  'e2e/seed': 1.5,
  'e2e/images': 1.2,
};

function minutes(file) {
  const m = /dist\/test\/(.+)\.test\.js$/.exec(file.replaceAll('\\', '/'));
  return (m && MINUTES[m[1]]) ?? 0;
}

export default {
  files: ['dist/test/**/*.test.js'],
  timeout: '10m',
  concurrency: 2,
  workerThreads: false,
  sortTestFiles: (a, b) => minutes(b) - minutes(a) || (a < b ? -1 : a > b ? 1 : 0),
};
