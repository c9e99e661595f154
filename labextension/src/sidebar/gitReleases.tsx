/**
 * The Git tab's releases: tagged versions of the project with their notes; a new release
 * of the current commit, and deploying a release to a fabric or rolling a fabric back to an
 * earlier one.
 */
import * as React from 'react';

import {
  launchIcon,
  refreshIcon,
  tagIcon,
  undoIcon
} from '@jupyterlab/ui-components';

import * as api from '../api';
import { shortCommit } from '../git/changes';
import { IRelease } from '../types';
import { IconButton, Note, Section, useLoader } from './common';
import { askFabric } from './common';
import { ActionNote, useAction } from './gitCommon';
import { Moment } from './observeCommon';

export interface IReleasesSectionProps {
  project: string;
  generation: string;
  onChanged: () => void;
}

function ReleaseForm(props: {
  busy: boolean;
  onCreate: (version: string, notes: string, push: boolean) => void;
  onCancel: () => void;
}): React.ReactElement {
  const [version, setVersion] = React.useState('');
  const [notes, setNotes] = React.useState('');
  const [push, setPush] = React.useState(false);
  return (
    <form
      className="jp-Prophecy-fabricForm"
      data-testid="prophecy-git-release-form"
      onSubmit={event => {
        event.preventDefault();
        if (version.trim()) {
          props.onCreate(version.trim(), notes, push);
        }
      }}
    >
      <div className="jp-Prophecy-formTitle">Release the current commit</div>
      <label className="jp-Prophecy-field">
        Version
        <input
          className="jp-Prophecy-input"
          data-testid="prophecy-git-release-version"
          value={version}
          placeholder="v1.0.0"
          autoFocus
          onChange={event => setVersion(event.target.value)}
        />
      </label>
      <label className="jp-Prophecy-field">
        Notes
        <textarea
          className="jp-Prophecy-input jp-Prophecy-gitMessage"
          data-testid="prophecy-git-release-notes"
          rows={3}
          value={notes}
          placeholder="What is in this release"
          onChange={event => setNotes(event.target.value)}
        />
      </label>
      <label className="jp-Prophecy-switch">
        <input
          type="checkbox"
          data-testid="prophecy-git-release-push"
          checked={push}
          onChange={() => setPush(!push)}
        />
        Push the release to the remote
      </label>
      <div className="jp-Prophecy-formButtons">
        <button
          type="button"
          className="jp-Prophecy-gitButton"
          onClick={props.onCancel}
        >
          Cancel
        </button>
        <button
          type="submit"
          className="jp-Prophecy-gitButton jp-mod-accept"
          data-testid="prophecy-git-release-create"
          disabled={!version.trim() || props.busy}
        >
          Release
        </button>
      </div>
    </form>
  );
}

function ReleaseItem(props: {
  release: IRelease;
  busy: boolean;
  onDeploy: () => void;
  onRollback: () => void;
}): React.ReactElement {
  const { release } = props;
  return (
    <li
      className="jp-Prophecy-item jp-Prophecy-observeCard"
      data-testid="prophecy-git-release"
      data-version={release.version}
    >
      <div className="jp-Prophecy-observeLine">
        <span className="jp-Prophecy-badge">{release.version}</span>
        <span className="jp-Prophecy-gitCommitId" title={release.commit}>
          {shortCommit(release.commit)}
        </span>
        <span className="jp-Prophecy-toolbar-spacer" />
        <Moment iso={release.created} />
      </div>
      {release.notes ? (
        <div className="jp-Prophecy-observeSub jp-Prophecy-gitNotes">
          {release.notes}
        </div>
      ) : null}
      <div className="jp-Prophecy-observeActions jp-Prophecy-gitReleaseActions">
        <IconButton
          icon={launchIcon}
          label="Deploy…"
          title={`Deploy ${release.version} to a fabric`}
          testId="prophecy-git-deploy"
          disabled={props.busy}
          onClick={props.onDeploy}
        />
        <IconButton
          icon={undoIcon}
          label="Roll back…"
          title={`Make ${release.version} the deployment of a fabric again`}
          testId="prophecy-git-rollback"
          disabled={props.busy}
          onClick={props.onRollback}
        />
      </div>
    </li>
  );
}

export function ReleasesSection(
  props: IReleasesSectionProps
): React.ReactElement {
  const { project } = props;
  const list = useLoader(
    () => api.vcsReleases(project),
    [project, props.generation]
  );
  const action = useAction();
  const [form, setForm] = React.useState(false);
  const busy = action.state.busy !== null;

  const create = (version: string, notes: string, push: boolean): void =>
    void action.run(`Releasing ${version}`, async () => {
      const release = await api.vcsRelease(project, version, notes, push);
      setForm(false);
      list.reload();
      props.onChanged();
      return `Released ${release.version} at ${shortCommit(release.commit)}`;
    });

  const deploy = async (
    release: IRelease,
    rollback: boolean
  ): Promise<void> => {
    const verb = rollback ? 'Roll back' : 'Deploy';
    let fabric: string | null = null;
    try {
      fabric = await askFabric(
        project,
        rollback
          ? `Roll a fabric back to ${release.version}`
          : `Deploy ${release.version}`,
        verb
      );
    } catch (error) {
      await action.run(verb, () => Promise.reject(error));
      return;
    }
    if (!fabric) {
      return;
    }
    const target = fabric;
    await action.run(
      `${rollback ? 'Rolling back' : 'Deploying'} ${release.version}`,
      async () => {
        const deployment = await api.vcsDeployRelease(
          project,
          release.version,
          target,
          rollback
        );
        props.onChanged();
        return rollback
          ? `${deployment.fabric} rolled back to ${release.version}`
          : `Deployed ${release.version} to ${deployment.fabric}`;
      }
    );
  };

  return (
    <Section
      id="git-releases"
      title="Releases"
      actions={
        <>
          <IconButton
            icon={tagIcon}
            label="Release…"
            title="Tag the current commit as a release"
            testId="prophecy-git-new-release"
            disabled={busy}
            onClick={() => setForm(!form)}
          />
          <IconButton
            icon={refreshIcon}
            title="Refresh releases"
            testId="prophecy-git-refresh-releases"
            onClick={list.reload}
          />
        </>
      }
    >
      {form ? (
        <ReleaseForm
          busy={busy}
          onCreate={create}
          onCancel={() => setForm(false)}
        />
      ) : null}
      <ActionNote state={action.state} testId="prophecy-git-release-action" />
      {list.error ? (
        <Note kind="error" testId="prophecy-git-releases-error">
          {list.error}
        </Note>
      ) : null}
      {list.loading && !list.value ? <Note>Loading…</Note> : null}
      {list.value?.length === 0 ? (
        <Note testId="prophecy-git-no-releases">No release yet.</Note>
      ) : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-git-releases">
        {list.value?.map(release => (
          <ReleaseItem
            key={release.tag}
            release={release}
            busy={busy}
            onDeploy={() => void deploy(release, false)}
            onRollback={() => void deploy(release, true)}
          />
        ))}
      </ul>
    </Section>
  );
}
