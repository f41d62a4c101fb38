/**
 * A fixed-capacity FIFO that overwrites its oldest entry when full: O(1) per push, where
 * `array.push` + `array.splice(0, 1)` moves every entry (the server's list of closed
 * connections is pushed on every close, 2,000 a second in a connection flood).
 */
export class RingBuffer<T> {
  readonly capacity: number;
  readonly #entries: (T | undefined)[];
  /** Index of the oldest entry. */
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`ring buffer capacity must be a positive integer (got ${capacity})`);
    this.capacity = capacity;
    this.#entries = new Array<T | undefined>(capacity).fill(undefined);
  }

  get size(): number {
    return this.#size;
  }

  /** Appends `entry`; when full, the oldest entry is dropped. */
  push(entry: T): void {
    if (this.#size < this.capacity) {
      this.#entries[(this.#head + this.#size) % this.capacity] = entry;
      this.#size++;
      return;
    }
    this.#entries[this.#head] = entry;
    this.#head = (this.#head + 1) % this.capacity;
  }

  /** The entries, oldest first (a copy). */
  toArray(): T[] {
    const out = new Array<T>(this.#size);
    for (let i = 0; i < this.#size; i++) out[i] = this.#entries[(this.#head + i) % this.capacity] as T;
    return out;
  }
}
