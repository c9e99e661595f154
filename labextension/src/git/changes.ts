/**
 * The Git panel's list of changes: files grouped by what they are (pipelines, schedules,
 * fabrics, notebooks…) with a checkbox each, and the commit those checkboxes make.
 *
 * What is left out of the next commit is kept as the set of paths the user unchecked, so
 * that a file changed since the last look starts checked and an unchecked one stays so.
 */
import { IVcsChange, IVcsStatus } from '../types';

/** Groups in the order the panel shows them; any other group follows, by name. */
export const GROUP_ORDER: readonly string[] = [
  'pipelines',
  'schedules',
  'fabrics',
  'notebooks',
  'data',
  'project',
  'other'
];

const GROUP_LABELS: Record<string, string> = {
  pipelines: 'Pipelines',
  schedules: 'Schedules',
  fabrics: 'Fabrics',
  notebooks: 'Notebooks',
  data: 'Data',
  project: 'Project settings',
  other: 'Other files'
};

export interface IChangeGroup {
  group: string;
  label: string;
  changes: IVcsChange[];
}

/** Which of a group's files are checked. */
export type GroupCheck = 'all' | 'some' | 'none';

export function groupLabel(group: string): string {
  if (GROUP_LABELS[group]) {
    return GROUP_LABELS[group];
  }
  const words = group.replace(/[_-]+/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : GROUP_LABELS.other;
}

function rank(group: string): number {
  const index = GROUP_ORDER.indexOf(group);
  return index < 0 ? GROUP_ORDER.length : index;
}

/** Changes by group, groups in `GROUP_ORDER`, files by path within each. */
export function groupChanges(changes: readonly IVcsChange[]): IChangeGroup[] {
  const groups = new Map<string, IVcsChange[]>();
  for (const change of changes) {
    const group = change.group || 'other';
    groups.set(group, [...(groups.get(group) ?? []), change]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([group, list]) => ({
      group,
      label: groupLabel(group),
      changes: [...list].sort((a, b) => a.path.localeCompare(b.path))
    }));
}

/** Check or uncheck one file. */
export function toggleFile(
  excluded: ReadonlySet<string>,
  path: string
): Set<string> {
  const next = new Set(excluded);
  if (!next.delete(path)) {
    next.add(path);
  }
  return next;
}

export function groupCheck(
  group: IChangeGroup,
  excluded: ReadonlySet<string>
): GroupCheck {
  const out = group.changes.filter(c => excluded.has(c.path)).length;
  return out === 0 ? 'all' : out === group.changes.length ? 'none' : 'some';
}

/** The group's checkbox: a fully checked group is unchecked, any other checked whole. */
export function toggleGroup(
  excluded: ReadonlySet<string>,
  group: IChangeGroup
): Set<string> {
  const next = new Set(excluded);
  const check = groupCheck(group, excluded) !== 'all';
  for (const change of group.changes) {
    if (check) {
      next.delete(change.path);
    } else {
      next.add(change.path);
    }
  }
  return next;
}

/** Forget unchecked paths that are no longer changed (committed, reverted). */
export function pruneExcluded(
  excluded: ReadonlySet<string>,
  changes: readonly IVcsChange[]
): Set<string> {
  const present = new Set(changes.map(c => c.path));
  return new Set([...excluded].filter(path => present.has(path)));
}

export function selectedPaths(
  changes: readonly IVcsChange[],
  excluded: ReadonlySet<string>
): string[] {
  return changes.map(c => c.path).filter(path => !excluded.has(path));
}

/** The body of `POST /vcs/commit`, or why there is nothing to commit yet. */
export function commitRequest(
  message: string,
  changes: readonly IVcsChange[],
  excluded: ReadonlySet<string>
): { message: string; paths: string[] } | { problem: string } {
  const paths = selectedPaths(changes, excluded);
  if (paths.length === 0) {
    return { problem: 'Check the files to commit' };
  }
  if (!message.trim()) {
    return { problem: 'Write a commit message' };
  }
  return { message: message.trim(), paths };
}

const STATUS_LETTERS: Record<string, string> = {
  added: 'A',
  modified: 'M',
  deleted: 'D',
  renamed: 'R',
  untracked: 'U',
  conflicted: 'C',
  typechange: 'T'
};

/** The one-letter mark of a file's change, as Git tools show it. */
export function statusLetter(status: string): string {
  return STATUS_LETTERS[status] ?? (status.slice(0, 1).toUpperCase() || '?');
}

/** `pipelines/orders.pipeline.json` → `orders.pipeline.json`, and its folder. */
export function splitPath(path: string): { name: string; folder: string } {
  const slash = path.lastIndexOf('/');
  return slash < 0
    ? { name: path, folder: '' }
    : { name: path.slice(slash + 1), folder: path.slice(0, slash) };
}

/** "main ↑2 ↓1": the branch and how far it is from its upstream. */
export function trackingText(status: IVcsStatus): string {
  const parts: string[] = [];
  if (status.ahead > 0) {
    parts.push(`↑${status.ahead}`);
  }
  if (status.behind > 0) {
    parts.push(`↓${status.behind}`);
  }
  return parts.join(' ');
}

/** A commit id as people read it. */
export function shortCommit(commit: string | null | undefined): string {
  return commit ? commit.slice(0, 7) : '';
}
