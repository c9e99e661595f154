import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  commitRequest,
  groupChanges,
  groupCheck,
  groupLabel,
  pruneExcluded,
  selectedPaths,
  shortCommit,
  splitPath,
  statusLetter,
  toggleFile,
  toggleGroup,
  trackingText
} from '../src/git/changes';
import {
  NO_CHOICES,
  choose,
  chooseAll,
  chooseText,
  conflictCount,
  conflictField,
  needsResolution,
  pathSegments,
  resolution,
  showValue,
  sideOf,
  unresolvedCount
} from '../src/git/conflicts';
import { ShownDiffs } from '../src/git/diffs';
import {
  canvasMarks,
  edgeKey,
  fieldLabel,
  marksSummary,
  readPipelineDiff
} from '../src/git/marks';
import { IMergeResult, IPipelineDiff, IVcsChange } from '../src/types';
import { gem, link, pipeline } from './helpers';

function change(path: string, group: string, status = 'modified'): IVcsChange {
  const match = /^pipelines\/(.+)\.pipeline\.json$/.exec(path);
  return { path, status, group, pipeline: match ? match[1] : null };
}

const CHANGES = [
  change('notebooks/explore.ipynb', 'notebooks', 'untracked'),
  change('pipelines/top_products.pipeline.json', 'pipelines'),
  change('fabrics/warehouse.yml', 'fabrics', 'added'),
  change('pipelines/customer_totals.pipeline.json', 'pipelines'),
  change('schedules/nightly.yml', 'schedules', 'deleted'),
  change('README.md', 'docs'),
  change('prophecy_project.yml', 'project')
];

describe('groupChanges', () => {
  it('orders groups as the panel shows them, unknown groups last, files by path', () => {
    const groups = groupChanges(CHANGES);
    assert.deepEqual(
      groups.map(g => g.group),
      ['pipelines', 'schedules', 'fabrics', 'notebooks', 'project', 'docs']
    );
    assert.deepEqual(
      groups[0].changes.map(c => c.pipeline),
      ['customer_totals', 'top_products']
    );
    assert.equal(groups[0].label, 'Pipelines');
    assert.equal(groups[4].label, 'Project settings');
    assert.equal(groups[5].label, 'Docs');
  });

  it('puts a change without a group in Other files', () => {
    const groups = groupChanges([{ ...change('x.bin', ''), group: '' }]);
    assert.equal(groups[0].group, 'other');
    assert.equal(groups[0].label, 'Other files');
  });

  it('names groups the panel does not know from their key', () => {
    assert.equal(groupLabel('sql_models'), 'Sql models');
    assert.equal(groupLabel(''), 'Other files');
  });

  it('has no group for no change', () => {
    assert.deepEqual(groupChanges([]), []);
  });
});

describe('the checked files', () => {
  it('starts with every file checked', () => {
    const none = new Set<string>();
    assert.deepEqual(
      selectedPaths(CHANGES, none),
      CHANGES.map(c => c.path)
    );
    for (const group of groupChanges(CHANGES)) {
      assert.equal(groupCheck(group, none), 'all');
    }
  });

  it('unchecks and checks one file again', () => {
    const path = 'fabrics/warehouse.yml';
    const out = toggleFile(new Set(), path);
    assert.ok(!selectedPaths(CHANGES, out).includes(path));
    assert.ok(selectedPaths(CHANGES, toggleFile(out, path)).includes(path));
  });

  it('a group checkbox unchecks a full group and checks a partial one whole', () => {
    const [pipelines] = groupChanges(CHANGES);
    const none = toggleGroup(new Set(), pipelines);
    assert.equal(groupCheck(pipelines, none), 'none');
    assert.deepEqual(
      selectedPaths(CHANGES, none).filter(p => p.startsWith('pipelines/')),
      []
    );
    const some = toggleFile(none, 'pipelines/top_products.pipeline.json');
    assert.equal(groupCheck(pipelines, some), 'some');
    assert.equal(groupCheck(pipelines, toggleGroup(some, pipelines)), 'all');
    assert.equal(groupCheck(pipelines, toggleGroup(none, pipelines)), 'all');
  });

  it('does not touch other groups', () => {
    const groups = groupChanges(CHANGES);
    const excluded = toggleGroup(new Set(), groups[0]);
    assert.equal(groupCheck(groups[1], excluded), 'all');
  });

  it('forgets unchecked files that are no longer changed, and checks new ones', () => {
    const excluded = new Set(['README.md', 'gone.txt']);
    const pruned = pruneExcluded(excluded, CHANGES);
    assert.deepEqual([...pruned], ['README.md']);
    const more = [...CHANGES, change('pipelines/new.pipeline.json', 'pipelines')];
    assert.ok(
      selectedPaths(more, pruned).includes('pipelines/new.pipeline.json')
    );
  });
});

