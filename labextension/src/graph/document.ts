/**
 * Reading and writing pipeline files exactly as the Python model does
 * (`prophecy_jupyter.model.pipeline.dump_pipeline`): sorted keys, two-space indent, a final
 * newline and integral numbers without a fraction. A file saved by the Studio is therefore
 * byte-identical to the same pipeline saved by the CLI, and Git shows only real edits.
 */
import { IPipelineDocument } from '../types';

/** The text is not a pipeline document the editor can show. */
export class PipelineParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineParseError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parse a pipeline file. Only the outline the canvas needs is checked here (gems with ids and
 * kinds, connections); everything else is the server's validation's job, so that a draft with
 * problems still opens and can be fixed.
 */
export function parsePipeline(text: string): IPipelineDocument {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new PipelineParseError(`not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(data)) {
    throw new PipelineParseError('a pipeline file holds one JSON object');
  }
  const gems = data.gems ?? [];
  const connections = data.connections ?? [];
  if (!Array.isArray(gems)) {
    throw new PipelineParseError('/gems must be a list');
  }
  if (!Array.isArray(connections)) {
    throw new PipelineParseError('/connections must be a list');
  }
  gems.forEach((gem, index) => {
    if (
      !isObject(gem) ||
      typeof gem.id !== 'string' ||
      typeof gem.kind !== 'string'
    ) {
      throw new PipelineParseError(`/gems/${index} needs a string id and kind`);
    }
    if (gem.properties !== undefined && !isObject(gem.properties)) {
      throw new PipelineParseError(
        `/gems/${index}/properties must be an object`
      );
    }
  });
  connections.forEach((connection, index) => {
    if (
      !isObject(connection) ||
      typeof connection.from !== 'string' ||
      typeof connection.to !== 'string'
    ) {
      throw new PipelineParseError(
        `/connections/${index} needs string "from" and "to"`
      );
    }
  });
  return {
    ...(data as unknown as IPipelineDocument),
    version: typeof data.version === 'number' ? data.version : 1,
    name: typeof data.name === 'string' ? data.name : '',
    parameters: Array.isArray(data.parameters) ? data.parameters : [],
    gems: gems.map(gem => ({ properties: {}, ...gem })),
    connections: connections.map(c => ({ port: 'in0', ...c }))
  };
}

/** A copy with every object's keys sorted and no `undefined` members (JSON has none). */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(item => (item === undefined ? null : canonical(item)));
  }
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      if (value[key] !== undefined) {
        out[key] = canonical(value[key]);
      }
    }
    return out;
  }
  return value;
}

/** The file text of a pipeline, as `dump_pipeline` writes it. */
export function serializePipeline(document: IPipelineDocument): string {
  return JSON.stringify(canonical(document), null, 2) + '\n';
}
