/** How a gem is drawn on the canvas: kind, id, status, problems and its typed ports. */
import * as React from 'react';
import { Handle, NodeProps, Node, Position } from '@xyflow/react';

import { IGemMark } from '../git/marks';
import { IGem, IGemKind, IIssue } from '../types';

export interface IGemNodeData extends Record<string, unknown> {
  gem: IGem;
  kind: IGemKind | undefined;
  /** How many input ports to draw. */
  ports: number;
  issues: IIssue[];
  status?: string;
  rows?: number | null;
  error?: string | null;
  /** How the diff the Git panel shows marks this gem (added or changed), if it does. */
  diff?: IGemMark;
}

export type GemNodeType = Node<IGemNodeData, 'gem'>;

/** Input ports to draw: the connected ones plus one free port while more are allowed. */
export function portCount(
  kind: IGemKind | undefined,
  connected: number
): number {
  if (!kind) {
    return Math.max(connected, 1);
  }
  const wanted = Math.max(kind.inputs.min, connected + 1);
  return kind.inputs.max === null ? wanted : Math.min(wanted, kind.inputs.max);
}

const CATEGORY_CLASS: Record<string, string> = {
  'Source/Target': 'jp-Prophecy-gem-io',
  Transform: 'jp-Prophecy-gem-transform',
  'Join/Split': 'jp-Prophecy-gem-join',
  Custom: 'jp-Prophecy-gem-custom'
};

export function GemNode({
  data,
  selected
}: NodeProps<GemNodeType>): JSX.Element {
  const { gem, kind, ports, issues, status, rows, error, diff } = data;
  const errors = issues.filter(issue => issue.severity !== 'warning');
  const classes = [
    'jp-Prophecy-gem',
    CATEGORY_CLASS[kind?.category ?? ''] ?? 'jp-Prophecy-gem-other',
    selected ? 'jp-mod-selected' : '',
    errors.length > 0 || status === 'failed' ? 'jp-mod-error' : '',
    status ? `jp-Prophecy-status-${status}` : '',
    diff ? `jp-Prophecy-diff-${diff.status}` : ''
  ].join(' ');
  const problem = error ?? errors.map(issue => issue.message).join('\n');
  return (
    <div
      className={classes}
      data-testid="prophecy-gem"
      data-gem-id={gem.id}
      data-status={status ?? ''}
      data-diff={diff?.status ?? ''}
      title={problem || diff?.title || kind?.summary || gem.kind}
    >
      {Array.from({ length: ports }, (_, i) => (
        <Handle
          key={i}
          type="target"
          id={`in${i}`}
          position={Position.Left}
          style={{ top: `${((i + 1) * 100) / (ports + 1)}%` }}
          className="jp-Prophecy-port"
          data-port={`in${i}`}
        />
      ))}
      <div className="jp-Prophecy-gem-kind">
        <span className="jp-Prophecy-gem-dot" />
        {gem.kind}
        {diff && (
          <span
            className="jp-Prophecy-gem-diffBadge"
            data-testid="prophecy-gem-diff"
            title={diff.title}
          >
            {diff.badge}
          </span>
        )}
      </div>
      <div className="jp-Prophecy-gem-id">{gem.label || gem.id}</div>
      {rows !== undefined && rows !== null && (
        <div className="jp-Prophecy-gem-rows">{rows.toLocaleString()} rows</div>
      )}
      {(errors.length > 0 || error) && (
        <div className="jp-Prophecy-gem-error" data-testid="prophecy-gem-error">
          {error ??
            (errors.length === 1
              ? errors[0].message
              : `${errors.length} problems`)}
        </div>
      )}
      {(kind?.has_output ?? true) && (
        <Handle
          type="source"
          id="out"
          position={Position.Right}
          className="jp-Prophecy-port"
        />
      )}
    </div>
  );
}
