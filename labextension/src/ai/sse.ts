/**
 * Server-Sent Events read from a byte stream: `SseParser` takes text as it arrives, in
 * chunks cut anywhere, and gives back each complete event.
 */

export interface ISseEvent {
  /** The event's name (`message` when the stream did not name it). */
  event: string;
  /** Its `data:` lines, joined by newlines. */
  data: string;
}

export class SseParser {
  private _buffer = '';
  private _event = '';
  private _data: string[] = [];

  /** Feed a chunk of the stream; returns the events it completed. */
  push(chunk: string): ISseEvent[] {
    this._buffer += chunk;
    const events: ISseEvent[] = [];
    for (;;) {
      const end = this._lineEnd();
      if (end === null) {
        break;
      }
      const line = this._buffer.slice(0, end.at);
      this._buffer = this._buffer.slice(end.at + end.length);
      const event = this._line(line);
      if (event) {
        events.push(event);
      }
    }
    return events;
  }

  /** The end of the stream: an event without its blank line is dropped, as the spec says. */
  end(): ISseEvent[] {
    this._buffer = '';
    this._event = '';
    this._data = [];
    return [];
  }

  private _lineEnd(): { at: number; length: number } | null {
    const cr = this._buffer.indexOf('\r');
    const lf = this._buffer.indexOf('\n');
    if (cr === -1 && lf === -1) {
      return null;
    }
    if (cr !== -1 && (lf === -1 || cr < lf)) {
      // A lone \r at the end of a chunk may be the first half of \r\n.
      if (cr === this._buffer.length - 1) {
        return null;
      }
      return { at: cr, length: lf === cr + 1 ? 2 : 1 };
    }
    return { at: lf, length: 1 };
  }

  private _line(line: string): ISseEvent | null {
    if (line === '') {
      if (this._data.length === 0) {
        this._event = '';
        return null;
      }
      const event = {
        event: this._event || 'message',
        data: this._data.join('\n')
      };
      this._event = '';
      this._data = [];
      return event;
    }
    if (line.startsWith(':')) {
      return null; // a comment, as servers send to keep a connection open
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      this._event = value;
    } else if (field === 'data') {
      this._data.push(value);
    }
    return null;
  }
}

/** Read a byte stream of events to its end, calling `onEvent` for each as it completes. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: ISseEvent) => void
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      for (const event of parser.push(
        decoder.decode(value, { stream: true })
      )) {
        onEvent(event);
      }
    }
    for (const event of parser.push(decoder.decode() + '\n\n')) {
      onEvent(event);
    }
  } finally {
    reader.releaseLock();
  }
}
