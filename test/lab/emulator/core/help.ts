/**
 * Help output of the core plugins the emulator implements, per release:
 * `dokku <plugin>:help`, `dokku <plugin> --help` (Go plugins) or `dokku <plugin>`
 * (bash plugins' default subcommand). Go plugins print common.CommandUsage
 * (columnize, "," delimiter, 4-space prefix); bash plugins print
 * `fn-help-content | sort | column -c2 -t -s,` (help-functions).
 * Texts: plugins/<p>/src/commands/commands.go, plugins/<p>/subcommands.go or
 * plugins/<p>/help-functions at v0.30.11, v0.34.9, v0.37.9 and v0.38.27.
 */
import { compareVersions, dokkuVersion } from '../lib.js';
import { byteCompare } from '../report.js';

/** One plugin's help at one release. */
interface HelpText {
  kind: 'go' | 'bash';
  description: string;
  /** `    command args, Description` lines. */
  lines: string[];
}

/** Per plugin: releases in ascending order, each with the help text from that release on. */
const HELP: Record<string, Array<[string, HelpText]>> = {
  apps: [
    [
      '0.30.11',
      {
        kind: 'go',
        description: 'Manage apps',
        lines: [
          '    apps:clone <old-app> <new-app>, Clones an app',
          '    apps:create <app>, Create a new app',
          '    apps:destroy <app>, Permanently destroy an app',
          '    apps:exists <app>, Checks if an app exists',
          '    apps:list, List your apps',
          '    apps:lock <app>, Locks an app for deployment',
          '    apps:locked <app>, Checks if an app is locked for deployment',
          '    apps:rename <old-app> <new-app>, Rename an app',
          '    apps:report [<app>] [<flag>], Display report about an app',
          '    apps:unlock <app>, Unlocks an app for deployment',
          '',
        ],
      },
    ],
    [
      '0.34.9',
      {
        kind: 'go',
        description: 'Manage apps',
        lines: [
          '    apps:clone <old-app> <new-app>, Clones an app',
          '    apps:create <app>, Create a new app',
          '    apps:destroy <app>, Permanently destroy an app',
          '    apps:exists <app>, Checks if an app exists',
          '    apps:list, List your apps',
          '    apps:lock <app>, Locks an app for deployment',
          '    apps:locked <app>, Checks if an app is locked for deployment',
          '    apps:rename <old-app> <new-app>, Rename an app',
          '    apps:report [<app>] [<flag>], Display report about an app',
          '    apps:unlock <app>, Unlocks an app for deployment',
        ],
      },
    ],
    [
      '0.38.27',
      {
        kind: 'go',
        description: 'Manage apps',
        lines: [
          '    apps:clone <old-app> <new-app>, Clones an app',
          '    apps:create <app>, Create a new app',
          '    apps:destroy <app>, Permanently destroy an app',
          '    apps:exists <app>, Checks if an app exists',
          '    apps:list [--format stdout|json], List your apps',
          '    apps:lock <app>, Locks an app for deployment',
          '    apps:locked <app>, Checks if an app is locked for deployment',
          '    apps:rename <old-app> <new-app>, Rename an app',
          '    apps:report [<app>] [<flag>], Display report about an app',
          '    apps:set <app>|--global <key> <value>, Set or clear an apps property',
          '    apps:unlock <app>, Unlocks an app for deployment',
        ],
      },
    ],
  ],
  config: [
    [
      '0.30.11',
      {
        kind: 'go',
        description: 'Manage global and app-specific config vars',
        lines: [
          '    config (<app>|--global), Pretty-print an app or global environment',
          '    config:bundle [--merged] (<app>|--global), Bundle environment into tarfile',
          '    config:clear [--no-restart] (<app>|--global), Clears environment variables',
          '    config:export [--format=FORMAT] [--merged] (<app>|--global), Export a global or app environment',
          '    config:get [--quoted] (<app>|--global) KEY, Display a global or app-specific config value',
          '    config:keys [--merged] (<app>|--global), Show keys set in environment',
          '    config:show [--merged] (<app>|--global), Show keys set in environment',
          '    config:set [--encoded] [--no-restart] (<app>|--global) KEY1=VALUE1 [KEY2=VALUE2 ...], Set one or more config vars',
          '    config:unset [--no-restart] (<app>|--global) KEY1 [KEY2 ...], Unset one or more config vars',
          '',
        ],
      },
    ],
    [
      '0.34.9',
      {
        kind: 'go',
        description: 'Manage global and app-specific config vars',
        lines: [
          '    config (<app>|--global), Pretty-print an app or global environment',
          '    config:bundle [--merged] (<app>|--global), Bundle environment into tarfile',
          '    config:clear [--no-restart] (<app>|--global), Clears environment variables',
          '    config:export [--format=FORMAT] [--merged] (<app>|--global), Export a global or app environment',
          '    config:get [--quoted] (<app>|--global) KEY, Display a global or app-specific config value',
          '    config:keys [--merged] (<app>|--global), Show keys set in environment',
          '    config:show [--merged] (<app>|--global), Show keys set in environment',
          '    config:set [--encoded] [--no-restart] (<app>|--global) KEY1=VALUE1 [KEY2=VALUE2 ...], Set one or more config vars',
          '    config:unset [--no-restart] (<app>|--global) KEY1 [KEY2 ...], Unset one or more config vars',
        ],
      },
    ],
    [
      '0.37.9',
      {
        kind: 'go',
        description: 'Manage global and app-specific config vars',
        lines: [
          '    config (<app>|--global), Pretty-print an app or global environment',
          '    config:bundle [--merged] (<app>|--global), Bundle environment into tarfile',
          '    config:clear [--no-restart] (<app>|--global), Clears environment variables',
          '    config:export [--format=FORMAT] [--merged] (<app>|--global), Export a global or app environment',
          '    config:get [--quoted] (<app>|--global) KEY, Display a global or app-specific config value',
          '    config:import [--no-restart] [--replace] (<app>|--global) [FILE|-], Import environment from file',
          '    config:keys [--merged] (<app>|--global), Show keys set in environment',
          '    config:show [--merged] (<app>|--global), Show keys set in environment',
          '    config:set [--encoded] [--no-restart] (<app>|--global) KEY1=VALUE1 [KEY2=VALUE2 ...], Set one or more config vars',
          '    config:unset [--no-restart] (<app>|--global) KEY1 [KEY2 ...], Unset one or more config vars',
        ],
      },
    ],
  ],
  plugin: [
    [
      '0.30.11',
      {
        kind: 'bash',
        description: 'Manage installed plugins',
        lines: [
          '    plugin:disable <name>, Disable an installed plugin (third-party only)',
          '    plugin:enable <name>, Enable a previously disabled plugin',
          '    plugin:install [--core|git-url [--committish tag|branch|commit|--name custom-plugin-name]], Optionally download git-url (with custom tag/committish) & run install trigger for active plugins (or only core ones)',
          '    plugin:install-dependencies [--core], Run install-dependencies trigger for active plugins (or only core ones)',
          '    plugin:list, Print active plugins',
          '    plugin:trigger <args...>, Trigger an arbitrary plugin hook',
          '    plugin:uninstall <name>, Uninstall a plugin (third-party only)',
          '    plugin:update [name [committish]], Optionally update named plugin from git (with custom tag/committish) & run update trigger for active plugins',
        ],
      },
    ],
    [
      '0.34.9',
      {
        kind: 'bash',
        description: 'Manage installed plugins',
        lines: [
          '    plugin:disable <name>, Disable an installed plugin (third-party only)',
          '    plugin:enable <name>, Enable a previously disabled plugin',
          '    plugin:install [--core|--git-url] [--committish branch|commit|commit] [--name custom-plugin-name], Optionally download git-url (and pin to the specified branch/commit/tag) & run install trigger for active plugins (or only core ones)',
          '    plugin:install-dependencies [--core], Run install-dependencies trigger for active plugins (or only core ones)',
          '    plugin:list, Print active plugins',
          '    plugin:trigger <args...>, Trigger an arbitrary plugin hook',
          '    plugin:uninstall <name>, Uninstall a plugin (third-party only)',
          '    plugin:update [name [branch|commit|tag]], Optionally update named plugin from git (and pin to the specified branch/commit/tag) & run update trigger for active plugins',
        ],
      },
    ],
    [
      '0.37.9',
      {
        kind: 'bash',
        description: 'Manage installed plugins',
        lines: [
          '    plugin:disable <name>, Disable an installed plugin (third-party only)',
          '    plugin:enable <name>, Enable a previously disabled plugin',
          '    plugin:install [--core|--git-url] [--committish branch|commit|commit] [--name custom-plugin-name] [--skip-install-trigger], Optionally download git-url (and pin to the specified branch/commit/tag) & run install trigger for active plugins (or only core ones)',
          '    plugin:install-dependencies [--core], Run install-dependencies trigger for active plugins (or only core ones)',
          '    plugin:list, Print active plugins',
          '    plugin:trigger <args...>, Trigger an arbitrary plugin hook',
          '    plugin:uninstall <name>, Uninstall a plugin (third-party only)',
          '    plugin:update [name [branch|commit|tag]], Optionally update named plugin from git (and pin to the specified branch/commit/tag) & run update trigger for active plugins',
        ],
      },
    ],
    [
      '0.38.27',
      {
        kind: 'bash',
        description: 'Manage installed plugins',
        lines: [
          '    plugin:disable <name>, Disable an installed plugin (third-party only)',
          '    plugin:enable <name>, Enable a previously disabled plugin',
          '    plugin:install [--core|--git-url] [--committish branch|commit|commit] [--name custom-plugin-name] [--skip-install-trigger], Optionally download git-url (and pin to the specified branch/commit/tag) & run install trigger for active plugins (or only core ones)',
          '    plugin:install-dependencies [--core], Run install-dependencies trigger for active plugins (or only core ones)',
          '    plugin:list [--format stdout|json], Print active plugins',
          '    plugin:trigger <args...>, Trigger an arbitrary plugin hook',
          '    plugin:uninstall <name>, Uninstall a plugin (third-party only)',
          '    plugin:update [name [branch|commit|tag]], Optionally update named plugin from git (and pin to the specified branch/commit/tag) & run update trigger for active plugins',
        ],
      },
    ],
  ],
  network: [
    [
      '0.30.11',
      {
        kind: 'go',
        description: 'Manage network settings for an app',
        lines: [
          '    network:create <network>, Creates an attachable docker network',
          '    network:destroy <network>, Destroys a docker network',
          '    network:exists <network>, Checks if a docker network exists',
          '    network:info <network>, Outputs information about a docker network',
          '    network:list, Lists all docker networks',
          '    network:report [<app>] [<flag>], Displays a network report for one or more apps',
          '    network:rebuild <app>, Rebuilds network settings for an app',
          '    network:rebuildall, Rebuild network settings for all apps',
          '    network:set <app> <property> (<value>), Set or clear a network property for an app',
          '',
        ],
      },
    ],
    [
      '0.34.9',
      {
        kind: 'go',
        description: 'Manage network settings for an app',
        lines: [
          '    network:create <network>, Creates an attachable docker network',
          '    network:destroy <network>, Destroys a docker network',
          '    network:exists <network>, Checks if a docker network exists',
          '    network:info <network>, Outputs information about a docker network',
          '    network:list, Lists all docker networks',
          '    network:rebuild <app>, Rebuilds network settings for an app',
          '    network:rebuildall, Rebuild network settings for all apps',
          '    network:report [<app>] [<flag>], Displays a network report for one or more apps',
          '    network:set <app> <property> (<value>...), Set or clear a network property for an app',
        ],
      },
    ],
    [
      '0.37.9',
      {
        kind: 'go',
        description: 'Manage network settings for an app',
        lines: [
          '    network:create <network>, Creates an attachable docker network',
          '    network:destroy <network>, Destroys a docker network',
          '    network:exists <network>, Checks if a docker network exists',
          '    network:info <network> [--format text|json], Outputs information about a docker network',
          '    network:list [--format text|json], Lists all docker networks',
          '    network:rebuild <app>, Rebuilds network settings for an app',
          '    network:rebuildall, Rebuild network settings for all apps',
          '    network:report [<app>] [<flag>], Displays a network report for one or more apps',
          '    network:set <app> <property> (<value>...), Set or clear a network property for an app',
        ],
      },
    ],
    [
      '0.38.27',
      {
        kind: 'go',
        description: 'Manage network settings for an app',
        lines: [
          '    network:create <network>, Creates an attachable docker network',
          '    network:destroy <network>, Destroys a docker network',
          '    network:exists <network>, Checks if a docker network exists',
          '    network:info <network> [--format text|json], Outputs information about a docker network',
          '    network:list [--format text|json] [--dokku-managed], Lists all docker networks',
          '    network:rebuild <app>, Rebuilds network settings for an app',
          '    network:rebuildall, Rebuild network settings for all apps',
          '    network:report [<app>] [<flag>], Displays a network report for one or more apps',
          '    network:set <app> <property> (<value>...), Set or clear a network property for an app',
        ],
      },
    ],
  ],
  builds: [
    [
      '0.38.27',
      {
        kind: 'go',
        description: 'Manage running and historical builds',
        lines: [
          '    builds:cancel <app>, Cancel a running build for an app',
          '    builds:info <app> <build-id> [--format json|stdout], Show details for a single build',
          '    builds:list [<app>] [--format json] [--kind build|deploy] [--status <status>], List builds',
          '    builds:output <app> [<build-id>|current], Show build output',
          '    builds:prune <app> [--all-apps], Prune build records to retention',
          '    builds:report [<app>] [<flag>], Display a build report for one or more apps',
          '    builds:set [--global|<app>] <key> [<value>], Set or clear a builds property',
        ],
      },
    ],
  ],
  ps: [
    [
      '0.30.11',
      {
        kind: 'go',
        description: 'Manage app processes',
        lines: [
          '    ps:inspect <app>, Displays a sanitized version of docker inspect for an app',
          '    ps:rebuild [--parallel count] [--all|<app>], Rebuilds an app from source',
          '    ps:report [<app>] [<flag>], Displays a process report for one or more apps',
          '    ps:restart [--parallel count] [--all|<app>] [<process-name>], Restart an app',
          '    ps:restore [<app>], Start previously running apps e.g. after reboot',
          '    ps:scale [--skip-deploy] <app> <proc>=<count> [<proc>=<count>...], Get/Set how many instances of a given process to run',
          '    ps:set <app> <key> <value>, Set or clear a ps property for an app',
          '    ps:start [--parallel count] [--all|<app>], Start an app',
          '    ps:stop [--parallel count] [--all|<app>], Stop an app',
          '',
        ],
      },
    ],
    [
      '0.38.27',
      {
        kind: 'go',
        description: 'Manage app processes',
        lines: [
          '    ps:inspect <app>, Displays a sanitized version of docker inspect for an app',
          '    ps:rebuild [--parallel count] [--all|<app>], Rebuilds an app from source',
          '    ps:report [<app>] [<flag>], Displays a process report for one or more apps',
          '    ps:restart [--parallel count] [--all|<app>] [<process-name>], Restart an app',
          '    ps:restore [<app>], Start previously running apps e.g. after reboot',
          '    ps:scale [--skip-deploy] [--format stdout|json] <app> [<proc>=<count>...], Get/Set how many instances of a given process to run',
          '    ps:set <app> <key> <value>, Set or clear a ps property for an app',
          '    ps:start [--parallel count] [--all|<app>], Start an app',
          '    ps:stop [--parallel count] [--all|<app>], Stop an app',
          '',
        ],
      },
    ],
  ],
  git: [
    [
      '0.30.11',
      {
        kind: 'bash',
        description: 'Manage app deploys via git',
        lines: [
          '    git:allow-host <host>, Adds a host to known_hosts',
          '    git:auth <host> [<username> <password>], Configures netrc authentication for a given git server',
          "    git:from-archive <app> <archive-url> [<git-username> <git-email>], Updates an app's git repository with a given archive file",
          "    git:from-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a given docker image",
          "    git:load-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a docker image loaded from stdin",
          '    git:sync [--build] <app> <repository> [<git-ref>], Clone or fetch an app from remote git repo',
          '    git:initialize <app>, Initialize a git repository for an app',
          '    git:public-key, Outputs the dokku public deploy key',
          '    git:report [<app>] [<flag>], Displays a git report for one or more apps',
          '    git:set <app> <property> (<value>), Set or clear a git property for an app',
          '    git:unlock <app> [--force], Removes previous git clone folder for new deployment ',
          '    git:status <app>, show the working tree status for an app',
        ],
      },
    ],
    [
      '0.34.9',
      {
        kind: 'bash',
        description: 'Manage app deploys via git',
        lines: [
          '    git:allow-host <host>, Adds a host to known_hosts',
          '    git:auth <host> [<username> <password>], Configures netrc authentication for a given git server',
          "    git:from-archive <app> <archive-url> [<git-username> <git-email>], Updates an app's git repository with a given archive file",
          "    git:from-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a given docker image",
          "    git:load-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a docker image loaded from stdin",
          '    git:sync [--build] <app> <repository> [<git-ref>], Clone or fetch an app from remote git repo',
          '    git:initialize <app>, Initialize a git repository for an app',
          '    git:generate-deploy-key, Generates a deploy ssh key',
          '    git:public-key, Outputs the dokku public deploy key',
          '    git:report [<app>] [<flag>], Displays a git report for one or more apps',
          '    git:set <app> <property> (<value>), Set or clear a git property for an app',
          '    git:status <app>, show the working tree status for an app',
        ],
      },
    ],
    [
      '0.37.9',
      {
        kind: 'bash',
        description: 'Manage app deploys via git',
        lines: [
          '    git:allow-host <host>, Adds a host to known_hosts',
          '    git:auth <host> [<username> <password>], Configures netrc authentication for a given git server',
          "    git:from-archive <app> <archive-url> [<git-username> <git-email>], Updates an app's git repository with a given archive file",
          "    git:from-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a given docker image",
          "    git:load-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a docker image loaded from stdin",
          '    git:sync [--build|--build-if-changes] [--skip-deploy-branch] <app> <repository> [<git-ref>], Clone or fetch an app from remote git repo',
          '    git:initialize <app>, Initialize a git repository for an app',
          '    git:generate-deploy-key, Generates a deploy ssh key',
          '    git:public-key, Outputs the dokku public deploy key',
          '    git:report [<app>] [<flag>], Displays a git report for one or more apps',
          '    git:set <app> <property> (<value>), Set or clear a git property for an app',
          '    git:status <app>, show the working tree status for an app',
        ],
      },
    ],
    [
      '0.38.27',
      {
        kind: 'bash',
        description: 'Manage app deploys via git',
        lines: [
          '    git:allow-host <host>, Adds a host to known_hosts',
          '    git:auth <host> [<username> <password>], Configures netrc authentication for a given git server',
          '    git:auth-status <host> [<username> <password>], Reports whether the netrc entry matches the requested state (exit 0 if matches)',
          "    git:from-archive <app> <archive-url> [<git-username> <git-email>], Updates an app's git repository with a given archive file",
          "    git:from-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a given docker image",
          "    git:load-image <app> <docker-image> [<git-username> <git-email>], Updates an app's git repository with a docker image loaded from stdin",
          '    git:sync [--build|--build-if-changes] [--skip-deploy-branch] <app> <repository> [<git-ref>], Clone or fetch an app from remote git repo',
          '    git:initialize <app>, Initialize a git repository for an app',
          '    git:generate-deploy-key, Generates a deploy ssh key',
          '    git:public-key, Outputs the dokku public deploy key',
          '    git:report [<app>] [<flag>], Displays a git report for one or more apps',
          '    git:set <app> <property> (<value>), Set or clear a git property for an app',
          '    git:status <app>, show the working tree status for an app',
        ],
      },
    ],
  ],
  storage: [
    [
      '0.30.11',
      {
        kind: 'bash',
        description: 'Manage mounted volumes',
        lines: [
          '    storage:ensure-directory [--chown option] <directory>, Creates a persistent storage directory in the recommended storage path',
          "    storage:list <app> [--format text|json], List bind mounts for app's container(s) (host:container)",
          '    storage:mount <app> <host-dir:container-dir>, Create a new bind mount',
          '    storage:report [<app>] [<flag>], Displays a checks report for one or more apps',
          '    storage:unmount <app> <host-dir:container-dir>, Remove an existing bind mount',
        ],
      },
    ],
    [
      '0.37.9',
      {
        kind: 'go',
        description: 'Manage mounted volumes',
        lines: [
          '    storage:ensure-directory [--chown option] <directory>, Creates a persistent storage directory in the recommended storage path',
          "    storage:list <app> [--format text|json], List bind mounts for app's container(s) (host:container)",
          '    storage:mount <app> <host-dir:container-dir>, Create a new bind mount',
          '    storage:report [<app>] [<flag>], Displays a storage report for one or more apps',
          '    storage:unmount <app> <host-dir:container-dir>, Remove an existing bind mount',
        ],
      },
    ],
    [
      '0.38.27',
      {
        kind: 'go',
        description: 'Manage mounted volumes',
        lines: [
          '    storage:annotations:report [<name>] [<flag>], Displays annotations for one or more storage entries',
          '    storage:annotations:set <name> <key> [<value>], Set or clear an annotation on a storage entry',
          '    storage:create <name> [<path>] [flags], Register a named storage entry',
          '    storage:destroy <name> [--force] [--destroy-host-dir], Remove a named storage entry (must be unmounted from every app first)',
          '    storage:ensure-directory [--chown option] <directory>, [DEPRECATED] use storage:create instead',
          '    storage:exec <name> [-- <cmd>...], Run a command (or shell) in a temporary container that mounts the entry',
          '    storage:info <name> [--format text|json], Show details for one storage entry',
          '    storage:labels:report [<name>] [<flag>], Displays labels for one or more storage entries',
          '    storage:labels:set <name> <key> [<value>], Set or clear a label on a storage entry',
          "    storage:list <app> [--format text|json], List bind mounts for app's container(s) (host:container)",
          '    storage:list-entries [--scheduler s] [--format text|json], List registered storage entries',
          '    storage:migrate [<app>|--all], Re-run the legacy -v to attachment migration for an app',
          '    storage:mount <app> <host-dir:container-dir>, Create a new bind mount',
          '    storage:report [<app>] [<flag>], Displays a storage report for one or more apps',
          '    storage:set <name> <property> [<value>], Update a storage entry in place',
          '    storage:unmount <app> <host-dir:container-dir>, Remove an existing bind mount',
          "    storage:wait <name>, Wait for a storage entry's PVC to be bound (k3s)",
        ],
      },
    ],
  ],
};

