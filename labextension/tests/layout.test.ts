import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { autoLayout, GEM_HEIGHT, GEM_WIDTH } from '../src/graph/layout';
import { IConnection, IGem, IPipelineDocument, IPosition } from '../src/types';
import { gem, link, pipeline } from './helpers';

/**
 * 30 gems: two sources joined, a main chain of 15 after the join, three forks of 4 gems
 * leaving the chain, and one fork joining back into it.
 */
function chainAndFork(): IPipelineDocument {
  const gems: IGem[] = [];
  const connections: IConnection[] = [];
  gems.push(gem('orders', 'Source'), gem('customers', 'Source'), gem('joined', 'Join'));
  connections.push(link('orders', 'joined'), link('customers', 'joined', 'in1'));
  let previous = 'joined';
  for (let i = 1; i <= 15; i++) {
    const id = `step_${i}`;
    gems.push(gem(id, i === 10 ? 'Join' : 'Reformat'));
    connections.push(link(previous, id));
    previous = id;
  }
  for (const [fork, from] of [
    ['a', 'step_2'],
    ['b', 'step_5'],
    ['c', 'step_8']
  ]) {
    let upstream = from;
    for (let i = 1; i <= 4; i++) {
      const id = `fork_${fork}_${i}`;
      gems.push(gem(id, 'Filter'));
      connections.push(link(upstream, id));
      upstream = id;
    }
  }
  // Fork c comes back into the chain.
  connections.push(link('fork_c_4', 'step_10', 'in1'));
  return pipeline(gems, connections);
}

function overlap(a: IPosition, b: IPosition): boolean {
  return Math.abs(a.x - b.x) < GEM_WIDTH && Math.abs(a.y - b.y) < GEM_HEIGHT;
}

describe('autoLayout', () => {
  const document = chainAndFork();
  const positions = autoLayout(document);

  it('lays out a graph of 30 gems', () => {
    assert.equal(document.gems.length, 30);
  });

  it('places every gem and nothing else', () => {
    assert.deepEqual(
      Object.keys(positions).sort(),
      document.gems.map(g => g.id).sort()
    );
  });

  it('puts every upstream gem wholly left of its downstream gem', () => {
    for (const { from, to } of document.connections) {
      assert.ok(
        positions[from].x + GEM_WIDTH <= positions[to].x,
        `${from} at x=${positions[from].x} is not left of ${to} at x=${positions[to].x}`
      );
    }
  });

  it('gives integer positions', () => {
    for (const [id, { x, y }] of Object.entries(positions)) {
      assert.ok(Number.isInteger(x) && Number.isInteger(y), `${id} at (${x}, ${y})`);
    }
  });

  it('lets no two gems overlap', () => {
    const entries = Object.entries(positions);
    for (let i = 0; i < entries.length; i++) {
      for (let j = i + 1; j < entries.length; j++) {
        const [a, pa] = entries[i];
        const [b, pb] = entries[j];
        assert.ok(!overlap(pa, pb), `${a} (${pa.x}, ${pa.y}) overlaps ${b} (${pb.x}, ${pb.y})`);
      }
    }
  });

  it('ignores connections to gems that are not in the pipeline', () => {
    const broken = pipeline([gem('a'), gem('b')], [link('a', 'b'), link('ghost', 'b')]);
    assert.deepEqual(Object.keys(autoLayout(broken)).sort(), ['a', 'b']);
  });

  it('places a pipeline without gems as nothing', () => {
    assert.deepEqual(autoLayout(pipeline([])), {});
  });
});
