/**
 * The project's pipelines: open one in the editor, create, rename and delete them.
 */
import * as React from 'react';

import {
  addIcon,
  deleteIcon,
  editIcon,
  refreshIcon
} from '@jupyterlab/ui-components';

import * as api from '../api';
import { pipelineFile } from '../graph/location';
import {
  IconButton,
  Note,
  Section,
  askName,
  confirmAction,
  reportError,
  useLoader
} from './common';

/** The pipeline's file, relative to the server root, as the editor opens it. */

export interface IPipelinesSectionProps {
  project: string;
  /** Changes when the lists should be read again. */
  generation: string;
  openPipeline: (path: string) => void;
  /** Lets open editors follow a rename (`to`) or a deletion (`to` null). */
  pipelineMoved?: (from: string, to: string | null) => void;
}

export function PipelinesSection(
  props: IPipelinesSectionProps
): React.ReactElement {
  const { project, openPipeline } = props;
  const list = useLoader(
    () => api.pipelines(project),
    [project, props.generation]
  );

  const create = async (): Promise<void> => {
    const name = await askName('New pipeline', 'Create');
    if (!name) {
      return;
    }
    try {
      await api.createPipeline(project, name);
    } catch (error) {
      await reportError('Cannot create the pipeline', error);
      return;
    }
    list.reload();
    openPipeline(pipelineFile(project, name));
  };

  const rename = async (name: string): Promise<void> => {
    const newName = await askName(`Rename pipeline ${name}`, 'Rename', name);
    if (!newName || newName === name) {
      return;
    }
    try {
      await api.renamePipeline(project, name, newName);
      props.pipelineMoved?.(
        pipelineFile(project, name),
        pipelineFile(project, newName)
      );
    } catch (error) {
      await reportError('Cannot rename the pipeline', error);
    }
    list.reload();
  };

  const remove = async (name: string): Promise<void> => {
    const sure = await confirmAction(
      'Delete pipeline',
      `Delete the pipeline “${name}”? Its file is removed.`,
      'Delete'
    );
    if (!sure) {
      return;
    }
    try {
      await api.deletePipeline(project, name);
      props.pipelineMoved?.(pipelineFile(project, name), null);
    } catch (error) {
      await reportError('Cannot delete the pipeline', error);
    }
    list.reload();
  };

  const names = list.value?.map(pipeline => pipeline.name) ?? [];
  return (
    <Section
      id="pipelines"
      title="Pipelines"
      actions={
        <>
          <IconButton
            icon={addIcon}
            title="New pipeline"
            testId="prophecy-new-pipeline"
            onClick={() => void create()}
          />
          <IconButton
            icon={refreshIcon}
            title="Refresh pipelines"
            testId="prophecy-refresh-pipelines"
            onClick={list.reload}
          />
        </>
      }
    >
      {list.error ? (
        <Note kind="error" testId="prophecy-pipelines-error">
          {list.error}
        </Note>
      ) : null}
      {list.value && names.length === 0 ? (
        <Note testId="prophecy-no-pipelines">No pipeline yet.</Note>
      ) : null}
      {list.loading && !list.value ? <Note>Loading…</Note> : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-pipeline-list">
        {names.map(name => (
          <li
            key={name}
            className="jp-Prophecy-item jp-Prophecy-pipelineItem"
            data-testid="prophecy-pipeline-item"
            data-name={name}
            title={`Open ${pipelineFile(project, name)}`}
            onClick={() => openPipeline(pipelineFile(project, name))}
          >
            {/* The row opens on click; the button is there for the keyboard. */}
            <button type="button" className="jp-Prophecy-itemName">
              {name}
            </button>
            <span className="jp-Prophecy-itemActions">
              <IconButton
                icon={editIcon}
                title={`Rename ${name}`}
                testId="prophecy-pipeline-rename"
                onClick={() => void rename(name)}
              />
              <IconButton
                icon={deleteIcon}
                title={`Delete ${name}`}
                testId="prophecy-pipeline-delete"
                onClick={() => void remove(name)}
              />
            </span>
          </li>
        ))}
      </ul>
    </Section>
  );
}
