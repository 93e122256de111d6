/**
 * Which apps and services a run takes (`--app`, `--exclude-app`, `--service`,
 * `--exclude-service`) and what a restore calls them on the target
 * (`--rename old=new`), applied to a manifest. Pure: the `select` step
 * applies it where the manifest is known (the source's inventory, or an
 * archive's), and every later step reads the manifest it leaves.
 *
 * What a selection means for the data: the seed's five paths hold every app
 * (Dokku keeps an app's state in a dozen plugin folders), and an archive is
 * one checksummed tar of them. So the tree travels whole and is extracted
 * whole; the manifest says what was taken, and on the target
 * `remove-unselected` removes the rest with Dokku's own `apps:destroy` and
 * `PLUGIN:destroy` (each plugin cleans its own folders and links) before
 * any datastore starts or any app is rebuilt. Only the taken services are
 * exported; nothing left out is ever started on the target.
 */
import { APP_NAME, APP_NAME_RULE, isAppName, isServiceName, PLUGIN_NAME } from '../dokku/names.js';
import type { Manifest, ManifestSelection, ManifestService, Selection } from './manifest.js';

export type { ManifestSelection, Selection };

/** `--rename OLD=NEW` of a restore: apps by name, services as `plugin/old` → new name. */
export interface Renames {
  apps: Record<string, string>;
  services: Record<string, string>;
}

/** No selection at all. */
export function isEmptySelection(s: Selection | undefined): boolean {
  return (
    !s || s.apps.length + s.excludeApps.length + s.services.length + s.excludeServices.length === 0
  );
}

/** No rename at all. */
export function isEmptyRenames(r: Renames | undefined): boolean {
  return !r || Object.keys(r.apps).length + Object.keys(r.services).length === 0;
}

/** `plugin/name` of a service. */
export function serviceKey(s: { plugin: string; name: string }): string {
  return `${s.plugin}/${s.name}`;
}

/** Splits `plugin/name`; undefined when it is not one. */
export function parseServiceKey(key: string): { plugin: string; name: string } | undefined {
  const m = /^([^/]+)\/([^/]+)$/.exec(key);
  if (!m || !PLUGIN_NAME.test(m[1]!) || !isServiceName(m[2]!)) return undefined;
  return { plugin: m[1]!, name: m[2]! };
}

/**
 * Problems of the flags themselves, found before any host is contacted: names
 * Dokku would refuse, a name both taken and left out, a rename that is not
 * OLD=NEW or that renames two things to one name.
 */
export function selectionProblems(sel: Selection, renames?: Renames): string[] {
  const out: string[] = [];
  for (const [flag, list] of [
    ['--app', sel.apps],
    ['--exclude-app', sel.excludeApps],
  ] as const) {
    for (const a of list)
      if (!isAppName(a)) out.push(`${flag} ${a}: not an app name Dokku accepts`);
  }
  for (const [flag, list] of [
    ['--service', sel.services],
    ['--exclude-service', sel.excludeServices],
  ] as const) {
    for (const s of list) {
      if (!parseServiceKey(s)) out.push(`${flag} ${s}: expected PLUGIN/NAME, e.g. postgres/db`);
    }
  }
  for (const a of sel.apps.filter((x) => sel.excludeApps.includes(x))) {
    out.push(`app ${a} is both taken (--app) and left out (--exclude-app)`);
  }
  for (const s of sel.services.filter((x) => sel.excludeServices.includes(x))) {
    out.push(`service ${s} is both taken (--service) and left out (--exclude-service)`);
  }
  if (renames) {
    for (const [from, to] of Object.entries(renames.apps)) {
      // A new app: apps:rename checks NEW with IsValidAppName, the rule of 0.38.2 and later.
      if (!APP_NAME.test(to) || to.length > 255) {
        out.push(`--rename ${from}=${to}: ${APP_NAME_RULE}`);
      }
    }
    for (const [from, to] of Object.entries(renames.services)) {
      if (!isServiceName(to)) out.push(`--rename ${from}=${to}: ${to} is not a service name`);
    }
    const appTargets = Object.values(renames.apps);
    for (const t of new Set(appTargets)) {
      if (appTargets.filter((x) => x === t).length > 1) out.push(`two apps renamed to ${t}`);
    }
    const svcTargets = Object.entries(renames.services).map(
      ([from, to]) => `${from.split('/')[0]}/${to}`,
    );
    for (const t of new Set(svcTargets)) {
      if (svcTargets.filter((x) => x === t).length > 1) out.push(`two services renamed to ${t}`);
    }
  }
  return out;
}

