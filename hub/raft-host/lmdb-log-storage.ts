/**
 * The Raft host's durable log: a {@link LogStorage} over one LMDB environment
 * holding the entries, the hard state, the snapshot (metadata and data), the
 * compaction point and the replica's identity (hub/raft/README.md "What the
 * host work must add").
 *
 * Layout (records in log-codec.ts, each with a CRC-32C):
 * - `raft-entries`: index (ordered-binary number) → entry record;
 * - `raft-meta`: `format`, `identity`, `hard-state`, `log-start` (index and
 *   term of the position before the first entry), `snapshot`.
 *
 * Writes. The host applies a Ready with {@link LmdbLogStorage.save} (snapshot,
 * then entries truncating any conflicting suffix, then hard state: one
 * transaction) and snapshots and compaction with {@link createSnapshot} and
 * {@link compact}, all in the order it decides them. Each change is visible to
 * the reads at once (as the page cache is, which is what the simulator's disk
 * gives the node too) and its promise resolves only once it is on disk:
 * core/store/lmdb/env.ts opens the environment with `overlappingSync: false`
 * (sync policy `always`), so a commit resolves after fdatasync and the meta
 * page write; the group commit of core/store/lmdb/commit-pipeline.ts puts
 * everything changed since the previous commit into one transaction, so a
 * Ready is never split, and it allocates disk space ahead of LMDB
 * (space-reserve.ts). Never send a message of a Ready before its `save()`
 * resolved (thesis §3.8).
 *
 * Reads are synchronous (Raft calls them inside step()). In memory: the hard
 * state, the snapshot, the first and last index, the terms as runs (one
 * `[first index, term]` pair per term change in the log: term() is a binary
 * search, memory grows with the number of leaders, not of entries), and a
 * tail cache of entries. `entries()` takes the cache, and LMDB below it (a
 * get, a CRC check and a decode per entry, from the committed view).
 *
 * Memory bound: the tail cache keeps at most {@link RAFT_LOG_CACHE_BYTES_MAX}
 * (by `entryBytes`) of entries that are on disk, plus every entry not yet on
 * disk (never evicted, so a read never meets an LMDB record that a pending
 * write replaces). Those are the entries of the Ready being saved, objects
 * Raft already holds: no copy. The latest snapshot's data is kept in memory
 * (one snapshot; the state machine's own size decides it). So: cache bound +
 * one Ready + one snapshot + 16 bytes per term change.
 *
 * Start-up reads every stored entry once: it rebuilds the term runs and
 * checks every CRC, index and contiguity, so a damaged log is refused at open
 * (StoreError `corrupt`) instead of being served. Reads later check the CRC
 * again and throw the same error.
 *
 * Identity. The environment is blank until {@link LmdbLogStorage.initialize}
 * writes the format, the replica identity (cluster id, node id) and, for the
 * initial members of a new cluster only, the bootstrap configuration, in one
 * transaction. So a wiped data directory opens with `identity` undefined: the
 * host must then mint a NEW node id and join as a learner (README "Wiped and
 * rolled-back nodes"); it must never reuse an id it was configured with.
 * Likewise a `corrupt` error at open means the host must quarantine the
 * directory (rename, never delete) and start blank under a new id. An
 * environment restored from an older backup keeps its identity and cannot be
 * told apart from here; keeping backups of a Raft data directory out of
 * restores is the operator's part.
 *
 * Failures. A failed commit (ENOSPC, EIO) rejects its promise with a
 * StoreError (`full`, `io`); the storage then reloads what is on disk, and
 * every later write is refused with the same error. The node is ahead of the
 * disk at that point: the host must stop it (step down) and reopen.
 */
import { resolve as resolvePath } from 'node:path';
import { StoreError, StoreErrorCode } from '../../core/jetstream/store.ts';
import { CommitPipeline, type CommitParticipant, type WriteOp } from '../../core/store/lmdb/commit-pipeline.ts';
import { named, openLmdbEnvironment, type LmdbDatabase as Database, type LmdbRootDatabase as RootDatabase } from '../../core/store/lmdb/env.ts';
import type { SpaceReserve } from '../../core/store/lmdb/space-reserve.ts';
import { assert } from '../../core/util/assert.ts';
import type { ConfState, Entry, HardState, InitialState, LogStorage, NodeId, Snapshot } from '../raft/index.ts';
import { assertAppendable, bootstrapEntries, collectEntries, EMPTY_CONF_STATE, entryBytes, NO_NODE, snapshotMetadataAt } from '../raft/index.ts';
import {
  decodeEntry,
  decodeFormat,
  decodeHardState,
  decodeIdentity,
  decodeLogStart,
  decodeSnapshot,
  encodeEntry,
  encodeFormat,
  encodeHardState,
  encodeIdentity,
  encodeLogStart,
  encodeSnapshot,
  type ReplicaIdentity,
} from './log-codec.ts';

