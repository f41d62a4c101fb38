/**
 * A disk that loses unsynced writes (RELIABILITY.md §2.7 B "disk model").
 *
 * Writes are ordered and atomic (an LMDB transaction each). `cache` is what
 * the running process reads: every write so far, as in the OS page cache.
 * `durable` is what survives a power loss: every write up to the last sync.
 *
 * - process crash (kill -9): the page cache survives, so nothing is lost, but
 *   unsynced writes stay unsynced until a later sync;
 * - power loss / OS crash: the disk keeps the durable image plus some prefix
 *   of the unsynced writes, chosen by the PRNG;
 * - wipe: everything is gone;
 * - rollback: the disk is restored from an older durable image (a backup, or
 *   a disk that lied about fsync).
 */
import type { SeededPrng } from '../../../core/util/prng.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../../../hub/raft/index.ts';
import { MemoryLogStorage } from '../../../hub/raft/index.ts';

export type DiskWrite =
  | { readonly kind: 'ready'; readonly snapshot: Snapshot | undefined; readonly entries: readonly Entry[]; readonly hardState: HardState | undefined }
  | { readonly kind: 'snapshot'; readonly index: number; readonly confState: ConfState; readonly data: Uint8Array }
  | { readonly kind: 'compact'; readonly index: number };

function applyWrite(storage: MemoryLogStorage, write: DiskWrite): void {
  switch (write.kind) {
    case 'ready':
      if (write.snapshot !== undefined) storage.applySnapshot(write.snapshot);
      storage.append(write.entries);
      if (write.hardState !== undefined) storage.setHardState(write.hardState);
      return;
    case 'snapshot':
      storage.createSnapshot({ index: write.index, confState: write.confState, data: write.data });
      return;
    case 'compact':
      storage.compact(write.index);
      return;
  }
}

export class SimDisk {
  #durable: MemoryLogStorage;
  #cache: MemoryLogStorage;
  #unsynced: DiskWrite[] = [];
  /** `initial` is the image the host was provisioned with (the bootstrap configuration). */
  constructor(initial: MemoryLogStorage) {
    this.#durable = initial;
    this.#cache = this.#durable.clone();
  }

  /** The storage the running process reads (and the node's LogStorage). */
  get storage(): MemoryLogStorage {
    return this.#cache;
  }

  get unsyncedCount(): number {
    return this.#unsynced.length;
  }

  write(write: DiskWrite): void {
    applyWrite(this.#cache, write);
    this.#unsynced.push(write);
  }

  /** fsync: everything written so far becomes durable. */
  sync(): void {
    for (const write of this.#unsynced) applyWrite(this.#durable, write);
    this.#unsynced = [];
  }

  /** A process crash: the page cache survives; returns 0 writes lost. */
  crashProcess(): number {
    return 0;
  }

  /** A power loss: keeps a random prefix of the unsynced writes. Returns how many were lost. */
  crashPower(prng: SeededPrng): number {
    const kept = prng.between(0, this.#unsynced.length);
    for (let i = 0; i < kept; i++) applyWrite(this.#durable, this.#unsynced[i]!);
    const lost = this.#unsynced.length - kept;
    this.#unsynced = [];
    this.#cache = this.#durable.clone();
    return lost;
  }

  /** Loses everything: a blank data directory with no configuration (a replica that must join). */
  wipe(): void {
    this.#durable = new MemoryLogStorage();
    this.#cache = this.#durable.clone();
    this.#unsynced = [];
  }

  /** A copy of the durable image, for a later rollback. */
  backup(): MemoryLogStorage {
    return this.#durable.clone();
  }

  restore(image: MemoryLogStorage): void {
    this.#durable = image.clone();
    this.#cache = this.#durable.clone();
    this.#unsynced = [];
  }
}
