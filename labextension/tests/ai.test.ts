import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  addText,
  answered,
  ask,
  decide,
  EMPTY_CONVERSATION,
  failed,
  historyOf,
  proposed,
  proposedDocs,
  stopped
} from '../src/ai/conversation';
import { readSse, SseParser } from '../src/ai/sse';
import { IAIProposal } from '../src/types';
import { pipeline, gem } from './helpers';

describe('SseParser', () => {
  it('reads named events with JSON data', () => {
    const parser = new SseParser();
    const events = parser.push(
      'event: text\ndata: {"text": "Hel"}\n\nevent: text\ndata: {"text": "lo"}\n\n'
    );
    assert.deepEqual(events, [
      { event: 'text', data: '{"text": "Hel"}' },
      { event: 'text', data: '{"text": "lo"}' }
    ]);
  });

  it('joins chunks cut anywhere, even inside a line ending', () => {
    const stream = 'event: answer\r\ndata: {"text": "ok"}\r\n\r\n';
    for (let cut = 1; cut < stream.length; cut++) {
      const parser = new SseParser();
      const events = [
        ...parser.push(stream.slice(0, cut)),
        ...parser.push(stream.slice(cut))
      ];
      assert.deepEqual(
        events,
        [{ event: 'answer', data: '{"text": "ok"}' }],
        `cut at ${cut}`
      );
    }
  });

  it('skips comments, joins data lines and names unnamed events message', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push(': keep-alive\n\ndata: a\ndata: b\n\n'), [
      { event: 'message', data: 'a\nb' }
    ]);
  });

  it('waits for the blank line before giving an event', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push('event: text\ndata: {}\n'), []);
    assert.deepEqual(parser.push('\n'), [{ event: 'text', data: '{}' }]);
  });

  it('reads a byte stream to its end', async () => {
    const bytes = new TextEncoder().encode(
      'event: text\ndata: {"text": "é"}\n\nevent: answer\ndata: {}\n\n'
    );
    // Split inside the two bytes of "é".
    const at = bytes.indexOf(0xc3) + 1;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, at));
        controller.enqueue(bytes.slice(at));
        controller.close();
      }
    });
    const seen: string[] = [];
    await readSse(body, event => seen.push(`${event.event} ${event.data}`));
    assert.deepEqual(seen, ['text {"text": "é"}', 'answer {}']);
  });
});

const PROPOSAL: IAIProposal = {
  summary: 'Add a filter.',
  document: pipeline([gem('a'), gem('b')]),
  diff: { name: 'test', fields: [], gems: [], connections: [] },
  issues: [],
  repaired: false
};

describe('conversation', () => {
  it('streams text, then keeps a proposal until it is decided', () => {
    let state = ask(EMPTY_CONVERSATION, 'build', 'Add a filter');
    assert.equal(state.streaming, true);
    state = addText(addText(state, 'Add'), 'ing');
    assert.equal(state.partial, 'Adding');
    state = proposed(state, PROPOSAL);
    assert.equal(state.streaming, false);
    assert.equal(state.partial, '');
    assert.equal(state.proposal, PROPOSAL);
    assert.deepEqual(
      state.turns.map(t => [t.role, t.text, t.outcome]),
      [
        ['user', 'Add a filter', undefined],
        ['assistant', 'Adding', 'proposal']
      ]
    );
    assert.equal(state.turns[1].summary, 'Add a filter.');
    state = decide(state, true);
    assert.equal(state.proposal, null);
    assert.equal(state.turns[1].outcome, 'accepted');
  });

  it('shows the model\'s words as the answer, the summary in the history too', () => {
    let state = ask(EMPTY_CONVERSATION, 'build', 'Add a filter');
    state = proposed(addText(state, 'Sure.'), { ...PROPOSAL, text: 'Sure.' });
    assert.equal(state.turns[1].text, 'Sure.');
    assert.deepEqual(historyOf(state)[1], {
      role: 'assistant',
      content: 'Sure.\n\nProposed change: Add a filter.'
    });
  });

  it('marks a question sent with sample rows, and only that one', () => {
    let state = ask(EMPTY_CONVERSATION, 'describe', 'Describe the pipeline', true);
    assert.equal(state.turns[0].sampleRows, true);
    state = proposed(state, PROPOSAL);
    state = ask(state, 'explain', 'Explain the pipeline');
    assert.ok(!('sampleRows' in state.turns[2]));
    assert.equal(state.turns[1].outcome, 'rejected');
  });

  it('sends the conversation so far as alternating history', () => {
    let state = ask(EMPTY_CONVERSATION, 'explain', 'Explain the pipeline');
    state = answered(addText(state, 'It sums.'), 'It sums.');
    state = proposed(ask(state, 'build', 'Add a filter'), PROPOSAL);
    state = decide(state, false);
    state = failed(ask(state, 'build', 'Again'), 'rate limited');
    assert.equal(state.error, 'rate limited');
    assert.deepEqual(historyOf(state), [
      { role: 'user', content: 'Explain the pipeline' },
      { role: 'assistant', content: 'It sums.' },
      { role: 'user', content: 'Add a filter' },
      {
        role: 'assistant',
        content: 'Add a filter.\n\n(The user rejected this change; it was not applied.)'
      }
    ]);
  });

  it('keeps what came before Stop, and a new question drops a waiting proposal', () => {
    let state = addText(ask(EMPTY_CONVERSATION, 'build', 'Go'), 'Half an');
    state = stopped(state);
    assert.equal(state.streaming, false);
    assert.equal(state.turns[1].outcome, 'stopped');
    assert.equal(historyOf(state)[1].content.startsWith('Half an'), true);
    // An answer arriving after Stop changes nothing.
    assert.equal(proposed(state, PROPOSAL), state);
    state = proposed(ask(state, 'build', 'Go on'), PROPOSAL);
    state = ask(state, 'build', 'Something else');
    assert.equal(state.proposal, null);
    assert.equal(state.turns[3].outcome, 'rejected');
  });

  it('leaves out a question whose answer failed or had no words', () => {
    let state = failed(ask(EMPTY_CONVERSATION, 'build', 'A'), 'boom');
    state = stopped(ask(state, 'build', 'B'));
    assert.deepEqual(historyOf(state), []);
  });
});

describe('proposedDocs', () => {
  it('lists the descriptions a proposal writes or changes, and only those', () => {
    const before = pipeline([
      { ...gem('agg', 'Aggregate'), columns: { total: { description: 'Sum' } } },
      { ...gem('f'), description: 'Keeps big orders' }
    ]);
    const after = {
      ...pipeline([
        {
          ...gem('agg', 'Aggregate'),
          description: 'Totals per customer',
          columns: {
            total: { description: 'Sum' },
            orders: { description: 'Distinct orders' }
          }
        },
        { ...gem('f'), description: 'Keeps big orders' }
      ]),
      description: 'Customer totals'
    };
    assert.deepEqual(proposedDocs(before, after), [
      { where: 'Pipeline', text: 'Customer totals' },
      { where: 'agg', text: 'Totals per customer' },
      { where: 'agg.orders', text: 'Distinct orders' }
    ]);
    assert.deepEqual(proposedDocs(before, before), []);
  });
});
