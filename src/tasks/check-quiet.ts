/**
 * Refuses to start while anything changes the source: a deploy (its lock), a
 * running build, a `dokku` process. The seed: "run … when not executing any
 * Dokku commands or app deployments". With `against`, also compares the two
 * hosts: a target older than the source, of another CPU architecture, or
 * whose `dokku` user has another uid/gid (the archive keeps numeric owners) is refused.
 */
import { parseBuildsListJson } from '../dokku/builds.js';
import { DEPLOY_LOCK_DIRS_ALL_RELEASES } from '../dokku/layout.js';
import { warnings } from '../dokku/output.js';
import {
  compareDokkuVersions,
  type DokkuVersion,
  formatVersion,
  parseDokkuVersion,
} from '../dokku/version.js';
import { FerryError, StopError } from '../errors.js';
import type { Host } from '../inventory/index.js';
import { $ } from '../ssh/shell.js';
import { defineTask, type PlannedAction, type RemoteAction, type RuntimeOf } from './types.js';

/**
 * Deploy locks of 0.34+ (data/apps) and of ≤0.33 (the app root): size, whether
 * a process holds its flock, path. Every release from 0.30 to 0.38 deploys
 * under `flock` on that file, held by the deploying shell's fd 200, and
 * writes its pid or build id into it (0.34+; ≤0.33 leaves it empty):
 * plugins/common/functions acquire_advisory_lock, v0.30.11 to v0.38.27. So
 * a deploy runs only while the flock is held; a file nobody holds is a user's
 * `apps:lock` (empty) or what a dead deploy left. `/proc/locks` is read, not
 * locked, so a deploy starting meanwhile is never refused by us.
 */
export const DEPLOY_LOCKS = $`{ find ${DEPLOY_LOCK_DIRS_ALL_RELEASES} -mindepth 2 -maxdepth 2 -name .deploy.lock -printf '%s %i %p\\n' 2>/dev/null || true; } | while read -r size ino path; do if grep -Eq "FLOCK .*:$ino " /proc/locks 2>/dev/null; then h=held; else h=free; fi; printf '%s %s %s\\n' "$size" "$h" "$path"; done`;

/** Running builds (0.38+: `builds:list` with no app lists only running ones). */
export const RUNNING_BUILDS = $`dokku builds:list --format json`;

/**
 * Processes of the dokku CLI or plugn; the `[/]` keeps grep from matching
 * itself, and `( |$)` keeps `/usr/bin/dokku-event-listener` (a daemon) out.
 */
export const DOKKU_PROCESSES = $`ps -eo pid=,args= | grep -E '[/]usr/bin/dokku( |$)|[p]lugn trigger' || true`;

/** Facts compared between hosts: Dokku version, CPU architecture, dokku uid and gid. */
export const HOST_FACTS = $`dokku version && uname -m && id -u dokku && id -g dokku`;

/** Reads `host`'s facts for the comparison; `id` tells this step's host from the other. */
function facts(id: 'own-facts' | 'other-facts', host: Host, role: string): RemoteAction {
  return {
    kind: 'remote',
    id,
    host: host.name,
    command: HOST_FACTS,
    capture: `${role}-facts`,
    why: `${role}: Dokku version, CPU architecture, dokku uid/gid`,
  };
}

