/**
 * One run in full: what started it, where and with which parameters, how long it took, its
 * error, each gem's outcome and the log. From here a run is cancelled, run again, or its
 * output notebook saved. It polls while the run is queued or running.
 */
import * as React from 'react';

import {
  caretLeftIcon,
  downloadIcon,
  notebookIcon,
  runIcon,
  stopIcon
} from '@jupyterlab/ui-components';

import * as api from '../api';
import {
  formatClock,
  formatDuration,
  notebookFileName,
  parameterText,
  runSeconds,
  triggerLabel
} from '../observe/format';
import { runNotebookPath } from '../observe/drive';
import { isActive, rerunRequest } from '../observe/history';
import { IAutomateRun, IGemRun, ILogLine } from '../types';
import { IconButton, Note, errorMessage } from './common';
import { Moment, StatusDot, usePolled, useSettled } from './observeCommon';

interface IRunView {
  run: IAutomateRun;
  /** The log, or why it could not be read. */
  logs: ILogLine[] | { error: string };
}

async function readRun(id: string): Promise<IRunView> {
  const [run, logs] = await Promise.all([
    api.automateRunDetail(id),
    api.automateRunLogs(id).catch((reason: unknown) => ({
      error: errorMessage(reason)
    }))
  ]);
  return { run, logs };
}

