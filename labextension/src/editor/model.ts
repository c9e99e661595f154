/**
 * What one open pipeline editor knows: the document with its undo history, the selection,
 * the server's verdict on the draft (issues and every gem's columns), the data preview and
 * the last run. It holds no React and no widgets, so the canvas, the properties form, the
 * bottom panel and the commands all read and change the same state.
 */
import { ISignal, Signal } from '@lumino/signaling';

import * as api from '../api';
import { History } from '../graph/history';
import { IPipelineLocation } from '../graph/location';
import { copyGems, GraphAction, GraphError, IClipboard } from '../graph/state';
import {
  IColumn,
  IGemKind,
  IIssue,
  IPipelineDocument,
  IPreview,
  IRun,
  TERMINAL_RUN_STATUSES
} from '../types';

export interface IPreviewState {
  gemId: string;
  loading: boolean;
  result?: IPreview;
  error?: string;
}

/** Shared clipboard of the Studio: copy in one pipeline, paste in another. */
let clipboard: IClipboard | null = null;

export class EditorModel {
  readonly history: History;
  selection: string[] = [];
  issues: IIssue[] = [];
  columns: Record<string, IColumn[]> = {};
  preview: IPreviewState | null = null;
  /** The server has judged the document since it was loaded. */
  checked = false;
  /** An edit is waiting for the server's verdict: `issues` may be out of date. */
  pending = false;
  run: IRun | null = null;
  /** Why the document could not be shown (a file that is not a pipeline), if so. */
  loadError: string | null = null;
  /** An edit the reducer refused, shown to the user until the next edit. */
  notice: string | null = null;
  private _catalog: Map<string, IGemKind> = new Map();
  private _version = 0;
  private readonly _changed = new Signal<this, void>(this);
  private readonly _edited = new Signal<this, IPipelineDocument>(this);
  private _validateTimer: number | undefined;
  private _validation = 0;
  private _previewRequest = 0;
  private _runPoll: number | undefined;
  private _disposed = false;

  constructor(
    /** Null for a pipeline file outside a project's `pipelines/` folder. */
    public location: IPipelineLocation | null,
    document: IPipelineDocument
  ) {
    this.history = new History(document);
  }

  get document(): IPipelineDocument {
    return this.history.document;
  }

  get catalog(): Map<string, IGemKind> {
    return this._catalog;
  }

  /** Grows by one on every change; React components re-render on it. */
  get version(): number {
    return this._version;
  }

  /** Any change of state. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The document was edited by the user (not loaded): it should be written back. */
  get edited(): ISignal<this, IPipelineDocument> {
    return this._edited;
  }

  setCatalog(kinds: IGemKind[]): void {
    this._catalog = new Map(kinds.map(kind => [kind.kind, kind]));
    this.notify();
  }

  /** Show `document` as loaded from the file: a new start for undo, then validate it. */
  load(document: IPipelineDocument): void {
    this.loadError = null;
    this.checked = false;
    this.history.reset(document);
    const ids = new Set(document.gems.map(gem => gem.id));
    this.selection = this.selection.filter(id => ids.has(id));
    this.notify();
    this.scheduleValidation(0);
  }

  failLoad(message: string): void {
    this.loadError = message;
    this.notify();
  }

  /** Apply a user edit; refused edits become a notice instead of an exception. */
  dispatch(action: GraphAction, coalesce?: string): boolean {
    try {
      const before = this.history.document;
      const after = this.history.apply(action, coalesce);
      this.notice = null;
      if (after !== before) {
        this.afterEdit();
      }
      return true;
    } catch (error) {
      if (error instanceof GraphError) {
        this.notice = error.message;
        this.notify();
        return false;
      }
      throw error;
    }
  }

  undo(): void {
    if (this.history.canUndo) {
      this.history.undo();
      this.afterEdit();
    }
  }

  redo(): void {
    if (this.history.canRedo) {
      this.history.redo();
      this.afterEdit();
    }
  }

  select(ids: string[]): void {
    const same =
      ids.length === this.selection.length &&
      ids.every((id, i) => id === this.selection[i]);
    if (!same) {
      this.selection = ids;
      this.notify();
    }
  }

  copy(): number {
    if (this.selection.length === 0) {
      return 0;
    }
    clipboard = copyGems(this.document, this.selection);
    return clipboard.gems.length;
  }

  paste(): void {
    if (!clipboard || clipboard.gems.length === 0) {
      return;
    }
    const before = new Set(this.document.gems.map(gem => gem.id));
    if (this.dispatch({ type: 'paste', clipboard, offset: { x: 40, y: 40 } })) {
      this.select(
        this.document.gems.map(gem => gem.id).filter(id => !before.has(id))
      );
    }
  }

