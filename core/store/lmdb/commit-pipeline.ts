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
 */
import type { Database, RootDatabase } from 'lmdb';
import { StoreError, StoreErrorCode } from '../../jetstream/store.ts';
import { assert } from '../../util/assert.ts';
import { commitStoreError } from './env.ts';
import { CommittedView } from './read-view.ts';

/** One write of a batch. */
export type WriteOp =
  | { readonly kind: 'put'; readonly db: Database<any, any>; readonly key: unknown; readonly value: unknown }
  | { readonly kind: 'remove'; readonly db: Database<any, any>; readonly key: unknown }
  /** Removes one duplicate of a dupsort key. */
  | { readonly kind: 'remove-value'; readonly db: Database<any, any>; readonly key: unknown; readonly value: unknown };

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
  #dirty = new Set<CommitParticipant>();
  #waiters: Waiter[] = [];
  #inflight: Inflight | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #generation = 0;
  #isClosed = false;

  constructor(root: RootDatabase, storePath: string) {
    this.#root = root;
    this.#storePath = storePath;
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
    const error = commitStoreError(cause, typeof code === 'number' ? code : undefined, this.#storePath);
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

/** The error of any operation on a closed store. */
export function closedError(what: string): StoreError {
  return new StoreError(StoreErrorCode.closed, `${what} is closed`);
}
