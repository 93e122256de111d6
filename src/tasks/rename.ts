/**
 * `ferry restore ... --rename old=new`: apps and services take new names on
 * the target, their links and ENV following, by Dokku's own commands.
 *
 * - An app: `dokku apps:rename --skip-deploy OLD NEW` (Dokku 0.38
 *   plugins/apps/subcommands.go CommandRename): it creates NEW, runs every
 *   plugin's post-app-rename-setup (git copies the repo and writes the hook,
 *   config merges the ENV, domains rewrites the default vhost OLD.domain to
 *   NEW.domain, each plugin clones its properties, a datastore plugin adds
 *   NEW to the LINKS of the services OLD was linked to) and destroys OLD. The
 *   ENV comes along as it was, so a linked service's URL holds; the deploy is
 *   rebuild-apps' job, so --skip-deploy.
 * - A service: the datastore plugins have no rename; `PLUGIN:clone OLD NEW`
 *   (dokku-postgres 1.48.0 subcommands/clone, the same in mysql and redis)
 *   makes NEW from OLD's image and copies the data (export | import), then
 *   each linked app is moved across: `PLUGIN:unlink` OLD (unsets the URL
 *   variable and the docker link), `PLUGIN:link NEW --alias` the same alias
 *   (the variable keeps its name, with NEW's URL), and OLD is destroyed.
 *
 * Runs after start-services (clone reads a running service) and before
 * rebuild-apps, which deploys the apps by their new names. The manifest it
 * leaves has the new names, so rebuild-apps and verify-apps use them.
 */
import { parseAppsList } from '../dokku/apps.js';
import { parseServiceList } from '../dokku/services.js';
import { StopError } from '../errors.js';
import { $, hole } from '../ssh/shell.js';
import { P } from './common.js';
import type { Manifest } from './manifest.js';
import { applyRenames, isEmptyRenames, parseServiceKey } from './selection.js';
import { defineTask, type Json, type PlannedAction, type RuntimeOf } from './types.js';

const ALIAS = hole('alias');

/** The names of the app's variables holding the service's URL (printed by the host; the URL never leaves it). */
export function aliasCommand(
  plugin: string,
  service: string,
  app: ReturnType<typeof hole> | string,
) {
  return $`u=$(dokku ${plugin}:info ${service} --dsn) && { dokku --quiet config:show ${app} | grep -F -- "$u" || true; } | cut -d: -f1`;
}

/** The alias a link used: `DATABASE` of `DATABASE_URL`; a plugin's own DOKKU_<PLUGIN>_<COLOR>_URL only when nothing else. */
export function aliasOf(stdout: string): string | undefined {
  const keys = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((k) => /^[A-Za-z_][A-Za-z0-9_]*_URL$/.test(k));
  const own = keys.find((k) => !k.startsWith('DOKKU_')) ?? keys[0];
  return own?.replace(/_URL$/, '');
}

const task = defineTask({
  name: 'rename',
  summary: 'give apps and services their --rename names: apps:rename, PLUGIN:clone and relink',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: {
    'apps-list': [],
    'service-list': [],
    'rename-app': [],
    'clone-service': [],
    'service-status': [],
    'link-alias': ['app'],
    'unlink-old': ['app'],
    'link-new': ['app', 'alias'],
    'link-new-default': ['app'],
    'destroy-old': [],
  },
  skip({ options }) {
    return isEmptyRenames(options.rename) ? 'no --rename' : undefined;
  },
  plan({ host, options }) {
    const h = host!.name;
    const renames = options.rename!;
    const r = (
      id: string,
      item: string,
      command: ReturnType<typeof $>,
      extra: Partial<PlannedAction> = {},
    ): PlannedAction => ({ kind: 'remote', id, item, host: h, command, ...extra }) as PlannedAction;
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        id: 'apps-list',
        host: h,
        command: $`dokku --quiet apps:list`,
        why: 'a resumed run finds what is renamed already',
      },
    ];
    for (const [from, to] of Object.entries(renames.apps)) {
      actions.push(
        r('rename-app', from, $`dokku apps:rename --skip-deploy ${from} ${to}`, {
          why: "Dokku's own rename: repo, ENV, domains, properties and the services' LINKS follow; deployed by rebuild-apps",
          changes: true,
        }),
      );
    }
    const plugins = [...new Set(Object.keys(renames.services).map((k) => k.split('/')[0]!))];
    for (const plugin of plugins) {
      actions.push(
        r('service-list', plugin, $`dokku --quiet ${plugin}:list`, {
          why: 'a resumed run finds what is cloned already',
        }),
      );
    }
    for (const [key, to] of Object.entries(renames.services)) {
      const { plugin, name: from } = parseServiceKey(key)!;
      actions.push(
        r('clone-service', key, $`dokku ${plugin}:clone ${from} ${to}`, {
          why: 'a new service from the running one: same image, its data copied (the plugins have no rename)',
          changes: true,
        }),
        r('service-status', key, $`dokku ${plugin}:info ${to} --status`, { expect: 'running' }),
        r('link-alias', key, aliasCommand(plugin, from, P.app), {
          forEach: 'link',
          where: `apps linked to ${key}`,
          why: 'the variable holding its URL (names only are printed)',
        }),
        r('unlink-old', key, $`dokku --no-restart ${plugin}:unlink ${from} ${P.app}`, {
          forEach: 'link',
          where: `apps linked to ${key}`,
          changes: true,
        }),
        r('link-new', key, $`dokku ${plugin}:link ${to} ${P.app} --alias ${ALIAS} --no-restart`, {
          forEach: 'link',
          where: `apps linked to ${key}: the same variable, ${plugin}/${to}'s URL`,
          changes: true,
        }),
        r('link-new-default', key, $`dokku ${plugin}:link ${to} ${P.app} --no-restart`, {
          forEach: 'link',
          only: "the app held no variable with the old URL: the plugin's default alias",
          changes: true,
        }),
        r('destroy-old', key, $`dokku ${plugin}:destroy ${from} --force`, {
          why: 'its data now lives in the new one; nothing links to it any more',
          changes: true,
        }),
      );
    }
    return actions;
  },
});

