/**
 * The storage seam of JetStream (STYLE.md §2.3 "StreamStore"). JetStream code
 * depends on these interfaces only; `core/store/memory` and `core/store/lmdb`
 * implement them and one contract suite (test/contract/stream-store.contract.ts)
 * runs against both.
 *
 * Durability contract (ARCHITECTURE.md "Durability", RELIABILITY.md §3.4): a
 * write is visible to reads at once and durable when the promise returned by
 * `flushed()` after it resolves. Nothing may acknowledge a write (PubAck, link
 * ack) before that. Memory stores resolve at once.
 */

/** `file` (LMDB) or `memory`, as in StreamConfig.storage. */
export type StorageKind = 'file' | 'memory';

/**
 * When file storage fsyncs, i.e. what `flushed()` (and so a PubAck) waits for
 * (README.md "Durability"):
 * - `'always'`: the write is in a synced transaction: it survives a process
 *   crash, an OS crash and a power loss.
 * - `{ intervalMs }` (nats-server's `sync_interval`): the write is committed to
 *   the operating system, so it survives a process crash; the fsync starts right
 *   after the commit, in the background (never deferred to the interval), so an
 *   OS crash or power loss can lose the acknowledged writes of the last moments,
 *   never the store's consistency. The interval is accepted for nats-server
 *   configs; no setting makes canopy sync less often than that.
 */
export type SyncPolicy = 'always' | { readonly intervalMs: number };

/** A message as stored. Buffers returned by a store are the caller's (copies, safe to keep). */
export type StoredMessage = {
  /** Stream sequence, 1-based. */
  readonly seq: number;
  readonly subject: string;
  /** The raw NATS header block (`NATS/1.0␍␊…␍␊␍␊`), or undefined when the message has none. */
  readonly headers: Buffer | undefined;
  readonly data: Buffer;
  /** Store time, ns since the epoch. */
  readonly timestampNs: bigint;
};

/** What to append: the store assigns the sequence. The store copies the buffers; an empty header block is stored as none. */
export type NewMessage = {
  readonly subject: string;
  readonly headers: Buffer | undefined;
  readonly data: Buffer;
  readonly timestampNs: bigint;
};

/** A subject filter: '' (or '>') matches everything; wildcards allowed; a list matches any of its members. */
export type SubjectFilter = string | readonly string[];

/** StreamState as nats-server reports it (NATS-SPEC.md §2.4), in store terms. */
export type StreamStoreState = {
  readonly messages: number;
  /**
   * nats-server's per-message accounting (core/store/accounting.ts), summed over live messages:
   * file storage (filestore.go fileStoreMsgSize): 22 + subject + payload + 8, plus 4 + headers when there are headers;
   * memory storage (memstore.go memStoreMsgSize): subject + headers + payload + 16.
   */
  readonly bytes: number;
  /** First live sequence; lastSeq + 1 when empty after a purge; 0 for a new empty stream. */
  readonly firstSeq: number;
  readonly firstTimestampNs: bigint;
  /** Never decreases: removing the last message keeps it (the next append gets lastSeq + 1). */
  readonly lastSeq: number;
  readonly lastTimestampNs: bigint;
  /** Sequences between firstSeq and lastSeq that were removed (a removed last message included); 0 when empty. */
  readonly numDeleted: number;
  /** Distinct subjects with at least one live message. */
  readonly numSubjects: number;
};

/**
 * The options of a purge request (`$JS.API.STREAM.PURGE`), nats-server semantics
 * (server/filestore.go PurgeEx; details in core/store/purge-plan.ts):
 * - none (or subject `>`): remove everything; lastSeq stays, firstSeq = lastSeq + 1;
 * - `seq > 1` without subject: compact, i.e. remove everything below seq (`keep` is then
 *   ignored); a seq beyond lastSeq + 1 sets firstSeq = seq, lastSeq = seq - 1;
 * - otherwise: remove matching messages oldest first, only below `seq` when `seq > 1`,
 *   at most (matching - keep) of them when `keep > 0`.
 */
export type PurgeOptions = {
  /** Only messages whose subject matches this filter (wildcards allowed; '' and '>' mean all). */
  readonly subject?: string;
  /** Remove messages with seq < this (not including it); 0 and 1 mean no bound. */
  readonly seq?: number;
  /** Keep this many of the newest matching messages (live messages, not sequences). */
  readonly keep?: number;
};

/** An operating error of a store (STYLE.md §2.6 (3)). */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  /** For `corrupt` message records: the damaged message's sequence. */
  readonly seq: number | undefined;
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions & { seq?: number }) {
    super(message, options);
    this.code = code;
    this.seq = options?.seq;
  }
}

