/**
 * Side panels the user can widen or narrow: a handle on a panel's left edge, dragged with
 * the mouse or moved with the arrow keys. Each panel's width is kept in the browser's
 * storage, so a layout chosen once holds for every pipeline opened later.
 */
import * as React from 'react';

const STORAGE_PREFIX = 'prophecy-jupyter:width:';
export const MIN_WIDTH = 200;
export const MAX_WIDTH = 720;
const KEY_STEP = 16;

export function clampWidth(width: number): number {
  return Math.round(Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, width)));
}

function stored(key: string, initial: number): number {
  try {
    const value = Number(window.localStorage.getItem(STORAGE_PREFIX + key));
    return value > 0 ? clampWidth(value) : initial;
  } catch {
    return initial; // storage refused (privacy settings): the default width
  }
}

/** A panel's width in pixels, remembered under `key`. */
export function usePanelWidth(
  key: string,
  initial: number
): [number, (width: number) => void] {
  const [width, setWidth] = React.useState(() => stored(key, initial));
  const update = React.useCallback(
    (next: number) => {
      const clamped = clampWidth(next);
      setWidth(clamped);
      try {
        window.localStorage.setItem(STORAGE_PREFIX + key, String(clamped));
      } catch {
        // Not remembered; the width still applies to this page.
      }
    },
    [key]
  );
  return [width, update];
}

/** The handle on the left edge of a panel laid out on the right of the canvas. */
export function ResizeHandle(props: {
  label: string;
  width: number;
  onResize: (width: number) => void;
  testId?: string;
}): JSX.Element {
  const { width, onResize } = props;
  const drag = React.useRef<{ x: number; width: number } | null>(null);
  return (
    <div
      className="jp-Prophecy-resize"
      role="separator"
      aria-orientation="vertical"
      aria-label={props.label}
      aria-valuenow={width}
      aria-valuemin={MIN_WIDTH}
      aria-valuemax={MAX_WIDTH}
      tabIndex={0}
      title={`${props.label}: drag to resize`}
      data-testid={props.testId}
      onPointerDown={event => {
        event.preventDefault();
        event.currentTarget.setPointerCapture(event.pointerId);
        drag.current = { x: event.clientX, width };
      }}
      onPointerMove={event => {
        if (drag.current) {
          // The panel is right of its handle: moving left widens it.
          onResize(drag.current.width + drag.current.x - event.clientX);
        }
      }}
      onPointerUp={event => {
        drag.current = null;
        event.currentTarget.releasePointerCapture(event.pointerId);
      }}
      onKeyDown={event => {
        if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
          event.preventDefault();
          event.stopPropagation();
          onResize(width + (event.key === 'ArrowLeft' ? KEY_STEP : -KEY_STEP));
        }
      }}
    />
  );
}
