/**
 * Edits of a pipeline as a pure reducer over its document.
 *
 * The canvas, the properties form, paste and auto-layout all express a change as a
 * `GraphAction`; `reduce` returns the next document without touching the previous one, which
 * is what makes undo/redo (`history.ts`) a matter of keeping documents.
 */
import { IConnection, IGem, IPipelineDocument, IPosition } from '../types';
import { canonical } from './document';

export type GraphAction =
  | {
      type: 'addGem';
      kind: string;
      position: IPosition;
      id?: string;
      properties?: Record<string, unknown>;
    }
  | { type: 'removeGems'; ids: string[] }
  | { type: 'moveGems'; positions: Record<string, IPosition> }
  | { type: 'connect'; connection: IConnection }
  | { type: 'disconnect'; connection: IConnection }
  | { type: 'setProperties'; id: string; properties: Record<string, unknown> }
  | { type: 'renameGem'; id: string; newId: string }
  | { type: 'setLabel'; id: string; label: string }
  | { type: 'setDescription'; id: string; description: string }
  | { type: 'setPipelineDescription'; description: string }
  | {
      type: 'setColumnDescription';
      id: string;
      column: string;
      description: string;
    }
  | { type: 'paste'; clipboard: IClipboard; offset: IPosition }
  | { type: 'replace'; document: IPipelineDocument }
  | { type: 'batch'; actions: GraphAction[] };

/** Gems and the connections among them, as copied to the clipboard. */
export interface IClipboard {
  gems: IGem[];
  connections: IConnection[];
}

/** The key under which `gem` documents its output column `name`: engines resolve column
 * names ignoring case, so `Region` documents `region`. */
export function columnKey(
  gem: IGem | undefined,
  name: string
): string | undefined {
  return Object.keys(gem?.columns ?? {}).find(
    key => key.toLowerCase() === name.toLowerCase()
  );
}

/** The description `gem` gives its output column `name` ('' when none). */
export function describedColumn(gem: IGem | undefined, name: string): string {
  const key = columnKey(gem, name);
  return key === undefined ? '' : gem!.columns![key].description;
}

/** An edit that cannot be made (unknown gem, taken id…), with a message for the user. */
export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

export const GEM_ID = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The lowercase, identifier-safe stem of a new gem's id: `Filter` → `filter`. */
function stem(kind: string): string {
  const snake = kind
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
  return /^[a-z_]/.test(snake) ? snake : `gem_${snake}`;
}

/** The first free id `<stem>_<n>` for a new gem of `kind` (or derived from `base`). */
export function freshId(
  taken: ReadonlySet<string>,
  kind: string,
  base?: string
): string {
  const root =
    base && GEM_ID.test(base) ? base.replace(/_\d+$/, '') : stem(kind);
  for (let n = 1; ; n++) {
    const id = `${root}_${n}`;
    if (!taken.has(id)) {
      return id;
    }
  }
}

const sameConnection = (a: IConnection, b: IConnection): boolean =>
  a.from === b.from && a.to === b.to && a.port === b.port;

function gemIndex(document: IPipelineDocument, id: string): number {
  const index = document.gems.findIndex(gem => gem.id === id);
  if (index < 0) {
    throw new GraphError(`no gem '${id}' in this pipeline`);
  }
  return index;
}

function round(position: IPosition): IPosition {
  return { x: Math.round(position.x), y: Math.round(position.y) };
}

/** Copy the chosen gems and the connections among them. */
export function copyGems(
  document: IPipelineDocument,
  ids: string[]
): IClipboard {
  const chosen = new Set(ids);
  return {
    gems: document.gems.filter(gem => chosen.has(gem.id)),
    connections: document.connections.filter(
      c => chosen.has(c.from) && chosen.has(c.to)
    )
  };
}

/** The ids that pasting `clipboard` gives its gems: free ones, derived from the copied. */
export function pastedIds(
  document: IPipelineDocument,
  clipboard: IClipboard
): Record<string, string> {
  const taken = new Set(document.gems.map(gem => gem.id));
  const ids: Record<string, string> = Object.create(null);
  for (const gem of clipboard.gems) {
    const id = freshId(taken, gem.kind, gem.id);
    taken.add(id);
    ids[gem.id] = id;
  }
  return ids;
}

