/** React glue for the editor model. */
import * as React from 'react';

import { EditorModel } from './model';

/** Re-render whenever the model changes; returns its version. */
export function useModel(model: EditorModel): number {
  const [, setVersion] = React.useState(model.version);
  React.useEffect(() => {
    const update = (): void => setVersion(model.version);
    model.changed.connect(update);
    return () => {
      model.changed.disconnect(update);
    };
  }, [model]);
  return model.version;
}
