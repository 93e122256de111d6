/**
 * `dokku --lab-install VERSION`: what the Debian package's postinst leaves on a
 * host (core plugins, sshcommand, VHOST, STABLE_VERSION), plus the config
 * plugin's install trigger (the 0.38 ENV migration). Idempotent.
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  chownDokku,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  ENGINE_ROOT,
  fail,
  getProperty,
  labConfig,
  listApps,
  mkdirDokku,
  PLUGIN_PATH,
  readEnv,
  setProperty,
  versionAtLeast,
  warn,
  writeEnv,
  writeFileDokku,
} from './lib.js';

/**
 * Core plugins (plugins/ in the source tree) and the release that added each
 * one after 0.30: nixpacks 0.32.0, openresty-vhosts and ports 0.31.0,
 * scheduler-k3s 0.33.0, builder-railpack 0.37.0, builds 0.38.0 (the commit
 * adding their plugin.toml, first tag containing it). None was removed.
 */
const CORE_PLUGIN_SINCE: Record<string, string> = {
  'builder-nixpacks': '0.32.0',
  'builder-railpack': '0.37.0',
  builds: '0.38.0',
  'openresty-vhosts': '0.31.0',
  ports: '0.31.0',
  'scheduler-k3s': '0.33.0',
};

const ALL_CORE_PLUGINS = [
  '00_dokku-standard',
  '20_events',
  'app-json',
  'apps',
  'builder',
  'builder-dockerfile',
  'builder-herokuish',
  'builder-lambda',
  'builder-nixpacks',
  'builder-null',
  'builder-pack',
  'builder-railpack',
  'builds',
  'buildpacks',
  'caddy-vhosts',
  'certs',
  'checks',
  'common',
  'config',
  'cron',
  'docker-options',
  'domains',
  'enter',
  'git',
  'haproxy-vhosts',
  'logs',
  'network',
  'nginx-vhosts',
  'openresty-vhosts',
  'plugin',
  'ports',
  'proxy',
  'ps',
  'registry',
  'repo',
  'resource',
  'run',
  'scheduler',
  'scheduler-docker-local',
  'scheduler-k3s',
  'scheduler-null',
  'shell',
  'ssh-keys',
  'storage',
  'trace',
  'traefik-vhosts',
];

/** The core plugins of the installed release. */
export function corePlugins(): string[] {
  return ALL_CORE_PLUGINS.filter((p) => {
    const since = CORE_PLUGIN_SINCE[p];
    return since === undefined || versionAtLeast(since);
  });
}

/** plugin.toml descriptions that are not "dokku core <name> plugin". */
const DESCRIPTIONS: Record<string, string> = {
  '00_dokku-standard': 'dokku core standard plugin',
  '20_events': 'dokku core events logging plugin',
  certs: 'dokku core certificate management plugin',
};

function pluginToml(name: string, version: string): string {
  // the builds plugin ships its own version (plugins/builds/plugin.toml at v0.38.27)
  const v = name === 'builds' ? '0.34.0' : version;
  const what = DESCRIPTIONS[name] ?? `dokku core ${name} plugin`;
  return `[plugin]\ndescription = "${what}"\nversion = "${v}"\n[plugin.config]\n`;
}

const CORE_COMMANDS = `#!/usr/bin/env bash
# ferry lab: the emulator implements this core plugin's commands itself
exit "\${DOKKU_NOT_IMPLEMENTED_EXIT:-10}"
`;

/**
 * The storage plugin's privileged helpers (plugins/storage/bin at v0.38.27,
 * run through sudo by storage:create/destroy and the old ensure-directory):
 * a name under data/storage, validated, then chown -R / chmod / rm -rf.
 */
