/**
 * Lab helpers for ava tests.
 *
 *   import { labTest, useLab } from '../lab/ava.js';
 *   const lab = useLab({ instance: 'migrate-test', hosts: ['old', 'new'] });
 *   labTest('moves the apps', async (t) => { const old = lab().host('old'); ... });
 *
 * Each test file uses its own instance (ava runs files in parallel). Tests
 * declared with `labTest` run serially, in order, and share the file's lab.
 *
 * Without root the tests are skipped, after one printed line saying why. With
 * FERRY_LAB_REQUIRED=1 (CI) they run anyway, and fail with that reason.
 */
import test, { type ExecutionContext } from 'ava';
import { Lab, type LabUpOptions, labUnavailableReason } from './lab.js';

/** True when CI demands that lab tests run (env FERRY_LAB_REQUIRED=1). */
export const labRequired = process.env.FERRY_LAB_REQUIRED === '1';

/** Why lab tests are skipped in this process, or undefined when they run. */
export const labSkipReason: string | undefined = labRequired ? undefined : labUnavailableReason();

if (labSkipReason) console.log(`lab tests skipped: ${labSkipReason}`);

/** The body of a lab test. */
export type LabTestImpl = (t: ExecutionContext) => PromiseLike<void> | void;

/** Declares a lab test: serial (tests share the file's lab), skipped when the lab cannot run here. */
export function labTest(title: string, impl: LabTestImpl): void {
  if (labSkipReason) test.skip(title, impl);
  else test.serial(title, impl);
}

/**
 * Brings a lab up before the file's tests and down after them (also when they
 * fail). Returns a getter for the running {@link Lab}. Does nothing when lab
 * tests are skipped.
 */
export function useLab(given: LabUpOptions & { instance: string }): () => Lab {
  // FERRY_LAB_PREFIX keeps the instances of two checkouts testing at once apart.
  const opts = { ...given, instance: `${process.env.FERRY_LAB_PREFIX ?? ''}${given.instance}` };
  let lab: Lab | undefined;
  if (!labSkipReason) {
    test.before(async () => {
      lab = await Lab.up(opts);
    });
    // A failed `up` has already removed what it made; a killed run is cleaned by the next `up`.
    test.after.always(async () => {
      if (lab) await lab.down();
    });
  }
  return () => {
    if (!lab) throw new Error(`lab ${opts.instance} is not up`);
    return lab;
  };
}
