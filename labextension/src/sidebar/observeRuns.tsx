/**
 * Observe's run history: every run Automate recorded for the project, newest first, with
 * filters, paging, and a detail view of the run clicked. It polls while a run it shows is
 * queued or running.
 */
import * as React from 'react';

import { refreshIcon } from '@jupyterlab/ui-components';

import * as api from '../api';
import { formatDuration, runSeconds, triggerLabel } from '../observe/format';
import {
  IHistory,
  IRunFilters,
  NO_FILTERS,
  RUN_STATUSES,
  TRIGGER_TYPES,
  anyActive,
  hasFilters,
  historyAfterRefresh,
  historyCursor,
  historyWithPage,
  targetChoices
} from '../observe/history';
import { IAutomateRun, ISchedule } from '../types';
import { IconButton, Note, Section, errorMessage, useLoader } from './common';
import {
  IPolled,
  Moment,
  StatusDot,
  usePolled,
  useSettled
} from './observeCommon';
import { RunDetail } from './observeRunDetail';

interface IFilterProps {
  name: keyof IRunFilters;
  label: string;
  /** What "no filter" reads as. */
  any: string;
  choices: readonly string[];
  filters: IRunFilters;
  onChange: (filters: IRunFilters) => void;
}

function Filter(props: IFilterProps): React.ReactElement {
  const { name, filters } = props;
  const value = filters[name];
  // A chosen value stays offered even when the list no longer holds it.
  const choices = value ? targetChoices(props.choices, [value]) : props.choices;
  return (
    <select
      className="jp-Prophecy-select"
      aria-label={props.label}
      title={props.label}
      data-testid={`prophecy-observe-filter-${name}`}
      value={value}
      onChange={event =>
        props.onChange({ ...filters, [name]: event.target.value })
      }
    >
      <option value="">{props.any}</option>
      {choices.map(choice => (
        <option key={choice} value={choice}>
          {choice}
        </option>
      ))}
    </select>
  );
}

function RunFilters(props: {
  filters: IRunFilters;
  targets: readonly string[];
  schedules: readonly string[];
  onChange: (filters: IRunFilters) => void;
}): React.ReactElement {
  const shared = { filters: props.filters, onChange: props.onChange };
  return (
    <div className="jp-Prophecy-observeFilters">
      <Filter
        name="status"
        label="Status"
        any="Any status"
        choices={RUN_STATUSES}
        {...shared}
      />
      <Filter
        name="trigger"
        label="Trigger"
        any="Any trigger"
        choices={TRIGGER_TYPES}
        {...shared}
      />
      <Filter
        name="target"
        label="Pipeline or notebook"
        any="Any pipeline or notebook"
        choices={props.targets}
        {...shared}
      />
      <Filter
        name="schedule"
        label="Schedule"
        any="Any schedule"
        choices={props.schedules}
        {...shared}
      />
    </div>
  );
}

function RunRow(props: {
  run: IAutomateRun;
  onOpen: () => void;
}): React.ReactElement {
  const { run } = props;
  return (
    <li
      className="jp-Prophecy-item jp-Prophecy-observeRun"
      data-testid="prophecy-observe-run"
      data-id={run.id}
      data-status={run.status}
      data-target={run.target}
      data-trigger={run.trigger.type}
      title={[run.status, run.error].filter(Boolean).join(': ')}
      tabIndex={0}
      onClick={props.onOpen}
      onKeyDown={event => {
        if (event.key === 'Enter') {
          props.onOpen();
        }
      }}
    >
      <div className="jp-Prophecy-observeLine">
        <StatusDot status={run.status} testId="prophecy-observe-run-status" />
        <span className="jp-Prophecy-itemName">{run.target}</span>
        <span className="jp-Prophecy-runSeconds">
          {formatDuration(runSeconds(run))}
        </span>
      </div>
      <div className="jp-Prophecy-observeSub">
        <span className="jp-Prophecy-observeTrigger">
          {triggerLabel(run.trigger)}
        </span>
        <Moment iso={run.started ?? run.created} />
      </div>
    </li>
  );
}

interface IRunHistory {
  history: IPolled<IHistory>;
  /** Where the next page starts; null when every run is listed. */
  cursor: string | null;
  more: { loading: boolean; error: string | null };
  loadMore: () => void;
}

