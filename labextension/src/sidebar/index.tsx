/**
 * The Studio's left panel: the project, then either what is built in it (its pipelines,
 * fabrics and recent runs), what Automate does with it (Observe) or its Git repository.
 */
import * as React from 'react';

import { ReactWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import * as api from '../api';
import { IStudioSettings, StudioSettings } from '../settings';
import { FoldContext, useFolds, useLoader } from './common';
import { BUILT_IN_FABRIC } from './fabricDraft';
import { FabricsSection } from './fabrics';
import { GitPanel } from './git';
import { ObservePanel } from './observe';
import { PipelinesSection } from './pipelines';
import { ProjectSection, readStoredProject, storeProject } from './projects';
import { RunsSection } from './runs';

export interface ISidebarOptions {
  /** Open a pipeline file (path relative to the server root) in the pipeline editor. */
  openPipeline: (path: string) => void;
  /** A pipeline file was renamed (`to` is its new path) or deleted (`to` is null). */
  pipelineMoved?: (from: string, to: string | null) => void;
  /** Open a document (a run's executed notebook) in JupyterLab's own viewer. */
  openDocument?: (path: string) => void;
  settings: StudioSettings;
}

/** Lumino's message type, named without depending on @lumino/messaging directly. */
type Message = Parameters<Widget['processMessage']>[0];

interface IStudioPanelProps {
  openPipeline: (path: string) => void;
  pipelineMoved?: (from: string, to: string | null) => void;
  openDocument?: (path: string) => void;
  settings: IStudioSettings;
  /** The panel is on screen: runs are polled only then. */
  visible: boolean;
  /** How many times the panel was shown; each showing reads the lists again. */
  shown: number;
}

type View = 'build' | 'observe' | 'git';

const VIEWS: { view: View; label: string; title: string }[] = [
  {
    view: 'build',
    label: 'Build',
    title: 'Pipelines, fabrics and recent runs'
  },
  {
    view: 'observe',
    label: 'Observe',
    title: 'Run history, schedules and deployments'
  },
  {
    view: 'git',
    label: 'Git',
    title: 'Changes, commits, branches, merges and releases'
  }
];

function ViewTabs(props: {
  view: View;
  onChoose: (view: View) => void;
}): React.ReactElement {
  return (
    <div className="jp-Prophecy-viewTabs" role="tablist">
      {VIEWS.map(({ view, label, title }) => (
        <button
          key={view}
          type="button"
          role="tab"
          className="jp-Prophecy-viewTab"
          aria-selected={props.view === view}
          title={title}
          data-testid={`prophecy-view-${view}`}
          onClick={() => props.onChoose(view)}
        >
          {label}
        </button>
      ))}
    </div>
  );
}

/** The fabric used when none is named: the user's setting, else the project's. */
function defaultFabricOf(
  settings: IStudioSettings,
  projectDefault: unknown
): string {
  if (settings.defaultFabric) {
    return settings.defaultFabric;
  }
  if (typeof projectDefault === 'string' && projectDefault) {
    return projectDefault;
  }
  return BUILT_IN_FABRIC;
}

function StudioPanel(props: IStudioPanelProps): React.ReactElement {
  const [refreshes, setRefreshes] = React.useState(0);
  const [chosen, setChosen] = React.useState<string | null>(readStoredProject);
  const [view, setView] = React.useState<View>('build');
  const folds = useFolds();
  const projects = useLoader(() => api.projects(), [refreshes, props.shown]);
  const list = projects.value;
  // The stored choice may be gone (folder moved): fall back to the first project.
  const current = list?.find(project => project.path === chosen) ?? list?.[0];
  const generation = `${props.shown}.${refreshes}`;

  const choose = (path: string): void => {
    storeProject(path);
    setChosen(path);
  };

  return (
    <FoldContext.Provider value={folds}>
      <div className="jp-Prophecy-sidebarContent">
        <ViewTabs view={view} onChoose={setView} />
        <ProjectSection
          projects={list}
          current={current}
          loading={projects.loading}
          error={projects.error}
          onChoose={choose}
          onRefresh={() => setRefreshes(count => count + 1)}
        />
        {current && view === 'observe' ? (
          <ObservePanel
            key={current.path}
            project={current.path}
            visible={props.visible}
            generation={generation}
            openDocument={props.openDocument}
          />
        ) : null}
        {current && view === 'git' ? (
          <GitPanel
            key={current.path}
            project={current.path}
            visible={props.visible}
            generation={generation}
            openPipeline={props.openPipeline}
          />
        ) : null}
        {current && view === 'build' ? (
          // Keyed by project: nothing of the previous project (a list, an open form, a
          // test result) survives the switch.
          <React.Fragment key={current.path}>
            <PipelinesSection
              project={current.path}
              generation={generation}
              openPipeline={props.openPipeline}
              pipelineMoved={props.pipelineMoved}
            />
            <FabricsSection
              project={current.path}
              generation={generation}
              defaultFabric={defaultFabricOf(
                props.settings,
                current.default_fabric
              )}
            />
            <RunsSection
              project={current.path}
              visible={props.visible}
              generation={generation}
              openPipeline={props.openPipeline}
            />
          </React.Fragment>
        ) : null}
      </div>
    </FoldContext.Provider>
  );
}

/** The panel as a JupyterLab widget, to add to the left area of the shell. */
export class StudioSidebar extends ReactWidget {
  constructor(options: ISidebarOptions) {
    super();
    this._options = options;
    this.id = 'prophecy-studio-sidebar';
    this.title.caption = 'Prophecy Studio';
    this.addClass('jp-Prophecy-sidebar');
    options.settings.changed.connect(this._onSettingsChanged, this);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._options.settings.changed.disconnect(this._onSettingsChanged, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._shown += 1;
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.update();
  }

  protected render(): React.ReactElement {
    return (
      <StudioPanel
        openPipeline={this._options.openPipeline}
        pipelineMoved={this._options.pipelineMoved}
        openDocument={this._options.openDocument}
        settings={this._options.settings.values}
        visible={this.isVisible}
        shown={this._shown}
      />
    );
  }

  private _onSettingsChanged(): void {
    this.update();
  }

  private readonly _options: ISidebarOptions;
  private _shown = 0;
}
