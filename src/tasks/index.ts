/**
 * The catalogue of built-in tasks, in the order of the seed's procedure: the
 * one registry, static, a plain object (nothing registers itself by being
 * imported). Each entry holds the task's plan and its run; a run receives its
 * means (SSH, streams) as a runtime, so loading this catalogue loads no SSH
 * code: the planner and `ferry plan` use it as it is.
 */
import archive from './archive.js';
import carryImages from './carry-images.js';
import checkQuiet from './check-quiet.js';
import checkTarget from './check-target.js';
import clearStale from './clear-stale.js';
import command from './command.js';
import cutOver from './cut-over.js';
import drillReport from './drill-report.js';
import exportDatastores from './export-datastores.js';
import extract from './extract.js';
import fetch from './fetch.js';
import forward from './forward.js';
import inventory from './inventory.js';
import isolateScratch from './isolate-scratch.js';
import pluginTriggers from './plugin-triggers.js';
import rebuildApps from './rebuild-apps.js';
import recreateEngine from './recreate-engine.js';
import releaseSource from './release-source.js';
import removeUnselected from './remove-unselected.js';
import rename from './rename.js';
import retention from './retention.js';
import rewriteRemotes from './rewrite-remotes.js';
import saveImages from './save-images.js';
import select from './select.js';
import startProxies from './start-proxies.js';
import startServices from './start-services.js';
import sweep from './sweep.js';
import sync from './sync.js';
import transfer from './transfer.js';
import type { ActionSpec, TaskDefinition } from './types.js';
import verifyApps from './verify-apps.js';
import verifyArchive from './verify-archive.js';

/** Every built-in task by name. */
export const TASKS = {
  sweep,
  'check-quiet': checkQuiet,
  'check-target': checkTarget,
  inventory,
  'cut-over': cutOver,
  select,
  'export-datastores': exportDatastores,
  'save-images': saveImages,
  archive,
  transfer,
  sync,
  'verify-archive': verifyArchive,
  'carry-images': carryImages,
  extract,
  'clear-stale': clearStale,
  'recreate-engine': recreateEngine,
  'remove-unselected': removeUnselected,
  'start-services': startServices,
  'start-proxies': startProxies,
  rename,
  'plugin-triggers': pluginTriggers,
  'isolate-scratch': isolateScratch,
  'rewrite-remotes': rewriteRemotes,
  'rebuild-apps': rebuildApps,
  'verify-apps': verifyApps,
  forward,
  'release-source': releaseSource,
  fetch,
  retention,
  'drill-report': drillReport,
  command,
} as const satisfies Record<string, TaskDefinition<never, ActionSpec>>;

/** A built-in task's name. */
export type TaskName = keyof typeof TASKS;

/** The names, in catalogue order. */
export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

/** A task by name, typed loosely for the planner and runner (params were validated against its schema). */
export function getTask(name: string): TaskDefinition<unknown> | undefined {
  return Object.hasOwn(TASKS, name)
    ? ((TASKS as Record<string, unknown>)[name] as TaskDefinition<unknown>)
    : undefined;
}
