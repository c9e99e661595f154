import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  deploymentContents,
  formatDuration,
  formatLocal,
  formatRelative,
  notebookFileName,
  parameterText,
  runSeconds,
  scheduleTriggerLabel,
  triggerLabel
} from '../src/observe/format';
import {
  NO_FILTERS,
  anyActive,
  hasFilters,
  historyAfterRefresh,
  historyCursor,
  historyWithPage,
  queryString,
  refreshFirstPage,
  rerunRequest,
  runsQuery,
  targetChoices
} from '../src/observe/history';
import { IAutomateRun, IDeployment, RunStatus } from '../src/types';

const T0 = Date.parse('2025-03-10T12:00:00Z');

/** A run created `minute` minutes after T0. */
function run(id: string, minute = 0, status: RunStatus = 'succeeded'): IAutomateRun {
  return {
    id,
    project: 'shop',
    kind: 'pipeline',
    target: 'customer_totals',
    fabric: 'in-memory',
    parameters: { min_total: 500 },
    trigger: { type: 'manual', schedule: null, fire_time: null, detail: null },
    status,
    attempt: 1,
    created: new Date(T0 + minute * 60_000).toISOString(),
    started: null,
    finished: null,
    seconds: null,
    error: null,
    issues: [],
    gems: [],
    output_notebook: false,
    deployment: null
  };
}

const ids = (runs: IAutomateRun[]): string[] => runs.map(r => r.id);

describe('runsQuery', () => {
  it('sends the project, the page size and only the filters that are set', () => {
    assert.equal(
      runsQuery('team/shop', { ...NO_FILTERS, status: 'failed' }),
      '?project=team%2Fshop&status=failed&limit=50'
    );
  });

  it('sends every filter and where the page starts', () => {
    const query = runsQuery(
      'shop',
      { status: 'running', target: 'a b', trigger: 'schedule', schedule: 'nightly' },
      '2025-03-10T12:00:00.000+00:00',
      10
    );
    assert.equal(
      query,
      '?project=shop&status=running&target=a%20b&trigger=schedule&schedule=nightly' +
        '&limit=10&before=2025-03-10T12%3A00%3A00.000%2B00%3A00'
    );
  });

  it('names the root project with an empty value', () => {
    assert.equal(runsQuery('', NO_FILTERS), '?project=&limit=50');
  });
});

describe('queryString', () => {
  it('is empty without arguments and leaves out undefined and null ones', () => {
    assert.equal(queryString({}), '');
    assert.equal(queryString({ a: undefined, b: null }), '');
    assert.equal(queryString({ a: 1, b: undefined }), '?a=1');
  });
});

describe('hasFilters', () => {
  it('is true once any filter is set', () => {
    assert.equal(hasFilters(NO_FILTERS), false);
    assert.equal(hasFilters({ ...NO_FILTERS, trigger: 'file' }), true);
  });
});

describe('anyActive', () => {
  it('is true while a run is queued or running', () => {
    assert.equal(anyActive([]), false);
    assert.equal(anyActive([run('a'), run('b', 1, 'failed')]), false);
    assert.equal(anyActive([run('a'), run('b', 1, 'queued')]), true);
    assert.equal(anyActive([run('a', 0, 'running')]), true);
  });
});