export type { ReplicaIdentity } from './log-codec.ts';

/** Bytes (entryBytes) of durable entries the tail cache keeps; about 27,000 entries of 128 bytes. */
export const RAFT_LOG_CACHE_BYTES_MAX = 4 * 1024 * 1024;
/** The on-disk format; a different one is refused at open. */
const FORMAT_VERSION = 1;
const DB_NAMES = { meta: 'raft-meta', entries: 'raft-entries' } as const;
const META_KEYS = {
  format: 'format',
  identity: 'identity',
  hardState: 'hard-state',
  logStart: 'log-start',
  snapshot: 'snapshot',
} as const;
const EMPTY_DATA = new Uint8Array(0);
const EMPTY_HARD_STATE: HardState = { term: 0, vote: NO_NODE, commit: 0 };

/** Environments open in this process: LMDB must not be opened twice by one process (RELIABILITY.md §3.1). */
const OPEN_PATHS = new Set<string>();

/** The writes of one Ready, applied in Ready order in one transaction. */
export type ReadyWrite = {
  readonly snapshot?: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly hardState?: HardState | undefined;
};

/** Everything read at open (and again after a failed commit). */
type DiskState = {
  identity: ReplicaIdentity | undefined;
  hardState: HardState;
  snapshot: Snapshot;
  start: { index: number; term: number };
  lastIndex: number;
  runStarts: number[];
  runTerms: number[];
  tail: Entry[];
  tailBytes: number;
};

export class LmdbLogStorage implements LogStorage, CommitParticipant {
  /** The environment's directory. */
  readonly path: string;
  readonly #root: RootDatabase<Buffer, Buffer>;
  readonly #space: SpaceReserve;
  readonly #meta: Database<Buffer, string>;
  readonly #entries: Database<Buffer, number>;
  readonly #pipeline: CommitPipeline;
  /** Bytes of durable entries the tail cache keeps ({@link RAFT_LOG_CACHE_BYTES_MAX} unless a test asks for less). */
  readonly #cacheBytesMax: number;
  #identity: ReplicaIdentity | undefined;
  #hardState: HardState = EMPTY_HARD_STATE;
  #snapshot: Snapshot = emptySnapshot(EMPTY_CONF_STATE);
  /** Index and term of the position just before the first entry. */
  #startIndex = 0;
  #startTerm = 0;
  #lastIndex = 0;
  /** Term runs: entries from #runStarts[k] up to the next start (or #lastIndex) have term #runTerms[k]. */
  #runStarts: number[] = [];
  #runTerms: number[] = [];
  /** The tail cache: #cache[#cacheHead + i] is entry #lastIndex - (live length) + 1 + i. */
  #cache: Entry[] = [];
  #cacheHead = 0;
  #cacheBytes = 0;
  /** Lowest index written since the last collect, and in the batch in flight: entries from there are not on disk. */
  #unsyncedFrom = Number.POSITIVE_INFINITY;
  #inflightFrom = Number.POSITIVE_INFINITY;
  /** Writes waiting for the next commit, in order. */
  #pending: WriteOp[] = [];
  #failure: StoreError | undefined;
  #isClosed = false;

  private constructor(options: { path: string; root: RootDatabase<Buffer, Buffer>; space: SpaceReserve; cacheBytesMax: number }) {
    const { path, root, space } = options;
    this.path = path;
    this.#cacheBytesMax = options.cacheBytesMax;
    this.#root = root;
    this.#space = space;
    const dbs = root.transactionSync(() => ({
      meta: root.openDB<Buffer, string>(named(DB_NAMES.meta, { encoding: 'binary', keyEncoding: 'ordered-binary' })),
      entries: root.openDB<Buffer, number>(named(DB_NAMES.entries, { encoding: 'binary', keyEncoding: 'ordered-binary' })),
    }));
    this.#meta = dbs.meta;
    this.#entries = dbs.entries;
    space.countTrees([dbs.meta, dbs.entries]);
    this.#pipeline = new CommitPipeline(root, path, space);
    this.#adopt(this.#readDisk());
  }

