/**
 * The diffs the Git panel asked the pipeline editor to show, by pipeline. The panel puts
 * one here before it opens the pipeline; the editor of that pipeline draws it until the
 * user hides it or the panel learns it is out of date (a commit, a branch switch).
 */
import { IPipelineDiff } from '../types';

export interface IShownDiff {
  project: string;
  name: string;
  diff: IPipelineDiff;
  /** What the diff is against, as the banner names it ("the last commit"). */
  against: string;
}

export function diffKey(project: string, name: string): string {
  return `${project}\u0000${name}`;
}

export class ShownDiffs {
  private readonly _diffs = new Map<string, IShownDiff>();
  private readonly _listeners = new Set<() => void>();
  private _version = 0;

  /** Grows on every change (what `useSyncExternalStore` compares). */
  get version(): number {
    return this._version;
  }

  get(project: string, name: string): IShownDiff | undefined {
    return this._diffs.get(diffKey(project, name));
  }

  show(shown: IShownDiff): void {
    this._diffs.set(diffKey(shown.project, shown.name), shown);
    this.changed();
  }

  hide(project: string, name: string): void {
    if (this._diffs.delete(diffKey(project, name))) {
      this.changed();
    }
  }

  /** Forget every diff of `project` (all projects when not given). */
  clear(project?: string): void {
    let any = false;
    for (const [key, shown] of this._diffs) {
      if (project === undefined || shown.project === project) {
        this._diffs.delete(key);
        any = true;
      }
    }
    if (any) {
      this.changed();
    }
  }

  /** Forget the diffs of `project` whose pipeline is not among `changed` any more. */
  keepOnly(project: string, changed: ReadonlySet<string>): void {
    let any = false;
    for (const [key, shown] of this._diffs) {
      if (shown.project === project && !changed.has(shown.name)) {
        this._diffs.delete(key);
        any = true;
      }
    }
    if (any) {
      this.changed();
    }
  }

  subscribe(listener: () => void): () => void {
    this._listeners.add(listener);
    return () => {
      this._listeners.delete(listener);
    };
  }

  private changed(): void {
    this._version++;
    for (const listener of [...this._listeners]) {
      listener();
    }
  }
}

/** The Studio's one store: the Git panel writes it, every pipeline editor reads it. */
export const shownDiffs = new ShownDiffs();
