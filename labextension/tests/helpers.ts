/**
 * Small builders shared by the graph tests.
 */
import { IConnection, IGem, IPipelineDocument } from '../src/types';

export function gem(id: string, kind = 'Filter', x = 0, y = 0): IGem {
  return { id, kind, properties: {}, position: { x, y } };
}

export function link(from: string, to: string, port = 'in0'): IConnection {
  return { from, to, port };
}

export function pipeline(
  gems: IGem[],
  connections: IConnection[] = []
): IPipelineDocument {
  return { version: 1, name: 'test', gems, connections };
}

export function ids(document: IPipelineDocument): string[] {
  return document.gems.map(g => g.id);
}

export function gemById(document: IPipelineDocument, id: string): IGem {
  const found = document.gems.find(g => g.id === id);
  if (!found) {
    throw new Error(`no gem '${id}'`);
  }
  return found;
}

/** Freeze `value` and everything reachable from it, so that any write throws. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) {
      deepFreeze((value as Record<string, unknown>)[key]);
    }
  }
  return value;
}