  deleteSelection(): void {
    if (this.selection.length > 0) {
      this.dispatch({ type: 'removeGems', ids: this.selection });
      this.select([]);
    }
  }

  issuesOf(gemId: string): IIssue[] {
    return this.issues.filter(issue => issue.gem_id === gemId);
  }

  /** Columns feeding `gemId`, per input gem, for completing expressions. */
  inputColumns(gemId: string): { input: string; columns: IColumn[] }[] {
    return this.document.connections
      .filter(c => c.to === gemId)
      .sort((a, b) => a.port.localeCompare(b.port, 'en', { numeric: true }))
      .map(c => ({ input: c.from, columns: this.columns[c.from] ?? [] }));
  }

  /** Validate the draft soon; a newer edit supersedes a pending or running validation. */
  scheduleValidation(delay = 300): void {
    window.clearTimeout(this._validateTimer);
    if (!this.location) {
      return;
    }
    this.pending = true;
    this._validateTimer = window.setTimeout(() => void this.validate(), delay);
  }

  async validate(): Promise<void> {
    if (!this.location) {
      return;
    }
    const request = ++this._validation;
    try {
      const result = await api.validate({
        ...this.location,
        pipeline: this.document
      });
      if (request === this._validation && !this._disposed) {
        this.checked = true;
        this.pending = false;
        this.issues = result.issues;
        this.columns = result.columns ?? {};
        this.notify();
      }
    } catch (error) {
      if (request === this._validation && !this._disposed) {
        this.checked = true;
        this.pending = false;
        this.issues = issuesOf(error);
        this.notify();
      }
    }
  }

  /** Load the first rows of `gemId`; a newer preview cancels this one on the server. */
  async loadPreview(
    gemId: string,
    limit: number,
    fabric?: string
  ): Promise<void> {
    if (!this.location) {
      return;
    }
    const request = ++this._previewRequest;
    this.preview = { gemId, loading: true };
    this.notify();
    try {
      const result = await api.preview(
        { ...this.location, pipeline: this.document },
        gemId,
        limit,
        fabric
      );
      if (request === this._previewRequest) {
        this.preview = { gemId, loading: false, result };
      }
    } catch (error) {
      if (request === this._previewRequest) {
        const cancelled = error instanceof api.ApiError && error.cancelled;
        this.preview = {
          gemId,
          loading: false,
          error: cancelled ? 'Preview cancelled.' : messageOf(error)
        };
      }
    }
    if (!this._disposed) {
      this.notify();
    }
  }

  async cancelPreview(): Promise<void> {
    if (this.location && this.preview?.loading) {
      await api.cancelPreview(this.location.project, this.location.name);
    }
  }

  /** Run the saved pipeline and follow its progress until it ends. */
  async startRun(fabric?: string): Promise<IRun | null> {
    if (!this.location) {
      return null;
    }
    window.clearTimeout(this._runPoll);
    try {
      this.setRun(
        await api.startRun(this.location.project, this.location.name, {
          fabric
        })
      );
    } catch (error) {
      this.run = null;
      const issues = issuesOf(error);
      this.issues = issues;
      this.notice = `Run refused: ${messageOf(error)}`;
      this.notify();
      return null;
    }
    return this.run;
  }

  async cancelRun(): Promise<void> {
    if (this.run && !TERMINAL_RUN_STATUSES.has(this.run.status)) {
      this.setRun(await api.cancelRun(this.run.id));
    }
  }

  get running(): boolean {
    return !!this.run && !TERMINAL_RUN_STATUSES.has(this.run.status);
  }

  dispose(): void {
    this._disposed = true;
    window.clearTimeout(this._validateTimer);
    window.clearTimeout(this._runPoll);
    Signal.clearData(this);
  }

  private setRun(run: IRun): void {
    this.run = run;
    this.notify();
    if (!TERMINAL_RUN_STATUSES.has(run.status) && !this._disposed) {
      this._runPoll = window.setTimeout(async () => {
        try {
          this.setRun(await api.getRun(run.id));
        } catch (error) {
          this.notice = `Lost track of run ${run.id}: ${messageOf(error)}`;
          this.notify();
        }
      }, 250);
    }
  }

  private afterEdit(): void {
    this.notify();
    this._edited.emit(this.document);
    this.scheduleValidation();
  }

  private notify(): void {
    this._version++;
    this._changed.emit();
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function issuesOf(error: unknown): IIssue[] {
  if (error instanceof api.ApiError && error.issues.length > 0) {
    return error.issues;
  }
  return [
    {
      code: error instanceof api.ApiError ? error.code : 'error',
      message: messageOf(error),
      gem_id: error instanceof api.ApiError ? error.gemId : undefined,
      severity: 'error'
    }
  ];
}
