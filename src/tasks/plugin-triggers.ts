/**
 * The seed: "restoring a plugin will not trigger any install or dependencies
 * triggers. You will need to run these manually." Both run as root. They run
 * before datastores start: a datastore plugin's install trigger pulls its
 * image and makes its data and config roots, and core plugins' install
 * triggers migrate data written by an older Dokku (the 0.38 ENV move).
 */

import { parsePluginList } from '../dokku/plugins.js';
import { StopError } from '../errors.js';
import { $ } from '../ssh/shell.js';
import { defineTask, type RuntimeOf } from './types.js';

const task = defineTask({
  name: 'plugin-triggers',
  summary: "run every plugin's dependencies and install triggers",
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: { dependencies: [], install: [], 'plugin-list': [] },
  plan({ host }) {
    return [
      {
        kind: 'remote',
        id: 'dependencies',
        host: host!.name,
        command: $`dokku plugin:install-dependencies`,
        why: 'packages the restored plugins need',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'install',
        host: host!.name,
        command: $`dokku plugin:install`,
        why: "each plugin's install trigger (and the completion cache)",
        changes: true,
      },
      {
        kind: 'remote',
        id: 'plugin-list',
        host: host!.name,
        command: $`dokku plugin:list`,
        expect: 'every plugin of the manifest, enabled',
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof task>) {
  const to = rt.ctx.host!.name;
  await rt.exec('dependencies');
  await rt.exec('install');
  const listed = parsePluginList(await rt.exec('plugin-list'));
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
}

export default task.runs(run);
