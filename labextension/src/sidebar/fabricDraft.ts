/**
 * The fabric form's state and its conversions from and to the API's fabric. Kept free of
 * JupyterLab so it can be checked on its own.
 */
import { IFabric } from '../types';

export const FABRIC_KINDS = [
  'duckdb',
  'spark',
  'livy',
  'postgres',
  'databricks',
  'bigquery',
  'snowflake'
] as const;

/** The built-in fabric: the server refuses to replace or delete it. */
export const BUILT_IN_FABRIC = 'in-memory';

const FABRIC_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Option values are typed in the fabric file: a port stays a number. */
export type OptionType = 'string' | 'number' | 'boolean';

export interface IOptionRow {
  id: number;
  key: string;
  type: OptionType;
  value: string;
}

export interface ISecretRow {
  id: number;
  key: string;
  /** What the password field holds; starts as the server's mask when a value is stored. */
  value: string;
  /** The mask the server sent for a stored value, null when it had none or the row is new. */
  stored: string | null;
  /** Rows read from the server keep their name: renaming would lose the stored value. */
  existing: boolean;
}

export interface IFabricDraft {
  /** The fabric being edited, or null for a new one. */
  original: string | null;
  name: string;
  kind: string;
  description: string;
  options: IOptionRow[];
  secrets: ISecretRow[];
}

let nextRowId = 1;

/** A fresh React key for a row. */
export function rowId(): number {
  return nextRowId++;
}

function optionType(value: unknown): OptionType {
  if (typeof value === 'number') {
    return 'number';
  }
  if (typeof value === 'boolean') {
    return 'boolean';
  }
  return 'string';
}

export function newOptionRow(): IOptionRow {
  return { id: rowId(), key: '', type: 'string', value: '' };
}

export function newSecretRow(): ISecretRow {
  return { id: rowId(), key: '', value: '', stored: null, existing: false };
}

/** The form for `fabric`, or an empty one for a new fabric. */
export function draftOf(fabric?: IFabric): IFabricDraft {
  if (!fabric) {
    return {
      original: null,
      name: '',
      kind: 'duckdb',
      description: '',
      options: [],
      secrets: []
    };
  }
  return {
    original: fabric.name,
    name: fabric.name,
    kind: fabric.kind,
    description: fabric.description ?? '',
    options: Object.entries(fabric.options).map(([key, value]) => ({
      id: rowId(),
      key,
      type: optionType(value),
      value: String(value)
    })),
    secrets: Object.entries(fabric.secrets).map(([key, mask]) => ({
      id: rowId(),
      key,
      value: mask ?? '',
      stored: mask,
      existing: true
    }))
  };
}

/**
 * What to send for a secret: the mask unchanged keeps the stored value, an emptied field
 * clears it (null), anything else is the new value.
 */
export function secretValue(row: ISecretRow): string | null {
  if (row.stored !== null && row.value === row.stored) {
    return row.stored;
  }
  return row.value === '' ? null : row.value;
}

function optionValue(row: IOptionRow): string | number | boolean {
  if (row.type === 'number') {
    return Number(row.value);
  }
  if (row.type === 'boolean') {
    return row.value === 'true';
  }
  return row.value;
}

/** Why the form cannot be saved yet, or null. `existing` are the names already taken. */
export function draftProblem(
  draft: IFabricDraft,
  existing: readonly string[]
): string | null {
  const name = draft.name.trim();
  if (!FABRIC_NAME.test(name)) {
    return 'The name takes up to 64 letters, digits, _ and -, starting with a letter or digit.';
  }
  if (draft.original === null && existing.includes(name)) {
    return `A fabric named “${name}” exists already.`;
  }
  const seen = new Set<string>();
  for (const row of [...draft.options, ...draft.secrets]) {
    const key = row.key.trim();
    if (!key) {
      return 'Every option and secret needs a name.';
    }
    if (seen.has(key)) {
      return `“${key}” is given twice.`;
    }
    seen.add(key);
  }
  for (const row of draft.options) {
    if (
      row.type === 'number' &&
      (row.value.trim() === '' || !Number.isFinite(Number(row.value)))
    ) {
      return `Option “${row.key.trim()}” must be a number.`;
    }
  }
  return null;
}

/** The fabric to send with `putFabric`. */
export function fabricOf(draft: IFabricDraft): IFabric {
  const fabric: IFabric = {
    name: draft.name.trim(),
    kind: draft.kind,
    options: Object.fromEntries(
      draft.options.map(row => [row.key.trim(), optionValue(row)])
    ),
    secrets: Object.fromEntries(
      draft.secrets.map(row => [row.key.trim(), secretValue(row)])
    )
  };
  const description = draft.description.trim();
  if (description) {
    fabric.description = description;
  }
  return fabric;
}
