/**
 * Whether the copilot can be used for a project, as a React hook for the AI panel and the
 * properties panel's expression suggestions. It is asked each time a panel opens, not
 * remembered: a key stored in the secret store turns AI on without a restart.
 */
import * as React from 'react';

import * as api from '../api';
import { messageOf } from '../editor/model';
import { IAIStatus } from '../types';

export interface IAIStatusState {
  status: IAIStatus | null;
  error: string | null;
}

export function useAIStatus(project: string | undefined): IAIStatusState {
  const [state, setState] = React.useState<IAIStatusState>({
    status: null,
    error: null
  });
  React.useEffect(() => {
    if (!project) {
      return;
    }
    let live = true;
    api.aiStatus(project).then(
      status => live && setState({ status, error: null }),
      error => live && setState({ status: null, error: messageOf(error) })
    );
    return () => {
      live = false;
    };
  }, [project]);
  return state;
}
