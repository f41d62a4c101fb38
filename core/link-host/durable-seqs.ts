/**
 * The highest sequence of each stream known to be on this side's disk, so a link sender never
 * sends what its own store could still lose (ARCHITECTURE.md "Durability": nothing crosses a
 * link before it is durable where it comes from).
 *
 * Why: a JetStream write is visible to reads at once and durable only when a later
 * `store.flushed()` resolves. A sender that read it at once could hand it to the peer, and a
 * crash (kill -9, power loss) before the commit would lose it here but not there: the receiver's
 * cursor would then be past this stream's end (the sender stops the stream as 'diverged'), and
 * the sequences would be reused for other messages the receiver takes for ones it has.
 *
 * How: on every change of a stream (JetStream's onStreamChange) the watermark asks the store for
 * a flush of what is there now, one at a time per stream, and moves when it resolves, then
 * tells the host (`onDurable`) so the sender looks again. A stream seen for the first time has no
 * watermark until its first flush resolved: its sender treats it as absent until then (it is
 * offered a moment later), which keeps the watermark from ever being below a cursor the peer got
 * from an earlier run of this process (what was sent then was durable, so it survived).
 */
import type { Stream } from '../jetstream/stream.ts';

type Watermark = {
  readonly stream: Stream;
  /** Everything up to it is on disk; undefined until the first flush after first sight. */
  seq: number | undefined;
  /** The last sequence a flush in flight covers, or undefined. */
  flushingSeq: number | undefined;
};

export class DurableSeqs {
  readonly #streams: ReadonlyMap<string, Stream>;
  readonly #onDurable: (stream: string) => void;
  /** By stream name; a record of a deleted or re-created stream is dropped or replaced. */
  readonly #marks = new Map<string, Watermark>();

  /**
   * `streams`: JetStream's streams by name (a Stream object that is no longer there is gone).
   * `onDurable(name)`: the watermark of that stream moved (called in a later microtask, never inside a store write).
   */
  constructor(options: { readonly streams: ReadonlyMap<string, Stream>; readonly onDurable: (stream: string) => void }) {
    this.#streams = options.streams;
    this.#onDurable = options.onDurable;
  }

  /** The stream changed (a write, a removal, created or deleted): watch for the flush of what it holds now. Cheap. */
  changed(stream: Stream): void {
    if (this.#streams.get(stream.name) !== stream) {
      // Deleted (its store is closed): nothing more to watch.
      if (this.#marks.get(stream.name)?.stream === stream) this.#marks.delete(stream.name);
      return;
    }
    this.#flush(this.#markOf(stream));
  }

  /** Everything of `stream` up to this sequence is on disk; undefined until known (see the file comment). */
  durableSeq(stream: Stream): number | undefined {
    const mark = this.#markOf(stream);
    if (mark.seq === undefined || mark.seq < stream.store.state().lastSeq) this.#flush(mark);
    return mark.seq;
  }

  #markOf(stream: Stream): Watermark {
    let mark = this.#marks.get(stream.name);
    if (mark === undefined || mark.stream !== stream) {
      mark = { stream, seq: undefined, flushingSeq: undefined };
      this.#marks.set(stream.name, mark);
    }
    return mark;
  }

  /** One flush in flight per stream; when it resolves, another if the stream grew meanwhile. */
  #flush(mark: Watermark): void {
    if (mark.flushingSeq !== undefined) return;
    const lastSeq = mark.stream.store.state().lastSeq;
    if (mark.seq !== undefined && lastSeq <= mark.seq) return;
    mark.flushingSeq = lastSeq;
    mark.stream.store.flushed().then(
      () => {
        mark.seq = Math.max(mark.seq ?? 0, lastSeq);
        mark.flushingSeq = undefined;
        if (this.#marks.get(mark.stream.name) !== mark || this.#streams.get(mark.stream.name) !== mark.stream) return; // deleted or re-created meanwhile
        this.#onDurable(mark.stream.name);
        if (mark.stream.store.state().lastSeq > mark.seq) this.#flush(mark);
      },
      () => {
        // The commit failed and the store dropped those writes; the next change asks again.
        mark.flushingSeq = undefined;
      },
    );
  }
}
