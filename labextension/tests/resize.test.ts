import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { clampWidth, MAX_WIDTH, MIN_WIDTH } from '../src/editor/resize';

describe('clampWidth', () => {
  it('keeps a panel between its narrowest and widest, in whole pixels', () => {
    assert.equal(clampWidth(320.4), 320);
    assert.equal(clampWidth(10), MIN_WIDTH);
    assert.equal(clampWidth(5000), MAX_WIDTH);
  });
});
