/**
 * The consumer layer of JetStream: every stream's consumers, the consumer API
 * (`$JS.API.CONSUMER.>`), acks (`$JS.ACK.>`), flow control replies (`$JS.FC.>`),
 * interest/work-queue retention (NATS-SPEC.md §5) and consumer persistence.
 *
 * Persistence: durable consumers of file streams save their config (saveConsumerMeta,
 * awaited before the create response) and their state (saveConsumerState) at most every
 * STATE_FLUSH_INTERVAL_MS, from one timer for the whole layer. Ephemerals and consumers of
 * memory streams are not persisted.
 */
import { encodeHeaders } from '../protocol/headers.ts';
import type { InternalClient } from '../server/internal-client.ts';
import { subjectsOverlap } from '../subjects/subject.ts';
import type { Logger } from '../util/logger.ts';
import { nowNs } from '../util/time.ts';
import { handleConsumerApi } from './api/consumer-api.ts';
import {
  JsApiError,
  newConsumerAlreadyExistsError,
  newConsumerDoesNotExistError,
  newConsumerWQConsumerNotDeliverAllError,
  newConsumerWQConsumerNotUniqueError,
  newConsumerWQMultipleUnfilteredError,
  newConsumerWQRequiresExplicitAckError,
  newMaximumConsumersLimitError,
} from './api/errors.generated.ts';
import type { ApiContext, ApiRequest } from './api/stream-api.ts';
import { checkConsumerUpdate, filtersOf, normalizeConsumerConfig, sameConsumerConfig, type ConsumerConfig } from './consumer-config.ts';
import { Consumer, randomToken, type ConsumerHost } from './consumer.ts';
import type { ConsumerLayer, JetStream } from './jetstream.ts';
import type { Stream } from './stream.ts';

/** How often dirty consumer state is written (one timer for the layer). */
export const STATE_FLUSH_INTERVAL_MS = 100;
/** Most consumers on one server (canopy's limit; nats-server bounds them per account). Past it: 10026. */
export const CONSUMERS_MAX = 100_000;
/** Length of generated consumer names (nats-server createConsumerName: 8 characters). */
export const GENERATED_NAME_CHARS = 8;

const ACK_SUBJECT = '$JS.ACK.>';
const FC_SUBJECT = '$JS.FC.>';
const ACK_PREFIX_LENGTH = '$JS.ACK.'.length;
const FC_PREFIX_LENGTH = '$JS.FC.'.length;
/** A v1 ack subject has 9 tokens: $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>. */
const ACK_SUBJECT_TOKENS = 9;
const EMPTY = Buffer.alloc(0);
/** What a request to a subject nobody serves gets (NATS-SPEC.md §1.7). */
const NO_RESPONDERS = encodeHeaders([], '503');

export type CreateAction = 'create' | 'update' | '';

/** The consumer layer; `jetstream.consumers = createConsumerLayer(jetstream)`. */
export function createConsumerLayer(jetstream: JetStream): ConsumerLayer {
  return new ConsumerRegistry(jetstream);
}

export class ConsumerRegistry implements ConsumerLayer, ConsumerHost {
  readonly jetstream: JetStream;
  readonly client: InternalClient;
  readonly log: Logger;
  /** stream name → consumer name → consumer. */
  readonly #byStream = new Map<string, Map<string, Consumer>>();
  readonly #dirty = new Set<Consumer>();
  #flushTimer: NodeJS.Timeout | undefined = undefined;
  #total = 0;
  #isStopped = false;

