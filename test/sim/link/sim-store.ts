/**
 * The simulator's storage: the sender side's streams (SimStream, kept whole as the checkers'
 * ground truth) and the receiver side's sink with a disk model (SimSink).
 *
 * Disk model (brief / README "Cursor"): a receiver write (messages or a gap, with the cursor
 * it moves to) is staged, then becomes durable at a later flush (a group commit of every staged
 * write, in order). A crash keeps a random prefix of the staged writes (some may have reached
 * the disk) and loses the rest; durable writes always survive, so the durable cursor never goes
 * backwards. The sender's streams survive crashes whole.
 */
import type { SeededPrng } from '../../../core/util/prng.ts';
import type { GapRecord, LinkMessage, ReceiverSink, ReceiverWrite, SenderStreams, StreamKey } from '../../../core/link/index.ts';
import { messageBytes } from '../../../core/link/index.ts';

export function keyId(key: StreamKey): string {
  return `${key.stream}/${key.incarnation}`;
}

/**
 * One incarnation of a sender stream. `history[seq - 1]` is every message ever published (the
 * ground truth the checkers compare copies with); `present` says which are still stored.
 */
export class SimStream {
  readonly node: string;
  readonly name: string;
  readonly incarnation: string;
  /** Retention policy: 'any' deletes by limits whatever the peer has; 'acked' only what every peer acknowledged. */
  readonly retention: 'any' | 'acked';
  readonly createdAt: number;
  readonly history: LinkMessage[] = [];
  readonly #present: boolean[] = [];
  /** Why each deleted sequence went (for gap reasons). */
  readonly #reasons: (string | undefined)[] = [];
  #firstSeq = 1;
  isDeleted = false;

  constructor(options: { node: string; name: string; incarnation: string; retention: 'any' | 'acked'; createdAt: number }) {
    this.node = options.node;
    this.name = options.name;
    this.incarnation = options.incarnation;
    this.retention = options.retention;
    this.createdAt = options.createdAt;
  }

  get key(): StreamKey {
    return { stream: this.name, incarnation: this.incarnation };
  }

  get firstSeq(): number {
    return this.#firstSeq;
  }

  get lastSeq(): number {
    return this.history.length;
  }

