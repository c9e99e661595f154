import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  parsePipeline,
  PipelineParseError,
  serializePipeline
} from '../src/graph/document';
import { IPipelineDocument } from '../src/types';

/** The repository's root: the nearest folder above this file holding `examples/`. */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'examples')) || !existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`no repository root above ${__dirname}`);
    }
    dir = parent;
  }
  return dir;
}

/** Every `examples/*\/pipelines/*.json` file of the repository. */
function examplePipelines(root: string): string[] {
  const examples = join(root, 'examples');
  const files: string[] = [];
  for (const project of readdirSync(examples).sort()) {
    const folder = join(examples, project, 'pipelines');
    if (!existsSync(folder)) {
      continue;
    }
    for (const name of readdirSync(folder).sort()) {
      if (name.endsWith('.json')) {
        files.push(join(folder, name));
      }
    }
  }
  return files;
}

function parseError(text: string): PipelineParseError {
  try {
    parsePipeline(text);
  } catch (error) {
    assert.ok(error instanceof PipelineParseError, `unexpected ${String(error)}`);
    return error;
  }
  assert.fail(`parsed without an error: ${text}`);
}

const ROOT = repoRoot();

/** `dump_pipeline(load_pipeline(text))`, run by the project's Python. */
function pythonDump(text: string): string {
  const venvPython = join(ROOT, '.venv', 'bin', 'python');
  const python = existsSync(venvPython) ? venvPython : 'python3';
  const script = [
    'import sys',
    'from prophecy_jupyter.model.pipeline import dump_pipeline, load_pipeline',
    'out = dump_pipeline(load_pipeline(sys.stdin.buffer.read()))',
    "sys.stdout.buffer.write(out.encode('utf-8'))"
  ].join('\n');
  const result = spawnSync(python, ['-c', script], {
    cwd: ROOT,
    input: Buffer.from(text, 'utf8'),
    encoding: 'utf8'
  });
  assert.equal(result.error, undefined);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

describe('parsePipeline', () => {
  it('accepts a minimal document, reading missing parameters as none, as Python does', () => {
    const text = '{"version": 1, "name": "p", "gems": [], "connections": []}';
    assert.deepEqual(parsePipeline(text), {
      version: 1,
      name: 'p',
      parameters: [],
      gems: [],
      connections: []
    });
  });

  it('reads missing gems and connections as empty lists', () => {
    const document = parsePipeline('{"version": 1, "name": "p"}');
    assert.deepEqual(document.gems, []);
    assert.deepEqual(document.connections, []);
  });

  it('keeps members it does not check, such as parameters and description', () => {
    const document = parsePipeline(
      '{"version": 1, "name": "p", "description": "d", "parameters": [{"name": "n"}]}'
    );
    assert.equal(document.description, 'd');
    assert.deepEqual(document.parameters, [{ name: 'n' }]);
  });

  it('fills empty properties for a gem without them', () => {
    const document = parsePipeline(
      '{"version": 1, "name": "p", "gems": [{"id": "a", "kind": "Filter"}]}'
    );
    assert.deepEqual(document.gems[0].properties, {});
  });

  it('keeps the properties a gem has', () => {
    const document = parsePipeline(
      '{"version": 1, "name": "p", "gems": [{"id": "a", "kind": "Filter", "properties": {"condition": "x > 1"}}]}'
    );
    assert.deepEqual(document.gems[0].properties, { condition: 'x > 1' });
  });

  it('fills port in0 for a connection without one', () => {
    const document = parsePipeline(
      '{"version": 1, "name": "p", "gems": [], "connections": [{"from": "a", "to": "b"}]}'
    );
    assert.deepEqual(document.connections, [{ from: 'a', to: 'b', port: 'in0' }]);
  });

  it('keeps the port a connection names', () => {
    const document = parsePipeline(
      '{"version": 1, "name": "p", "connections": [{"from": "a", "to": "b", "port": "in1"}]}'
    );
    assert.equal(document.connections[0].port, 'in1');
  });

  it('rejects text that is not JSON', () => {
    const error = parseError('{"version": 1,');
    assert.match(error.message, /not valid JSON/);
  });

  for (const text of ['[]', 'null', '"pipeline"', '3']) {
    it(`rejects ${text}, which is not a JSON object`, () => {
      const error = parseError(text);
      assert.match(error.message, /one JSON object/);
    });
  }

  it('rejects gems that are not a list, naming /gems', () => {
    const error = parseError('{"version": 1, "name": "p", "gems": {}}');
    assert.match(error.message, /^\/gems\b/);
  });

  it('rejects a gem without an id, naming its pointer', () => {
    const error = parseError(
      '{"version": 1, "name": "p", "gems": [{"id": "a", "kind": "Filter"}, {"kind": "Filter"}]}'
    );
    assert.match(error.message, /^\/gems\/1 /);
  });

  it('rejects a gem whose id is not a string, naming its pointer', () => {
    const error = parseError(
      '{"version": 1, "name": "p", "gems": [{"id": 7, "kind": "Filter"}]}'
    );
    assert.match(error.message, /^\/gems\/0 /);
  });

  it('rejects a gem without a kind, naming its pointer', () => {
    const error = parseError('{"version": 1, "name": "p", "gems": [{"id": "a"}]}');
    assert.match(error.message, /^\/gems\/0 /);
  });

  it('rejects a gem whose properties are not an object, naming their pointer', () => {
    const error = parseError(
      '{"version": 1, "name": "p", "gems": [{"id": "a", "kind": "Filter", "properties": []}]}'
    );
    assert.match(error.message, /^\/gems\/0\/properties /);
  });

  it('rejects connections that are not a list, naming /connections', () => {
    const error = parseError('{"version": 1, "name": "p", "connections": "a->b"}');
    assert.match(error.message, /^\/connections\b/);
  });

  it('rejects a connection without "to", naming its pointer', () => {
    const error = parseError(
      '{"version": 1, "name": "p", "connections": [{"from": "a", "to": "b"}, {"from": "a"}]}'
    );
    assert.match(error.message, /^\/connections\/1 /);
  });

  it('rejects a connection that is not an object, naming its pointer', () => {
    const error = parseError(
      '{"version": 1, "name": "p", "connections": [["a", "b"]]}'
    );
    assert.match(error.message, /^\/connections\/0 /);
  });
});

describe('serializePipeline', () => {
  const document: IPipelineDocument = {
    version: 1,
    name: 'p',
    gems: [
      {
        properties: { zeta: 1, alpha: { z: true, a: [{ y: 2, b: 3 }] } },
        kind: 'Filter',
        id: 'f'
      }
    ],
    connections: [{ to: 'f', port: 'in0', from: 's' }]
  };

  it('sorts keys at every depth', () => {
    const text = serializePipeline(document);
    const keys = [...text.matchAll(/"([a-z]+)":/g)].map(match => match[1]);
    assert.deepEqual(keys, [
      'connections',
      'from',
      'port',
      'to',
      'gems',
      'id',
      'kind',
      'properties',
      'alpha',
      'a',
      'b',
      'y',
      'z',
      'zeta',
      'name',
      'version'
    ]);
  });

  it('indents by two spaces per level', () => {
    const text = serializePipeline({
      version: 1,
      name: 'p',
      gems: [],
      connections: [{ from: 'a', to: 'b', port: 'in0' }]
    });
    assert.equal(
      text,
      [
        '{',
        '  "connections": [',
        '    {',
        '      "from": "a",',
        '      "port": "in0",',
        '      "to": "b"',
        '    }',
        '  ],',
        '  "gems": [],',
        '  "name": "p",',
        '  "version": 1',
        '}',
        ''
      ].join('\n')
    );
  });

  it('ends with exactly one newline', () => {
    const text = serializePipeline(document);
    assert.ok(text.endsWith('}\n'));
    assert.ok(!text.endsWith('\n\n'));
  });

  it('drops members whose value is undefined', () => {
    const text = serializePipeline({
      version: 1,
      name: 'p',
      description: undefined,
      gems: [{ id: 'a', kind: 'Filter', label: undefined, properties: {} }],
      connections: []
    });
    assert.doesNotMatch(text, /description|label/);
    assert.deepEqual(JSON.parse(text).gems[0], {
      id: 'a',
      kind: 'Filter',
      properties: {}
    });
  });

  it('writes non-ASCII text as is, not as \\u escapes', () => {
    const text = serializePipeline({ ...document, name: 'café ✓' });
    assert.match(text, /"name": "café ✓"/);
  });
});

describe('round trip with the Python model', () => {
  const files = examplePipelines(ROOT);

  it('finds at least 4 example pipeline files', () => {
    assert.ok(files.length >= 4, `only ${files.length} example pipelines found`);
  });

  for (const file of files) {
    it(`serializes ${relative(ROOT, file)} back byte for byte`, () => {
      const text = readFileSync(file, 'utf8');
      assert.equal(serializePipeline(parsePipeline(text)), text);
    });
  }

  it('writes what the Python writer writes for the same document', () => {
    const text = serializePipeline({
      version: 1,
      name: 'café ✓',
      description: 'Données — 日本語',
      parameters: [{ name: 'limit', type: 'integer', default: 10 }],
      gems: [
        {
          id: 'orders',
          kind: 'Source',
          label: 'Commandes ✓',
          properties: {
            table: 'orders',
            options: {
              header: true,
              quoted: false,
              sample: 0.25,
              rows: 1000,
              nothing: null,
              columns: [],
              nested: { deeper: { names: ['é', 'ü'], count: -3 } }
            }
          },
          position: { x: 40, y: 120 }
        },
        {
          id: 'recent',
          kind: 'Filter',
          properties: { condition: "note <> 'naïve'" },
          position: { x: 280, y: 120 }
        }
      ],
      connections: [{ from: 'orders', to: 'recent', port: 'in0' }]
    });
    assert.equal(pythonDump(text), text);
  });

  it('agrees with the Python writer on key order and number spelling', () => {
    const text = serializePipeline({
      version: 1,
      name: 'edge cases',
      parameters: [],
      gems: [
        {
          id: 'a',
          kind: 'Filter',
          properties: {
            '10': 'array index keys come first, in numeric order',
            '9': 'nine',
            '01': 'not an index',
            a: 'lowercase after uppercase',
            B: 'upper',
            _: 'underscore',
            é: 'e acute',
            '\u{1F600}': 'astral: sorted by UTF-16 code unit',
            '\uFB01': 'ligature',
            numbers: [
              1e21, 1e-7, 0.00001, 0.1 + 0.2, -0, -1.5e-10, 123456789012345680000,
              1.7976931348623157e308, 5e-324, 2 ** 53
            ],
            text: 'tab\tnew line\nquote" backslash\\ bell\u0007 del\u007f sep\u2028'
          }
        }
      ],
      connections: []
    });
    assert.equal(pythonDump(text), text);
  });
});
