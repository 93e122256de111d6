/**
 * Where Dokku keeps things, by version (reference §1). Every path that moved
 * between releases is answered here, so no task hard-codes one release's
 * layout. A plan is made before a host's version is known, so the tasks ask
 * for the paths of every supported release (`…AllReleases`) where they search,
 * and for one release's path where a run already knows it.
 */
import { atLeast, type DokkuVersion } from './version.js';

/** `$DOKKU_ROOT`: app repos, `.sshcommand`, VHOST. */
export const DOKKU_ROOT = '/home/dokku';
/** `$DOKKU_LIB_ROOT`: config, data, plugins, services. */
export const DOKKU_LIB_ROOT = '/var/lib/dokku';
/** Datastore plugins' services: `<plugin>/<service>/`. */
export const SERVICES_ROOT = `${DOKKU_LIB_ROOT}/services`;

/**
 * What the seed's backup archives, relative to `/`, in its order: the app
 * repos and the core's files (`$DOKKU_ROOT`), plugin properties, data,
 * services and plugins. The same in every release since 0.5.
 */
export const ARCHIVED_PATHS = [
  DOKKU_ROOT,
  `${DOKKU_LIB_ROOT}/config`,
  `${DOKKU_LIB_ROOT}/data`,
  SERVICES_ROOT,
  `${DOKKU_LIB_ROOT}/plugins`,
].map((p) => p.slice(1));

/** The folders holding `<app>/.deploy.lock` in any supported release (0.34+: data/apps; before: the app root). */
export const DEPLOY_LOCK_DIRS_ALL_RELEASES = [`${DOKKU_LIB_ROOT}/data/apps`, DOKKU_ROOT] as const;

/** Every installed plugin's files: `<plugin>/` (enabled ones are linked from `plugins/enabled`). */
export const PLUGIN_AVAILABLE = `${DOKKU_LIB_ROOT}/plugins/available`;
/** Links to the enabled plugins. */
export const PLUGIN_ENABLED = `${DOKKU_LIB_ROOT}/plugins/enabled`;
/** The core plugins of the installed Dokku package (not archived: they come with the release). */
export const CORE_PLUGINS = `${DOKKU_LIB_ROOT}/core-plugins/available`;

/** Build records (0.38+), `data/builds/<app>/<id>.json`. */
export const BUILDS_ROOT = `${DOKKU_LIB_ROOT}/data/builds`;

type Version = DokkuVersion | string;

/** The app's ENV file: `config/<app>/ENV` since 0.38.0, `$DOKKU_ROOT/<app>/ENV` before. */
export function envPath(version: Version, app: string): string {
  return atLeast(version, '0.38.0')
    ? `${DOKKU_LIB_ROOT}/config/${app}/ENV`
    : `${DOKKU_ROOT}/${app}/ENV`;
}

/** The global ENV file: `config/--global/ENV` since 0.38.0, `$DOKKU_ROOT/ENV` before. */
export function globalEnvPath(version: Version): string {
  return atLeast(version, '0.38.0') ? `${DOKKU_LIB_ROOT}/config/--global/ENV` : `${DOKKU_ROOT}/ENV`;
}

/** The deploy lock: `data/apps/<app>/.deploy.lock` since 0.34.0, in the app root before. */
export function deployLockPath(version: Version, app: string): string {
  return atLeast(version, '0.34.0')
    ? `${DOKKU_LIB_ROOT}/data/apps/${app}/.deploy.lock`
    : `${DOKKU_ROOT}/${app}/.deploy.lock`;
}

/**
 * Where an app's bind mounts live. 0.38: a mounts file plus registry entries;
 * ≤0.37: `-v host:ctr` lines inside the DOCKER_OPTIONS_* files.
 */
export type StorageLayout =
  | { kind: 'registry'; mounts: string; entries: string }
  | { kind: 'docker-options'; files: string[] };

/** The storage layout of `app` on this version. */
export function storageLayout(version: Version, app: string): StorageLayout {
  if (atLeast(version, '0.38.0')) {
    return {
      kind: 'registry',
      mounts: `${DOKKU_LIB_ROOT}/config/storage/${app}/mounts`,
      entries: `${DOKKU_LIB_ROOT}/data/storage-registry/entries`,
    };
  }
  return { kind: 'docker-options', files: dockerOptionsPaths(version, app) };
}

/** Files holding the app's docker options (one per phase). */
export function dockerOptionsPaths(version: Version, app: string): string[] {
  if (atLeast(version, '0.38.0')) {
    return ['build', 'deploy', 'run'].map(
      (phase) => `${DOKKU_LIB_ROOT}/config/docker-options/${app}/_default_.${phase}`,
    );
  }
  return ['BUILD', 'DEPLOY', 'RUN'].map((phase) => `${DOKKU_ROOT}/${app}/DOCKER_OPTIONS_${phase}`);
}

/**
 * How "start this app again on restore" is recorded. 0.38: the ps `restore`
 * property file; ≤0.37: `DOKKU_APP_RESTORE=0|1` in the app's ENV.
 */
export type RestoreFlag =
  | { kind: 'property'; path: string; off: 'false'; on: 'true' }
  | { kind: 'env'; path: string; key: 'DOKKU_APP_RESTORE'; off: '0'; on: '1' };

/** The restore flag of `app` on this version. */
export function restoreFlag(version: Version, app: string): RestoreFlag {
  if (atLeast(version, '0.38.0')) {
    return {
      kind: 'property',
      path: `${DOKKU_LIB_ROOT}/config/ps/${app}/restore`,
      off: 'false',
      on: 'true',
    };
  }
  return { kind: 'env', path: envPath(version, app), key: 'DOKKU_APP_RESTORE', off: '0', on: '1' };
}

/** The app's bare git repository (the app root itself). */
export function appRoot(app: string): string {
  return `${DOKKU_ROOT}/${app}`;
}

/** A plugin's property folder of an app: `config/<plugin>/<app>/` (one file per property). */
export function propertyDir(plugin: string): string {
  return `${DOKKU_LIB_ROOT}/config/${plugin}`;
}

/** A plugin property file: `config/<plugin>/<app>/<property>`. */
export function propertyPath(plugin: string, app: string, property: string): string {
  return `${propertyDir(plugin)}/${app}/${property}`;
}

/** Build records (`data/builds/<app>/`), new in 0.38.0; undefined before. */
export function buildsDir(version: Version, app: string): string | undefined {
  return atLeast(version, '0.38.0') ? `${BUILDS_ROOT}/${app}` : undefined;
}

/** A datastore plugin's service directory (`services/<plugin>/<service>`). */
export function serviceRoot(plugin: string, service: string): string {
  return `${SERVICES_ROOT}/${plugin}/${service}`;
}

/** True when `config:set` writes godotenv v1.5.1 format (unquoted integers, final newline): ≥0.37.8. */
export function envFileHasFinalNewline(version: Version): boolean {
  return atLeast(version, '0.37.8');
}

/** True when `apps:list --format json` exists (0.38.21+). */
export function hasAppsListJson(version: Version): boolean {
  return atLeast(version, '0.38.21');
}

/** True when `plugin:list --format json` exists (0.38.22+). */
export function hasPluginListJson(version: Version): boolean {
  return atLeast(version, '0.38.22');
}

/** True when `storage:list --format json` exists (Go storage plugin, 0.38.0+). */
export function hasStorageListJson(version: Version): boolean {
  return atLeast(version, '0.38.0');
}
