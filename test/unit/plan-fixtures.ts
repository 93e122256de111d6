/** Shared by the planner and playbook tests. */

/** Pairs [a, b]: in a migrate, a comes before b (the seed procedure and its caveats). */
export const SEED_ORDER = [
  ['check-quiet', 'inventory'],
  ['check-target', 'transfer'],
  ['inventory', 'cut-over'],
  ['cut-over', 'transfer'],
  ['transfer', 'verify-archive'],
  ['verify-archive', 'extract'],
  ['extract', 'clear-stale'],
  ['clear-stale', 'start-services'],
  ['extract', 'recreate-engine'],
  ['recreate-engine', 'start-services'],
  ['extract', 'plugin-triggers'],
  ['plugin-triggers', 'rebuild-apps'],
  ['start-services', 'rebuild-apps'],
  ['rebuild-apps', 'verify-apps'],
  ['verify-apps', 'rewrite-remotes'],
  ['verify-apps', 'release-source'],
  ['start-services', 'start-proxies'],
  ['start-proxies', 'verify-apps'],
  ['transfer', 'carry-images'],
  ['carry-images', 'plugin-triggers'],
  ['carry-images', 'recreate-engine'],
  ['carry-images', 'rebuild-apps'],
] as const;
