/**
 * A pipeline diff as the canvas shows it: each added or changed gem gets a mark (a class,
 * a badge and a tooltip naming its changed fields); removed gems and connections, which are
 * not in the document any more, are listed in a banner over the canvas.
 */
import {
  IConnection,
  IConnectionDiff,
  IGemDiff,
  IPipelineDiff,
  IPipelineDocument
} from '../types';
import { pathSegments } from './conflicts';

export type GemMarkStatus = 'added' | 'changed';

export interface IGemMark {
  status: GemMarkStatus;
  /** The changed fields as people read them (`condition`, `position`). */
  fields: string[];
  /** What the gem's tooltip says about the change. */
  title: string;
  /** The short text of its badge. */
  badge: string;
}

export interface ICanvasMarks {
  gems: Map<string, IGemMark>;
  /** Gems the diff removed (not in the document). */
  removed: IGemDiff[];
  /** Connections the diff added, by the canvas's edge id. */
  addedEdges: Set<string>;
  removedConnections: IConnectionDiff[];
  /** Changed fields of the pipeline itself (description, parameters). */
  documentFields: string[];
}

/** The canvas's id of an edge: the same as the connection's in `canvas.tsx`. */
export function edgeKey(connection: IConnection): string {
  return `${connection.from}->${connection.to}:${connection.port}`;
}

/**
 * A field path of the diff as people read it: `/properties/condition`,
 * `properties/condition` and `properties.condition` are all `condition`; the gem's own
 * fields (`/label`, `/kind`) and the pipeline's (`/description`) keep their name.
 */
export function fieldLabel(path: string): string {
  const segments = pathSegments(path);
  const rest =
    segments[0] === 'properties' && segments.length > 1
      ? segments.slice(1)
      : segments;
  return rest.join('.') || path;
}

function gemFields(gem: IGemDiff): string[] {
  const fields = gem.fields.map(fieldLabel);
  if (gem.moved && !fields.includes('position')) {
    fields.push('position');
  }
  return [...new Set(fields)];
}

function markOf(gem: IGemDiff): IGemMark {
  if (gem.status === 'added') {
    return {
      status: 'added',
      fields: [],
      title: `${gem.id} was added`,
      badge: 'added'
    };
  }
  const fields = gemFields(gem);
  const onlyMoved = fields.length === 1 && fields[0] === 'position';
  return {
    status: 'changed',
    fields,
    title: fields.length
      ? `${gem.id} changed: ${fields.join(', ')}`
      : `${gem.id} changed`,
    badge: onlyMoved ? 'moved' : 'changed'
  };
}

/**
 * The marks of `diff` on `document` (the pipeline the canvas shows). A gem the diff calls
 * added or changed but the document no longer has is left out; one it calls removed but
 * the document has again is not listed as removed.
 */
export function canvasMarks(
  diff: IPipelineDiff,
  document?: IPipelineDocument
): ICanvasMarks {
  const present = document ? new Set(document.gems.map(g => g.id)) : null;
  const gems = new Map<string, IGemMark>();
  const removed: IGemDiff[] = [];
  for (const gem of diff.gems) {
    const here = present ? present.has(gem.id) : gem.status !== 'removed';
    if (gem.status === 'removed') {
      if (!here) {
        removed.push(gem);
      }
    } else if (here) {
      gems.set(gem.id, markOf(gem));
    }
  }
  const addedEdges = new Set<string>();
  const removedConnections: IConnectionDiff[] = [];
  for (const c of diff.connections) {
    if (c.status === 'added') {
      addedEdges.add(edgeKey(c));
    } else if (c.status === 'removed') {
      removedConnections.push(c);
    }
  }
  return {
    gems,
    removed,
    addedEdges,
    removedConnections,
    documentFields: diff.fields.map(fieldLabel)
  };
}

/** "1 gem added, 2 changed, 1 removed": the banner's summary. */
export function marksSummary(marks: ICanvasMarks): string {
  let added = 0;
  let changed = 0;
  for (const mark of marks.gems.values()) {
    if (mark.status === 'added') {
      added++;
    } else {
      changed++;
    }
  }
  const parts: string[] = [];
  if (added) {
    parts.push(`${added} added`);
  }
  if (changed) {
    parts.push(`${changed} changed`);
  }
  if (marks.removed.length) {
    parts.push(`${marks.removed.length} removed`);
  }
  const gems = added + changed + marks.removed.length;
  const text = parts.length
    ? `${gems === 1 ? '1 gem' : `${gems} gems`}: ${parts.join(', ')}`
    : 'No gem changed';
  const links = marks.addedEdges.size + marks.removedConnections.length;
  const extra = [
    links ? `${links} connection${links === 1 ? '' : 's'} changed` : '',
    marks.documentFields.length
      ? `pipeline ${marks.documentFields.join(', ')} changed`
      : ''
  ].filter(Boolean);
  return [text, ...extra].join('; ');
}

function text(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function texts(value: unknown): string[] {
  return Array.isArray(value) ? value.filter(v => typeof v === 'string') : [];
}

/**
 * A pipeline diff as the server sent it, read defensively: gems by `id` (or `gem_id`),
 * connections by `from`/`to` (or `source`/`target`), missing lists as empty ones.
 */
export function readPipelineDiff(raw: unknown): IPipelineDiff {
  const data = (raw ?? {}) as Record<string, unknown>;
  const list = (value: unknown): Record<string, unknown>[] =>
    Array.isArray(value)
      ? value.filter(
          (item): item is Record<string, unknown> =>
            typeof item === 'object' && item !== null
        )
      : [];
  return {
    name: text(data.name),
    fields: texts(data.fields),
    gems: list(data.gems).map(gem => ({
      id: text(gem.id, text(gem.gem_id)),
      status:
        gem.status === 'added' || gem.status === 'removed'
          ? gem.status
          : 'changed',
      kind: text(gem.kind),
      fields: texts(gem.fields),
      moved: gem.moved === true
    })),
    connections: list(data.connections).map(c => ({
      status: c.status === 'removed' ? 'removed' : 'added',
      from: text(c.from, text(c.source)),
      to: text(c.to, text(c.target)),
      port: text(c.port, 'in0')
    }))
  };
}
