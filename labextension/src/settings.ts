/**
 * The Studio's user settings, read from JupyterLab's settings registry
 * (`labextension/schema/plugin.json`) and kept current when the user edits them.
 */
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ISignal, Signal } from '@lumino/signaling';

export const PLUGIN_ID = 'prophecy-jupyter:plugin';

export interface IStudioSettings {
  /** Fabric for previews and runs; empty for the project's default. */
  defaultFabric: string;
  previewRows: number;
  autoPreview: boolean;
}

export const DEFAULT_SETTINGS: IStudioSettings = {
  defaultFabric: '',
  previewRows: 100,
  autoPreview: true
};

/** The current settings, and a signal when they change. */
export class StudioSettings {
  private _values: IStudioSettings = { ...DEFAULT_SETTINGS };
  private readonly _changed = new Signal<this, IStudioSettings>(this);

  get values(): IStudioSettings {
    return this._values;
  }

  get changed(): ISignal<this, IStudioSettings> {
    return this._changed;
  }

  /** Follow `settings` from now on. */
  connect(settings: ISettingRegistry.ISettings): void {
    const read = (): void => {
      const composite = settings.composite as Partial<IStudioSettings>;
      this._values = { ...DEFAULT_SETTINGS, ...composite };
      this._changed.emit(this._values);
    };
    read();
    settings.changed.connect(read);
  }
}
