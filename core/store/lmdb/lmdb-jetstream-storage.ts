/**
 * {@link JetStreamStorage} over one LMDB environment at `<store_dir>/jetstream`
 * (opened once per process). File streams are {@link LmdbStreamStore}s;
 * memory streams are {@link MemoryStreamStore}s whose metadata and consumer
 * state also stay in memory, so they vanish on restart (nats-server keeps no
 * files for memory streams either).
 *
 * Metadata writes ride the same group commit as messages. Until committed they
 * sit in an overlay that reads consult first (pending, then in flight, then
 * disk), so `loadStreamMetas()` right after `saveStreamMeta()` sees the save.
 * `saveConsumerState()` only records the latest state per consumer: however
 * often it is called, one record per consumer goes into each commit.
 */
import { resolve as resolvePath, join } from 'node:path';
import type {
  ConsumerStateRecord,
  JetStreamStorage,
  StorageKind,
  StreamStore,
  SyncPolicy,
} from '../../jetstream/store.ts';
import { assert } from '../../util/assert.ts';
import { MemoryStreamStore } from '../memory/memory-stream-store.ts';
import { CommitPipeline, closedError, type CommitParticipant, type WriteOp } from './commit-pipeline.ts';
import { decodeConsumerState, encodeConsumerState } from './codec.ts';
import { openLmdbDatabases, type LmdbDatabases } from './env.ts';
import { messagesEndKey, messageKey, streamIdKey, STREAM_ID_MAX } from './keys.ts';
import { LmdbStreamStore } from './lmdb-stream-store.ts';

/** Environments open in this process: LMDB must not be opened twice by one process (RELIABILITY.md §3.1). */
const OPEN_PATHS = new Set<string>();
const NEXT_STREAM_ID_KEY = 'next-stream-id';
/** `meta` key: ids of deleted streams whose keys are still being removed (JSON array). */
const DROPPING_KEY = 'dropping';
/**
 * Keys of deleted streams removed per commit. A deleted stream's messages and index are
 * removed over several commits, so that deleting a stream of millions of messages never
 * builds one huge batch (measured before: 703 MB RSS to delete 1 M messages in one).
 */
const DROP_KEYS_PER_COMMIT = 16_384;
const FORMAT_KEY = 'format';
const FORMAT_VERSION = 1;

type ConsumerKey = [stream: string, consumer: string];
type LinkStateKey = [stream: string, origin: string];

/** A pending write of one metadata record: a value, or a delete. */
type Pending<K, V> = { readonly key: K; readonly value: V | undefined };

/** One layer of not-yet-durable metadata writes. */
class MetaLayer {
  readonly streamIds = new Map<string, number | undefined>();
  readonly streamMetas = new Map<string, Record<string, unknown> | undefined>();
  readonly consumerMetas = new Map<string, Pending<ConsumerKey, Record<string, unknown>>>();
  readonly consumerStates = new Map<string, Pending<ConsumerKey, ConsumerStateRecord>>();
  readonly linkStates = new Map<string, Pending<LinkStateKey, Record<string, unknown>>>();
  /** Stream ids whose messages, index and state are to be deleted. */
  readonly drops = new Set<number>();
  nextStreamId: number | undefined;

  get isEmpty(): boolean {
    return (
      this.streamIds.size + this.streamMetas.size + this.consumerMetas.size + this.consumerStates.size + this.linkStates.size + this.drops.size === 0 &&
      this.nextStreamId === undefined
    );
  }
}

/** Memory streams' metadata (never written to disk). */
type MemoryStream = {
  store: MemoryStreamStore | undefined;
  meta: Record<string, unknown> | undefined;
  readonly consumerMetas: Map<string, Record<string, unknown>>;
  readonly consumerStates: Map<string, ConsumerStateRecord>;
  readonly linkStates: Map<string, Record<string, unknown>>;
};

