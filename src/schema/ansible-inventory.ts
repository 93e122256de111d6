/**
 * Ansible inventories: what ferry reads of them. ferry's own settings sit in
 * one variable, `dokku_ferry`, whose keys depend on where it is set (the
 * `all` group, another group, a host); those three schemas are checked by
 * ajv. `ansibleInventorySchema` describes a whole Ansible YAML inventory for
 * editors (published as schemas/ansible-inventory.schema.json): groups,
 * hosts, vars, the connection variables ferry reads and `dokku_ferry`.
 */
import type { FromSchema } from './from-schema.js';
import { ADDRESS_PATTERN, PATH_PATTERN, USER_PATTERN } from './host-fields.js';
import { hostSchema, inventorySchema } from './inventory.js';

/** The variable that holds ferry's own settings in an Ansible inventory. */
export const FERRY_VAR = 'dokku_ferry';

const knownHosts = {
  ...hostSchema.properties.identity,
  description:
    'OpenSSH known_hosts file where ferry looks host keys up (default ~/.ssh/known_hosts). `~` is your home; a relative path is relative to the inventory file.',
} as const;

/** `dokku_ferry` on a host: where its key is known, or the key itself. */
export const ferryHostVarSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'dokku-ferry settings for this host.',
  properties: {
    known_hosts: knownHosts,
    host_key: hostSchema.properties.host_key,
  },
} as const;

/** `dokku_ferry` on a group other than `all`: what its hosts share. */
export const ferryGroupVarSchema = {
  type: 'object',
  additionalProperties: false,
  description: "dokku-ferry settings for this group's hosts.",
  properties: {
    known_hosts: knownHosts,
  },
} as const;

/** `dokku_ferry` on the `all` group: the whole inventory's settings, as in ferry's own format. */
export const ferryAllVarSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'dokku-ferry settings for the whole inventory: app order, repos, backup, the known_hosts file of every host, and the ssh_config file.',
  properties: {
    known_hosts: knownHosts,
    ssh_config: inventorySchema.properties.defaults.properties.ssh_config,
    apps: inventorySchema.properties.apps,
    repos: inventorySchema.properties.repos,
    backup: inventorySchema.properties.backup,
  },
} as const;

/** The keys `dokku_ferry` may hold, by where it is set. */
export const FERRY_VAR_KEYS = {
  all: Object.keys(ferryAllVarSchema.properties),
  group: Object.keys(ferryGroupVarSchema.properties),
  host: Object.keys(ferryHostVarSchema.properties),
} as const;

/** `dokku_ferry` on `all`, after ajv has filled in defaults. */
export type FerryAllVar = FromSchema<typeof ferryAllVarSchema>;

/** Template text, which ferry cannot evaluate, is allowed by the editor schema only where ferry ignores it. */
const connectionVars = {
  ansible_host: {
    type: 'string',
    pattern: ADDRESS_PATTERN,
    description: 'Address ferry connects to (default: the host name).',
  },
  ansible_port: {
    anyOf: [
      { type: 'integer', minimum: 1, maximum: 65535 },
      { type: 'string', pattern: '^[0-9]{1,5}$' },
    ],
    description: 'SSH port (default 22).',
  },
  ansible_user: {
    type: 'string',
    pattern: USER_PATTERN,
    description: 'SSH user (ferry: default root; it does not read ansible.cfg).',
  },
  ansible_ssh_private_key_file: {
    type: 'string',
    pattern: PATH_PATTERN,
    description: 'Private key file (ferry: default ~/.ssh/id_ed25519).',
  },
  ansible_become: {
    type: ['boolean', 'string'],
    description: 'true: ferry runs remote commands through `sudo -n` (sudo: true).',
  },
  ansible_become_method: { enum: ['sudo'], description: 'ferry becomes root with sudo only.' },
  ansible_become_user: { enum: ['root'], description: 'ferry becomes root only.' },
} as const;

function varsSchema(ferry: object) {
  return {
    type: ['object', 'null'],
    properties: { ...connectionVars, [FERRY_VAR]: ferry },
  };
}

/** An Ansible YAML inventory, for editors. */
export const ansibleInventorySchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'urn:dokku-ferry:schema:ansible-inventory:1',
  title: 'Ansible YAML inventory, as dokku-ferry reads it',
  type: 'object',
  properties: { all: { $ref: '#/definitions/allGroup' } },
  additionalProperties: { $ref: '#/definitions/group' },
  definitions: {
    allGroup: {
      type: ['object', 'null'],
      description: 'The group of every host; its vars apply to all of them.',
      properties: {
        hosts: { $ref: '#/definitions/hosts' },
        vars: varsSchema(ferryAllVarSchema),
        children: { $ref: '#/definitions/children' },
      },
    },
    group: {
      type: ['object', 'null'],
      properties: {
        hosts: { $ref: '#/definitions/hosts' },
        vars: varsSchema(ferryGroupVarSchema),
        children: { $ref: '#/definitions/children' },
      },
    },
    hosts: {
      type: ['object', 'null'],
      description:
        'Hosts by name (or pattern, such as web[01:03].example.com), each with its vars.',
      additionalProperties: varsSchema(ferryHostVarSchema),
    },
    children: {
      type: ['object', 'null'],
      description: 'Child groups: their hosts are members of this group too.',
      additionalProperties: { $ref: '#/definitions/group' },
    },
  },
} as const;
