/**
 * The run history as the Observe views keep it: which runs to ask for, how pages and
 * refreshes combine, and what a run to do again looks like. No JupyterLab here, so it is
 * unit-tested on its own.
 */
import {
  IAutomateRun,
  IRunRequest,
  RunStatus,
  TERMINAL_RUN_STATUSES,
  TriggerType
} from '../types';

/** How many runs one page of the history holds. */
export const PAGE_SIZE = 50;

export const RUN_STATUSES: readonly RunStatus[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled'
];

export const TRIGGER_TYPES: readonly TriggerType[] = [
  'manual',
  'api',
  'schedule',
  'file',
  'upstream',
  'retry'
];

/** The history's filters; '' leaves one out. */
export interface IRunFilters {
  status: string;
  target: string;
  trigger: string;
  schedule: string;
}

export const NO_FILTERS: IRunFilters = {
  status: '',
  target: '',
  trigger: '',
  schedule: ''
};

export function hasFilters(filters: IRunFilters): boolean {
  return Object.values(filters).some(Boolean);
}

/**
 * `?name=value&…` of the arguments given (undefined and null ones are left out), or '' when
 * there is none. The server refuses unknown arguments, so nothing is sent empty by accident.
 */
export function queryString(
  args: Record<string, string | number | null | undefined>
): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(args)) {
    if (value !== undefined && value !== null) {
      parts.push(
        `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`
      );
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** The query of one page of a project's runs: the filters set, older than `before`. */
export function runsQuery(
  project: string,
  filters: IRunFilters,
  before: string | null = null,
  limit = PAGE_SIZE
): string {
  const given = (value: string): string | undefined => value || undefined;
  return queryString({
    project,
    status: given(filters.status),
    target: given(filters.target),
    trigger: given(filters.trigger),
    schedule: given(filters.schedule),
    limit,
    before
  });
}

export function isActive(status: string): boolean {
  return !TERMINAL_RUN_STATUSES.has(status);
}

/** Whether any of the runs is queued or running, so the list must keep polling. */
export function anyActive(runs: readonly IAutomateRun[]): boolean {
  return runs.some(run => isActive(run.status));
}

function createdAt(run: IAutomateRun): number {
  const time = Date.parse(run.created);
  return Number.isNaN(time) ? 0 : time;
}

/** Newest first; runs created at the same moment keep their order. */
export function newestFirst(runs: readonly IAutomateRun[]): IAutomateRun[] {
  return [...runs].sort((a, b) => createdAt(b) - createdAt(a));
}

/** The list with an older page added after it; a run already listed is not repeated. */
export function appendPage(
  current: readonly IAutomateRun[],
  page: readonly IAutomateRun[]
): IAutomateRun[] {
  const known = new Set(current.map(run => run.id));
  return newestFirst([...current, ...page.filter(run => !known.has(run.id))]);
}

/**
 * The list after reading its first page again: the fresh page replaces every run as new as
 * its oldest (a run that no longer matches the filters goes), older pages loaded before
 * stay. A page shorter than `limit` is the whole history, so nothing else stays.
 */
export function refreshFirstPage(
  current: readonly IAutomateRun[],
  fresh: readonly IAutomateRun[],
  limit = PAGE_SIZE
): IAutomateRun[] {
  if (fresh.length < limit) {
    return newestFirst(fresh);
  }
  const oldest = Math.min(...fresh.map(createdAt));
  const ids = new Set(fresh.map(run => run.id));
  const older = current.filter(
    run => createdAt(run) < oldest && !ids.has(run.id)
  );
  return newestFirst([...fresh, ...older]);
}

/** The runs listed so far, and whether they reach back to the first run. */
export interface IHistory {
  runs: IAutomateRun[];
  complete: boolean;
}

/** The history after reading its first page (again). */
export function historyAfterRefresh(
  previous: IHistory | undefined,
  fresh: readonly IAutomateRun[],
  limit = PAGE_SIZE
): IHistory {
  const runs = refreshFirstPage(previous?.runs ?? [], fresh, limit);
  if (fresh.length < limit) {
    return { runs, complete: true };
  }
  // Older pages loaded before say how far back the history goes; without them it goes on.
  const olderKept = runs.length > fresh.length;
  return { runs, complete: olderKept ? (previous?.complete ?? false) : false };
}

/** The history with the page older than its last run added. */
export function historyWithPage(
  previous: IHistory,
  page: readonly IAutomateRun[],
  limit = PAGE_SIZE
): IHistory {
  return {
    runs: appendPage(previous.runs, page),
    complete: page.length < limit
  };
}

/** Where the next page starts (`before=`), or null when there is none. */
export function historyCursor(history: IHistory): string | null {
  const last = history.runs[history.runs.length - 1];
  return history.complete || !last ? null : last.created;
}

/** The request that runs the same target again, on the same fabric with the same parameters. */
export function rerunRequest(run: IAutomateRun): IRunRequest {
  const target =
    run.kind === 'notebook'
      ? { notebook: run.target }
      : { pipeline: run.target };
  return {
    project: run.project,
    ...target,
    fabric: run.fabric,
    parameters: run.parameters
  };
}

/** The names the target filter offers: every one given, once each, sorted. */
export function targetChoices(
  ...lists: readonly (readonly string[])[]
): string[] {
  return [...new Set(lists.flat().filter(Boolean))].sort((a, b) =>
    a.localeCompare(b)
  );
}
