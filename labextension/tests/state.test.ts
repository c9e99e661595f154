import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  columnKey,
  copyGems,
  describedColumn,
  GraphAction,
  GraphError,
  IClipboard,
  reduce
} from '../src/graph/state';
import { IPipelineDocument } from '../src/types';
import { deepFreeze, gem, gemById, ids, link, pipeline } from './helpers';

/** source → filter_1 → agg, and filter_1 → other on in1. */
function sample(): IPipelineDocument {
  return pipeline(
    [
      gem('source', 'Source', 0, 0),
      gem('filter_1', 'Filter', 240, 0),
      gem('agg', 'Aggregate', 480, 0),
      gem('other', 'Join', 480, 160)
    ],
    [link('source', 'filter_1'), link('filter_1', 'agg'), link('filter_1', 'other', 'in1')]
  );
}

describe('reduce: addGem', () => {
  it('names a new gem after its kind, numbered from 1', () => {
    const next = reduce(pipeline([]), {
      type: 'addGem',
      kind: 'Filter',
      position: { x: 0, y: 0 }
    });
    assert.deepEqual(ids(next), ['filter_1']);
  });

  it('gives the next free number to a second gem of the same kind', () => {
    const add: GraphAction = { type: 'addGem', kind: 'Filter', position: { x: 0, y: 0 } };
    const next = reduce(reduce(pipeline([]), add), add);
    assert.deepEqual(ids(next), ['filter_1', 'filter_2']);
  });

  it('turns a CamelCase kind into a snake_case id', () => {
    const next = reduce(pipeline([]), {
      type: 'addGem',
      kind: 'SetOperation',
      position: { x: 0, y: 0 }
    });
    assert.deepEqual(ids(next), ['set_operation_1']);
  });

  it('skips ids already taken', () => {
    const next = reduce(pipeline([gem('filter_1'), gem('filter_2')]), {
      type: 'addGem',
      kind: 'Filter',
      position: { x: 0, y: 0 }
    });
    assert.equal(next.gems[2].id, 'filter_3');
  });

  it('rounds the position to whole pixels', () => {
    const next = reduce(pipeline([]), {
      type: 'addGem',
      kind: 'Filter',
      position: { x: 10.4, y: 20.6 }
    });
    assert.deepEqual(next.gems[0].position, { x: 10, y: 21 });
  });

  it('keeps the kind and the given properties', () => {
    const next = reduce(pipeline([]), {
      type: 'addGem',
      kind: 'Filter',
      position: { x: 0, y: 0 },
      properties: { condition: 'x > 1' }
    });
    assert.equal(next.gems[0].kind, 'Filter');
    assert.deepEqual(next.gems[0].properties, { condition: 'x > 1' });
  });

  it('uses an explicit id when it is free', () => {
    const next = reduce(pipeline([]), {
      type: 'addGem',
      kind: 'Filter',
      position: { x: 0, y: 0 },
      id: 'recent'
    });
    assert.deepEqual(ids(next), ['recent']);
  });

  it('refuses an explicit id that is taken', () => {
    assert.throws(
      () =>
        reduce(sample(), {
          type: 'addGem',
          kind: 'Filter',
          position: { x: 0, y: 0 },
          id: 'agg'
        }),
      GraphError
    );
  });
});

describe('reduce: removeGems', () => {
  it('removes the gems', () => {
    const next = reduce(sample(), { type: 'removeGems', ids: ['agg', 'other'] });
    assert.deepEqual(ids(next), ['source', 'filter_1']);
  });

  it('drops the connections to and from the removed gems', () => {
    const next = reduce(sample(), { type: 'removeGems', ids: ['filter_1'] });
    assert.deepEqual(next.connections, []);
  });

  it('keeps the connections among the remaining gems', () => {
    const next = reduce(sample(), { type: 'removeGems', ids: ['agg'] });
    assert.deepEqual(next.connections, [
      link('source', 'filter_1'),
      link('filter_1', 'other', 'in1')
    ]);
  });
});