  /** Stored messages now. */
  get count(): number {
    let count = 0;
    for (let seq = this.#firstSeq; seq <= this.lastSeq; seq++) if (this.#present[seq - 1]) count++;
    return count;
  }

  has(seq: number): boolean {
    return this.#present[seq - 1] === true;
  }

  /** True when `seq` was published and deleted since. */
  isGone(seq: number): boolean {
    return seq >= 1 && seq <= this.lastSeq && !this.#present[seq - 1];
  }

  publish(message: Omit<LinkMessage, 'seq'>): LinkMessage {
    const stored: LinkMessage = { ...message, seq: this.history.length + 1 };
    this.history.push(stored);
    this.#present.push(true);
    this.#reasons.push(undefined);
    return stored;
  }

  /** Deletes the oldest `count` stored messages, no further than `maxSeq` (limits). Returns how many went. */
  deleteOldest(count: number, maxSeq: number, reason: string): number {
    let deleted = 0;
    let seq = this.#firstSeq;
    while (deleted < count && seq <= Math.min(maxSeq, this.lastSeq)) {
      if (this.#present[seq - 1]) {
        this.#present[seq - 1] = false;
        this.#reasons[seq - 1] = reason;
        deleted++;
      }
      seq++;
    }
    this.#advanceFirst();
    return deleted;
  }

  /** Deletes one message anywhere (a `$JS.API.STREAM.MSG.DELETE`). */
  deleteOne(seq: number): boolean {
    if (!this.has(seq)) return false;
    this.#present[seq - 1] = false;
    this.#reasons[seq - 1] = 'deleted';
    this.#advanceFirst();
    return true;
  }

  purge(): number {
    let deleted = 0;
    for (let seq = this.#firstSeq; seq <= this.lastSeq; seq++) {
      if (this.#present[seq - 1]) {
        this.#present[seq - 1] = false;
        this.#reasons[seq - 1] = 'purged';
        deleted++;
      }
    }
    this.#advanceFirst();
    return deleted;
  }

  reasonOf(seq: number): string {
    return this.#reasons[seq - 1] ?? 'limits';
  }

  read(fromSeq: number, maxBytes: number, maxMsgs: number): LinkMessage[] {
    const result: LinkMessage[] = [];
    let bytes = 0;
    for (let seq = Math.max(fromSeq, this.#firstSeq); seq <= this.lastSeq && result.length < maxMsgs; seq++) {
      if (!this.#present[seq - 1]) continue;
      const message = this.history[seq - 1]!;
      const size = messageBytes(message);
      if (result.length > 0 && bytes + size > maxBytes) break;
      result.push(message);
      bytes += size;
    }
    return result;
  }

  pending(afterSeq: number): { msgs: number; bytes: number; oldestNs: bigint | undefined } {
    let msgs = 0;
    let bytes = 0;
    let oldestNs: bigint | undefined;
    for (let seq = Math.max(afterSeq + 1, this.#firstSeq); seq <= this.lastSeq; seq++) {
      if (!this.#present[seq - 1]) continue;
      const message = this.history[seq - 1]!;
      msgs++;
      bytes += messageBytes(message);
      oldestNs ??= message.timestampNs;
    }
    return { msgs, bytes, oldestNs };
  }

  #advanceFirst(): void {
    while (this.#firstSeq <= this.lastSeq && !this.#present[this.#firstSeq - 1]) this.#firstSeq++;
  }
}

/** A node's streams: the current incarnation per name. Old incarnations stay in `all` for the checkers. */
export class SimStore {
  readonly node: string;
  readonly current = new Map<string, SimStream>();

  constructor(node: string) {
    this.node = node;
  }

  /** The `SenderStreams` view a sender reads. */
  senderStreams(): SenderStreams {
    return {
      list: () => {
        const keys: StreamKey[] = [];
        for (const stream of this.current.values()) keys.push(stream.key);
        return keys;
      },
      state: (key) => {
        const stream = this.#find(key);
        return stream === undefined ? undefined : { firstSeq: stream.firstSeq, lastSeq: stream.lastSeq };
      },
      read: (key, fromSeq, maxBytes, maxMsgs) => this.#find(key)?.read(fromSeq, maxBytes, maxMsgs) ?? [],
      gapReason: (key, from) => this.#find(key)?.reasonOf(from) ?? 'deleted',
      pending: (key, afterSeq) => this.#find(key)?.pending(afterSeq) ?? { msgs: 0, bytes: 0, oldestNs: undefined },
    };
  }

  #find(key: StreamKey): SimStream | undefined {
    const stream = this.current.get(key.stream);
    return stream !== undefined && stream.incarnation === key.incarnation ? stream : undefined;
  }
}

/** The receiver's copy of one sender stream incarnation. */
export type SimCopy = {
  readonly key: StreamKey;
  /** Every write of this life in order (durable ones first). */
  readonly writes: ReceiverWrite[];
  /** `cursors[i]`: the cursor after `writes[i]`. */
  readonly cursors: number[];
  durableWrites: number;
  /** Highest durable cursor ever (across crashes): the cursor never goes backwards. */
  durableCursorMax: number;
  gaps: number;
  gapMsgs: number;
};

/** Hooks the checker installs on a sink. */
export type SinkWatcher = {
  onWrite(sink: SimSink, copy: SimCopy, write: ReceiverWrite, cursorBefore: number): void;
};

/**
 * A receiver's sink for one peer's streams, over the disk model above. `refused` lists stream
 * names this side refuses (error 'stream').
 */
export class SimSink implements ReceiverSink {
  /** The node that stores, and the node whose streams it stores. */
  readonly owner: string;
  readonly peer: string;
  readonly copies = new Map<string, SimCopy>();
  readonly #staged: SimCopy[] = [];
  readonly #lastIncarnation = new Map<string, string>();
  readonly #watcher: SinkWatcher;
  readonly #refused: (stream: string) => boolean;

  constructor(options: { owner: string; peer: string; watcher: SinkWatcher; refused: (stream: string) => boolean }) {
    this.owner = options.owner;
    this.peer = options.peer;
    this.#watcher = options.watcher;
    this.#refused = options.refused;
  }

  get stagedCount(): number {
    return this.#staged.length;
  }

  cursor(key: StreamKey): number {
    const copy = this.copies.get(keyId(key));
    return copy === undefined ? 0 : durableCursorOf(copy);
  }

  stagedCursor(key: StreamKey): number {
    const copy = this.copies.get(keyId(key));
    return copy === undefined || copy.cursors.length === 0 ? 0 : copy.cursors[copy.cursors.length - 1]!;
  }

  lastIncarnation(stream: string): string | undefined {
    return this.#lastIncarnation.get(stream);
  }

  refuse(key: StreamKey): string | undefined {
    return this.#refused(key.stream) ? `stream ${key.stream} is not accepted from ${this.peer}` : undefined;
  }

  append(key: StreamKey, write: ReceiverWrite): void {
    const id = keyId(key);
    let copy = this.copies.get(id);
    if (copy === undefined) {
      copy = { key, writes: [], cursors: [], durableWrites: 0, durableCursorMax: 0, gaps: 0, gapMsgs: 0 };
      this.copies.set(id, copy);
    }
    const before = this.stagedCursor(key);
    this.#watcher.onWrite(this, copy, write, before);
    copy.writes.push(write);
    copy.cursors.push(write.kind === 'gap' ? write.gap.to : write.msgs[write.msgs.length - 1]!.seq);
    this.#staged.push(copy);
  }

  /** A group commit: the oldest `count` staged writes become durable. Returns the (key, durable cursor) pairs that moved. */
  flush(count: number): { key: StreamKey; seq: number }[] {
    return this.#makeDurable(Math.min(count, this.#staged.length));
  }

  /** A crash: a random prefix of the staged writes made it to disk, the rest is lost. Returns writes lost. */
  crash(prng: SeededPrng): number {
    const kept = prng.between(0, this.#staged.length);
    this.#makeDurable(kept);
    const lost = this.#staged.length;
    for (const copy of this.copies.values()) {
      copy.writes.length = copy.durableWrites;
      copy.cursors.length = copy.durableWrites;
    }
    this.#staged.length = 0;
    return lost;
  }

  #makeDurable(count: number): { key: StreamKey; seq: number }[] {
    const moved = new Map<string, { key: StreamKey; seq: number }>();
    for (let i = 0; i < count; i++) {
      const copy = this.#staged[i]!;
      const write = copy.writes[copy.durableWrites]!;
      copy.durableWrites += 1;
      if (write.kind === 'gap') {
        copy.gaps += 1;
        copy.gapMsgs += write.gap.to - write.gap.from + 1;
      }
      const cursor = durableCursorOf(copy);
      copy.durableCursorMax = Math.max(copy.durableCursorMax, cursor);
      this.#lastIncarnation.set(copy.key.stream, copy.key.incarnation);
      moved.set(keyId(copy.key), { key: copy.key, seq: cursor });
    }
    this.#staged.splice(0, count);
    return [...moved.values()];
  }
}

export function durableCursorOf(copy: SimCopy): number {
  return copy.durableWrites === 0 ? 0 : copy.cursors[copy.durableWrites - 1]!;
}

export type { GapRecord };