/** Save the run's executed notebook through the browser's download. */
async function downloadNotebook(run: IAutomateRun): Promise<void> {
  const notebook = await api.automateRunNotebook(run.id);
  const blob = new Blob([JSON.stringify(notebook, null, 1)], {
    type: 'application/x-ipynb+json'
  });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = notebookFileName(run);
  document.body.appendChild(link);
  link.click();
  link.remove();
  // The download has its own copy once it started.
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function Fact(props: {
  name: string;
  children: React.ReactNode;
}): React.ReactElement {
  return (
    <>
      <dt>{props.name}</dt>
      <dd data-testid={`prophecy-observe-fact-${props.name.toLowerCase()}`}>
        {props.children}
      </dd>
    </>
  );
}

function RunFacts(props: { run: IAutomateRun }): React.ReactElement {
  const { run } = props;
  const parameters = Object.entries(run.parameters);
  return (
    <dl className="jp-Prophecy-facts">
      <Fact name="Status">{run.status}</Fact>
      <Fact name="Trigger">
        {triggerLabel(run.trigger)}
        {run.trigger.fire_time ? (
          <>
            {' · fired '}
            <Moment iso={run.trigger.fire_time} />
          </>
        ) : null}
      </Fact>
      {run.attempt > 1 ? <Fact name="Attempt">{run.attempt}</Fact> : null}
      <Fact name="Fabric">{run.fabric}</Fact>
      {run.deployment ? <Fact name="Deployment">{run.deployment}</Fact> : null}
      <Fact name="Parameters">
        {parameters.length
          ? parameters.map(([name, value]) => (
              <div key={name} className="jp-Prophecy-parameter">
                {name} = {parameterText(value)}
              </div>
            ))
          : 'none'}
      </Fact>
      <Fact name="Created">
        <Moment iso={run.created} seconds />
      </Fact>
      <Fact name="Started">
        <Moment iso={run.started} seconds />
      </Fact>
      <Fact name="Finished">
        <Moment iso={run.finished} seconds />
      </Fact>
      <Fact name="Duration">{formatDuration(runSeconds(run)) || '—'}</Fact>
    </dl>
  );
}

/** Why the run failed: its error, and each problem found before it ran. */
function RunError(props: { run: IAutomateRun }): React.ReactElement | null {
  const { error, issues: problems } = props.run;
  if (!error && problems.length === 0) {
    return null;
  }
  return (
    <div className="jp-Prophecy-runError" data-testid="prophecy-observe-error">
      {error ? <div>{error}</div> : null}
      {problems.length ? (
        <ul>
          {problems.map((problem, index) => (
            <li key={index}>
              {problem.gem_id ? <b>{problem.gem_id}: </b> : null}
              {problem.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

function GemRow(props: { gem: IGemRun }): React.ReactElement {
  const { gem } = props;
  return (
    <>
      <tr
        data-testid="prophecy-observe-gem"
        data-gem-id={gem.gem_id}
        data-status={gem.status}
      >
        <td>
          <div className="jp-Prophecy-gemName">
            <StatusDot status={gem.status} />
            {gem.gem_id}
          </div>
          <div
            className="jp-Prophecy-gemKind"
            data-testid="prophecy-observe-gem-status"
          >
            {gem.kind} · {gem.status}
          </div>
        </td>
        <td className="jp-Prophecy-number">{gem.rows ?? ''}</td>
        <td className="jp-Prophecy-number">{formatDuration(gem.seconds)}</td>
      </tr>
      {gem.error ? (
        <tr className="jp-Prophecy-gemError">
          <td colSpan={3}>{gem.error}</td>
        </tr>
      ) : null}
    </>
  );
}

function GemTable(props: { gems: IGemRun[] }): React.ReactElement {
  if (props.gems.length === 0) {
    return <Note>No gem ran.</Note>;
  }
  return (
    <div className="jp-Prophecy-gemTableBox">
      <table
        className="jp-Prophecy-gemTable"
        data-testid="prophecy-observe-gems"
      >
        <thead>
          <tr>
            <th>Gem</th>
            <th className="jp-Prophecy-number">Rows</th>
            <th className="jp-Prophecy-number">Time</th>
          </tr>
        </thead>
        <tbody>
          {props.gems.map(gem => (
            <GemRow key={gem.gem_id} gem={gem} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The log, kept scrolled to its end while the reader is there. */
function RunLog(props: { lines: ILogLine[] }): React.ReactElement {
  const box = React.useRef<HTMLDivElement>(null);
  const atEnd = React.useRef(true);
  React.useLayoutEffect(() => {
    if (box.current && atEnd.current) {
      box.current.scrollTop = box.current.scrollHeight;
    }
  }, [props.lines.length]);
  if (props.lines.length === 0) {
    return <Note>The log is empty.</Note>;
  }
  return (
    <div
      ref={box}
      className="jp-Prophecy-runLog"
      data-testid="prophecy-observe-log"
      onScroll={event => {
        const { scrollTop, scrollHeight, clientHeight } = event.currentTarget;
        atEnd.current = scrollHeight - scrollTop - clientHeight < 8;
      }}
    >
      {props.lines.map((line, index) => (
        <div
          key={index}
          className="jp-Prophecy-logLine"
          data-level={line.level.toLowerCase()}
        >
          <span className="jp-Prophecy-logTime">{formatClock(line.time)}</span>{' '}
          <span className="jp-Prophecy-logLevel">{line.level}</span>{' '}
          {line.message}
        </div>
      ))}
    </div>
  );
}

function RunActions(props: {
  run: IAutomateRun;
  onCancelled: (run: IAutomateRun) => void;
  onStarted: (run: IAutomateRun) => void;
  openDocument?: (path: string) => void;
}): React.ReactElement {
  const { run } = props;
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const act = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (reason) {
      setError(errorMessage(reason));
    }
    setBusy(false);
  };
  const cancel = async (): Promise<void> =>
    props.onCancelled(await api.cancelAutomateRun(run.id));
  const again = async (): Promise<void> =>
    props.onStarted(await api.startAutomateRun(rerunRequest(run)));
  return (
    <>
      <div className="jp-Prophecy-observeActions">
        {isActive(run.status) ? (
          <IconButton
            icon={stopIcon}
            label="Cancel"
            title="Cancel this run"
            testId="prophecy-observe-cancel"
            disabled={busy}
            onClick={() => void act(cancel)}
          />
        ) : null}
        <IconButton
          icon={runIcon}
          label="Run again"
          title={`Run ${run.target} again on ${run.fabric} with the same parameters`}
          testId="prophecy-observe-run-again"
          disabled={busy}
          onClick={() => void act(again)}
        />
        {run.kind === 'notebook' &&
        run.output_notebook &&
        props.openDocument ? (
          <IconButton
            icon={notebookIcon}
            label="Open output notebook"
            title="Open the executed notebook, with its outputs, in JupyterLab"
            testId="prophecy-observe-open-notebook"
            onClick={() =>
              props.openDocument?.(
                runNotebookPath(run.id, notebookFileName(run))
              )
            }
          />
        ) : null}
        {run.kind === 'notebook' && run.output_notebook ? (
          <IconButton
            icon={downloadIcon}
            label="Download output notebook"
            title="Download the executed notebook, with its outputs"
            testId="prophecy-observe-output-notebook"
            disabled={busy}
            onClick={() => void act(() => downloadNotebook(run))}
          />
        ) : null}
      </div>
      {error ? (
        <Note kind="error" testId="prophecy-observe-action-error">
          {error}
        </Note>
      ) : null}
    </>
  );
}

export interface IRunDetailProps {
  id: string;
  /** The run as the list knew it, shown until its detail arrives. */
  initial: IAutomateRun | null;
  visible: boolean;
  refresh: string;
  onBack: () => void;
  onOpenRun: (id: string) => void;
  onChanged: () => void;
  /** Open a run's executed notebook in JupyterLab. */
  openDocument?: (path: string) => void;
}

export function RunDetail(props: IRunDetailProps): React.ReactElement {
  const detail = usePolled<IRunView>(props.id, () => readRun(props.id), {
    active: props.visible,
    again: value => isActive(value.run.status),
    refresh: props.refresh
  });
  const run = detail.value?.run ?? props.initial;
  const logs = detail.value?.logs;
  useSettled(run ? isActive(run.status) : false, props.onChanged);
  return (
    <div
      className="jp-Prophecy-runDetail"
      data-testid="prophecy-observe-run-detail"
      data-id={props.id}
      data-status={run?.status}
    >
      <div className="jp-Prophecy-observeLine">
        <IconButton
          icon={caretLeftIcon}
          label="Runs"
          title="Back to the run history"
          testId="prophecy-observe-back"
          onClick={props.onBack}
        />
      </div>
      {detail.error ? (
        <Note kind="error" testId="prophecy-observe-run-error">
          {detail.error}
        </Note>
      ) : null}
      {run ? (
        <>
          <div className="jp-Prophecy-observeTitle">
            <StatusDot status={run.status} />
            <span className="jp-Prophecy-itemName" title={run.target}>
              {run.target}
            </span>
            <span className="jp-Prophecy-observeKind">{run.kind}</span>
          </div>
          <RunActions
            run={run}
            openDocument={props.openDocument}
            onCancelled={cancelled => {
              detail.update(value => ({ ...value, run: cancelled }));
              props.onChanged();
            }}
            onStarted={started => {
              props.onChanged();
              props.onOpenRun(started.id);
            }}
          />
          <RunFacts run={run} />
          <RunError run={run} />
          {run.kind === 'pipeline' || run.gems.length ? (
            <>
              <div className="jp-Prophecy-observeHeading">Gems</div>
              <GemTable gems={run.gems} />
            </>
          ) : null}
          <div className="jp-Prophecy-observeHeading">Log</div>
          {logs === undefined ? <Note>Loading…</Note> : null}
          {logs && 'error' in logs ? (
            <Note kind="error" testId="prophecy-observe-log-error">
              {logs.error}
            </Note>
          ) : null}
          {Array.isArray(logs) ? <RunLog lines={logs} /> : null}
        </>
      ) : null}
      {!run && !detail.error ? <Note>Loading…</Note> : null}
    </div>
  );
}
