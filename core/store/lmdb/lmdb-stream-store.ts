/**
 * A file stream's messages in the shared LMDB environment (core/store/README.md).
 *
 * Reads and writes are synchronous for the caller; writes reach LMDB through
 * the environment's CommitPipeline (group commit). Until a write is on disk,
 * an in-memory overlay makes it visible:
 * - the tail: appended records not yet committed (all above every disk seq);
 * - tombs: removed messages that are still on disk;
 * - the floor, `firstSeq`: every disk record below it is dead (purge and
 *   compact remove ranges without a tomb per message; the next commit deletes
 *   them).
 * Counters (messages, bytes, subjects, first/last) are kept in memory and
 * written as one state record in the same transaction as the data they
 * describe, so a reopen reads them back without scanning messages.
 *
 * The disk under the overlay is the pipeline's CommittedView (read-view.ts):
 * the snapshot of the last commit reported through committed(), never a newer
 * one that has landed while its completion is still queued. So the tail is
 * never on that disk, and every tomb's record is.
 */
import { randomFillSync } from 'node:crypto';
import type { Database } from 'lmdb';
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
import { fileStoreMessageBytes } from '../accounting.ts';
import { planPurge } from '../purge-plan.ts';
import { RangeCollector } from '../range-collector.ts';
import { compileFilter, filterMatches, type CompiledFilter } from '../subject-filter.ts';
import type { CommitParticipant, CommitPipeline, WriteOp } from './commit-pipeline.ts';
import type { CommittedView } from './read-view.ts';
import {
  decodeMessageRecord,
  decodeStreamState,
  encodeMessageRecord,
  encodeStreamState,
  isMessageRecordIntact,
  readMessageLayout,
  scrubMessageRecord,
  type StreamStateRecord,
} from './codec.ts';
import type { LmdbDatabases } from './env.ts';
import {
  chunkOf,
  messageKey,
  messagesEndKey,
  parseSubjectKey,
  seqOfMessageKey,
  seqOfSubjectValue,
  streamIdKey,
  subjectChunkKey,
  subjectChunkKeyMax,
  subjectLowValue,
  subjectPrefix,
  SUBJECT_CHUNK_BYTES,
} from './keys.ts';

/** An appended message not yet (known to be) on disk. */
type TailEntry = {
  readonly seq: number;
  readonly subject: string;
  readonly key: Buffer;
  readonly record: Buffer;
  readonly bytes: number;
  readonly timestampNs: bigint;
  /** The commit generation that writes it. */
  readonly generation: number;
  /** Removed; hidden from reads. */
  isDead: boolean;
  /** Handed to a batch: after that commit it is on disk, even if dead. */
  isWritten: boolean;
  isErased: boolean;
};

/** A removed message still on disk (or in the batch in flight). */
type Tomb = { readonly subject: string; readonly generation: number; readonly erase: boolean };

/** A dead record below the floor, with what the floor deletion needs to know. */
type BelowFloor = { readonly subject: string; readonly erase: boolean };

/** Subject-index prefixes kept for reuse; the cache is simply cleared past this size. */
const PREFIX_CACHE_ENTRIES_MAX = 4096;
/** Wildcard loadNext uses the subject index when subjects * this < messages to scan. */
const INDEX_SCAN_RATIO = 8;
/** Up to this many messages per subject on average, wildcard summaries read every index entry. */
const SMALL_SUBJECT_MESSAGES = 64;
/** Wildcard loadLast reads at most this many records backwards before asking the index. */
const LAST_SCAN_RECORDS_MAX = 1024;

type SubjectSummary = { count: number; last: number };

export type LmdbStreamStoreOptions = {
  readonly name: string;
  readonly streamId: number;
  readonly databases: LmdbDatabases;
  readonly pipeline: CommitPipeline;
  /** Called once when the store closes (the storage forgets it). */
  readonly onClose: (store: LmdbStreamStore) => void;
};

const EMPTY_STATE: StreamStateRecord = {
  firstSeq: 0,
  lastSeq: 0,
  messages: 0,
  bytes: 0,
  numSubjects: 0,
  firstTimestampNs: 0n,
  lastTimestampNs: 0n,
};

/** LMDB-backed {@link StreamStore} (`file` storage). */
export class LmdbStreamStore implements StreamStore, CommitParticipant {
  readonly storage: StorageKind = 'file';
  readonly name: string;
  readonly streamId: number;
  readonly #messagesDb: Database<Buffer, Buffer>;
  readonly #subjectsDb: Database<Buffer, Buffer>;
  readonly #statesDb: Database<Buffer, Buffer>;
  readonly #pipeline: CommitPipeline;
  /** Every disk read goes through it: the snapshot the overlay is computed against (read-view.ts). */
  readonly #view: CommittedView;
  readonly #onClose: (store: LmdbStreamStore) => void;

  #firstSeq = 0;
  #lastSeq = 0;
  #messages = 0;
  #bytes = 0;
  #numSubjects = 0;
  #firstTimestampNs = 0n;
  #lastTimestampNs = 0n;

  #tail: TailEntry[] = [];
  readonly #tailBySeq = new Map<number, TailEntry>();
  readonly #tailBySubject = new Map<string, TailEntry[]>();
  readonly #tailLive = new Map<string, number>();
  readonly #tombs = new Map<number, Tomb>();
  readonly #tombCounts = new Map<string, number>();
  readonly #belowFloor = new Map<number, BelowFloor>();
  /** No record of this stream below this seq is on disk. */
  #diskClean = 0;
  #pendingDiskClean = 0;
  readonly #prefixes = new Map<string, Buffer>();
  #isClosed = false;

  private constructor(options: LmdbStreamStoreOptions, state: StreamStateRecord) {
    this.name = options.name;
    this.streamId = options.streamId;
    this.#messagesDb = options.databases.messages;
    this.#subjectsDb = options.databases.subjects;
    this.#statesDb = options.databases.streamStates;
    this.#pipeline = options.pipeline;
    this.#view = options.pipeline.view;
    this.#onClose = options.onClose;
    this.#setCounters(state);
    this.#diskClean = state.firstSeq;
  }