type Runtime = RuntimeOf<typeof task>;

async function renameServices(rt: Runtime, m: Manifest): Promise<string[]> {
  const renames = rt.ctx.options.rename!;
  const done: string[] = [];
  const present = new Map<string, Set<string>>();
  for (const key of Object.keys(renames.services)) {
    const plugin = key.split('/')[0]!;
    if (!present.has(plugin)) {
      const r = await rt.exec('service-list', {}, { item: plugin });
      present.set(plugin, new Set(parseServiceList(r, plugin).map((s) => s.name)));
    }
  }
  for (const [key, to] of Object.entries(renames.services)) {
    const { plugin, name: from } = parseServiceKey(key)!;
    const here = present.get(plugin)!;
    const svc = m.services.find((s) => s.plugin === plugin && s.name === from);
    const apps = svc?.links ?? [];
    if (!here.has(from) && here.has(to)) {
      rt.task.log(`${key}: already ${plugin}/${to} (an earlier attempt)`);
      continue;
    }
    if (!here.has(to)) await rt.exec('clone-service', {}, { item: key });
    const status = (await rt.exec('service-status', {}, { item: key })).stdout.trim();
    if (status !== 'running') {
      throw new StopError(`${plugin}/${to}, cloned from ${key}, is ${status || 'not running'}`, {
        hint: `Look at it with \`dokku ${plugin}:info ${to}\` and \`dokku ${plugin}:logs ${to}\`; ${key} is still there.`,
      });
    }
    for (const app of apps) {
      const alias = aliasOf((await rt.exec('link-alias', { app }, { item: key })).stdout);
      if (alias !== undefined) {
        await rt.exec('unlink-old', { app }, { item: key });
        await rt.exec('link-new', { app, alias }, { item: key });
      } else {
        // The app was not linked by a variable (an edited ENV): link it as the plugin would.
        rt.task.warn(
          `${app} held no variable with ${key}'s URL: linked to ${plugin}/${to} with the plugin's default alias`,
        );
        await rt.exec('unlink-old', { app }, { item: key, allowCodes: [0, 1] });
        await rt.exec('link-new-default', { app }, { item: key });
      }
      rt.task.log(`${app}: now linked to ${plugin}/${to}${alias ? ` as ${alias}_URL` : ''}`);
    }
    await rt.exec('destroy-old', {}, { item: key });
    done.push(`${key} → ${plugin}/${to}`);
  }
  return done;
}

async function run(rt: Runtime) {
  const renames = rt.ctx.options.rename!;
  const host = rt.ctx.host!.name;
  const m = rt.manifest();
  const apps = new Set(parseAppsList(await rt.exec('apps-list')));
  const renamedApps: string[] = [];
  for (const [from, to] of Object.entries(renames.apps)) {
    if (!apps.has(from) && apps.has(to)) {
      rt.task.log(`${from}: already ${to} (an earlier attempt)`);
    } else {
      await rt.exec('rename-app', {}, { item: from });
      rt.task.log(`app ${from} is now ${to}`);
    }
    renamedApps.push(`${from} → ${to}`);
  }
  // The services' links now name the apps by their new names.
  const withApps = applyRenames(m, { apps: renames.apps, services: {} });
  const renamedServices = await renameServices(rt, withApps);
  const manifest = applyRenames(m, renames);
  rt.task.hostState(
    host,
    `renamed: ${[...renamedApps, ...renamedServices].join(', ')}; apps not yet rebuilt`,
  );
  return { manifest: manifest as unknown as Json, apps: renamedApps, services: renamedServices };
}

export default task.runs(run);
