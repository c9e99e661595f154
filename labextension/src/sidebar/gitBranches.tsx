/**
 * The Git tab's branch section: the current branch and how far it is from its upstream,
 * pull and push, the remote, and every branch to switch to or merge into the current one.
 */
import * as React from 'react';

import { InputDialog } from '@jupyterlab/apputils';
import {
  addIcon,
  downloadIcon,
  fileUploadIcon,
  linkIcon,
  refreshIcon
} from '@jupyterlab/ui-components';

import * as api from '../api';
import { shortCommit, trackingText } from '../git/changes';
import { needsResolution } from '../git/conflicts';
import { IVcsBranch, IVcsStatus } from '../types';
import { IconButton, Note, Section, useLoader } from './common';
import { ActionNote, IPendingMerge, useAction } from './gitCommon';

export interface IBranchSectionProps {
  project: string;
  status: IVcsStatus;
  generation: string;
  /** Why the status could not be read again, if so (the one shown is older). */
  error: string | null;
  onRefresh: () => void;
  /** The working tree changed (a switch, a pull, a merge): every section reads again. */
  onChanged: () => void;
  /** A merge stopped on conflicts (or ended: null). */
  onMerge: (merge: IPendingMerge | null) => void;
  /** How the last merge ended, while nothing else happened since. */
  notice: string | null;
}

async function askBranchName(): Promise<string | null> {
  const answer = await InputDialog.getText({
    title: 'New branch',
    label: 'Name',
    placeholder: 'feature/better-totals',
    okLabel: 'Create and switch'
  });
  const name = answer.value?.trim() ?? '';
  return answer.button.accept && name ? name : null;
}

function RemoteForm(props: {
  project: string;
  onDone: (message: string | null) => void;
}): React.ReactElement {
  const [url, setUrl] = React.useState('');
  const [username, setUsername] = React.useState('');
  const [token, setToken] = React.useState('');
  const action = useAction();
  const save = (): void =>
    void action.run('Saving the remote', async () => {
      const remote = await api.vcsSetRemote(props.project, {
        url: url.trim(),
        username: username.trim(),
        token
      });
      const secret = remote.credentials.token ? ' (with a token)' : '';
      props.onDone(`Remote ${remote.name} is ${remote.url}${secret}`);
    });
  return (
    <form
      className="jp-Prophecy-fabricForm"
      data-testid="prophecy-git-remote-form"
      onSubmit={event => {
        event.preventDefault();
        save();
      }}
    >
      <div className="jp-Prophecy-formTitle">Remote origin</div>
      <label className="jp-Prophecy-field">
        URL
        <input
          className="jp-Prophecy-input"
          data-testid="prophecy-git-remote-url"
          value={url}
          placeholder="https://git.example.com/team/shop.git"
          onChange={event => setUrl(event.target.value)}
        />
      </label>
      <label className="jp-Prophecy-field">
        User name (optional)
        <input
          className="jp-Prophecy-input"
          data-testid="prophecy-git-remote-username"
          value={username}
          autoComplete="off"
          onChange={event => setUsername(event.target.value)}
        />
      </label>
      <label className="jp-Prophecy-field">
        Token (optional; stored on the server, never shown again)
        <input
          className="jp-Prophecy-input"
          type="password"
          data-testid="prophecy-git-remote-token"
          value={token}
          autoComplete="new-password"
          onChange={event => setToken(event.target.value)}
        />
      </label>
      <ActionNote state={action.state} testId="prophecy-git-remote" />
      <div className="jp-Prophecy-formButtons">
        <button
          type="button"
          className="jp-Prophecy-gitButton"
          onClick={() => props.onDone(null)}
        >
          Cancel
        </button>
        <button
          type="submit"
          className="jp-Prophecy-gitButton jp-mod-accept"
          data-testid="prophecy-git-remote-save"
          disabled={!url.trim() || action.state.busy !== null}
        >
          Save
        </button>
      </div>
    </form>
  );
}

function BranchItem(props: {
  branch: IVcsBranch;
  current: boolean;
  busy: boolean;
  onSwitch: () => void;
  onMerge: () => void;
}): React.ReactElement {
  const { branch, current } = props;
  const remote = branch.remote;
  return (
    <li
      className="jp-Prophecy-item jp-Prophecy-gitBranchItem"
      data-testid="prophecy-git-branch-item"
      data-name={branch.name}
      data-current={current}
      title={`${branch.name} at ${shortCommit(branch.commit)}`}
    >
      <span
        className={`jp-Prophecy-gitBranchDot${current ? ' jp-mod-current' : ''}`}
      />
      <span className="jp-Prophecy-itemName jp-Prophecy-gitBranchName">
        {branch.name}
      </span>
      {remote ? <span className="jp-Prophecy-gitTag">remote</span> : null}
      {current ? (
        <span className="jp-Prophecy-gitTag">current</span>
      ) : (
        <span className="jp-Prophecy-itemActions jp-Prophecy-gitBranchActions">
          {remote ? null : (
            <button
              type="button"
              className="jp-Prophecy-linkButton"
              title={`Switch to ${branch.name}`}
              data-testid="prophecy-git-switch"
              disabled={props.busy}
              onClick={props.onSwitch}
            >
              Switch
            </button>
          )}
          <button
            type="button"
            className="jp-Prophecy-linkButton"
            title={`Merge ${branch.name} into the current branch`}
            data-testid="prophecy-git-merge"
            disabled={props.busy}
            onClick={props.onMerge}
          >
            Merge
          </button>
        </span>
      )}
    </li>
  );
}