const task = defineTask({
  name: 'check-quiet',
  summary:
    'refuse while a deploy or dokku command runs; compare version, arch and dokku uid with another host',
  runsOn: 'host',
  roleParams: ['against'],
  rerunOnResume: true,
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      against: {
        type: 'string',
        description:
          'A role whose host must run the same or a newer Dokku, on the same CPU architecture, with the same dokku uid/gid.',
      },
    },
  },
  actions: {
    'deploy-locks': [],
    'running-builds': [],
    'dokku-processes': [],
    'own-facts': [],
    'other-facts': [],
  },
  plan({ host, params, roles, step }) {
    const h = host!;
    const actions: PlannedAction[] = [
      {
        kind: 'remote',
        id: 'deploy-locks',
        host: h.name,
        command: DEPLOY_LOCKS,
        expect:
          'no lock whose flock a process holds (a deploy is running); an empty one nobody holds is `apps:lock`, a full one what a dead deploy left: both only noted',
      },
      {
        kind: 'remote',
        id: 'running-builds',
        host: h.name,
        command: RUNNING_BUILDS,
        expect: '[] (no build running)',
      },
      {
        kind: 'remote',
        id: 'dokku-processes',
        host: h.name,
        command: DOKKU_PROCESSES,
        expect: 'no output',
      },
    ];
    const other = params.against ? roles[params.against] : undefined;
    if (other) {
      actions.push(facts('own-facts', h, step.on), {
        ...facts('other-facts', other, params.against!),
        expect: `version not older than ${h.name}'s, same architecture, same dokku uid and gid`,
      });
    }
    return actions;
  },
});

/** One `.deploy.lock` found on a host. */
export interface DeployLock {
  app: string;
  path: string;
  /** Bytes: 0 for `apps:lock` (and ≤0.33 deploys), a build id or pid otherwise. */
  size: number;
  /** A process holds its flock: a deploy is running. */
  held: boolean;
}

/** Parses the `<size> <held|free> <path>` lines of {@link DEPLOY_LOCKS}. */
export function parseDeployLocks(stdout: string): DeployLock[] {
  const out: DeployLock[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\d+) (held|free) (\/.+\/([^/]+)\/\.deploy\.lock)$/.exec(line.trim());
    if (m) out.push({ size: Number(m[1]), held: m[2] === 'held', path: m[3]!, app: m[4]! });
  }
  return out;
}

/** What {@link HOST_FACTS} says about a host. */
export interface HostFacts {
  version: DokkuVersion;
  arch: string;
  uid: number;
  gid: number;
}

/** Parses the output of {@link HOST_FACTS}: the version line, then arch, uid and gid. */
export function parseHostFacts(stdout: string): HostFacts {
  const version = parseDokkuVersion({ stdout, stderr: '', code: 0 });
  const rest = stdout
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const [arch, uid, gid] = rest.slice(-3);
  if (!arch || !uid || !gid || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) {
    throw new FerryError(
      `unexpected answer to \`${HOST_FACTS.toString()}\`: ${JSON.stringify(stdout)}`,
    );
  }
  return { version, arch, uid: Number(uid), gid: Number(gid) };
}

/**
 * Why `target` cannot receive `source`'s data, one sentence each (empty: it can).
 * Dokku migrates its data only forward (in its install triggers), the archive
 * holds binaries' data of one architecture (datastores), and owners travel as numbers.
 */
export function incompatibilities(
  source: { name: string; facts: HostFacts },
  target: { name: string; facts: HostFacts },
): string[] {
  const s = source.facts;
  const t = target.facts;
  const out: string[] = [];
  if (compareDokkuVersions(t.version, s.version) < 0) {
    out.push(
      `${target.name} runs Dokku ${formatVersion(t.version)}, older than ${source.name}'s ${formatVersion(s.version)}: Dokku migrates its data only forward (in its install triggers)`,
    );
  }
  if (t.arch !== s.arch) {
    out.push(
      `${target.name} is ${t.arch} but ${source.name} is ${s.arch}: datastore files and images of one CPU architecture do not run on another`,
    );
  }
  if (t.uid !== s.uid || t.gid !== s.gid) {
    out.push(
      `the dokku user is ${t.uid}:${t.gid} on ${target.name} but ${s.uid}:${s.gid} on ${source.name}: the archive keeps owners as numbers`,
    );
  }
  return out;
}

