/**
 * The sidebar's Git tab: the project's repository. Its branch (pull, push, switch, create,
 * merge), a merge waiting for the user's choices, the changed files to commit and the
 * releases to deploy. An action in one section reads the others again.
 */
import * as React from 'react';

import { refreshIcon } from '@jupyterlab/ui-components';

import * as api from '../api';
import { shownDiffs } from '../git/diffs';
import { needsResolution } from '../git/conflicts';
import { IVcsStatus } from '../types';
import { IconButton, Note, Section, useLoader } from './common';
import { BranchSection } from './gitBranches';
import { ChangesSection } from './gitChanges';
import {
  ActionEpoch,
  ActionNote,
  IPendingMerge,
  pendingMerges,
  useAction,
  useActionEpoch
} from './gitCommon';
import { MergeSection } from './gitMerge';
import { ReleasesSection } from './gitReleases';

export interface IGitPanelProps {
  project: string;
  /** The panel is on screen: the status is read again now and then only then. */
  visible: boolean;
  generation: string;
  openPipeline: (path: string) => void;
}

/** How often the status is read again, for edits made in the editor, a terminal or Git. */
const STATUS_POLL_MS = 10_000;

/** The status, or null when the project is not in a Git repository yet. */
async function statusOrNone(project: string): Promise<IVcsStatus | null> {
  try {
    return await api.vcsStatus(project);
  } catch (error) {
    if (
      error instanceof api.ApiError &&
      (error.status === 404 || error.status === 409)
    ) {
      return null;
    }
    throw error;
  }
}

function NoRepository(props: {
  project: string;
  onChanged: () => void;
  onRefresh: () => void;
}): React.ReactElement {
  const action = useAction();
  const init = (): void =>
    void action.run('Creating the repository', async () => {
      await api.vcsInit(props.project);
      props.onChanged();
    });
  return (
    <Section
      id="git-repository"
      title="Repository"
      actions={
        <IconButton
          icon={refreshIcon}
          title="Look again"
          testId="prophecy-git-refresh"
          onClick={props.onRefresh}
        />
      }
    >
      <Note testId="prophecy-git-no-repository">
        This project is not under version control yet.
      </Note>
      <button
        type="button"
        className="jp-Prophecy-gitButton jp-mod-accept"
        data-testid="prophecy-git-init"
        disabled={action.state.busy !== null}
        onClick={init}
      >
        Initialize repository
      </button>
      <ActionNote state={action.state} testId="prophecy-git-init" />
    </Section>
  );
}

export function GitPanel(props: IGitPanelProps): React.ReactElement {
  const { project } = props;
  const [changes, setChanges] = React.useState(0);
  const changed = React.useCallback(() => setChanges(count => count + 1), []);
  const generation = `${props.generation}.${changes}`;
  const [polls, setPolls] = React.useState(0);
  const status = useLoader(
    () => statusOrNone(project),
    [project, generation, polls]
  );
  React.useEffect(() => {
    if (!props.visible) {
      return;
    }
    const timer = window.setInterval(() => {
      if (!document.hidden) {
        setPolls(count => count + 1);
      }
    }, STATUS_POLL_MS);
    return () => window.clearInterval(timer);
  }, [props.visible]);
  const epochs = useActionEpoch();
  const [notice, setNotice] = React.useState<{
    text: string;
    epoch: number;
  } | null>(null);
  const [merge, setMergeState] = React.useState<IPendingMerge | null>(
    () => pendingMerges.get(project) ?? null
  );
  const setMerge = React.useCallback(
    (pending: IPendingMerge | null) => {
      if (pending && needsResolution(pending.result)) {
        pendingMerges.set(project, pending);
        setMergeState(pending);
      } else {
        pendingMerges.delete(project);
        setMergeState(null);
      }
    },
    [project]
  );

  // A merge stopped before the panel opened (another session, the CLI) is shown as its
  // own POST answered; one that ended elsewhere is no longer shown, once a status read
  // after it started says so.
  const current = status.value;
  const sawMerging = React.useRef(false);
  // Set when the merge ends here, until a status read after that says so.
  const ended = React.useRef(false);
  React.useEffect(() => {
    sawMerging.current = false;
  }, [merge]);
  React.useEffect(() => {
    if (!current) {
      return;
    }
    if (!current.merging) {
      ended.current = false;
    }
    if (current.merging && merge) {
      sawMerging.current = true;
    } else if (!current.merging && merge && sawMerging.current) {
      setMerge(null);
    } else if (current.merging && !merge && !ended.current) {
      let live = true;
      api.vcsMergeState(project).then(
        result => {
          if (live) {
            setMerge({ branch: 'the other branch', result });
          }
        },
        () => undefined
      );
      return () => {
        live = false;
      };
    }
    return undefined;
  }, [current, merge, project, setMerge]);

  // An editor showing the diff of a pipeline that is no longer changed stops showing it.
  React.useEffect(() => {
    if (current) {
      const pipelines = current.changes
        .map(change => change.pipeline)
        .filter((name): name is string => !!name);
      shownDiffs.keepOnly(project, new Set(pipelines));
    }
  }, [current, project]);

  if (current === undefined) {
    return (
      <Section id="git-branch" title="Branch">
        {status.error ? (
          <Note kind="error" testId="prophecy-git-status-error">
            {status.error}
          </Note>
        ) : (
          <Note>Loading…</Note>
        )}
      </Section>
    );
  }
  if (current === null) {
    return (
      <NoRepository
        project={project}
        onChanged={changed}
        onRefresh={status.reload}
      />
    );
  }
  return (
    <ActionEpoch.Provider value={epochs}>
      <BranchSection
        project={project}
        status={current}
        generation={generation}
        error={status.error}
        onRefresh={changed}
        onChanged={() => {
          shownDiffs.clear(project);
          changed();
        }}
        notice={
          notice && notice.epoch === epochs.current && !merge
            ? notice.text
            : null
        }
        onMerge={setMerge}
      />
      {merge ? (
        <MergeSection
          project={project}
          merge={merge}
          onEnded={message => {
            ended.current = true;
            setMerge(null);
            setNotice({ text: message, epoch: epochs.start() });
            shownDiffs.clear(project);
            changed();
          }}
        />
      ) : null}
      <ChangesSection
        project={project}
        status={current}
        onChanged={changed}
        openPipeline={props.openPipeline}
      />
      <ReleasesSection
        project={project}
        generation={generation}
        onChanged={changed}
      />
    </ActionEpoch.Provider>
  );
}
