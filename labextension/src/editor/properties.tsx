/**
 * The properties panel of the selected gem: id, label and a form generated from the gem
 * kind's JSON Schema (@rjsf), then the gem's documentation (its description and one for
 * each output column, saved in the pipeline file). Expression fields use the CodeMirror
 * expression editor and, when the copilot is on, offer its suggestions; the server's
 * validation issues show on the field they point at and on the panel.
 */
import * as React from 'react';
import Form from '@rjsf/core';
import { RJSFSchema, UiSchema, WidgetProps } from '@rjsf/utils';
import validator from '@rjsf/validator-ajv8';

import * as api from '../api';
import { useAIStatus } from '../ai/status';
import { columnKey, describedColumn } from '../graph/state';
import { IGem, IGemKind } from '../types';
import { ExpressionEditor, IInputColumns } from './expression';
import {
  errorSchemaFor,
  fieldPointer,
  formSchema,
  ID_SEPARATOR,
  isObject,
  Schema,
  uiSchemaFor,
  withoutFilledDefaults
} from './forms';
import { useModel } from './hooks';
import { EditorModel, messageOf } from './model';

type Suggest = (
  field: string,
  ask: string,
  signal: AbortSignal
) => Promise<string[]>;

interface IFormContext {
  inputs: () => IInputColumns[];
  /** The form's id prefix: a field's id past it is its place in the properties. */
  idPrefix: string;
  /** The copilot's expressions for a field (a JSON pointer), when the copilot is on. */
  suggest?: Suggest;
}

interface ISuggestState {
  busy: boolean;
  error: string | null;
  candidates: string[] | null;
}

const IDLE: ISuggestState = { busy: false, error: null, candidates: null };

