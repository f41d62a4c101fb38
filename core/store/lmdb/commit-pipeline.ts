/**
 * Group commit for one LMDB environment.
 *
 * Stores change their in-memory view synchronously and mark themselves dirty.
 * A "burst" then collects the writes of every dirty participant into one
 * lmdb-js `batch()`: one transaction, one fsync (env.ts: `overlappingSync:
 * false`, so the batch promise resolves only once it is synced). Bursts run
 * one at a time: the first after `setImmediate`, later ones as soon as the
 * previous batch settled, so everything written while a commit is in flight
 * piles up into the next one (natural group commit: many appends, one fsync).
 *
 * One batch in flight at a time is also what keeps failures simple: when a
 * batch fails (ENOSPC, EIO), nothing after it has been handed to LMDB yet, so
 * every participant can drop everything not on disk and reload its state
 * from disk, and every pending `flushed()` is rejected (see
 * core/store/README.md "Write failures").
 *
 * Before a batch goes to LMDB, the disk space it may take is allocated in
 * data.mdb (space-reserve.ts, with {@link batchBound}); when that fails, the
 * batch fails the same way, without LMDB ever seeing it (lmdb 3.5.6 aborts the
 * process when one of its own page writes meets ENOSPC).
 */
import type { Database, RootDatabase } from 'lmdb';
import { StoreError, StoreErrorCode } from '../../jetstream/store.ts';
import { assert } from '../../util/assert.ts';
import { commitStoreError } from './env.ts';
import { CommittedView } from './read-view.ts';
import type { SpaceNeed, SpaceReserve } from './space-reserve.ts';

/**
 * One write of a batch. `copies`: how many pages of the file the op may copy
 * that no earlier op of the batch copied (LMDB copies a page on its first
 * change in a transaction; see {@link batchBound}). Default 1, the leaf it
 * lands on. 0 for an op that lands where an earlier one did: an append after
 * the first of its stream, another duplicate of a subject-index key already
 * written, a key of a range delete after the first (LMDB frees each leaf a
 * range delete empties and reuses it for the next one: measured, a purge of
 * 25,000 of 50,000 messages grew the file by 2 pages).
 */
export type WriteOp =
  | { readonly kind: 'put'; readonly db: Database<any, any>; readonly key: unknown; readonly value: unknown; readonly copies?: number }
  | { readonly kind: 'remove'; readonly db: Database<any, any>; readonly key: unknown; readonly copies?: number }
  /** Removes one duplicate of a dupsort key. */
  | { readonly kind: 'remove-value'; readonly db: Database<any, any>; readonly key: unknown; readonly value: unknown; readonly copies?: number };

/** Something with writes to commit: a stream store, or the storage's metadata. */
export interface CommitParticipant {
  /**
   * Appends every write that makes the disk match the participant's memory.
   * Runs before the batch starts; it may read the database (which is then
   * exactly what is on disk, since no batch is in flight). Must not throw.
   */
  collectWrites(generation: number, ops: WriteOp[]): void;
  /** The batch of `generation` is durable; the participant's reads now see it on disk. */
  committed(generation: number): void;
  /** The batch failed; drop everything that is not on disk. */
  failed(error: StoreError): void;
}

type Waiter = { readonly resolve: () => void; readonly reject: (error: StoreError) => void };

type Inflight = {
  readonly generation: number;
  readonly participants: Set<CommitParticipant>;
  readonly waiters: Waiter[];
};

/** How long to wait for lmdb-js' `commitError` detail before reporting the failure without it. */
const COMMIT_ERROR_WAIT_MS = 1000;
/** Commits `close()` tries before giving up on writes that keep failing. */
const CLOSE_FLUSH_ATTEMPTS_MAX = 3;

export class CommitPipeline {
  /** The snapshot the participants read: the last commit reported to them (read-view.ts). */
  readonly view: CommittedView;
  readonly #root: RootDatabase;
  readonly #storePath: string;
  readonly #space: SpaceReserve;
  #dirty = new Set<CommitParticipant>();
  #waiters: Waiter[] = [];
  #inflight: Inflight | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #generation = 0;
  #isClosed = false;

