/**
 * The Studio's left panel: the project, its pipelines and fabrics, and its recent runs.
 */
import * as React from 'react';

import { ReactWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import * as api from '../api';
import { IStudioSettings, StudioSettings } from '../settings';
import { FoldContext, useFolds, useLoader } from './common';
import { BUILT_IN_FABRIC } from './fabricDraft';
import { FabricsSection } from './fabrics';
import { PipelinesSection } from './pipelines';
import { ProjectSection, readStoredProject, storeProject } from './projects';
import { RunsSection } from './runs';

export interface ISidebarOptions {
  /** Open a pipeline file (path relative to the server root) in the pipeline editor. */
  openPipeline: (path: string) => void;
  /** A pipeline file was renamed (`to` is its new path) or deleted (`to` is null). */
  pipelineMoved?: (from: string, to: string | null) => void;
  settings: StudioSettings;
}

/** Lumino's message type, named without depending on @lumino/messaging directly. */
type Message = Parameters<Widget['processMessage']>[0];

interface IStudioPanelProps {
  openPipeline: (path: string) => void;
  pipelineMoved?: (from: string, to: string | null) => void;
  settings: IStudioSettings;
  /** The panel is on screen: runs are polled only then. */
  visible: boolean;
  /** How many times the panel was shown; each showing reads the lists again. */
  shown: number;
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
        <ProjectSection
          projects={list}
          current={current}
          loading={projects.loading}
          error={projects.error}
          onChoose={choose}
          onRefresh={() => setRefreshes(count => count + 1)}
        />
        {current ? (
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
