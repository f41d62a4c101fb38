/**
 * A stream's messages in memory (StreamConfig.storage `memory`, and the
 * reference implementation the contract suite runs beside the LMDB store).
 * Nothing survives the process; `flushed()` resolves at once.
 *
 * Layout: a dense array of slots indexed by `seq - base` (holes for removed
 * messages), plus per subject the ascending live sequences, so literal-subject
 * operations never scan the stream. Byte accounting is nats-server's memory
 * store formula (accounting.ts).
 */
import { randomFillSync } from 'node:crypto';
import {
  StoreError,
  StoreErrorCode,
  type NewMessage,
  type PurgeOptions,
  type StorageKind,
  type StoredMessage,
  type StreamStore,
  type StreamStoreState,
  type SubjectFilter,
} from '../../jetstream/store.ts';
import { assert } from '../../util/assert.ts';
import { memoryStoreMessageBytes } from '../accounting.ts';
import { planPurge } from '../purge-plan.ts';
import { RangeCollector } from '../range-collector.ts';
import { compileFilter, filterMatches, type CompiledFilter } from '../subject-filter.ts';

type Entry = {
  readonly seq: number;
  readonly subject: string;
  /** Headers then payload in one buffer; `headersLength` splits it. */
  readonly buffer: Buffer;
  readonly headersLength: number;
  readonly timestampNs: bigint;
  readonly bytes: number;
};

/** Slots are dropped from the front once this many are dead (and they are half the array). */
const DEAD_SLOTS_TRIM_MIN = 1024;

/** The ascending live sequences of one subject; `seqs[head…]` are live. */
class SubjectSeqs {
  seqs: number[] = [];
  head = 0;

  get count(): number {
    return this.seqs.length - this.head;
  }

  get first(): number {
    return this.seqs[this.head]!;
  }

  get last(): number {
    return this.seqs[this.seqs.length - 1]!;
  }

  push(seq: number): void {
    assert(this.count === 0 || seq > this.last, 'subject sequences must ascend');
    this.seqs.push(seq);
  }

  /** Index of the first live sequence >= seq (seqs.length when none). */
  lowerBound(seq: number): number {
    let low = this.head;
    let high = this.seqs.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.seqs[middle]! < seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  remove(seq: number): void {
    if (this.seqs[this.head] === seq) {
      this.head++;
      if (this.head > 32 && this.head * 2 > this.seqs.length) {
        this.seqs = this.seqs.slice(this.head);
        this.head = 0;
      }
      return;
    }
    if (this.last === seq) {
      this.seqs.pop();
      return;
    }
    const index = this.lowerBound(seq);
    assert(this.seqs[index] === seq, 'removed sequence must be indexed under its subject');
    this.seqs.splice(index, 1);
  }
}

/** In-memory {@link StreamStore}. */
export class MemoryStreamStore implements StreamStore {
  readonly storage: StorageKind = 'memory';
  #slots: (Entry | undefined)[] = [];
  /** Sequence of `#slots[0]`. */
  #base = 1;
  #subjects = new Map<string, SubjectSeqs>();
  #firstSeq = 0;
  #lastSeq = 0;
  #firstTimestampNs = 0n;
  #lastTimestampNs = 0n;
  #messages = 0;
  #bytes = 0;
  #isClosed = false;

