/**
 * The project chooser. The choice is kept in localStorage so the Studio reopens on the
 * project the user last worked in.
 */
import * as React from 'react';

import { refreshIcon } from '@jupyterlab/ui-components';

import { IProjectSummary } from '../types';
import { IconButton, Note, Section } from './common';

const STORAGE_KEY = 'prophecy-studio:project';

/** The stored project path ('' is the root), or null when none was chosen yet. */
export function readStoredProject(): string | null {
  try {
    return window.localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage may be disabled by the browser; the choice is then not remembered.
    return null;
  }
}

export function storeProject(path: string): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, path);
  } catch {
    // As above: nothing to remember it in.
  }
}

/** What the chooser shows for a project: its name, else its folder. */
export function projectLabel(project: IProjectSummary): string {
  return project.name || project.path || '(server root)';
}

/** Where a project lives, for the chooser's tooltip. */
function projectFolder(project: IProjectSummary): string {
  return project.path ? `Folder ${project.path}` : 'The server root folder';
}

export interface IProjectSectionProps {
  projects: IProjectSummary[] | undefined;
  current: IProjectSummary | undefined;
  loading: boolean;
  error: string | null;
  onChoose: (path: string) => void;
  onRefresh: () => void;
}

export function ProjectSection(
  props: IProjectSectionProps
): React.ReactElement {
  const { projects, current, loading, error } = props;
  const problem = current?.error;
  return (
    <Section
      id="project"
      title="Project"
      actions={
        <IconButton
          icon={refreshIcon}
          title="Refresh projects, pipelines and fabrics"
          testId="prophecy-refresh-projects"
          onClick={props.onRefresh}
        />
      }
    >
      {projects && projects.length > 0 ? (
        <select
          className="jp-Prophecy-select jp-Prophecy-projectSelect"
          data-testid="prophecy-project-select"
          value={current?.path ?? ''}
          title={current ? projectFolder(current) : undefined}
          onChange={event => props.onChoose(event.target.value)}
        >
          {projects.map(project => (
            <option key={project.path} value={project.path}>
              {projectLabel(project)}
            </option>
          ))}
        </select>
      ) : null}
      {typeof problem === 'string' && problem ? (
        <Note kind="error" testId="prophecy-project-error">
          {problem}
        </Note>
      ) : null}
      {error ? (
        <Note kind="error" testId="prophecy-projects-error">
          {error}
        </Note>
      ) : null}
      {!error && !loading && projects?.length === 0 ? (
        <Note testId="prophecy-no-project">
          No project under the server root: a project is a folder holding
          prophecy_project.yml.
        </Note>
      ) : null}
      {loading && !projects ? <Note>Loading…</Note> : null}
    </Section>
  );
}
