/**
 * Recent runs of the project, polled while the panel is visible so a run started from the
 * editor shows its progress without a click.
 */
import * as React from 'react';

import { refreshIcon } from '@jupyterlab/ui-components';

import * as api from '../api';
import { IRun } from '../types';
import { IconButton, Note, Section, errorMessage } from './common';
import { pipelineFile } from '../graph/location';

/** How often runs are read while the panel shows them. */
export const POLL_MS = 3000;

/** At most this many runs are listed; the server keeps more. */
const SHOWN_RUNS = 25;

/** Today's runs by time alone, older ones with their date. */
export function formatStarted(iso: string | null, now = new Date()): string {
  if (!iso) {
    return '—';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString();
  }
  return date.toLocaleString(undefined, {
    dateStyle: 'short',
    timeStyle: 'short'
  });
}

export function formatSeconds(seconds: number | null): string {
  if (seconds === null) {
    return '';
  }
  return seconds < 10 ? `${seconds.toFixed(2)} s` : `${seconds.toFixed(1)} s`;
}

/** The tooltip of a run: why it failed, when it did. */
function runTooltip(run: IRun): string {
  const lines = [`${run.pipeline}: ${run.status} (${run.mode})`];
  if (run.fabric) {
    lines.push(`fabric ${run.fabric}`);
  }
  if (run.error) {
    lines.push(run.error);
  }
  for (const issue of run.issues) {
    lines.push(
      issue.gem_id ? `${issue.gem_id}: ${issue.message}` : issue.message
    );
  }
  return lines.join('\n');
}

function RunItem(props: { run: IRun; onOpen: () => void }): React.ReactElement {
  const { run } = props;
  return (
    <li
      className="jp-Prophecy-item jp-Prophecy-runItem"
      data-testid="prophecy-run-item"
      data-id={run.id}
      data-status={run.status}
      data-pipeline={run.pipeline}
      title={runTooltip(run)}
      onClick={props.onOpen}
    >
      <span
        className={`jp-Prophecy-statusDot jp-Prophecy-status-${run.status}`}
        data-testid="prophecy-run-item-status"
        aria-label={run.status}
      />
      <span className="jp-Prophecy-itemName">{run.pipeline}</span>
      <span className="jp-Prophecy-runTime">
        {formatStarted(run.started ?? run.created)}
      </span>
      <span className="jp-Prophecy-runSeconds">
        {formatSeconds(run.seconds)}
      </span>
    </li>
  );
}

interface IRunListProps {
  project: string;
  /** Poll only while true: the panel is on screen. */
  active: boolean;
  generation: string;
  openPipeline: (path: string) => void;
}

/**
 * The list that polls. It lives in the section's body, so folding the section or closing
 * the panel stops the polling with it.
 */
function RunList(props: IRunListProps): React.ReactElement {
  const { project, active, openPipeline } = props;
  const [runs, setRuns] = React.useState<IRun[] | undefined>(undefined);
  const [error, setError] = React.useState<string | null>(null);

  React.useEffect(() => {
    if (!active) {
      return;
    }
    let live = true;
    let timer: number | undefined;
    const poll = async (): Promise<void> => {
      // A background browser tab needs no fresh runs; look again on the next tick.
      if (!document.hidden) {
        try {
          const all = await api.listRuns(project);
          if (live) {
            // Without a project argument (the root project) the server lists every run.
            setRuns(all.filter(run => run.project === project));
            setError(null);
          }
        } catch (reason) {
          if (live) {
            setError(errorMessage(reason));
          }
        }
      }
      // The next request waits for this one, so a slow server never gets them piled up.
      if (live) {
        timer = window.setTimeout(() => void poll(), POLL_MS);
      }
    };
    void poll();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [project, active, props.generation]);

  const shown = runs?.slice(0, SHOWN_RUNS) ?? [];
  return (
    <>
      {error ? (
        <Note kind="error" testId="prophecy-runs-error">
          {error}
        </Note>
      ) : null}
      {runs === undefined && !error ? <Note>Loading…</Note> : null}
      {runs?.length === 0 ? (
        <Note testId="prophecy-no-runs">No run yet.</Note>
      ) : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-run-list">
        {shown.map(run => (
          <RunItem
            key={run.id}
            run={run}
            onOpen={() => openPipeline(pipelineFile(project, run.pipeline))}
          />
        ))}
      </ul>
    </>
  );
}

export interface IRunsSectionProps {
  project: string;
  visible: boolean;
  generation: string;
  openPipeline: (path: string) => void;
}

export function RunsSection(props: IRunsSectionProps): React.ReactElement {
  const [refreshes, setRefreshes] = React.useState(0);
  return (
    <Section
      id="runs"
      title="Recent runs"
      actions={
        <IconButton
          icon={refreshIcon}
          title="Refresh runs"
          testId="prophecy-refresh-runs"
          onClick={() => setRefreshes(count => count + 1)}
        />
      }
    >
      <RunList
        project={props.project}
        active={props.visible}
        generation={`${props.generation}.${refreshes}`}
        openPipeline={props.openPipeline}
      />
    </Section>
  );
}
