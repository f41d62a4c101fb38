/**
 * JetStream storage for a store_dir that holds no LMDB environment yet: LMDB is opened
 * (and the lmdb library loaded) only when the first file stream is created. Until then
 * memory streams live in a MemoryJetStreamStorage; afterwards new streams of either kind
 * go to the LMDB storage, which keeps memory streams in memory too. Each stream stays
 * with the storage that opened it.
 */
import type { ConsumerStateRecord, JetStreamStorage, StorageKind, StreamStore, SyncPolicy } from '../jetstream/store.ts';
import { LmdbJetStreamStorage } from './lmdb/lmdb-jetstream-storage.ts';
import { MemoryJetStreamStorage } from './memory/memory-jetstream-storage.ts';

export class DeferredJetStreamStorage implements JetStreamStorage {
  readonly #storeDir: string;
  readonly #syncPolicy: SyncPolicy;
  readonly #memory = new MemoryJetStreamStorage();
  #lmdb: LmdbJetStreamStorage | undefined;
  readonly #owners = new Map<string, JetStreamStorage>();

  constructor(storeDir: string, syncPolicy: SyncPolicy) {
    this.#storeDir = storeDir;
    this.#syncPolicy = syncPolicy;
    this.#lmdb = undefined;
  }

  /** True once a file stream made it open LMDB. */
  get isLmdbOpen(): boolean {
    return this.#lmdb !== undefined;
  }

  #owner(stream: string): JetStreamStorage {
    return this.#owners.get(stream) ?? this.#lmdb ?? this.#memory;
  }

  openStream(name: string, storage: StorageKind): StreamStore {
    let owner = this.#owners.get(name);
    if (owner === undefined) {
      if (storage === 'file') this.#lmdb ??= LmdbJetStreamStorage.open(this.#storeDir, this.#syncPolicy);
      owner = this.#lmdb ?? this.#memory;
      this.#owners.set(name, owner);
    }
    return owner.openStream(name, storage);
  }

  async deleteStream(name: string): Promise<void> {
    await this.#owner(name).deleteStream(name);
    this.#owners.delete(name);
  }

  saveStreamMeta(name: string, meta: Record<string, unknown>): Promise<void> {
    return this.#owner(name).saveStreamMeta(name, meta);
  }

  loadStreamMetas(): Map<string, Record<string, unknown>> {
    return new Map([...this.#memory.loadStreamMetas(), ...(this.#lmdb?.loadStreamMetas() ?? [])]);
  }

  saveConsumerMeta(stream: string, consumer: string, meta: Record<string, unknown>): Promise<void> {
    return this.#owner(stream).saveConsumerMeta(stream, consumer, meta);
  }

  loadConsumerMetas(stream: string): Map<string, Record<string, unknown>> {
    return this.#owner(stream).loadConsumerMetas(stream);
  }

  deleteConsumer(stream: string, consumer: string): Promise<void> {
    return this.#owner(stream).deleteConsumer(stream, consumer);
  }

  saveConsumerState(stream: string, consumer: string, state: ConsumerStateRecord): void {
    this.#owner(stream).saveConsumerState(stream, consumer, state);
  }

  loadConsumerState(stream: string, consumer: string): ConsumerStateRecord | undefined {
    return this.#owner(stream).loadConsumerState(stream, consumer);
  }

  saveLinkState(stream: string, origin: string, state: Record<string, unknown> | undefined): void {
    this.#owner(stream).saveLinkState(stream, origin, state);
  }

  loadLinkStates(stream: string): Map<string, Record<string, unknown>> {
    return this.#owner(stream).loadLinkStates(stream);
  }

  async flushed(): Promise<void> {
    await Promise.all([this.#memory.flushed(), this.#lmdb?.flushed()]);
  }

  async close(): Promise<void> {
    await this.#memory.close();
    await this.#lmdb?.close();
  }
}
