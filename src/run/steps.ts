/**
 * From a planned step (src/plan) to a runnable {@link Step}: the plan's
 * `skipped` reason (a `when:` option not given, an unbound optional role)
 * becomes listr2's `skip`, so the run shows the same reason `ferry plan` printed.
 */
import type { PlannedStep } from '../plan/index.js';
import type { Step } from './runner.js';

/** Playbook-level options a step may carry beyond what the plan says. */
export type StepExtras<S> = Partial<
  Pick<Step<S>, 'retry' | 'continueOnError' | 'rerunOnResume' | 'undo'>
>;

/** Builds the runnable step for a planned one. */
export function stepFromPlan<S>(
  planned: Pick<PlannedStep, 'id' | 'task' | 'host' | 'summary' | 'skipped'>,
  run: Step<S>['run'],
  extras: StepExtras<S> = {},
): Step<S> {
  const step: Step<S> = {
    id: planned.id,
    title: planned.id === planned.task ? planned.summary : `${planned.id}: ${planned.summary}`,
    host: planned.host,
    run,
    ...extras,
  };
  if (planned.skipped) step.skip = planned.skipped;
  return step;
}
