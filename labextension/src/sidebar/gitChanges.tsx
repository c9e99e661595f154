/**
 * The Git tab's changes: the files that differ from the last commit, grouped by what they
 * are, each with a checkbox; a message and Commit. A changed pipeline opens in the editor
 * with its diff drawn on the canvas.
 */
import * as React from 'react';

import * as api from '../api';
import {
  IChangeGroup,
  commitRequest,
  groupChanges,
  groupCheck,
  pruneExcluded,
  splitPath,
  statusLetter,
  toggleFile,
  toggleGroup
} from '../git/changes';
import { shownDiffs } from '../git/diffs';
import { pipelineFile } from '../graph/location';
import { IVcsChange, IVcsStatus } from '../types';
import { Note, Section } from './common';
import { ActionNote, Checkbox, useAction } from './gitCommon';

export interface IChangesSectionProps {
  project: string;
  status: IVcsStatus;
  onChanged: () => void;
  openPipeline: (path: string) => void;
}

function ChangeItem(props: {
  change: IVcsChange;
  checked: boolean;
  onToggle: () => void;
  onOpen?: () => void;
}): React.ReactElement {
  const { change } = props;
  const file = splitPath(change.path);
  // A pipeline is named as everywhere else in the Studio; its file is in the tooltip.
  const name = change.pipeline ?? file.name;
  const folder = change.pipeline ? 'pipeline' : file.folder;
  return (
    <li
      className={`jp-Prophecy-item jp-Prophecy-gitChange${props.onOpen ? '' : ' jp-mod-plain'}`}
      data-testid="prophecy-git-change"
      data-path={change.path}
      data-status={change.status}
      data-pipeline={change.pipeline ?? ''}
      title={
        props.onOpen
          ? `${change.path}: open it with its changes marked`
          : change.path
      }
      onClick={props.onOpen}
    >
      <Checkbox
        checked={props.checked}
        title={`Commit ${change.path}`}
        testId="prophecy-git-change-check"
        onChange={props.onToggle}
      />
      <span className="jp-Prophecy-itemName jp-Prophecy-gitPath">
        {name}
        {folder ? (
          <span className="jp-Prophecy-gitFolder"> {folder}</span>
        ) : null}
      </span>
      <span
        className={`jp-Prophecy-gitStatus jp-Prophecy-gitStatus-${change.status}`}
        title={change.status}
      >
        {statusLetter(change.status)}
      </span>
    </li>
  );
}

function ChangeGroup(props: {
  group: IChangeGroup;
  excluded: ReadonlySet<string>;
  setExcluded: (excluded: Set<string>) => void;
  onOpen: (change: IVcsChange) => void;
}): React.ReactElement {
  const { group, excluded } = props;
  const check = groupCheck(group, excluded);
  return (
    <li
      className="jp-Prophecy-gitGroup"
      data-testid="prophecy-git-group"
      data-group={group.group}
    >
      <div className="jp-Prophecy-gitGroupHeader">
        <Checkbox
          checked={check === 'all'}
          indeterminate={check === 'some'}
          title={`Commit every file of ${group.label}`}
          testId="prophecy-git-group-check"
          onChange={() => props.setExcluded(toggleGroup(excluded, group))}
        />
        <span className="jp-Prophecy-gitGroupName">{group.label}</span>
        <span className="jp-Prophecy-gitCount">{group.changes.length}</span>
      </div>
      <ul className="jp-Prophecy-list">
        {group.changes.map(change => (
          <ChangeItem
            key={change.path}
            change={change}
            checked={!excluded.has(change.path)}
            onToggle={() =>
              props.setExcluded(toggleFile(excluded, change.path))
            }
            onOpen={
              change.pipeline && change.status !== 'deleted'
                ? () => props.onOpen(change)
                : undefined
            }
          />
        ))}
      </ul>
    </li>
  );
}

export function ChangesSection(
  props: IChangesSectionProps
): React.ReactElement {
  const { project, status } = props;
  const [excluded, setExcluded] = React.useState<ReadonlySet<string>>(
    new Set()
  );
  const [message, setMessage] = React.useState('');
  const action = useAction();
  const changes = status.changes;
  React.useEffect(() => {
    setExcluded(current => pruneExcluded(current, changes));
  }, [changes]);
  const groups = groupChanges(changes);
  const request = status.merging
    ? { problem: 'Finish or abort the merge first' }
    : commitRequest(message, changes, excluded);

  const open = async (change: IVcsChange): Promise<void> => {
    const name = change.pipeline;
    if (!name) {
      return;
    }
    await action.run(`Reading the changes of ${name}`, async () => {
      const files = await api.vcsDiff(project, change.path);
      const file = files.find(f => f.kind === 'pipeline');
      if (file?.kind === 'pipeline') {
        shownDiffs.show({
          project,
          name,
          diff: file.diff,
          against: 'the last commit'
        });
      }
    });
    props.openPipeline(pipelineFile(project, name));
  };

  const commit = (): void => {
    if (!('paths' in request)) {
      return;
    }
    void action.run('Committing', async () => {
      const made = await api.vcsCommit(project, request.message, request.paths);
      setMessage('');
      props.onChanged();
      const count = request.paths.length;
      return `Committed ${count} file${count === 1 ? '' : 's'} as ${made.commit.slice(0, 7)}`;
    });
  };

  const count = changes.length;
  return (
    <Section id="git-changes" title={count ? `Changes (${count})` : 'Changes'}>
      {count === 0 ? (
        <Note testId="prophecy-git-clean">
          Nothing to commit: every file is as in the last commit.
        </Note>
      ) : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-git-changes">
        {groups.map(group => (
          <ChangeGroup
            key={group.group}
            group={group}
            excluded={excluded}
            setExcluded={setExcluded}
            onOpen={change => void open(change)}
          />
        ))}
      </ul>
      <form
        className="jp-Prophecy-gitCommit"
        onSubmit={event => {
          event.preventDefault();
          commit();
        }}
      >
        <textarea
          className="jp-Prophecy-input jp-Prophecy-gitMessage"
          data-testid="prophecy-git-message"
          placeholder="Commit message"
          rows={2}
          value={message}
          onChange={event => setMessage(event.target.value)}
          onKeyDown={event => {
            if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
              event.preventDefault();
              commit();
            }
          }}
        />
        <button
          type="submit"
          className="jp-Prophecy-gitButton jp-mod-accept"
          data-testid="prophecy-git-commit"
          disabled={!('paths' in request) || action.state.busy !== null}
          title={
            'paths' in request
              ? `Commit ${request.paths.length} file(s) (Ctrl+Enter)`
              : request.problem
          }
        >
          Commit
        </button>
      </form>
      <ActionNote state={action.state} testId="prophecy-git-commit" />
    </Section>
  );
}