describe('commitRequest', () => {
  it('sends the message and the checked paths', () => {
    const excluded = new Set(['README.md']);
    const request = commitRequest('  Add fabrics \n', CHANGES, excluded);
    assert.ok('paths' in request);
    assert.equal(request.message, 'Add fabrics');
    assert.equal(request.paths.length, CHANGES.length - 1);
    assert.ok(!request.paths.includes('README.md'));
  });

  it('says what is missing', () => {
    assert.deepEqual(commitRequest('', CHANGES, new Set()), {
      problem: 'Write a commit message'
    });
    const all = new Set(CHANGES.map(c => c.path));
    assert.deepEqual(commitRequest('msg', CHANGES, all), {
      problem: 'Check the files to commit'
    });
    assert.deepEqual(commitRequest('msg', [], new Set()), {
      problem: 'Check the files to commit'
    });
  });
});

describe('small labels', () => {
  it('marks a file by the letter of its change', () => {
    assert.equal(statusLetter('modified'), 'M');
    assert.equal(statusLetter('untracked'), 'U');
    assert.equal(statusLetter('deleted'), 'D');
    assert.equal(statusLetter('weird'), 'W');
    assert.equal(statusLetter(''), '?');
  });

  it('splits a path into its name and folder', () => {
    assert.deepEqual(splitPath('pipelines/a.pipeline.json'), {
      name: 'a.pipeline.json',
      folder: 'pipelines'
    });
    assert.deepEqual(splitPath('README.md'), { name: 'README.md', folder: '' });
  });

  it('shows how far the branch is from its upstream', () => {
    const status = { branch: 'main', ahead: 2, behind: 1, changes: [] };
    assert.equal(trackingText(status), '↑2 ↓1');
    assert.equal(trackingText({ ...status, behind: 0 }), '↑2');
    assert.equal(trackingText({ ...status, ahead: 0, behind: 0 }), '');
  });

  it('shortens a commit id', () => {
    assert.equal(shortCommit('0123456789abcdef'), '0123456');
    assert.equal(shortCommit(null), '');
  });
});

const MERGE: IMergeResult = {
  merged: false,
  commit: null,
  conflicts: [
    {
      path: 'pipelines/customer_totals.pipeline.json',
      pipeline: 'customer_totals',
      conflicts: [
        {
          path: '/gems/shipped/properties/condition',
          gem_id: 'shipped',
          reason: 'both changed',
          base: "status = 'shipped'",
          ours: "status = 'delivered'",
          theirs: "status IN ('shipped', 'delivered')"
        },
        {
          path: '/gems/by_customer/position',
          gem_id: 'by_customer',
          reason: 'both moved',
          base: { x: 0, y: 0 },
          ours: { x: 10, y: 0 },
          theirs: null
        }
      ]
    }
  ],
  text_conflicts: ['README.md']
};
const FILE = 'pipelines/customer_totals.pipeline.json';

