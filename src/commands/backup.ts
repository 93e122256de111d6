import { UsageError } from '../errors.js';
import { groupMembers, loadInventory } from '../inventory/index.js';
import { type RunRequest, runPlaybook } from '../run/execute.js';
import { runFleet } from '../run/fleet.js';
import type { RunResult } from '../run/runner.js';
import { listWords } from '../schema/suggest.js';
import { formatBytes } from '../util/format.js';
import { type BackupOptions, DEFAULT_PARALLEL, type Io } from './options.js';

/** The archive a backup wrote, from its archive step's outputs (whatever the step's id). */
export function archiveFacts(result: RunResult): Record<string, string> {
  for (const out of Object.values(result.outputs)) {
    if (typeof out.path === 'string' && typeof out.sha256 === 'string') {
      const size = typeof out.bytes === 'number' ? `, ${formatBytes(out.bytes)}` : '';
      return { archive: `${out.path}${size}`, sha256: out.sha256 };
    }
  }
  return {};
}

/** The run request of one host's backup; `argv` is what its journal and resume hint repeat. */
function requestFor(opts: BackupOptions, host: string, argv: string[]): RunRequest {
  return {
    ...opts,
    argv,
    command: 'backup',
    playbook: opts.playbook ?? 'backup',
    bindings: { source: host },
    plan: {
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
      ...(opts.selection ? { selection: opts.selection } : {}),
      ...(opts.encrypt ? { encrypt: opts.encrypt } : {}),
    },
    facts: archiveFacts,
  };
}

/** The selection flags again, for a fleet member's own command line. */
function selectionArgv(sel: BackupOptions['selection']): string[] {
  if (!sel) return [];
  return [
    ...sel.apps.flatMap((a) => ['--app', a]),
    ...sel.excludeApps.flatMap((a) => ['--exclude-app', a]),
    ...sel.services.flatMap((s) => ['--service', s]),
    ...sel.excludeServices.flatMap((s) => ['--exclude-service', s]),
  ];
}

/** A single host's command line, as a fleet member's journal and resume hint give it. */
function hostArgv(opts: BackupOptions, host: string): string[] {
  return [
    'backup',
    host,
    '-i',
    opts.inventory,
    ...(opts.fetch ? ['--fetch', opts.fetch] : []),
    ...(opts.playbook ? ['-p', opts.playbook] : []),
    ...(opts.acceptNewHostKeys ? ['--accept-new-host-keys'] : []),
    ...selectionArgv(opts.selection),
    ...(opts.encrypt ?? []).flatMap((r) => ['--encrypt', r]),
  ];
}

/**
 * `ferry backup HOST [--fetch DIR]`: playbooks/backup.yml with source bound.
 * `--all`, or HOST naming a group of the inventory, backs up each of its
 * hosts, `--parallel N` at a time, into one report.
 */
export async function backup(opts: BackupOptions, io: Io): Promise<number> {
  const inventory = await loadInventory(opts.inventory);
  const named = opts.host;
  if (!opts.all && named !== undefined && inventory.hosts[named]) {
    return runPlaybook(requestFor(opts, named, opts.argv), io);
  }
  const label = opts.all ? '--all' : named!;
  const members = groupMembers(inventory, opts.all ? 'all' : named!);
  if (!members) {
    const groups = Object.keys(inventory.groups ?? {}).filter((g) => g !== 'all');
    throw new UsageError(
      `"${named}" is neither a host nor a group of ${opts.inventory}`,
      `Hosts: ${listWords(Object.keys(inventory.hosts))}${groups.length ? `; groups: ${listWords(groups)}` : ''}; or --all.`,
    );
  }
  if (members.length === 0) throw new UsageError(`group ${label} has no hosts`);
  if (opts.resume) {
    throw new UsageError(
      `--resume continues one host's run, not a fleet's`,
      `Resume each failed host with the command the report gave, e.g. ferry backup ${members[0]} --resume -i ${opts.inventory}`,
    );
  }
  return runFleet(
    {
      command: 'backup',
      label,
      parallel: opts.parallel ?? DEFAULT_PARALLEL,
      renderer: opts.renderer,
      json: opts.json,
      ...(opts.junit ? { junit: opts.junit } : {}),
      runs: members.map((host) => ({
        host,
        request: requestFor(opts, host, hostArgv(opts, host)),
      })),
    },
    io,
  );
}