async function run(rt: RuntimeOf<typeof task>) {
  const host = rt.ctx.host!.name;
  const busy: string[] = [];

  const locks = parseDeployLocks((await rt.exec('deploy-locks')).stdout);
  for (const l of locks) {
    if (l.held) busy.push(`a deploy of ${l.app} is running (its lock ${l.path} is held)`);
    else if (l.size > 0) {
      rt.task.log(
        `${l.path} was left by a deploy that died (nothing holds it; Dokku's next deploy takes it over): not a deploy`,
      );
    } else rt.task.log(`${l.app} is locked with apps:lock (deploys refused; nothing running)`);
  }

  const builds = await rt.exec('running-builds', {}, { allowCodes: [0, 1] });
  const notACommand = [...warnings(builds.stderr), ...warnings(builds.stdout)].some((w) =>
    /is not a dokku command/.test(w),
  );
  if (builds.code !== 0 && notACommand) {
    rt.task.log('builds:list is not known to this Dokku (before 0.38): deploy locks checked only');
  } else {
    const all = parseBuildsListJson(builds);
    // A record a crashed deploy left `running` shows as abandoned: nothing runs.
    for (const b of all.filter((x) => x.status === 'running' && x.displayStatus === 'abandoned')) {
      rt.task.log(
        `build ${b.id} of ${b.app ?? '?'} was abandoned (its process is gone): not a deploy`,
      );
    }
    for (const b of all.filter((x) => (x.displayStatus ?? x.status) === 'running')) {
      busy.push(
        `build ${b.id} of ${b.app ?? '?'} is running (${b.kind}, ${b.source}, pid ${b.pid ?? '?'}, since ${b.startedAt})`,
      );
    }
  }

  const procs = (await rt.exec('dokku-processes')).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  for (const p of procs) busy.push(`a dokku command is running: ${p.slice(0, 160)}`);

  if (busy.length > 0) {
    rt.task.hostState(host, 'unchanged');
    throw new StopError(`${host} is busy:\n  - ${busy.join('\n  - ')}`, {
      hint: `Wait until no deploy or dokku command runs on ${host}, then run again. A lock left by a deploy that died is removed with \`dokku apps:unlock APP\` on ${host}.`,
    });
  }

  const against = rt.ctx.params.against;
  const other = against ? rt.ctx.roles[against] : undefined;
  if (against && other) {
    const read = async (h: string, id: 'own-facts' | 'other-facts'): Promise<HostFacts> => {
      try {
        return parseHostFacts((await rt.exec(id)).stdout);
      } catch (e) {
        throw new StopError(
          `cannot read the Dokku version, architecture and dokku uid/gid of ${h}: ${e instanceof Error ? e.message : String(e)}`,
          {
            hint: `Is Dokku installed on ${h}? Install the same or a newer Dokku release there first.`,
          },
        );
      }
    };
    const mine = await read(host, 'own-facts');
    const theirs = await read(other.name, 'other-facts');
    const why = incompatibilities({ name: host, facts: mine }, { name: other.name, facts: theirs });
    rt.task.log(
      `${host}: Dokku ${formatVersion(mine.version)} ${mine.arch} dokku ${mine.uid}:${mine.gid}; ${other.name}: Dokku ${formatVersion(theirs.version)} ${theirs.arch} dokku ${theirs.uid}:${theirs.gid}`,
    );
    if (why.length > 0) {
      rt.task.hostState(host, 'unchanged');
      rt.task.hostState(other.name, 'unchanged');
      throw new StopError(
        `${other.name} cannot receive ${host}'s data:\n  - ${why.join('\n  - ')}`,
        {
          hint: `Install Dokku ${formatVersion(mine.version)} or newer on ${other.name} (same CPU architecture, dokku user ${mine.uid}:${mine.gid}), then run again.`,
        },
      );
    }
    return {
      source: { dokkuVersion: mine.version.raw, arch: mine.arch },
      target: { dokkuVersion: theirs.version.raw, arch: theirs.arch },
    };
  }
  return undefined;
}

export default task.runs(run);
