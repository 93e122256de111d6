/**
 * Names Dokku accepts, checked before any reaches a host
 * (shared/reference/dokku-0.38.md §0.2 and §11).
 */

/** Dokku ≥ 0.38.2 app names for new apps (plugins/common/common.go `IsValidAppName`, v0.38.27). */
export const APP_NAME = /^[a-z0-9][a-z0-9.-]*$/;
/**
 * The rule before 0.38.2, which Dokku still accepts for apps that exist
 * (`IsValidAppNameOld`; `VerifyAppName` takes a name that passes either):
 * a server can hold `my_app`, and it must move with it.
 */
export const EXISTING_APP_NAME = /^[a-z0-9][a-z0-9._-]*$/;
/** dokku-postgres (and the other official datastores) service names. */
export const SERVICE_NAME = /^[A-Za-z0-9_-]+$/;
/** Plugin names as they appear in `plugin:list` (plugin directory names). */
export const PLUGIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** A name an existing app may have (either rule); every name is still quoted where it is used. */
export function isAppName(name: string): boolean {
  return (APP_NAME.test(name) || EXISTING_APP_NAME.test(name)) && name.length <= 255;
}

export function isServiceName(name: string): boolean {
  return SERVICE_NAME.test(name) && name.length <= 255;
}

export const APP_NAME_RULE =
  'an app name must begin with a lowercase letter or digit and contain only lowercase letters, digits, dots and hyphens';
export const SERVICE_NAME_RULE =
  'a service name may contain only letters, digits, underscores and hyphens';