export class LmdbJetStreamStorage implements JetStreamStorage, CommitParticipant {
  /** `<store_dir>/jetstream`. */
  readonly path: string;
  readonly #dbs: LmdbDatabases;
  readonly #pipeline: CommitPipeline;
  readonly #streams = new Map<string, LmdbStreamStore>();
  readonly #memoryStreams = new Map<string, MemoryStream>();
  /** Every file stream's id, including ids not yet committed. */
  readonly #streamIds = new Map<string, number>();
  #nextStreamId: number;
  #pending = new MetaLayer();
  #inflight = new MetaLayer();
  /** Deleted streams whose keys are still on disk (as in `meta.dropping`, plus this batch's new ones). */
  #dropping = new Set<number>();
  #isClosed = false;

  private constructor(path: string, dbs: LmdbDatabases) {
    this.path = path;
    this.#dbs = dbs;
    this.#pipeline = new CommitPipeline(dbs.root, path, dbs.space);
    for (const { key, value } of dbs.streamIds.getRange()) this.#streamIds.set(key, value);
    const next = dbs.meta.get(NEXT_STREAM_ID_KEY);
    this.#nextStreamId = typeof next === 'number' ? next : 1;
    if (dbs.meta.get(FORMAT_KEY) === undefined) {
      this.#pending.nextStreamId = this.#nextStreamId;
      this.#pipeline.markDirty(this);
    }
    // Removal of deleted streams' keys carries on where a stop (or crash) left it.
    this.#dropping = this.#droppingOnDisk();
    if (this.#dropping.size > 0) this.#pipeline.markDirty(this);
  }

  /** Deleted streams whose keys are still being removed (in the background, DROP_KEYS_PER_COMMIT per commit). */
  get droppingStreams(): number {
    return this.#dropping.size;
  }

  #droppingOnDisk(): Set<number> {
    const ids = this.#dbs.meta.get(DROPPING_KEY);
    return new Set(Array.isArray(ids) ? ids.filter((id): id is number => typeof id === 'number') : []);
  }

  /**
   * Opens (creating if needed) `<storeDir>/jetstream`. Reads only the stream
   * ids here; each stream's counters are read when it is opened.
   */
  static open(storeDir: string, syncPolicy: SyncPolicy = 'always'): LmdbJetStreamStorage {
    const path = resolvePath(join(storeDir, 'jetstream'));
    assert(!OPEN_PATHS.has(path), `the JetStream store ${path} is already open in this process`);
    const dbs = openLmdbDatabases(path, syncPolicy);
    OPEN_PATHS.add(path);
    try {
      return new LmdbJetStreamStorage(path, dbs);
    } catch (err) {
      OPEN_PATHS.delete(path);
      void dbs.root.close();
      dbs.space.close();
      throw err;
    }
  }

