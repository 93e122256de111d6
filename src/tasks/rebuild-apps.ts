/**
 * Rebuilds every app that was deployed on the source, the inventory's
 * apps.order first. Each the way it was deployed (seed, "Docker Image and
 * Tar-based Apps … may fail to rebuild via the normal ps:rebuild"): git-pushed
 * apps with ps:rebuild, image apps with git:from-image of the same image,
 * archive apps with git:from-archive of the tree they last deployed (taken
 * from their repo on the host, so the original URL need not still exist).
 * Apps stopped on the source are built and stopped again, so a later
 * ps:start finds their image. The restore property goes back to the
 * source's value once an app is up (clear-stale held it off).
 */

import { DOKKU_ROOT } from '../dokku/layout.js';
import { warnings } from '../dokku/output.js';
import { parsePsReportJson } from '../dokku/ps.js';
import { atLeast } from '../dokku/version.js';
import { FerryError, lastLines, RemoteError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { type Arg, P } from './common.js';
import type { ManifestApp } from './manifest.js';
import { defineTask, type Json, type RemoteAction, type RuntimeOf } from './types.js';

export function rebuildGitCommand(app: Arg): Command {
  return $`dokku ps:rebuild ${app}`;
}
export function rebuildImageCommand(app: Arg, image: Arg): Command {
  return $`dokku git:from-image ${app} ${image}`;
}
/** Redeploys an archive app from the tree it last deployed (HEAD of its repo on the host). */
export function rebuildArchiveCommand(app: Arg): Command {
  const repo = $`${DOKKU_ROOT}/${app}`;
  return $`git -c safe.directory=${repo} -C ${repo} archive --format=tar HEAD | dokku git:from-archive --archive-type tar ${app} --`;
}
/** The app's state here: a resumed run does not rebuild an app already running. */
export function stateCommand(app: Arg): Command {
  return $`dokku ps:report ${app} --format json`;
}
export function stopCommand(app: Arg): Command {
  return $`dokku ps:stop ${app}`;
}
export function restoreCommand(app: Arg, value: boolean): Command {
  return $`dokku ps:set ${app} restore ${value ? 'true' : 'false'}`;
}
/** The restore flag on a Dokku before 0.38 (its ps:set refuses `restore`): the app ENV, as its post-stop trigger writes it. */
export function restoreEnvCommand(app: Arg, value: boolean): Command {
  return $`dokku config:set --no-restart ${app} ${`DOKKU_APP_RESTORE=${value ? 1 : 0}`}`;
}
/** Whether Dokku `version` keeps the restore flag in the app ENV (before 0.38) rather than a ps property. */
export function restoreInEnv(version: string): boolean {
  return !atLeast(version, '0.38.0');
}

/** Dokku before 0.38 keeps the restore flag in the app's ENV (see dokku/layout `restoreFlag`). */
function restoreEnvAction(host: string, value: boolean): RemoteAction {
  return {
    kind: 'remote',
    id: value ? 'restore-on-env' : 'restore-off-env',
    host,
    command: restoreEnvCommand(P.app, value),
    why: 'a Dokku before 0.38 (no ps:set restore): the restore flag lives in the app ENV',
    changes: true,
  };
}

const definition = defineTask({
  name: 'rebuild-apps',
  summary: 'rebuild each app the way it was deployed, apps.order first',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: {
    state: ['app'],
    'rebuild-git': ['app'],
    'rebuild-image': ['app', 'image'],
    'rebuild-archive': ['app'],
    'rebuild-unchanged': ['app'],
    'stop-again': ['app'],
    'restore-on': ['app'],
    'restore-off': ['app'],
    'stop-undo': ['app'],
    'restore-on-env': ['app'],
    'restore-off-env': ['app'],
    unlock: ['app'],
    relock: ['app'],
  },
  plan({ host, inventory, options }) {
    const h = host!.name;
    // A restore's --rename deploys the apps of apps.order by their new names.
    const order = inventory.apps.order.map((n) => options.rename?.apps[n] ?? n);
    const base = {
      kind: 'remote' as const,
      host: h,
      forEach: 'app' as const,
      changes: true,
      ...(order.length > 0 ? { items: [...order] } : {}),
    };
    const orUnchanged: RemoteAction[] = [
      {
        kind: 'remote',
        id: 'rebuild-unchanged',
        host: h,
        command: rebuildGitCommand(P.app),
        why: 'only on "No changes detected" (same image or tree; it is now in the engine): rebuild what the repo holds',
        changes: true,
      },
    ];
    return [
      {
        ...base,
        id: 'unlock',
        command: $`if dokku apps:locked ${P.app} >/dev/null 2>&1; then dokku apps:unlock ${P.app}; fi`,
        where: 'apps the user locked with apps:lock on the source',
        why: 'a deploy lock refuses the rebuild: lifted for it, and put back right after (relock)',
      },
      {
        ...base,
        id: 'relock',
        command: $`dokku apps:locked ${P.app} >/dev/null 2>&1 || dokku apps:lock ${P.app}`,
        where: 'the same apps, once rebuilt or failed',
        why: "the user's deploy freeze, kept",
      },
      {
        ...base,
        id: 'state',
        command: stateCommand(P.app),
        where: 'apps deployed on the source (the others are skipped)',
        why: 'already running here (a resumed run)? then it is not rebuilt again',
        changes: false,
      },
      {
        ...base,
        id: 'rebuild-git',
        command: rebuildGitCommand(P.app),
        where: 'apps deployed on the source by git push',
      },
      {
        ...base,
        id: 'rebuild-image',
        command: rebuildImageCommand(P.app, P.image),
        where: 'apps deployed on the source with git:from-image (<image> from the manifest)',
        fallback: orUnchanged,
      },
      {
        ...base,
        id: 'rebuild-archive',
        command: rebuildArchiveCommand(P.app),
        where: 'apps deployed on the source with git:from-archive',
        fallback: orUnchanged,
      },
      {
        ...base,
        id: 'stop-again',
        command: stopCommand(P.app),
        where: 'apps deployed but stopped on the source',
        why: 'built so a later ps:start finds the image, then stopped as they were',
      },
      {
        ...base,
        id: 'restore-on',
        command: restoreCommand(P.app, true),
        where: 'rebuilt apps whose restore was true on the source',
        why: 'clear-stale held automatic restore off until the app was deployed',
        fallback: [restoreEnvAction(h, true)],
      },
      {
        ...base,
        id: 'restore-off',
        command: restoreCommand(P.app, false),
        where: 'rebuilt apps whose restore was false on the source',
        fallback: [restoreEnvAction(h, false)],
      },
      {
        ...base,
        id: 'stop-undo',
        command: stopCommand(P.app),
        where: 'apps deployed on the source',
        only: "a later step fails before the target is verified (the playbook's undo range)",
        why: 'nothing runs on data that goes back into the stage',
      },
    ];
  },
});

/** The manifest's apps in rebuild order: apps.order first (as listed), then the rest as found. */
export function rebuildOrder(
  apps: readonly ManifestApp[],
  order: readonly string[],
): { ordered: ManifestApp[]; unknown: string[] } {
  const byName = new Map(apps.map((a) => [a.name, a]));
  const first = order.filter((n) => byName.has(n));
  const unknown = order.filter((n) => !byName.has(n));
  const rest = apps.filter((a) => !first.includes(a.name));
  return { ordered: [...first.map((n) => byName.get(n)!), ...rest], unknown };
}

/** `git:from-*` refused because the tree equals the repo's HEAD (reference §5.5: exit 1). */
export function isNoChanges(out: { stdout: string; stderr: string }): boolean {
  // build capture (§0.5) sends the warning to stdout; without it, it is on stderr
  return warnings(`${out.stdout}\n${out.stderr}`).some((w) => w.startsWith('No changes detected'));
}

/** How an app is redeployed, from its manifest entry. */
export function methodOf(app: ManifestApp): 'git' | 'image' | 'archive' {
  if (app.method === 'image' && app.deploySourceMetadata) return 'image';
  if (app.method === 'archive') return 'archive';
  return 'git';
}

/** One app's result. */
interface AppResult {
  app: string;
  status: 'rebuilt' | 'already-running' | 'skipped' | 'failed';
  how?: string;
  seconds?: number;
  reason?: string;
}

function tailOf(e: unknown): string {
  if (e instanceof RemoteError) {
    const text = `${e.stdout}\n${e.stderr}`.trim();
    return lastLines(text, 12);
  }
  return e instanceof Error ? e.message : String(e);
}

type Runtime = RuntimeOf<typeof definition>;

async function redeploy(rt: Runtime, app: ManifestApp): Promise<string> {
  const vars = { app: app.name };
  const method = methodOf(app);
  if (method === 'git') {
    if (app.method === 'image') {
      rt.task.warn(`${app.name}: an image app without a recorded image; rebuilt with ps:rebuild`);
    }
    await rt.exec('rebuild-git', vars);
    return 'ps:rebuild';
  }
  const what = method === 'image' ? 'git:from-image' : 'git:from-archive';
  const id = method === 'image' ? 'rebuild-image' : 'rebuild-archive';
  const bound: Record<string, string> =
    method === 'image' ? { ...vars, image: app.deploySourceMetadata! } : vars;
  // Exit 1 is also how Dokku says "No changes detected": told apart below.
  const r =
    id === 'rebuild-image'
      ? await rt.exec(id, { app: app.name, image: bound.image! }, { allowCodes: [0, 1] })
      : await rt.exec(id, vars, { allowCodes: [0, 1] });
  if (r.code === 0) return what;
  if (!isNoChanges(r)) {
    const action = rt.action(id);
    throw new RemoteError({
      host: rt.ctx.host!.name,
      command: action.kind === 'stream' ? id : action.command.bind(bound).toString(),
      code: r.code,
      stdout: r.stdout,
      stderr: r.stderr,
    });
  }
  // Dokku pulled the image (or unpacked the tree) before it compared: a
  // rebuild of the repo's commit now finds everything it needs.
  rt.task.log(`${app.name}: ${what} found no changes; ps:rebuild`);
  await rt.exec('rebuild-unchanged', vars);
  return `${what} (no changes) + ps:rebuild`;
}

/** Puts the restore flag back as the source had it (the ENV form on a Dokku before 0.38). */
async function setRestore(rt: Runtime, app: ManifestApp): Promise<void> {
  const vars = { app: app.name };
  try {
    await rt.exec(app.restore ? 'restore-on' : 'restore-off', vars);
  } catch (e) {
    const env = app.restore ? 'restore-on-env' : 'restore-off-env';
    if (!rt.has(env)) throw e;
    await rt.exec(env, vars);
  }
}

/** Whether the app already runs here: only a deploy after the extract can start it. */
async function runningHere(rt: Runtime, app: string): Promise<boolean> {
  const r = await rt.exec('state', { app });
  return parsePsReportJson(r).running === 'true';
}

async function run(rt: Runtime) {
  const manifest = rt.manifest();
  const host = rt.ctx.host!.name;
  // apps.order names apps as the source did; a restore's --rename may have renamed some.
  const order = rt.ctx.inventory.apps.order.map((n) => manifest.renamed?.apps[n] ?? n);
  const { ordered, unknown } = rebuildOrder(manifest.apps, order);
  for (const n of unknown) rt.task.warn(`apps.order names ${n}, which the source does not have`);
  const results: AppResult[] = [];
  const failures: { app: string; message: string; tail: string }[] = [];
  const todo = ordered.filter((a) => a.deployed);
  for (const a of ordered.filter((x) => !x.deployed)) {
    rt.task.log(`${a.name}: not deployed on the source; skipped`);
    results.push({ app: a.name, status: 'skipped', reason: 'not deployed on the source' });
  }
  let i = 0;
  for (const app of todo) {
    i++;
    if (rt.task.signal.aborted) throw new FerryError('interrupted');
    rt.task.setTitle(`${definition.summary} (${i}/${todo.length}: ${app.name})`);
    const stopped = app.running === 'false';
    const started = Date.now();
    // The user's apps:lock refuses any deploy: lifted for the rebuild, put back whatever happens.
    if (app.locked) await rt.exec('unlock', { app: app.name });
    try {
      if (!stopped && (await runningHere(rt, app.name))) {
        rt.task.log(`${app.name}: already running here; not rebuilt again`);
        results.push({ app: app.name, status: 'already-running' });
      } else {
        rt.task.log(`${app.name}: ${methodOf(app)} app, rebuilding (${i}/${todo.length})`);
        const how = await redeploy(rt, app);
        if (stopped) await rt.exec('stop-again', { app: app.name });
        const seconds = Math.round((Date.now() - started) / 100) / 10;
        results.push({ app: app.name, status: 'rebuilt', how, seconds });
        rt.task.log(
          `${app.name}: rebuilt by ${how} in ${seconds} s${stopped ? ', stopped again' : ''}`,
        );
      }
      await setRestore(rt, app);
    } catch (e) {
      if (rt.task.signal.aborted) throw e;
      const message = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      if (stopped) {
        // it did not run on the source either: worth a warning, not a failed migration
        rt.task.warn(`${app.name} (stopped on the source) did not rebuild: ${message}`);
        results.push({ app: app.name, status: 'failed', reason: message });
        continue;
      }
      failures.push({ app: app.name, message, tail: tailOf(e) });
      results.push({ app: app.name, status: 'failed', reason: message });
      rt.task.log(`${app.name}: FAILED (${message}); going on with the others`);
    } finally {
      if (app.locked) {
        await rt.exec('relock', { app: app.name });
        rt.task.log(`${app.name}: locked again (apps:lock), as the user had it`);
      }
    }
  }
  rt.task.setTitle(definition.summary);
  const outputs = {
    apps: results.map((r) => ({ ...r }) as unknown as Json),
    rebuilt: results.filter((r) => r.status === 'rebuilt').map((r) => r.app),
    failed: results.filter((r) => r.status === 'failed').map((r) => r.app),
  };
  if (failures.length > 0) {
    const ok = results.filter((r) => r.status === 'rebuilt' || r.status === 'already-running');
    rt.task.hostState(
      host,
      `${ok.length} app(s) up; ${failures.map((f) => f.app).join(', ')} failed to rebuild (restore left off)`,
    );
    throw new FerryError(
      `${failures.length} of ${todo.length} app(s) failed to rebuild: ${failures.map((f) => f.app).join(', ')}\n${failures
        .map((f) => `  ${f.app}: ${f.message}\n${f.tail.replace(/^/gm, '    │ ')}`)
        .join('\n')}`,
      {
        hint: `Fix the app(s) and rerun with --resume (apps already running on ${host} are not rebuilt again), or redeploy them by hand.`,
      },
    );
  }
  return outputs;
}

async function undo(rt: Runtime) {
  const apps = rt.manifest().apps.filter((a) => a.deployed);
  const failed: string[] = [];
  for (const a of apps) {
    try {
      await rt.exec('stop-undo', { app: a.name });
    } catch {
      failed.push(a.name);
    }
  }
  if (failed.length > 0) throw new FerryError(`could not stop ${failed.join(', ')}`);
  rt.task.log(`${apps.length} app(s) stopped`);
}

export default definition.runs(run, { undo });
