/**
 * Rebuilds every app that ran on the source, the inventory's apps.order
 * first. Each the way it was deployed (seed, "Docker Image and Tar-based
 * Apps … may fail to rebuild via the normal ps:rebuild"): git-pushed apps
 * with ps:rebuild, image apps with git:from-image of the same image,
 * archive apps with git:from-archive of the tree they last deployed (taken
 * from their repo on the host, so the original URL need not still exist).
 * Apps stopped on the source stay stopped.
 */
import { type Arg, arg, dokku, P, path } from './common.js';
import type { RemoteAction } from './types.js';
import { defineTask } from './types.js';

export function rebuildGitCommand(app: Arg): string {
  return dokku('ps:rebuild', app);
}
export function rebuildImageCommand(app: Arg, image: Arg): string {
  return dokku('git:from-image', app, image);
}
/** Redeploys an archive app from the tree it last deployed (HEAD of its repo on the host). */
export function rebuildArchiveCommand(app: Arg): string {
  const repo = arg(path('/home/dokku/', app));
  return `git -c safe.directory=${repo} -C ${repo} archive --format=tar HEAD | ${dokku('git:from-archive', '--archive-type', 'tar', app, '--')}`;
}

export default defineTask({
  name: 'rebuild-apps',
  summary: 'rebuild each app the way it was deployed, apps.order first',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  plan({ host, inventory }) {
    const h = host!.name;
    const order = inventory.apps.order;
    const base = {
      kind: 'remote' as const,
      host: h,
      forEach: 'app' as const,
      changes: true,
      ...(order.length > 0 ? { items: [...order] } : {}),
    };
    const orUnchanged: RemoteAction[] = [
      {
        kind: 'remote',
        host: h,
        command: rebuildGitCommand(P.app),
        why: 'same image or tree: Dokku says "No changes detected"; rebuild what the repo holds',
        changes: true,
      },
    ];
    return [
      {
        ...base,
        command: rebuildGitCommand(P.app),
        where: 'apps running on the source, deployed by git push',
      },
      {
        ...base,
        command: rebuildImageCommand(P.app, P.image),
        where:
          'apps running on the source, deployed with git:from-image (<image> from the manifest)',
        fallback: orUnchanged,
      },
      {
        ...base,
        command: rebuildArchiveCommand(P.app),
        where: 'apps running on the source, deployed with git:from-archive',
        fallback: orUnchanged,
      },
    ];
  },
});