  constructor(root: RootDatabase, storePath: string, space: SpaceReserve) {
    this.#root = root;
    this.#storePath = storePath;
    this.#space = space;
    this.view = new CommittedView(root, () => this.#inflight !== undefined);
  }

  /** The generation that writes made now will be committed in. */
  get pendingGeneration(): number {
    return this.#generation + 1;
  }

  /** The generation of the batch in flight, 0 when none: its writes are frozen. */
  get inflightGeneration(): number {
    return this.#inflight?.generation ?? 0;
  }

  /** `participant` has writes to commit; schedules a burst. */
  markDirty(participant: CommitParticipant): void {
    assert(!this.#isClosed, 'no writes after the pipeline closed');
    this.#dirty.add(participant);
    this.#schedule();
  }

  /** Like markDirty, without scheduling: the writes go with the next burst (after a failure, no retry loop). */
  markDirtyQuietly(participant: CommitParticipant): void {
    this.#dirty.add(participant);
  }

  /** Resolves when everything written before the call is durable; rejects with the StoreError of a failed commit. */
  flushed(): Promise<void> {
    if (this.#dirty.size === 0 && this.#inflight === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (this.#dirty.size > 0) {
        this.#waiters.push({ resolve, reject });
        this.#schedule();
      } else {
        this.#inflight!.waiters.push({ resolve, reject });
      }
    });
  }

  /** Waits until nothing is dirty or in flight (errors included), then refuses further writes. */
  async close(): Promise<void> {
    // A failed commit leaves participants quietly dirty: they get a few more attempts, then are dropped.
    for (let attempt = 0; attempt < CLOSE_FLUSH_ATTEMPTS_MAX && (this.#dirty.size > 0 || this.#inflight !== undefined); attempt++) {
      await this.flushed().catch(() => undefined);
    }
    this.#isClosed = true;
    this.#dirty.clear();
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.view.close();
  }

  #schedule(): void {
    if (this.#immediate !== undefined || this.#inflight !== undefined || this.#dirty.size === 0 || this.#isClosed) return;
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      this.#burst();
    });
  }

  #burst(): void {
    if (this.#inflight !== undefined || this.#dirty.size === 0 || this.#isClosed) return;
    const generation = ++this.#generation;
    const participants = this.#dirty;
    this.#dirty = new Set();
    const waiters = this.#waiters;
    this.#waiters = [];
    const ops: WriteOp[] = [];
    for (const participant of participants) participant.collectWrites(generation, ops);
    this.#inflight = { generation, participants, waiters };
    // The disk space the batch may take is allocated before LMDB sees the batch (space-reserve.ts).
    const refused = ops.length === 0 ? undefined : this.#space.ensure(batchBound(ops, this.#space.pageBytes));
    if (refused !== undefined) {
      this.#onFailed(generation, refused, undefined);
      return;
    }
    let batch: Promise<unknown>;
    try {
      // Nothing in the callback may throw: lmdb-js would commit the writes issued before the throw.
      batch = ops.length === 0 ? Promise.resolve() : this.#root.batch(() => applyOps(ops));
    } catch (err) {
      batch = Promise.reject(err);
    }
    batch.then(
      () => this.#onCommitted(generation),
      (err: unknown) => this.#onRejected(generation, err),
    );
  }

  #onCommitted(generation: number): void {
    const inflight = this.#inflight;
    assert(inflight !== undefined && inflight.generation === generation, 'the settled batch is the one in flight');
    // Reads must see the committed pages before the stores drop their in-memory copies, and not before.
    this.view.renew();
    this.#inflight = undefined;
    for (const participant of inflight.participants) participant.committed(generation);
    for (const waiter of inflight.waiters) waiter.resolve();
    this.#schedule();
  }

  #onRejected(generation: number, err: unknown): void {
    const commitError = (err as { commitError?: unknown } | undefined)?.commitError;
    if (!(commitError instanceof Promise)) {
      this.#onFailed(generation, err, (err as { code?: unknown } | undefined)?.code);
      return;
    }
    // lmdb-js: the cause (with its errno) arrives through a second, rejected promise.
    let isDone = false;
    const finish = (cause: unknown): void => {
      if (isDone) return;
      isDone = true;
      clearTimeout(timer);
      this.#onFailed(generation, cause, (cause as { code?: unknown } | undefined)?.code);
    };
    const timer = setTimeout(() => finish(err), COMMIT_ERROR_WAIT_MS);
    commitError.then(() => finish(err), finish);
  }

  #onFailed(generation: number, cause: unknown, code: unknown): void {
    const inflight = this.#inflight;
    assert(inflight !== undefined && inflight.generation === generation, 'the failed batch is the one in flight');
    const error = cause instanceof StoreError ? cause : commitStoreError(cause, typeof code === 'number' ? code : undefined, this.#storePath);
    this.#inflight = undefined;
    const affected = new Set([...inflight.participants, ...this.#dirty]);
    this.#dirty = new Set();
    const waiters = [...inflight.waiters, ...this.#waiters];
    this.#waiters = [];
    for (const participant of affected) participant.failed(error);
    for (const waiter of waiters) waiter.reject(error);
  }
}

function applyOps(ops: readonly WriteOp[]): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.kind) {
      case 'put':
        void op.db.put(op.key as never, op.value as never);
        break;
      case 'remove':
        void op.db.remove(op.key as never);
        break;
      case 'remove-value':
        void op.db.remove(op.key as never, op.value as never);
        break;
    }
  }
}