  constructor(jetstream: JetStream) {
    this.jetstream = jetstream;
    this.client = jetstream.client;
    this.log = jetstream.log.child({ component: 'consumers' });
    this.client.subscribe(ACK_SUBJECT, (subject, reply, headerBytes, data) => this.#onAck(subject, reply, headerBytes, data));
    this.client.subscribe(FC_SUBJECT, (subject) => this.#onFlowControl(subject));
  }

  // --- ConsumerLayer ----------------------------------------------------------------------------

  handleApi(context: ApiContext, request: ApiRequest): Promise<void> | void {
    return handleConsumerApi(this, context, request);
  }

  /** Recovers the persisted (durable) consumers of a stream. */
  onStreamStarted(stream: Stream): void {
    const metas = this.jetstream.storage.loadConsumerMetas(stream.name);
    for (const [name, meta] of metas) {
      const config = normalizeConsumerConfig(meta['config'], stream.config);
      if (config instanceof JsApiError) {
        this.log.error({ stream: stream.name, consumer: name, err: config }, 'stored consumer config is invalid; consumer not loaded');
        continue;
      }
      const createdNs = typeof meta['created_ns'] === 'string' ? BigInt(meta['created_ns']) : nowNs();
      const consumer = new Consumer({ stream, config, createdNs, host: this });
      const state = this.jetstream.storage.loadConsumerState(stream.name, name);
      if (state !== undefined) consumer.restoreState(state);
      else consumer.selectStart();
      this.#register(consumer);
      consumer.start();
    }
    if (metas.size > 0) this.log.info({ stream: stream.name, consumers: metas.size }, 'consumers recovered');
  }

  onStored(stream: Stream, seq: number): void {
    const consumers = this.#byStream.get(stream.name);
    if (consumers === undefined) {
      // NATS-SPEC.md §5: an interest stream does not keep what no consumer wants.
      if (stream.config.retention === 'interest') stream.removeForRetention(seq);
      return;
    }
    // One load for every filtered consumer, none when no consumer is filtered.
    let subject: string | undefined;
    for (const consumer of consumers.values()) {
      if (!consumer.needsStoredSubject) continue;
      subject = stream.store.load(seq)?.subject;
      break;
    }
    if (stream.config.retention === 'interest' && !hasInterestIn(consumers, subject)) {
      stream.removeForRetention(seq);
      return;
    }
    for (const consumer of consumers.values()) consumer.onStored(seq, subject);
  }

  onRemoved(stream: Stream): void {
    const consumers = this.#byStream.get(stream.name);
    if (consumers === undefined) return;
    for (const consumer of consumers.values()) consumer.onStreamRemoved();
  }

  onStreamDeleted(stream: Stream): void {
    const consumers = this.#byStream.get(stream.name);
    if (consumers === undefined) return;
    for (const consumer of consumers.values()) {
      consumer.stop({ isDeleted: true });
      this.#dirty.delete(consumer);
    }
    this.#total -= consumers.size;
    this.#byStream.delete(stream.name);
  }

  isRetentionDone(stream: Stream, seq: number, subject: string): boolean {
    const consumers = this.#byStream.get(stream.name)?.values() ?? [];
    if (stream.config.retention === 'interest') {
      for (const consumer of consumers) if (consumer.needsAck(seq, subject)) return false;
      return true;
    }
    if (stream.config.retention !== 'workqueue') return false;
    // Work queue: only its consumer's acknowledgement frees a message (partitions are unique).
    for (const consumer of consumers) if (consumer.matchesSubject(subject)) return !consumer.needsAck(seq, subject);
    return false;
  }

  consumerCount(stream: Stream): number {
    return this.#byStream.get(stream.name)?.size ?? 0;
  }

  totalConsumers(): number {
    return this.#total;
  }

  /** Writes dirty state and stops every consumer's timers (server shutdown). */
  stop(): void {
    if (this.#isStopped) return;
    this.#isStopped = true;
    this.#flushState();
    for (const consumers of this.#byStream.values()) for (const consumer of consumers.values()) consumer.stop({ isDeleted: false });
  }

  // --- Lookup -----------------------------------------------------------------------------------

  get(streamName: string, name: string): Consumer | undefined {
    return this.#byStream.get(streamName)?.get(name);
  }

  /** The stream's consumers sorted by name. */
  list(streamName: string): Consumer[] {
    const consumers = this.#byStream.get(streamName);
    if (consumers === undefined) return [];
    return [...consumers.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** An unused 8-character name for a legacy ephemeral. */
  generateName(streamName: string): string {
    for (;;) {
      const name = randomToken(GENERATED_NAME_CHARS);
      if (this.get(streamName, name) === undefined) return name;
    }
  }

  // --- Create, update, delete -------------------------------------------------------------------

  /**
   * Create or update (NATS-SPEC.md §2.5). Returns the ConsumerInfo taken before delivery starts
   * (nats-server's initial info), or the API error.
   */
  async createOrUpdate(stream: Stream, config: ConsumerConfig, action: CreateAction): Promise<Record<string, unknown> | JsApiError> {
    const existing = this.get(stream.name, config.name);
    if (existing !== undefined) return this.#update(stream, existing, config, action);
    if (action === 'update') return newConsumerDoesNotExistError();
    const consumers = this.#byStream.get(stream.name);
    const count = consumers?.size ?? 0;
    if (stream.config.max_consumers > 0 && count >= stream.config.max_consumers) return newMaximumConsumersLimitError();
    if (this.#total >= CONSUMERS_MAX) return newMaximumConsumersLimitError();
    if (stream.config.retention === 'workqueue') {
      const refused = this.#checkWorkQueue(stream, config, undefined);
      if (refused !== undefined) return refused;
    }
    const consumer = new Consumer({ stream, config, createdNs: nowNs(), host: this });
    consumer.selectStart();
    this.#register(consumer);
    await this.#persistMeta(consumer);
    if (consumer.isClosed) return newConsumerDoesNotExistError();
    const info = consumer.info();
    consumer.start();
    this.log.debug({ stream: stream.name, consumer: consumer.name, durable: consumer.isDurable }, 'consumer created');
    return info;
  }

  async #update(stream: Stream, existing: Consumer, config: ConsumerConfig, action: CreateAction): Promise<Record<string, unknown> | JsApiError> {
    if (action === 'create' && !sameConsumerConfig(existing.config, config)) return newConsumerAlreadyExistsError();
    if (stream.config.retention === 'workqueue' && !this.#isPartitionUnique(stream, config, existing)) {
      return newConsumerWQConsumerNotUniqueError();
    }
    const deliverSubject = existing.config.deliver_subject ?? '';
    const refused = checkConsumerUpdate(existing.config, config, deliverSubject !== '' && this.client.hasInterest(deliverSubject));
    if (refused !== undefined) return refused;
    if (!sameConsumerConfig(existing.config, config)) {
      existing.updateConfig(config);
      await this.#persistMeta(existing);
      if (stream.config.retention === 'interest') stream.recheckRetention();
    }
    return existing.info();
  }

  /** nats-server's work-queue consumer rules (10098, 10101, 10099, 10100). */
  #checkWorkQueue(stream: Stream, config: ConsumerConfig, self: Consumer | undefined): JsApiError | undefined {
    if (config.ack_policy !== 'explicit') return newConsumerWQRequiresExplicitAckError();
    if (config.deliver_policy !== 'all') return newConsumerWQConsumerNotDeliverAllError();
    if (this.consumerCount(stream) === 0) return undefined;
    if (filtersOf(config).length === 0) return newConsumerWQMultipleUnfilteredError();
    if (!this.#isPartitionUnique(stream, config, self)) return newConsumerWQConsumerNotUniqueError();
    return undefined;
  }

  /** No other consumer's filters overlap this config's (nats-server partitionUnique). */
  #isPartitionUnique(stream: Stream, config: ConsumerConfig, self: Consumer | undefined): boolean {
    const mine = filtersOf(config);
    for (const other of this.#byStream.get(stream.name)?.values() ?? []) {
      if (other === self || other.name === config.name) continue;
      const theirs = other.filters;
      if (mine.length === 0 || theirs.length === 0) return false;
      for (const a of mine) for (const b of theirs) if (subjectsOverlap(a, b)) return false;
    }
    return true;
  }

  async delete(stream: Stream, name: string): Promise<boolean> {
    const consumer = this.get(stream.name, name);
    if (consumer === undefined) return false;
    this.#unregister(consumer);
    consumer.stop({ isDeleted: true });
    if (this.#isPersisted(consumer)) await this.jetstream.storage.deleteConsumer(stream.name, name);
    if (stream.config.retention === 'interest') stream.recheckRetention();
    this.log.debug({ stream: stream.name, consumer: name }, 'consumer deleted');
    return true;
  }

  #register(consumer: Consumer): void {
    let consumers = this.#byStream.get(consumer.stream.name);
    if (consumers === undefined) {
      consumers = new Map();
      this.#byStream.set(consumer.stream.name, consumers);
    }
    consumers.set(consumer.name, consumer);
    this.#total++;
  }

  #unregister(consumer: Consumer): void {
    const consumers = this.#byStream.get(consumer.stream.name);
    if (consumers?.get(consumer.name) !== consumer) return;
    consumers.delete(consumer.name);
    this.#total--;
    this.#dirty.delete(consumer);
    if (consumers.size === 0) this.#byStream.delete(consumer.stream.name);
  }

  // --- ConsumerHost -----------------------------------------------------------------------------

  onAcknowledged(consumer: Consumer, seq: number): void {
    const stream = consumer.stream;
    if (stream.config.retention === 'workqueue') {
      stream.removeForRetention(seq);
      return;
    }
    if (stream.config.retention !== 'interest') return;
    const consumers = this.#byStream.get(stream.name);
    let subject: string | undefined;
    for (const other of consumers?.values() ?? []) {
      if (other === consumer) continue;
      if (subject === undefined && other.needsStoredSubject) {
        const message = stream.store.load(seq);
        if (message === undefined) return;
        subject = message.subject;
      }
      if (other.needsAck(seq, subject ?? '')) return;
    }
    stream.removeForRetention(seq);
  }

  onStateChanged(consumer: Consumer): void {
    if (this.#isStopped || !this.#isPersisted(consumer)) return;
    this.#dirty.add(consumer);
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flushState();
    }, STATE_FLUSH_INTERVAL_MS);
    this.#flushTimer.unref();
  }

  onInactive(consumer: Consumer): void {
    void this.delete(consumer.stream, consumer.name).catch((err: unknown) => {
      this.log.error({ err, stream: consumer.stream.name, consumer: consumer.name }, 'deleting an inactive consumer failed');
    });
  }

  #isPersisted(consumer: Consumer): boolean {
    return consumer.isDurable && consumer.stream.config.storage === 'file' && consumer.config.mem_storage !== true;
  }

  async #persistMeta(consumer: Consumer): Promise<void> {
    if (!this.#isPersisted(consumer)) return;
    await this.jetstream.storage.saveConsumerMeta(consumer.stream.name, consumer.name, {
      config: consumer.config,
      created_ns: consumer.createdNs.toString(),
    });
    this.onStateChanged(consumer);
  }

  #flushState(): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const consumer of this.#dirty) {
      if (consumer.isClosed || !consumer.takeStateDirty()) continue;
      try {
        this.jetstream.storage.saveConsumerState(consumer.stream.name, consumer.name, consumer.stateRecord());
      } catch (err) {
        this.log.error({ err, stream: consumer.stream.name, consumer: consumer.name }, 'saving consumer state failed');
      }
    }
    this.#dirty.clear();
  }

