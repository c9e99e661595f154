/**
 * The editor's AI panel: a conversation with the copilot about the open pipeline. Asking
 * for a change streams the model's words, then shows its proposal (summary, problems and a
 * canvas with the proposed gems marked); Accept applies it as one undoable edit of the
 * editor (saved only when the user saves), Reject drops it. Explain and Describe cover the
 * selected gem or the whole pipeline (Describe proposes gem and column descriptions); a
 * selected gem with problems can be fixed. Only names, types and the graph are sent, unless
 * the user ticks "Sample rows" for one request.
 */
import * as React from 'react';
import { ReactFlowProvider } from '@xyflow/react';

import * as api from '../api';
import { shownDiffs } from '../git/diffs';
import { IPipelineLocation } from '../graph/location';
import { Canvas, ICanvasControls } from '../editor/canvas';
import { useModel } from '../editor/hooks';
import { EditorModel, messageOf } from '../editor/model';
import { IAIProposal, IAIStatus } from '../types';
import {
  addText,
  AIAsk,
  answered,
  ask,
  decide,
  EMPTY_CONVERSATION,
  failed,
  historyOf,
  IConversation,
  ITurn,
  proposed,
  proposedDocs,
  stopped
} from './conversation';
import { useAIStatus } from './status';

/** Where the proposal's canvas keeps its marks: apart from the pipeline's own. */
export function proposalLocation(at: IPipelineLocation): IPipelineLocation {
  return { project: `${at.project}\u0000ai-proposal`, name: at.name };
}

/** A read-only model of the proposed document: it is never validated or saved. */
class ProposalModel extends EditorModel {
  scheduleValidation(): void {
    // The server checked the proposal already; its problems come with it.
  }
}

function ProposalCanvas(props: {
  model: EditorModel;
  proposal: IAIProposal;
}): JSX.Element {
  const { model, proposal } = props;
  const at = model.location;
  const preview = React.useMemo(() => {
    const shown = new ProposalModel(
      at ? proposalLocation(at) : null,
      proposal.document
    );
    shown.setCatalog([...model.catalog.values()]);
    return shown;
  }, [proposal, model, at]);
  const controls = React.useMemo<ICanvasControls>(() => ({}), [preview]);
  React.useEffect(() => {
    const where = preview.location;
    if (!where) {
      return;
    }
    shownDiffs.show({
      ...where,
      diff: proposal.diff,
      against: 'the open pipeline'
    });
    return () => {
      shownDiffs.hide(where.project, where.name);
      preview.dispose();
    };
  }, [preview, proposal]);
  return (
    <div className="jp-Prophecy-ai-canvas" data-testid="prophecy-ai-canvas">
      <ReactFlowProvider>
        <Canvas model={preview} controls={controls} />
      </ReactFlowProvider>
    </div>
  );
}

function Proposal(props: {
  model: EditorModel;
  proposal: IAIProposal;
  onDecide: (accept: boolean) => void;
}): JSX.Element {
  const { model, proposal, onDecide } = props;
  const errors = proposal.issues.filter(i => i.severity !== 'warning');
  const docs = React.useMemo(
    () => proposedDocs(model.document, proposal.document),
    [proposal]
  );
  return (
    <div className="jp-Prophecy-ai-proposal" data-testid="prophecy-ai-proposal">
      <div className="jp-Prophecy-ai-summary" data-testid="prophecy-ai-summary">
        {proposal.summary}
      </div>
      {proposal.issues.length > 0 && (
        <ul
          className="jp-Prophecy-ai-issues"
          data-testid="prophecy-ai-proposal-issues"
        >
          {proposal.issues.map((issue, i) => (
            <li key={i}>
              {issue.gem_id ? `${issue.gem_id}: ` : ''}
              {issue.message}
            </li>
          ))}
        </ul>
      )}
      {docs.length > 0 && (
        <dl
          className="jp-Prophecy-ai-docs"
          data-testid="prophecy-ai-proposed-docs"
        >
          {docs.map(doc => (
            <React.Fragment key={doc.where}>
              <dt className="jp-Prophecy-field">{doc.where}</dt>
              <dd>{doc.text}</dd>
            </React.Fragment>
          ))}
        </dl>
      )}
      <ProposalCanvas model={model} proposal={proposal} />
      <div className="jp-Prophecy-ai-actions">
        <button
          className="jp-Prophecy-toolbar-button jp-mod-accept"
          data-testid="prophecy-ai-accept"
          title={
            errors.length
              ? 'Apply the change (it has problems to fix)'
              : 'Apply the change to the editor (undo with Ctrl+Z)'
          }
          onClick={() => onDecide(true)}
        >
          Accept
        </button>
        <button
          className="jp-Prophecy-toolbar-button"
          data-testid="prophecy-ai-reject"
          onClick={() => onDecide(false)}
        >
          Reject
        </button>
      </div>
    </div>
  );
}

