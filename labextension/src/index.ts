/**
 * The Studio's JupyterLab plugins: the pipeline editor for `*.pipeline.json` files, the
 * "New Pipeline" launcher item and commands, the project sidebar and the settings.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import * as api from './api';
import { layoutPipeline, runPipeline } from './editor/editor';
import { messageOf } from './editor/model';
import {
  FACTORY,
  FILE_TYPE,
  PipelineDocument,
  PipelineEditorFactory
} from './editor/widget';
import { pipelineFile } from './graph/location';
import { GEM_ID } from './graph/state';
import { RunNotebooksDrive } from './observe/drive';
import { StudioSidebar } from './sidebar';
import { PLUGIN_ID, StudioSettings } from './settings';
import pipelineSvg from '../style/icons/pipeline.svg';

export const pipelineIcon = new LabIcon({
  name: 'prophecy-jupyter:pipeline',
  svgstr: pipelineSvg
});

const CommandIDs = {
  newPipeline: 'prophecy:new-pipeline',
  run: 'prophecy:run-pipeline',
  layout: 'prophecy:auto-layout',
  undo: 'prophecy:undo',
  redo: 'prophecy:redo',
  copy: 'prophecy:copy',
  paste: 'prophecy:paste',
  selectAll: 'prophecy:select-all',
  showSidebar: 'prophecy:show-sidebar'
} as const;

/** Keys that act on the canvas only, so that typing in a form field keeps its own. */
const CANVAS = '.jp-Prophecy-flow';