  // --- Acks and flow control --------------------------------------------------------------------

  /** `$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>` (NATS-SPEC.md §4.3). */
  #onAck(subject: string, reply: string, headerBytes: number, data: Buffer): void {
    const streamEnd = subject.indexOf('.', ACK_PREFIX_LENGTH);
    const consumerEnd = streamEnd < 0 ? -1 : subject.indexOf('.', streamEnd + 1);
    const deliveriesEnd = consumerEnd < 0 ? -1 : subject.indexOf('.', consumerEnd + 1);
    const streamSeqEnd = deliveriesEnd < 0 ? -1 : subject.indexOf('.', deliveriesEnd + 1);
    const consumerSeqEnd = streamSeqEnd < 0 ? -1 : subject.indexOf('.', streamSeqEnd + 1);
    if (consumerSeqEnd < 0 || countTokens(subject) !== ACK_SUBJECT_TOKENS) return;
    const consumer = this.get(subject.slice(ACK_PREFIX_LENGTH, streamEnd), subject.slice(streamEnd + 1, consumerEnd));
    if (consumer === undefined || consumer.config.ack_policy === 'none') {
      // nats-server has no ack subscription for these: a requester gets no-responders.
      if (reply !== '') this.client.publish(reply, '', NO_RESPONDERS.length, NO_RESPONDERS);
      return;
    }
    const fields = {
      deliveries: parseDecimal(subject, consumerEnd + 1, deliveriesEnd),
      streamSeq: parseDecimal(subject, deliveriesEnd + 1, streamSeqEnd),
      consumerSeq: parseDecimal(subject, streamSeqEnd + 1, consumerSeqEnd),
    };
    const payload = headerBytes > 0 ? data.subarray(headerBytes) : data;
    const mayReply = consumer.processAck(fields, payload, reply);
    // The double ack (AckSync): an empty message once the ack is recorded.
    if (mayReply && reply !== '') this.client.publish(reply, '', 0, EMPTY);
  }

  /** `$JS.FC.<stream>.<consumer>.<token>`: a push client answered a flow control request. */
  #onFlowControl(subject: string): void {
    const streamEnd = subject.indexOf('.', FC_PREFIX_LENGTH);
    const consumerEnd = streamEnd < 0 ? -1 : subject.indexOf('.', streamEnd + 1);
    if (consumerEnd < 0) return;
    this.get(subject.slice(FC_PREFIX_LENGTH, streamEnd), subject.slice(streamEnd + 1, consumerEnd))?.onFlowControlReply(subject);
  }

  /** Answers a pull request for a stream or consumer that does not exist, as nats-server's missing subscription would. */
  sendNoResponders(reply: string): void {
    if (reply !== '') this.client.publish(reply, '', NO_RESPONDERS.length, NO_RESPONDERS);
  }
}

/** Does some consumer's filter take a message on `subject` (undefined: every consumer is unfiltered)? */
function hasInterestIn(consumers: Map<string, Consumer>, subject: string | undefined): boolean {
  for (const consumer of consumers.values()) {
    if (subject === undefined || consumer.matchesSubject(subject)) return true;
  }
  return false;
}

function countTokens(subject: string): number {
  let count = 1;
  for (let i = 0; i < subject.length; i++) if (subject.charCodeAt(i) === 0x2e) count++;
  return count;
}

/** Digits of subject[start, end) as a number; -1 when not all digits (nats-server parseAckReplyNum). */
function parseDecimal(subject: string, start: number, end: number): number {
  if (end <= start) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = subject.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}
