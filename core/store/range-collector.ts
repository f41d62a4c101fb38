/**
 * The limits of `StreamStore.loadRange` (core/jetstream/store.ts), shared by the stores: at most
 * `maxMsgs` messages, and no message that would take the sum of subject (UTF-8), header and
 * payload bytes past `maxBytes`, except the first.
 */
import type { StoredMessage } from '../jetstream/store.ts';

export class RangeCollector {
  readonly messages: StoredMessage[] = [];
  readonly #maxMsgs: number;
  readonly #maxBytes: number;
  #bytes = 0;
  #isFull: boolean;

  constructor(maxMsgs: number, maxBytes: number) {
    this.#maxMsgs = maxMsgs;
    this.#maxBytes = maxBytes;
    this.#isFull = maxMsgs <= 0;
  }

  /** True once nothing more may be added. */
  get isFull(): boolean {
    return this.#isFull;
  }

  /** Takes `message` unless the range is full or it would cross the byte limit (then the range is full). */
  add(message: StoredMessage): void {
    if (this.#isFull) return;
    const bytes = Buffer.byteLength(message.subject, 'utf8') + (message.headers?.length ?? 0) + message.data.length;
    if (this.messages.length > 0 && this.#bytes + bytes > this.#maxBytes) {
      this.#isFull = true;
      return;
    }
    this.messages.push(message);
    this.#bytes += bytes;
    if (this.messages.length >= this.#maxMsgs || this.#bytes >= this.#maxBytes) this.#isFull = true;
  }
}
