/** The whole pipeline editor: toolbar, palette, canvas, properties and the bottom panel. */
import * as React from 'react';
import { ReactFlowProvider } from '@xyflow/react';

import { AIPanel } from '../ai/panel';
import { autoLayout } from '../graph/layout';
import { StudioSettings } from '../settings';
import { BottomPanel } from './bottom';
import { Canvas, ICanvasControls } from './canvas';
import { useModel } from './hooks';
import { EditorModel } from './model';
import { Palette } from './palette';
import { PropertiesPanel } from './properties';
import { ResizeHandle, usePanelWidth } from './resize';

export interface IEditorActions {
  /** Write the document to its file (a run reads the saved file). */
  save: () => Promise<void>;
  /** Reload the file from disk, dropping unsaved edits. */
  reload: () => Promise<void>;
}

/** Commands shared by the toolbar and JupyterLab's command registry. */
export function layoutPipeline(
  model: EditorModel,
  controls: ICanvasControls
): void {
  model.dispatch({ type: 'moveGems', positions: autoLayout(model.document) });
  window.setTimeout(() => controls.fitView?.(), 50);
}

export async function runPipeline(
  model: EditorModel,
  actions: IEditorActions,
  settings: StudioSettings
): Promise<void> {
  await actions.save();
  await model.startRun(settings.values.defaultFabric || undefined);
}

function RunStatus(props: { model: EditorModel }): JSX.Element | null {
  const run = props.model.run;
  if (!run) {
    return null;
  }
  const done = run.gems.filter(g => g.status === 'succeeded').length;
  const text =
    run.status === 'running' || run.status === 'queued'
      ? `Running… ${done}/${run.gems.length || props.model.document.gems.length} gems`
      : run.status === 'succeeded'
        ? `Succeeded in ${(run.seconds ?? 0).toFixed(2)} s`
        : run.status === 'failed'
          ? `Failed: ${run.error ?? 'see the failing gem'}`
          : 'Cancelled';
  return (
    <span
      className={`jp-Prophecy-run-status jp-Prophecy-status-${run.status}`}
      data-testid="prophecy-run-status"
      data-status={run.status}
      title={run.error ?? ''}
    >
      {text}
    </span>
  );
}

function Toolbar(props: {
  model: EditorModel;
  actions: IEditorActions;
  settings: StudioSettings;
  controls: ICanvasControls;
  /** Open or close the AI panel. */
  onAI?: () => void;
  aiOpen?: boolean;
}): JSX.Element {
  const { model, actions, settings, controls } = props;
  const errors = model.issues.filter(i => i.severity !== 'warning').length;
  const button = (
    label: string,
    testid: string,
    onClick: () => void,
    disabled = false,
    title = label
  ): JSX.Element => (
    <button
      className="jp-Prophecy-toolbar-button"
      data-testid={testid}
      onClick={onClick}
      disabled={disabled}
      title={title}
    >
      {label}
    </button>
  );
  return (
    <div className="jp-Prophecy-toolbar">
      {model.running
        ? button('■ Stop', 'prophecy-cancel-run', () => void model.cancelRun())
        : button(
            '▶ Run',
            'prophecy-run',
            () => void runPipeline(model, actions, settings),
            !model.location,
            'Save, then run every gem (Shift+R)'
          )}
      {button(
        '↶ Undo',
        'prophecy-undo',
        () => model.undo(),
        !model.history.canUndo,
        'Undo (Ctrl+Z)'
      )}
      {button(
        '↷ Redo',
        'prophecy-redo',
        () => model.redo(),
        !model.history.canRedo,
        'Redo (Ctrl+Shift+Z)'
      )}
      {button('⇶ Layout', 'prophecy-layout', () =>
        layoutPipeline(model, controls)
      )}
      {button('⤢ Fit', 'prophecy-fit', () => controls.fitView?.())}
      {props.onAI &&
        button(
          props.aiOpen ? '✦ AI ✓' : '✦ AI',
          'prophecy-ai',
          props.onAI,
          false,
          'Ask the AI copilot to change or explain this pipeline'
        )}
      <span className="jp-Prophecy-toolbar-spacer" />
      <RunStatus model={model} />
      <span
        className={`jp-Prophecy-validity${errors ? ' jp-mod-error' : ''}`}
        data-testid="prophecy-validity"
      >
        {!model.location
          ? ''
          : !model.checked || model.pending
            ? 'Checking…'
            : errors
              ? `${errors} problem${errors === 1 ? '' : 's'}`
              : 'Valid'}
      </span>
    </div>
  );
}