export const StoreErrorCode = {
  /** Disk or map full (ENOSPC, MDB_MAP_FULL): the write was not stored. */
  full: 'ERR_STORE_FULL',
  /** A record failed its checksum: reported, never served as data. */
  corrupt: 'ERR_STORE_CORRUPT',
  /** Any other I/O failure of a write or flush. */
  io: 'ERR_STORE_IO',
  /** The store was closed. */
  closed: 'ERR_STORE_CLOSED',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/** One stream's messages. */
export interface StreamStore {
  readonly storage: StorageKind;
  /**
   * Appends a message with sequence lastSeq + 1 and returns that sequence. Visible to
   * every read at once; durable once a later `flushed()` resolves. Throws StoreError
   * (`full`, `closed`) when it cannot be taken; the sequence is then not used.
   * A commit that fails later rejects `flushed()` instead, and its appends disappear;
   * their sequences are never handed out again (they read as deleted).
   */
  append(message: NewMessage): number;
  /**
   * Resolves when every write made before the call (appends, removes, purges) is on disk.
   * Rejects with StoreError `full` or `io` when the commit holding them failed; the store
   * then shows exactly what is on disk (those writes are undone in memory too).
   */
  flushed(): Promise<void>;
  /** The message at `seq`, or undefined when absent. Throws StoreError `corrupt` on a checksum failure. */
  load(seq: number): StoredMessage | undefined;
  /** The first message with seq >= fromSeq whose subject matches the filter. */
  loadNext(filter: SubjectFilter, fromSeq: number): StoredMessage | undefined;
  /**
   * Live messages with seq >= fromSeq in ascending order (removed sequences skipped), at most
   * `maxMsgs`, stopping before the message that would take the sum of subject (UTF-8), header
   * and payload bytes past `maxBytes` (the first one is always taken). One sequential read:
   * what the link sender reads its batches with, where loadNext('>') per message costs a seek each.
   * A damaged record ends the result before it; when it is the first, throws StoreError `corrupt`.
   */
  loadRange(fromSeq: number, maxMsgs: number, maxBytes: number): StoredMessage[];
  /** The newest message whose subject matches the filter (literal or wildcard). */
  loadLast(filter: SubjectFilter): StoredMessage | undefined;
  /**
   * Removes one message; false when it was not there. `erase` overwrites headers and payload
   * with random bytes before deleting (the LMDB store: in the transaction that deletes it;
   * LMDB keeps the page the record was on, freed, until it reuses it).
   */
  remove(seq: number, options?: { erase?: boolean }): boolean;
  /** Purge with nats-server semantics; returns how many messages were removed. */
  purge(options: PurgeOptions): number;
  /** Messages with seq >= fromSeq matching the filter (a consumer's num_pending). */
  countPending(filter: SubjectFilter, fromSeq: number): number;
  /** Live message count per subject, for subjects matching the filter. */
  subjectCounts(filter: SubjectFilter): Map<string, number>;
  /** Removed sequences between firstSeq and lastSeq, ascending (StreamInfo deleted details). */
  deletedSeqs(): number[];
  state(): StreamStoreState;
  /** Bytes this store accounts for a message of these sizes (what max_bytes is compared with). */
  messageBytes(subjectLength: number, headersLength: number, dataLength: number): number;
  /** Flushes and releases resources; the store cannot be used afterwards. */
  close(): Promise<void>;
}

/** Persisted state of one consumer (positions survive a restart). */
export type ConsumerStateRecord = {
  /** Last delivered consumer sequence and its stream sequence. */
  readonly delivered: { readonly consumerSeq: number; readonly streamSeq: number };
  /** Ack floor: every consumer/stream seq at or below is acknowledged. */
  readonly ackFloor: { readonly consumerSeq: number; readonly streamSeq: number };
  /** Delivered but unacknowledged: stream seq → [consumer seq, delivery timestamp ms]. */
  readonly pending: readonly (readonly [streamSeq: number, consumerSeq: number, timestampMs: number])[];
  /** Redelivery counts above 1: stream seq → deliveries. */
  readonly redelivered: readonly (readonly [streamSeq: number, count: number])[];
};

/** Everything JetStream persists besides messages: stream and consumer definitions and consumer state. */
export interface JetStreamStorage {
  /**
   * Opens (creating if needed) the message store of a stream; the same instance while it is open.
   * `file` data survives restarts; a `memory` stream, its metadata and its consumers do not.
   */
  openStream(name: string, storage: StorageKind): StreamStore;
  /** Deletes a stream's messages, metadata and consumers. */
  deleteStream(name: string): Promise<void>;
  /** Stream metadata (config JSON + created time), persisted for file streams; resolves once durable. */
  saveStreamMeta(name: string, meta: Record<string, unknown>): Promise<void>;
  /** Every persisted stream's metadata, for recovery at start. */
  loadStreamMetas(): Map<string, Record<string, unknown>>;
  saveConsumerMeta(stream: string, consumer: string, meta: Record<string, unknown>): Promise<void>;
  loadConsumerMetas(stream: string): Map<string, Record<string, unknown>>;
  deleteConsumer(stream: string, consumer: string): Promise<void>;
  /** Consumer positions; may be written often (every ack): only the latest per consumer is written, with the next commit (`flushed()` covers it). */
  saveConsumerState(stream: string, consumer: string, state: ConsumerStateRecord): void;
  loadConsumerState(stream: string, consumer: string): ConsumerStateRecord | undefined;
  /**
   * Link sync state kept with a stream (core/link: the receiver's cursor and gap records
   * per origin): a JSON record per `origin`, `undefined` deletes it. Only the latest per
   * (stream, origin) is written. **Atomic with the data:** the record and every write to
   * the same storage made in the same synchronous section (appends to the stream, other
   * records) land in one transaction, or none of them does (a failed commit drops them
   * all, and `flushed()` rejects). Deleting the stream deletes its link states.
   */
  saveLinkState(stream: string, origin: string, state: Record<string, unknown> | undefined): void;
  /** Every link state of a stream (what is durable plus what is pending). */
  loadLinkStates(stream: string): Map<string, Record<string, unknown>>;
  /** Resolves when every write so far is durable. */
  flushed(): Promise<void>;
  close(): Promise<void>;
}