function textFor(plugin: string): HelpText | undefined {
  const v = dokkuVersion() || '999.0.0';
  let hit: HelpText | undefined;
  for (const [since, text] of HELP[plugin] ?? []) {
    if (compareVersions(v, since) >= 0 || hit === undefined) hit = text;
  }
  return hit;
}

/** ryanuber/columnize with Delim ",", Prefix 4 spaces, Glue 2 spaces; cells trimmed, last column unpadded. */
export function columnizeUsage(lines: string[]): string {
  const rows = lines.map((l) => l.split(',').map((c) => c.trim()));
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map(
      (r) => `    ${r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join('  ')}`,
    )
    .join('\n');
}

/** `sort | column -t -s,`: byte-sorted, cells kept as they are, 2-space gaps, last column unpadded. */
export function columnTable(lines: string[]): string {
  const rows = [...lines].sort(byteCompare).map((l) => l.split(','));
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      if (i < r.length - 1) widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join('  '))
    .join('\n');
}

/** The full `<plugin>:help` text (with its final newline), or undefined for a plugin without one here. */
export function pluginHelp(plugin: string): string | undefined {
  const h = textFor(plugin);
  if (h === undefined) return undefined;
  const head = `Usage: dokku ${plugin}[:COMMAND]\n\n${h.description}\n\nAdditional commands:\n`;
  if (h.kind === 'go') {
    // common.CommandUsage drops the first (empty) line of helpContent
    return `${head}${columnizeUsage(h.lines)}\n`;
  }
  return `${head}${columnTable(h.lines)}\n`;
}

/** Print `<plugin>:help`; returns false when the emulator has no help text for the plugin. */
export function printPluginHelp(plugin: string): boolean {
  const text = pluginHelp(plugin);
  if (text === undefined) return false;
  process.stdout.write(text);
  return true;
}
