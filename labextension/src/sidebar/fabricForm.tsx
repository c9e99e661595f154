/**
 * The inline form that adds or edits a fabric. Secret fields start with the server's mask,
 * never a value: sending the mask back keeps what is stored.
 */
import * as React from 'react';

import { addIcon, closeIcon } from '@jupyterlab/ui-components';

import { IFabric } from '../types';
import { IconButton, Note } from './common';
import {
  FABRIC_KINDS,
  IFabricDraft,
  IOptionRow,
  ISecretRow,
  OptionType,
  draftProblem,
  fabricOf,
  newOptionRow,
  newSecretRow
} from './fabricDraft';

export interface IFabricFormProps {
  initial: IFabricDraft;
  /** Names already taken, so a new fabric does not silently replace one. */
  existingNames: readonly string[];
  /** Save; resolves false when it failed and the form should stay open. */
  onSave: (fabric: IFabric) => Promise<boolean>;
  onCancel: () => void;
}

const OPTION_TYPES: { type: OptionType; label: string }[] = [
  { type: 'string', label: 'text' },
  { type: 'number', label: 'number' },
  { type: 'boolean', label: 'bool' }
];

/** How a secret row will be saved, in words. */
function secretState(row: ISecretRow): string {
  if (row.stored !== null) {
    if (row.value === row.stored) {
      return 'stored';
    }
    return row.value === '' ? 'will be cleared' : 'new value';
  }
  return row.value === '' ? 'not set' : 'new value';
}

function OptionRow(props: {
  row: IOptionRow;
  onChange: (row: IOptionRow) => void;
  onRemove: () => void;
}): React.ReactElement {
  const { row, onChange } = props;
  const setType = (type: OptionType): void => {
    const value =
      type === 'boolean'
        ? row.value === 'true'
          ? 'true'
          : 'false'
        : row.value;
    onChange({ ...row, type, value });
  };
  return (
    <div
      className="jp-Prophecy-kvRow jp-Prophecy-optionRow"
      data-testid="prophecy-fabric-option"
      data-key={row.key}
    >
      <input
        className="jp-Prophecy-input"
        placeholder="name"
        aria-label="Option name"
        data-testid="prophecy-fabric-option-key"
        value={row.key}
        onChange={event => onChange({ ...row, key: event.target.value })}
      />
      <select
        className="jp-Prophecy-select"
        aria-label="Option type"
        data-testid="prophecy-fabric-option-type"
        value={row.type}
        onChange={event => setType(event.target.value as OptionType)}
      >
        {OPTION_TYPES.map(option => (
          <option key={option.type} value={option.type}>
            {option.label}
          </option>
        ))}
      </select>
      {row.type === 'boolean' ? (
        <select
          className="jp-Prophecy-select"
          aria-label="Option value"
          data-testid="prophecy-fabric-option-value"
          value={row.value}
          onChange={event => onChange({ ...row, value: event.target.value })}
        >
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      ) : (
        <input
          className="jp-Prophecy-input"
          placeholder="value"
          aria-label="Option value"
          inputMode={row.type === 'number' ? 'decimal' : undefined}
          data-testid="prophecy-fabric-option-value"
          value={row.value}
          onChange={event => onChange({ ...row, value: event.target.value })}
        />
      )}
      <IconButton
        icon={closeIcon}
        title="Remove this option"
        testId="prophecy-fabric-remove-option"
        onClick={props.onRemove}
      />
    </div>
  );
}

function SecretRow(props: {
  row: ISecretRow;
  onChange: (row: ISecretRow) => void;
  onRemove: () => void;
}): React.ReactElement {
  const { row, onChange } = props;
  const state = secretState(row);
  return (
    <div
      className="jp-Prophecy-kvRow jp-Prophecy-secretRow"
      data-testid="prophecy-fabric-secret"
      data-key={row.key}
    >
      <input
        className="jp-Prophecy-input"
        placeholder="name"
        aria-label="Secret name"
        data-testid="prophecy-fabric-secret-key"
        value={row.key}
        readOnly={row.existing}
        title={
          row.existing
            ? 'Remove the secret and add a new one to rename it'
            : undefined
        }
        onChange={event => onChange({ ...row, key: event.target.value })}
      />
      <input
        type="password"
        className="jp-Prophecy-input"
        placeholder="not set"
        aria-label="Secret value"
        autoComplete="new-password"
        data-testid="prophecy-fabric-secret-value"
        value={row.value}
        // Typing replaces the mask rather than appending to it.
        onFocus={event => event.target.select()}
        onChange={event => onChange({ ...row, value: event.target.value })}
      />
      <span
        className={`jp-Prophecy-secretState jp-Prophecy-secretState-${state.replace(/ /g, '-')}`}
        data-testid="prophecy-fabric-secret-state"
      >
        {state}
      </span>
      <IconButton
        icon={closeIcon}
        title="Forget this secret"
        testId="prophecy-fabric-remove-secret"
        onClick={props.onRemove}
      />
    </div>
  );
}

