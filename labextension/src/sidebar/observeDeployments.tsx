/**
 * Observe's deployments: what of the project was deployed to which fabric and when, which
 * one is active, and a new deployment to a fabric the user picks.
 */
import * as React from 'react';

import { launchIcon, refreshIcon } from '@jupyterlab/ui-components';

import * as api from '../api';
import { deploymentContents } from '../observe/format';
import { IDeployment } from '../types';
import {
  askFabric,
  IconButton,
  Note,
  Section,
  errorMessage,
  useLoader
} from './common';
import { Field, Moment } from './observeCommon';

function Names(props: {
  title: string;
  names: string[];
}): React.ReactElement | null {
  if (props.names.length === 0) {
    return null;
  }
  return <Field label={props.title}>{props.names.join(', ')}</Field>;
}

function DeploymentItem(props: {
  deployment: IDeployment;
}): React.ReactElement {
  const { deployment } = props;
  const [open, setOpen] = React.useState(false);
  return (
    <li
      className="jp-Prophecy-item jp-Prophecy-observeCard"
      data-testid="prophecy-observe-deployment"
      data-id={deployment.id}
      data-fabric={deployment.fabric}
      data-active={deployment.active}
      aria-expanded={open}
      title={open ? undefined : 'Show what it holds'}
      onClick={() => setOpen(!open)}
    >
      <div className="jp-Prophecy-observeLine">
        <span className="jp-Prophecy-itemName">{deployment.fabric}</span>
        {deployment.release ? (
          <span
            className="jp-Prophecy-badge"
            data-testid="prophecy-deployment-release"
            title={deployment.commit ?? undefined}
          >
            {deployment.release}
          </span>
        ) : null}
        {deployment.active ? (
          <span
            className="jp-Prophecy-badge"
            data-testid="prophecy-deployment-active"
          >
            active
          </span>
        ) : null}
        <Moment iso={deployment.created} />
      </div>
      <div className="jp-Prophecy-observeSub">
        {deploymentContents(deployment)}
      </div>
      {open ? (
        <div data-testid="prophecy-deployment-contents">
          <Names title="Pipelines" names={deployment.pipelines} />
          <Names title="Schedules" names={deployment.schedules} />
          <Names title="Notebooks" names={deployment.notebooks} />
          <Field label="Id">{deployment.id}</Field>
        </div>
      ) : null}
    </li>
  );
}

export interface IDeploymentsSectionProps {
  project: string;
  generation: string;
  /** A deployment was made: schedules and runs may follow it. */
  onChanged: () => void;
}

export function DeploymentsSection(
  props: IDeploymentsSectionProps
): React.ReactElement {
  const { project } = props;
  const list = useLoader(
    () => api.deployments(project),
    [project, props.generation]
  );
  const [state, setState] = React.useState<{
    deploying: boolean;
    error: string | null;
  }>({ deploying: false, error: null });

  const deploy = async (): Promise<void> => {
    setState({ deploying: true, error: null });
    try {
      const fabric = await askFabric(
        project,
        'Deploy the project',
        'Deploy',
        'The project has no fabric to deploy to.'
      );
      if (fabric) {
        await api.deploy(project, fabric);
        props.onChanged();
        list.reload();
      }
      setState({ deploying: false, error: null });
    } catch (error) {
      setState({ deploying: false, error: errorMessage(error) });
    }
  };

  return (
    <Section
      id="observe-deployments"
      title="Deployments"
      actions={
        <>
          <IconButton
            icon={launchIcon}
            label="Deploy…"
            title="Deploy the project's pipelines, schedules and notebooks to a fabric"
            testId="prophecy-observe-deploy"
            disabled={state.deploying}
            onClick={() => void deploy()}
          />
          <IconButton
            icon={refreshIcon}
            title="Refresh deployments"
            testId="prophecy-observe-refresh-deployments"
            onClick={list.reload}
          />
        </>
      }
    >
      {state.error ? (
        <Note kind="error" testId="prophecy-observe-deploy-error">
          {state.error}
        </Note>
      ) : null}
      {list.error ? (
        <Note kind="error" testId="prophecy-observe-deployments-error">
          {list.error}
        </Note>
      ) : null}
      {list.loading && !list.value ? <Note>Loading…</Note> : null}
      {list.value?.length === 0 ? (
        <Note testId="prophecy-observe-no-deployments">Not deployed yet.</Note>
      ) : null}
      <ul
        className="jp-Prophecy-list"
        data-testid="prophecy-observe-deployments"
      >
        {list.value?.map(deployment => (
          <DeploymentItem key={deployment.id} deployment={deployment} />
        ))}
      </ul>
    </Section>
  );
}