describe('reduce: moveGems', () => {
  it('moves the given gems, rounding their positions', () => {
    const next = reduce(sample(), {
      type: 'moveGems',
      positions: { source: { x: 5.5, y: -3.2 }, agg: { x: 700, y: 40 } }
    });
    assert.deepEqual(gemById(next, 'source').position, { x: 6, y: -3 });
    assert.deepEqual(gemById(next, 'agg').position, { x: 700, y: 40 });
  });

  it('leaves the other gems where they were', () => {
    const before = sample();
    const next = reduce(before, {
      type: 'moveGems',
      positions: { source: { x: 100, y: 100 } }
    });
    assert.equal(gemById(next, 'filter_1'), gemById(before, 'filter_1'));
  });
  it('leaves a gem named like an Object member where it was', () => {
    const before = pipeline([gem('constructor', 'Filter', 5, 5), gem('a')]);
    const next = reduce(before, {
      type: 'moveGems',
      positions: { a: { x: 1, y: 1 } }
    });
    assert.deepEqual(gemById(next, 'constructor').position, { x: 5, y: 5 });
  });
});

describe('reduce: connect', () => {
  it('adds a connection', () => {
    const next = reduce(sample(), {
      type: 'connect',
      connection: link('source', 'other')
    });
    assert.deepEqual(next.connections.at(-1), link('source', 'other'));
    assert.equal(next.connections.length, 4);
  });

  it('replaces the connection that fed the same port', () => {
    const next = reduce(sample(), {
      type: 'connect',
      connection: link('source', 'agg')
    });
    assert.deepEqual(next.connections, [
      link('source', 'filter_1'),
      link('filter_1', 'other', 'in1'),
      link('source', 'agg')
    ]);
  });

  it('keeps what feeds another port of the same gem', () => {
    const next = reduce(sample(), {
      type: 'connect',
      connection: link('source', 'other', 'in0')
    });
    assert.ok(
      next.connections.some(c => c.from === 'filter_1' && c.to === 'other' && c.port === 'in1')
    );
  });

  it('refuses a gem feeding itself', () => {
    assert.throws(
      () => reduce(sample(), { type: 'connect', connection: link('agg', 'agg') }),
      GraphError
    );
  });

  it('refuses an unknown source gem', () => {
    assert.throws(
      () => reduce(sample(), { type: 'connect', connection: link('ghost', 'agg') }),
      GraphError
    );
  });

  it('refuses an unknown target gem', () => {
    assert.throws(
      () => reduce(sample(), { type: 'connect', connection: link('agg', 'ghost') }),
      GraphError
    );
  });
});

describe('reduce: disconnect', () => {
  it('removes exactly the given connection', () => {
    const next = reduce(sample(), {
      type: 'disconnect',
      connection: link('filter_1', 'agg')
    });
    assert.deepEqual(next.connections, [
      link('source', 'filter_1'),
      link('filter_1', 'other', 'in1')
    ]);
  });

  it('leaves a connection on another port in place', () => {
    const next = reduce(sample(), {
      type: 'disconnect',
      connection: link('filter_1', 'other', 'in0')
    });
    assert.equal(next.connections.length, 3);
  });
});

describe('reduce: setProperties', () => {
  it('replaces the properties of the gem', () => {
    const before = pipeline([{ ...gem('f'), properties: { a: 1, b: 2 } }]);
    const next = reduce(before, { type: 'setProperties', id: 'f', properties: { c: 3 } });
    assert.deepEqual(next.gems[0].properties, { c: 3 });
  });

  it('leaves the other gems untouched', () => {
    const before = sample();
    const next = reduce(before, {
      type: 'setProperties',
      id: 'agg',
      properties: { c: 3 }
    });
    assert.equal(gemById(next, 'source'), gemById(before, 'source'));
  });

  it('refuses an unknown gem', () => {
    assert.throws(
      () => reduce(sample(), { type: 'setProperties', id: 'ghost', properties: {} }),
      GraphError
    );
  });
});

describe('reduce: setLabel', () => {
  it('sets a label', () => {
    const next = reduce(sample(), { type: 'setLabel', id: 'agg', label: 'Totals' });
    assert.equal(gemById(next, 'agg').label, 'Totals');
  });

  it('removes the label when given an empty one', () => {
    const labelled = reduce(sample(), { type: 'setLabel', id: 'agg', label: 'Totals' });
    const next = reduce(labelled, { type: 'setLabel', id: 'agg', label: '' });
    assert.ok(!('label' in gemById(next, 'agg')));
  });

  it('refuses an unknown gem', () => {
    assert.throws(
      () => reduce(sample(), { type: 'setLabel', id: 'ghost', label: 'x' }),
      GraphError
    );
  });
});