  /**
   * Opens (creating if needed) the environment at `path`. Throws StoreError
   * `corrupt` when a record fails its checks (see the file comment for what
   * the host does then).
   */
  static open(options: { readonly path: string; readonly cacheBytesMax?: number }): LmdbLogStorage {
    const path = resolvePath(options.path);
    assert(!OPEN_PATHS.has(path), `the Raft log ${path} is already open in this process`);
    const { root, space } = openLmdbEnvironment({ path, syncPolicy: 'always', databaseNames: Object.values(DB_NAMES) });
    OPEN_PATHS.add(path);
    try {
      return new LmdbLogStorage({ path, root, space, cacheBytesMax: options.cacheBytesMax ?? RAFT_LOG_CACHE_BYTES_MAX });
    } catch (err) {
      OPEN_PATHS.delete(path);
      void root.close();
      space.close();
      throw err;
    }
  }

  /** The replica this environment belongs to; undefined for a blank (new or wiped) one. */
  get identity(): ReplicaIdentity | undefined {
    return this.#identity;
  }

  /**
   * Makes a blank environment this replica's, durably: the identity, and for
   * an initial member of a NEW cluster (`voters`, an explicit operator action)
   * the bootstrap configuration of MemoryLogStorage.bootstrap. A replica
   * joining an existing cluster passes no voters and starts empty.
   */
  initialize(options: { readonly identity: ReplicaIdentity; readonly voters?: readonly NodeId[] }): Promise<void> {
    assert(!this.#isClosed, 'the Raft log is closed');
    if (this.#failure !== undefined) throw this.#failure;
    assert(this.#identity === undefined, 'raft log initialize: the environment already has an identity');
    assert(this.#lastIndex === 0 && this.#startIndex === 0, 'raft log initialize: the environment holds a log');
    this.#identity = options.identity;
    this.#put(this.#meta, META_KEYS.format, encodeFormat(FORMAT_VERSION));
    this.#put(this.#meta, META_KEYS.identity, encodeIdentity(options.identity));
    if (options.voters !== undefined) {
      assert(options.voters.length > 0, 'raft log initialize: no voters');
      this.#stageEntries(bootstrapEntries(options.voters));
      this.#stageHardState({ term: 1, vote: NO_NODE, commit: options.voters.length });
    }
    return this.#flushed();
  }

  // ---- LogStorage (synchronous reads) ----

  initialState(): InitialState {
    return { hardState: this.#hardState, confState: this.#snapshot.metadata.confState };
  }

  firstIndex(): number {
    return this.#startIndex + 1;
  }

  lastIndex(): number {
    return this.#lastIndex;
  }

  term(index: number): number | undefined {
    if (index === this.#startIndex) return this.#startTerm;
    if (index < this.#startIndex || index > this.#lastIndex) return undefined;
    const starts = this.#runStarts;
    let high = starts.length - 1;
    // The last run answers the common case (the newest entries) without a search.
    if (index >= starts[high]!) return this.#runTerms[high];
    let low = 0;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (starts[middle]! <= index) low = middle;
      else high = middle - 1;
    }
    return this.#runTerms[low];
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    const cacheStart = this.#cacheStart();
    const head = this.#cacheHead;
    return collectEntries(this, { lo, hi, maxBytes }, (index) => (index >= cacheStart ? this.#cache[head + index - cacheStart] : this.#load(index)));
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  hardState(): HardState {
    return this.#hardState;
  }

  // ---- host-side writes: visible at once, durable when the promise resolves ----

  /** One Ready's writes in Ready order (snapshot, entries, hard state), in one transaction. */
  save(write: ReadyWrite): Promise<void> {
    this.#checkWritable();
    if (write.snapshot !== undefined) this.#stageSnapshotInstall(write.snapshot);
    this.#stageEntries(write.entries);
    if (write.hardState !== undefined) this.#stageHardState(write.hardState);
    return this.#flushed();
  }

  setHardState(hardState: HardState): Promise<void> {
    return this.save({ entries: [], hardState });
  }

  /** Appends entries, first discarding any existing suffix from `entries[0].index` (a follower's conflict truncation). */
  append(entries: readonly Entry[]): Promise<void> {
    return this.save({ entries });
  }

  /** Replaces the whole log with `snapshot` (a follower installing a leader's snapshot). */
  applySnapshot(snapshot: Snapshot): Promise<void> {
    return this.save({ snapshot, entries: [] });
  }

  /** Records a snapshot the host took of its state machine at `index`, which it has applied. The log is kept; see {@link compact}. */
  createSnapshot(options: { index: number; confState: ConfState; data: Uint8Array }): Promise<Snapshot> {
    this.#checkWritable();
    const snapshot: Snapshot = { metadata: snapshotMetadataAt(this, options), data: options.data };
    this.#snapshot = snapshot;
    this.#put(this.#meta, META_KEYS.snapshot, encodeSnapshot(snapshot));
    return this.#flushed().then(() => snapshot);
  }

  /** Drops entries up to and including `index`, which must not pass the snapshot. */
  compact(index: number): Promise<void> {
    this.#checkWritable();
    if (index <= this.#startIndex) return this.#flushed();
    assert(index <= this.#snapshot.metadata.index, `storage compact: ${index} beyond snapshot ${this.#snapshot.metadata.index}`);
    const term = this.term(index);
    assert(term !== undefined, `storage compact: no term at ${index}`);
    this.#stageRemoveRange(this.#startIndex + 1, index);
    this.#startIndex = index;
    this.#startTerm = term;
    this.#put(this.#meta, META_KEYS.logStart, encodeLogStart({ index, term }));
    // Runs wholly before the new first entry go; the first kept one starts there.
    let drop = 0;
    while (drop + 1 < this.#runStarts.length && this.#runStarts[drop + 1]! <= index + 1) drop++;
    this.#runStarts.splice(0, drop);
    this.#runTerms.splice(0, drop);
    if (this.#lastIndex > index) this.#runStarts[0] = index + 1;
    else this.#clearRuns();
    const cacheStart = this.#cacheStart();
    for (let i = cacheStart; i <= index && this.#cacheHead < this.#cache.length; i++) this.#dropCacheFront();
    return this.#flushed();
  }

  /** Waits for every write made so far, then closes the environment. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    await this.#pipeline.close();
    await this.#root.close();
    this.#space.close();
    OPEN_PATHS.delete(this.path);
  }

  // ---- CommitParticipant (the group commit) ----

  collectWrites(_generation: number, ops: WriteOp[]): void {
    for (let i = 0; i < this.#pending.length; i++) ops.push(this.#pending[i]!);
    this.#pending = [];
    this.#inflightFrom = this.#unsyncedFrom;
    this.#unsyncedFrom = Number.POSITIVE_INFINITY;
  }

  committed(_generation: number): void {
    this.#inflightFrom = Number.POSITIVE_INFINITY;
    this.#trimCache();
  }

  failed(error: StoreError): void {
    // Nothing after the failed batch reached LMDB: show exactly the disk, and take no more writes.
    this.#failure = error;
    this.#pending = [];
    this.#unsyncedFrom = Number.POSITIVE_INFINITY;
    this.#inflightFrom = Number.POSITIVE_INFINITY;
    try {
      this.#adopt(this.#readDisk());
    } catch (err) {
      // The disk cannot even be read back: report that instead (the pipeline's callback must not throw).
      this.#failure = err instanceof StoreError ? err : error;
    }
  }

  // ---- staging ----

  #stageSnapshotInstall(snapshot: Snapshot): void {
    assert(snapshot.metadata.index >= this.#snapshot.metadata.index, 'storage applySnapshot: older than current');
    this.#stageRemoveRange(this.#startIndex + 1, this.#lastIndex);
    this.#snapshot = snapshot;
    this.#startIndex = snapshot.metadata.index;
    this.#startTerm = snapshot.metadata.term;
    this.#lastIndex = snapshot.metadata.index;
    this.#clearRuns();
    this.#clearCache();
    this.#put(this.#meta, META_KEYS.snapshot, encodeSnapshot(snapshot));
    this.#put(this.#meta, META_KEYS.logStart, encodeLogStart({ index: snapshot.metadata.index, term: snapshot.metadata.term }));
  }

  #stageEntries(entries: readonly Entry[]): void {
    assertAppendable(this, entries);
    const first = entries[0];
    if (first === undefined) return;
    // The conflicting suffix goes in the same transaction as the entries replacing it.
    const newLast = first.index + entries.length - 1;
    this.#stageRemoveRange(newLast + 1, this.#lastIndex);
    this.#truncateRuns(first.index);
    this.#truncateCache(first.index);
    this.#lastIndex = first.index - 1;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      this.#pending.push({ kind: 'put', db: this.#entries, key: entry.index, value: encodeEntry(entry), copies: i === 0 ? 1 : 0 });
      this.#appendRun(entry.index, entry.term);
      this.#cache.push(entry);
      this.#cacheBytes += entryBytes(entry);
      this.#lastIndex = entry.index;
    }
    this.#unsyncedFrom = Math.min(this.#unsyncedFrom, first.index);
  }

  #stageHardState(hardState: HardState): void {
    this.#hardState = hardState;
    this.#put(this.#meta, META_KEYS.hardState, encodeHardState(hardState));
  }

  /** Removes the entry records [from, to] (nothing when empty). */
  #stageRemoveRange(from: number, to: number): void {
    for (let index = from; index <= to; index++) {
      this.#pending.push({ kind: 'remove', db: this.#entries, key: index, copies: index === from ? 1 : 0 });
    }
  }

  #put(db: Database<Buffer, any>, key: string | number, value: Buffer): void {
    this.#pending.push({ kind: 'put', db, key, value });
  }

  #flushed(): Promise<void> {
    this.#pipeline.markDirty(this);
    return this.#pipeline.flushed();
  }

  #checkWritable(): void {
    assert(!this.#isClosed, 'the Raft log is closed');
    if (this.#failure !== undefined) throw this.#failure;
    // A blank environment must not take a log under an id it never had (README "Wiped and rolled-back nodes").
    assert(this.#identity !== undefined, 'the Raft log has no identity: initialize() it first');
  }

  // ---- term runs ----

  #appendRun(index: number, term: number): void {
    const last = this.#runTerms.length - 1;
    if (last >= 0) assert(term >= this.#runTerms[last]!, `storage append: term ${term} at ${index} below the previous entry's`);
    if (last >= 0 && this.#runTerms[last] === term) return;
    this.#runStarts.push(index);
    this.#runTerms.push(term);
  }

  /** Drops the terms of entries from `index` on. */
  #truncateRuns(index: number): void {
    let keep = this.#runStarts.length;
    while (keep > 0 && this.#runStarts[keep - 1]! >= index) keep--;
    this.#runStarts.length = keep;
    this.#runTerms.length = keep;
  }

  #clearRuns(): void {
    this.#runStarts = [];
    this.#runTerms = [];
  }

  // ---- tail cache ----

  /** Index of the first cached entry (#lastIndex + 1 when the cache is empty). */
  #cacheStart(): number {
    return this.#lastIndex + 1 - (this.#cache.length - this.#cacheHead);
  }

  /** Drops cached entries from `index` on; the cache stays a contiguous suffix of the log. */
  #truncateCache(index: number): void {
    const start = this.#cacheStart();
    if (index < start) {
      // Entries below the cache are on disk and stay valid; the new ones start a new cache.
      this.#clearCache();
      return;
    }
    const keep = this.#cacheHead + (index - start);
    for (let i = keep; i < this.#cache.length; i++) this.#cacheBytes -= entryBytes(this.#cache[i]!);
    this.#cache.length = keep;
  }

  #clearCache(): void {
    this.#cache = [];
    this.#cacheHead = 0;
    this.#cacheBytes = 0;
  }

  #dropCacheFront(): void {
    this.#cacheBytes -= entryBytes(this.#cache[this.#cacheHead]!);
    this.#cacheHead++;
    if (this.#cacheHead * 2 >= this.#cache.length) {
      this.#cache = this.#cache.slice(this.#cacheHead);
      this.#cacheHead = 0;
    }
  }

  /** Evicts the oldest durable entries beyond the byte bound; entries not on disk stay. */
  #trimCache(): void {
    const unsyncedFrom = Math.min(this.#unsyncedFrom, this.#inflightFrom);
    while (this.#cacheBytes > this.#cacheBytesMax && this.#cacheHead < this.#cache.length) {
      if (this.#cache[this.#cacheHead]!.index >= unsyncedFrom) return;
      this.#dropCacheFront();
    }
  }

  // ---- disk ----

  #load(index: number): Entry {
    const record = this.#pipeline.view.get(this.#entries, index);
    if (record === undefined) throw new StoreError(StoreErrorCode.corrupt, `raft log: entry ${index} is missing below last index ${this.#lastIndex}`);
    return decodeEntry(index, record);
  }

  /** Reads and checks everything on disk (the committed view: nothing is in flight at open or after a failure). */
  #readDisk(): DiskState {
    const view = this.#pipeline.view;
    const metaRecord = (key: string): Buffer | undefined => view.get(this.#meta, key);
    const format = metaRecord(META_KEYS.format);
    const identityRecord = metaRecord(META_KEYS.identity);
    if (format !== undefined && decodeFormat(format) !== FORMAT_VERSION) {
      throw new StoreError(StoreErrorCode.corrupt, `raft log: format ${decodeFormat(format)} is not ${FORMAT_VERSION}`);
    }
    if ((format === undefined) !== (identityRecord === undefined)) {
      throw new StoreError(StoreErrorCode.corrupt, 'raft log: the format and identity records must both be there or both be missing');
    }
    const hardStateRecord = metaRecord(META_KEYS.hardState);
    const snapshotRecord = metaRecord(META_KEYS.snapshot);
    const startRecord = metaRecord(META_KEYS.logStart);
    const snapshot = snapshotRecord === undefined ? emptySnapshot(EMPTY_CONF_STATE) : decodeSnapshot(snapshotRecord);
    const start = startRecord === undefined ? { index: 0, term: 0 } : decodeLogStart(startRecord);
    const state: DiskState = {
      identity: identityRecord === undefined ? undefined : decodeIdentity(identityRecord),
      hardState: hardStateRecord === undefined ? EMPTY_HARD_STATE : decodeHardState(hardStateRecord),
      snapshot,
      start,
      lastIndex: start.index,
      runStarts: [],
      runTerms: [],
      tail: [],
      tailBytes: 0,
    };
    if (state.identity === undefined && (hardStateRecord !== undefined || snapshotRecord !== undefined || startRecord !== undefined)) {
      throw new StoreError(StoreErrorCode.corrupt, 'raft log: log records without an identity record');
    }
    this.#scanEntries(state);
    return state;
  }

  /** Every entry once: contiguous from the log start, terms never decreasing, CRCs intact; keeps a bounded tail. */
  #scanEntries(state: DiskState): void {
    let tailHead = 0;
    for (const { key, value } of this.#pipeline.view.range(this.#entries, {})) {
      const index = key;
      if (index !== state.lastIndex + 1) {
        throw new StoreError(StoreErrorCode.corrupt, `raft log: entry ${index} follows ${state.lastIndex} (expected ${state.lastIndex + 1})`);
      }
      const entry = decodeEntry(index, value);
      const lastTerm = state.runTerms[state.runTerms.length - 1] ?? state.start.term;
      if (entry.term < lastTerm) throw new StoreError(StoreErrorCode.corrupt, `raft log: entry ${index} has term ${entry.term} below ${lastTerm}`);
      if (state.runTerms.length === 0 || entry.term !== lastTerm) {
        state.runStarts.push(index);
        state.runTerms.push(entry.term);
      }
      state.lastIndex = index;
      state.tail.push(entry);
      state.tailBytes += entryBytes(entry);
      while (state.tailBytes > this.#cacheBytesMax && tailHead < state.tail.length - 1) {
        state.tailBytes -= entryBytes(state.tail[tailHead]!);
        tailHead++;
        if (tailHead * 2 >= state.tail.length) {
          state.tail = state.tail.slice(tailHead);
          tailHead = 0;
        }
      }
    }
    state.tail = state.tail.slice(tailHead);
  }

  #adopt(state: DiskState): void {
    this.#identity = state.identity;
    this.#hardState = state.hardState;
    this.#snapshot = state.snapshot;
    this.#startIndex = state.start.index;
    this.#startTerm = state.start.term;
    this.#lastIndex = state.lastIndex;
    this.#runStarts = state.runStarts;
    this.#runTerms = state.runTerms;
    this.#cache = state.tail;
    this.#cacheHead = 0;
    this.#cacheBytes = state.tailBytes;
  }
}

function emptySnapshot(confState: ConfState): Snapshot {
  return { metadata: { index: 0, term: 0, confState }, data: EMPTY_DATA };
}
