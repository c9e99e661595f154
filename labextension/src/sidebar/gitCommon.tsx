/**
 * Pieces the Git panel's sections share: an action runner that shows what it did or why it
 * failed, and the merge left waiting for the user.
 */
import * as React from 'react';

import { IMergeResult } from '../types';
import { Note, errorMessage } from './common';

export interface IActionState {
  /** What is being done, while it is. */
  busy: string | null;
  error: string | null;
  /** What the last action did. */
  done: string | null;
  /** Which action of the panel this is (see `ActionEpoch`). */
  epoch: number;
}

const IDLE: IActionState = { busy: null, error: null, done: null, epoch: 0 };

export interface IActionEpoch {
  /** The panel's latest action. */
  current: number;
  /** Number a new action, which becomes the latest. */
  start: () => number;
}

/**
 * The Git panel's actions, numbered: only the latest one's outcome is shown, so that
 * "Committed…" does not linger under a section after a merge changed everything.
 */
export const ActionEpoch = React.createContext<IActionEpoch>({
  current: 0,
  start: () => 0
});

/** The value of `ActionEpoch` for a panel. */
export function useActionEpoch(): IActionEpoch {
  const [current, setCurrent] = React.useState(0);
  const counter = React.useRef(0);
  return React.useMemo(
    () => ({
      current,
      start: () => {
        counter.current += 1;
        setCurrent(counter.current);
        return counter.current;
      }
    }),
    [current]
  );
}

export interface IAction {
  state: IActionState;
  /** Run `work` unless another action runs; its answer (if any) is shown as done. */
  run: (
    label: string,
    work: () => Promise<string | null | void>
  ) => Promise<boolean>;
  clear: () => void;
}

/** One action at a time per section, its outcome shown under the section's header. */
export function useAction(): IAction {
  const epochs = React.useContext(ActionEpoch);
  const start = React.useRef(epochs.start);
  start.current = epochs.start;
  const [state, setState] = React.useState<IActionState>(IDLE);
  const live = React.useRef(true);
  const running = React.useRef(false);
  React.useEffect(() => {
    live.current = true;
    return () => {
      live.current = false;
    };
  }, []);
  const run = React.useCallback(
    async (
      label: string,
      work: () => Promise<string | null | void>
    ): Promise<boolean> => {
      if (running.current) {
        return false;
      }
      running.current = true;
      const epoch = start.current();
      setState({ busy: label, error: null, done: null, epoch });
      try {
        const done = await work();
        if (live.current) {
          setState({ busy: null, error: null, done: done || null, epoch });
        }
        return true;
      } catch (error) {
        if (live.current) {
          setState({
            busy: null,
            error: errorMessage(error),
            done: null,
            epoch
          });
        }
        return false;
      } finally {
        running.current = false;
      }
    },
    []
  );
  const clear = React.useCallback(() => setState(IDLE), []);
  return { state, run, clear };
}

export function ActionNote(props: {
  state: IActionState;
  testId: string;
}): React.ReactElement | null {
  const latest = React.useContext(ActionEpoch).current;
  const { busy, error, done, epoch } = props.state;
  if (epoch !== latest && !busy) {
    return null;
  }
  if (error) {
    return (
      <Note kind="error" testId={`${props.testId}-error`}>
        {error}
      </Note>
    );
  }
  if (busy) {
    return <Note testId={`${props.testId}-busy`}>{busy}…</Note>;
  }
  if (done) {
    return <Note testId={`${props.testId}-done`}>{done}</Note>;
  }
  return null;
}

/** A merge that stopped on conflicts, with the branch it merges. */
export interface IPendingMerge {
  branch: string;
  result: IMergeResult;
}

/**
 * Merges waiting for the user's choices, by project: they outlive the panel (another tab
 * of the sidebar, another project shown meanwhile) until finished or aborted.
 */
export const pendingMerges = new Map<string, IPendingMerge>();

/** A checkbox whose third state (some of a group checked) shows as a dash. */
export function Checkbox(props: {
  checked: boolean;
  indeterminate?: boolean;
  title: string;
  testId: string;
  onChange: () => void;
}): React.ReactElement {
  const ref = React.useRef<HTMLInputElement>(null);
  React.useEffect(() => {
    if (ref.current) {
      ref.current.indeterminate = !!props.indeterminate;
    }
  }, [props.indeterminate]);
  return (
    <input
      ref={ref}
      type="checkbox"
      className="jp-Prophecy-gitCheck"
      checked={props.checked}
      title={props.title}
      aria-label={props.title}
      data-testid={props.testId}
      onClick={event => event.stopPropagation()}
      onChange={props.onChange}
    />
  );
}