const STORAGE_BIN: Record<string, string> = {
  'chown-storage-dir': `#!/usr/bin/env bash
set -eo pipefail
dir="$1" id="$2"
[[ -n "$dir" ]] || { echo " !     Please specify a directory to create" >&2; exit 1; }
[[ "$dir" =~ ^[A-Za-z0-9_-]+$ ]] || { echo " !     Directory can only contain the following set of characters: [A-Za-z0-9_-]" >&2; exit 1; }
[[ "$id" =~ ^[0-9]+$ ]] || { echo " !     Unsupported chown permissions. Value must be a non-negative integer." >&2; exit 1; }
if ((id > 65535 && (id < 165536 || id > 231071))); then
  echo " !     Unsupported chown permissions. Supported values: 0-65535 (and user namespace offset variants, 165536-231071)" >&2
  exit 1
fi
chown -R "$id:$id" "\${DOKKU_LIB_ROOT:-/var/lib/dokku}/data/storage/$dir"
`,
  'chmod-storage-dir': `#!/usr/bin/env bash
set -eo pipefail
dir="$1" mode="$2"
[[ -n "$dir" ]] || { echo " !     Please specify a directory to chmod" >&2; exit 1; }
[[ "$dir" =~ ^[A-Za-z0-9_-]+$ ]] || { echo " !     Directory can only contain the following set of characters: [A-Za-z0-9_-]" >&2; exit 1; }
[[ "$mode" =~ ^[0-7]{3,4}$ ]] || { echo " !     Unsupported directory mode. Value must be a 3 or 4 digit octal mode, such as 0755" >&2; exit 1; }
chmod "$mode" "\${DOKKU_LIB_ROOT:-/var/lib/dokku}/data/storage/$dir"
`,
  'destroy-storage-dir': `#!/usr/bin/env bash
set -eo pipefail
dir="$1"
[[ -n "$dir" ]] || { echo " !     Please specify a directory to destroy" >&2; exit 1; }
[[ "$dir" =~ ^[A-Za-z0-9_-]+$ ]] || { echo " !     Directory can only contain the following set of characters: [A-Za-z0-9_-]" >&2; exit 1; }
path="\${DOKKU_LIB_ROOT:-/var/lib/dokku}/data/storage/$dir"
[[ -e "$path" ]] || exit 0
[[ -d "$path" ]] || { echo " !     $path exists but is not a directory" >&2; exit 1; }
rm -rf "$path"
`,
};

function ensureSymlink(target: string, path: string): void {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink() && readlinkSync(path) === target) return;
    rmSync(path, { recursive: true, force: true });
  } catch {
    // does not exist yet
  }
  symlinkSync(target, path);
}