describe('the history', () => {
  const page = (from: number, count: number): IAutomateRun[] =>
    Array.from({ length: count }, (_, i) => run(`r${from - i}`, from - i));

  it('is complete when the first page is not full', () => {
    const history = historyAfterRefresh(undefined, [run('a', 1), run('b', 2)], 3);
    assert.deepEqual(ids(history.runs), ['b', 'a']);
    assert.equal(history.complete, true);
    assert.equal(historyCursor(history), null);
  });

  it('goes on from its last run when the page is full', () => {
    const history = historyAfterRefresh(undefined, page(9, 3), 3);
    assert.equal(history.complete, false);
    assert.equal(historyCursor(history), run('r7', 7).created);
  });

  it('adds older pages without repeating a run, and ends on a short one', () => {
    let history = historyAfterRefresh(undefined, page(9, 3), 3);
    history = historyWithPage(history, page(7, 3), 3);
    assert.deepEqual(ids(history.runs), ['r9', 'r8', 'r7', 'r6', 'r5']);
    assert.equal(history.complete, false);
    history = historyWithPage(history, page(5, 2), 3);
    assert.deepEqual(ids(history.runs), ['r9', 'r8', 'r7', 'r6', 'r5', 'r4']);
    assert.equal(history.complete, true);
  });

  it('keeps older pages when the first page is read again', () => {
    let history = historyAfterRefresh(undefined, page(9, 3), 3);
    history = historyWithPage(history, page(6, 3), 3);
    const fresh = [run('r10', 10, 'running'), run('r9', 9), run('r8', 8)];
    history = historyAfterRefresh(history, fresh, 3);
    assert.deepEqual(ids(history.runs), ['r10', 'r9', 'r8', 'r7', 'r6', 'r5', 'r4']);
    assert.equal(history.runs[0].status, 'running');
    assert.equal(history.complete, false);
  });

  it('drops a run of the first page that no longer matches', () => {
    const before = [run('b', 2, 'running'), run('a', 1, 'running')];
    // Filtered on running: b finished and is no longer listed.
    assert.deepEqual(ids(refreshFirstPage(before, [run('a', 1, 'running')], 50)), ['a']);
  });

  it('is newest first whatever order the pages come in', () => {
    const history = historyAfterRefresh(undefined, [run('a', 1), run('c', 3), run('b', 2)]);
    assert.deepEqual(ids(history.runs), ['c', 'b', 'a']);
  });
});

describe('rerunRequest', () => {
  it('runs the same pipeline on the same fabric with the same parameters', () => {
    assert.deepEqual(rerunRequest(run('a')), {
      project: 'shop',
      pipeline: 'customer_totals',
      fabric: 'in-memory',
      parameters: { min_total: 500 }
    });
  });

  it('names a notebook as a notebook', () => {
    const notebook = { ...run('a'), kind: 'notebook' as const, target: 'nb/report.ipynb' };
    const request = rerunRequest(notebook);
    assert.equal(request.notebook, 'nb/report.ipynb');
    assert.equal(request.pipeline, undefined);
  });
});

describe('targetChoices', () => {
  it('lists each name once, sorted, without empty ones', () => {
    assert.deepEqual(targetChoices(['b', 'a'], ['a', ''], ['c']), ['a', 'b', 'c']);
  });
});

describe('formatRelative', () => {
  const now = new Date(T0);
  const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

  it('says how far ahead a moment is', () => {
    assert.equal(formatRelative(at(20), now), 'in less than a minute');
    assert.equal(formatRelative(at(180), now), 'in 3 min');
    assert.equal(formatRelative(at(50), now), 'in 1 min');
    assert.equal(formatRelative(at(14 * 3600), now), 'in 14 h');
    assert.equal(formatRelative(at(3 * 86400), now), 'in 3 days');
    assert.equal(formatRelative(at(36 * 3600), now), 'in 2 days');
  });

  it('says how long ago a moment was', () => {
    assert.equal(formatRelative(at(-10), now), 'just now');
    assert.equal(formatRelative(at(-300), now), '5 min ago');
    assert.equal(formatRelative(at(-2 * 3600), now), '2 h ago');
    assert.equal(formatRelative(at(-86400 * 1.6), now), '2 days ago');
  });

  it('is empty for no moment or one it cannot read', () => {
    assert.equal(formatRelative(null, now), '');
    assert.equal(formatRelative('soon', now), '');
  });
});

describe('formatLocal', () => {
  const now = new Date(2025, 2, 10, 15, 0);

  it('shows the time alone today and names tomorrow and yesterday', () => {
    const today = formatLocal(new Date(2025, 2, 10, 2, 0).toISOString(), now);
    assert.doesNotMatch(today, /tomorrow|yesterday|Mar/);
    assert.match(today, /02|2/);
    assert.match(formatLocal(new Date(2025, 2, 11, 2, 0).toISOString(), now), /^tomorrow /);
    assert.match(formatLocal(new Date(2025, 2, 9, 2, 0).toISOString(), now), /^yesterday /);
  });

  it('shows the day further away, and the year only when it is not this one', () => {
    const later = formatLocal(new Date(2025, 2, 20, 2, 0).toISOString(), now);
    assert.match(later, /20/);
    assert.doesNotMatch(later, /2025/);
    assert.match(formatLocal(new Date(2026, 0, 5, 2, 0).toISOString(), now), /2026/);
  });

  it('shows a dash for no moment', () => {
    assert.equal(formatLocal(null, now), '—');
  });
});

