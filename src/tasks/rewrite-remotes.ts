/**
 * Points each inventory repo's Dokku remote at the new host (the seed's
 * "updating the dokku remote in your local app's repo"), remembering the old
 * URL, and proves it with `git ls-remote`: the new host serves the app's repo.
 */
import { FerryError, InternalError, LocalError, lastLines } from '../errors.js';
import type { Host } from '../inventory/index.js';
import {
  appendKnownHost,
  knownHostsLine,
  knownHostsName,
  readKnownHosts,
  verifyHostKey,
} from '../ssh/host-keys.js';
import { $, type Command } from '../ssh/shell.js';
import { expandHome } from '../ssh/target.js';
import { defineTask, type RuntimeOf } from './types.js';

/** The git URL of an app on a host: scp-like on port 22, ssh:// otherwise. */
export function dokkuRemoteUrl(host: Host, app: string): string {
  const addr = host.address.includes(':') ? `[${host.address}]` : host.address;
  return host.port === 22 ? `dokku@${addr}:${app}` : `ssh://dokku@${addr}:${host.port}/${app}`;
}

export function getUrlCommand(repo: string, remote: string): Command {
  return $`git -C ${repo} remote get-url ${remote}`;
}
export function setUrlCommand(repo: string, remote: string, url: string): Command {
  return $`git -C ${repo} remote set-url ${remote} ${url}`;
}
export function addRemoteCommand(repo: string, remote: string, url: string): Command {
  return $`git -C ${repo} remote add ${remote} ${url}`;
}
export function lsRemoteCommand(repo: string, remote: string): Command {
  return $`git -C ${repo} ls-remote --heads ${remote}`;
}

/** Which repo a planned git command is for (path and remote: the pair is unique). */
export function repoItem(repo: { path: string; remote: string }): string {
  return `${repo.path}:${repo.remote}`;
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
  actions: { 'get-url': [], 'set-url': [], 'add-remote': [], 'ls-remote': [] },
  plan({ params, roles, inventory }) {
    const to = roles[params.to]!;
    return inventory.repos.flatMap((r) => {
      const url = dokkuRemoteUrl(to, r.app);
      const item = repoItem(r);
      return [
        {
          kind: 'local' as const,
          id: 'get-url',
          item,
          command: getUrlCommand(r.path, r.remote),
          why: `${r.path}: the old URL, for the report`,
        },
        {
          kind: 'local' as const,
          id: 'set-url',
          item,
          command: setUrlCommand(r.path, r.remote, url),
          changes: true,
          fallback: [
            {
              kind: 'local' as const,
              id: 'add-remote',
              item,
              command: addRemoteCommand(r.path, r.remote, url),
              changes: true,
            },
          ],
        },
        {
          kind: 'local' as const,
          id: 'ls-remote',
          item,
          command: lsRemoteCommand(r.path, r.remote),
          expect: `lists ${r.app}'s branches: ${to.name} serves the repo`,
        },
      ];
    });
  },
});

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

type Runtime = RuntimeOf<typeof definition>;

/**
 * Records the target's host key, as ferry verified it when it connected, in
 * the known_hosts file the inventory names for the host; only when absent,
 * never over another key. Returns a problem to report, or undefined.
 */
async function recordHostKey(
  rt: Runtime,
  to: Host,
): Promise<{ file: string; fingerprint: string; recorded: boolean; problem?: string }> {
  const verified = await rt.hostKey(to.name);
  const key = verified.key;
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
      `recorded ${to.name}'s host key for ${name} in ${file}: ${key.fingerprint} (${key.type}), the key ferry verified (${verified.trust}) when it connected`,
    );
    return { ...base, recorded: true };
  }
  const problem = `${file}${verdict.line ? `:${verdict.line}` : ''} holds another key for ${name} (${verdict.expected}); ${to.name} presented ${key.fingerprint}, verified against ${verified.trust}. Left unchanged: git's ssh will refuse the new host until you remove the old line (ssh-keygen -R '${name}' -f ${file}) and add: ${knownHostsLine(to.address, to.port, key)}`;
  rt.task.warn(problem);
  return { ...base, recorded: false, problem };
}

async function run(rt: Runtime) {
  const params = rt.ctx.params;
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
  let leftOut: string[] = [];
  try {
    leftOut = rt.manifest().selection?.dropped.apps ?? [];
  } catch {
    // no manifest: nothing was selected
  }
  for (const r of repos) {
    if (leftOut.includes(r.app)) {
      rt.task.log(
        `${r.path} (${r.remote}): ${r.app} was left out of this run; still points at the source`,
      );
      continue;
    }
    const url = dokkuRemoteUrl(to, r.app);
    const where = `${r.path} (${r.remote})`;
    const item = repoItem(r);
    try {
      const got = await rt.exec('get-url', {}, { item, allowCodes: [0, 2] });
      const old = got.code === 0 ? withoutPassword(got.stdout.trim()) : null;
      if (old === url) {
        rt.task.log(`${where}: already points at ${url}`);
      } else if (old === null) {
        await rt.exec('add-remote', {}, { item });
        rt.task.log(`${where}: had no ${r.remote} remote; added ${url}`);
      } else {
        await rt.exec('set-url', {}, { item });
        rt.task.log(
          `${where}: ${old} → ${url} (to go back: git remote set-url ${r.remote} ${old})`,
        );
      }
      const ls = await rt.exec('ls-remote', {}, { item });
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
      const tail = e instanceof LocalError ? lastLines(e.stderr.trim(), 4) : String(e);
      failures.push(
        `${where}: ${e instanceof LocalError ? `\`${e.command}\` exited ${e.code}` : ''}\n${tail.replace(/^/gm, '    │ ')}`,
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
}

export default definition.runs(run);
