/**
 * JetStream for one server: recovers persisted streams, answers `$JS.API.>`,
 * and owns the streams (and, through them, the consumers).
 */
import type { InternalClient } from '../server/internal-client.ts';
import type { Logger } from '../util/logger.ts';
import { nowNs } from '../util/time.ts';
import { DirectGetResponders } from './api/direct-get.ts';
import { JsApiError, newBadRequestError, newNotEnabledForAccountError } from './api/errors.generated.ts';
import { STREAM_API_HANDLERS, type ApiContext, type ApiRequest } from './api/stream-api.ts';
import { normalizeStreamConfig } from './stream-config.ts';
import { QuarantiningStore } from './quarantining-store.ts';
import { RETENTION_FLOOR_NONE, type RetentionHold } from './retention-hold.ts';
import { newIncarnation, Stream, streamMetaOf, type StreamHost } from './stream.ts';
import type { JetStreamStorage } from './store.ts';

export const API_PREFIX = '$JS.API.';
/** API type names: `io.nats.jetstream.api.v1.<name>`. */
export const API_TYPE_PREFIX = 'io.nats.jetstream.api.v1.';

/** Hooks the consumer layer registers; JetStream calls them for stream events and consumer API requests. */
export interface ConsumerLayer {
  /** Consumer API requests: `CONSUMER.*` tokens after `$JS.API.`. */
  handleApi(context: ApiContext, request: ApiRequest): Promise<void> | void;
  onStreamStarted(stream: Stream): Promise<void> | void;
  onStored(stream: Stream, seq: number): void;
  onRemoved(stream: Stream): void;
  onStreamDeleted(stream: Stream): Promise<void> | void;
  /** Work-queue / interest retention: may `seq` go (its consumer acknowledged it / no consumer needs it)? */
  isRetentionDone(stream: Stream, seq: number, subject: string): boolean;
  consumerCount(stream: Stream): number;
  totalConsumers(): number;
  /** Shutdown: write pending consumer state and stop consumer timers (before the storage closes). */
  stop?(): void;
}

/**
 * Told synchronously that a stream's content may have changed: a message stored or removed,
 * the stream created, recovered or deleted (then `streams.get(name)` is no longer it). The
 * link sender listens. Must be cheap and must not throw.
 */
export type StreamChangeListener = (stream: Stream) => void;

export type JetStreamOptions = {
  readonly client: InternalClient;
  readonly storage: JetStreamStorage;
  readonly log: Logger;
  readonly storeDir: string;
  /** Server max_payload: a stream's max_msg_size default and ceiling. */
  readonly payloadBytesMax: number;
};

/**
 * nats-server parity (jetstream_api.go jsAccountInfoRequest): on a server with JetStream, an
 * account without it is told so on `$JS.API.INFO` (503, 10039 "JetStream not enabled for
 * account") rather than left with no responders. `client` is an internal client of that account.
 */
export function answerJetStreamNotEnabled(client: InternalClient): void {
  const body = Buffer.from(JSON.stringify({ type: `${API_TYPE_PREFIX}account_info_response`, error: newNotEnabledForAccountError().toJSON() }));
  client.subscribe(`${API_PREFIX}INFO`, (_subject, reply) => {
    if (reply !== '') client.publish(reply, '', 0, body);
  });
}

export class JetStream implements StreamHost {
  readonly client: InternalClient;
  readonly storage: JetStreamStorage;
  readonly log: Logger;
  readonly streams = new Map<string, Stream>();
  readonly options: JetStreamOptions;
  consumers: ConsumerLayer | undefined;
  /** Holds back removals by limits and retention (the leaf's link to its hub); set before start(). */
  retentionHold: RetentionHold | undefined;
  readonly directGet: DirectGetResponders;
  apiTotal = 0;
  apiErrors = 0;
  readonly #changeListeners = new Set<StreamChangeListener>();

  constructor(options: JetStreamOptions) {
    this.options = options;
    this.client = options.client;
    this.storage = options.storage;
    this.log = options.log;
    this.consumers = undefined;
    this.retentionHold = undefined;
    this.directGet = new DirectGetResponders(options.client);
  }

