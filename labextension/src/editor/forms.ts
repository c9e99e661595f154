/**
 * From a gem kind's JSON Schema to its properties form, and back: no React here, so the rules
 * are unit-tested on their own.
 */
import { ErrorSchema, UiSchema } from '@rjsf/utils';

import { IIssue } from '../types';

/** Property names that hold SQL expressions in the gem catalog. */
export const EXPRESSION_FIELDS: ReadonlySet<string> = new Set([
  'condition',
  'expression',
  'having',
  'query'
]);

export type Schema = Record<string, unknown>;

export function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The kind's schema made friendlier to a form: `anyOf: [T, null]` (pydantic's optional
 * fields) becomes plain `T`, which a form leaves empty, instead of a two-option chooser.
 */
export function formSchema(schema: unknown): unknown {
  const out = withoutNullableChoices(schema);
  // Titles of the root and of $defs are Python class names (`FilterProps`), not labels.
  if (isObject(out)) {
    delete out.title;
    if (isObject(out.$defs)) {
      for (const definition of Object.values(out.$defs)) {
        if (isObject(definition)) {
          delete definition.title;
        }
      }
    }
  }
  return out;
}

function withoutNullableChoices(schema: unknown): unknown {
  if (Array.isArray(schema)) {
    return schema.map(withoutNullableChoices);
  }
  if (!isObject(schema)) {
    return schema;
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = withoutNullableChoices(value);
  }
  const anyOf = out.anyOf;
  if (Array.isArray(anyOf) && anyOf.length === 2) {
    const nonNull = anyOf.filter(s => !(isObject(s) && s.type === 'null'));
    if (nonNull.length === 1 && isObject(nonNull[0])) {
      delete out.anyOf;
      if (out.default === null) {
        delete out.default;
      }
      return { ...nonNull[0], ...out };
    }
  }
  return out;
}

export function resolve(schema: unknown, defs: Schema): Schema {
  if (isObject(schema) && typeof schema.$ref === 'string') {
    const target = defs[schema.$ref.split('/').pop() ?? ''];
    return isObject(target) ? target : {};
  }
  return isObject(schema) ? schema : {};
}

/** The uiSchema that puts the expression editor on expression fields, at any depth. */
export function uiSchemaFor(schema: Schema, defs: Schema): UiSchema {
  const ui: UiSchema = {};
  const properties = isObject(schema.properties) ? schema.properties : {};
  for (const [key, raw] of Object.entries(properties)) {
    const sub = resolve(raw, defs);
    if (EXPRESSION_FIELDS.has(key) && sub.type === 'string') {
      ui[key] = { 'ui:widget': 'expression' };
    } else if (sub.type === 'array' && sub.items !== undefined) {
      const items = resolve(sub.items, defs);
      if (items.type === 'object') {
        ui[key] = { items: uiSchemaFor(items, defs) };
      }
    } else if (sub.type === 'object') {
      ui[key] = uiSchemaFor(sub, defs);
    }
  }
  return ui;
}

/** Issues pointing into the gem's properties, as rjsf's nested error schema. */
export function errorSchemaFor(issues: IIssue[]): ErrorSchema {
  const errors: Schema = {};
  for (const issue of issues) {
    const match = /^\/gems\/\d+\/properties\/(.+)$/.exec(issue.field ?? '');
    if (!match) {
      continue;
    }
    let node = errors;
    for (const segment of match[1].split('/')) {
      if (!isObject(node[segment])) {
        node[segment] = {};
      }
      node = node[segment] as Schema;
    }
    const where =
      issue.line !== undefined
        ? ` (line ${issue.line}, column ${issue.column})`
        : '';
    const list = (node.__errors as string[] | undefined) ?? [];
    node.__errors = [...list, issue.message + where];
  }
  return errors as ErrorSchema;
}

function isEmpty(value: unknown): boolean {
  return (
    value === undefined ||
    value === null ||
    value === '' ||
    (Array.isArray(value) && value.length === 0) ||
    (isObject(value) && Object.keys(value).length === 0)
  );
}

/**
 * The form's data without what the form filled in by itself: members the file did not have
 * that are empty or equal to their schema default. A form fills defaults in as soon as it
 * shows a gem; keeping them would change the file (and the undo history) on a mere click.
 */
export function withoutFilledDefaults(
  data: unknown,
  original: unknown,
  schema: Schema,
  defs: Schema
): unknown {
  if (Array.isArray(data) && Array.isArray(original)) {
    const items = resolve(schema.items, defs);
    return data.map((item, i) =>
      i < original.length
        ? withoutFilledDefaults(item, original[i], items, defs)
        : item
    );
  }
  if (!isObject(data) || !isObject(original)) {
    return data;
  }
  const properties = isObject(schema.properties) ? schema.properties : {};
  const out: Schema = {};
  for (const [key, value] of Object.entries(data)) {
    const field = resolve(properties[key], defs);
    if (value === undefined) {
      continue;
    }
    if (key in original) {
      out[key] = withoutFilledDefaults(value, original[key], field, defs);
      continue;
    }
    // An object the form made up (an optional group's defaults) keeps only what differs.
    const made = isObject(value)
      ? withoutFilledDefaults(value, {}, field, defs)
      : value;
    const isDefault =
      'default' in field &&
      JSON.stringify(field.default) === JSON.stringify(made);
    if (!isEmpty(made) && !isDefault) {
      out[key] = made;
    }
  }
  return out;
}

/** Separates the parts of a form field's id, so that the id spells its place. */
export const ID_SEPARATOR = '.';

/** The JSON pointer into the gem's properties of the field with this form id. */
export function fieldPointer(id: string, idPrefix: string): string {
  const rest = id.startsWith(idPrefix + ID_SEPARATOR)
    ? id.slice(idPrefix.length + ID_SEPARATOR.length)
    : id;
  return rest
    .split(ID_SEPARATOR)
    .map(part => '/' + part.replace(/~/g, '~0').replace(/\//g, '~1'))
    .join('');
}