const OUTCOME: Record<string, string> = {
  accepted: 'Accepted',
  rejected: 'Rejected',
  stopped: 'Stopped',
  failed: 'Failed'
};

function Turn(props: { turn: ITurn }): JSX.Element {
  const { turn } = props;
  return (
    <div
      className={`jp-Prophecy-ai-turn jp-mod-${turn.role}`}
      data-testid={`prophecy-ai-${turn.role}`}
      data-outcome={turn.outcome ?? ''}
    >
      <div className="jp-Prophecy-ai-text">{turn.text}</div>
      {turn.sampleRows && (
        <div
          className="jp-Prophecy-ai-rows-sent"
          data-testid="prophecy-ai-rows-sent"
        >
          Sent with sample rows
        </div>
      )}
      {turn.outcome && OUTCOME[turn.outcome] && (
        <div className="jp-Prophecy-ai-outcome">{OUTCOME[turn.outcome]}</div>
      )}
    </div>
  );
}

function Disabled(props: { status: IAIStatus }): JSX.Element {
  const { status } = props;
  return (
    <div className="jp-Prophecy-ai-off" data-testid="prophecy-ai-off">
      <p>
        <strong>AI is off</strong>
        {status.reason ? `: ${status.reason}.` : '.'}
      </p>
      {status.configured ? (
        <p>
          The administrator switched it off for this server (
          <code>PROPHECY_AI_DISABLED</code>).
        </p>
      ) : (
        <p>
          To turn it on, set <code>ANTHROPIC_API_KEY</code> (and{' '}
          <code>ANTHROPIC_BASE_URL</code> for another endpoint,{' '}
          <code>PROPHECY_AI_MODEL</code> for another model) in the environment
          of the Jupyter server and restart it, or store the key in the secret
          store's <code>ai:</code> entry.
        </p>
      )}
    </div>
  );
}