/**
 * Multiplies the bytes of a put: data appended in key order fills leaves that
 * LMDB splits when full, so new leaves may end up half full (measured: appends of
 * 128 B to 1 MiB grew the file by at most 0.53 × this bound).
 */
const PUT_GROWTH_FACTOR = 2;
/** Per put, beyond key and value: LMDB's node header (8 bytes), its slot in the page (2), alignment (1), rounded up. */
const PUT_OVERHEAD_BYTES = 16;
/**
 * Pages any batch may take besides its data and the pages its ops copy: the
 * branch pages above the copied leaves (trees here are 1-4 levels deep), the
 * main database's leaf holding the named databases' roots, and the freelist's
 * pages. A typical batch touches 5 trees (messages, subject index, stream
 * state, main, free): 5 × 3 levels, rounded up.
 */
const BATCH_FIXED_PAGES = 16;

/**
 * An upper estimate of what one batch may append to data.mdb (space-reserve.ts
 * allocates it before the batch goes to LMDB): its data, and the pages it may
 * copy. LMDB never changes a committed page in place: the first change in a
 * transaction copies it to a free page or to a new one at the end of the
 * file. So scattered ops may each cost a page whatever their size (measured on
 * a growing file: 1000 removes of scattered messages took 701 new pages, 1000
 * key-value updates on 40,000 subjects 718), which is why every op counts its
 * `copies` (WriteOp), per tree; space-reserve.ts caps them by the pages there
 * are to copy.
 */
export function batchBound(ops: readonly WriteOp[], pageBytes: number): SpaceNeed {
  let bytes = BATCH_FIXED_PAGES * pageBytes;
  const pageCopies = new Map<Database<any, any>, number>();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.kind === 'put') bytes += PUT_GROWTH_FACTOR * (encodedBytesBound(op.key) + encodedBytesBound(op.value) + PUT_OVERHEAD_BYTES);
    const copies = op.copies ?? 1;
    if (copies > 0) pageCopies.set(op.db, (pageCopies.get(op.db) ?? 0) + copies);
  }
  return { bytes, pageCopies };
}

/** At least the bytes lmdb-js encodes `value` to: binary as is, strings as UTF-8, the rest as JSON or ordered-binary. */
function encodedBytesBound(value: unknown): number {
  // `length`, not `byteLength` (the same for bytes): measured ~30% faster on this hot path.
  if (value instanceof Uint8Array) return value.length;
  if (typeof value === 'string') return 3 * value.length + 2;
  if (typeof value === 'number') return 24;
  if (Array.isArray(value)) {
    let bytes = 1;
    for (const item of value as unknown[]) bytes += encodedBytesBound(item) + 1;
    return bytes;
  }
  try {
    return 3 * (JSON.stringify(value) ?? '').length;
  } catch {
    // Not JSON: lmdb-js cannot encode it either, so it adds nothing.
    return 0;
  }
}

/** The error of any operation on a closed store. */
export function closedError(what: string): StoreError {
  return new StoreError(StoreErrorCode.closed, `${what} is closed`);
}
