/**
 * The conflict view of a merge that stopped: each property both branches changed
 * differently (its gem, its path, why, and both values side by side) with a choice of
 * Ours or Theirs, each conflicting text file likewise; Finish merge once all are chosen,
 * or Abort to go back to before the merge.
 */
import * as React from 'react';

import { closeIcon } from '@jupyterlab/ui-components';

import * as api from '../api';
import {
  IConflictChoices,
  NO_CHOICES,
  choose,
  chooseAll,
  chooseText,
  conflictCount,
  conflictField,
  resolution,
  showValue,
  sideOf,
  unresolvedCount
} from '../git/conflicts';
import { shortCommit } from '../git/changes';
import { IFileConflicts, IPipelineConflict, MergeSide } from '../types';
import { IconButton, Note, Section, confirmAction } from './common';
import { ActionNote, IPendingMerge, useAction } from './gitCommon';

export interface IMergeSectionProps {
  project: string;
  merge: IPendingMerge;
  /** The merge was finished or aborted; `message` says which. */
  onEnded: (message: string) => void;
}

const SIDES: { side: MergeSide; label: string; title: string }[] = [
  { side: 'ours', label: 'Ours', title: 'Keep the current branch’s value' },
  { side: 'theirs', label: 'Theirs', title: 'Take the merged branch’s value' }
];

function SideButtons(props: {
  chosen: MergeSide | undefined;
  onChoose: (side: MergeSide) => void;
}): React.ReactElement {
  return (
    <span className="jp-Prophecy-gitSides" role="radiogroup">
      {SIDES.map(({ side, label, title }) => (
        <button
          key={side}
          type="button"
          role="radio"
          aria-checked={props.chosen === side}
          className="jp-Prophecy-gitSide"
          data-testid={`prophecy-git-choose-${side}`}
          title={title}
          onClick={() => props.onChoose(side)}
        >
          {label}
        </button>
      ))}
    </span>
  );
}

function ConflictItem(props: {
  file: IFileConflicts;
  conflict: IPipelineConflict;
  chosen: MergeSide | undefined;
  onChoose: (side: MergeSide) => void;
}): React.ReactElement {
  const { conflict, chosen } = props;
  const value = (side: MergeSide, label: string): React.ReactElement => (
    <div
      className={`jp-Prophecy-gitValue${chosen === side ? ' jp-mod-chosen' : ''}`}
      data-testid={`prophecy-git-${side}-value`}
      onClick={() => props.onChoose(side)}
    >
      <div className="jp-Prophecy-gitValueLabel">{label}</div>
      <pre>{showValue(conflict[side])}</pre>
    </div>
  );
  return (
    <li
      className="jp-Prophecy-gitConflict"
      data-testid="prophecy-git-conflict"
      data-gem={conflict.gem_id ?? ''}
      data-path={conflict.path}
      data-chosen={chosen ?? ''}
    >
      <div className="jp-Prophecy-gitConflictTitle" title={conflict.path}>
        <span className="jp-Prophecy-gitConflictGem">
          {conflict.gem_id ?? 'pipeline'}
        </span>
        <code className="jp-Prophecy-gitConflictField">
          {conflictField(conflict)}
        </code>
      </div>
      <div className="jp-Prophecy-gitReason">{conflict.reason}</div>
      <div className="jp-Prophecy-gitValues">
        {value('ours', 'Ours')}
        {value('theirs', 'Theirs')}
      </div>
      <div className="jp-Prophecy-gitConflictFoot">
        {conflict.base !== undefined ? (
          <span
            className="jp-Prophecy-gitBase"
            title="The value before both changed it"
          >
            Before: <code>{showValue(conflict.base)}</code>
          </span>
        ) : null}
        <SideButtons chosen={chosen} onChoose={props.onChoose} />
      </div>
    </li>
  );
}

