/**
 * Removes from the target what the selection left out (the manifest's
 * `selection.dropped`: of this run's --app/--service, or of the selective
 * backup an archive was made by). The tree came whole (an archive is one
 * checksummed tar of the seed's paths, and Dokku keeps an app's state in a
 * dozen plugin folders), so the removal is Dokku's own: `apps:destroy` runs
 * every plugin's pre-delete and post-delete (their folders, the datastore
 * plugins' LINKS files) and `PLUGIN:destroy` removes a service with its
 * data, config and backup schedule. A taken app linked to a service left out
 * is unlinked first (`PLUGIN:unlink` unsets its URL variable; a linked
 * service cannot be destroyed). It runs after the engine is recreated (the
 * plugins' helper images are there, and a service's cron entry is back to
 * be removed with it) and before any datastore starts or app is rebuilt:
 * nothing left out ever runs on the target.
 */
import { parseAppsList } from '../dokku/apps.js';
import { parseServiceList } from '../dokku/services.js';
import { $ } from '../ssh/shell.js';
import { P } from './common.js';
import { isEmptySelection, parseServiceKey } from './selection.js';
import { defineTask, type RuntimeOf } from './types.js';

const task = defineTask({
  name: 'remove-unselected',
  summary:
    'remove the apps and services the selection left out, with apps:destroy and PLUGIN:destroy',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      archived: {
        type: 'boolean',
        default: false,
        description:
          "The manifest comes from an archive, whose own backup may have been selective: never skipped when planning (restore, drill). Without it the step is skipped unless this run's flags select.",
      },
    },
  },
  actions: {
    'apps-list': [],
    'service-list': ['plugin'],
    'unlink-cut': ['plugin', 'service', 'app'],
    'destroy-app': ['app'],
    'destroy-service': ['plugin', 'service'],
  },
  skip({ params, options }) {
    return !params.archived && isEmptySelection(options.selection)
      ? 'no --app, --exclude-app, --service or --exclude-service: nothing is left out'
      : undefined;
  },
  plan({ host }) {
    const h = host!.name;
    const where = "of the manifest's selection.dropped (none when nothing was left out)";
    return [
      {
        kind: 'remote',
        id: 'apps-list',
        host: h,
        command: $`dokku --quiet apps:list`,
        why: 'which of them are here (a resumed run may have removed some)',
      },
      {
        kind: 'remote',
        id: 'service-list',
        host: h,
        command: $`dokku --quiet ${P.plugin}:list`,
        forEach: 'plugin',
        where: 'plugins of the services left out',
      },
      {
        kind: 'remote',
        id: 'unlink-cut',
        host: h,
        command: $`dokku --no-restart ${P.plugin}:unlink ${P.service} ${P.app}`,
        forEach: 'link',
        where: 'links from a taken app to a service left out',
        why: 'unsets the URL variable and the docker link; a linked service cannot be destroyed',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'destroy-app',
        host: h,
        command: $`dokku --force apps:destroy ${P.app}`,
        forEach: 'app',
        where: `apps ${where}`,
        why: "every plugin's delete triggers remove its folders and the app from LINKS files",
        changes: true,
      },
      {
        kind: 'remote',
        id: 'destroy-service',
        host: h,
        command: $`dokku ${P.plugin}:destroy ${P.service} --force`,
        forEach: 'service',
        where: `services ${where}`,
        why: 'its data, config and backup schedule; it was never started here',
        changes: true,
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof task>) {
  const host = rt.ctx.host!.name;
  const sel = rt.manifest().selection;
  const dropped = sel?.dropped ?? { apps: [], services: [] };
  if (!sel || dropped.apps.length + dropped.services.length === 0) {
    rt.task.skip('nothing was left out');
    return undefined;
  }
  const apps = new Set(parseAppsList(await rt.exec('apps-list')));
  const services = dropped.services
    .map((k) => parseServiceKey(k))
    .filter((s): s is { plugin: string; name: string } => s !== undefined);
  const present = new Set<string>();
  for (const plugin of [...new Set(services.map((s) => s.plugin))]) {
    const listed = parseServiceList(await rt.exec('service-list', { plugin }), plugin);
    for (const s of listed) present.add(`${plugin}/${s.name}`);
  }
  const removed: { apps: string[]; services: string[]; unlinked: string[] } = {
    apps: [],
    services: [],
    unlinked: [],
  };
  for (const c of sel.cut) {
    const svc = parseServiceKey(c.service);
    if (!svc || !present.has(c.service) || !apps.has(c.app)) continue;
    await rt.exec('unlink-cut', { plugin: svc.plugin, service: svc.name, app: c.app });
    removed.unlinked.push(`${c.app} from ${c.service}`);
    rt.task.log(`${c.app}: unlinked from ${c.service} (left out)`);
  }
  for (const app of dropped.apps) {
    if (!apps.has(app)) continue;
    await rt.exec('destroy-app', { app });
    removed.apps.push(app);
    rt.task.log(`app ${app}: removed (left out)`);
  }
  for (const s of services) {
    if (!present.has(`${s.plugin}/${s.name}`)) continue;
    await rt.exec('destroy-service', { plugin: s.plugin, service: s.name });
    removed.services.push(`${s.plugin}/${s.name}`);
    rt.task.log(`service ${s.plugin}/${s.name}: removed (left out)`);
  }
  rt.task.hostState(
    host,
    `left out and removed: apps ${removed.apps.join(', ') || 'none'}; services ${removed.services.join(', ') || 'none'}`,
  );
  return removed;
}

export default task.runs(run);
