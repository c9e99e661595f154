/**
 * The panel under the canvas: the selected gem's data preview, the compiled code in any
 * dialect, and every problem of the pipeline.
 */
import * as React from 'react';

import * as api from '../api';
import { describedColumn } from '../graph/state';
import { ICompiled } from '../types';
import { useModel } from './hooks';
import { EditorModel, messageOf } from './model';

export const DIALECTS = [
  'duckdb',
  'spark',
  'databricks',
  'postgres',
  'snowflake',
  'bigquery',
  'trino',
  'tsql',
  api.PYSPARK
];

function cell(value: unknown): string {
  if (value === null || value === undefined) {
    return 'NULL';
  }
  if (typeof value === 'number' && !Number.isInteger(value)) {
    // 15 significant digits hide binary noise (118.80000000000001) without losing data.
    return String(Number(value.toPrecision(15)));
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function DataTab(props: {
  model: EditorModel;
  onRefresh: () => void;
}): JSX.Element {
  const { model } = props;
  const state = model.preview;
  const selected = model.selection.length === 1 ? model.selection[0] : null;
  if (!state || state.gemId !== selected) {
    return (
      <div className="jp-Prophecy-empty">
        {selected ? (
          <button
            className="jp-mod-styled jp-mod-accept"
            onClick={props.onRefresh}
          >
            Preview {selected}
          </button>
        ) : (
          'Select a gem to preview its data.'
        )}
      </div>
    );
  }
  const documented = model.document.gems.find(g => g.id === state.gemId);
  return (
    <div className="jp-Prophecy-preview" data-testid="prophecy-preview">
      <div className="jp-Prophecy-preview-bar">
        <span data-testid="prophecy-preview-status">
          {state.loading
            ? `Loading ${state.gemId}…`
            : state.result
              ? `${state.gemId}: ${state.result.rows.length} row${state.result.rows.length === 1 ? '' : 's'}${state.result.truncated ? ' (first rows only)' : ''}, ${state.result.columns.length} columns`
              : state.gemId}
        </span>
        {state.loading ? (
          <button
            className="jp-mod-styled jp-mod-warn"
            data-testid="prophecy-preview-cancel"
            onClick={() => void model.cancelPreview()}
          >
            Cancel
          </button>
        ) : (
          <button className="jp-mod-styled" onClick={props.onRefresh}>
            Refresh
          </button>
        )}
      </div>
      {state.loading && (
        <div className="jp-Prophecy-spinner" aria-label="loading" />
      )}
      {state.error && (
        <div className="jp-Prophecy-error" data-testid="prophecy-preview-error">
          {state.error}
        </div>
      )}
      {state.result && (
        <div className="jp-Prophecy-grid">
          <table>
            <thead>
              <tr>
                <th className="jp-Prophecy-rownum">#</th>
                {state.result.columns.map(column => (
                  <th
                    key={column.name}
                    title={[
                      column.type,
                      describedColumn(documented, column.name)
                    ]
                      .filter(Boolean)
                      .join('\n')}
                  >
                    <div>{column.name}</div>
                    <div className="jp-Prophecy-type">{column.type}</div>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {state.result.rows.map((row, r) => (
                <tr key={r} data-testid="prophecy-preview-row">
                  <td className="jp-Prophecy-rownum">{r + 1}</td>
                  {row.map((value, c) => (
                    <td
                      key={c}
                      className={value === null ? 'jp-Prophecy-null' : ''}
                    >
                      {cell(value)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function CodeTab(props: { model: EditorModel }): JSX.Element {
  const { model } = props;
  const [dialect, setDialect] = React.useState('duckdb');
  const [code, setCode] = React.useState<ICompiled | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [copied, setCopied] = React.useState(false);
  const selected =
    model.selection.length === 1 ? model.selection[0] : undefined;
  const document = model.document;
  React.useEffect(() => {
    if (!model.location) {
      return;
    }
    let current = true;
    const timer = window.setTimeout(() => {
      api
        .compile({ ...model.location!, pipeline: document }, dialect, selected)
        .then(result => {
          if (current) {
            setCode(result);
            setError(null);
          }
        })
        .catch(reason => {
          if (current) {
            setCode(null);
            setError(messageOf(reason));
          }
        });
    }, 250);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [model, document, dialect, selected]);
  const text = code?.code
    ? code.code
    : (code?.statements ?? [])
        .map(s => `-- ${s.gem_id}\n${s.sql.trim()}\n`)
        .join('\n');
  return (
    <div className="jp-Prophecy-code" data-testid="prophecy-code">
      <div className="jp-Prophecy-preview-bar">
        <label>
          Dialect{' '}
          <select
            data-testid="prophecy-dialect"
            value={dialect}
            onChange={event => setDialect(event.target.value)}
          >
            {DIALECTS.map(d => (
              <option key={d} value={d}>
                {d === api.PYSPARK ? 'PySpark (DataFrame)' : d}
              </option>
            ))}
          </select>
        </label>
        <span>
          {dialect === api.PYSPARK ? 'Code' : 'SQL'} of{' '}
          {selected ?? 'every Target'}
        </span>
        <button
          className="jp-mod-styled"
          disabled={!text}
          onClick={() => {
            void navigator.clipboard.writeText(text).then(() => {
              setCopied(true);
              window.setTimeout(() => setCopied(false), 1500);
            });
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
      {error ? (
        <div className="jp-Prophecy-error">{error}</div>
      ) : (
        <pre className="jp-Prophecy-sql" data-testid="prophecy-sql">
          {text}
        </pre>
      )}
    </div>
  );
}

function ProblemsTab(props: { model: EditorModel }): JSX.Element {
  const { model } = props;
  if (model.issues.length === 0) {
    return <div className="jp-Prophecy-empty">No problems.</div>;
  }
  return (
    <ul className="jp-Prophecy-problems" data-testid="prophecy-problems">
      {model.issues.map((issue, i) => (
        <li
          key={i}
          className={
            issue.severity === 'warning' ? 'jp-mod-warning' : 'jp-mod-error'
          }
          onClick={() => issue.gem_id && model.select([issue.gem_id])}
        >
          {issue.gem_id && <b>{issue.gem_id}</b>} {issue.message}
          {issue.field && (
            <span className="jp-Prophecy-field"> {issue.field}</span>
          )}
          {issue.line !== undefined && (
            <span className="jp-Prophecy-field">
              {' '}
              line {issue.line}, column {issue.column}
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}

type Tab = 'data' | 'code' | 'problems';

export function BottomPanel(props: {
  model: EditorModel;
  onPreview: () => void;
}): JSX.Element {
  const { model } = props;
  useModel(model);
  const [tab, setTab] = React.useState<Tab>('data');
  const errors = model.issues.filter(i => i.severity !== 'warning').length;
  const tabs: [Tab, string][] = [
    ['data', 'Data'],
    ['code', 'Code'],
    [
      'problems',
      `Problems${model.issues.length ? ` (${model.issues.length})` : ''}`
    ]
  ];
  return (
    <div className="jp-Prophecy-bottom">
      <div className="jp-Prophecy-tabs" role="tablist">
        {tabs.map(([id, label]) => (
          <button
            key={id}
            role="tab"
            aria-selected={tab === id}
            data-testid={`prophecy-tab-${id}`}
            className={`jp-Prophecy-tab${tab === id ? ' jp-mod-current' : ''}${id === 'problems' && errors ? ' jp-mod-error' : ''}`}
            onClick={() => setTab(id)}
          >
            {label}
          </button>
        ))}
      </div>
      <div className="jp-Prophecy-tab-body">
        {tab === 'data' && (
          <DataTab model={model} onRefresh={props.onPreview} />
        )}
        {tab === 'code' && <CodeTab model={model} />}
        {tab === 'problems' && <ProblemsTab model={model} />}
      </div>
    </div>
  );
}