describe('reduce: setDescription', () => {
  it('sets the description, and removes it when emptied', () => {
    const described = reduce(sample(), {
      type: 'setDescription',
      id: 'agg',
      description: 'Totals per customer'
    });
    assert.equal(gemById(described, 'agg').description, 'Totals per customer');
    const next = reduce(described, { type: 'setDescription', id: 'agg', description: '' });
    assert.ok(!('description' in gemById(next, 'agg')));
  });

  it('returns the same document when nothing changes', () => {
    const before = deepFreeze(sample());
    assert.equal(reduce(before, { type: 'setDescription', id: 'agg', description: '' }), before);
  });
});

describe('reduce: setPipelineDescription', () => {
  it('sets the pipeline description, and removes it when emptied', () => {
    const described = reduce(sample(), {
      type: 'setPipelineDescription',
      description: 'Totals'
    });
    assert.equal(described.description, 'Totals');
    const next = reduce(described, { type: 'setPipelineDescription', description: '' });
    assert.ok(!('description' in next));
  });
});

describe('reduce: setColumnDescription', () => {
  it('documents columns one by one without touching the others', () => {
    const before = deepFreeze(sample());
    let next = reduce(before, {
      type: 'setColumnDescription',
      id: 'agg',
      column: 'total',
      description: 'Sum of amounts'
    });
    next = reduce(next, {
      type: 'setColumnDescription',
      id: 'agg',
      column: 'region',
      description: 'Sales region'
    });
    assert.deepEqual(gemById(next, 'agg').columns, {
      total: { description: 'Sum of amounts' },
      region: { description: 'Sales region' }
    });
    assert.ok(!('columns' in gemById(before, 'agg')));
  });

  it('finds the column ignoring case, as engines do', () => {
    const documented = reduce(sample(), {
      type: 'setColumnDescription',
      id: 'agg',
      column: 'Region',
      description: 'Sales region'
    });
    const next = reduce(documented, {
      type: 'setColumnDescription',
      id: 'agg',
      column: 'region',
      description: 'Where it was sold'
    });
    assert.deepEqual(gemById(next, 'agg').columns, {
      Region: { description: 'Where it was sold' }
    });
    assert.equal(columnKey(gemById(next, 'agg'), 'REGION'), 'Region');
    assert.equal(describedColumn(gemById(next, 'agg'), 'region'), 'Where it was sold');
    assert.equal(describedColumn(gemById(next, 'agg'), 'total'), '');
  });

  it('drops an emptied description, and the whole map with the last one', () => {
    const documented = reduce(sample(), {
      type: 'setColumnDescription',
      id: 'agg',
      column: 'total',
      description: 'Sum'
    });
    const next = reduce(documented, {
      type: 'setColumnDescription',
      id: 'agg',
      column: 'total',
      description: ''
    });
    assert.ok(!('columns' in gemById(next, 'agg')));
  });
});