/** Reads `--rename` values: `OLD=NEW` for an app, `PLUGIN/OLD=NEW` (or `=PLUGIN/NEW`) for a service. */
export function parseRenames(values: readonly string[]): { renames: Renames; problems: string[] } {
  const renames: Renames = { apps: {}, services: {} };
  const problems: string[] = [];
  for (const v of values) {
    const eq = v.indexOf('=');
    const from = eq > 0 ? v.slice(0, eq) : '';
    let to = eq > 0 ? v.slice(eq + 1) : '';
    if (!from || !to) {
      problems.push(`--rename ${v}: expected OLD=NEW (an app) or PLUGIN/OLD=NEW (a service)`);
      continue;
    }
    if (from.includes('/')) {
      const svc = parseServiceKey(from);
      if (!svc) {
        problems.push(`--rename ${v}: ${from} is not PLUGIN/NAME`);
        continue;
      }
      if (to.includes('/')) {
        const target = parseServiceKey(to);
        if (!target || target.plugin !== svc.plugin) {
          problems.push(`--rename ${v}: a service keeps its plugin (${svc.plugin}/NEW)`);
          continue;
        }
        to = target.name;
      }
      if (renames.services[from] !== undefined) problems.push(`--rename ${from} is given twice`);
      renames.services[from] = to;
    } else {
      if (!isAppName(from)) {
        problems.push(`--rename ${v}: ${from} is not an app name`);
        continue;
      }
      if (renames.apps[from] !== undefined) problems.push(`--rename ${from} is given twice`);
      renames.apps[from] = to;
    }
  }
  return { renames, problems };
}

/** What {@link applySelection} made of a manifest. */
export interface Selected {
  manifest: Manifest;
  /** Names the flags give that the manifest does not have (nothing is changed then). */
  problems: string[];
}

/**
 * The manifest of what `sel` takes: with `--app` or `--service`, those apps
 * and services and every service linked to a taken app; else everything;
 * minus what `--exclude-*` leaves out. A taken service keeps its links to
 * taken apps only; a taken app's link to a service left out is recorded as
 * cut. What an earlier selection dropped (a selective backup) stays dropped.
 */
export function applySelection(manifest: Manifest, sel: Selection): Selected {
  const apps = manifest.apps.map((a) => a.name);
  const services = manifest.services.map(serviceKey);
  const problems: string[] = [];
  const unknown = (flag: string, names: string[], known: string[], what: string): void => {
    for (const n of names.filter((x) => !known.includes(x))) {
      problems.push(
        `${flag} ${n}: no such ${what} in the manifest of ${manifest.source.host} (${what}s: ${known.join(', ') || 'none'})`,
      );
    }
  };
  unknown('--app', sel.apps, apps, 'app');
  unknown('--exclude-app', sel.excludeApps, apps, 'app');
  unknown('--service', sel.services, services, 'service');
  unknown('--exclude-service', sel.excludeServices, services, 'service');
  if (problems.length > 0) return { manifest, problems };

  const chosen = sel.apps.length + sel.services.length > 0;
  const keptApps = new Set((chosen ? sel.apps : apps).filter((a) => !sel.excludeApps.includes(a)));
  const taken: Record<string, string> = {};
  for (const s of manifest.services) {
    const key = serviceKey(s);
    if (sel.excludeServices.includes(key)) continue;
    if (!chosen) taken[key] = 'every service';
    else if (sel.services.includes(key)) taken[key] = 'asked';
    else {
      const by = s.links.filter((a) => keptApps.has(a));
      if (by.length > 0) taken[key] = `linked to ${by.join(', ')}`;
    }
  }
  const cut: ManifestSelection['cut'] = [];
  for (const s of manifest.services) {
    if (taken[serviceKey(s)] !== undefined) continue;
    for (const a of s.links) if (keptApps.has(a)) cut.push({ service: serviceKey(s), app: a });
  }
  const keptServices: ManifestService[] = manifest.services
    .filter((s) => taken[serviceKey(s)] !== undefined)
    .map((s) => ({ ...s, links: s.links.filter((a) => keptApps.has(a)) }));
  const before = manifest.selection?.dropped ?? { apps: [], services: [] };
  const selection: ManifestSelection = {
    asked: sel,
    dropped: {
      apps: [...before.apps, ...apps.filter((a) => !keptApps.has(a))],
      services: [...before.services, ...services.filter((s) => taken[s] === undefined)],
    },
    taken,
    cut: [...(manifest.selection?.cut ?? []), ...cut],
  };
  return {
    manifest: {
      ...manifest,
      apps: manifest.apps.filter((a) => keptApps.has(a.name)),
      services: keptServices,
      selection,
    },
    problems: [],
  };
}