  /**
   * Opens a stream from its persisted state record: no scan of its messages.
   * Throws StoreError `corrupt` when the state record is damaged or disagrees
   * with the last message key.
   */
  static open(options: LmdbStreamStoreOptions): LmdbStreamStore {
    const stored = options.pipeline.view.get(options.databases.streamStates, streamIdKey(options.streamId));
    const state = stored === undefined ? EMPTY_STATE : decodeStreamState(stored, options.name);
    const store = new LmdbStreamStore(options, state);
    const lastKey = store.#lastDiskKey();
    if (lastKey !== undefined && seqOfMessageKey(lastKey) > state.lastSeq) {
      throw new StoreError(StoreErrorCode.corrupt, `stream ${options.name}: a message is stored beyond the recorded last sequence`);
    }
    if (stored === undefined) options.pipeline.markDirty(store);
    return store;
  }

  append(message: NewMessage): number {
    this.#checkOpen();
    const seq = this.#lastSeq + 1;
    assert(Number.isSafeInteger(seq), 'stream sequence must stay a safe integer');
    assert(message.subject.length > 0, 'a stored message needs a subject');
    const key = messageKey(this.streamId, seq);
    const record = encodeMessageRecord(key, message);
    const headersLength = message.headers?.length ?? 0;
    const bytes = fileStoreMessageBytes(message.subject.length, headersLength, message.data.length);
    const isNewSubject = this.#messages === 0 || !this.#hasLiveMessage(message.subject);
    const entry: TailEntry = {
      seq,
      subject: message.subject,
      key,
      record,
      bytes,
      timestampNs: message.timestampNs,
      generation: this.#pipeline.pendingGeneration,
      isDead: false,
      isWritten: false,
      isErased: false,
    };
    this.#tail.push(entry);
    this.#tailBySeq.set(seq, entry);
    const bySubject = this.#tailBySubject.get(message.subject);
    if (bySubject === undefined) this.#tailBySubject.set(message.subject, [entry]);
    else bySubject.push(entry);
    this.#tailLive.set(message.subject, (this.#tailLive.get(message.subject) ?? 0) + 1);
    if (this.#messages === 0) {
      this.#firstSeq = seq;
      this.#firstTimestampNs = message.timestampNs;
    }
    this.#lastSeq = seq;
    this.#lastTimestampNs = message.timestampNs;
    this.#messages++;
    this.#bytes += bytes;
    if (isNewSubject) this.#numSubjects++;
    this.#pipeline.markDirty(this);
    return seq;
  }

