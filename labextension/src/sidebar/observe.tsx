/**
 * Observe: what Automate did and will do for the project. Its run history (and the detail
 * of one run), its schedules and its deployments. An action in one section (a run started,
 * a schedule enabled, a deployment made) reads the others again.
 */
import * as React from 'react';

import * as api from '../api';
import { ISchedule } from '../types';
import { usePolled } from './observeCommon';
import { DeploymentsSection } from './observeDeployments';
import { RunHistorySection } from './observeRuns';
import { SchedulesSection } from './observeSchedules';

/** Schedules are read again this often, so next fires and last runs stay current. */
const SCHEDULES_POLL_MS = 30_000;

export interface IObservePanelProps {
  project: string;
  /** The panel is on screen: nothing is polled otherwise. */
  visible: boolean;
  generation: string;
  /** Open a run's executed notebook in JupyterLab. */
  openDocument?: (path: string) => void;
}

export function ObservePanel(props: IObservePanelProps): React.ReactElement {
  const { project, visible } = props;
  const [changes, setChanges] = React.useState(0);
  const [openRun, setOpenRun] = React.useState<string | null>(null);
  const changed = React.useCallback(() => setChanges(count => count + 1), []);
  const generation = `${props.generation}.${changes}`;
  const schedules = usePolled<ISchedule[]>(
    project,
    () => api.schedules(project),
    {
      active: visible,
      again: () => true,
      intervalMs: SCHEDULES_POLL_MS,
      refresh: generation
    }
  );
  return (
    <>
      <RunHistorySection
        project={project}
        visible={visible}
        generation={generation}
        schedules={schedules.value ?? []}
        openRun={openRun}
        onOpenRun={setOpenRun}
        onChanged={changed}
        openDocument={props.openDocument}
      />
      <SchedulesSection
        list={schedules}
        onRefresh={changed}
        onOpenRun={setOpenRun}
        onChanged={changed}
      />
      <DeploymentsSection
        project={project}
        generation={generation}
        onChanged={changed}
      />
    </>
  );
}
