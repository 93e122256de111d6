/**
 * Points each inventory repo's Dokku remote at the new host (the seed's
 * "updating the dokku remote in your local app's repo"), remembering the old
 * URL, and proves it with `git ls-remote`: the new host serves the app's repo.
 */
import { FerryError, InternalError, lastLines, RemoteError } from '../errors.js';
import type { Host } from '../inventory/index.js';
import { expandHome, type RunResult } from '../ssh/connection.js';
import {
  appendKnownHost,
  knownHostsLine,
  knownHostsName,
  readKnownHosts,
  verifyHostKey,
} from '../ssh/host-keys.js';
import { quoteArgv } from '../ssh/quote.js';
import { bind, runLocal, type TaskRun, type TaskRuntime } from './runtime.js';
import type { LocalAction } from './types.js';
import { defineTask } from './types.js';

/** The git URL of an app on a host: scp-like on port 22, ssh:// otherwise. */
export function dokkuRemoteUrl(host: Host, app: string): string {
  const addr = host.address.includes(':') ? `[${host.address}]` : host.address;
  return host.port === 22 ? `dokku@${addr}:${app}` : `ssh://dokku@${addr}:${host.port}/${app}`;
}

export function getUrlCommand(repo: string, remote: string): string {
  return quoteArgv(['git', '-C', repo, 'remote', 'get-url', remote]);
}
export function setUrlCommand(repo: string, remote: string, url: string): string {
  return quoteArgv(['git', '-C', repo, 'remote', 'set-url', remote, url]);
}
export function addRemoteCommand(repo: string, remote: string, url: string): string {
  return quoteArgv(['git', '-C', repo, 'remote', 'add', remote, url]);
}
export function lsRemoteCommand(repo: string, remote: string): string {
  return quoteArgv(['git', '-C', repo, 'ls-remote', '--heads', remote]);
}

const definition = defineTask({
  name: 'rewrite-remotes',
  summary: "point each inventory repo's dokku remote at the new host; prove it with git ls-remote",
  runsOn: 'controller',
  roleParams: ['to'],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      to: { type: 'string', default: 'target', description: 'The role the remotes point to.' },
    },
  },
  plan({ params, roles, inventory }) {
    const to = roles[params.to]!;
    return inventory.repos.flatMap((r) => {
      const url = dokkuRemoteUrl(to, r.app);
      return [
        {
          kind: 'local' as const,
          command: getUrlCommand(r.path, r.remote),
          why: `${r.path}: the old URL, for the report`,
        },
        {
          kind: 'local' as const,
          command: setUrlCommand(r.path, r.remote, url),
          changes: true,
          fallback: [
            {
              kind: 'local' as const,
              command: addRemoteCommand(r.path, r.remote, url),
              changes: true,
            },
          ],
        },
        {
          kind: 'local' as const,
          command: lsRemoteCommand(r.path, r.remote),
          expect: `lists ${r.app}'s branches: ${to.name} serves the repo`,
        },
      ];
    });
  },
});
export default definition;

/** `git ls-remote --heads` lines: `<sha>\trefs/heads/<branch>`. */
export function parseHeads(stdout: string): { sha: string; branch: string }[] {
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f): f is [string, string] => f.length === 2 && f[1]!.startsWith('refs/heads/'))
    .map(([sha, ref]) => ({ sha, branch: ref.slice('refs/heads/'.length) }));
}

/** A URL without a password (`https://user:secret@host/` keeps the user). */
export function withoutPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*):[^/@]*@/i, '$1:***@');
}

/** The planned local action with exactly this command (fallbacks included). */
function planned(rt: TaskRuntime, command: string): LocalAction {
  for (const a of rt.actions) {
    if (a.kind === 'local' && a.command === command) return a;
    for (const f of a.kind === 'stream' ? [] : (a.fallback ?? [])) {
      if (f.kind === 'local' && f.command === command) return f;
    }
  }
  throw new InternalError(`${rt.task.stepId}: no planned action \`${command}\``);
}

/** Runs a planned git command here (stdin closed, so git's ssh never waits for an answer). */
function git(action: LocalAction, allowCodes: number[] = [0]): Promise<RunResult> {
  return runLocal(bind(action.command), { allowCodes });
}

/**
 * Records the target's host key, as ferry verified it when it connected, in
 * the known_hosts file the inventory names for the host; only when absent,
 * never over another key. Returns a problem to report, or undefined.
 */
