/**
 * The properties panel of the selected gem: id, label and a form generated from the gem
 * kind's JSON Schema (@rjsf). Expression fields use the CodeMirror expression editor; the
 * server's validation issues show on the field they point at and on the panel.
 */
import * as React from 'react';
import Form from '@rjsf/core';
import { RJSFSchema, UiSchema, WidgetProps } from '@rjsf/utils';
import validator from '@rjsf/validator-ajv8';

import { IGem, IGemKind } from '../types';
import { ExpressionEditor, IInputColumns } from './expression';
import {
  errorSchemaFor,
  formSchema,
  isObject,
  Schema,
  uiSchemaFor,
  withoutFilledDefaults
} from './forms';
import { useModel } from './hooks';
import { EditorModel } from './model';

interface IFormContext {
  inputs: () => IInputColumns[];
}

function ExpressionWidget(props: WidgetProps): JSX.Element {
  const context = props.registry.formContext as IFormContext;
  return (
    <ExpressionEditor
      id={props.id}
      value={typeof props.value === 'string' ? props.value : ''}
      onChange={value => props.onChange(value === '' ? undefined : value)}
      inputs={context.inputs}
      placeholder={props.placeholder || props.schema.description}
      invalid={(props.rawErrors ?? []).length > 0}
    />
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

export function PropertiesPanel(props: { model: EditorModel }): JSX.Element {
  const { model } = props;
  useModel(model);
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
      <div className="jp-Prophecy-properties jp-Prophecy-empty">
        {model.selection.length > 1
          ? `${model.selection.length} gems selected.`
          : 'Select a gem to see its properties.'}
      </div>
    );
  }
  const issues = model.issuesOf(gem.id);
  const general = issues.filter(
    i => !/^\/gems\/\d+\/properties\//.test(i.field ?? '')
  );
  const gemId = gem.id;
  return (
    <div className="jp-Prophecy-properties" data-testid="prophecy-properties">
      <GemHeader key={`header:${gem.id}`} model={model} gem={gem} kind={kind} />
      {general.length > 0 && (
        <ul className="jp-Prophecy-issues" data-testid="prophecy-gem-issues">
          {general.map((issue, i) => (
            <li key={i}>{issue.message}</li>
          ))}
        </ul>
      )}
      {schema ? (
        <Form
          key={`form:${gem.id}`}
          schema={schema as RJSFSchema}
          uiSchema={uiSchema}
          formData={gem.properties}
          validator={validator}
          widgets={WIDGETS}
          formContext={
            { inputs: () => model.inputColumns(gemId) } satisfies IFormContext
          }
          extraErrors={errorSchemaFor(issues)}
          showErrorList={false}
          noHtml5Validate
          idPrefix={`prophecy-${gem.id}`}
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