/** Replace the row of the same id. */
function replaced<T extends { id: number }>(rows: T[], row: T): T[] {
  return rows.map(other => (other.id === row.id ? row : other));
}

/** A titled list of editable rows (options, secrets) with add and remove. */
function RowGroup<T extends { id: number }>(props: {
  title: string;
  noun: string;
  rows: T[];
  newRow: () => T;
  onRows: (rows: T[]) => void;
  renderRow: (
    row: T,
    onChange: (changed: T) => void,
    onRemove: () => void
  ) => React.ReactElement;
  hint?: string;
}): React.ReactElement {
  const { rows, onRows } = props;
  return (
    <fieldset className="jp-Prophecy-kvGroup">
      <legend>
        {props.title}
        <IconButton
          icon={addIcon}
          title={`Add ${props.noun === 'option' ? 'an' : 'a'} ${props.noun}`}
          testId={`prophecy-fabric-add-${props.noun}`}
          onClick={() => onRows([...rows, props.newRow()])}
        />
      </legend>
      {rows.map(row =>
        props.renderRow(
          row,
          changed => onRows(replaced(rows, changed)),
          () => onRows(rows.filter(other => other.id !== row.id))
        )
      )}
      {props.hint && <div className="jp-Prophecy-hint">{props.hint}</div>}
    </fieldset>
  );
}

export function FabricForm(props: IFabricFormProps): React.ReactElement {
  const [draft, setDraft] = React.useState<IFabricDraft>(props.initial);
  const [saving, setSaving] = React.useState(false);
  const problem = draftProblem(draft, props.existingNames);
  const isNew = draft.original === null;
  // A new form is not wrong yet, only unfinished: say nothing until a name is typed.
  const shownProblem = isNew && !draft.name.trim() ? null : problem;
  const kinds: readonly string[] = FABRIC_KINDS.includes(
    draft.kind as (typeof FABRIC_KINDS)[number]
  )
    ? FABRIC_KINDS
    : [...FABRIC_KINDS, draft.kind];

  const save = async (): Promise<void> => {
    if (problem || saving) {
      return;
    }
    setSaving(true);
    const saved = await props.onSave(fabricOf(draft));
    if (!saved) {
      setSaving(false);
    }
  };

  return (
    <form
      className="jp-Prophecy-fabricForm"
      data-testid="prophecy-fabric-form"
      onSubmit={event => {
        event.preventDefault();
        void save();
      }}
    >
      <div className="jp-Prophecy-formTitle">
        {isNew ? 'New fabric' : `Edit fabric ${draft.original}`}
      </div>
      <label className="jp-Prophecy-field">
        <span>Name</span>
        <input
          className="jp-Prophecy-input"
          data-testid="prophecy-fabric-name"
          value={draft.name}
          readOnly={!isNew}
          autoFocus={isNew}
          onChange={event => setDraft({ ...draft, name: event.target.value })}
        />
      </label>
      <label className="jp-Prophecy-field">
        <span>Kind</span>
        <select
          className="jp-Prophecy-select"
          data-testid="prophecy-fabric-kind"
          value={draft.kind}
          onChange={event => setDraft({ ...draft, kind: event.target.value })}
        >
          {kinds.map(kind => (
            <option key={kind} value={kind}>
              {kind}
            </option>
          ))}
        </select>
      </label>
      <label className="jp-Prophecy-field">
        <span>Description</span>
        <input
          className="jp-Prophecy-input"
          data-testid="prophecy-fabric-description"
          value={draft.description}
          onChange={event =>
            setDraft({ ...draft, description: event.target.value })
          }
        />
      </label>
      <RowGroup
        title="Options"
        noun="option"
        rows={draft.options}
        newRow={newOptionRow}
        onRows={options => setDraft({ ...draft, options })}
        renderRow={(row, onChange, onRemove) => (
          <OptionRow
            key={row.id}
            row={row}
            onChange={onChange}
            onRemove={onRemove}
          />
        )}
      />
      <RowGroup
        title="Secrets"
        noun="secret"
        rows={draft.secrets}
        newRow={newSecretRow}
        onRows={secrets => setDraft({ ...draft, secrets })}
        renderRow={(row, onChange, onRemove) => (
          <SecretRow
            key={row.id}
            row={row}
            onChange={onChange}
            onRemove={onRemove}
          />
        )}
        hint="Secret values are kept in your own secret store, not in the project."
      />
      {shownProblem ? (
        <Note kind="error" testId="prophecy-fabric-form-problem">
          {shownProblem}
        </Note>
      ) : null}
      <div className="jp-Prophecy-formButtons">
        <button
          type="button"
          className="jp-Button jp-mod-styled jp-mod-reject"
          data-testid="prophecy-fabric-cancel"
          onClick={props.onCancel}
        >
          Cancel
        </button>
        <button
          type="submit"
          className="jp-Button jp-mod-styled jp-mod-accept"
          data-testid="prophecy-fabric-save"
          disabled={problem !== null || saving}
        >
          {saving ? 'Saving…' : 'Save'}
        </button>
      </div>
    </form>
  );
}