describe('conflict choices', () => {
  it('counts every conflict, none chosen at first', () => {
    assert.equal(conflictCount(MERGE), 3);
    assert.equal(unresolvedCount(MERGE, NO_CHOICES), 3);
    assert.equal(resolution(MERGE, NO_CHOICES), null);
    assert.ok(needsResolution(MERGE));
  });

  it('finishes only when each conflict has a side', () => {
    let choices = choose(NO_CHOICES, FILE, '/gems/shipped/properties/condition', 'theirs');
    assert.equal(sideOf(choices, FILE, '/gems/shipped/properties/condition'), 'theirs');
    assert.equal(unresolvedCount(MERGE, choices), 2);
    choices = choose(choices, FILE, '/gems/by_customer/position', 'ours');
    assert.equal(resolution(MERGE, choices), null);
    choices = chooseText(choices, 'README.md', 'ours');
    assert.deepEqual(resolution(MERGE, choices), {
      choices: {
        [FILE]: {
          '/gems/shipped/properties/condition': 'theirs',
          '/gems/by_customer/position': 'ours'
        }
      },
      text: { 'README.md': 'ours' }
    });
  });

  it('changes a choice without touching the others, and leaves the old state alone', () => {
    const first = chooseAll(MERGE, 'ours');
    const second = choose(first, FILE, '/gems/shipped/properties/condition', 'theirs');
    assert.equal(sideOf(first, FILE, '/gems/shipped/properties/condition'), 'ours');
    assert.equal(sideOf(second, FILE, '/gems/shipped/properties/condition'), 'theirs');
    assert.equal(sideOf(second, FILE, '/gems/by_customer/position'), 'ours');
    assert.equal(second.text['README.md'], 'ours');
  });

  it('sends only the conflicts of this merge', () => {
    let choices = chooseAll(MERGE, 'theirs');
    choices = choose(choices, 'pipelines/other.pipeline.json', 'x', 'ours');
    const body = resolution(MERGE, choices);
    assert.ok(body);
    assert.deepEqual(Object.keys(body.choices), [FILE]);
  });

  it('a merge that went through, or with nothing to settle, needs no view', () => {
    assert.ok(!needsResolution(null));
    assert.ok(!needsResolution({ ...MERGE, merged: true }));
    assert.ok(
      !needsResolution({ ...MERGE, conflicts: [], text_conflicts: [] })
    );
  });

  it('shows values and names the property without its gem', () => {
    assert.equal(showValue(null), '(none)');
    assert.equal(showValue(undefined), '(none)');
    assert.equal(showValue("a = 'b'"), "a = 'b'");
    assert.equal(showValue({ x: 1 }), '{\n "x": 1\n}');
    const [condition, position] = MERGE.conflicts[0].conflicts;
    assert.equal(conflictField(condition), 'condition');
    assert.equal(conflictField(position), 'position');
    assert.equal(
      conflictField({ ...condition, gem_id: null, path: '/description' }),
      'description'
    );
    assert.equal(
      conflictField({ ...condition, path: '/gems/shipped' }),
      'the gem'
    );
    assert.equal(
      conflictField({
        ...condition,
        path: '/gems/shipped/properties/columns/month/expression'
      }),
      'columns.month.expression'
    );
    assert.deepEqual(pathSegments('/gems/a~1b/x~0y'), ['gems', 'a/b', 'x~y']);
    assert.deepEqual(pathSegments('properties.condition'), [
      'properties',
      'condition'
    ]);
  });
});

const DIFF: IPipelineDiff = {
  name: 'customer_totals',
  gems: [
    {
      id: 'shipped',
      status: 'changed',
      kind: 'Filter',
      fields: ['/properties/condition'],
      moved: false
    },
    { id: 'ranked', status: 'changed', kind: 'Reformat', fields: [], moved: true },
    { id: 'extra', status: 'added', kind: 'Filter', fields: [], moved: false },
    { id: 'old', status: 'removed', kind: 'Limit', fields: [], moved: false },
    { id: 'ghost', status: 'changed', kind: 'Filter', fields: ['/label'], moved: false }
  ],
  connections: [
    { status: 'added', from: 'shipped', to: 'extra', port: 'in0' },
    { status: 'removed', from: 'shipped', to: 'old', port: 'in0' }
  ],
  fields: ['/description']
};