  append(message: NewMessage): number {
    this.#checkOpen();
    const seq = this.#lastSeq + 1;
    assert(Number.isSafeInteger(seq), 'stream sequence must stay a safe integer');
    assert(message.subject.length > 0, 'a stored message needs a subject');
    const headersLength = message.headers?.length ?? 0;
    const buffer = Buffer.allocUnsafe(headersLength + message.data.length);
    if (message.headers !== undefined) message.headers.copy(buffer, 0);
    message.data.copy(buffer, headersLength);
    const bytes = memoryStoreMessageBytes(message.subject.length, headersLength, message.data.length);
    if (this.#messages === 0) {
      this.#slots = [];
      this.#base = seq;
      this.#firstSeq = seq;
      this.#firstTimestampNs = message.timestampNs;
    }
    assert(seq - this.#base === this.#slots.length, 'appended slot must follow the last slot');
    this.#slots.push({ seq, subject: message.subject, buffer, headersLength, timestampNs: message.timestampNs, bytes });
    let seqs = this.#subjects.get(message.subject);
    if (seqs === undefined) {
      seqs = new SubjectSeqs();
      this.#subjects.set(message.subject, seqs);
    }
    seqs.push(seq);
    this.#lastSeq = seq;
    this.#lastTimestampNs = message.timestampNs;
    this.#messages++;
    this.#bytes += bytes;
    return seq;
  }

  flushed(): Promise<void> {
    if (this.#isClosed) return Promise.reject(new StoreError(StoreErrorCode.closed, 'stream store is closed'));
    return Promise.resolve();
  }

  load(seq: number): StoredMessage | undefined {
    this.#checkOpen();
    const entry = this.#entry(seq);
    return entry === undefined ? undefined : toStored(entry);
  }

  loadNext(filter: SubjectFilter, fromSeq: number): StoredMessage | undefined {
    this.#checkOpen();
    const seq = this.#nextMatch(compileFilter(filter), Math.max(fromSeq, this.#firstSeq));
    return seq === undefined ? undefined : toStored(this.#entry(seq)!);
  }

  loadRange(fromSeq: number, maxMsgs: number, maxBytes: number): StoredMessage[] {
    this.#checkOpen();
    const range = new RangeCollector(maxMsgs, maxBytes);
    for (let seq = Math.max(fromSeq, this.#firstSeq); seq <= this.#lastSeq && !range.isFull; seq++) {
      const entry = this.#entry(seq);
      if (entry !== undefined) range.add(toStored(entry));
    }
    return range.messages;
  }

  loadLast(filter: SubjectFilter): StoredMessage | undefined {
    this.#checkOpen();
    if (this.#messages === 0) return undefined;
    const compiled = compileFilter(filter);
    let lastSeq = 0;
    if (compiled.kind === 'all') {
      for (let seq = this.#lastSeq; seq >= this.#firstSeq && lastSeq === 0; seq--) {
        if (this.#entry(seq) !== undefined) lastSeq = seq;
      }
    } else {
      this.#forEachSubject(compiled, (_subject, seqs) => {
        if (seqs.last > lastSeq) lastSeq = seqs.last;
      });
    }
    return lastSeq === 0 ? undefined : toStored(this.#entry(lastSeq)!);
  }

  remove(seq: number, options?: { erase?: boolean }): boolean {
    this.#checkOpen();
    const entry = this.#entry(seq);
    if (entry === undefined) return false;
    this.#removeEntry(entry, options?.erase === true);
    if (seq === this.#firstSeq) this.#advanceFirst(seq + 1);
    return true;
  }

  purge(options: PurgeOptions): number {
    this.#checkOpen();
    const plan = planPurge(options);
    switch (plan.kind) {
      case 'all':
        return this.#compact(this.#lastSeq + 1);
      case 'compact':
        return this.#compact(plan.seq);
      case 'filtered': {
        const seqs = this.#matchingSeqs(plan.filter, plan.seqBelow);
        let removable = seqs.length;
        if (plan.keep > 0) {
          const total = this.#count(plan.filter, this.#firstSeq);
          if (plan.keep >= total) return 0;
          removable = Math.min(removable, total - plan.keep);
        }
        for (let i = 0; i < removable; i++) this.#removeEntry(this.#entry(seqs[i]!)!, false);
        if (removable > 0) this.#advanceFirst(this.#firstSeq);
        return removable;
      }
    }
  }

  countPending(filter: SubjectFilter, fromSeq: number): number {
    this.#checkOpen();
    return this.#count(compileFilter(filter), fromSeq);
  }

  subjectCounts(filter: SubjectFilter): Map<string, number> {
    this.#checkOpen();
    const counts = new Map<string, number>();
    this.#forEachSubject(compileFilter(filter), (subject, seqs) => counts.set(subject, seqs.count));
    return counts;
  }

  deletedSeqs(): number[] {
    this.#checkOpen();
    const deleted: number[] = [];
    if (this.#messages === 0) return deleted;
    for (let seq = this.#firstSeq; seq <= this.#lastSeq; seq++) if (this.#entry(seq) === undefined) deleted.push(seq);
    return deleted;
  }

  messageBytes(subjectLength: number, headersLength: number, dataLength: number): number {
    return memoryStoreMessageBytes(subjectLength, headersLength, dataLength);
  }

  state(): StreamStoreState {
    this.#checkOpen();
    return {
      messages: this.#messages,
      bytes: this.#bytes,
      firstSeq: this.#firstSeq,
      firstTimestampNs: this.#firstTimestampNs,
      lastSeq: this.#lastSeq,
      lastTimestampNs: this.#lastTimestampNs,
      numDeleted: this.#messages === 0 ? 0 : this.#lastSeq - this.#firstSeq + 1 - this.#messages,
      numSubjects: this.#subjects.size,
    };
  }

  close(): Promise<void> {
    this.#isClosed = true;
    this.#slots = [];
    this.#subjects.clear();
    return Promise.resolve();
  }

  #checkOpen(): void {
    if (this.#isClosed) throw new StoreError(StoreErrorCode.closed, 'stream store is closed');
  }

  #entry(seq: number): Entry | undefined {
    if (seq < this.#firstSeq || seq > this.#lastSeq) return undefined;
    return this.#slots[seq - this.#base];
  }

  /** Takes one live entry out of every structure (not firstSeq: callers advance it). */
  #removeEntry(entry: Entry, erase: boolean): void {
    this.#slots[entry.seq - this.#base] = undefined;
    this.#messages--;
    this.#bytes -= entry.bytes;
    const seqs = this.#subjects.get(entry.subject)!;
    seqs.remove(entry.seq);
    if (seqs.count === 0) this.#subjects.delete(entry.subject);
    // nats-server parity: memstore.go removeMsg(secure) overwrites header and payload with random bytes.
    if (erase) randomFillSync(entry.buffer);
  }

  /** Moves firstSeq to the first live sequence at or after `from` (lastSeq + 1 when empty). */
  #advanceFirst(from: number): void {
    if (this.#messages === 0) {
      this.#firstSeq = this.#lastSeq + 1;
      this.#firstTimestampNs = 0n;
      this.#slots = [];
      this.#base = this.#firstSeq;
      return;
    }
    let seq = Math.max(from, this.#firstSeq);
    while (seq <= this.#lastSeq && this.#slots[seq - this.#base] === undefined) seq++;
    assert(seq <= this.#lastSeq, 'a non-empty stream has a live message at or after firstSeq');
    this.#firstSeq = seq;
    this.#firstTimestampNs = this.#slots[seq - this.#base]!.timestampNs;
    const dead = seq - this.#base;
    if (dead >= DEAD_SLOTS_TRIM_MIN && dead * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(dead);
      this.#base = seq;
    }
  }

  /** Removes everything below `seq`; past the end, the next append gets `seq` (purge-plan.ts). */
  #compact(seq: number): number {
    if (seq > this.#lastSeq) {
      const purged = this.#messages;
      this.#slots = [];
      this.#subjects.clear();
      this.#messages = 0;
      this.#bytes = 0;
      this.#lastSeq = Math.max(this.#lastSeq, seq - 1);
      this.#firstSeq = this.#lastSeq + 1;
      this.#base = this.#firstSeq;
      this.#firstTimestampNs = 0n;
      return purged;
    }
    let purged = 0;
    for (let cursor = this.#firstSeq; cursor < seq; cursor++) {
      const entry = this.#slots[cursor - this.#base];
      if (entry === undefined) continue;
      this.#removeEntry(entry, false);
      purged++;
    }
    this.#advanceFirst(seq);
    return purged;
  }

  /** Live messages with seq >= fromSeq passing the filter. */
  #count(filter: CompiledFilter, fromSeq: number): number {
    const start = Math.max(fromSeq, this.#firstSeq);
    if (this.#messages === 0 || start > this.#lastSeq) return 0;
    if (filter.kind === 'all') {
      if (start <= this.#firstSeq) return this.#messages;
      // Scan the shorter side of `start`.
      let live = 0;
      if (start - this.#firstSeq < this.#lastSeq - start) {
        for (let seq = this.#firstSeq; seq < start; seq++) if (this.#slots[seq - this.#base] !== undefined) live++;
        return this.#messages - live;
      }
      for (let seq = start; seq <= this.#lastSeq; seq++) if (this.#slots[seq - this.#base] !== undefined) live++;
      return live;
    }
    let count = 0;
    this.#forEachSubject(filter, (_subject, seqs) => {
      count += seqs.seqs.length - seqs.lowerBound(start);
    });
    return count;
  }

  /** The first live sequence >= start matching the filter. */
  #nextMatch(filter: CompiledFilter, start: number): number | undefined {
    if (this.#messages === 0 || start > this.#lastSeq) return undefined;
    const useSubjects = filter.kind === 'literals' || (filter.kind === 'wildcards' && this.#subjects.size < this.#lastSeq - start + 1);
    if (useSubjects) {
      let best = Infinity;
      this.#forEachSubject(filter, (_subject, seqs) => {
        const index = seqs.lowerBound(start);
        if (index < seqs.seqs.length && seqs.seqs[index]! < best) best = seqs.seqs[index]!;
      });
      return best === Infinity ? undefined : best;
    }
    for (let seq = start; seq <= this.#lastSeq; seq++) {
      const entry = this.#slots[seq - this.#base];
      if (entry !== undefined && filterMatches(filter, entry.subject)) return seq;
    }
    return undefined;
  }

  /** Calls `visit` for each live subject passing the filter. */
  #forEachSubject(filter: CompiledFilter, visit: (subject: string, seqs: SubjectSeqs) => void): void {
    if (filter.kind === 'literals') {
      for (const subject of filter.subjects) {
        const seqs = this.#subjects.get(subject);
        if (seqs !== undefined) visit(subject, seqs);
      }
      return;
    }
    for (const [subject, seqs] of this.#subjects) if (filterMatches(filter, subject)) visit(subject, seqs);
  }

  /** Matching live sequences below `seqBelow`, ascending. */
  #matchingSeqs(filter: CompiledFilter, seqBelow: number): number[] {
    const out: number[] = [];
    this.#forEachSubject(filter, (_subject, seqs) => {
      for (let i = seqs.head; i < seqs.seqs.length && seqs.seqs[i]! < seqBelow; i++) out.push(seqs.seqs[i]!);
    });
    return out.sort((a, b) => a - b);
  }
}

function toStored(entry: Entry): StoredMessage {
  const copy = Buffer.from(entry.buffer);
  return {
    seq: entry.seq,
    subject: entry.subject,
    headers: entry.headersLength === 0 ? undefined : copy.subarray(0, entry.headersLength),
    data: copy.subarray(entry.headersLength),
    timestampNs: entry.timestampNs,
  };
}
