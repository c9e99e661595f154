/**
 * Observe's schedules: what each runs and when (cron, file arrival, upstream jobs), its
 * next fire in the user's time, its last run; enable or disable it, or run it now.
 */
import * as React from 'react';

import { refreshIcon, runIcon } from '@jupyterlab/ui-components';

import * as api from '../api';
import { scheduleTriggerLabel } from '../observe/format';
import { ISchedule } from '../types';
import { IconButton, Note, Section, errorMessage } from './common';
import { Field, IPolled, Moment, StatusDot } from './observeCommon';

function NextFire(props: { schedule: ISchedule }): React.ReactElement {
  const { schedule } = props;
  let next: React.ReactNode;
  if (!schedule.enabled) {
    next = 'disabled';
  } else if (schedule.next_fire) {
    next = <Moment iso={schedule.next_fire} relative />;
  } else {
    next = schedule.cron ? '—' : 'on its triggers only';
  }
  return (
    <Field label="Next" testId="prophecy-schedule-next">
      {next}
    </Field>
  );
}

function LastRun(props: {
  schedule: ISchedule;
  onOpenRun: (id: string) => void;
}): React.ReactElement {
  const last = props.schedule.last_run;
  return (
    <Field label="Last" testId="prophecy-schedule-last">
      {last ? (
        <button
          type="button"
          className="jp-Prophecy-linkButton"
          title="Show this run"
          data-testid="prophecy-schedule-last-run"
          data-status={last.status}
          onClick={() => props.onOpenRun(last.id)}
        >
          <StatusDot status={last.status} />
          {last.status}
          {last.finished ? (
            <>
              {' · '}
              <Moment iso={last.finished} />
            </>
          ) : null}
        </button>
      ) : (
        'no run yet'
      )}
    </Field>
  );
}

function ScheduleItem(props: {
  schedule: ISchedule;
  onChanged: (schedule: ISchedule | null) => void;
  onOpenRun: (id: string) => void;
}): React.ReactElement {
  const { schedule } = props;
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const act = async (action: () => Promise<ISchedule | null>) => {
    setBusy(true);
    setError(null);
    try {
      props.onChanged(await action());
    } catch (reason) {
      setError(errorMessage(reason));
    }
    setBusy(false);
  };
  const toggle = () =>
    api.setScheduleEnabled(schedule.project, schedule.name, !schedule.enabled);
  const runNow = async () => {
    await api.triggerSchedule(schedule.project, schedule.name);
    return null;
  };
  return (
    <li
      className="jp-Prophecy-item jp-Prophecy-observeCard"
      data-testid="prophecy-observe-schedule"
      data-name={schedule.name}
      data-enabled={schedule.enabled}
    >
      <div className="jp-Prophecy-observeLine">
        <StatusDot status={schedule.last_run?.status ?? null} />
        <span className="jp-Prophecy-itemName">{schedule.name}</span>
        <label
          className="jp-Prophecy-switch"
          title={schedule.enabled ? 'Disable this schedule' : 'Enable it'}
        >
          <input
            type="checkbox"
            role="switch"
            checked={schedule.enabled}
            disabled={busy}
            data-testid="prophecy-schedule-enabled"
            onChange={() => void act(toggle)}
          />
          {schedule.enabled ? 'on' : 'off'}
        </label>
        <IconButton
          icon={runIcon}
          title={`Run ${schedule.target} now, as this schedule would`}
          testId="prophecy-schedule-run-now"
          disabled={busy}
          onClick={() => void act(runNow)}
        />
      </div>
      <div className="jp-Prophecy-observeSub">
        {schedule.kind} {schedule.target} · {schedule.fabric}
      </div>
      {schedule.cron ? (
        <Field label="Cron">
          <code className="jp-Prophecy-cron">{schedule.cron}</code>{' '}
          {schedule.timezone}
        </Field>
      ) : null}
      {schedule.triggers.map((trigger, index) => (
        <Field key={index} label="Trigger">
          {scheduleTriggerLabel(trigger)}
        </Field>
      ))}
      {schedule.deployment ? (
        <Field label="From">deployment {schedule.deployment}</Field>
      ) : null}
      <NextFire schedule={schedule} />
      <LastRun schedule={schedule} onOpenRun={props.onOpenRun} />
      {error ? (
        <Note kind="error" testId="prophecy-schedule-error">
          {error}
        </Note>
      ) : null}
    </li>
  );
}

export interface ISchedulesSectionProps {
  list: IPolled<ISchedule[]>;
  onRefresh: () => void;
  onOpenRun: (id: string) => void;
  /** A run started: the history shows it. */
  onChanged: () => void;
}

export function SchedulesSection(
  props: ISchedulesSectionProps
): React.ReactElement {
  const { list } = props;
  const schedules = list.value;
  const changed = (updated: ISchedule | null): void => {
    if (updated) {
      list.update(all =>
        all.map(schedule =>
          schedule.name === updated.name ? updated : schedule
        )
      );
    }
    props.onChanged();
  };
  return (
    <Section
      id="observe-schedules"
      title="Schedules"
      actions={
        <IconButton
          icon={refreshIcon}
          title="Refresh schedules"
          testId="prophecy-observe-refresh-schedules"
          onClick={props.onRefresh}
        />
      }
    >
      {list.error ? (
        <Note kind="error" testId="prophecy-observe-schedules-error">
          {list.error}
        </Note>
      ) : null}
      {schedules === undefined && !list.error ? <Note>Loading…</Note> : null}
      {schedules?.length === 0 ? (
        <Note testId="prophecy-observe-no-schedules">
          No schedule: a schedule is a file schedules/NAME.yml in the project.
        </Note>
      ) : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-observe-schedules">
        {schedules?.map(schedule => (
          <ScheduleItem
            key={schedule.name}
            schedule={schedule}
            onChanged={changed}
            onOpenRun={props.onOpenRun}
          />
        ))}
      </ul>
    </Section>
  );
}
