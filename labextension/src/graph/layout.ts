/**
 * Auto-layout: gems in layers from left to right along the data flow (dagre's layered
 * drawing), which is how pipelines are read.
 */
import dagre from '@dagrejs/dagre';

import { IPipelineDocument, IPosition } from '../types';

export const GEM_WIDTH = 180;
export const GEM_HEIGHT = 64;

/** New top-left positions for every gem. */
export function autoLayout(
  document: IPipelineDocument
): Record<string, IPosition> {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({
    rankdir: 'LR',
    nodesep: 40,
    ranksep: 90,
    marginx: 20,
    marginy: 20
  });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const gem of document.gems) {
    graph.setNode(gem.id, { width: GEM_WIDTH, height: GEM_HEIGHT });
  }
  for (const connection of document.connections) {
    if (graph.hasNode(connection.from) && graph.hasNode(connection.to)) {
      graph.setEdge(connection.from, connection.to);
    }
  }
  dagre.layout(graph);
  // fromEntries, not assignment: an id such as `__proto__` must stay a plain key.
  return Object.fromEntries(
    graph.nodes().map(id => {
      const node = graph.node(id);
      return [
        id,
        {
          x: Math.round(node.x - GEM_WIDTH / 2),
          y: Math.round(node.y - GEM_HEIGHT / 2)
        }
      ];
    })
  );
}