describe('reduce: renameGem', () => {
  it('renames the gem', () => {
    const next = reduce(sample(), { type: 'renameGem', id: 'filter_1', newId: 'recent' });
    assert.deepEqual(ids(next), ['source', 'recent', 'agg', 'other']);
  });

  it('updates the connections from and to the gem', () => {
    const next = reduce(sample(), { type: 'renameGem', id: 'filter_1', newId: 'recent' });
    assert.deepEqual(next.connections, [
      link('source', 'recent'),
      link('recent', 'agg'),
      link('recent', 'other', 'in1')
    ]);
  });

  for (const bad of ['1st', 'has-dash', 'has space', '']) {
    it(`refuses the invalid id ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => reduce(sample(), { type: 'renameGem', id: 'agg', newId: bad }),
        GraphError
      );
    });
  }

  it('refuses an id taken by another gem', () => {
    assert.throws(
      () => reduce(sample(), { type: 'renameGem', id: 'agg', newId: 'source' }),
      GraphError
    );
  });

  it('refuses an unknown gem', () => {
    assert.throws(
      () => reduce(sample(), { type: 'renameGem', id: 'ghost', newId: 'spirit' }),
      GraphError
    );
  });

  it('returns the same document when the id does not change', () => {
    const before = sample();
    const next = reduce(before, { type: 'renameGem', id: 'agg', newId: 'agg' });
    assert.equal(next, before);
  });
});

describe('copyGems', () => {
  it('copies the chosen gems', () => {
    const clipboard = copyGems(sample(), ['filter_1', 'agg']);
    assert.deepEqual(
      clipboard.gems.map(g => g.id),
      ['filter_1', 'agg']
    );
  });

  it('keeps only the connections among the chosen gems', () => {
    const clipboard = copyGems(sample(), ['filter_1', 'agg']);
    assert.deepEqual(clipboard.connections, [link('filter_1', 'agg')]);
  });
});

describe('reduce: paste', () => {
  function pasteSample(): IPipelineDocument {
    const document = sample();
    const clipboard: IClipboard = copyGems(document, ['source', 'filter_1', 'agg']);
    return reduce(document, { type: 'paste', clipboard, offset: { x: 40, y: 30.6 } });
  }

  it('gives fresh ids derived from the copied ones', () => {
    assert.deepEqual(ids(pasteSample()).slice(4), ['source_1', 'filter_2', 'agg_1']);
  });

  it('offsets the positions, rounded', () => {
    const pasted = pasteSample().gems.slice(4);
    assert.deepEqual(
      pasted.map(g => g.position),
      [
        { x: 40, y: 31 },
        { x: 280, y: 31 },
        { x: 520, y: 31 }
      ]
    );
  });

  it('rewires the internal connections to the new gems', () => {
    assert.deepEqual(pasteSample().connections.slice(3), [
      link('source_1', 'filter_2'),
      link('filter_2', 'agg_1')
    ]);
  });

  it('keeps the existing gems and connections', () => {
    const before = sample();
    const next = pasteSample();
    assert.deepEqual(next.gems.slice(0, 4), before.gems);
    assert.deepEqual(next.connections.slice(0, 3), before.connections);
  });

  it('copies kinds and properties', () => {
    const document = pipeline([{ ...gem('f', 'Filter'), properties: { condition: 'x' } }]);
    const next = reduce(document, {
      type: 'paste',
      clipboard: copyGems(document, ['f']),
      offset: { x: 0, y: 0 }
    });
    assert.equal(next.gems[1].kind, 'Filter');
    assert.deepEqual(next.gems[1].properties, { condition: 'x' });
  });

  it('gives string ids to gems named like Object members', () => {
    const document = pipeline(
      [gem('__proto__'), gem('constructor'), gem('a')],
      [link('__proto__', 'constructor'), link('constructor', 'a')]
    );
    const next = reduce(document, {
      type: 'paste',
      clipboard: copyGems(document, ['__proto__', 'constructor', 'a']),
      offset: { x: 0, y: 0 }
    });
    assert.deepEqual(ids(next).slice(3), ['__proto___1', 'constructor_1', 'a_1']);
    assert.deepEqual(next.connections.slice(2), [
      link('__proto___1', 'constructor_1'),
      link('constructor_1', 'a_1')
    ]);
  });

  it('gives distinct ids when the same clipboard is pasted twice', () => {
    const document = sample();
    const clipboard = copyGems(document, ['filter_1']);
    const action: GraphAction = { type: 'paste', clipboard, offset: { x: 0, y: 0 } };
    const next = reduce(reduce(document, action), action);
    assert.deepEqual(ids(next).slice(4), ['filter_2', 'filter_3']);
  });
});

describe('reduce: purity', () => {
  const clipboard: IClipboard = {
    gems: [gem('filter_1', 'Filter', 10, 10), gem('agg', 'Aggregate', 200, 10)],
    connections: [link('filter_1', 'agg')]
  };
  const actions: GraphAction[] = [
    { type: 'addGem', kind: 'Filter', position: { x: 1.5, y: 2.5 } },
    { type: 'removeGems', ids: ['filter_1'] },
    { type: 'moveGems', positions: { agg: { x: 9.7, y: 9.2 } } },
    { type: 'connect', connection: link('source', 'agg') },
    { type: 'disconnect', connection: link('filter_1', 'agg') },
    { type: 'setProperties', id: 'agg', properties: { keys: ['a'] } },
    { type: 'setLabel', id: 'agg', label: 'Totals' },
    { type: 'setLabel', id: 'other', label: '' },
    { type: 'renameGem', id: 'filter_1', newId: 'recent' },
    { type: 'paste', clipboard, offset: { x: 20, y: 20 } },
    { type: 'replace', document: pipeline([]) }
  ];

  for (const action of actions) {
    it(`${action.type} leaves the given document as it was`, () => {
      const document = sample();
      document.gems[3] = { ...document.gems[3], label: 'Joined' };
      const snapshot = structuredClone(document);
      deepFreeze(document);
      deepFreeze(action);
      assert.doesNotThrow(() => reduce(document, action));
      assert.deepEqual(document, snapshot);
    });
  }
});
