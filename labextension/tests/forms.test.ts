import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  errorSchemaFor,
  fieldPointer,
  formSchema,
  isObject,
  Schema,
  uiSchemaFor,
  withoutFilledDefaults
} from '../src/editor/forms';
import { IGemKind } from '../src/types';

const ROOT = resolvePath(__dirname, '..', '..', '..');

/** The gem catalog exactly as the server sends it, from the installed package. */
function catalog(): Map<string, IGemKind> {
  const venv = join(ROOT, '.venv', 'bin', 'prophecy');
  const result = spawnSync(existsSync(venv) ? venv : 'prophecy', ['gems', '--format', 'json'], {
    encoding: 'utf-8'
  });
  assert.equal(result.status, 0, result.stderr);
  const kinds = JSON.parse(result.stdout) as IGemKind[];
  return new Map(kinds.map(kind => [kind.kind, kind]));
}

const KINDS = catalog();

function schemaOf(kind: string): { schema: Schema; defs: Schema } {
  const schema = formSchema(KINDS.get(kind)!.properties_schema) as Schema;
  return { schema, defs: isObject(schema.$defs) ? schema.$defs : {} };
}

describe('formSchema', () => {
  it('turns optional fields (anyOf T or null) into plain T without a null default', () => {
    const { schema } = schemaOf('Source');
    const path = (schema.properties as Schema).path as Schema;
    assert.equal(path.type, 'string');
    assert.equal(path.anyOf, undefined);
    assert.equal('default' in path, false);
    assert.equal(path.title, 'Path');
  });

  it('drops the Python class names used as titles of the form and its definitions', () => {
    const { schema, defs } = schemaOf('Aggregate');
    assert.equal(schema.title, undefined);
    for (const definition of Object.values(defs)) {
      assert.equal((definition as Schema).title, undefined);
    }
  });

  it('leaves the catalog entry it was given as it was', () => {
    const before = JSON.stringify(KINDS.get('Source')!.properties_schema);
    formSchema(KINDS.get('Source')!.properties_schema);
    assert.equal(JSON.stringify(KINDS.get('Source')!.properties_schema), before);
  });
});

describe('uiSchemaFor', () => {
  it('puts the expression editor on top-level expression fields', () => {
    const { schema, defs } = schemaOf('Filter');
    assert.deepEqual(uiSchemaFor(schema, defs), { condition: { 'ui:widget': 'expression' } });
  });

  it('reaches expression fields inside list items defined in $defs', () => {
    const { schema, defs } = schemaOf('Aggregate');
    const ui = uiSchemaFor(schema, defs);
    assert.deepEqual(ui.aggregates, { items: { expression: { 'ui:widget': 'expression' } } });
    assert.deepEqual(ui.group_by, { items: { expression: { 'ui:widget': 'expression' } } });
    assert.deepEqual(ui.having, { 'ui:widget': 'expression' });
  });

  it('gives every expression field of the catalog the editor', () => {
    const { schema, defs } = schemaOf('SQLStatement');
    assert.deepEqual(uiSchemaFor(schema, defs).query, { 'ui:widget': 'expression' });
    const join = schemaOf('Join');
    assert.deepEqual(uiSchemaFor(join.schema, join.defs).joins, {
      items: { condition: { 'ui:widget': 'expression' } }
    });
  });
});

describe('errorSchemaFor', () => {
  it('nests an issue under the field its pointer names, with line and column', () => {
    const errors = errorSchemaFor([
      {
        code: 'expression',
        message: "unknown column 'x'",
        gem_id: 'agg',
        field: '/gems/2/properties/aggregates/1/expression',
        line: 1,
        column: 5
      }
    ]);
    assert.deepEqual(errors, {
      aggregates: { 1: { expression: { __errors: ["unknown column 'x' (line 1, column 5)"] } } }
    });
  });

  it('keeps several issues of one field and ignores issues outside the properties', () => {
    const errors = errorSchemaFor([
      { code: 'a', message: 'first', field: '/gems/0/properties/condition' },
      { code: 'b', message: 'second', field: '/gems/0/properties/condition' },
      { code: 'c', message: 'wrong inputs', field: '/connections/0' },
      { code: 'd', message: 'no field' }
    ]);
    assert.deepEqual(errors, { condition: { __errors: ['first', 'second'] } });
  });
});

describe('withoutFilledDefaults', () => {
  it('drops top-level members the form filled with their defaults', () => {
    const { schema, defs } = schemaOf('Source');
    const original = { format: 'csv', path: 'data/orders.csv' };
    const filled = { ...original, header: true, delimiter: ',', columns: [], rows: [] };
    assert.deepEqual(withoutFilledDefaults(filled, original, schema, defs), original);
  });

  it('keeps a default value the file already had, and a changed one', () => {
    const { schema, defs } = schemaOf('Source');
    const original = { format: 'csv', path: 'a.csv', header: true };
    const edited = { ...original, delimiter: ';' };
    assert.deepEqual(withoutFilledDefaults(edited, original, schema, defs), edited);
  });

  it('drops defaults filled into list items the file had, keeps new items whole', () => {
    const { schema, defs } = schemaOf('OrderBy');
    const original = { keys: [{ expression: 'amount' }] };
    const filled = {
      keys: [
        { expression: 'amount', direction: 'asc' },
        { expression: 'id', direction: 'asc' }
      ]
    };
    assert.deepEqual(withoutFilledDefaults(filled, original, schema, defs), {
      keys: [{ expression: 'amount' }, { expression: 'id', direction: 'asc' }]
    });
  });

  it('drops an optional group the form made up from its defaults', () => {
    const { schema, defs } = schemaOf('WindowFunction');
    const original = { columns: [{ name: 'rank', expression: 'row_number()' }] };
    const filled = {
      ...original,
      partition_by: [],
      order_by: [],
      frame: { type: 'rows', start: 'unbounded preceding', end: 'current row' }
    };
    assert.deepEqual(withoutFilledDefaults(filled, original, schema, defs), original);
  });

  it('keeps what the user set inside a made-up group', () => {
    const { schema, defs } = schemaOf('WindowFunction');
    const original = { columns: [{ name: 'total', expression: 'sum(x)' }] };
    const edited = {
      ...original,
      frame: { type: 'rows', start: '2 preceding', end: 'current row' }
    };
    assert.deepEqual(withoutFilledDefaults(edited, original, schema, defs), {
      ...original,
      frame: { start: '2 preceding' }
    });
  });

  it('leaves out members the form cleared (undefined)', () => {
    const { schema, defs } = schemaOf('Filter');
    assert.deepEqual(
      withoutFilledDefaults({ condition: undefined }, { condition: 'x > 1' }, schema, defs),
      {}
    );
  });
});

describe('fieldPointer', () => {
  it('spells a form field id as a JSON pointer into the properties', () => {
    assert.equal(fieldPointer('prophecy-f_1.condition', 'prophecy-f_1'), '/condition');
    assert.equal(
      fieldPointer('prophecy-agg.columns.0.expression', 'prophecy-agg'),
      '/columns/0/expression'
    );
  });

  it('escapes ~ and / in keys', () => {
    assert.equal(fieldPointer('prophecy-g.a/b.c~d', 'prophecy-g'), '/a~1b/c~0d');
  });
});