  flushed(): Promise<void> {
    if (this.#isClosed) return Promise.reject(new StoreError(StoreErrorCode.closed, `stream store ${this.name} is closed`));
    return this.#pipeline.flushed();
  }

  load(seq: number): StoredMessage | undefined {
    this.#checkOpen();
    if (!Number.isSafeInteger(seq) || seq < this.#firstSeq || seq > this.#lastSeq || this.#messages === 0) return undefined;
    const entry = this.#tailBySeq.get(seq);
    if (entry !== undefined) return entry.isDead ? undefined : decodeMessageRecord(entry.key, Buffer.from(entry.record));
    if (this.#tombs.has(seq)) return undefined;
    const key = messageKey(this.streamId, seq);
    const record = this.#view.get(this.#messagesDb, key);
    return record === undefined ? undefined : decodeMessageRecord(key, record);
  }

  loadNext(filter: SubjectFilter, fromSeq: number): StoredMessage | undefined {
    this.#checkOpen();
    const start = Math.max(fromSeq, this.#firstSeq);
    if (this.#messages === 0 || start > this.#lastSeq) return undefined;
    const compiled = compileFilter(filter);
    if (compiled.kind === 'all') return this.#loadLive(this.#nextLiveSeq(start));
    if (compiled.kind === 'wildcards' && this.#numSubjects * INDEX_SCAN_RATIO >= this.#lastSeq - start + 1) {
      return this.#scanNext(compiled, start);
    }
    let best = Infinity;
    for (const subject of this.#summaries(compiled, start, false).keys()) {
      const seq = this.#firstOfSubject(subject, start);
      if (seq !== undefined && seq < best) best = seq;
    }
    return this.#loadLive(best === Infinity ? undefined : best);
  }

  loadRange(fromSeq: number, maxMsgs: number, maxBytes: number): StoredMessage[] {
    this.#checkOpen();
    const range = new RangeCollector(maxMsgs, maxBytes);
    const start = Math.max(fromSeq, this.#firstSeq);
    if (this.#messages === 0 || start > this.#lastSeq || range.isFull) return range.messages;
    // The disk (as of the committed view) holds the older part, the tail the newer (load()'s order: tail, tombs, disk).
    let afterDisk = start - 1;
    for (const { key, value } of this.#view.range(this.#messagesDb, { start: messageKey(this.streamId, start), end: messagesEndKey(this.streamId) })) {
      const seq = seqOfMessageKey(key);
      afterDisk = seq;
      const entry = this.#tailBySeq.get(seq);
      if (entry !== undefined) {
        if (!entry.isDead) range.add(decodeMessageRecord(entry.key, Buffer.from(entry.record)));
      } else if (!this.#tombs.has(seq)) {
        let message: StoredMessage;
        try {
          message = decodeMessageRecord(key, value);
        } catch (err) {
          if (range.messages.length > 0) return range.messages; // the next read starts at the damaged one
          throw err;
        }
        range.add(message);
      }
      if (range.isFull) return range.messages;
    }
    for (const entry of this.#tail) {
      if (range.isFull) break;
      if (!entry.isDead && entry.seq > afterDisk) range.add(decodeMessageRecord(entry.key, Buffer.from(entry.record)));
    }
    return range.messages;
  }

  loadLast(filter: SubjectFilter): StoredMessage | undefined {
    this.#checkOpen();
    if (this.#messages === 0) return undefined;
    const compiled = compileFilter(filter);
    if (compiled.kind === 'all') return this.#loadLive(this.#previousLiveSeq(this.#lastSeq));
    if (compiled.kind === 'wildcards') {
      const found = this.#scanLast(compiled);
      if (found !== undefined) return found === 0 ? undefined : this.#loadLive(found);
    }
    let best = 0;
    for (const summary of this.#summaries(compiled, this.#firstSeq, true).values()) if (summary.last > best) best = summary.last;
    return this.#loadLive(best === 0 ? undefined : best);
  }

  remove(seq: number, options?: { erase?: boolean }): boolean {
    this.#checkOpen();
    if (!Number.isSafeInteger(seq) || seq < this.#firstSeq || seq > this.#lastSeq || this.#messages === 0) return false;
    const subject = this.#removeOne(seq, options?.erase === true);
    if (subject === undefined) return false;
    if (!this.#hasLiveMessage(subject)) this.#numSubjects--;
    if (seq === this.#firstSeq) this.#advanceFirst(seq + 1);
    this.#pipeline.markDirty(this);
    return true;
  }

  purge(options: PurgeOptions): number {
    this.#checkOpen();
    const plan = planPurge(options);
    let purged: number;
    switch (plan.kind) {
      case 'all':
        purged = this.#compactPast(this.#lastSeq + 1);
        break;
      case 'compact':
        purged = plan.seq > this.#lastSeq ? this.#compactPast(plan.seq) : this.#compact(plan.seq);
        break;
      case 'filtered':
        purged = this.#purgeFiltered(plan.filter, plan.seqBelow, plan.keep);
        break;
    }
    this.#pipeline.markDirty(this);
    return purged;
  }

  countPending(filter: SubjectFilter, fromSeq: number): number {
    this.#checkOpen();
    return this.#count(compileFilter(filter), fromSeq);
  }

  subjectCounts(filter: SubjectFilter): Map<string, number> {
    this.#checkOpen();
    const counts = new Map<string, number>();
    if (this.#messages === 0) return counts;
    for (const [subject, summary] of this.#summaries(compileFilter(filter), this.#firstSeq, false)) counts.set(subject, summary.count);
    return counts;
  }

  deletedSeqs(): number[] {
    this.#checkOpen();
    const deleted: number[] = [];
    if (this.#messages === 0) return deleted;
    let expected = this.#firstSeq;
    const visit = (seq: number): void => {
      for (; expected < seq; expected++) deleted.push(expected);
      expected = seq + 1;
    };
    for (const key of this.#view.keys(this.#messagesDb, { start: messageKey(this.streamId, this.#firstSeq), end: messagesEndKey(this.streamId) })) {
      const seq = seqOfMessageKey(key);
      if (!this.#tombs.has(seq) && seq <= this.#lastSeq) visit(seq);
    }
    for (const entry of this.#tail) if (!entry.isDead && entry.seq >= this.#firstSeq) visit(entry.seq);
    for (; expected <= this.#lastSeq; expected++) deleted.push(expected);
    return deleted;
  }

  messageBytes(subjectLength: number, headersLength: number, dataLength: number): number {
    return fileStoreMessageBytes(subjectLength, headersLength, dataLength);
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
      numSubjects: this.#numSubjects,
    };
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    try {
      await this.#pipeline.flushed();
    } finally {
      this.#closeNow();
    }
  }

  /** The stream was deleted: forget everything at once (the storage deletes the data). */
  discard(): void {
    this.#closeNow();
  }

  // ---- CommitParticipant ----

  collectWrites(generation: number, ops: WriteOp[]): void {
    if (this.#isClosed) return;
    // Subject-index keys this collection writes (subject → chunk): later ops on one copy nothing more (WriteOp `copies`).
    const indexKeys = new Map<string, number>();
    if (this.#firstSeq > this.#diskClean) this.#collectFloorDeletes(ops, indexKeys);
    this.#belowFloor.clear();
    this.#pendingDiskClean = this.#firstSeq;
    // Removes of single messages: each may copy a leaf of its own.
    for (const [seq, tomb] of this.#tombs) {
      assert(tomb.generation <= generation, 'tombs of later generations cannot exist before their burst');
      const key = messageKey(this.streamId, seq);
      const isScrubbed = tomb.erase && this.#collectScrub(key, this.#view.get(this.#messagesDb, key), ops, 1);
      ops.push({ kind: 'remove', db: this.#messagesDb, key, copies: isScrubbed ? 0 : 1 });
      const copies = indexOpCopies(indexKeys, tomb.subject, seq);
      ops.push({ kind: 'remove-value', db: this.#subjectsDb, key: this.#chunkKey(tomb.subject, seq), value: subjectLowValue(seq), copies });
    }
    const kept: TailEntry[] = [];
    for (const entry of this.#tail) {
      assert(entry.generation === generation, 'the tail only holds writes of the generation being collected');
      if (entry.isDead) {
        this.#tailBySeq.delete(entry.seq);
        continue;
      }
      entry.isWritten = true;
      // Appends go in sequence order to the end of the stream's key range: the first copies that leaf, the rest is new pages.
      ops.push({ kind: 'put', db: this.#messagesDb, key: entry.key, value: entry.record, copies: kept.length === 0 ? 1 : 0 });
      kept.push(entry);
      const copies = indexOpCopies(indexKeys, entry.subject, entry.seq);
      ops.push({ kind: 'put', db: this.#subjectsDb, key: this.#chunkKey(entry.subject, entry.seq), value: subjectLowValue(entry.seq), copies });
    }
    this.#tail = kept;
    ops.push({ kind: 'put', db: this.#statesDb, key: streamIdKey(this.streamId), value: encodeStreamState(this.#counters()) });
  }

  committed(generation: number): void {
    if (this.#isClosed) return;
    this.#diskClean = this.#pendingDiskClean;
    let done = 0;
    for (; done < this.#tail.length && this.#tail[done]!.generation <= generation; done++) {
      const entry = this.#tail[done]!;
      this.#tailBySeq.delete(entry.seq);
      // Removed while its write was in flight: it is on disk now, so it needs deleting.
      if (entry.isDead) this.#buryWritten(entry);
      else this.#decrementTailLive(entry.subject);
    }
    if (done > 0) this.#tail = this.#tail.slice(done);
    for (const [subject, entries] of this.#tailBySubject) {
      let shift = 0;
      while (shift < entries.length && entries[shift]!.generation <= generation) shift++;
      if (shift === entries.length) this.#tailBySubject.delete(subject);
      else if (shift > 0) entries.splice(0, shift);
    }
    for (const [seq, tomb] of this.#tombs) if (tomb.generation <= generation) this.#dropTomb(seq, tomb);
  }

  failed(_error: StoreError): void {
    if (this.#isClosed) return;
    const assignedLastSeq = this.#lastSeq;
    const assignedLastTimestampNs = this.#lastTimestampNs;
    const stored = this.#view.get(this.#statesDb, streamIdKey(this.streamId));
    const state = stored === undefined ? EMPTY_STATE : decodeStreamState(stored, this.name);
    this.#setCounters(state);
    this.#diskClean = state.firstSeq;
    this.#tail = [];
    this.#tailBySeq.clear();
    this.#tailBySubject.clear();
    this.#tailLive.clear();
    this.#tombs.clear();
    this.#tombCounts.clear();
    this.#belowFloor.clear();
    // Sequences handed out are never reused: failed appends become deleted sequences (README "Write failures").
    if (assignedLastSeq > state.lastSeq) {
      this.#lastSeq = assignedLastSeq;
      this.#lastTimestampNs = assignedLastTimestampNs;
      if (this.#messages === 0) {
        this.#firstSeq = assignedLastSeq + 1;
        this.#firstTimestampNs = 0n;
      }
    }
    if (stored === undefined || assignedLastSeq > state.lastSeq) this.#pipeline.markDirtyQuietly(this);
  }

  // ---- counters ----

  #counters(): StreamStateRecord {
    return {
      firstSeq: this.#firstSeq,
      lastSeq: this.#lastSeq,
      messages: this.#messages,
      bytes: this.#bytes,
      numSubjects: this.#numSubjects,
      firstTimestampNs: this.#firstTimestampNs,
      lastTimestampNs: this.#lastTimestampNs,
    };
  }

  #setCounters(state: StreamStateRecord): void {
    this.#firstSeq = state.firstSeq;
    this.#lastSeq = state.lastSeq;
    this.#messages = state.messages;
    this.#bytes = state.bytes;
    this.#numSubjects = state.numSubjects;
    this.#firstTimestampNs = state.firstTimestampNs;
    this.#lastTimestampNs = state.lastTimestampNs;
  }

  #checkOpen(): void {
    if (this.#isClosed) throw new StoreError(StoreErrorCode.closed, `stream store ${this.name} is closed`);
  }

  #closeNow(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#tail = [];
    this.#tailBySeq.clear();
    this.#tailBySubject.clear();
    this.#tombs.clear();
    this.#belowFloor.clear();
    this.#onClose(this);
  }

  // ---- removal ----

  /** Removes one live message (tail or disk); returns its subject, undefined when it was not live. */
  #removeOne(seq: number, erase: boolean): string | undefined {
    const entry = this.#tailBySeq.get(seq);
    if (entry !== undefined) {
      if (entry.isDead) return undefined;
      this.#killTailEntry(entry);
      if (erase) {
        entry.isErased = true;
        // A record already handed to LMDB must stay intact until written; it is scrubbed on disk later.
        if (!entry.isWritten) randomFillSync(entry.record);
      }
      return entry.subject;
    }
    if (this.#tombs.has(seq)) return undefined;
    const key = messageKey(this.streamId, seq);
    const record = this.#view.get(this.#messagesDb, key);
    if (record === undefined) return undefined;
    const { subject, bytes } = this.#accountingOf(key, record);
    this.#tombs.set(seq, { subject, generation: this.#pipeline.pendingGeneration, erase });
    this.#tombCounts.set(subject, (this.#tombCounts.get(subject) ?? 0) + 1);
    this.#messages--;
    this.#bytes -= bytes;
    return subject;
  }

  /**
   * Subject and accounted bytes of a disk record being removed. Removing is how an operator
   * gets rid of a damaged record, so one that fails its checksum is still accounted: its
   * subject comes from the index, its size from its layout (or length) in the record.
   */
  #accountingOf(key: Buffer, record: Buffer): { subject: string; bytes: number } {
    if (isMessageRecordIntact(key, record)) {
      const message = decodeMessageRecord(key, record);
      return { subject: message.subject, bytes: fileStoreMessageBytes(message.subject.length, message.headers?.length ?? 0, message.data.length) };
    }
    const seq = seqOfMessageKey(key);
    const subject = this.#subjectOfSeqFromIndex(seq);
    if (subject === undefined) throw new StoreError(StoreErrorCode.corrupt, `message ${seq} failed its checksum and is not in the subject index`);
    const layout = readMessageLayout(record);
    if (layout !== undefined && layout.subject === subject) {
      return { subject, bytes: fileStoreMessageBytes(subject.length, layout.headersLength, layout.dataLength) };
    }
    const dataLength = Math.max(0, record.length - 14 - Buffer.byteLength(subject, 'utf8'));
    return { subject, bytes: fileStoreMessageBytes(subject.length, 0, dataLength) };
  }

  /** The subject under which the index holds `seq` (reads every index key of its chunk: for damaged records only). */
  #subjectOfSeqFromIndex(seq: number): string | undefined {
    const chunk = chunkOf(seq);
    const low = subjectLowValue(seq);
    for (const rawKey of this.#view.keys(this.#subjectsDb, { start: streamIdKey(this.streamId), end: streamIdKey(this.streamId + 1) })) {
      const key = Buffer.from(rawKey);
      const parsed = parseSubjectKey(key);
      if (parsed.chunk !== chunk || this.#view.valuesCount(this.#subjectsDb, key, { start: low, end: low, inclusiveEnd: true }) === 0) continue;
      return parsed.subject ?? this.#subjectOfHashedKey(key, chunk);
    }
    return undefined;
  }

  #killTailEntry(entry: TailEntry): void {
    entry.isDead = true;
    this.#decrementTailLive(entry.subject);
    this.#messages--;
    this.#bytes -= entry.bytes;
  }

  #decrementTailLive(subject: string): void {
    const live = this.#tailLive.get(subject)! - 1;
    assert(live >= 0, 'live tail counts are never negative');
    if (live === 0) this.#tailLive.delete(subject);
    else this.#tailLive.set(subject, live);
  }

  /** A dead entry whose record reached disk: tomb it (or leave it to the floor deletion). */
  #buryWritten(entry: TailEntry): void {
    if (entry.seq >= this.#firstSeq) {
      this.#tombs.set(entry.seq, { subject: entry.subject, generation: this.#pipeline.pendingGeneration, erase: entry.isErased });
      this.#tombCounts.set(entry.subject, (this.#tombCounts.get(entry.subject) ?? 0) + 1);
    } else {
      this.#belowFloor.set(entry.seq, { subject: entry.subject, erase: entry.isErased });
    }
    this.#pipeline.markDirty(this);
  }

  #dropTomb(seq: number, tomb: Tomb): void {
    this.#tombs.delete(seq);
    const count = this.#tombCounts.get(tomb.subject)! - 1;
    if (count === 0) this.#tombCounts.delete(tomb.subject);
    else this.#tombCounts.set(tomb.subject, count);
  }

  /** Moves firstSeq to the first live message at or after `from` (lastSeq + 1 when empty). */
  #advanceFirst(from: number): void {
    if (this.#messages === 0) {
      this.#firstSeq = this.#lastSeq + 1;
      this.#firstTimestampNs = 0n;
    } else {
      const next = this.#nextLiveSeq(from);
      assert(next !== undefined, 'a non-empty stream has a live message after its first');
      this.#firstSeq = next;
      this.#firstTimestampNs = this.#timestampOf(next);
    }
    for (const [seq, tomb] of this.#tombs) {
      if (seq >= this.#firstSeq) continue;
      this.#dropTomb(seq, tomb);
      this.#belowFloor.set(seq, { subject: tomb.subject, erase: tomb.erase });
    }
  }

  #timestampOf(seq: number): bigint {
    const entry = this.#tailBySeq.get(seq);
    if (entry !== undefined) return entry.timestampNs;
    const record = this.#view.get(this.#messagesDb, messageKey(this.streamId, seq));
    return record !== undefined && record.length >= 8 ? record.readBigUInt64BE(0) : 0n;
  }

  /** Purge everything, and when `seq > lastSeq + 1` move the sequences so the next append gets `seq`. */
  #compactPast(seq: number): number {
    const purged = this.#messages;
    for (const entry of this.#tail) if (!entry.isDead) this.#killTailEntry(entry);
    this.#messages = 0;
    this.#bytes = 0;
    this.#numSubjects = 0;
    this.#lastSeq = Math.max(this.#lastSeq, seq - 1);
    this.#advanceFirst(this.#lastSeq + 1);
    return purged;
  }

  /** Removes every live message below `seq` (firstSeq < seq <= lastSeq). */
  #compact(seq: number): number {
    if (seq <= this.#firstSeq) return 0;
    // Pass 1 reads what the disk part removes, so an unaccountable record throws before anything changes.
    let purged = 0;
    let bytes = 0;
    const subjects = new Set<string>();
    const range = { start: messageKey(this.streamId, this.#firstSeq), end: messageKey(this.streamId, seq) };
    for (const { key, value } of this.#view.range(this.#messagesDb, range)) {
      if (this.#tombs.has(seqOfMessageKey(key))) continue;
      const accounting = this.#accountingOf(Buffer.from(key), value);
      bytes += accounting.bytes;
      subjects.add(accounting.subject);
      purged++;
    }
    this.#messages -= purged;
    this.#bytes -= bytes;
    for (const entry of this.#tail) {
      if (entry.seq >= seq) break;
      if (entry.isDead) continue;
      this.#killTailEntry(entry);
      subjects.add(entry.subject);
      purged++;
    }
    this.#advanceFirst(seq);
    for (const subject of subjects) if (!this.#hasLiveMessage(subject)) this.#numSubjects--;
    return purged;
  }

  #purgeFiltered(filter: CompiledFilter, seqBelow: number, keep: number): number {
    let limit = Infinity;
    if (keep > 0) {
      const total = this.#count(filter, this.#firstSeq);
      if (keep >= total) return 0;
      limit = total - keep;
    }
    const seqs: number[] = [];
    for (const subject of this.#summaries(filter, this.#firstSeq, false).keys()) {
      for (const seq of this.#liveSeqsOfSubject(subject, seqBelow)) seqs.push(seq);
    }
    seqs.sort((a, b) => a - b);
    const removable = Math.min(limit, seqs.length);
    const subjects = new Set<string>();
    for (let i = 0; i < removable; i++) {
      const subject = this.#removeOne(seqs[i]!, false);
      assert(subject !== undefined, 'a listed live message can be removed');
      subjects.add(subject);
    }
    for (const subject of subjects) if (!this.#hasLiveMessage(subject)) this.#numSubjects--;
    if (removable > 0 && seqs[0] === this.#firstSeq) this.#advanceFirst(this.#firstSeq);
    return removable;
  }

  // ---- reads ----

  #loadLive(seq: number | undefined): StoredMessage | undefined {
    if (seq === undefined) return undefined;
    const message = this.load(seq);
    assert(message !== undefined, 'a sequence found live must load');
    return message;
  }

  /** The first live sequence >= from. */
  #nextLiveSeq(from: number): number | undefined {
    const start = Math.max(from, this.#firstSeq);
    for (const key of this.#view.keys(this.#messagesDb, { start: messageKey(this.streamId, start), end: messagesEndKey(this.streamId) })) {
      const seq = seqOfMessageKey(key);
      if (!this.#tombs.has(seq)) return seq;
    }
    for (const entry of this.#tail) if (!entry.isDead && entry.seq >= start) return entry.seq;
    return undefined;
  }

  /** The last live sequence <= from. */
  #previousLiveSeq(from: number): number | undefined {
    for (let i = this.#tail.length - 1; i >= 0; i--) {
      const entry = this.#tail[i]!;
      if (!entry.isDead && entry.seq <= from && entry.seq >= this.#firstSeq) return entry.seq;
    }
    const range = { start: messageKey(this.streamId, from), end: streamIdKey(this.streamId), reverse: true };
    for (const key of this.#view.keys(this.#messagesDb, range)) {
      const seq = seqOfMessageKey(key);
      if (seq < this.#firstSeq) return undefined;
      if (!this.#tombs.has(seq)) return seq;
    }
    return undefined;
  }

  #lastDiskKey(): Uint8Array | undefined {
    const range = { start: messagesEndKey(this.streamId), end: streamIdKey(this.streamId), reverse: true, limit: 1 };
    for (const key of this.#view.keys(this.#messagesDb, range)) return key;
    return undefined;
  }

  /** Linear scan from `start` for the first message matching a wildcard filter. */
  #scanNext(filter: CompiledFilter, start: number): StoredMessage | undefined {
    const range = { start: messageKey(this.streamId, start), end: messagesEndKey(this.streamId) };
    for (const { key, value } of this.#view.range(this.#messagesDb, range)) {
      const seq = seqOfMessageKey(key);
      if (this.#tombs.has(seq)) continue;
      // Every record passed over is checked too: a damaged one is reported, not skipped.
      const message = decodeMessageRecord(key, value);
      if (filterMatches(filter, message.subject)) return message;
    }
    for (const entry of this.#tail) {
      if (!entry.isDead && entry.seq >= start && filterMatches(filter, entry.subject)) return this.#loadLive(entry.seq);
    }
    return undefined;
  }

  /** Live messages with seq >= fromSeq passing the filter. */
  #count(filter: CompiledFilter, fromSeq: number): number {
    const start = Math.max(fromSeq, this.#firstSeq);
    if (this.#messages === 0 || start > this.#lastSeq) return 0;
    if (filter.kind === 'all') {
      if (start === this.#firstSeq) return this.#messages;
      if (this.#lastSeq - this.#firstSeq + 1 === this.#messages) return this.#lastSeq - start + 1;
      let count = this.#view.count(this.#messagesDb, { start: messageKey(this.streamId, start), end: messagesEndKey(this.streamId) });
      for (const seq of this.#tombs.keys()) if (seq >= start) count--;
      for (const entry of this.#tail) if (!entry.isDead && entry.seq >= start) count++;
      return count;
    }
    let count = 0;
    for (const summary of this.#summaries(filter, start, false).values()) count += summary.count;
    return count;
  }

  /**
   * Live subjects passing the filter with their live messages at or after
   * `start` (start >= firstSeq) and, when `needLast`, their newest sequence:
   * the index's and the tail's, each subject once, zero counts left out.
   */
  #summaries(filter: CompiledFilter, start: number, needLast: boolean): Map<string, SubjectSummary> {
    const summaries = new Map<string, SubjectSummary>();
    if (filter.kind === 'literals') {
      for (const subject of filter.subjects) {
        const count = this.#subjectCount(subject, start);
        if (count > 0) summaries.set(subject, { count, last: needLast ? (this.#lastOfSubject(subject) ?? 0) : 0 });
      }
      return summaries;
    }
    // Few messages per subject (KV): one pass over every index entry; else one count per index key.
    if (this.#messages <= this.#numSubjects * SMALL_SUBJECT_MESSAGES) this.#scanIndexEntries(filter, start, summaries);
    else this.#scanIndexKeys(filter, start, needLast, summaries);
    for (const [subject, entries] of this.#tailBySubject) {
      if (!filterMatches(filter, subject)) continue;
      for (const entry of entries) {
        if (entry.isDead || entry.seq < start) continue;
        const summary = summaries.get(subject);
        if (summary === undefined) summaries.set(subject, { count: 1, last: entry.seq });
        else {
          summary.count++;
          summary.last = entry.seq;
        }
      }
    }
    return summaries;
  }

  /** Every (key, value) of the stream's index, counted in JS. */
  #scanIndexEntries(filter: CompiledFilter, start: number, summaries: Map<string, SubjectSummary>): void {
    const range = { start: streamIdKey(this.streamId), end: streamIdKey(this.streamId + 1) };
    let currentKey: Uint8Array | undefined;
    let chunk = 0;
    let summary: SubjectSummary | undefined;
    for (const { key, value } of this.#view.range(this.#subjectsDb, range)) {
      if (currentKey === undefined || !sameBytes(currentKey, key)) {
        currentKey = key;
        const parsed = parseSubjectKey(key);
        chunk = parsed.chunk;
        const subject = parsed.subject ?? this.#subjectOfHashedKey(key, chunk);
        summary = undefined;
        if (subject !== undefined && filterMatches(filter, subject)) {
          summary = summaries.get(subject);
          if (summary === undefined) {
            summary = { count: 0, last: 0 };
            summaries.set(subject, summary);
          }
        }
      }
      if (summary === undefined) continue;
      const seq = seqOfSubjectValue(chunk, value);
      if (seq < start || this.#tombs.has(seq)) continue;
      summary.count++;
      summary.last = seq;
    }
    for (const [subject, found] of summaries) if (found.count === 0) summaries.delete(subject);
  }

  /** One native count per index key of a matching subject (few subjects, many messages each). */
  #scanIndexKeys(filter: CompiledFilter, start: number, needLast: boolean, summaries: Map<string, SubjectSummary>): void {
    const range = { start: streamIdKey(this.streamId), end: streamIdKey(this.streamId + 1) };
    const firstChunk = chunkOf(start);
    let previous: Uint8Array | undefined;
    let previousPrefixLength = -1;
    let summary: SubjectSummary | undefined;
    for (const rawKey of this.#view.keys(this.#subjectsDb, range)) {
      const key = Buffer.from(rawKey.buffer, rawKey.byteOffset, rawKey.length);
      const parsed = parseSubjectKey(key);
      if (previous === undefined || parsed.prefixLength !== previousPrefixLength || !samePrefix(previous, key, parsed.prefixLength)) {
        previous = key;
        previousPrefixLength = parsed.prefixLength;
        const subject = parsed.subject ?? this.#subjectOfHashedKey(key, parsed.chunk);
        summary = undefined;
        if (subject !== undefined && filterMatches(filter, subject)) {
          summary = { count: 0, last: 0 };
          summaries.set(subject, summary);
        }
      }
      if (summary === undefined || parsed.chunk < firstChunk) continue;
      summary.count +=
        parsed.chunk === firstChunk ? this.#view.valuesCount(this.#subjectsDb, key, { start: subjectLowValue(start) }) : this.#view.valuesCount(this.#subjectsDb, key);
    }
    for (const [seq, tomb] of this.#tombs) {
      const found = seq >= start ? summaries.get(tomb.subject) : undefined;
      if (found !== undefined) found.count--;
    }
    for (const [subject, found] of summaries) {
      if (found.count === 0) summaries.delete(subject);
      else if (needLast) found.last = this.#lastOfSubject(subject) ?? 0;
    }
  }

  /**
   * The newest message matching a wildcard filter, by reading backwards from
   * lastSeq: 0 when none, undefined when LAST_SCAN_RECORDS_MAX records were
   * read without an answer (then the index answers).
   */
  #scanLast(filter: CompiledFilter): number | undefined {
    for (let i = this.#tail.length - 1; i >= 0; i--) {
      const entry = this.#tail[i]!;
      if (!entry.isDead && entry.seq >= this.#firstSeq && filterMatches(filter, entry.subject)) return entry.seq;
    }
    let read = 0;
    const range = { start: messageKey(this.streamId, this.#lastSeq), end: streamIdKey(this.streamId), reverse: true };
    for (const { key, value } of this.#view.range(this.#messagesDb, range)) {
      const seq = seqOfMessageKey(key);
      if (seq < this.#firstSeq) return 0;
      if (++read > LAST_SCAN_RECORDS_MAX) return undefined;
      if (this.#tombs.has(seq)) continue;
      if (filterMatches(filter, decodeMessageRecord(key, value).subject)) return seq;
    }
    return 0;
  }

  /** A hashed index key names its subject through any of its messages. */
  #subjectOfHashedKey(key: Uint8Array, chunk: number): string | undefined {
    for (const value of this.#view.values(this.#subjectsDb, Buffer.from(key), { limit: 1 })) {
      const key = messageKey(this.streamId, seqOfSubjectValue(chunk, value));
      const record = this.#view.get(this.#messagesDb, key);
      return record === undefined ? undefined : decodeMessageRecord(key, record).subject;
    }
    return undefined;
  }

  #prefix(subject: string): Buffer {
    let prefix = this.#prefixes.get(subject);
    if (prefix === undefined) {
      if (this.#prefixes.size >= PREFIX_CACHE_ENTRIES_MAX) this.#prefixes.clear();
      prefix = subjectPrefix(this.streamId, subject);
      this.#prefixes.set(subject, prefix);
    }
    return prefix;
  }

  #chunkKey(subject: string, seq: number): Buffer {
    return subjectChunkKey(this.#prefix(subject), chunkOf(seq));
  }

  /** Index sequences of `subject` >= from, ascending, excluding tombs and the dead below the floor. */
  *#diskSeqsAscending(subject: string, from: number): Generator<number> {
    const start = Math.max(from, this.#firstSeq);
    const prefix = this.#prefix(subject);
    const firstChunk = chunkOf(start);
    const keys = { start: subjectChunkKey(prefix, firstChunk), end: subjectChunkKeyMax(prefix), inclusiveEnd: true };
    for (const chunkKey of this.#view.keys(this.#subjectsDb, keys)) {
      const chunk = Buffer.from(chunkKey).readUIntBE(prefix.length, SUBJECT_CHUNK_BYTES);
      const values = chunk === firstChunk ? { start: subjectLowValue(start) } : undefined;
      for (const value of this.#view.values(this.#subjectsDb, Buffer.from(chunkKey), values)) {
        const seq = seqOfSubjectValue(chunk, value);
        if (seq >= start && !this.#tombs.has(seq)) yield seq;
      }
    }
  }

  /** Index sequences of `subject`, descending from the newest, down to firstSeq. */
  *#diskSeqsDescending(subject: string): Generator<number> {
    const prefix = this.#prefix(subject);
    const keys = { start: subjectChunkKeyMax(prefix), end: prefix, reverse: true };
    for (const chunkKey of this.#view.keys(this.#subjectsDb, keys)) {
      const chunk = Buffer.from(chunkKey).readUIntBE(prefix.length, SUBJECT_CHUNK_BYTES);
      for (const value of this.#view.values(this.#subjectsDb, Buffer.from(chunkKey), { reverse: true })) {
        const seq = seqOfSubjectValue(chunk, value);
        if (seq < this.#firstSeq) return;
        if (!this.#tombs.has(seq)) yield seq;
      }
    }
  }

  #firstOfSubject(subject: string, start: number): number | undefined {
    for (const seq of this.#diskSeqsAscending(subject, start)) return seq;
    const entries = this.#tailBySubject.get(subject);
    if (entries !== undefined) for (const entry of entries) if (!entry.isDead && entry.seq >= start) return entry.seq;
    return undefined;
  }

  #lastOfSubject(subject: string): number | undefined {
    const entries = this.#tailBySubject.get(subject);
    if (entries !== undefined) {
      for (let i = entries.length - 1; i >= 0; i--) if (!entries[i]!.isDead && entries[i]!.seq >= this.#firstSeq) return entries[i]!.seq;
    }
    for (const seq of this.#diskSeqsDescending(subject)) return seq;
    return undefined;
  }

  /** Live sequences of `subject` below `seqBelow`, ascending. */
  #liveSeqsOfSubject(subject: string, seqBelow: number): number[] {
    const seqs: number[] = [];
    for (const seq of this.#diskSeqsAscending(subject, this.#firstSeq)) {
      if (seq >= seqBelow) break;
      seqs.push(seq);
    }
    // Tail sequences are above every disk sequence of the view: the list stays ascending.
    const entries = this.#tailBySubject.get(subject);
    if (entries !== undefined) for (const entry of entries) if (!entry.isDead && entry.seq < seqBelow) seqs.push(entry.seq);
    return seqs;
  }

  /** Live messages of `subject` with seq >= from (from >= firstSeq). */
  #subjectCount(subject: string, from: number): number {
    const prefix = this.#prefix(subject);
    let count = 0;
    if (from <= this.#firstSeq && this.#diskClean >= this.#firstSeq) {
      // No index entry is below firstSeq: one native count over the subject's keys.
      count = this.#view.count(this.#subjectsDb, { start: prefix, end: subjectChunkKeyMax(prefix), inclusiveEnd: true });
    } else {
      const firstChunk = chunkOf(from);
      const keys = { start: subjectChunkKey(prefix, firstChunk), end: subjectChunkKeyMax(prefix), inclusiveEnd: true };
      for (const chunkKey of this.#view.keys(this.#subjectsDb, keys)) {
        const key = Buffer.from(chunkKey);
        const chunk = key.readUIntBE(prefix.length, SUBJECT_CHUNK_BYTES);
        count += chunk === firstChunk ? this.#view.valuesCount(this.#subjectsDb, key, { start: subjectLowValue(from) }) : this.#view.valuesCount(this.#subjectsDb, key);
      }
    }
    if (from <= this.#firstSeq) {
      count -= this.#tombCounts.get(subject) ?? 0;
    } else {
      for (const [seq, tomb] of this.#tombs) if (seq >= from && tomb.subject === subject) count--;
    }
    const entries = this.#tailBySubject.get(subject);
    if (entries !== undefined) for (const entry of entries) if (!entry.isDead && entry.seq >= from) count++;
    return count;
  }

  /**
   * Does `subject` have any live message? Asked on every append whose subject has nothing in the
   * tail: it stops at the first live sequence (counting them walked every index entry of the
   * subject: O(messages of the subject) per publish, and reads from disk once the index no longer
   * fits in memory).
   */
  #hasLiveMessage(subject: string): boolean {
    return (this.#tailLive.get(subject) ?? 0) > 0 || this.#firstOfSubject(subject, this.#firstSeq) !== undefined;
  }

  // ---- commit ----

  /** Deletes every disk record below the floor, and its index entry. */
  /** Everything below the floor: one range of message keys, whose removes copy nothing after the first (WriteOp `copies`). */
  #collectFloorDeletes(ops: WriteOp[], indexKeys: Map<string, number>): void {
    const lastKey = this.#lastDiskKey();
    if (lastKey === undefined) return;
    const range = { start: messageKey(this.streamId, this.#diskClean), end: messageKey(this.streamId, this.#firstSeq) };
    if (seqOfMessageKey(lastKey) < this.#firstSeq) {
      // Everything on disk is dead (purge): drop the stream's whole index, key by key, records by key only.
      for (const [seq, dead] of this.#belowFloor) {
        if (dead.erase) this.#collectScrub(messageKey(this.streamId, seq), this.#view.get(this.#messagesDb, messageKey(this.streamId, seq)), ops, 1);
      }
      const indexRange = { start: streamIdKey(this.streamId), end: streamIdKey(this.streamId + 1) };
      let copies = 1;
      for (const key of this.#view.keys(this.#subjectsDb, indexRange)) {
        ops.push({ kind: 'remove', db: this.#subjectsDb, key: Buffer.from(key), copies });
        copies = 0;
      }
      copies = 1;
      for (const key of this.#view.keys(this.#messagesDb, range)) {
        ops.push({ kind: 'remove', db: this.#messagesDb, key: Buffer.from(key), copies });
        copies = 0;
      }
      return;
    }
    let copies = 1;
    for (const { key, value } of this.#view.range(this.#messagesDb, range)) {
      const seq = seqOfMessageKey(key);
      const dead = this.#belowFloor.get(seq);
      if (dead?.erase === true) this.#collectScrub(Buffer.from(key), value, ops, copies);
      ops.push({ kind: 'remove', db: this.#messagesDb, key: Buffer.from(key), copies });
      copies = 0;
      // A damaged record cannot name its subject: its index entry stays below the floor, where no read counts it.
      const subject = dead?.subject ?? (isMessageRecordIntact(key, value) ? readMessageLayout(value)?.subject : undefined);
      if (subject !== undefined) {
        const indexCopies = indexOpCopies(indexKeys, subject, seq);
        ops.push({ kind: 'remove-value', db: this.#subjectsDb, key: this.#chunkKey(subject, seq), value: subjectLowValue(seq), copies: indexCopies });
      }
    }
  }

  /**
   * Erase: rewrite the record with random headers and payload in the same
   * transaction that deletes it, so the page written by that transaction holds
   * no copy of them. LMDB never overwrites a committed page in place: the page
   * the record was on is freed and keeps the old bytes until LMDB reuses it.
   * Returns whether it wrote (the remove that follows then copies nothing more).
   */
  #collectScrub(key: Buffer, record: Buffer | undefined, ops: WriteOp[], copies: number): boolean {
    if (record === undefined) return false;
    ops.push({ kind: 'put', db: this.#messagesDb, key, value: scrubMessageRecord(record, randomFillSync), copies });
    return true;
  }
}

/**
 * Pages an op on a subject-index key may copy: the key's leaf, and when the
 * key has many duplicates (more than fit in half a page), the leaf and the root
 * of its own sub-tree of duplicates, which the tree's statistics do not count.
 */
const SUBJECT_INDEX_OP_COPIES = 3;

/**
 * Pages an op on the subject-index key of (subject, seq) may copy: none when
 * this collection already wrote that key (its pages are copied already), else
 * {@link SUBJECT_INDEX_OP_COPIES}. Records the key.
 */
function indexOpCopies(indexKeys: Map<string, number>, subject: string, seq: number): number {
  const chunk = chunkOf(seq);
  if (indexKeys.get(subject) === chunk) return 0;
  indexKeys.set(subject, chunk);
  return SUBJECT_INDEX_OP_COPIES;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && samePrefix(a, b, a.length);
}

function samePrefix(a: Uint8Array, b: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}