describe('formatDuration', () => {
  it('is precise for short runs and in minutes and hours for long ones', () => {
    assert.equal(formatDuration(null), '');
    assert.equal(formatDuration(0.0052), '5 ms');
    assert.equal(formatDuration(0.4213), '421 ms');
    assert.equal(formatDuration(2.4213), '2.42 s');
    assert.equal(formatDuration(12.34), '12.3 s');
    assert.equal(formatDuration(125), '2 min 5 s');
    assert.equal(formatDuration(120), '2 min');
    assert.equal(formatDuration(3 * 3600 + 4 * 60 + 10), '3 h 4 min');
  });
});

describe('runSeconds', () => {
  it('is the recorded duration, or the time since the start while running', () => {
    assert.equal(runSeconds({ ...run('a'), seconds: 1.5 }), 1.5);
    assert.equal(runSeconds(run('a')), null);
    const started = { ...run('a', 0, 'running'), started: new Date(T0).toISOString() };
    assert.equal(runSeconds(started, new Date(T0 + 4000)), 4);
  });
});

describe('triggerLabel', () => {
  const trigger = (
    type: IAutomateRun['trigger']['type'],
    schedule: string | null = null,
    detail: string | null = null
  ) => ({ type, schedule, detail, fire_time: null });

  it('names what started the run, and the schedule it fired for', () => {
    assert.equal(triggerLabel(trigger('manual')), 'manual');
    assert.equal(triggerLabel(trigger('api')), 'API');
    assert.equal(triggerLabel(trigger('schedule', 'nightly')), 'schedule nightly');
    assert.equal(triggerLabel(trigger('api', 'nightly', 'run now')), 'run now · nightly');
    assert.equal(
      triggerLabel(trigger('file', 'landing', 'file data/in.csv')),
      'file data/in.csv · landing'
    );
    assert.equal(triggerLabel(trigger('upstream', null, 'after run 5f3c')), 'after run 5f3c');
    assert.equal(triggerLabel(trigger('retry')), 'retry');
  });
});

describe('scheduleTriggerLabel', () => {
  it('says which file or which job the schedule waits for', () => {
    assert.equal(
      scheduleTriggerLabel({ type: 'file', path: 'data/in/*.csv' }),
      'when data/in/*.csv arrives'
    );
    assert.equal(
      scheduleTriggerLabel({ type: 'upstream', pipeline: 'clean_contacts' }),
      'after pipeline clean_contacts succeeds'
    );
    assert.equal(
      scheduleTriggerLabel({ type: 'upstream', schedule: 'nightly' }),
      'after schedule nightly succeeds'
    );
  });
});

describe('deploymentContents', () => {
  const deployment = (pipelines: string[], schedules: string[]): IDeployment => ({
    id: 'd1',
    project: 'shop',
    fabric: 'in-memory',
    created: '2025-03-10T12:00:00Z',
    active: true,
    release: null,
    commit: null,
    pipelines,
    schedules,
    notebooks: []
  });

  it('counts what the deployment holds', () => {
    assert.equal(deploymentContents(deployment(['a', 'b'], ['n'])), '2 pipelines · 1 schedule');
    assert.equal(deploymentContents(deployment([], [])), 'nothing');
  });
});

describe('parameterText and notebookFileName', () => {
  it('shows strings bare and other values as JSON', () => {
    assert.equal(parameterText('EU'), 'EU');
    assert.equal(parameterText(500), '500');
    assert.equal(parameterText([1, 'a']), '[1,"a"]');
  });

  it('names the output notebook after the notebook and the run', () => {
    const notebook = { ...run('4f2a/9'), kind: 'notebook' as const, target: 'nb/report.ipynb' };
    assert.equal(notebookFileName(notebook), 'report-run-4f2a_9.ipynb');
  });
});