async function recordHostKey(
  rt: TaskRuntime,
  to: Host,
): Promise<{ file: string; fingerprint: string; recorded: boolean; problem?: string }> {
  const remote = await rt.remote(to.name);
  const key = remote.hostKey;
  const file = to.known_hosts;
  const name = knownHostsName(to.address, to.port);
  const verdict = verifyHostKey(key, {
    address: to.address,
    port: to.port,
    knownHosts: await readKnownHosts(file),
  });
  const base = { file, fingerprint: key.fingerprint };
  if (verdict.status === 'match') {
    rt.task.log(`host key of ${to.name} (${key.fingerprint}) is already in ${file}`);
    return { ...base, recorded: false };
  }
  if (verdict.status === 'unknown') {
    await appendKnownHost(file, to.address, to.port, key);
    rt.task.log(
      `recorded ${to.name}'s host key for ${name} in ${file}: ${key.fingerprint} (${key.type}), the key ferry verified (${remote.hostKeyTrust}) when it connected`,
    );
    return { ...base, recorded: true };
  }
  const problem = `${file}${verdict.line ? `:${verdict.line}` : ''} holds another key for ${name} (${verdict.expected}); ${to.name} presented ${key.fingerprint}, verified against ${remote.hostKeyTrust}. Left unchanged: git's ssh will refuse the new host until you remove the old line (ssh-keygen -R '${name}' -f ${file}) and add: ${knownHostsLine(to.address, to.port, key)}`;
  rt.task.warn(problem);
  return { ...base, recorded: false, problem };
}

export const run: TaskRun<unknown> = async (rt) => {
  const params = rt.ctx.params as { to: string };
  const to = rt.ctx.roles[params.to];
  if (!to) throw new InternalError(`rewrite-remotes: role ${params.to} is not bound`);
  const repos = rt.ctx.inventory.repos;
  if (repos.length === 0) {
    rt.task.skip('the inventory lists no repos');
    return undefined;
  }
  const hostKey = await recordHostKey(rt, to);
  if (
    to.known_hosts !== expandHome('~/.ssh/known_hosts') &&
    !process.env.GIT_SSH_COMMAND &&
    !process.env.GIT_SSH
  ) {
    rt.task.log(
      `note: git's ssh reads ~/.ssh/known_hosts (not ${to.known_hosts}) unless GIT_SSH_COMMAND or core.sshCommand says otherwise`,
    );
  }
  let apps: Map<string, string | null> = new Map();
  try {
    apps = new Map(
      rt.manifest().apps.map((a) => [a.name, a.method === 'git' ? a.deploySourceMetadata : null]),
    );
  } catch {
    // no manifest (a playbook without an inventory step): nothing to compare with
  }
  const results: { [key: string]: string | number | null }[] = [];
  const failures: string[] = [];
  for (const r of repos) {
    const url = dokkuRemoteUrl(to, r.app);
    const where = `${r.path} (${r.remote})`;
    try {
      const got = await git(planned(rt, getUrlCommand(r.path, r.remote)), [0, 2]);
      const old = got.code === 0 ? withoutPassword(got.stdout.trim()) : null;
      if (old === url) {
        rt.task.log(`${where}: already points at ${url}`);
      } else if (old === null) {
        await git(planned(rt, addRemoteCommand(r.path, r.remote, url)));
        rt.task.log(`${where}: had no ${r.remote} remote; added ${url}`);
      } else {
        await git(planned(rt, setUrlCommand(r.path, r.remote, url)));
        rt.task.log(
          `${where}: ${old} → ${url} (to go back: git remote set-url ${r.remote} ${old})`,
        );
      }
      const ls = await git(planned(rt, lsRemoteCommand(r.path, r.remote)));
      const heads = parseHeads(ls.stdout);
      const deployed = apps.get(r.app);
      const serves =
        deployed && heads.some((h) => h.sha === deployed)
          ? `, including the source's deployed commit ${deployed.slice(0, 7)}`
          : '';
      if (heads.length === 0) {
        rt.task.warn(`${where}: ${to.name} answers but serves no branch of ${r.app}`);
      }
      rt.task.log(
        `${where}: git ls-remote lists ${heads.length} branch(es) on ${to.name}${serves}`,
      );
      results.push({
        path: r.path,
        app: r.app,
        remote: r.remote,
        oldUrl: old,
        newUrl: url,
        heads: heads.length,
      });
    } catch (e) {
      const tail =
        e instanceof RemoteError ? lastLines((e.stderr || e.stdout).trim(), 4) : String(e);
      failures.push(
        `${where}: ${e instanceof RemoteError ? `\`${e.command}\` exited ${e.code}` : ''}\n${tail.replace(/^/gm, '    │ ')}`,
      );
    }
  }
  if (failures.length > 0) {
    throw new FerryError(
      `${failures.length} of ${repos.length} repo(s) not proven against ${to.name}:\n${failures.map((f) => `  ${f}`).join('\n')}`,
      {
        hint: hostKey.problem
          ? `Fix the host key first: ${hostKey.problem}`
          : `Check that your ssh key is in dokku's authorized_keys on ${to.name} (dokku ssh-keys:list) and that \`git ls-remote ${dokkuRemoteUrl(to, repos[0]!.app)}\` works from here.`,
      },
    );
  }
  return { repos: results, hostKey: { ...hostKey } };
};
