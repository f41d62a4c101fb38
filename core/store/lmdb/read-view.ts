/**
 * The committed view: the disk as of the last commit the CommitPipeline
 * reported through `committed()`, which is what every stream store reads
 * (core/store/README.md "Visibility before the commit").
 *
 * A store answers from its in-memory overlay plus the disk, and the overlay is
 * computed against exactly that disk state. lmdb-js' implicit read transaction
 * does not follow it: lmdb-js resets it by itself (a `setTimeout(0)` after each
 * renewal, and whenever it notices a finished commit) and the next read renews
 * it at the newest snapshot. A batch becomes visible to new snapshots on
 * lmdb-js' write thread, before the event loop runs its completion; a read in
 * between saw the batch on disk while the overlay still held it: appends
 * counted twice, records removed while their write was in flight read as live
 * (and a purge could then move firstSeq onto one), tombs subtracted from counts
 * that no longer included them.
 *
 * So the view keeps one explicit read transaction, renewed only by
 * {@link renew}, which the pipeline calls when a batch has committed, right
 * before the participants' `committed()`. While a batch is in flight, reads
 * use that transaction: the disk may move ahead at any moment, the view does
 * not. While none is, nothing can land, so the newest snapshot is the view
 * itself, and lmdb-js' implicit transaction is at it (renew() resets it at
 * every report): reads then take lmdb-js' implicit path, whose cursor cache
 * makes a small range read about half the cost of one on an explicit
 * transaction (measured). The explicit transaction is renewed once per
 * commit, never per read.
 */
import type { Database, Key, RangeIterable, RangeOptions, RootDatabase, Transaction } from 'lmdb';
import { assert } from '../../util/assert.ts';

export class CommittedView {
  readonly #root: RootDatabase;
  /** True from the moment a batch is handed to LMDB until it has been reported (renew()) or has failed. */
  readonly #isBatchInFlight: () => boolean;
  #transaction: Transaction;
  /** `{ transaction }` for point reads (lmdb-js leaves these options unchanged). */
  #getOptions: { readonly transaction: Transaction };
  #isClosed = false;

  constructor(root: RootDatabase, isBatchInFlight: () => boolean) {
    this.#root = root;
    this.#isBatchInFlight = isBatchInFlight;
    this.#transaction = root.useReadTransaction();
    this.#getOptions = { transaction: this.#transaction };
  }

  /**
   * Moves the view to the newest commit. Only when every commit made so far
   * is about to be reported to the stores (the pipeline, before `committed()`).
   */
  renew(): void {
    assert(!this.#isClosed, 'the committed view is closed');
    const previous = this.#transaction;
    // Resets lmdb-js' implicit transaction too: the next implicit read starts at the newest commit.
    this.#root.resetReadTxn();
    this.#transaction = this.#root.useReadTransaction();
    this.#getOptions = { transaction: this.#transaction };
    previous.done();
  }

  /** Releases the snapshot; no read may follow. */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#transaction.done();
  }

  get<V, K extends Key>(db: Database<V, K>, key: K): V | undefined {
    this.#checkOpen();
    return db.get(key, this.#isBatchInFlight() ? this.#getOptions : undefined);
  }

  // Range reads take the caller's fresh options object and set the transaction on it (lmdb-js
  // modifies range options anyway). Copying them instead (`{ ...options }`) measured several
  // times slower than the read itself.

  range<V, K extends Key>(db: Database<V, K>, options: RangeOptions): RangeIterable<{ key: K; value: V }> {
    return db.getRange(this.#pin(options));
  }

  keys<V, K extends Key>(db: Database<V, K>, options: RangeOptions): RangeIterable<K> {
    return db.getKeys(this.#pin(options));
  }

  /** The duplicates of `key` (dupsort databases). */
  values<V, K extends Key>(db: Database<V, K>, key: K, options: RangeOptions = {}): RangeIterable<V> {
    return db.getValues(key, this.#pin(options));
  }

  count<V, K extends Key>(db: Database<V, K>, options: RangeOptions): number {
    return db.getCount(this.#pin(options));
  }

  /** How many duplicates `key` has (in `options`' value range). */
  valuesCount<V, K extends Key>(db: Database<V, K>, key: K, options: RangeOptions = {}): number {
    return db.getValuesCount(key, this.#pin(options));
  }

  #pin(options: RangeOptions): RangeOptions {
    this.#checkOpen();
    if (this.#isBatchInFlight()) options.transaction = this.#transaction;
    return options;
  }

  #checkOpen(): void {
    // A closed view's transaction may be aborted: reading it would hand LMDB a dead transaction.
    assert(!this.#isClosed, 'the committed view is closed');
  }
}