/** The project's runs that match `filters`: the first page, polled, and older pages. */
function useRunHistory(
  project: string,
  filters: IRunFilters,
  active: boolean,
  refresh: string
): IRunHistory {
  const key = JSON.stringify([project, filters]);
  const history = usePolled<IHistory>(
    key,
    async previous =>
      historyAfterRefresh(previous, await api.automateRuns(project, filters)),
    { active, again: value => anyActive(value.runs), refresh }
  );
  const [more, setMore] = React.useState<IRunHistory['more']>({
    loading: false,
    error: null
  });
  // Another list starts without the last one's paging error.
  React.useEffect(() => setMore({ loading: false, error: null }), [key]);
  const cursor = history.value ? historyCursor(history.value) : null;
  const loadMore = async (): Promise<void> => {
    setMore({ loading: true, error: null });
    try {
      const page = await api.automateRuns(project, filters, cursor);
      history.update(value => historyWithPage(value, page));
      setMore({ loading: false, error: null });
    } catch (error) {
      setMore({ loading: false, error: errorMessage(error) });
    }
  };
  return { history, cursor, more, loadMore: () => void loadMore() };
}

function RunList(props: {
  list: IRunHistory;
  filtered: boolean;
  onOpen: (run: IAutomateRun) => void;
}): React.ReactElement {
  const { history, cursor, more } = props.list;
  const runs = history.value?.runs;
  return (
    <>
      {history.error ? (
        <Note kind="error" testId="prophecy-observe-runs-error">
          {history.error}
        </Note>
      ) : null}
      {runs === undefined && !history.error ? <Note>Loading…</Note> : null}
      {runs?.length === 0 ? (
        <Note testId="prophecy-observe-no-runs">
          {props.filtered ? 'No run matches these filters.' : 'No run yet.'}
        </Note>
      ) : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-observe-run-list">
        {runs?.map(run => (
          <RunRow key={run.id} run={run} onOpen={() => props.onOpen(run)} />
        ))}
      </ul>
      {more.error ? (
        <Note kind="error" testId="prophecy-observe-more-error">
          {more.error}
        </Note>
      ) : null}
      {cursor ? (
        <button
          type="button"
          className="jp-Prophecy-textButton"
          data-testid="prophecy-observe-load-more"
          disabled={more.loading}
          onClick={props.list.loadMore}
        >
          {more.loading ? 'Loading…' : 'Load more'}
        </button>
      ) : null}
    </>
  );
}

export interface IRunHistorySectionProps {
  project: string;
  visible: boolean;
  generation: string;
  schedules: readonly ISchedule[];
  /** The run whose detail is shown instead of the list, if any. */
  openRun: string | null;
  onOpenRun: (id: string | null) => void;
  /** Something changed that other sections show (a run started or cancelled). */
  onChanged: () => void;
  /** Open a run's executed notebook in JupyterLab. */
  openDocument?: (path: string) => void;
}

export function RunHistorySection(
  props: IRunHistorySectionProps
): React.ReactElement {
  const { project, openRun, onOpenRun } = props;
  const [filters, setFilters] = React.useState<IRunFilters>(NO_FILTERS);
  const [refreshes, setRefreshes] = React.useState(0);
  const refresh = `${props.generation}.${refreshes}`;
  // The list keeps its pages while a run's detail is shown, and polls again after it.
  const list = useRunHistory(
    project,
    filters,
    props.visible && !openRun,
    refresh
  );
  const runs = list.history.value?.runs ?? [];
  // A run that finished changes its schedule's last run.
  useSettled(anyActive(runs), props.onChanged);
  const pipelines = useLoader(
    () => api.pipelines(project),
    [project, props.generation]
  );
  const targets = targetChoices(
    (pipelines.value ?? []).map(pipeline => pipeline.name),
    props.schedules.map(schedule => schedule.target),
    runs.map(run => run.target)
  );

  return (
    <Section
      id="observe-runs"
      title={openRun ? 'Run' : 'Run history'}
      actions={
        <IconButton
          icon={refreshIcon}
          title="Refresh runs"
          testId="prophecy-observe-refresh-runs"
          onClick={() => setRefreshes(count => count + 1)}
        />
      }
    >
      {openRun ? (
        <RunDetail
          key={openRun}
          id={openRun}
          initial={runs.find(run => run.id === openRun) ?? null}
          visible={props.visible}
          refresh={refresh}
          onBack={() => onOpenRun(null)}
          onOpenRun={onOpenRun}
          onChanged={props.onChanged}
          openDocument={props.openDocument}
        />
      ) : (
        <>
          <RunFilters
            filters={filters}
            targets={targets}
            schedules={props.schedules.map(schedule => schedule.name)}
            onChange={setFilters}
          />
          <RunList
            list={list}
            filtered={hasFilters(filters)}
            onOpen={run => onOpenRun(run.id)}
          />
        </>
      )}
    </Section>
  );
}
