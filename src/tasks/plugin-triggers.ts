/**
 * The seed: "restoring a plugin will not trigger any install or dependencies
 * triggers. You will need to run these manually." Both run as root. They run
 * before datastores start: a datastore plugin's install trigger pulls its
 * image and makes its data and config roots, and core plugins' install
 * triggers migrate data written by an older Dokku (the 0.38 ENV move).
 */

import { parsePluginList } from '../dokku/plugins.js';
import { StopError } from '../errors.js';
import type { TaskRun } from './runtime.js';
import { defineTask } from './types.js';

export const INSTALL_DEPENDENCIES = 'dokku plugin:install-dependencies';
export const INSTALL = 'dokku plugin:install';
export const LIST = 'dokku plugin:list';

export default defineTask({
  name: 'plugin-triggers',
  summary: "run every plugin's dependencies and install triggers",
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  plan({ host }) {
    return [
      {
        kind: 'remote',
        host: host!.name,
        command: INSTALL_DEPENDENCIES,
        why: 'packages the restored plugins need',
        changes: true,
      },
      {
        kind: 'remote',
        host: host!.name,
        command: INSTALL,
        why: "each plugin's install trigger (and the completion cache)",
        changes: true,
      },
      {
        kind: 'remote',
        host: host!.name,
        command: LIST,
        expect: 'every plugin of the manifest, enabled',
      },
    ];
  },
});

export const run: TaskRun = async (rt) => {
  const to = rt.ctx.host!.name;
  const find = (command: string) => {
    const a = rt.actions.find((x) => x.kind === 'remote' && x.command === command);
    if (a?.kind !== 'remote') throw new StopError(`plugin-triggers: no planned \`${command}\``);
    return a;
  };
  await rt.exec(find(INSTALL_DEPENDENCIES));
  await rt.exec(find(INSTALL));
  const listed = parsePluginList(await rt.exec(find(LIST)));
  const enabled = new Set(listed.filter((p) => p.enabled).map((p) => p.name));
  const missing = rt
    .manifest()
    .plugins.filter((p) => p.enabled && !enabled.has(p.name))
    .map((p) => p.name);
  if (missing.length > 0) {
    rt.task.hostState(to, `Dokku paths in place; plugins not enabled: ${missing.join(', ')}`);
    throw new StopError(
      `plugins enabled on the source are not enabled on ${to}: ${missing.join(', ')}`,
      {
        hint: `Install or enable them there (dokku plugin:install URL, dokku plugin:enable NAME), then run again with --resume.`,
      },
    );
  }
  rt.task.log(`install and dependencies triggers ran; ${enabled.size} plugin(s) enabled`);
  return { plugins: [...enabled].sort() };
};
