/**
 * The expression editor of the properties form: JupyterLab's CodeMirror 6 with SQL
 * highlighting and completion of the columns the gem's inputs carry (`amount`,
 * `orders.amount`), as the server inferred them for the current draft.
 */
import * as React from 'react';
import {
  autocompletion,
  CompletionContext,
  CompletionResult
} from '@codemirror/autocomplete';
import { sql } from '@codemirror/lang-sql';
import { EditorState } from '@codemirror/state';
import { EditorView, placeholder as placeholderText } from '@codemirror/view';

import { IColumn } from '../types';

export interface IInputColumns {
  input: string;
  columns: IColumn[];
}

/** Completion options: each column bare and qualified by its input's gem id. */
export function completionSource(
  inputs: () => IInputColumns[]
): (context: CompletionContext) => CompletionResult | null {
  return context => {
    const word = context.matchBefore(
      /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]*)?/
    );
    if (!word && !context.explicit) {
      return null;
    }
    const options = [];
    const seen = new Set<string>();
    for (const { input, columns } of inputs()) {
      for (const column of columns) {
        if (!seen.has(column.name)) {
          seen.add(column.name);
          options.push({
            label: column.name,
            type: 'property',
            detail: column.type
          });
        }
        options.push({
          label: `${input}.${column.name}`,
          type: 'property',
          detail: column.type,
          boost: -1
        });
      }
    }
    return {
      from: word ? word.from : context.pos,
      options,
      validFor: /^[\w.]*$/
    };
  };
}

const THEME = EditorView.theme({
  '&': {
    border: '1px solid var(--jp-border-color1)',
    backgroundColor: 'var(--jp-layout-color0)',
    fontFamily: 'var(--jp-code-font-family)',
    fontSize: 'var(--jp-code-font-size)'
  },
  '&.cm-focused': { outline: '1px solid var(--jp-brand-color1)' },
  '.cm-content': { padding: '3px 0', minHeight: '1.5em' }
});

export function ExpressionEditor(props: {
  value: string;
  onChange: (value: string) => void;
  inputs: () => IInputColumns[];
  placeholder?: string;
  invalid?: boolean;
  id?: string;
}): JSX.Element {
  const host = React.useRef<HTMLDivElement>(null);
  const view = React.useRef<EditorView | null>(null);
  const onChange = React.useRef(props.onChange);
  onChange.current = props.onChange;
  const inputs = React.useRef(props.inputs);
  inputs.current = props.inputs;

  React.useEffect(() => {
    const editor = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: props.value,
        extensions: [
          sql(),
          THEME,
          EditorView.lineWrapping,
          placeholderText(props.placeholder ?? ''),
          autocompletion({
            override: [completionSource(() => inputs.current())],
            activateOnTyping: true
          }),
          EditorView.updateListener.of(update => {
            if (update.docChanged) {
              onChange.current(update.state.doc.toString());
            }
          })
        ]
      })
    });
    view.current = editor;
    return () => editor.destroy();
    // The editor is made once; later values arrive through the effect below.
  }, []);

  React.useEffect(() => {
    const editor = view.current;
    if (editor && editor.state.doc.toString() !== props.value) {
      editor.dispatch({
        changes: { from: 0, to: editor.state.doc.length, insert: props.value }
      });
    }
  }, [props.value]);

  return (
    <div
      ref={host}
      id={props.id}
      className={`jp-Prophecy-expression${props.invalid ? ' jp-mod-error' : ''}`}
      data-testid="prophecy-expression"
    />
  );
}