const sortedKeys = (m: Map<string, string>): string[] =>
  [...m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Merge an old ENV file into the new one and record the migration. */
function mergeInto(name: string, oldFile: string, newFile: string): void {
  const env = readEnv(newFile);
  for (const [k, v] of readEnv(oldFile)) env.set(k, v);
  writeEnv(newFile, env);
  setProperty('config', name, 'env-migrated', 'true');
}

/**
 * One ENV file's migration, as each release's config plugin does it:
 * - 0.38.0-0.38.25 (triggers.go TriggerInstall): merge once and record it, the
 *   old file stays; an app's old file is deleted by the next install once the
 *   migration is on record (the global one never is).
 * - 0.38.26 (migrate.go drainLegacyEnvFile): merge, record, delete; a file
 *   found after the migration is imported again with a warning naming its keys.
 * - 0.38.27: a file found after the migration is not imported: deleted when it
 *   agrees with the config, else moved to ENV.migrated with two warnings.
 */
function migrateOne(name: string, oldFile: string, newFile: string): void {
  const migrated = getProperty('config', name, 'env-migrated') === 'true';
  if (!versionAtLeast('0.38.26')) {
    if (migrated) {
      if (name !== '--global') rmSync(oldFile, { force: true });
      return;
    }
    if (name !== '--global' && !existsSync(oldFile)) {
      setProperty('config', name, 'env-migrated', 'true');
      return;
    }
    mergeInto(name, oldFile, newFile);
    return;
  }
  if (!existsSync(oldFile)) {
    if (!migrated) setProperty('config', name, 'env-migrated', 'true');
    return;
  }
  if (migrated && versionAtLeast('0.38.27')) {
    const env = readEnv(newFile);
    const stale = readEnv(oldFile);
    const diverged = sortedKeys(stale).filter((k) => env.get(k) !== stale.get(k));
    if (diverged.length === 0) {
      rmSync(oldFile, { force: true });
      return;
    }
    const preserved = `${oldFile}.migrated`;
    warn(
      `Not importing already-migrated ENV file ${oldFile}: the current config takes precedence for ${diverged.join(' ')}`,
    );
    warn(
      `Preserved at ${preserved}: re-apply anything still needed with dokku config:set, then delete it - dokku does not read it and it may hold values that were unset on purpose`,
    );
    renameSync(oldFile, preserved);
    return;
  }
  if (migrated) {
    const old = readEnv(oldFile);
    if (old.size > 0) {
      warn(`Importing ${oldFile} written outside of dokku config: ${sortedKeys(old).join(' ')}`);
    }
  }
  mergeInto(name, oldFile, newFile);
  rmSync(oldFile, { force: true });
}

/**
 * The config plugin's install trigger (and, since 0.38.26, its
 * config-migrate-env trigger): move ≤0.37 ENV files to config/<app>/ENV.
 * Nothing before 0.38.0.
 */
export function migrateEnvFiles(): void {
  if (!versionAtLeast('0.38.0')) return;
  mkdirDokku(join(DOKKU_LIB_ROOT, 'config', '--global'));
  migrateOne(
    '--global',
    join(DOKKU_ROOT, 'ENV'),
    join(DOKKU_LIB_ROOT, 'config', '--global', 'ENV'),
  );
  for (const app of listApps()) {
    mkdirDokku(join(DOKKU_LIB_ROOT, 'config', app));
    migrateOne(app, join(DOKKU_ROOT, app, 'ENV'), join(DOKKU_LIB_ROOT, 'config', app, 'ENV'));
  }
}

/** Run the emulated package install for `version`. */
export function labInstall(version: string): number {
  if (process.getuid?.() !== 0) fail('This command must be run as root');
  if (!/^[0-9]+\.[0-9]+\.[0-9]+$/.test(version)) fail('Usage: dokku --lab-install X.Y.Z');
  const cfg = labConfig();
  mkdirDokku(DOKKU_ROOT);
  mkdirDokku(DOKKU_LIB_ROOT);
  writeFileDokku(join(DOKKU_LIB_ROOT, 'STABLE_VERSION'), `${version}\n`, 0o644);
  for (const d of [
    'config',
    'data',
    'services',
    'core-plugins/available',
    'core-plugins/enabled',
  ]) {
    mkdirDokku(join(DOKKU_LIB_ROOT, d));
  }
  mkdirDokku(join(PLUGIN_PATH, 'available'));
  mkdirDokku(join(PLUGIN_PATH, 'enabled'));
  for (const p of corePlugins()) {
    const core = join(DOKKU_LIB_ROOT, 'core-plugins', 'available', p);
    mkdirDokku(core);
    writeFileDokku(join(core, 'plugin.toml'), pluginToml(p, version), 0o644);
    // every core plugin ships a `commands` executable; the emulator answers for
    // them, so this one only says "not mine" (DOKKU_NOT_IMPLEMENTED_EXIT)
    writeFileDokku(join(core, 'commands'), CORE_COMMANDS, 0o755);
    if (p === 'storage' && versionAtLeast('0.38.0')) {
      for (const [name, body] of Object.entries(STORAGE_BIN)) {
        writeFileDokku(join(core, 'bin', name), body, 0o755);
      }
    }
    ensureSymlink(core, join(DOKKU_LIB_ROOT, 'core-plugins', 'enabled', p));
    ensureSymlink(core, join(PLUGIN_PATH, 'available', p));
    ensureSymlink(join(PLUGIN_PATH, 'available', p), join(PLUGIN_PATH, 'enabled', p));
  }
  writeFileDokku(join(DOKKU_ROOT, '.sshcommand'), '/usr/bin/dokku\n', 0o644);
  if (!existsSync(join(DOKKU_ROOT, 'VHOST'))) {
    writeFileDokku(join(DOKKU_ROOT, 'VHOST'), `${cfg.host}.lab\n`, 0o644);
  }
  const ssh = join(DOKKU_ROOT, '.ssh');
  mkdirDokku(ssh, 0o700);
  // the engine is reached by the dokku user (through dockerd in real life), so the
  // dokku user must be able to traverse /var/lib/docker and own the engine's folders
  chmodSync(ENGINE_ROOT, 0o711);
  for (const d of ['image', 'containers', 'networks', 'contexts', 'tmp']) {
    const p = join(ENGINE_ROOT, d);
    mkdirSync(p, { recursive: true });
    chmodSync(p, 0o755);
    chownDokku(p);
  }
  migrateEnvFiles();
  return 0;
}