export function BranchSection(props: IBranchSectionProps): React.ReactElement {
  const { project, status, onChanged } = props;
  const branches = useLoader(
    () => api.vcsBranches(project),
    [project, props.generation]
  );
  const action = useAction();
  const [remoteForm, setRemoteForm] = React.useState(false);
  const busy = action.state.busy !== null;
  const tracking = trackingText(status);
  const current = branches.value?.current ?? status.branch;

  const create = async (): Promise<void> => {
    const name = await askBranchName();
    if (!name) {
      return;
    }
    await action.run(`Creating ${name}`, async () => {
      await api.vcsCreateBranch(project, name);
      await api.vcsSwitch(project, name);
      onChanged();
      return `Created ${name} and switched to it`;
    });
  };

  const switchTo = (name: string): void =>
    void action.run(`Switching to ${name}`, async () => {
      await api.vcsSwitch(project, name);
      onChanged();
      return `Switched to ${name}`;
    });

  const merge = (branch: string): void =>
    void action.run(`Merging ${branch}`, async () => {
      const result = await api.vcsMerge(project, branch);
      onChanged();
      if (needsResolution(result)) {
        props.onMerge({ branch, result });
        return null;
      }
      props.onMerge(null);
      return result.up_to_date
        ? `Nothing to merge: ${branch} is merged already`
        : `Merged ${branch} (${shortCommit(result.commit)})`;
    });

  const pull = (): void =>
    void action.run('Pulling', async () => {
      const result = await api.vcsPull(project);
      onChanged();
      const source = result.source ?? 'the remote';
      if (needsResolution(result)) {
        props.onMerge({ branch: source, result });
        return null;
      }
      return result.up_to_date
        ? `Up to date with ${source}`
        : `Pulled ${source} (${shortCommit(result.commit)})`;
    });

  const push = (): void =>
    void action.run('Pushing', async () => {
      const pushed = await api.vcsPush(project);
      onChanged();
      return `Pushed ${pushed.branch} to ${pushed.remote}`;
    });

  const local = (branches.value?.branches ?? []).filter(b => !b.remote);
  const remote = (branches.value?.branches ?? []).filter(b => b.remote);
  return (
    <Section
      id="git-branch"
      title="Branch"
      actions={
        <>
          <IconButton
            icon={addIcon}
            title="New branch from the current one"
            testId="prophecy-git-new-branch"
            disabled={busy}
            onClick={() => void create()}
          />
          <IconButton
            icon={linkIcon}
            title="Set the remote to pull from and push to"
            testId="prophecy-git-remote"
            onClick={() => setRemoteForm(!remoteForm)}
          />
          <IconButton
            icon={refreshIcon}
            title="Refresh"
            testId="prophecy-git-refresh"
            onClick={props.onRefresh}
          />
        </>
      }
    >
      <div className="jp-Prophecy-gitCurrent">
        <span
          className="jp-Prophecy-gitBranchName jp-Prophecy-gitCurrentName"
          data-testid="prophecy-git-branch"
        >
          {status.branch ?? '(no branch)'}
        </span>
        {tracking ? (
          <span
            className="jp-Prophecy-gitTracking"
            data-testid="prophecy-git-tracking"
            title={`${status.ahead} commit(s) to push, ${status.behind} to pull`}
          >
            {tracking}
          </span>
        ) : null}
        <span className="jp-Prophecy-toolbar-spacer" />
        <span className="jp-Prophecy-observeActions">
          <IconButton
            icon={downloadIcon}
            label="Pull"
            title="Pull from the remote"
            testId="prophecy-git-pull"
            disabled={busy}
            onClick={pull}
          />
          <IconButton
            icon={fileUploadIcon}
            label="Push"
            title="Push to the remote"
            testId="prophecy-git-push"
            disabled={busy}
            onClick={push}
          />
        </span>
      </div>
      {props.error ? (
        <Note kind="error" testId="prophecy-git-status-error">
          {props.error}
        </Note>
      ) : null}
      {remoteForm ? (
        <RemoteForm
          project={project}
          onDone={message => {
            setRemoteForm(false);
            if (message) {
              void action.run('Saving the remote', async () => message);
            }
          }}
        />
      ) : null}
      <ActionNote state={action.state} testId="prophecy-git-branch-action" />
      {props.notice ? (
        <Note testId="prophecy-git-notice">{props.notice}</Note>
      ) : null}
      {branches.error ? (
        <Note kind="error" testId="prophecy-git-branches-error">
          {branches.error}
        </Note>
      ) : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-git-branches">
        {[...local, ...remote].map(branch => (
          <BranchItem
            key={`${branch.remote ? 'remote:' : ''}${branch.name}`}
            branch={branch}
            current={!branch.remote && branch.name === current}
            busy={busy}
            onSwitch={() => switchTo(branch.name)}
            onMerge={() => merge(branch.name)}
          />
        ))}
      </ul>
    </Section>
  );
}
