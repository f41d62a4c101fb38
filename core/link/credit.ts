/**
 * Flow-control arithmetic of the link (README "Window (credit)"): how many bytes a message
 * costs, and the per-connection byte window a sender must stay inside. Pure arithmetic; the
 * sender (sender.ts) owns one `CreditWindow` per connection.
 */
import { assert } from '../util/assert.ts';
import type { LinkMessage } from './frames.ts';

/** UTF-8 byte length of a string, without allocating (subjects are ASCII in practice). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4; // a surrogate pair is one 4-byte code point
        i++;
      } else bytes += 3; // a lone surrogate encodes as U+FFFD
    } else bytes += 3;
  }
  return bytes;
}

/** What a message costs against the window: subject + headers + data bytes (README "Window"). */
export function messageBytes(message: Pick<LinkMessage, 'subject' | 'headers' | 'data'>): number {
  return utf8ByteLength(message.subject) + (message.headers?.length ?? 0) + message.data.length;
}

/** Total cost of a batch's messages. */
export function batchBytes(messages: readonly Pick<LinkMessage, 'subject' | 'headers' | 'data'>[]): number {
  let total = 0;
  for (let i = 0; i < messages.length; i++) total += messageBytes(messages[i]!);
  return total;
}

/**
 * The byte window of one connection, all streams together. `unackedBytes` is what the sender
 * sent and has not yet seen acknowledged by a `cursor`. A batch fits when it keeps
 * `unackedBytes` within `windowBytes`, or when nothing is unacknowledged (so one message larger
 * than the window never deadlocks the link).
 */
export class CreditWindow {
  #windowBytes: number;
  #unackedBytes = 0;

  constructor(windowBytes: number) {
    assert(Number.isSafeInteger(windowBytes) && windowBytes > 0, `window must be a positive integer: ${windowBytes}`);
    this.#windowBytes = windowBytes;
  }

  get windowBytes(): number {
    return this.#windowBytes;
  }

  get unackedBytes(): number {
    return this.#unackedBytes;
  }

  /** Bytes that fit without crossing the window (0 when at or past it, e.g. after a shrink). */
  get availableBytes(): number {
    return Math.max(0, this.#windowBytes - this.#unackedBytes);
  }

  /** True if a batch of `bytes` may be sent now. */
  canSend(bytes: number): boolean {
    return this.#unackedBytes === 0 || this.#unackedBytes + bytes <= this.#windowBytes;
  }

  /** Records a batch sent; the caller checked `canSend`. */
  charge(bytes: number): void {
    assert(bytes >= 0, `charge of negative bytes: ${bytes}`);
    assert(this.canSend(bytes), `charge of ${bytes} bytes past the window (${this.#unackedBytes}/${this.#windowBytes} used)`);
    this.#unackedBytes += bytes;
  }

  /** Bytes acknowledged by a cursor. */
  release(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.#unackedBytes, `release of ${bytes} bytes with ${this.#unackedBytes} unacked`);
    this.#unackedBytes -= bytes;
  }

  /** The receiver changed its window (a `window` frame). Bytes already out stay out. */
  setWindow(windowBytes: number): void {
    assert(Number.isSafeInteger(windowBytes) && windowBytes > 0, `window must be a positive integer: ${windowBytes}`);
    this.#windowBytes = windowBytes;
  }
}
