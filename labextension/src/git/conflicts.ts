/**
 * A merge in progress as the conflict view shows it: every pipeline conflict (a property
 * both branches changed differently) and every conflicting text file, the side the user
 * picked for each, and the request that finishes the merge once each has one.
 */
import {
  IMergeResolution,
  IMergeResult,
  IPipelineConflict,
  MergeSide
} from '../types';

export interface IConflictChoices {
  /** file → property path → side */
  readonly pipeline: Readonly<
    Record<string, Readonly<Record<string, MergeSide>>>
  >;
  /** file → side */
  readonly text: Readonly<Record<string, MergeSide>>;
}

export const NO_CHOICES: IConflictChoices = { pipeline: {}, text: {} };

export function choose(
  choices: IConflictChoices,
  file: string,
  path: string,
  side: MergeSide
): IConflictChoices {
  return {
    ...choices,
    pipeline: {
      ...choices.pipeline,
      [file]: { ...(choices.pipeline[file] ?? {}), [path]: side }
    }
  };
}

export function chooseText(
  choices: IConflictChoices,
  file: string,
  side: MergeSide
): IConflictChoices {
  return { ...choices, text: { ...choices.text, [file]: side } };
}

/** One side for everything the merge left in conflict. */
export function chooseAll(
  merge: IMergeResult,
  side: MergeSide
): IConflictChoices {
  const pipeline: Record<string, Record<string, MergeSide>> = {};
  for (const file of merge.conflicts) {
    pipeline[file.path] = Object.fromEntries(
      file.conflicts.map(conflict => [conflict.path, side])
    );
  }
  const text = Object.fromEntries(merge.text_conflicts.map(f => [f, side]));
  return { pipeline, text };
}

export function sideOf(
  choices: IConflictChoices,
  file: string,
  path: string
): MergeSide | undefined {
  return choices.pipeline[file]?.[path];
}

/** How many conflicts the merge reported: pipeline properties and text files. */
export function conflictCount(merge: IMergeResult): number {
  return (
    merge.conflicts.reduce((sum, file) => sum + file.conflicts.length, 0) +
    merge.text_conflicts.length
  );
}

/** How many conflicts have no side chosen yet. */
export function unresolvedCount(
  merge: IMergeResult,
  choices: IConflictChoices
): number {
  let count = 0;
  for (const file of merge.conflicts) {
    for (const conflict of file.conflicts) {
      if (!sideOf(choices, file.path, conflict.path)) {
        count++;
      }
    }
  }
  for (const file of merge.text_conflicts) {
    if (!choices.text[file]) {
      count++;
    }
  }
  return count;
}

/**
 * The body of `POST /vcs/merge/resolve` once every conflict has a side, else null. Only
 * conflicts of this merge are sent, whatever else the choices hold.
 */
export function resolution(
  merge: IMergeResult,
  choices: IConflictChoices
): IMergeResolution | null {
  if (unresolvedCount(merge, choices) > 0) {
    return null;
  }
  const picked: Record<string, Record<string, MergeSide>> = {};
  for (const file of merge.conflicts) {
    picked[file.path] = Object.fromEntries(
      file.conflicts.map(c => [c.path, sideOf(choices, file.path, c.path)!])
    );
  }
  const text = Object.fromEntries(
    merge.text_conflicts.map(file => [file, choices.text[file]])
  );
  return { choices: picked, text };
}

/** Whether the merge stopped on conflicts that the user has to settle. */
export function needsResolution(merge: IMergeResult | null): boolean {
  return !!merge && !merge.merged && conflictCount(merge) > 0;
}

/** A conflicting value as the view shows it: JSON, or what its absence means. */
export function showValue(value: unknown): string {
  if (value === undefined || value === null) {
    return '(none)';
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value, null, 1);
}

/**
 * The segments of a path into a document: a JSON pointer (`/gems/a~1b/label`, unescaped)
 * or a dotted path (`properties.condition`).
 */
export function pathSegments(path: string): string[] {
  const pointer = path.startsWith('/') || path.includes('/');
  return path
    .split(pointer ? '/' : '.')
    .filter(Boolean)
    .map(segment =>
      pointer ? segment.replace(/~1/g, '/').replace(/~0/g, '~') : segment
    );
}

/** The property a conflict is about, without the gem it is in:
 * `/gems/shipped/properties/condition` → `condition`. */
export function conflictField(conflict: IPipelineConflict): string {
  const segments = pathSegments(conflict.path);
  const gem =
    conflict.gem_id && segments[0] === 'gems'
      ? segments.indexOf(conflict.gem_id)
      : -1;
  const rest = gem >= 0 ? segments.slice(gem + 1) : segments;
  const tail =
    rest[0] === 'properties' && rest.length > 1 ? rest.slice(1) : rest;
  return tail.join('.') || (gem >= 0 ? 'the gem' : conflict.path);
}
