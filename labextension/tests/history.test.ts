import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { History } from '../src/graph/history';
import { GraphAction, GraphError } from '../src/graph/state';
import { IPipelineDocument } from '../src/types';
import { gem, gemById, pipeline } from './helpers';

function start(): IPipelineDocument {
  return pipeline([gem('a', 'Filter', 0, 0), gem('b', 'Filter', 200, 0)]);
}

/** Move gem `a` to x; each distinct x makes a distinct document. */
function moveA(x: number): GraphAction {
  return { type: 'moveGems', positions: { a: { x, y: 0 } } };
}

function setCondition(condition: string): GraphAction {
  return { type: 'setProperties', id: 'a', properties: { condition } };
}

function xOfA(document: IPipelineDocument): number | undefined {
  return gemById(document, 'a').position?.x;
}

describe('History', () => {
  it('starts with nothing to undo or redo', () => {
    const history = new History(start());
    assert.equal(history.canUndo, false);
    assert.equal(history.canRedo, false);
  });

  it('returns and holds the edited document', () => {
    const history = new History(start());
    const next = history.apply(moveA(10));
    assert.equal(history.document, next);
    assert.equal(xOfA(next), 10);
  });

  it('undoes edits from the newest to the oldest', () => {
    const first = start();
    const history = new History(first);
    history.apply(moveA(10));
    history.apply(moveA(20));
    history.apply(moveA(30));
    assert.equal(xOfA(history.undo()), 20);
    assert.equal(xOfA(history.undo()), 10);
    assert.equal(history.undo(), first);
    assert.equal(history.canUndo, false);
  });

  it('redoes undone edits from the oldest to the newest', () => {
    const history = new History(start());
    history.apply(moveA(10));
    history.apply(moveA(20));
    history.apply(moveA(30));
    history.undo();
    history.undo();
    history.undo();
    assert.equal(xOfA(history.redo()), 10);
    assert.equal(xOfA(history.redo()), 20);
    assert.equal(xOfA(history.redo()), 30);
    assert.equal(history.canRedo, false);
  });

  it('gives back the very documents it replaced', () => {
    const history = new History(start());
    const one = history.apply(moveA(10));
    const two = history.apply(moveA(20));
    assert.equal(history.undo(), one);
    assert.equal(history.redo(), two);
  });

  it('does nothing on undo with nothing to undo', () => {
    const first = start();
    const history = new History(first);
    assert.equal(history.undo(), first);
    assert.equal(history.canRedo, false);
  });

  it('does nothing on redo with nothing to redo', () => {
    const history = new History(start());
    const one = history.apply(moveA(10));
    assert.equal(history.redo(), one);
    assert.equal(history.canUndo, true);
  });

  it('clears redo when a new edit is made', () => {
    const history = new History(start());
    history.apply(moveA(10));
    history.apply(moveA(20));
    history.undo();
    assert.equal(history.canRedo, true);
    history.apply(moveA(99));
    assert.equal(history.canRedo, false);
    assert.equal(xOfA(history.redo()), 99);
  });

  it('undoes edits sharing a coalesce key in a row as one step', () => {
    const first = start();
    const history = new History(first);
    history.apply(setCondition('x'), 'a.condition');
    history.apply(setCondition('x >'), 'a.condition');
    history.apply(setCondition('x > 1'), 'a.condition');
    assert.equal(history.undo(), first);
    assert.equal(history.canUndo, false);
  });

  it('redoes a coalesced step to its last edit', () => {
    const history = new History(start());
    history.apply(setCondition('x'), 'a.condition');
    history.apply(setCondition('x > 1'), 'a.condition');
    history.undo();
    assert.deepEqual(gemById(history.redo(), 'a').properties, { condition: 'x > 1' });
  });

  it('does not coalesce edits with different keys', () => {
    const history = new History(start());
    history.apply(setCondition('x'), 'a.condition');
    const afterFirst = history.document;
    history.apply(moveA(50), 'a.position');
    assert.equal(history.undo(), afterFirst);
  });

  it('does not coalesce edits without a key', () => {
    const history = new History(start());
    const one = history.apply(moveA(10));
    history.apply(moveA(20));
    assert.equal(history.undo(), one);
  });

  it('starts a new step for a keyed edit after an undo', () => {
    const history = new History(start());
    const one = history.apply(moveA(10));
    history.apply(setCondition('x'), 'a.condition');
    history.undo();
    history.apply(setCondition('y'), 'a.condition');
    history.apply(setCondition('y > 1'), 'a.condition');
    assert.equal(history.undo(), one);
  });

  it('starts a new step for a keyed edit after a redo', () => {
    const history = new History(start());
    const one = history.apply(setCondition('x'), 'a.condition');
    history.undo();
    history.redo();
    history.apply(setCondition('x > 1'), 'a.condition');
    assert.equal(history.undo(), one);
  });

  it('keeps at most `limit` steps, dropping the oldest', () => {
    const history = new History(start(), 3);
    for (const x of [10, 20, 30, 40, 50]) {
      history.apply(moveA(x));
    }
    assert.equal(xOfA(history.undo()), 40);
    assert.equal(xOfA(history.undo()), 30);
    assert.equal(xOfA(history.undo()), 20);
    assert.equal(history.canUndo, false);
  });

  it('clears both stacks on reset and holds the new document', () => {
    const history = new History(start());
    history.apply(moveA(10));
    history.apply(moveA(20));
    history.undo();
    const loaded = pipeline([gem('c')]);
    history.reset(loaded);
    assert.equal(history.document, loaded);
    assert.equal(history.canUndo, false);
    assert.equal(history.canRedo, false);
  });

  it('does not coalesce the first keyed edit after a reset with one before it', () => {
    const history = new History(start());
    history.apply(setCondition('x'), 'a.condition');
    const loaded = start();
    history.reset(loaded);
    history.apply(setCondition('y'), 'a.condition');
    assert.equal(history.undo(), loaded);
  });

  it('pushes nothing for an edit that changes nothing', () => {
    const first = start();
    const history = new History(first);
    const next = history.apply({ type: 'renameGem', id: 'a', newId: 'a' });
    assert.equal(next, first);
    assert.equal(history.canUndo, false);
  });

  it('keeps redo after an edit that changes nothing', () => {
    const history = new History(start());
    history.apply(moveA(10));
    history.undo();
    history.apply({ type: 'renameGem', id: 'a', newId: 'a' });
    assert.equal(history.canRedo, true);
  });

  it('is left as it was by an edit that fails', () => {
    const history = new History(start());
    const one = history.apply(moveA(10));
    assert.throws(
      () => history.apply({ type: 'renameGem', id: 'a', newId: 'b' }),
      GraphError
    );
    assert.equal(history.document, one);
    assert.equal(xOfA(history.undo()), 0);
    assert.equal(history.canUndo, false);
  });
});