export function PipelineEditor(props: {
  model: EditorModel;
  settings: StudioSettings;
  actions: IEditorActions;
  controls: ICanvasControls;
  /** Set when the file changed on disk while it has unsaved edits here. */
  conflict: boolean;
}): JSX.Element {
  const { model, settings, actions, controls } = props;
  useModel(model);
  const selected = model.selection.length === 1 ? model.selection[0] : null;
  const document = model.document;
  // Null until first opened; then kept mounted (hidden when closed) with its conversation.
  const [aiOpen, setAiOpen] = React.useState<boolean | null>(null);
  const [propertiesWidth, setPropertiesWidth] = usePanelWidth(
    'properties',
    320
  );
  const [aiWidth, setAiWidth] = usePanelWidth('ai', 380);

  const preview = React.useCallback(() => {
    const id = model.selection.length === 1 ? model.selection[0] : null;
    if (id) {
      void model.loadPreview(
        id,
        settings.values.previewRows,
        settings.values.defaultFabric || undefined
      );
    }
  }, [model, settings]);

  React.useEffect(() => {
    if (!selected || !settings.values.autoPreview || !model.location) {
      return;
    }
    const timer = window.setTimeout(preview, 400);
    return () => window.clearTimeout(timer);
  }, [selected, document, preview, settings, model]);

  if (model.loadError) {
    return (
      <div className="jp-Prophecy-editor jp-Prophecy-load-error">
        <h3>This file is not a pipeline the Studio can show</h3>
        <p>{model.loadError}</p>
        <p>Fix it with Open With ▸ Editor, then reopen it here.</p>
      </div>
    );
  }
  const kinds = [...model.catalog.values()];
  return (
    <div className="jp-Prophecy-editor" data-testid="prophecy-editor">
      <Toolbar
        model={model}
        actions={actions}
        settings={settings}
        controls={controls}
        onAI={() => setAiOpen(open => !open)}
        aiOpen={!!aiOpen}
      />
      {!model.location && (
        <div className="jp-Prophecy-banner">
          This pipeline is not in a project's <code>pipelines/</code> folder:
          validation, preview and runs are off.
        </div>
      )}
      {props.conflict && (
        <div className="jp-Prophecy-banner" data-testid="prophecy-conflict">
          The file changed on disk.{' '}
          <button onClick={() => void actions.reload()}>Reload</button> drops
          your unsaved edits; saving keeps yours.
        </div>
      )}
      {model.notice && (
        <div
          className="jp-Prophecy-banner jp-mod-error"
          data-testid="prophecy-notice"
        >
          {model.notice}
        </div>
      )}
      <div className="jp-Prophecy-main">
        <Palette
          kinds={kinds}
          onAdd={kind => {
            const before = new Set(document.gems.map(g => g.id));
            if (
              model.dispatch({
                type: 'addGem',
                kind,
                position: controls.center?.() ?? { x: 0, y: 0 }
              })
            ) {
              const added = model.document.gems.find(g => !before.has(g.id));
              model.select(added ? [added.id] : []);
            }
          }}
        />
        <div className="jp-Prophecy-center">
          <ReactFlowProvider>
            <Canvas model={model} controls={controls} />
          </ReactFlowProvider>
          <BottomPanel model={model} onPreview={preview} />
        </div>
        <ResizeHandle
          label="Properties panel width"
          width={propertiesWidth}
          onResize={setPropertiesWidth}
          testId="prophecy-properties-resize"
        />
        <PropertiesPanel model={model} width={propertiesWidth} />
        {aiOpen && (
          <ResizeHandle
            label="AI panel width"
            width={aiWidth}
            onResize={setAiWidth}
            testId="prophecy-ai-resize"
          />
        )}
        {aiOpen !== null && (
          <AIPanel
            model={model}
            hidden={!aiOpen}
            onClose={() => setAiOpen(false)}
            controls={controls}
            width={aiWidth}
          />
        )}
      </div>
    </div>
  );
}