/** The project a new pipeline goes to: the folder shown, or its parent inside `pipelines/`. */
function projectOf(folder: string): string {
  return PathExt.basename(folder) === 'pipelines'
    ? PathExt.dirname(folder)
    : folder;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Prophecy Studio: visual pipelines of gems in JupyterLab.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [
    ILauncher,
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    browser: IDefaultFileBrowser | null
  ) => {
    const settings = new StudioSettings();
    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(loaded => settings.connect(loaded))
        .catch(reason =>
          console.warn('Prophecy Studio settings not loaded', reason)
        );
    }
    const catalog = api.gems();
    catalog.catch(
      reason =>
        void showErrorMessage(
          'Prophecy Studio',
          `The gem catalog did not load: ${messageOf(reason)}`
        )
    );

    app.docRegistry.addFileType({
      name: FILE_TYPE,
      displayName: 'Pipeline',
      extensions: ['.pipeline.json'],
      pattern: '.*\\.pipeline\\.json$',
      mimeTypes: ['application/json'],
      contentType: 'file',
      fileFormat: 'text',
      icon: pipelineIcon
    });
    const factory = new PipelineEditorFactory(
      {
        name: FACTORY,
        label: 'Pipeline Editor',
        modelName: 'text',
        fileTypes: [FILE_TYPE],
        defaultFor: [FILE_TYPE]
      },
      catalog,
      settings,
      app.serviceManager.contents
    );
    app.docRegistry.addWidgetFactory(factory);

    const tracker = new WidgetTracker<PipelineDocument>({
      namespace: 'prophecy-pipeline'
    });
    factory.widgetCreated.connect((_, widget) => {
      widget.title.icon = pipelineIcon;
      void tracker.add(widget);
      widget.context.pathChanged.connect(() => void tracker.save(widget));
    });
    if (restorer) {
      void restorer.restore(tracker, {
        command: 'docmanager:open',
        args: widget => ({ path: widget.context.path, factory: FACTORY }),
        name: widget => widget.context.path
      });
    }

    app.commands.addCommand(CommandIDs.newPipeline, {
      label: args => (args.isLauncher ? 'New Pipeline' : 'New Pipeline…'),
      caption: 'Create a pipeline in the project shown in the file browser',
      icon: args => (args.isPalette ? undefined : pipelineIcon),
      execute: async args => {
        const folder =
          typeof args.cwd === 'string' ? args.cwd : (browser?.model.path ?? '');
        const project = projectOf(folder);
        const answer = await InputDialog.getText({
          title: `New pipeline in ${project || 'the root project'}`,
          label: 'Name (letters, digits and _)',
          placeholder: 'my_pipeline'
        });
        const name = answer.value?.trim();
        if (!answer.button.accept || !name) {
          return;
        }
        if (!GEM_ID.test(name)) {
          await showErrorMessage(
            'New pipeline',
            `'${name}' is not a valid pipeline name.`
          );
          return;
        }
        try {
          await api.createPipeline(project, name);
        } catch (error) {
          await showErrorMessage('New pipeline', messageOf(error));
          return;
        }
        return docManager.openOrReveal(pipelineFile(project, name), FACTORY);
      }
    });
    // Commands that act on the pipeline editor in front.
    const editorCommands: [
      string,
      string,
      (widget: PipelineDocument) => void | Promise<void>
    ][] = [
      [
        CommandIDs.run,
        'Run Pipeline',
        w => runPipeline(w.content.model, w.content.actions, settings)
      ],
      [
        CommandIDs.layout,
        'Auto-Layout Pipeline',
        w => layoutPipeline(w.content.model, w.content.controls)
      ],
      [CommandIDs.undo, 'Undo Pipeline Edit', w => w.content.model.undo()],
      [CommandIDs.redo, 'Redo Pipeline Edit', w => w.content.model.redo()],
      [CommandIDs.copy, 'Copy Gems', w => void w.content.model.copy()],
      [CommandIDs.paste, 'Paste Gems', w => w.content.model.paste()],
      [
        CommandIDs.selectAll,
        'Select All Gems',
        w =>
          w.content.model.select(
            w.content.model.document.gems.map(gem => gem.id)
          )
      ]
    ];
    for (const [id, label, act] of editorCommands) {
      app.commands.addCommand(id, {
        label,
        isEnabled: () => tracker.currentWidget !== null,
        execute: () => {
          const widget = tracker.currentWidget;
          return widget ? act(widget) : undefined;
        }
      });
    }
    const bindings: [string, string[]][] = [
      [CommandIDs.undo, ['Accel Z']],
      [CommandIDs.redo, ['Accel Shift Z']],
      [CommandIDs.redo, ['Accel Y']],
      [CommandIDs.copy, ['Accel C']],
      [CommandIDs.paste, ['Accel V']],
      [CommandIDs.selectAll, ['Accel A']],
      [CommandIDs.layout, ['Accel Shift L']],
      [CommandIDs.run, ['Shift R']]
    ];
    for (const [command, keys] of bindings) {
      app.commands.addKeyBinding({ command, keys, selector: CANVAS });
    }

    app.serviceManager.contents.addDrive(new RunNotebooksDrive());
    const sidebar = new StudioSidebar({
      openPipeline: path => void docManager.openOrReveal(path, FACTORY),
      openDocument: path => void docManager.openOrReveal(path),
      pipelineMoved: (from, to) => {
        // The file moved on the server: an editor still showing it follows, or closes.
        const widget = docManager.findWidget(from, FACTORY);
        if (widget) {
          widget.dispose();
          if (to) {
            void docManager.openOrReveal(to, FACTORY);
          }
        }
      },
      settings
    });
    sidebar.title.icon = pipelineIcon;
    app.shell.add(sidebar, 'left', { rank: 200 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }
    app.commands.addCommand(CommandIDs.showSidebar, {
      label: 'Show Prophecy Studio Sidebar',
      execute: () => app.shell.activateById(sidebar.id)
    });

    if (launcher) {
      launcher.add({
        command: CommandIDs.newPipeline,
        category: 'Prophecy',
        rank: 1
      });
    }
    if (palette) {
      const category = 'Prophecy';
      for (const command of [
        CommandIDs.newPipeline,
        CommandIDs.run,
        CommandIDs.layout,
        CommandIDs.showSidebar
      ]) {
        palette.addItem({ command, category, args: { isPalette: true } });
      }
    }
  }
};

export default plugin;
