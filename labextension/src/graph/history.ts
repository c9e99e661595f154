/**
 * Undo and redo over whole documents: each edit pushes the document it replaced.
 *
 * Documents share the parts an edit did not touch (the reducer copies only along the changed
 * path), so keeping a few hundred of them costs little even for large pipelines.
 */
import { IPipelineDocument } from '../types';
import { GraphAction, reduce } from './state';

export class History {
  private past: IPipelineDocument[] = [];
  private future: IPipelineDocument[] = [];
  private lastKey: string | null = null;

  constructor(
    private current: IPipelineDocument,
    private readonly limit = 200
  ) {}

  get document(): IPipelineDocument {
    return this.current;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }

  get canRedo(): boolean {
    return this.future.length > 0;
  }

  /**
   * Apply an edit. Edits sharing a `coalesce` key in a row (the keystrokes of one field) undo
   * as one step.
   */
  apply(action: GraphAction, coalesce?: string): IPipelineDocument {
    const next = reduce(this.current, action);
    if (next === this.current) {
      return next;
    }
    if (!(coalesce && coalesce === this.lastKey)) {
      this.past.push(this.current);
      if (this.past.length > this.limit) {
        this.past.shift();
      }
    }
    this.lastKey = coalesce ?? null;
    this.future = [];
    this.current = next;
    return next;
  }

  /** Start over from `document` (a file loaded or reloaded from disk): nothing to undo. */
  reset(document: IPipelineDocument): void {
    this.past = [];
    this.future = [];
    this.lastKey = null;
    this.current = document;
  }

  undo(): IPipelineDocument {
    const previous = this.past.pop();
    if (previous) {
      this.future.push(this.current);
      this.current = previous;
    }
    this.lastKey = null;
    return this.current;
  }

  redo(): IPipelineDocument {
    const next = this.future.pop();
    if (next) {
      this.past.push(this.current);
      this.current = next;
    }
    this.lastKey = null;
    return this.current;
  }
}
