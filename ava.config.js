/**
 * AVA runs two test files at a time (2 cores), each lab file's tests one
 * after another. By name, the longest lab file (releases, ~17 min) started
 * two thirds of the way in and ran alone at the end: the suite took as long
 * as that file's tail. Longest first (LPT scheduling) lets the two lanes end
 * together. The minutes are a schedule hint, measured in a whole-suite run on
 * 2 cores (2026-11-29); a file not listed runs after these, by name. A stale
 * figure costs time, never a result.
 */
const MINUTES = {
  'e2e/releases': 17,
  'e2e/cutover': 11,
  'e2e/faults': 10,
  'e2e/migrate': 9,
  'e2e/selection': 7,
  'e2e/ssh-config': 6,
  'e2e/rename': 5,
  'e2e/ansible': 3,
  'e2e/encrypt': 3,
  'e2e/drill': 3,
  'e2e/seed': 2.5,
  'e2e/emulator-datastores': 2,
  'e2e/install': 2,
  'e2e/emulator-releases': 1.5,
  'e2e/backup': 1.5,
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
