/**
 * Reads that meet a damaged record (a failed checksum) must never serve it and
 * must never take the server down (ARCHITECTURE.md "Integrity"). This wrapper
 * treats a damaged message as quarantined: reads skip it as if absent, the damage
 * is logged once per sequence and counted, and the record stays on disk for an
 * operator (it is never deleted silently). API reads ask `damageSeen()` so they
 * can answer with an error instead of "not found".
 */
import type { Logger } from '../util/logger.ts';
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
} from './store.ts';

/** How many damaged records one read steps over before giving up (a badly damaged store). */
export const DAMAGED_SKIPS_PER_READ_MAX = 1000;

export class QuarantiningStore implements StreamStore {
  readonly #inner: StreamStore;
  readonly #log: Logger;
  /** Sequences found damaged, for info and metrics. */
  readonly damagedSeqs = new Set<number>();
  #lastDamage: StoreError | undefined;

  constructor(inner: StreamStore, log: Logger) {
    this.#inner = inner;
    this.#log = log;
    this.#lastDamage = undefined;
  }

  get storage(): StorageKind {
    return this.#inner.storage;
  }

  /** The damage met by reads since the last call (then forgotten). */
  damageSeen(): StoreError | undefined {
    const damage = this.#lastDamage;
    this.#lastDamage = undefined;
    return damage;
  }

  /** The damaged sequence of a corrupt-record error, else rethrows. */
  #damagedSeq(err: unknown): number | undefined {
    if (!(err instanceof StoreError) || err.code !== StoreErrorCode.corrupt) throw err;
    this.#lastDamage = err;
    if (err.seq !== undefined && !this.damagedSeqs.has(err.seq)) {
      this.damagedSeqs.add(err.seq);
      this.#log.error({ seq: err.seq, err }, 'damaged message quarantined: not served');
    } else if (err.seq === undefined) {
      this.#log.error({ err }, 'damaged record');
    }
    return err.seq;
  }

  load(seq: number): StoredMessage | undefined {
    try {
      return this.#inner.load(seq);
    } catch (err) {
      this.#damagedSeq(err);
      return undefined;
    }
  }

  loadNext(filter: SubjectFilter, fromSeq: number): StoredMessage | undefined {
    return this.#readPastDamage(fromSeq, (from) => this.#inner.loadNext(filter, from), undefined);
  }

  loadRange(fromSeq: number, maxMsgs: number, maxBytes: number): StoredMessage[] {
    return this.#readPastDamage(fromSeq, (from) => this.#inner.loadRange(from, maxMsgs, maxBytes), []);
  }

  /** A forward read that steps over damaged records (each quarantined), at most DAMAGED_SKIPS_PER_READ_MAX of them. */
  #readPastDamage<T>(fromSeq: number, read: (from: number) => T, none: T): T {
    let from = fromSeq;
    for (let skips = 0; skips < DAMAGED_SKIPS_PER_READ_MAX; skips++) {
      try {
        return read(from);
      } catch (err) {
        const seq = this.#damagedSeq(err);
        if (seq === undefined || seq < from) return none;
        from = seq + 1;
      }
    }
    return none;
  }

  loadLast(filter: SubjectFilter): StoredMessage | undefined {
    try {
      return this.#inner.loadLast(filter);
    } catch (err) {
      // The newest matching message is damaged: it is not served, and an older one is not
      // passed off as the newest (a KV get must not return a stale value as current).
      this.#damagedSeq(err);
      return undefined;
    }
  }

  append(message: NewMessage): number {
    return this.#inner.append(message);
  }
  flushed(): Promise<void> {
    return this.#inner.flushed();
  }
  remove(seq: number, options?: { erase?: boolean }): boolean {
    const isRemoved = this.#inner.remove(seq, options);
    if (isRemoved) this.damagedSeqs.delete(seq);
    return isRemoved;
  }
  purge(options: PurgeOptions): number {
    return this.#inner.purge(options);
  }
  countPending(filter: SubjectFilter, fromSeq: number): number {
    return this.#inner.countPending(filter, fromSeq);
  }
  subjectCounts(filter: SubjectFilter): Map<string, number> {
    return this.#inner.subjectCounts(filter);
  }
  deletedSeqs(): number[] {
    return this.#inner.deletedSeqs();
  }
  state(): StreamStoreState {
    return this.#inner.state();
  }
  messageBytes(subjectLength: number, headersLength: number, dataLength: number): number {
    return this.#inner.messageBytes(subjectLength, headersLength, dataLength);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
