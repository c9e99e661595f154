/**
 * The pipeline canvas (React Flow): gems as nodes with typed ports, connections as edges
 * labelled with the rows that went through them in the last run. Every change a user makes
 * here becomes one `GraphAction` on the model; React Flow's own state only carries what is
 * in motion (a drag) and what it measured.
 */
import * as React from 'react';
import {
  applyEdgeChanges,
  applyNodeChanges,
  Background,
  Connection,
  Controls,
  Edge,
  EdgeChange,
  MiniMap,
  NodeChange,
  ReactFlow,
  ReactFlowInstance,
  useReactFlow
} from '@xyflow/react';

import { IShownDiff, shownDiffs } from '../git/diffs';
import { canvasMarks, ICanvasMarks, marksSummary } from '../git/marks';
import { IConnection, IPipelineDocument } from '../types';
import { GEM_MIME } from './palette';
import { GemNode, GemNodeType, portCount } from './gemnode';
import { useModel } from './hooks';
import { EditorModel } from './model';

const NODE_TYPES = { gem: GemNode };

/** Lets commands outside React act on the view. */
export interface ICanvasControls {
  fitView?: () => void;
  /** The middle of the visible canvas, in flow coordinates (where new gems go). */
  center?: () => { x: number; y: number };
}

function edgeId(c: IConnection): string {
  return `${c.from}->${c.to}:${c.port}`;
}

function parseEdge(edge: Edge): IConnection {
  return {
    from: edge.source,
    to: edge.target,
    port: edge.targetHandle ?? 'in0'
  };
}

function buildNodes(
  model: EditorModel,
  document: IPipelineDocument,
  previous: GemNodeType[],
  marks: ICanvasMarks | null = null
): GemNodeType[] {
  const old = new Map(previous.map(node => [node.id, node]));
  const connected = new Map<string, number>();
  for (const c of document.connections) {
    const index = Number(c.port.slice(2)) + 1;
    connected.set(c.to, Math.max(connected.get(c.to) ?? 0, index));
  }
  const runs = new Map((model.run?.gems ?? []).map(g => [g.gem_id, g]));
  const selected = new Set(model.selection);
  return document.gems.map((gem, index) => {
    const before = old.get(gem.id);
    const kind = model.catalog.get(gem.kind);
    const run = runs.get(gem.id);
    return {
      id: gem.id,
      type: 'gem',
      position:
        before?.dragging && before.position
          ? before.position
          : (gem.position ?? {
              x: 40 + 220 * (index % 5),
              y: 40 + 120 * Math.floor(index / 5)
            }),
      measured: before?.measured,
      dragging: before?.dragging,
      selected: selected.has(gem.id),
      data: {
        gem,
        kind,
        ports: portCount(kind, connected.get(gem.id) ?? 0),
        issues: model.issuesOf(gem.id),
        status: run?.status,
        rows: run?.rows,
        error: run?.error,
        diff: marks?.gems.get(gem.id)
      }
    };
  });
}

function buildEdges(
  model: EditorModel,
  previous: Edge[],
  marks: ICanvasMarks | null = null
): Edge[] {
  const selected = new Set(previous.filter(e => e.selected).map(e => e.id));
  const rows = new Map((model.run?.gems ?? []).map(g => [g.gem_id, g.rows]));
  return model.document.connections.map(c => {
    const count = rows.get(c.from);
    return {
      id: edgeId(c),
      source: c.from,
      target: c.to,
      sourceHandle: 'out',
      targetHandle: c.port,
      selected: selected.has(edgeId(c)),
      label:
        count === undefined || count === null
          ? undefined
          : `${count.toLocaleString()} rows`,
      className: marks?.addedEdges.has(edgeId(c))
        ? 'jp-Prophecy-edge jp-Prophecy-diff-added'
        : 'jp-Prophecy-edge',
      animated: model.running && rows.get(c.to) === undefined
    };
  });
}

/** The diff the Git panel asked this pipeline's editor to show, if any. */
function useShownDiff(model: EditorModel): IShownDiff | undefined {
  React.useSyncExternalStore(
    listener => shownDiffs.subscribe(listener),
    () => shownDiffs.version
  );
  const at = model.location;
  return at ? shownDiffs.get(at.project, at.name) : undefined;
}

/** What the shown diff removed (not on the canvas any more), and a way to hide it. */
function DiffBanner(props: {
  shown: IShownDiff;
  marks: ICanvasMarks;
}): JSX.Element {
  const { shown, marks } = props;
  const changed = [...marks.gems.entries()].filter(
    ([, mark]) => mark.status === 'changed'
  );
  return (
    <div className="jp-Prophecy-diffBanner" data-testid="prophecy-diff-banner">
      <div className="jp-Prophecy-diffBanner-line">
        <strong>Changes since {shown.against}:</strong>{' '}
        <span data-testid="prophecy-diff-summary">{marksSummary(marks)}</span>
        <button
          className="jp-Prophecy-diffBanner-hide"
          data-testid="prophecy-diff-hide"
          title="Stop marking the changes"
          onClick={() => shownDiffs.hide(shown.project, shown.name)}
        >
          Hide
        </button>
      </div>
      {changed.map(([id, mark]) => (
        <div key={id} data-testid="prophecy-diff-changed" data-gem-id={id}>
          ~ <code>{id}</code>: {mark.fields.join(', ') || 'changed'}
        </div>
      ))}
      {marks.removed.map(gem => (
        <div
          key={gem.id}
          className="jp-Prophecy-diff-removedGem"
          data-testid="prophecy-diff-removed"
          data-gem-id={gem.id}
        >
          − <code>{gem.id}</code> ({gem.kind}) removed
        </div>
      ))}
      {marks.removedConnections.map(c => (
        <div
          key={edgeId(c)}
          className="jp-Prophecy-diff-removedGem"
          data-testid="prophecy-diff-removed-connection"
        >
          − connection <code>{c.from}</code> → <code>{c.to}</code> ({c.port})
        </div>
      ))}
    </div>
  );
}

