/**
 * {@link JetStreamStorage} entirely in memory: every stream is a
 * {@link MemoryStreamStore} whatever its StorageKind, and metadata and
 * consumer state live in maps. Nothing survives the process. For tests and
 * for servers without a store_dir.
 */
import {
  StoreError,
  StoreErrorCode,
  type ConsumerStateRecord,
  type JetStreamStorage,
  type StorageKind,
  type StreamStore,
} from '../../jetstream/store.ts';
import { MemoryStreamStore } from './memory-stream-store.ts';

type StreamEntry = {
  store: MemoryStreamStore | undefined;
  meta: Record<string, unknown> | undefined;
  readonly consumerMetas: Map<string, Record<string, unknown>>;
  readonly consumerStates: Map<string, ConsumerStateRecord>;
  readonly linkStates: Map<string, Record<string, unknown>>;
};

export class MemoryJetStreamStorage implements JetStreamStorage {
  readonly #streams = new Map<string, StreamEntry>();
  #isClosed = false;

  openStream(name: string, _storage: StorageKind): StreamStore {
    this.#checkOpen();
    const entry = this.#entry(name);
    entry.store ??= new MemoryStreamStore();
    return entry.store;
  }

  async deleteStream(name: string): Promise<void> {
    this.#checkOpen();
    const entry = this.#streams.get(name);
    if (entry === undefined) return;
    this.#streams.delete(name);
    await entry.store?.close();
  }

  saveStreamMeta(name: string, meta: Record<string, unknown>): Promise<void> {
    this.#checkOpen();
    this.#entry(name).meta = meta;
    return Promise.resolve();
  }

  loadStreamMetas(): Map<string, Record<string, unknown>> {
    this.#checkOpen();
    const metas = new Map<string, Record<string, unknown>>();
    for (const [name, entry] of this.#streams) if (entry.meta !== undefined) metas.set(name, entry.meta);
    return metas;
  }

  saveConsumerMeta(stream: string, consumer: string, meta: Record<string, unknown>): Promise<void> {
    this.#checkOpen();
    this.#entry(stream).consumerMetas.set(consumer, meta);
    return Promise.resolve();
  }

  loadConsumerMetas(stream: string): Map<string, Record<string, unknown>> {
    this.#checkOpen();
    return new Map(this.#streams.get(stream)?.consumerMetas);
  }

  deleteConsumer(stream: string, consumer: string): Promise<void> {
    this.#checkOpen();
    const entry = this.#streams.get(stream);
    entry?.consumerMetas.delete(consumer);
    entry?.consumerStates.delete(consumer);
    return Promise.resolve();
  }

  saveConsumerState(stream: string, consumer: string, state: ConsumerStateRecord): void {
    this.#checkOpen();
    this.#entry(stream).consumerStates.set(consumer, state);
  }

  loadConsumerState(stream: string, consumer: string): ConsumerStateRecord | undefined {
    this.#checkOpen();
    return this.#streams.get(stream)?.consumerStates.get(consumer);
  }

  saveLinkState(stream: string, origin: string, state: Record<string, unknown> | undefined): void {
    this.#checkOpen();
    if (state === undefined) this.#streams.get(stream)?.linkStates.delete(origin);
    else this.#entry(stream).linkStates.set(origin, state);
  }

  loadLinkStates(stream: string): Map<string, Record<string, unknown>> {
    this.#checkOpen();
    return new Map(this.#streams.get(stream)?.linkStates);
  }

  flushed(): Promise<void> {
    if (this.#isClosed) return Promise.reject(new StoreError(StoreErrorCode.closed, 'jetstream storage is closed'));
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    for (const entry of this.#streams.values()) await entry.store?.close();
    this.#streams.clear();
  }

  #entry(name: string): StreamEntry {
    let entry = this.#streams.get(name);
    if (entry === undefined) {
      entry = { store: undefined, meta: undefined, consumerMetas: new Map(), consumerStates: new Map(), linkStates: new Map() };
      this.#streams.set(name, entry);
    }
    return entry;
  }

  #checkOpen(): void {
    if (this.#isClosed) throw new StoreError(StoreErrorCode.closed, 'jetstream storage is closed');
  }
}
