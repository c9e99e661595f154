/**
 * The pipeline editor as a JupyterLab document: it edits the file's text model, so the
 * dirty mark, Ctrl+S, File ▸ Revert, renames and the "file changed" checks are JupyterLab's
 * own. A file changed by someone else (the CLI, Git, another tab) is reloaded when there are
 * no unsaved edits here, and announced when there are.
 */
import * as React from 'react';
import { ReactWidget } from '@jupyterlab/apputils';
import {
  ABCWidgetFactory,
  DocumentRegistry,
  DocumentWidget
} from '@jupyterlab/docregistry';
import { Contents } from '@jupyterlab/services';

import { parsePipeline, serializePipeline } from '../graph/document';
import { StudioSettings } from '../settings';
import { IGemKind } from '../types';
import { ICanvasControls } from './canvas';
import { IEditorActions, PipelineEditor } from './editor';
import { locatePipeline } from '../graph/location';
import { EditorModel } from './model';

export const FACTORY = 'Pipeline Editor';
export const FILE_TYPE = 'prophecy-pipeline';
/** How often an open pipeline's file is checked for changes made elsewhere. */
const DISK_CHECK_MS = 2000;

export class PipelineEditorWidget extends ReactWidget {
  readonly controls: ICanvasControls = {};
  private _conflict = false;

  constructor(
    readonly model: EditorModel,
    readonly settings: StudioSettings,
    readonly actions: IEditorActions
  ) {
    super();
    this.addClass('jp-Prophecy-editor-widget');
    settings.changed.connect(this.update, this);
  }

  set conflict(value: boolean) {
    if (value !== this._conflict) {
      this._conflict = value;
      this.update();
    }
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  protected render(): JSX.Element {
    return (
      <PipelineEditor
        model={this.model}
        settings={this.settings}
        actions={this.actions}
        controls={this.controls}
        conflict={this._conflict}
      />
    );
  }
}

export type PipelineDocument = DocumentWidget<PipelineEditorWidget>;

export class PipelineEditorFactory extends ABCWidgetFactory<
  PipelineDocument,
  DocumentRegistry.ICodeModel
> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<PipelineDocument>,
    private readonly catalog: Promise<IGemKind[]>,
    private readonly settings: StudioSettings,
    private readonly contents: Contents.IManager
  ) {
    super(options);
  }

  protected createNewWidget(
    context: DocumentRegistry.IContext<DocumentRegistry.ICodeModel>
  ): PipelineDocument {
    const model = new EditorModel(locatePipeline(context.path), {
      version: 1,
      name: '',
      gems: [],
      connections: []
    });
    let written: string | null = null;
    const showFile = (): void => {
      const text = context.model.toString();
      if (text === written) {
        return;
      }
      written = text;
      try {
        model.load(parsePipeline(text));
      } catch (error) {
        model.failLoad((error as Error).message);
      }
      // Text that did not come from this editor was read from the file (opening, File ▸
      // Revert, a reload): the document now is what is on disk. JupyterLab replaces the
      // text without touching the dirty mark, so it is cleared here.
      context.model.dirty = false;
    };
    model.edited.connect((_, document) => {
      written = serializePipeline(document);
      context.model.fromString(written);
      // Setting the text does not mark a file model dirty by itself.
      context.model.dirty = true;
    });
    const actions: IEditorActions = {
      save: async () => {
        if (context.model.dirty) {
          await context.save();
        }
      },
      reload: async () => {
        await context.revert();
        content.conflict = false;
      }
    };
    const content = new PipelineEditorWidget(model, this.settings, actions);
    const widget = new DocumentWidget({ content, context });
    widget.addClass('jp-Prophecy-document');

    void this.catalog.then(kinds => model.setCatalog(kinds));
    void context.ready.then(() => {
      showFile();
      context.model.contentChanged.connect(showFile);
    });
    context.pathChanged.connect((_, path) => {
      model.location = locatePipeline(path);
      model.scheduleValidation(0);
    });
    context.fileChanged.connect(() => {
      content.conflict = false;
    });

    const timer = window.setInterval(async () => {
      if (!context.isReady || !widget.isVisible) {
        return;
      }
      const known = context.contentsModel?.last_modified;
      try {
        const info = await this.contents.get(context.path, { content: false });
        if (
          !known ||
          !info.last_modified ||
          Date.parse(info.last_modified) <= Date.parse(known)
        ) {
          return;
        }
        if (context.model.dirty) {
          content.conflict = true;
        } else {
          await context.revert();
        }
      } catch {
        // Deleted or renamed elsewhere: JupyterLab's own checks say so on the next save.
      }
    }, DISK_CHECK_MS);
    widget.disposed.connect(() => window.clearInterval(timer));
    return widget;
  }
}
