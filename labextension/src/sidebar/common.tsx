/**
 * Pieces every section of the sidebar shares: the collapsible section, icon buttons, dialogs
 * and a loader hook that ignores answers arriving after their section moved on.
 */
import * as React from 'react';

import {
  Dialog,
  InputDialog,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import {
  LabIcon,
  caretDownIcon,
  caretRightIcon
} from '@jupyterlab/ui-components';

import * as api from '../api';
import { ApiError } from '../api';

/** A message for any error: the server's own words for API errors. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/** Show a failed action in a dialog; a cancelled request is not a failure. */
export async function reportError(
  title: string,
  error: unknown
): Promise<void> {
  if (error instanceof ApiError && error.cancelled) {
    return;
  }
  await showErrorMessage(title, { message: errorMessage(error) });
}

/** Ask for a name; null when the user cancels or leaves it empty. */
export async function askName(
  title: string,
  okLabel: string,
  text = ''
): Promise<string | null> {
  const result = await InputDialog.getText({
    title,
    label: 'Name',
    text,
    placeholder: 'letters, digits, _ . -',
    okLabel
  });
  const value = result.value?.trim() ?? '';
  return result.button.accept && value ? value : null;
}

/** Ask before something that cannot be undone. */
export async function confirmAction(
  title: string,
  body: string,
  label: string
): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

export interface IIconButtonProps {
  icon: LabIcon;
  title: string;
  testId: string;
  onClick: () => void;
  disabled?: boolean;
  label?: string;
}

/** A small button with a JupyterLab icon; the click does not reach the row or header under it. */
export function IconButton(props: IIconButtonProps): React.ReactElement {
  const { icon, title, testId, onClick, disabled, label } = props;
  return (
    <button
      type="button"
      className="jp-Prophecy-iconButton"
      title={title}
      aria-label={title}
      data-testid={testId}
      disabled={disabled}
      onClick={event => {
        event.stopPropagation();
        onClick();
      }}
    >
      <icon.react tag="span" className="jp-Prophecy-icon" />
      {label ? <span className="jp-Prophecy-buttonLabel">{label}</span> : null}
    </button>
  );
}

export interface ISectionProps {
  /** Names the section in its data-testid. */
  id: string;
  title: string;
  actions?: React.ReactNode;
  children?: React.ReactNode;
}

/** Which sections are folded, kept above the sections so switching projects keeps it. */
export interface IFolds {
  isOpen: (id: string) => boolean;
  toggle: (id: string) => void;
}

export const FoldContext = React.createContext<IFolds | null>(null);

/** Fold state for `FoldContext`: every section starts open. */
export function useFolds(): IFolds {
  const [folded, setFolded] = React.useState<ReadonlySet<string>>(new Set());
  return React.useMemo(
    () => ({
      isOpen: (id: string) => !folded.has(id),
      toggle: (id: string) =>
        setFolded(current => {
          const next = new Set(current);
          if (!next.delete(id)) {
            next.add(id);
          }
          return next;
        })
    }),
    [folded]
  );
}

/**
 * A titled part of the panel that folds away. Its body is unmounted while folded, so what
 * it polls or loads stops with it.
 */
export function Section(props: ISectionProps): React.ReactElement {
  const folds = React.useContext(FoldContext);
  const [ownOpen, setOwnOpen] = React.useState(true);
  const open = folds ? folds.isOpen(props.id) : ownOpen;
  const toggle = (): void =>
    folds ? folds.toggle(props.id) : setOwnOpen(!ownOpen);
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <section
      className="jp-Prophecy-section"
      data-testid={`prophecy-section-${props.id}`}
      data-open={open}
    >
      <div className="jp-Prophecy-sectionHeader">
        <button
          type="button"
          className="jp-Prophecy-sectionToggle"
          aria-expanded={open}
          data-testid={`prophecy-section-toggle-${props.id}`}
          onClick={toggle}
        >
          <Caret.react tag="span" className="jp-Prophecy-icon" />
          <span className="jp-Prophecy-sectionTitle">{props.title}</span>
        </button>
        {open ? (
          <div className="jp-Prophecy-sectionActions">{props.actions}</div>
        ) : null}
      </div>
      {open ? (
        <div className="jp-Prophecy-sectionBody">{props.children}</div>
      ) : null}
    </section>
  );
}

export interface ILoaded<T> {
  value: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/**
 * Load `load()` whenever `deps` change or `reload` is called. An answer that arrives after a
 * newer request started, or after unmounting, is dropped, so a slow reply for the previous
 * project never replaces the current one.
 */
export function useLoader<T>(
  load: () => Promise<T>,
  deps: React.DependencyList
): ILoaded<T> {
  const [value, setValue] = React.useState<T | undefined>(undefined);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(true);
  const [tick, setTick] = React.useState(0);
  React.useEffect(() => {
    let current = true;
    setLoading(true);
    load().then(
      result => {
        if (current) {
          setValue(result);
          setError(null);
          setLoading(false);
        }
      },
      (reason: unknown) => {
        if (current) {
          setError(errorMessage(reason));
          setLoading(false);
        }
      }
    );
    return () => {
      current = false;
    };
    // `load` is a new function each render; `deps` say when it means something new.
  }, [...deps, tick]);
  const reload = React.useCallback(() => setTick(t => t + 1), []);
  return { value, error, loading, reload };
}

/** A line of text standing for an empty, loading or failed list. */
export function Note(props: {
  kind?: 'error' | 'muted';
  testId?: string;
  children: React.ReactNode;
}): React.ReactElement {
  const kind = props.kind ?? 'muted';
  return (
    <div
      className={`jp-Prophecy-note jp-Prophecy-note-${kind}`}
      data-testid={props.testId}
    >
      {props.children}
    </div>
  );
}

/** Ask which of the project's fabrics to use; null when the user cancels. */
export async function askFabric(
  project: string,
  title: string,
  okLabel: string,
  noFabric = 'The project has no fabric.'
): Promise<string | null> {
  const names = (await api.fabrics(project)).map(fabric => fabric.name);
  if (names.length === 0) {
    throw new Error(noFabric);
  }
  const answer = await InputDialog.getItem({
    title,
    label: 'Fabric',
    items: names,
    okLabel
  });
  return answer.button.accept && answer.value ? answer.value : null;
}
