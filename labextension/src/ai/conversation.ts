/**
 * The AI panel's conversation as plain data: what the user asked, what the copilot answered
 * (its streamed words, an explanation, or a proposal and what became of it). Every function
 * returns a new state; `historyOf` is what the next request sends as the conversation so far.
 */
import { describedColumn } from '../graph/state';
import { IAIMessage, IAIProposal, IPipelineDocument } from '../types';

export type AIAsk = 'build' | 'explain' | 'describe' | 'fix';

export type TurnOutcome =
  'answer' | 'proposal' | 'accepted' | 'rejected' | 'stopped' | 'failed';

export interface ITurn {
  role: 'user' | 'assistant';
  kind: AIAsk;
  text: string;
  /** How an answer ended. */
  outcome?: TurnOutcome;
  /** A proposal's summary, when the answer was one. */
  summary?: string;
  /** The question was sent with sample rows of the data (the user opted in for it). */
  sampleRows?: boolean;
}

export interface IConversation {
  turns: ITurn[];
  /** A request is under way. */
  streaming: boolean;
  /** The words of the answer under way, as they came. */
  partial: string;
  /** The proposal waiting for Accept or Reject. */
  proposal: IAIProposal | null;
  /** Why the last request failed. */
  error: string | null;
}

export const EMPTY_CONVERSATION: IConversation = {
  turns: [],
  streaming: false,
  partial: '',
  proposal: null,
  error: null
};

/** The user asks: a new turn, streaming. A proposal still waiting is dropped. */
export function ask(
  state: IConversation,
  kind: AIAsk,
  text: string,
  sampleRows = false
): IConversation {
  const turns = state.proposal
    ? decideTurns(state.turns, 'rejected')
    : state.turns;
  const turn: ITurn = { role: 'user', kind, text };
  return {
    turns: [...turns, sampleRows ? { ...turn, sampleRows } : turn],
    streaming: true,
    partial: '',
    proposal: null,
    error: null
  };
}

export function addText(state: IConversation, text: string): IConversation {
  return state.streaming ? { ...state, partial: state.partial + text } : state;
}

function lastKind(state: IConversation): AIAsk {
  return state.turns[state.turns.length - 1]?.kind ?? 'build';
}

function reply(
  state: IConversation,
  text: string,
  outcome: TurnOutcome,
  summary?: string
): ITurn[] {
  const turn: ITurn = {
    role: 'assistant',
    kind: lastKind(state),
    text,
    outcome
  };
  return [...state.turns, summary === undefined ? turn : { ...turn, summary }];
}

/** An explanation (or any text answer) arrived whole. */
export function answered(state: IConversation, text: string): IConversation {
  if (!state.streaming) {
    return state;
  }
  return {
    ...state,
    turns: reply(state, text, 'answer'),
    streaming: false,
    partial: ''
  };
}

/** A proposal arrived: the model's words (else its summary) are the answer, and the
 * proposal waits for a decision. */
export function proposed(
  state: IConversation,
  proposal: IAIProposal
): IConversation {
  if (!state.streaming) {
    return state;
  }
  return {
    ...state,
    turns: reply(
      state,
      (proposal.text ?? '').trim() || state.partial.trim() || proposal.summary,
      'proposal',
      proposal.summary
    ),
    streaming: false,
    partial: '',
    proposal
  };
}

export function failed(state: IConversation, message: string): IConversation {
  if (!state.streaming) {
    return state;
  }
  return {
    ...state,
    turns: reply(state, state.partial, 'failed'),
    streaming: false,
    partial: '',
    error: message
  };
}

/** The user pressed Stop: what came so far is kept as a stopped answer. */
export function stopped(state: IConversation): IConversation {
  if (!state.streaming) {
    return state;
  }
  return {
    ...state,
    turns: reply(state, state.partial, 'stopped'),
    streaming: false,
    partial: ''
  };
}

function decideTurns(turns: ITurn[], outcome: TurnOutcome): ITurn[] {
  const at = turns.map(t => t.outcome).lastIndexOf('proposal');
  return at === -1
    ? turns
    : turns.map((turn, i) => (i === at ? { ...turn, outcome } : turn));
}

/** The user accepted or rejected the waiting proposal. */
export function decide(state: IConversation, accepted: boolean): IConversation {
  if (!state.proposal) {
    return state;
  }
  return {
    ...state,
    turns: decideTurns(state.turns, accepted ? 'accepted' : 'rejected'),
    proposal: null
  };
}

function assistantText(turn: ITurn): string {
  const text =
    turn.summary && turn.summary !== turn.text
      ? `${turn.text}\n\nProposed change: ${turn.summary}`
      : turn.text;
  switch (turn.outcome) {
    case 'accepted':
      return `${text}\n\n(The user accepted this change.)`;
    case 'rejected':
      return `${text}\n\n(The user rejected this change; it was not applied.)`;
    case 'stopped':
      return `${text}\n\n(The user stopped this answer.)`;
    default:
      return text;
  }
}

/**
 * The conversation so far as the model reads it: each question with its answer, oldest
 * first. A question without an answer (failed, or without words before Stop) is left out,
 * so that the roles alternate.
 */
export function historyOf(state: IConversation): IAIMessage[] {
  const messages: IAIMessage[] = [];
  for (let i = 0; i + 1 < state.turns.length; i++) {
    const question = state.turns[i];
    const answer = state.turns[i + 1];
    if (
      question.role === 'user' &&
      answer.role === 'assistant' &&
      answer.outcome !== 'failed' &&
      answer.text.trim()
    ) {
      messages.push({ role: 'user', content: question.text });
      messages.push({ role: 'assistant', content: assistantText(answer) });
      i++;
    }
  }
  return messages;
}

export interface IProposedDoc {
  where: string;
  text: string;
}

/** The descriptions a proposal writes or changes, so that they are read before Accept. */
export function proposedDocs(
  before: IPipelineDocument,
  after: IPipelineDocument
): IProposedDoc[] {
  const docs: IProposedDoc[] = [];
  if (after.description && after.description !== (before.description ?? '')) {
    docs.push({ where: 'Pipeline', text: after.description });
  }
  for (const gem of after.gems) {
    const old = before.gems.find(g => g.id === gem.id);
    if (gem.description && gem.description !== (old?.description ?? '')) {
      docs.push({ where: gem.id, text: gem.description });
    }
    for (const [column, doc] of Object.entries(gem.columns ?? {})) {
      if (doc.description !== describedColumn(old, column)) {
        docs.push({ where: `${gem.id}.${column}`, text: doc.description });
      }
    }
  }
  return docs;
}