describe('canvasMarks', () => {
  const document = pipeline(
    [gem('orders', 'Source'), gem('shipped'), gem('ranked', 'Reformat'), gem('extra')],
    [link('orders', 'shipped'), link('shipped', 'extra')]
  );

  it('marks added and changed gems with their changed fields', () => {
    const marks = canvasMarks(DIFF, document);
    assert.deepEqual([...marks.gems.keys()].sort(), ['extra', 'ranked', 'shipped']);
    const shipped = marks.gems.get('shipped');
    assert.equal(shipped?.status, 'changed');
    assert.deepEqual(shipped?.fields, ['condition']);
    assert.equal(shipped?.title, 'shipped changed: condition');
    assert.equal(shipped?.badge, 'changed');
    assert.equal(marks.gems.get('extra')?.status, 'added');
    assert.equal(marks.gems.get('extra')?.badge, 'added');
    assert.equal(marks.gems.get('orders'), undefined);
  });

  it('calls a gem that only moved moved', () => {
    const ranked = canvasMarks(DIFF, document).gems.get('ranked');
    assert.deepEqual(ranked?.fields, ['position']);
    assert.equal(ranked?.badge, 'moved');
    const both = canvasMarks(
      { ...DIFF, gems: [{ ...DIFF.gems[0], moved: true }] },
      document
    ).gems.get('shipped');
    assert.deepEqual(both?.fields, ['condition', 'position']);
    assert.equal(both?.badge, 'changed');
  });

  it('lists removed gems and connections for the banner', () => {
    const marks = canvasMarks(DIFF, document);
    assert.deepEqual(marks.removed.map(g => g.id), ['old']);
    assert.deepEqual(marks.removedConnections.map(c => c.to), ['old']);
    assert.ok(marks.addedEdges.has(edgeKey(link('shipped', 'extra'))));
    assert.deepEqual(marks.documentFields, ['description']);
  });

  it('leaves out gems the document no longer has, and removed ones it has again', () => {
    const again = pipeline([gem('old', 'Limit')]);
    const marks = canvasMarks(DIFF, again);
    assert.equal(marks.gems.size, 0);
    assert.deepEqual(marks.removed, []);
  });

  it('without a document trusts the diff', () => {
    const marks = canvasMarks(DIFF);
    assert.equal(marks.gems.size, 4);
    assert.equal(marks.removed.length, 1);
  });

  it('sums the change up', () => {
    assert.equal(
      marksSummary(canvasMarks(DIFF, document)),
      '4 gems: 1 added, 2 changed, 1 removed; 2 connections changed; pipeline description changed'
    );
    assert.equal(
      marksSummary(canvasMarks({ name: 'x', gems: [], connections: [], fields: [] })),
      'No gem changed'
    );
  });

  it('reads a diff in either spelling, leaving out what is not JSON it knows', () => {
    const read = readPipelineDiff({
      name: 'p',
      fields: ['/description', 3],
      gems: [
        { id: 'a', status: 'added', kind: 'Filter', fields: [], moved: false },
        { gem_id: 'b', status: 'changed', kind: 'Filter', fields: ['/label'], moved: true },
        'junk'
      ],
      connections: [
        { status: 'added', from: 'a', to: 'b', port: 'in0' },
        { status: 'removed', source: 'b', target: 'c' }
      ]
    });
    assert.deepEqual(read.fields, ['/description']);
    assert.deepEqual(read.gems.map(g => [g.id, g.status, g.moved]), [
      ['a', 'added', false],
      ['b', 'changed', true]
    ]);
    assert.deepEqual(read.connections[1], {
      status: 'removed',
      from: 'b',
      to: 'c',
      port: 'in0'
    });
    assert.deepEqual(readPipelineDiff(null), {
      name: '',
      fields: [],
      gems: [],
      connections: []
    });
  });

  it('reads field paths in any spelling', () => {
    assert.equal(fieldLabel('properties/condition'), 'condition');
    assert.equal(fieldLabel('/properties/condition'), 'condition');
    assert.equal(fieldLabel('properties.columns.0.expression'), 'columns.0.expression');
    assert.equal(fieldLabel('label'), 'label');
    assert.equal(fieldLabel('properties'), 'properties');
  });
});

describe('ShownDiffs', () => {
  const shown = (project: string, name: string) => ({
    project,
    name,
    diff: { ...DIFF, name },
    against: 'the last commit'
  });

  it('keeps one diff per pipeline and tells its readers of every change', () => {
    const store = new ShownDiffs();
    let calls = 0;
    const stop = store.subscribe(() => calls++);
    store.show(shown('shop', 'a'));
    store.show(shown('shop', 'b'));
    store.show(shown('other', 'a'));
    assert.equal(store.get('shop', 'a')?.name, 'a');
    assert.equal(store.get('shop', 'c'), undefined);
    assert.equal(calls, 3);
    store.hide('shop', 'a');
    store.hide('shop', 'a');
    assert.equal(calls, 4);
    assert.equal(store.get('shop', 'a'), undefined);
    stop();
    store.clear();
    assert.equal(calls, 4);
    assert.equal(store.get('other', 'a'), undefined);
  });

  it('forgets the diffs of pipelines no longer changed, in that project only', () => {
    const store = new ShownDiffs();
    store.show(shown('shop', 'a'));
    store.show(shown('shop', 'b'));
    store.show(shown('other', 'a'));
    const before = store.version;
    store.keepOnly('shop', new Set(['b']));
    assert.ok(store.version > before);
    assert.equal(store.get('shop', 'a'), undefined);
    assert.ok(store.get('shop', 'b'));
    assert.ok(store.get('other', 'a'));
    store.clear('shop');
    assert.ok(store.get('other', 'a'));
    assert.equal(store.get('shop', 'b'), undefined);
  });
});
