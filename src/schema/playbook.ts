/**
 * The playbook's JSON Schema: the one description of its shape (ajv checks
 * it, `FromSchema` derives the types). Each step's `params` is checked
 * against its task's own schema (src/tasks/*.ts); `publishedPlaybookSchema`
 * folds those in for editors.
 */
import type { FromSchema } from './from-schema.js';

/** Role names: lowercase words, used as ROLE=HOST on the command line. */
export const ROLE_NAME = /^[a-z][a-z0-9_-]*$/;
/** Step ids, used by --resume and in reports. */
export const STEP_ID = /^[a-z0-9][a-z0-9_.-]*$/;

/** Option names a step's `when` may name: the step runs only when it is set. */
export const WHEN = ['fetch', 'force', 'forward'] as const;

export const stepSchema = {
  type: 'object',
  required: ['task', 'on'],
  additionalProperties: false,
  properties: {
    id: {
      type: 'string',
      pattern: STEP_ID.source,
      description:
        'a lowercase step id (letters, digits, ".", "_", "-"); defaults to the task name. Reports and --resume use it.',
    },
    task: { type: 'string', minLength: 1, description: 'The built-in task this step runs.' },
    on: {
      type: 'string',
      minLength: 1,
      description: 'The role the step runs on, or `controller` (this machine).',
    },
    why: { type: 'string', description: 'Why this step is here (shown by `ferry plan`).' },
    when: {
      enum: [...WHEN],
      description: 'Run the step only when this option is given (--fetch, --force, --forward).',
    },
    params: {
      type: 'object',
      default: {},
      description: "The task's parameters (see its schema).",
    },
    retry: {
      type: 'integer',
      minimum: 0,
      maximum: 10,
      description:
        'Try the step this many more times when it fails (a check of your own that may need a moment). Built-in steps ask "already done?" first, so a retry is safe.',
    },
    continue_on_error: {
      type: 'boolean',
      default: false,
      description:
        'A failure of this step is reported but the run goes on (a notification of your own that may fail).',
    },
  },
} as const;

export const playbookSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'urn:dokku-ferry:schema:playbook:1',
  title: 'dokku-ferry playbook',
  type: 'object',
  required: ['version', 'name', 'roles', 'steps'],
  additionalProperties: false,
  properties: {
    version: { const: 1, description: 'Playbook format version; always 1.' },
    name: { type: 'string', minLength: 1, description: 'What the playbook is called in reports.' },
    description: { type: 'string', description: 'What it does, in a sentence or two.' },
    roles: {
      type: 'object',
      minProperties: 1,
      description: 'The host roles it takes, bound on the command line as ROLE=HOST.',
      propertyNames: { pattern: ROLE_NAME.source },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['description'],
        properties: {
          description: { type: 'string', description: 'What the host in this role is.' },
          optional: {
            type: 'boolean',
            default: false,
            description: 'The role may be left unbound.',
          },
        },
      },
    },
    steps: {
      type: 'array',
      minItems: 1,
      description: 'What runs, in order.',
      items: stepSchema,
    },
    undo: {
      type: 'object',
      additionalProperties: false,
      required: ['from', 'until'],
      description:
        "A failure (or ^C) from the step `from` until the step `until` finished brings back what the steps in between changed, each by its task's planned undo (a migration: the source serving again). A resumed run then starts again at `from`.",
      properties: {
        from: {
          type: 'string',
          pattern: STEP_ID.source,
          description: 'The first step id of the range.',
        },
        until: {
          type: 'string',
          pattern: STEP_ID.source,
          description: 'The step id whose success ends the range (the target verified).',
        },
      },
    },
  },
} as const;

/** A playbook file as written, after ajv filled in schema defaults. */
export type PlaybookDocument = FromSchema<typeof playbookSchema>;
/** One step as written. */
export type StepDocument = FromSchema<typeof stepSchema>;

/**
 * The schema editors use: the playbook schema with the task names as an enum
 * and each task's params schema applied to the steps that name it.
 */
export function publishedPlaybookSchema(
  tasks: Readonly<Record<string, { params: object; summary: string }>>,
): object {
  const names = Object.keys(tasks);
  return {
    ...playbookSchema,
    properties: {
      ...playbookSchema.properties,
      steps: {
        ...playbookSchema.properties.steps,
        items: {
          ...stepSchema,
          properties: {
            ...stepSchema.properties,
            task: { ...stepSchema.properties.task, enum: names },
          },
          allOf: names.map((name) => ({
            if: { properties: { task: { const: name } }, required: ['task'] },
            // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword; never awaited.
            then: {
              properties: {
                params: { ...tasks[name]!.params, description: `${name}: ${tasks[name]!.summary}` },
              },
            },
          })),
        },
      },
    },
  };
}