export function Canvas(props: {
  model: EditorModel;
  controls: ICanvasControls;
}): JSX.Element {
  const { model, controls } = props;
  const version = useModel(model);
  const flow = useReactFlow<GemNodeType, Edge>();
  const shown = useShownDiff(model);
  const marks = React.useMemo(
    () => (shown ? canvasMarks(shown.diff, model.document) : null),
    [shown, version, model]
  );
  const [nodes, setNodes] = React.useState<GemNodeType[]>(() =>
    buildNodes(model, model.document, [], marks)
  );
  const [edges, setEdges] = React.useState<Edge[]>(() =>
    buildEdges(model, [], marks)
  );

  React.useEffect(() => {
    setNodes(previous => buildNodes(model, model.document, previous, marks));
    setEdges(previous => buildEdges(model, previous, marks));
  }, [version, model, marks]);

  React.useEffect(() => {
    controls.fitView = () =>
      void flow.fitView({ padding: 0.1, duration: 200, maxZoom: 1 });
    controls.center = () => {
      const element = document.querySelector('.jp-Prophecy-flow');
      const box = element?.getBoundingClientRect();
      return box
        ? flow.screenToFlowPosition({
            x: box.x + box.width / 2,
            y: box.y + box.height / 2
          })
        : { x: 0, y: 0 };
    };
  }, [flow, controls]);

  const onNodesChange = React.useCallback(
    (changes: NodeChange<GemNodeType>[]) => {
      // Removals go through onDelete, as one undoable edit with the edges they take along.
      setNodes(current =>
        applyNodeChanges(
          changes.filter(c => c.type !== 'remove'),
          current
        )
      );
    },
    []
  );
  const onEdgesChange = React.useCallback((changes: EdgeChange[]) => {
    setEdges(current =>
      applyEdgeChanges(
        changes.filter(c => c.type !== 'remove'),
        current
      )
    );
  }, []);

  const onConnect = React.useCallback(
    (connection: Connection) => {
      model.dispatch({
        type: 'connect',
        connection: {
          from: connection.source,
          to: connection.target,
          port: connection.targetHandle ?? 'in0'
        }
      });
    },
    [model]
  );

  // Stable on purpose: React Flow calls a new handler at once with its own (older)
  // selection, which would undo a selection the model just made (a dropped gem).
  const onSelectionChange = React.useCallback(
    ({ nodes: chosen }: { nodes: GemNodeType[] }) =>
      model.select(chosen.map(node => node.id)),
    [model]
  );

  const onDrop = React.useCallback(
    (event: React.DragEvent) => {
      const kind = event.dataTransfer.getData(GEM_MIME);
      if (!kind) {
        return;
      }
      event.preventDefault();
      const position = flow.screenToFlowPosition({
        x: event.clientX,
        y: event.clientY
      });
      const before = new Set(model.document.gems.map(gem => gem.id));
      if (model.dispatch({ type: 'addGem', kind, position })) {
        const added = model.document.gems.find(gem => !before.has(gem.id));
        model.select(added ? [added.id] : []);
      }
    },
    [flow, model]
  );

  return (
    <div
      className="jp-Prophecy-flow"
      data-testid="prophecy-canvas"
      tabIndex={0}
      onDragOver={event => {
        if (event.dataTransfer.types.includes(GEM_MIME)) {
          event.preventDefault();
          event.dataTransfer.dropEffect = 'copy';
        }
      }}
      onDrop={onDrop}
    >
      {shown && marks && <DiffBanner shown={shown} marks={marks} />}
      <ReactFlow<GemNodeType, Edge>
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onNodeDragStop={(_event, _node, dragged) => {
          const positions: Record<string, { x: number; y: number }> = {};
          for (const node of dragged) {
            positions[node.id] = node.position;
          }
          model.dispatch({ type: 'moveGems', positions });
        }}
        onSelectionChange={onSelectionChange}
        onDelete={({ nodes: gone, edges: cut }) => {
          model.dispatch({
            type: 'batch',
            actions: [
              ...cut.map(edge => ({
                type: 'disconnect' as const,
                connection: parseEdge(edge)
              })),
              { type: 'removeGems', ids: gone.map(node => node.id) }
            ]
          });
        }}
        onInit={(instance: ReactFlowInstance<GemNodeType, Edge>) =>
          void instance.fitView({ padding: 0.1, maxZoom: 1 })
        }
        fitViewOptions={{ padding: 0.1, maxZoom: 1 }}
        deleteKeyCode={['Delete', 'Backspace']}
        multiSelectionKeyCode={['Meta', 'Control']}
        minZoom={0.05}
        maxZoom={2}
        onlyRenderVisibleElements
      >
        <Background gap={20} />
        <Controls showInteractive={false} />
        <MiniMap
          pannable
          zoomable
          className="jp-Prophecy-minimap"
          style={{ width: 140, height: 90 }}
        />
      </ReactFlow>
    </div>
  );
}