export function AIPanel(props: {
  model: EditorModel;
  hidden: boolean;
  onClose: () => void;
  /** The editor's canvas, fitted to show an accepted change whole. */
  controls?: ICanvasControls;
  /** The panel's width in pixels, as the user set it. */
  width?: number;
}): JSX.Element {
  const { model, hidden, onClose, controls: canvas } = props;
  useModel(model);
  const [conversation, setConversation] =
    React.useState<IConversation>(EMPTY_CONVERSATION);
  const [prompt, setPrompt] = React.useState('');
  const [sampleRows, setSampleRows] = React.useState(false);
  const request = React.useRef<AbortController | null>(null);
  const at = model.location;

  const { status, error: statusError } = useAIStatus(at?.project);

  React.useEffect(() => () => request.current?.abort(), []);

  const send = async (
    kind: AIAsk,
    shown: string,
    extra: { prompt?: string; gem?: string; error?: string }
  ): Promise<void> => {
    if (!at || request.current) {
      return;
    }
    const history = historyOf(conversation);
    // Sample rows are opted into for one request: the box clears once it is sent.
    const withRows = sampleRows && kind !== 'fix';
    setSampleRows(false);
    setConversation(c => ask(c, kind, shown, withRows));
    const controller = new AbortController();
    request.current = controller;
    try {
      const result = await api.aiAsk(
        kind,
        {
          ...at,
          pipeline: model.document,
          history,
          sampleRows: withRows,
          ...extra
        },
        text => setConversation(c => addText(c, text)),
        controller.signal
      );
      setConversation(c =>
        result.event === 'proposal'
          ? proposed(c, result.proposal)
          : answered(c, result.text)
      );
    } catch (error) {
      setConversation(c =>
        controller.signal.aborted ? stopped(c) : failed(c, messageOf(error))
      );
    } finally {
      request.current = null;
    }
  };

  const submit = (): void => {
    const text = prompt.trim();
    if (text) {
      setPrompt('');
      void send('build', text, { prompt: text });
    }
  };

  const selected = model.selection.length === 1 ? model.selection[0] : null;
  const problems = selected
    ? model.issuesOf(selected).filter(i => i.severity !== 'warning')
    : [];
  const on = !!status?.enabled;
  const busy = conversation.streaming;

  return (
    <div
      className="jp-Prophecy-ai"
      data-testid="prophecy-ai-panel"
      style={hidden ? { display: 'none' } : { width: props.width }}
    >
      <div className="jp-Prophecy-ai-header">
        <strong>AI</strong>
        {status?.enabled && (
          <span className="jp-Prophecy-ai-model" title={status.base_url}>
            {status.model}
          </span>
        )}
        <span className="jp-Prophecy-toolbar-spacer" />
        <button
          className="jp-Prophecy-ai-close"
          data-testid="prophecy-ai-close"
          title="Close the AI panel"
          onClick={onClose}
        >
          ×
        </button>
      </div>
      {!at && (
        <div className="jp-Prophecy-ai-off">
          AI needs the pipeline to be in a project's <code>pipelines/</code>{' '}
          folder.
        </div>
      )}
      {statusError && <div className="jp-Prophecy-ai-error">{statusError}</div>}
      {status && !status.enabled && <Disabled status={status} />}
      {on && (
        <>
          <div
            className="jp-Prophecy-ai-conversation"
            data-testid="prophecy-ai-conversation"
          >
            {conversation.turns.map((turn, i) => (
              <Turn key={i} turn={turn} />
            ))}
            {busy && (
              <div
                className="jp-Prophecy-ai-turn jp-mod-assistant jp-mod-streaming"
                data-testid="prophecy-ai-streaming"
              >
                <div className="jp-Prophecy-ai-text">
                  {conversation.partial || 'Thinking…'}
                </div>
              </div>
            )}
            {conversation.error && (
              <div
                className="jp-Prophecy-ai-error"
                data-testid="prophecy-ai-error"
              >
                {conversation.error}
              </div>
            )}
            {conversation.proposal && (
              <Proposal
                model={model}
                proposal={conversation.proposal}
                onDecide={accept => {
                  const proposal = conversation.proposal;
                  if (accept && proposal) {
                    model.dispatch({
                      type: 'replace',
                      document: proposal.document
                    });
                    window.setTimeout(() => canvas?.fitView?.(), 50);
                  }
                  setConversation(c => decide(c, accept));
                }}
              />
            )}
          </div>
          <div className="jp-Prophecy-ai-asks">
            <button
              className="jp-Prophecy-toolbar-button"
              data-testid="prophecy-ai-explain"
              disabled={busy}
              title={
                selected
                  ? `Explain what gem ${selected} does`
                  : 'Explain what the pipeline does'
              }
              onClick={() =>
                void send(
                  'explain',
                  selected ? `Explain gem ${selected}` : 'Explain the pipeline',
                  { gem: selected ?? undefined }
                )
              }
            >
              {selected ? `Explain ${selected}` : 'Explain pipeline'}
            </button>
            <button
              className="jp-Prophecy-toolbar-button"
              data-testid="prophecy-ai-describe"
              disabled={busy}
              title={
                selected
                  ? `Propose a description of gem ${selected} and of its columns`
                  : 'Propose descriptions of every gem and of their columns'
              }
              onClick={() =>
                void send(
                  'describe',
                  selected
                    ? `Describe gem ${selected}`
                    : 'Describe the pipeline',
                  { gem: selected ?? undefined }
                )
              }
            >
              {selected ? `Describe ${selected}` : 'Describe pipeline'}
            </button>
            {selected && problems.length > 0 && (
              <button
                className="jp-Prophecy-toolbar-button"
                data-testid="prophecy-ai-fix"
                disabled={busy}
                title={problems.map(p => p.message).join('\n')}
                onClick={() =>
                  void send('fix', `Fix gem ${selected}`, {
                    gem: selected,
                    error: problems.map(p => p.message).join('\n')
                  })
                }
              >
                Fix with AI
              </button>
            )}
            <span className="jp-Prophecy-toolbar-spacer" />
            <label
              className="jp-Prophecy-ai-rows"
              title={
                'Send the first rows of each gem with the next request. Otherwise ' +
                'only names, types and the graph are sent.'
              }
            >
              <input
                type="checkbox"
                data-testid="prophecy-ai-sample-rows"
                checked={sampleRows}
                disabled={busy}
                onChange={event => setSampleRows(event.target.checked)}
              />
              Sample rows
            </label>
          </div>
          <div className="jp-Prophecy-ai-prompt">
            <textarea
              data-testid="prophecy-ai-input"
              placeholder="Ask for a change, e.g. “keep only shipped orders” (Ctrl+Enter sends)"
              value={prompt}
              rows={3}
              onChange={event => setPrompt(event.target.value)}
              onKeyDown={event => {
                event.stopPropagation(); // the editor's shortcuts (Delete, Ctrl+Z) stay out
                if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
                  event.preventDefault();
                  submit();
                }
              }}
            />
            {busy ? (
              <button
                className="jp-Prophecy-toolbar-button"
                data-testid="prophecy-ai-stop"
                onClick={() => request.current?.abort()}
              >
                ■ Stop
              </button>
            ) : (
              <button
                className="jp-Prophecy-toolbar-button jp-mod-accept"
                data-testid="prophecy-ai-send"
                disabled={!prompt.trim()}
                onClick={submit}
              >
                Send
              </button>
            )}
          </div>
        </>
      )}
    </div>
  );
}
