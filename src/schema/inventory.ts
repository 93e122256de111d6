/**
 * The inventory's JSON Schema: the one description of its shape. ajv checks
 * files against it, `FromSchema` derives the TypeScript types from it, and
 * `npm run schemas` publishes it as schemas/inventory.schema.json for editors.
 */
import { EXISTING_APP_NAME } from '../dokku/names.js';
import { AGE_RECIPIENT_HELP, AGE_RECIPIENT_PATTERN } from './age.js';
import type { FromSchema } from './from-schema.js';
import {
  ADDRESS_PATTERN,
  HOST_KEY_PATTERN,
  PATH_PATTERN,
  REMOTE_PATTERN,
  USER_PATTERN,
} from './host-fields.js';

/** Host names: what users type on the command line (`ferry migrate old new`). */
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const connection = {
  user: {
    type: 'string',
    pattern: USER_PATTERN,
    description:
      'SSH user: root, or a user allowed to run `sudo -n` (then set sudo: true). Letters, digits, ".", "_" and "-", starting with a letter or "_"; at most 32.',
  },
  port: {
    type: 'integer',
    minimum: 1,
    maximum: 65535,
    description: 'SSH port.',
  },
  identity: {
    type: 'string',
    pattern: PATH_PATTERN,
    description:
      'Private key file for SSH (must exist). `~` is your home; a relative path is relative to this file.',
  },
  known_hosts: {
    type: 'string',
    pattern: PATH_PATTERN,
    description:
      'OpenSSH known_hosts file where host keys are looked up. `~` is your home; a relative path is relative to this file.',
  },
  sudo: {
    type: 'boolean',
    description: 'Prefix remote commands with `sudo -n` (the user is not root).',
  },
} as const;

/** One host: where it is and how to reach it. Unset fields come from `defaults`. */
export const hostSchema = {
  type: 'object',
  description:
    'A host, by the name you use on the command line. With an ssh_config, it may be just an alias there: `old: {}` connects as `ssh old` would.',
  additionalProperties: false,
  properties: {
    address: {
      type: 'string',
      pattern: ADDRESS_PATTERN,
      description:
        "DNS name, IPv4 address or IPv6 address (brackets optional), or a Host alias of the ssh_config file (looked up as `ssh ADDRESS` would). Default: the host's name, when the ssh_config file names it.",
    },
    ...connection,
    host_key: {
      type: 'string',
      pattern: HOST_KEY_PATTERN,
      description:
        'an SHA256 fingerprint such as "SHA256:" followed by 43 base64 characters (`ssh-keygen -lf KEY.pub` prints it)',
    },
  },
} as const;

export const inventorySchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'urn:dokku-ferry:schema:inventory:1',
  title: 'dokku-ferry inventory',
  type: 'object',
  required: ['version', 'hosts'],
  additionalProperties: false,
  properties: {
    version: { const: 1, description: 'Inventory format version; always 1.' },
    defaults: {
      type: 'object',
      description: 'What every host inherits unless it sets its own.',
      additionalProperties: false,
      default: {},
      properties: {
        user: { ...connection.user, default: 'root' },
        port: { ...connection.port, default: 22 },
        identity: { ...connection.identity, default: '~/.ssh/id_ed25519' },
        known_hosts: { ...connection.known_hosts, default: '~/.ssh/known_hosts' },
        sudo: { ...connection.sudo, default: false },
        ssh_config: {
          type: 'string',
          pattern: PATH_PATTERN,
          default: '~/.ssh/config',
          description:
            'OpenSSH client configuration read for every host, as `ssh` reads it (Host, HostName, User, Port, IdentityFile, IdentitiesOnly, IdentityAgent, UserKnownHostsFile, ProxyJump, Include, Match). Values written in this inventory win over it. `none`: read none.',
        },
      },
    },
    hosts: {
      type: 'object',
      description: 'The Dokku hosts, by name.',
      minProperties: 1,
      propertyNames: { pattern: HOST_NAME.source },
      additionalProperties: hostSchema,
    },
    apps: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'How apps are handled on a move or restore.',
      properties: {
        order: {
          type: 'array',
          description:
            'Apps rebuilt first, in this order (for example a database migrator before the API); the rest follow.',
          uniqueItems: true,
          default: [],
          items: { type: 'string', pattern: EXISTING_APP_NAME.source },
        },
      },
    },
    repos: {
      type: 'array',
      description: 'Local git clones whose Dokku remote follows the move.',
      default: [],
      items: {
        type: 'object',
        required: ['path', 'app'],
        additionalProperties: false,
        properties: {
          path: {
            type: 'string',
            pattern: PATH_PATTERN,
            description: 'The clone on this machine (`~` and relative paths allowed).',
          },
          app: {
            type: 'string',
            pattern: EXISTING_APP_NAME.source,
            description: 'The Dokku app the clone deploys to.',
          },
          remote: {
            type: 'string',
            pattern: REMOTE_PATTERN,
            default: 'dokku',
            description:
              'Name of the git remote to rewrite: letters, digits, ".", "_" and "-", not starting with "-" or ".".',
          },
        },
      },
    },
    backup: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'Where archives are written on a host, how many are kept, and whom fetched copies are encrypted to.',
      properties: {
        dir: {
          type: 'string',
          pattern: PATH_PATTERN,
          default: '/var/lib/dokku-ferry/archives',
          description:
            'Absolute directory on the host; made root-only (0700), archives inside are 0600.',
        },
        keep: {
          type: 'integer',
          minimum: 1,
          maximum: 10000,
          default: 7,
          description: 'How many archives the retention step keeps (the newest).',
        },
        encrypt: {
          type: 'array',
          items: {
            type: 'string',
            pattern: AGE_RECIPIENT_PATTERN,
            description: `an age recipient: ${AGE_RECIPIENT_HELP}`,
          },
          description:
            'age recipients the copy `ferry backup --fetch` brings here is encrypted to, on the host, before it leaves (--encrypt replaces the list). Any one of their identities decrypts it.',
        },
      },
    },
  },
} as const;

/** The inventory file as written, after ajv has filled in schema defaults. */
export type InventoryDocument = FromSchema<typeof inventorySchema>;
/** One host entry as written in the file. */
export type HostDocument = FromSchema<typeof hostSchema>;
