/**
 * The executed notebooks of Automate's runs as a read-only JupyterLab drive, so that
 * Observe opens one in JupyterLab's own notebook viewer, outputs and all.
 *
 * A run's notebook is kept in the project's hidden `.prophecy/runs/` folder, which
 * Jupyter's contents API does not serve by default; the drive reads it through the
 * orchestration API instead. Its paths are `prophecy-runs:<run id>/<file name>`. Nothing
 * can be written back: "Save As…" to a path of the default drive keeps a copy.
 */
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from '../api';

export const RUNS_DRIVE = 'prophecy-runs';

/** The drive path of a run's executed notebook. */
export function runNotebookPath(runId: string, fileName: string): string {
  return `${RUNS_DRIVE}:${encodeURIComponent(runId)}/${fileName}`;
}

/** The run id of a path within the drive (`<run id>/<file name>`). */
export function runIdOf(localPath: string): string {
  const [id, ...rest] = localPath.split('/');
  if (!id || rest.length !== 1 || !rest[0]) {
    throw new Error(`not a run's notebook: ${localPath}`);
  }
  return decodeURIComponent(id);
}

function readOnly(): Promise<never> {
  return Promise.reject(
    new Error(
      "A run's executed notebook cannot be changed: use File › Save Notebook As… to keep a copy."
    )
  );
}

export class RunNotebooksDrive implements Contents.IDrive {
  readonly name = RUNS_DRIVE;
  readonly serverSettings = ServerConnection.makeSettings();
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
  private _disposed = false;

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (!this._disposed) {
      this._disposed = true;
      Signal.clearData(this);
    }
  }

  async get(
    localPath: string,
    options?: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    const id = runIdOf(localPath);
    const [run, notebook] = await Promise.all([
      api.automateRunDetail(id),
      options?.content === false ? null : api.automateRunNotebook(id)
    ]);
    const when = run.finished ?? run.started ?? run.created;
    return {
      name: localPath.split('/')[1],
      path: localPath,
      type: 'notebook',
      format: notebook === null ? null : 'json',
      content: notebook,
      writable: false,
      created: when,
      last_modified: when,
      mimetype: 'application/x-ipynb+json'
    };
  }

  async getDownloadUrl(): Promise<string> {
    return readOnly();
  }

  newUntitled(): Promise<Contents.IModel> {
    return readOnly();
  }

  delete(): Promise<void> {
    return readOnly();
  }

  rename(): Promise<Contents.IModel> {
    return readOnly();
  }

  save(): Promise<Contents.IModel> {
    return readOnly();
  }

  copy(): Promise<Contents.IModel> {
    return readOnly();
  }

  createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return readOnly();
  }

  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return [];
  }

  restoreCheckpoint(): Promise<void> {
    return readOnly();
  }

  deleteCheckpoint(): Promise<void> {
    return readOnly();
  }
}