/**
 * Problems of `--rename` against the (selected) manifest: an old name it
 * does not have, a new name already taken by another app or service.
 */
export function renameProblems(manifest: Manifest, renames: Renames): string[] {
  const problems: string[] = [];
  const apps = manifest.apps.map((a) => a.name);
  const services = manifest.services.map(serviceKey);
  for (const [from, to] of Object.entries(renames.apps)) {
    if (!apps.includes(from)) {
      problems.push(
        `--rename ${from}=${to}: no app ${from} is restored (apps: ${apps.join(', ') || 'none'})`,
      );
    } else if (apps.includes(to) && renames.apps[to] === undefined) {
      problems.push(`--rename ${from}=${to}: an app ${to} is restored too`);
    }
  }
  for (const [from, to] of Object.entries(renames.services)) {
    const plugin = from.split('/')[0]!;
    if (!services.includes(from)) {
      problems.push(
        `--rename ${from}=${to}: no service ${from} is restored (services: ${services.join(', ') || 'none'})`,
      );
    } else if (
      services.includes(`${plugin}/${to}`) &&
      renames.services[`${plugin}/${to}`] === undefined
    ) {
      problems.push(`--rename ${from}=${to}: a service ${plugin}/${to} is restored too`);
    }
  }
  return problems;
}

/** The manifest with `--rename` done: app and service names, and the links between them. */
export function applyRenames(manifest: Manifest, renames: Renames): Manifest {
  const app = (n: string): string => renames.apps[n] ?? n;
  return {
    ...manifest,
    apps: manifest.apps.map((a) => ({ ...a, name: app(a.name) })),
    services: manifest.services.map((s) => ({
      ...s,
      name: renames.services[serviceKey(s)] ?? s.name,
      links: s.links.map(app),
    })),
    renamed: {
      apps: { ...(manifest.renamed?.apps ?? {}), ...renames.apps },
      services: { ...(manifest.renamed?.services ?? {}), ...renames.services },
    },
  };
}

/** The selection in words, for plans and reports. */
export function describeSelection(sel: Selection | undefined, renames?: Renames): string {
  const parts: string[] = [];
  if (sel && sel.apps.length > 0) {
    parts.push(`apps ${sel.apps.join(', ')} with the services linked to them`);
  }
  if (sel && sel.services.length > 0) parts.push(`services ${sel.services.join(', ')}`);
  if (sel && sel.apps.length + sel.services.length === 0 && !isEmptySelection(sel)) {
    parts.push('every app and service');
  }
  if (sel && sel.excludeApps.length > 0) parts.push(`but apps ${sel.excludeApps.join(', ')}`);
  if (sel && sel.excludeServices.length > 0) {
    parts.push(`but services ${sel.excludeServices.join(', ')} (even when linked)`);
  }
  if (renames && !isEmptyRenames(renames)) {
    const r = [...Object.entries(renames.apps), ...Object.entries(renames.services)].map(
      ([a, b]) => `${a} as ${b}`,
    );
    parts.push(`renaming ${r.join(', ')}`);
  }
  return parts.join('; ');
}
