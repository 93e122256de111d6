/**
 * Points each inventory repo's Dokku remote at the new host (the seed's
 * "updating the dokku remote in your local app's repo"), remembering the old
 * URL, and proves it with `git ls-remote`: the new host serves the app's repo.
 */
import type { Host } from '../inventory/index.js';
import { quoteArgv } from '../ssh/quote.js';
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

export default defineTask({
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