/** "✦ Suggest": the user says what the expression should compute and picks an answer. */
function Suggestions(props: {
  field: string;
  suggest: Suggest;
  onPick: (expression: string) => void;
}): JSX.Element {
  const [open, setOpen] = React.useState(false);
  const [ask, setAsk] = React.useState('');
  const [state, setState] = React.useState<ISuggestState>(IDLE);
  const running = React.useRef<AbortController | null>(null);
  React.useEffect(() => () => running.current?.abort(), []);

  const run = async (): Promise<void> => {
    if (running.current || !ask.trim()) {
      return;
    }
    const controller = new AbortController();
    running.current = controller;
    setState({ busy: true, error: null, candidates: null });
    try {
      const candidates = await props.suggest(
        props.field,
        ask.trim(),
        controller.signal
      );
      setState({ busy: false, error: null, candidates });
    } catch (error) {
      setState({
        busy: false,
        error: controller.signal.aborted ? null : messageOf(error),
        candidates: null
      });
    } finally {
      running.current = null;
    }
  };

  if (!open) {
    return (
      <button
        type="button"
        className="jp-Prophecy-suggest-open"
        data-testid="prophecy-suggest-open"
        title="Ask the AI copilot for an expression from the input columns"
        onClick={() => setOpen(true)}
      >
        ✦ Suggest
      </button>
    );
  }
  return (
    <div className="jp-Prophecy-suggest" data-testid="prophecy-suggest">
      <div className="jp-Prophecy-suggest-ask">
        <input
          data-testid="prophecy-suggest-input"
          placeholder="What should it compute?"
          value={ask}
          autoFocus
          onChange={event => setAsk(event.target.value)}
          onKeyDown={event => {
            event.stopPropagation();
            if (event.key === 'Enter') {
              event.preventDefault();
              void run();
            } else if (event.key === 'Escape') {
              running.current?.abort();
              setOpen(false);
            }
          }}
        />
        {state.busy ? (
          <button
            type="button"
            data-testid="prophecy-suggest-stop"
            onClick={() => running.current?.abort()}
          >
            Stop
          </button>
        ) : (
          <button
            type="button"
            data-testid="prophecy-suggest-run"
            disabled={!ask.trim()}
            onClick={() => void run()}
          >
            Suggest
          </button>
        )}
        <button
          type="button"
          title="Close"
          onClick={() => {
            running.current?.abort();
            setOpen(false);
          }}
        >
          ×
        </button>
      </div>
      {state.busy && <div className="jp-Prophecy-suggest-note">Thinking…</div>}
      {state.error && (
        <div
          className="jp-Prophecy-suggest-error"
          data-testid="prophecy-suggest-error"
        >
          {state.error}
        </div>
      )}
      {state.candidates?.length === 0 && (
        <div className="jp-Prophecy-suggest-note">
          No expression that parses was suggested.
        </div>
      )}
      {state.candidates && state.candidates.length > 0 && (
        <ul className="jp-Prophecy-suggest-list">
          {state.candidates.map(candidate => (
            <li key={candidate}>
              <button
                type="button"
                data-testid="prophecy-suggestion"
                title="Use this expression"
                onClick={() => {
                  props.onPick(candidate);
                  setOpen(false);
                  setState(IDLE);
                  setAsk('');
                }}
              >
                <code>{candidate}</code>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function ExpressionWidget(props: WidgetProps): JSX.Element {
  const context = props.registry.formContext as IFormContext;
  return (
    <>
      <ExpressionEditor
        id={props.id}
        value={typeof props.value === 'string' ? props.value : ''}
        onChange={value => props.onChange(value === '' ? undefined : value)}
        inputs={context.inputs}
        placeholder={props.placeholder || props.schema.description}
        invalid={(props.rawErrors ?? []).length > 0}
      />
      {context.suggest && (
        <Suggestions
          field={fieldPointer(props.id, context.idPrefix)}
          suggest={context.suggest}
          onPick={value => props.onChange(value)}
        />
      )}
    </>
  );
}

const WIDGETS = { expression: ExpressionWidget };

function GemHeader(props: {
  model: EditorModel;
  gem: IGem;
  kind?: IGemKind;
}): JSX.Element {
  const { model, gem } = props;
  const [id, setId] = React.useState(gem.id);
  React.useEffect(() => setId(gem.id), [gem.id]);
  const rename = (): void => {
    if (id !== gem.id) {
      if (model.dispatch({ type: 'renameGem', id: gem.id, newId: id })) {
        model.select([id]);
      } else {
        setId(gem.id);
      }
    }
  };
  return (
    <div className="jp-Prophecy-properties-header">
      <div className="jp-Prophecy-properties-kind">{gem.kind}</div>
      <label>
        Id
        <input
          data-testid="prophecy-gem-id-input"
          value={id}
          onChange={event => setId(event.target.value)}
          onBlur={rename}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              rename();
            }
          }}
        />
      </label>
      <label>
        Label
        <input
          value={gem.label ?? ''}
          placeholder={gem.id}
          onChange={event =>
            model.dispatch(
              { type: 'setLabel', id: gem.id, label: event.target.value },
              `label:${gem.id}`
            )
          }
        />
      </label>
      {props.kind && (
        <div className="jp-Prophecy-properties-summary">
          {props.kind.summary}
        </div>
      )}
    </div>
  );
}

/**
 * The gem's description and one for each of its output columns, written into the
 * pipeline file. Descriptions of columns the gem no longer outputs stay listed, marked,
 * until the user removes them.
 */
function Documentation(props: { model: EditorModel; gem: IGem }): JSX.Element {
  const { model, gem } = props;
  const outputs = model.columns[gem.id] ?? [];
  const described = gem.columns ?? {};
  const outputKeys = new Set(outputs.map(c => columnKey(gem, c.name)));
  const stale = Object.keys(described).filter(name => !outputKeys.has(name));
  // A Target writes its input unchanged, and the table takes the input gem's column
  // descriptions where the Target has none of its own: shown as placeholders.
  const feeder =
    gem.kind === 'Target'
      ? model.document.connections.find(c => c.to === gem.id)?.from
      : undefined;
  const fed = model.document.gems.find(g => g.id === feeder);
  const setColumn = (column: string, description: string): void => {
    model.dispatch(
      { type: 'setColumnDescription', id: gem.id, column, description },
      `column:${gem.id}:${column}`
    );
  };
  return (
    <div className="jp-Prophecy-docs" data-testid="prophecy-gem-docs">
      <label>
        Description
        <textarea
          data-testid="prophecy-gem-description"
          rows={3}
          value={gem.description ?? ''}
          placeholder="What this gem does and why"
          onChange={event =>
            model.dispatch(
              {
                type: 'setDescription',
                id: gem.id,
                description: event.target.value
              },
              `description:${gem.id}`
            )
          }
        />
      </label>
      {(outputs.length > 0 || stale.length > 0) && (
        <table
          className="jp-Prophecy-docs-columns"
          data-testid="prophecy-column-docs"
        >
          <thead>
            <tr>
              <th>Column</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {outputs.map(column => (
              <tr key={column.name} data-column={column.name}>
                <td title={column.type}>
                  <span className="jp-Prophecy-field">{column.name}</span>
                </td>
                <td>
                  <input
                    aria-label={`Description of ${column.name}`}
                    data-testid="prophecy-column-description"
                    value={describedColumn(gem, column.name)}
                    placeholder={
                      fed && describedColumn(fed, column.name)
                        ? `From ${fed.id}: ${describedColumn(fed, column.name)}`
                        : undefined
                    }
                    onChange={event =>
                      setColumn(column.name, event.target.value)
                    }
                  />
                </td>
              </tr>
            ))}
            {stale.map(name => (
              <tr
                key={`stale:${name}`}
                data-column={name}
                className="jp-mod-stale"
                title="The gem no longer outputs this column"
              >
                <td>
                  <span className="jp-Prophecy-field">{name}</span>
                </td>
                <td>
                  <span className="jp-Prophecy-docs-stale">
                    {described[name].description}
                  </span>
                  <button
                    type="button"
                    data-testid="prophecy-column-description-remove"
                    title={`Remove the description of ${name}, which the gem no longer outputs`}
                    onClick={() => setColumn(name, '')}
                  >
                    ×
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

type Tab = 'properties' | 'docs';

const TABS: [Tab, string, string][] = [
  ['properties', 'Properties', "The gem kind's settings"],
  [
    'docs',
    'Documentation',
    "The gem's description and one for each output column"
  ]
];

export function PropertiesPanel(props: {
  model: EditorModel;
  /** The panel's width in pixels, as the user set it. */
  width?: number;
}): JSX.Element {
  const { model } = props;
  useModel(model);
  const at = model.location;
  const { status: ai } = useAIStatus(at?.project);
  const [tab, setTab] = React.useState<Tab>('properties');
  const selected = model.selection.length === 1 ? model.selection[0] : null;
  const gem = model.document.gems.find(g => g.id === selected);
  const kind = gem ? model.catalog.get(gem.kind) : undefined;
  const schema = React.useMemo(
    () => (kind ? (formSchema(kind.properties_schema) as Schema) : null),
    [kind]
  );
  const uiSchema = React.useMemo<UiSchema>(
    () =>
      schema
        ? {
            ...uiSchemaFor(schema, isObject(schema.$defs) ? schema.$defs : {}),
            'ui:submitButtonOptions': { norender: true }
          }
        : {},
    [schema]
  );
  if (!gem) {
    return (
      <div className="jp-Prophecy-properties" style={{ width: props.width }}>
        <div className="jp-Prophecy-empty">
          {model.selection.length > 1
            ? `${model.selection.length} gems selected.`
            : 'Select a gem to see its properties.'}
        </div>
        {model.selection.length === 0 && (
          <div
            className="jp-Prophecy-docs"
            data-testid="prophecy-pipeline-docs"
          >
            <div className="jp-Prophecy-docs-title">Pipeline</div>
            <label>
              Description
              <textarea
                data-testid="prophecy-pipeline-description"
                rows={4}
                value={model.document.description ?? ''}
                placeholder="What this pipeline produces and for whom"
                onChange={event =>
                  model.dispatch(
                    {
                      type: 'setPipelineDescription',
                      description: event.target.value
                    },
                    'description:'
                  )
                }
              />
            </label>
          </div>
        )}
      </div>
    );
  }
  const issues = model.issuesOf(gem.id);
  const general = issues.filter(
    i => !/^\/gems\/\d+\/properties\//.test(i.field ?? '')
  );
  const gemId = gem.id;
  const idPrefix = `prophecy-${gem.id}`;
  const suggest: Suggest | undefined =
    at && ai?.enabled
      ? (field, ask, signal) =>
          api.aiSuggest(at, model.document, gemId, field, ask, signal)
      : undefined;
  return (
    <div
      className="jp-Prophecy-properties"
      data-testid="prophecy-properties"
      style={{ width: props.width }}
    >
      <GemHeader key={`header:${gem.id}`} model={model} gem={gem} kind={kind} />
      {general.length > 0 && (
        <ul className="jp-Prophecy-issues" data-testid="prophecy-gem-issues">
          {general.map((issue, i) => (
            <li key={i}>{issue.message}</li>
          ))}
        </ul>
      )}
      <div className="jp-Prophecy-properties-tabs" role="tablist">
        {TABS.map(([value, label, title]) => (
          <button
            key={value}
            type="button"
            role="tab"
            aria-selected={tab === value}
            data-testid={`prophecy-${value}-tab`}
            className={tab === value ? 'jp-mod-current' : ''}
            title={title}
            onClick={() => setTab(value)}
          >
            {label}
            {value === 'docs' && (gem.description || gem.columns) ? ' ✓' : ''}
          </button>
        ))}
      </div>
      {tab === 'docs' ? (
        <Documentation model={model} gem={gem} />
      ) : schema ? (
        <Form
          key={`form:${gem.id}`}
          schema={schema as RJSFSchema}
          uiSchema={uiSchema}
          formData={gem.properties}
          validator={validator}
          widgets={WIDGETS}
          formContext={
            {
              inputs: () => model.inputColumns(gemId),
              idPrefix,
              suggest
            } satisfies IFormContext
          }
          extraErrors={errorSchemaFor(issues)}
          showErrorList={false}
          noHtml5Validate
          idPrefix={idPrefix}
          idSeparator={ID_SEPARATOR}
          onChange={event =>
            model.dispatch(
              {
                type: 'setProperties',
                id: gemId,
                properties: withoutFilledDefaults(
                  event.formData ?? {},
                  gem.properties,
                  schema,
                  isObject(schema.$defs) ? schema.$defs : {}
                ) as Schema
              },
              `properties:${gemId}`
            )
          }
        />
      ) : (
        <div className="jp-Prophecy-empty">Unknown gem kind “{gem.kind}”.</div>
      )}
    </div>
  );
}
