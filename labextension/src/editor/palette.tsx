/** The gem palette: kinds grouped by category, searchable, dragged onto the canvas. */
import * as React from 'react';

import { IGemKind } from '../types';

export const GEM_MIME = 'application/x-prophecy-gem';

export function Palette(props: {
  kinds: IGemKind[];
  onAdd: (kind: string) => void;
}): JSX.Element {
  const [query, setQuery] = React.useState('');
  const needle = query.trim().toLowerCase();
  const shown = props.kinds.filter(
    kind =>
      !needle ||
      kind.kind.toLowerCase().includes(needle) ||
      kind.summary.toLowerCase().includes(needle) ||
      kind.category.toLowerCase().includes(needle)
  );
  const categories = [...new Set(shown.map(kind => kind.category))];
  return (
    <div className="jp-Prophecy-palette" data-testid="prophecy-palette">
      <input
        className="jp-Prophecy-palette-search"
        type="search"
        placeholder="Search gems"
        aria-label="Search gems"
        value={query}
        onChange={event => setQuery(event.target.value)}
      />
      {categories.map(category => (
        <div key={category} className="jp-Prophecy-palette-group">
          <div className="jp-Prophecy-palette-category">{category}</div>
          {shown
            .filter(kind => kind.category === category)
            .map(kind => (
              <div
                key={kind.kind}
                className="jp-Prophecy-palette-item"
                data-testid="prophecy-palette-item"
                data-kind={kind.kind}
                title={`${kind.summary}\nDrag onto the canvas, or double-click to add.`}
                draggable
                onDragStart={event => {
                  event.dataTransfer.setData(GEM_MIME, kind.kind);
                  event.dataTransfer.effectAllowed = 'copy';
                }}
                onDoubleClick={() => props.onAdd(kind.kind)}
              >
                {kind.kind}
              </div>
            ))}
        </div>
      ))}
      {shown.length === 0 && (
        <div className="jp-Prophecy-empty">No gem matches “{query}”.</div>
      )}
    </div>
  );
}