  openStream(name: string, storage: StorageKind): StreamStore {
    this.#checkOpen();
    if (storage === 'memory') {
      const memory = this.#memoryStream(name);
      memory.store ??= new MemoryStreamStore();
      return memory.store;
    }
    const open = this.#streams.get(name);
    if (open !== undefined) return open;
    let streamId = this.#streamIds.get(name);
    if (streamId === undefined) {
      streamId = this.#nextStreamId++;
      assert(streamId <= STREAM_ID_MAX, 'stream ids exhausted');
      this.#streamIds.set(name, streamId);
      this.#pending.streamIds.set(name, streamId);
      this.#pending.nextStreamId = this.#nextStreamId;
      this.#pipeline.markDirty(this);
    }
    const store = LmdbStreamStore.open({
      name,
      streamId,
      databases: this.#dbs,
      pipeline: this.#pipeline,
      onClose: (closed) => {
        if (this.#streams.get(name) === closed) this.#streams.delete(name);
      },
    });
    this.#streams.set(name, store);
    return store;
  }

  deleteStream(name: string): Promise<void> {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(name);
    if (memory !== undefined) {
      this.#memoryStreams.delete(name);
      return memory.store?.close() ?? Promise.resolve();
    }
    this.#streams.get(name)?.discard();
    const streamId = this.#streamIds.get(name);
    if (streamId !== undefined) {
      this.#streamIds.delete(name);
      this.#pending.drops.add(streamId);
      this.#pending.streamIds.set(name, undefined);
    }
    this.#pending.streamMetas.set(name, undefined);
    for (const consumer of this.#consumerNames(name)) this.#deleteConsumerRecords(name, consumer);
    for (const origin of this.loadLinkStates(name).keys()) this.#pending.linkStates.set(recordId(name, origin), { key: [name, origin], value: undefined });
    this.#pipeline.markDirty(this);
    return this.#pipeline.flushed();
  }

  saveStreamMeta(name: string, meta: Record<string, unknown>): Promise<void> {
    this.#checkOpen();
    if (this.#isMemoryStream(name, meta)) {
      this.#memoryStream(name).meta = meta;
      return Promise.resolve();
    }
    this.#pending.streamMetas.set(name, meta);
    this.#pipeline.markDirty(this);
    return this.#pipeline.flushed();
  }

  loadStreamMetas(): Map<string, Record<string, unknown>> {
    this.#checkOpen();
    const metas = new Map<string, Record<string, unknown>>();
    for (const { key, value } of this.#dbs.streamMetas.getRange()) metas.set(key, value);
    for (const layer of [this.#inflight, this.#pending]) {
      for (const [name, meta] of layer.streamMetas) {
        if (meta === undefined) metas.delete(name);
        else metas.set(name, meta);
      }
    }
    for (const [name, memory] of this.#memoryStreams) if (memory.meta !== undefined) metas.set(name, memory.meta);
    return metas;
  }

  saveConsumerMeta(stream: string, consumer: string, meta: Record<string, unknown>): Promise<void> {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(stream);
    if (memory !== undefined) {
      memory.consumerMetas.set(consumer, meta);
      return Promise.resolve();
    }
    this.#pending.consumerMetas.set(recordId(stream, consumer), { key: [stream, consumer], value: meta });
    this.#pipeline.markDirty(this);
    return this.#pipeline.flushed();
  }

  loadConsumerMetas(stream: string): Map<string, Record<string, unknown>> {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(stream);
    if (memory !== undefined) return new Map(memory.consumerMetas);
    const metas = new Map<string, Record<string, unknown>>();
    for (const { key, value } of this.#dbs.consumerMetas.getRange({ start: [stream] })) {
      if (key[0] !== stream) break;
      metas.set(key[1], value);
    }
    for (const layer of [this.#inflight, this.#pending]) {
      for (const { key, value } of layer.consumerMetas.values()) {
        if (key[0] !== stream) continue;
        if (value === undefined) metas.delete(key[1]);
        else metas.set(key[1], value);
      }
    }
    return metas;
  }

  deleteConsumer(stream: string, consumer: string): Promise<void> {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(stream);
    if (memory !== undefined) {
      memory.consumerMetas.delete(consumer);
      memory.consumerStates.delete(consumer);
      return Promise.resolve();
    }
    this.#deleteConsumerRecords(stream, consumer);
    this.#pipeline.markDirty(this);
    return this.#pipeline.flushed();
  }

  saveConsumerState(stream: string, consumer: string, state: ConsumerStateRecord): void {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(stream);
    if (memory !== undefined) {
      memory.consumerStates.set(consumer, state);
      return;
    }
    // Coalesced: only the latest state per consumer is written with the next commit.
    this.#pending.consumerStates.set(recordId(stream, consumer), { key: [stream, consumer], value: state });
    this.#pipeline.markDirty(this);
  }

  loadConsumerState(stream: string, consumer: string): ConsumerStateRecord | undefined {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(stream);
    if (memory !== undefined) return memory.consumerStates.get(consumer);
    const id = recordId(stream, consumer);
    const pending = this.#pending.consumerStates.get(id) ?? this.#inflight.consumerStates.get(id);
    if (pending !== undefined) return pending.value;
    const record = this.#dbs.consumerStates.getBinary([stream, consumer]);
    return record === undefined ? undefined : decodeConsumerState(record, `${stream} > ${consumer}`);
  }

  saveLinkState(stream: string, origin: string, state: Record<string, unknown> | undefined): void {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(stream);
    if (memory !== undefined) {
      if (state === undefined) memory.linkStates.delete(origin);
      else memory.linkStates.set(origin, state);
      return;
    }
    // Coalesced like consumer states; in the same commit as the stream's writes of this turn.
    this.#pending.linkStates.set(recordId(stream, origin), { key: [stream, origin], value: state });
    this.#pipeline.markDirty(this);
  }

  loadLinkStates(stream: string): Map<string, Record<string, unknown>> {
    this.#checkOpen();
    const memory = this.#memoryStreams.get(stream);
    if (memory !== undefined) return new Map(memory.linkStates);
    const states = new Map<string, Record<string, unknown>>();
    for (const { key, value } of this.#dbs.linkStates.getRange({ start: [stream] })) {
      if (key[0] !== stream) break;
      states.set(key[1], value);
    }
    for (const layer of [this.#inflight, this.#pending]) {
      for (const { key, value } of layer.linkStates.values()) {
        if (key[0] !== stream) continue;
        if (value === undefined) states.delete(key[1]);
        else states.set(key[1], value);
      }
    }
    return states;
  }

  flushed(): Promise<void> {
    if (this.#isClosed) return Promise.reject(closedError('jetstream storage'));
    return this.#pipeline.flushed();
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    for (const store of [...this.#streams.values()]) await store.close().catch(() => undefined);
    for (const memory of this.#memoryStreams.values()) await memory.store?.close();
    await this.#pipeline.close();
    await this.#dbs.root.close();
    this.#dbs.space.close();
    OPEN_PATHS.delete(this.path);
  }

  // ---- CommitParticipant ----

  collectWrites(_generation: number, ops: WriteOp[]): void {
    assert(this.#inflight.isEmpty, 'one metadata batch in flight at a time');
    const layer = this.#pending;
    this.#pending = new MetaLayer();
    this.#inflight = layer;
    const dbs = this.#dbs;
    this.#collectDrops(layer.drops, ops);
    if (layer.nextStreamId !== undefined) {
      ops.push({ kind: 'put', db: dbs.meta, key: FORMAT_KEY, value: FORMAT_VERSION });
      ops.push({ kind: 'put', db: dbs.meta, key: NEXT_STREAM_ID_KEY, value: layer.nextStreamId });
    }
    for (const [name, id] of layer.streamIds) ops.push(putOrRemove(dbs.streamIds, name, id));
    for (const [name, meta] of layer.streamMetas) ops.push(putOrRemove(dbs.streamMetas, name, meta));
    for (const { key, value } of layer.consumerMetas.values()) ops.push(putOrRemove(dbs.consumerMetas, key, value));
    for (const { key, value } of layer.consumerStates.values()) {
      ops.push(putOrRemove(dbs.consumerStates, key, value === undefined ? undefined : encodeConsumerState(value)));
    }
    for (const { key, value } of layer.linkStates.values()) ops.push(putOrRemove(dbs.linkStates, key, value));
  }

  committed(_generation: number): void {
    this.#inflight = new MetaLayer();
  }

  failed(): void {
    const lost = this.#inflight;
    this.#inflight = new MetaLayer();
    this.#pending = new MetaLayer();
    this.#dropping = this.#droppingOnDisk();
    if (this.#dropping.size > 0) this.#pipeline.markDirtyQuietly(this);
    // Back to what is on disk (a failed delete leaves the stream there), except that ids handed
    // to open streams stay theirs and are written again with the next commit.
    this.#streamIds.clear();
    for (const { key, value } of this.#dbs.streamIds.getRange()) this.#streamIds.set(key, value);
    for (const [name, store] of this.#streams) {
      if (this.#streamIds.get(name) === store.streamId) continue;
      this.#streamIds.set(name, store.streamId);
      this.#pending.streamIds.set(name, store.streamId);
    }
    // Stream ids are never reused, even those of failed creations.
    if (lost.nextStreamId !== undefined || this.#pending.streamIds.size > 0) this.#pending.nextStreamId = this.#nextStreamId;
    if (!this.#pending.isEmpty) this.#pipeline.markDirtyQuietly(this);
  }

  // ---- helpers ----

  #checkOpen(): void {
    if (this.#isClosed) throw closedError('jetstream storage');
  }

  #isMemoryStream(name: string, meta: Record<string, unknown>): boolean {
    if (this.#memoryStreams.has(name)) return true;
    if (this.#streams.has(name) || this.#streamIds.has(name)) return false;
    const config = meta['config'];
    return typeof config === 'object' && config !== null && (config as { storage?: unknown }).storage === 'memory';
  }

  #memoryStream(name: string): MemoryStream {
    let memory = this.#memoryStreams.get(name);
    if (memory === undefined) {
      memory = { store: undefined, meta: undefined, consumerMetas: new Map(), consumerStates: new Map(), linkStates: new Map() };
      this.#memoryStreams.set(name, memory);
    }
    return memory;
  }

  /** Names of the stream's consumers with any record, on disk or pending. */
  #consumerNames(stream: string): Set<string> {
    const names = new Set<string>();
    for (const db of [this.#dbs.consumerMetas, this.#dbs.consumerStates] as const) {
      for (const key of db.getKeys({ start: [stream] })) {
        if (key[0] !== stream) break;
        names.add(key[1]);
      }
    }
    for (const layer of [this.#inflight, this.#pending]) {
      for (const { key } of [...layer.consumerMetas.values(), ...layer.consumerStates.values()]) if (key[0] === stream) names.add(key[1]);
    }
    return names;
  }

  #deleteConsumerRecords(stream: string, consumer: string): void {
    const id = recordId(stream, consumer);
    this.#pending.consumerMetas.set(id, { key: [stream, consumer], value: undefined });
    this.#pending.consumerStates.set(id, { key: [stream, consumer], value: undefined });
  }

  /**
   * Removes the keys of deleted streams, at most DROP_KEYS_PER_COMMIT per commit: streams
   * deleted in this batch join the `dropping` list (written with their deletion), a stream
   * whose keys are all gone leaves it, and while keys remain the storage asks for another
   * commit. Removes after the first of a range copy nothing (WriteOp `copies`).
   */
  #collectDrops(newDrops: ReadonlySet<number>, ops: WriteOp[]): void {
    const dbs = this.#dbs;
    const before = this.#dropping.size;
    for (const streamId of newDrops) this.#dropping.add(streamId);
    let budget = DROP_KEYS_PER_COMMIT;
    let isListChanged = this.#dropping.size !== before;
    for (const streamId of [...this.#dropping]) {
      const ranges = [
        { db: dbs.messages, range: { start: messageKey(streamId, 0), end: messagesEndKey(streamId) } },
        { db: dbs.subjects, range: { start: streamIdKey(streamId), end: streamIdKey(streamId + 1) } },
      ];
      for (const { db, range } of ranges) {
        if (budget === 0) break;
        let copies = 1;
        for (const key of db.getKeys({ ...range, limit: budget })) {
          ops.push({ kind: 'remove', db, key: Buffer.from(key), copies });
          copies = 0;
          budget--;
        }
      }
      if (budget === 0) break;
      // Every key of the stream is in this batch: it is done with it.
      ops.push({ kind: 'remove', db: dbs.streamStates, key: streamIdKey(streamId) });
      this.#dropping.delete(streamId);
      isListChanged = true;
    }
    if (isListChanged) ops.push(putOrRemove(dbs.meta, DROPPING_KEY, this.#dropping.size === 0 ? undefined : [...this.#dropping]));
    if (this.#dropping.size > 0) this.#pipeline.markDirty(this);
  }
}

function recordId(stream: string, name: string): string {
  return JSON.stringify([stream, name]);
}

function putOrRemove(db: WriteOp['db'], key: unknown, value: unknown): WriteOp {
  return value === undefined ? { kind: 'remove', db, key } : { kind: 'put', db, key, value };
}
