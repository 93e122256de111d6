/**
 * The seed: "restoring a plugin will not trigger any install or dependencies
 * triggers. You will need to run these manually." Both run as root.
 */
import { defineTask } from './types.js';

export const INSTALL_DEPENDENCIES = 'dokku plugin:install-dependencies';
export const INSTALL = 'dokku plugin:install';

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
        command: 'dokku plugin:list',
        expect: 'every plugin of the manifest, enabled',
      },
    ];
  },
});