/** The next document after `action`; the given one is left as it was. */
export function reduce(
  document: IPipelineDocument,
  action: GraphAction
): IPipelineDocument {
  switch (action.type) {
    case 'addGem': {
      const taken = new Set(document.gems.map(gem => gem.id));
      const id = action.id ?? freshId(taken, action.kind);
      if (taken.has(id)) {
        throw new GraphError(`a gem '${id}' already exists`);
      }
      const gem: IGem = {
        id,
        kind: action.kind,
        properties: action.properties ?? {},
        position: round(action.position)
      };
      return { ...document, gems: [...document.gems, gem] };
    }
    case 'removeGems': {
      const gone = new Set(action.ids);
      if (!document.gems.some(gem => gone.has(gem.id))) {
        return document;
      }
      return {
        ...document,
        gems: document.gems.filter(gem => !gone.has(gem.id)),
        connections: document.connections.filter(
          c => !gone.has(c.from) && !gone.has(c.to)
        )
      };
    }
    case 'moveGems': {
      const moved = (gem: IGem): boolean => {
        if (!Object.prototype.hasOwnProperty.call(action.positions, gem.id)) {
          return false;
        }
        const to = round(action.positions[gem.id]);
        return gem.position?.x !== to.x || gem.position?.y !== to.y;
      };
      if (!document.gems.some(moved)) {
        return document;
      }
      return {
        ...document,
        gems: document.gems.map(gem =>
          moved(gem)
            ? { ...gem, position: round(action.positions[gem.id]) }
            : gem
        )
      };
    }
    case 'connect': {
      const { connection } = action;
      gemIndex(document, connection.from);
      gemIndex(document, connection.to);
      if (connection.from === connection.to) {
        throw new GraphError('a gem cannot feed itself');
      }
      if (document.connections.some(c => sameConnection(c, connection))) {
        return document;
      }
      // A port takes one connection: a new one replaces whatever fed it.
      const others = document.connections.filter(
        c => !(c.to === connection.to && c.port === connection.port)
      );
      return { ...document, connections: [...others, { ...connection }] };
    }
    case 'disconnect': {
      return {
        ...document,
        connections: document.connections.filter(
          c => !sameConnection(c, action.connection)
        )
      };
    }
    case 'setProperties': {
      const index = gemIndex(document, action.id);
      const same =
        JSON.stringify(canonical(document.gems[index].properties)) ===
        JSON.stringify(canonical(action.properties));
      if (same) {
        return document;
      }
      const gems = [...document.gems];
      gems[index] = { ...gems[index], properties: action.properties };
      return { ...document, gems };
    }
    case 'setLabel': {
      const index = gemIndex(document, action.id);
      if ((document.gems[index].label ?? '') === action.label) {
        return document;
      }
      const gems = [...document.gems];
      const rest = { ...gems[index] };
      delete rest.label;
      gems[index] = action.label ? { ...rest, label: action.label } : rest;
      return { ...document, gems };
    }
    case 'setDescription': {
      const index = gemIndex(document, action.id);
      if ((document.gems[index].description ?? '') === action.description) {
        return document;
      }
      const gems = [...document.gems];
      const rest = { ...gems[index] };
      delete rest.description;
      gems[index] = action.description
        ? { ...rest, description: action.description }
        : rest;
      return { ...document, gems };
    }
    case 'setPipelineDescription': {
      if ((document.description ?? '') === action.description) {
        return document;
      }
      const rest = { ...document };
      delete rest.description;
      return action.description
        ? { ...rest, description: action.description }
        : rest;
    }
    case 'setColumnDescription': {
      const index = gemIndex(document, action.id);
      const columns = { ...(document.gems[index].columns ?? {}) };
      const key =
        columnKey(document.gems[index], action.column) ?? action.column;
      if ((columns[key]?.description ?? '') === action.description) {
        return document;
      }
      if (action.description) {
        columns[key] = { ...columns[key], description: action.description };
      } else {
        delete columns[key];
      }
      const gems = [...document.gems];
      const rest = { ...gems[index] };
      delete rest.columns;
      gems[index] = Object.keys(columns).length ? { ...rest, columns } : rest;
      return { ...document, gems };
    }
    case 'renameGem': {
      const { id, newId } = action;
      if (id === newId) {
        return document;
      }
      gemIndex(document, id);
      if (!GEM_ID.test(newId)) {
        throw new GraphError(
          `'${newId}' is not a valid gem id: letters, digits and _, not starting with a digit`
        );
      }
      if (document.gems.some(gem => gem.id === newId)) {
        throw new GraphError(`a gem '${newId}' already exists`);
      }
      return {
        ...document,
        gems: document.gems.map(gem =>
          gem.id === id ? { ...gem, id: newId } : gem
        ),
        connections: document.connections.map(c => ({
          ...c,
          from: c.from === id ? newId : c.from,
          to: c.to === id ? newId : c.to
        }))
      };
    }
    case 'paste': {
      const ids = pastedIds(document, action.clipboard);
      const gems = action.clipboard.gems.map(gem => ({
        ...gem,
        id: ids[gem.id],
        position: round({
          x: (gem.position?.x ?? 0) + action.offset.x,
          y: (gem.position?.y ?? 0) + action.offset.y
        })
      }));
      const connections = action.clipboard.connections
        .filter(c => ids[c.from] && ids[c.to])
        .map(c => ({ ...c, from: ids[c.from], to: ids[c.to] }));
      return {
        ...document,
        gems: [...document.gems, ...gems],
        connections: [...document.connections, ...connections]
      };
    }
    case 'replace':
      return action.document;
    case 'batch':
      return action.actions.reduce(reduce, document);
  }
}