export function MergeSection(props: IMergeSectionProps): React.ReactElement {
  const { project, merge } = props;
  const result = merge.result;
  const [choices, setChoices] = React.useState<IConflictChoices>(NO_CHOICES);
  const action = useAction();
  const left = unresolvedCount(result, choices);
  const body = resolution(result, choices);
  const busy = action.state.busy !== null;

  const finish = (): void => {
    if (!body) {
      return;
    }
    void action.run('Finishing the merge', async () => {
      const ended = await api.vcsResolveMerge(project, body);
      props.onEnded(
        ended.commit
          ? `Merged ${merge.branch} (${shortCommit(ended.commit)})`
          : `Merged ${merge.branch}`
      );
    });
  };

  const abort = async (): Promise<void> => {
    const sure = await confirmAction(
      'Abort the merge',
      `Stop merging ${merge.branch}? Every file goes back to how it was before the merge.`,
      'Abort merge'
    );
    if (sure) {
      await action.run('Aborting the merge', async () => {
        await api.vcsAbortMerge(project);
        props.onEnded(`Merge of ${merge.branch} aborted`);
      });
    }
  };

  const total = conflictCount(result);
  return (
    <Section
      id="git-merge"
      title={`Merge conflicts (${total})`}
      actions={
        <IconButton
          icon={closeIcon}
          title="Abort the merge"
          testId="prophecy-git-abort-merge-icon"
          disabled={busy}
          onClick={() => void abort()}
        />
      }
    >
      <div data-testid="prophecy-git-merge-view">
        <Note>
          Merging <strong>{merge.branch}</strong>: choose the value to keep for
          each conflict.
        </Note>
        <div className="jp-Prophecy-gitAll">
          <button
            type="button"
            className="jp-Prophecy-linkButton"
            data-testid="prophecy-git-all-ours"
            onClick={() => setChoices(chooseAll(result, 'ours'))}
          >
            All ours
          </button>
          <button
            type="button"
            className="jp-Prophecy-linkButton"
            data-testid="prophecy-git-all-theirs"
            onClick={() => setChoices(chooseAll(result, 'theirs'))}
          >
            All theirs
          </button>
        </div>
        {result.conflicts.map(file => (
          <div
            key={file.path}
            className="jp-Prophecy-gitConflictFile"
            data-testid="prophecy-git-conflict-file"
            data-path={file.path}
          >
            <div className="jp-Prophecy-observeHeading" title={file.path}>
              {file.pipeline ?? file.path}
            </div>
            <ul className="jp-Prophecy-list">
              {file.conflicts.map(conflict => (
                <ConflictItem
                  key={conflict.path}
                  file={file}
                  conflict={conflict}
                  chosen={sideOf(choices, file.path, conflict.path)}
                  onChoose={side =>
                    setChoices(current =>
                      choose(current, file.path, conflict.path, side)
                    )
                  }
                />
              ))}
            </ul>
          </div>
        ))}
        {result.text_conflicts.length ? (
          <div className="jp-Prophecy-gitConflictFile">
            <div className="jp-Prophecy-observeHeading">Other files</div>
            <ul className="jp-Prophecy-list">
              {result.text_conflicts.map(file => (
                <li
                  key={file}
                  className="jp-Prophecy-gitConflict"
                  data-testid="prophecy-git-text-conflict"
                  data-path={file}
                  data-chosen={choices.text[file] ?? ''}
                >
                  <div className="jp-Prophecy-observeLine">
                    <span className="jp-Prophecy-gitConflictGem">{file}</span>
                    <span className="jp-Prophecy-toolbar-spacer" />
                    <SideButtons
                      chosen={choices.text[file]}
                      onChoose={side =>
                        setChoices(current => chooseText(current, file, side))
                      }
                    />
                  </div>
                  <div className="jp-Prophecy-gitReason">
                    Both branches changed this file: one side is kept whole.
                  </div>
                </li>
              ))}
            </ul>
          </div>
        ) : null}
        <ActionNote state={action.state} testId="prophecy-git-merge-action" />
        <div className="jp-Prophecy-formButtons">
          <button
            type="button"
            className="jp-Prophecy-gitButton"
            data-testid="prophecy-git-abort-merge"
            disabled={busy}
            onClick={() => void abort()}
          >
            Abort
          </button>
          <button
            type="button"
            className="jp-Prophecy-gitButton jp-mod-accept"
            data-testid="prophecy-git-finish-merge"
            disabled={!body || busy}
            title={
              body
                ? 'Write the chosen values and commit the merge'
                : `${left} conflict${left === 1 ? '' : 's'} without a choice`
            }
            onClick={finish}
          >
            Finish merge
          </button>
        </div>
      </div>
    </Section>
  );
}
