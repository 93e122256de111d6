/**
 * What becomes of the source once the target is verified. By default it
 * stays frozen (its apps in maintenance or stopped, its datastores stopped)
 * and its cron entries are held, so nothing on it runs against its now stale
 * data; a script beside its run folder brings it back if wanted, and the
 * report says how to retire it. With `--leave-source-running` it is brought
 * back as it was before the cut-over instead: it serves again, from data
 * that no longer receives the writes the target does.
 */
import type { Host, Inventory } from '../inventory/index.js';
import { $, type Command } from '../ssh/shell.js';
import { FERRY_ROOT, runDir } from './common.js';
import {
  type FreezeRecord,
  freezeFile,
  MAINTENANCE_PLUGIN,
  maintenanceOffCommand,
  parseFreezeRecord,
  psStartCommand,
  readFreezeCommand,
  serviceStartCommand,
  THAW_ACTIONS,
  thaw,
  thawActions,
} from './cut-over.js';
import { restoreCommand, restoreEnvCommand, restoreInEnv } from './rebuild-apps.js';
import { defineTask, type PlannedAction, type RuntimeOf } from './types.js';

/** Where a held source keeps its cron entries (outside /etc/cron.d, so cron ignores them). */
export function heldCronDir(runId: string): string {
  return `${FERRY_ROOT}/held-cron/${runId}`;
}

/**
 * Moves the dokku-* entries of /etc/cron.d and the dokku user's crontab
 * into `dir` (kept, not deleted); prints what it held.
 */
export function holdCronCommand(dir: string): Command {
  return $`d=${dir}; install -d -m 0700 "$d"
find /etc/cron.d -maxdepth 1 -type f -name 'dokku-*' -printf '%f\\n' | while IFS= read -r f; do mv -f -- "/etc/cron.d/$f" "$d/$f" && echo "cron.d/$f"; done
if command -v crontab >/dev/null && crontab -u dokku -l >"$d/dokku.crontab" 2>/dev/null && [ -s "$d/dokku.crontab" ]; then crontab -u dokku -r && echo 'crontab dokku'; else rm -f "$d/dokku.crontab"; fi`;
}

/** Puts back what {@link holdCronCommand} held. */
export function restoreCronCommand(dir: string): Command {
  return $`d=${dir}; [ -d "$d" ] || exit 0
find "$d" -maxdepth 1 -type f -name 'dokku-*' -exec install -m 0644 -t /etc/cron.d {} +
if [ -s "$d/dokku.crontab" ]; then crontab -u dokku "$d/dokku.crontab"; fi`;
}

/** The script that brings a held source back, as a person would type it. */
export function thawScript(
  saved: FreezeRecord,
  plugin: boolean,
  cronDir: string,
  dokkuVersion: string,
): string {
  const restore = restoreInEnv(dokkuVersion) ? restoreEnvCommand : restoreCommand;
  const lines = [
    '#!/usr/bin/env bash',
    '# Brings this host back as it was before `ferry migrate` froze it. Its data is',
    '# as of the freeze: the writes since went to the new host.',
    'set -euo pipefail',
  ];
  for (const s of saved.services.filter((x) => x.status === 'running')) {
    lines.push(serviceStartCommand(s.plugin, s.name).render());
  }
  for (const a of saved.apps.filter((x) => x.running !== 'false')) {
    lines.push(psStartCommand(a.name).render(), restore(a.name, a.restore).render());
    if (plugin && !a.maintenance) lines.push(maintenanceOffCommand(a.name).render());
  }
  lines.push(restoreCronCommand(cronDir).render(), '');
  return lines.join('\n');
}

function thawScriptFile(inventory: Inventory, host: Host, runId: string): string {
  return `${runDir(inventory, host, runId)}/thaw.sh`;
}

const task = defineTask({
  name: 'release-source',
  summary:
    'keep the source frozen with its cron entries held (default), or bring it back with --leave-source-running',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: {
    'hold-cron': [],
    'read-state': [],
    'write-thaw-script': [],
    ...THAW_ACTIONS,
  },
  plan({ host, inventory, options }) {
    const h = host!.name;
    const file = freezeFile(inventory, host!, options.runId);
    if (options.leaveSourceRunning) {
      return thawActions(h, 'with --leave-source-running', file).map(
        ({ only: _, ...a }): PlannedAction => a,
      );
    }
    return [
      {
        kind: 'remote',
        id: 'hold-cron',
        host: h,
        command: holdCronCommand(heldCronDir(options.runId)),
        why: "scheduled backups and app cron tasks would run against the source's stale, stopped data",
        changes: true,
      },
      {
        kind: 'remote',
        id: 'read-state',
        host: h,
        command: readFreezeCommand(file),
        why: 'the state before the freeze, for the script below',
      },
      {
        kind: 'remote',
        id: 'write-thaw-script',
        host: h,
        command: $`umask 077 && cat > ${thawScriptFile(inventory, host!, options.runId)}`,
        stdin: 'the commands that bring the source back (services, apps, maintenance, cron)',
        changes: true,
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof task>) {
  const host = rt.ctx.host!;
  const { inventory, options } = rt.ctx;
  const plugin = rt.manifest().plugins.some((p) => p.name === MAINTENANCE_PLUGIN && p.enabled);
  if (options.leaveSourceRunning) {
    await thaw(rt, host.name, plugin);
    rt.task.hostState(
      host.name,
      'running again as before the cut-over (--leave-source-running): its data no longer receives the writes the target does',
    );
    return { held: false, cron: [], thawScript: '' };
  }
  const held = (await rt.exec('hold-cron')).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const saved = parseFreezeRecord((await rt.exec('read-state')).stdout);
  const script = thawScriptFile(inventory, host, options.runId);
  if (saved) {
    await rt.exec(
      'write-thaw-script',
      {},
      {
        stdin: thawScript(
          saved,
          plugin,
          heldCronDir(options.runId),
          rt.manifest().source.dokkuVersion,
        ),
      },
    );
  }
  rt.task.log(`held cron entries: ${held.join(', ') || 'none'}`);
  rt.task.hostState(
    host.name,
    `frozen (apps in maintenance or stopped, datastores stopped, cron held in ${heldCronDir(options.runId)}). To bring it back: bash ${script} on ${host.name}. To retire it: once DNS points at the target, power it off (its data is as of the freeze)`,
  );
  return { held: true, cron: held, thawScript: saved ? script : '' };
}

export default task.runs(run);
