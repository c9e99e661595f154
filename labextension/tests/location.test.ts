import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { locatePipeline, pipelineFile } from '../src/graph/location';

describe('locatePipeline', () => {
  it('reads the project folder and the name of a pipeline file', () => {
    assert.deepEqual(locatePipeline('team/shop/pipelines/orders.pipeline.json'), {
      project: 'team/shop',
      name: 'orders'
    });
  });

  it('names the root project with an empty path', () => {
    assert.deepEqual(locatePipeline('pipelines/orders.pipeline.json'), {
      project: '',
      name: 'orders'
    });
  });

  it('knows no project for a pipeline file outside a pipelines folder', () => {
    assert.equal(locatePipeline('shop/orders.pipeline.json'), null);
    assert.equal(locatePipeline('shop/pipelines/nested/orders.pipeline.json'), null);
    assert.equal(locatePipeline('shop/pipelines/orders.json'), null);
  });
});

describe('pipelineFile', () => {
  it('is where locatePipeline finds the same project and name', () => {
    for (const project of ['', 'shop', 'team/shop']) {
      assert.deepEqual(locatePipeline(pipelineFile(project, 'orders')), {
        project,
        name: 'orders'
      });
    }
  });
});