  /** Recovers file streams from storage and starts answering the API. */
  async start(): Promise<void> {
    for (const [name, meta] of this.storage.loadStreamMetas()) {
      const config = normalizeStreamConfig(meta['config']);
      if (config instanceof JsApiError) {
        this.log.error({ stream: name, err: config }, 'stored stream config is invalid; stream not loaded');
        continue;
      }
      const createdNs = typeof meta['created_ns'] === 'string' ? BigInt(meta['created_ns']) : nowNs();
      const incarnation = typeof meta['incarnation'] === 'string' ? meta['incarnation'] : undefined;
      const stream = this.openStream(config, createdNs, incarnation);
      // Metadata from before incarnations existed gets one now, kept from here on.
      if (incarnation === undefined) await this.storage.saveStreamMeta(name, streamMetaOf(stream));
      await this.consumers?.onStreamStarted(stream);
      // What waited for the retention floor before the restart is not persisted: look again.
      if (this.retentionHold !== undefined) stream.recheckRetention();
    }
    // Not `$JS.API.>`: DIRECT.GET must reach nobody (503) on streams without allow_direct.
    const onRequest = (subject: string, reply: string, headerBytes: number, data: Buffer): void =>
      this.#onApiRequest(subject, reply, headerBytes, data);
    for (const subject of [`${API_PREFIX}INFO`, `${API_PREFIX}STREAM.>`, `${API_PREFIX}CONSUMER.>`]) this.client.subscribe(subject, onRequest);
    this.log.info({ streams: this.streams.size, store_dir: this.options.storeDir }, 'jetstream started');
  }

  /**
   * Creates the Stream object over its (opened or new) store and starts capturing.
   * A new stream (no `incarnation` given) gets a new incarnation id.
   */
  openStream(config: Stream['config'], createdNs: bigint, incarnation: string = newIncarnation()): Stream {
    const store = new QuarantiningStore(this.storage.openStream(config.name, config.storage), this.log.child({ stream: config.name }));
    const stream = new Stream({ config, createdNs, incarnation, store, host: this });
    this.streams.set(config.name, stream);
    stream.start();
    this.directGet.sync(stream);
    this.notifyStreamChanged(stream);
    return stream;
  }

  onStored(stream: Stream, seq: number): void {
    this.consumers?.onStored(stream, seq);
    this.notifyStreamChanged(stream);
  }

  onRemoved(stream: Stream): void {
    this.consumers?.onRemoved(stream);
    this.notifyStreamChanged(stream);
  }

  retentionFloor(stream: Stream): number {
    return this.retentionHold?.floor(stream) ?? RETENTION_FLOOR_NONE;
  }

  isRetentionDone(stream: Stream, seq: number, subject: string): boolean {
    return this.consumers?.isRetentionDone(stream, seq, subject) ?? false;
  }

  /** Registers a StreamChangeListener; returns its removal. */
  onStreamChange(listener: StreamChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  notifyStreamChanged(stream: Stream): void {
    for (const listener of this.#changeListeners) listener(stream);
  }

  /** Reply to an API request: `{"type": …, …body}`. */
  respond(reply: string, typeName: string, body: Record<string, unknown>): void {
    if (reply === '') return;
    const json = JSON.stringify({ type: `${API_TYPE_PREFIX}${typeName}`, ...body });
    this.client.publish(reply, '', 0, Buffer.from(json));
  }

  respondError(reply: string, typeName: string, error: JsApiError, extra: Record<string, unknown> = {}): void {
    this.apiErrors++;
    this.respond(reply, typeName, { ...extra, error: error.toJSON() });
  }

  #onApiRequest(subject: string, reply: string, headerBytes: number, data: Buffer): void {
    this.apiTotal++;
    const tokens = subject.slice(API_PREFIX.length).split('.');
    const body = data.subarray(headerBytes);
    const request: ApiRequest = { subject, tokens, reply, body: Buffer.from(body) };
    const context: ApiContext = { jetstream: this };
    const group = tokens[0];
    let handling: Promise<void> | void;
    if (group === 'CONSUMER') {
      if (this.consumers === undefined) return;
      handling = this.consumers.handleApi(context, request);
    } else {
      const key = group === 'STREAM' && tokens[1] === 'MSG' ? `STREAM.MSG.${tokens[2] ?? ''}` : `${group}.${tokens[1] ?? ''}`;
      const handler = STREAM_API_HANDLERS.get(group === 'INFO' ? 'INFO' : key);
      if (handler === undefined) return;
      handling = handler(context, request);
    }
    if (handling instanceof Promise) {
      handling.catch((err: unknown) => {
        this.log.error({ err, subject }, 'api request failed');
        this.respondError(reply, 'error_response', newBadRequestError());
      });
    }
  }

  /** Usage per storage type, for $JS.API.INFO and /jsz. */
  usage(): { memory: number; storage: number; streams: number; consumers: number; messages: number } {
    let memory = 0;
    let storage = 0;
    let messages = 0;
    for (const stream of this.streams.values()) {
      const state = stream.store.state();
      messages += state.messages;
      if (stream.config.storage === 'memory') memory += state.bytes;
      else storage += state.bytes;
    }
    return { memory, storage, streams: this.streams.size, consumers: this.consumers?.totalConsumers() ?? 0, messages };
  }

  async stop(): Promise<void> {
    this.consumers?.stop?.();
    for (const stream of this.streams.values()) stream.stop();
    await this.storage.flushed().catch(() => undefined);
    for (const stream of this.streams.values()) await stream.store.close().catch(() => undefined);
    await this.storage.close();
  }
}
