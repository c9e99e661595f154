/**
 * Pieces the Observe sections share: a loader that polls while its value asks for it, the
 * status dot of a run and a moment shown in the user's time zone.
 */
import * as React from 'react';

import { formatFull, formatLocal, formatRelative } from '../observe/format';
import { errorMessage } from './common';

/** How often what is still moving (a queued or running run) is read again. */
export const ACTIVE_POLL_MS = 2000;

export interface IPolled<T> {
  /** The value for the current key; undefined until its first answer. */
  value: T | undefined;
  error: string | null;
  /** Change the value in place, as an action's answer tells (ignored after a key change). */
  update: (change: (value: T) => T) => void;
}

export interface IPollOptions<T> {
  /** Load only while true: the panel is on screen. */
  active: boolean;
  /** Whether to read again after `value`, `intervalMs` later. */
  again: (value: T) => boolean;
  intervalMs?: number;
  /** A change of this reads again, keeping the value until the answer comes. */
  refresh?: string;
}

/**
 * Load `load(previous)` whenever `key` or `refresh` change and again while `again` says so.
 * A new `key` starts from nothing (`previous` undefined); an answer that arrives after a
 * newer request started, after the key changed or after unmounting is dropped. The next
 * read waits for the answer to the last, so a slow server never gets them piled up.
 */
export function usePolled<T>(
  key: string,
  load: (previous: T | undefined) => Promise<T>,
  options: IPollOptions<T>
): IPolled<T> {
  const { active, intervalMs = ACTIVE_POLL_MS } = options;
  const [state, setState] = React.useState<{
    key: string;
    value?: T;
    error: string | null;
  }>({ key, error: null });
  const [round, setRound] = React.useState(0);
  const [answers, setAnswers] = React.useState(0);
  const current = state.key === key ? state : { key, error: null };
  const previous = React.useRef<T | undefined>(undefined);
  previous.current = current.value;

  React.useEffect(() => {
    if (!active) {
      return;
    }
    let live = true;
    load(previous.current).then(
      value => {
        if (live) {
          setState({ key, value, error: null });
          setAnswers(count => count + 1);
        }
      },
      (reason: unknown) => {
        if (live) {
          setState(last => ({
            ...(last.key === key ? last : { key }),
            error: errorMessage(reason)
          }));
          setAnswers(count => count + 1);
        }
      }
    );
    return () => {
      live = false;
    };
    // `load` is a new function each render; the key and the rounds say when to call it.
  }, [key, options.refresh, round, active]);

  const again = current.value !== undefined && options.again(current.value);
  React.useEffect(() => {
    if (!active || !again) {
      return;
    }
    let timer: number | undefined;
    // A background browser tab needs no fresh data; look again on the next tick.
    const tick = (): void => {
      if (document.hidden) {
        timer = window.setTimeout(tick, intervalMs);
      } else {
        setRound(count => count + 1);
      }
    };
    timer = window.setTimeout(tick, intervalMs);
    return () => window.clearTimeout(timer);
  }, [answers, again, active, intervalMs]);

  const update = React.useCallback(
    (change: (value: T) => T) =>
      setState(last =>
        last.key === key && last.value !== undefined
          ? { ...last, value: change(last.value) }
          : last
      ),
    [key]
  );
  return { value: current.value, error: current.error, update };
}

/** Call `onSettled` when `moving` turns false: what was queued or running has finished. */
export function useSettled(moving: boolean, onSettled: () => void): void {
  const was = React.useRef(moving);
  React.useEffect(() => {
    if (was.current && !moving) {
      onSettled();
    }
    was.current = moving;
  }, [moving]);
}

/** A small labelled line of a card: "Next  in 3 h · 2:00 AM". */
export function Field(props: {
  label: string;
  testId?: string;
  children: React.ReactNode;
}): React.ReactElement {
  return (
    <div className="jp-Prophecy-observeField" data-testid={props.testId}>
      <span className="jp-Prophecy-observeLabel">{props.label}</span>
      <span className="jp-Prophecy-observeValue">{props.children}</span>
    </div>
  );
}

/** The coloured dot of a run's status (grey when there is no run). */
export function StatusDot(props: {
  status: string | null;
  testId?: string;
}): React.ReactElement {
  const status = props.status ?? 'none';
  return (
    <span
      className={`jp-Prophecy-statusDot jp-Prophecy-status-${status}`}
      data-testid={props.testId}
      role="img"
      aria-label={props.status ?? 'no run'}
      title={props.status ?? 'no run'}
    />
  );
}

/** A moment as the user reads it: local, and how long ago or ahead; in full on hover. */
export function Moment(props: {
  iso: string | null;
  relative?: boolean;
  seconds?: boolean;
  testId?: string;
}): React.ReactElement {
  const now = new Date();
  const local = formatLocal(props.iso, now, props.seconds);
  const text = props.relative
    ? `${formatRelative(props.iso, now)} · ${local}`
    : local;
  return (
    <time
      className="jp-Prophecy-moment"
      dateTime={props.iso ?? undefined}
      title={formatFull(props.iso)}
      data-testid={props.testId}
    >
      {props.iso ? text : '—'}
    </time>
  );
}
