/**
 * Derives a TypeScript type from a JSON Schema written `as const`, so the
 * schema ajv checks against is the only description of the shape.
 *
 * Only the keywords listed in `SUPPORTED_KEYWORDS` are understood; a unit test
 * walks every shipped schema and fails on any other keyword, so the type can
 * never silently drift from what ajv enforces. A property with a `default` is
 * required in the derived type, because ajv (`useDefaults`) fills it in.
 */

/** Keywords `FromSchema` understands (shape) or may safely ignore (constraints). */
export const SUPPORTED_KEYWORDS = [
  // shape
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'anyOf',
  'default',
  // constraints that narrow values but not their TypeScript type
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'uniqueItems',
  'minProperties',
  'propertyNames',
  // annotations
  '$schema',
  '$id',
  'title',
  'description',
  'examples',
  'markdownDescription',
  // used only in the published playbook schema (per-task params)
  'allOf',
  'if',
  'then',
] as const;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type RequiredKeys<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;

type DefaultedKeys<P> = {
  [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never;
}[keyof P];

type PropsOf<P, R> = Simplify<
  { -readonly [K in keyof P & (R | DefaultedKeys<P>)]: FromSchema<P[K]> } & {
    -readonly [K in Exclude<keyof P, R | DefaultedKeys<P>>]?: FromSchema<P[K]>;
  }
>;

type ObjectOf<S> = S extends { readonly properties: infer P }
  ? PropsOf<P, RequiredKeys<S>>
  : S extends { readonly additionalProperties: infer A }
    ? A extends false
      ? Record<string, never>
      : Record<string, FromSchema<A>>
    : Record<string, unknown>;

/** The TypeScript type of the values a JSON Schema (written `as const`) accepts. */
export type FromSchema<S> = S extends { readonly const: infer C }
  ? C
  : S extends { readonly enum: readonly (infer E)[] }
    ? E
    : S extends { readonly anyOf: readonly (infer U)[] }
      ? FromSchema<U>
      : S extends { readonly type: 'string' }
        ? string
        : S extends { readonly type: 'integer' | 'number' }
          ? number
          : S extends { readonly type: 'boolean' }
            ? boolean
            : S extends { readonly type: 'null' }
              ? null
              : S extends { readonly type: 'array'; readonly items: infer I }
                ? FromSchema<I>[]
                : S extends { readonly type: 'object' }
                  ? ObjectOf<S>
                  : unknown;
