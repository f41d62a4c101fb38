/**
 * One stream: captures its subjects, runs the publish checks in nats-server's
 * order (NATS-SPEC.md §3.3), appends to its store, enforces limits (§3.4), and
 * sends the PubAck only after the store's flush (ARCHITECTURE.md "Durability").
 */
import { randomBytes } from 'node:crypto';
import { getHeader } from '../protocol/headers.ts';
import type { InternalClient } from '../server/internal-client.ts';
import type { Subscription } from '../server/subscription.ts';
import { subjectMatchesFilter } from '../subjects/subject.ts';
import type { Logger } from '../util/logger.ts';
import { nowNs } from '../util/time.ts';
import {
  JsApiError,
  newStreamHeaderExceedsMaximumError,
  newStreamMessageExceedsMaximumError,
  newStreamNotMatchError,
  newStreamRollupFailedError,
  newStreamSealedError,
  newStreamStoreFailedError,
  newStreamWrongLastMsgIDError,
  newStreamWrongLastSequenceError,
} from './api/errors.generated.ts';
import type { StreamConfig } from './api/types.ts';
import type { QuarantiningStore } from './quarantining-store.ts';
import { StoreError, type StoredMessage } from './store.ts';

/** Largest header block a stored message may carry (nats-server: 64 KiB). */
export const HEADER_BYTES_MAX = 65535;
/** At most this many stored messages are read back at start to rebuild the duplicate window. */
export const DEDUP_REBUILD_MSGS_MAX = 100_000;
/** How often expired messages (max_age) are looked for, at most. */
export const AGE_CHECK_INTERVAL_MS_MAX = 1000;

export const JsHeader = {
  msgId: 'Nats-Msg-Id',
  expectedStream: 'Nats-Expected-Stream',
  expectedLastSeq: 'Nats-Expected-Last-Sequence',
  expectedLastSubjectSeq: 'Nats-Expected-Last-Subject-Sequence',
  expectedLastSubjectSeqSubject: 'Nats-Expected-Last-Subject-Sequence-Subject',
  expectedLastMsgId: 'Nats-Expected-Last-Msg-Id',
  rollup: 'Nats-Rollup',
} as const;

/** Every JsHeader starts a header line with this: a block without it needs no header checks (one search instead of seven). */
const CONTROL_HEADER_LINE = Buffer.from('\r\nNats-', 'latin1');

/** What a stream needs from JetStream. */
export interface StreamHost {
  readonly client: InternalClient;
  readonly log: Logger;
  /** Called after a message was appended (consumers wake up). */
  onStored(stream: Stream, seq: number): void;
  /** Called after messages were removed by limits, purge or delete (consumers adjust). */
  onRemoved(stream: Stream): void;
}

type DedupEntry = { readonly seq: number; readonly timeNs: bigint };

/** PubAck JSON (NATS-SPEC.md §3.2): no `type` field. */
function pubAckJson(stream: string, seq: number, isDuplicate: boolean): string {
  return isDuplicate ? `{"stream":${JSON.stringify(stream)},"seq":${seq},"duplicate":true}` : `{"stream":${JSON.stringify(stream)},"seq":${seq}}`;
}

function pubAckErrorJson(stream: string, error: JsApiError): string {
  return JSON.stringify({ error: error.toJSON(), stream, seq: 0 });
}

export class Stream {
  readonly name: string;
  config: StreamConfig;
  readonly createdNs: bigint;
  /** Made at creation, kept for the stream's life (jetstream.ts newIncarnation). */
  readonly incarnation: string;
  readonly store: QuarantiningStore;
  readonly #host: StreamHost;
  readonly #log: Logger;
  #subscriptions: Subscription[];
  readonly #dedup = new Map<string, DedupEntry>();
  /** Msg ids in arrival order, for expiring the duplicate window. */
  readonly #dedupOrder: string[] = [];
  #dedupOrderHead = 0;
  #lastMsgId = '';
  #ageTimer: NodeJS.Timeout | undefined;
  #isClosed = false;

  constructor(options: { config: StreamConfig; createdNs: bigint; incarnation: string; store: QuarantiningStore; host: StreamHost }) {
    this.name = options.config.name;
    this.config = options.config;
    this.createdNs = options.createdNs;
    this.incarnation = options.incarnation;
    this.store = options.store;
    this.#host = options.host;
    this.#log = options.host.log.child({ stream: this.name });
    this.#subscriptions = [];
    this.#ageTimer = undefined;
    const last = this.store.state().lastSeq > 0 ? this.store.load(this.store.state().lastSeq) : undefined;
    if (last?.headers !== undefined) this.#lastMsgId = getHeader(last.headers, JsHeader.msgId) ?? '';
  }

  /** Rebuilds the duplicate window, subscribes to the configured subjects and starts the age timer. */
  start(): void {
    this.#rebuildDedup();
    this.#subscribeSubjects();
    this.#scheduleAgeCheck();
  }

  /** Applies an updated (validated) config. */
  update(config: StreamConfig): void {
    this.config = config;
    for (const subscription of this.#subscriptions) this.#host.client.unsubscribe(subscription);
    this.#subscribeSubjects();
    this.enforceLimits();
    this.#scheduleAgeCheck();
  }

  #subscribeSubjects(): void {
    const subjects = this.config.subjects ?? [];
    this.#subscriptions = subjects.map((subject) =>
      this.#host.client.subscribe(subject, (s, reply, headerBytes, data) => this.#onPublish(s, reply, headerBytes, data)),
    );
  }

  /** Stops capturing and timers; the store stays open (JetStream closes or deletes it). */
  stop(): void {
    this.#isClosed = true;
    for (const subscription of this.#subscriptions) this.#host.client.unsubscribe(subscription);
    this.#subscriptions = [];
    if (this.#ageTimer !== undefined) clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
  }

  #onPublish(subject: string, reply: string, headerBytes: number, data: Buffer): void {
    const headers = headerBytes > 0 ? Buffer.from(data.subarray(0, headerBytes)) : undefined;
    const payload = Buffer.from(data.subarray(headerBytes));
    const outcome = this.storeMessage(subject, headers, payload);
    if (reply === '' || this.config.no_ack === true) {
      if (outcome instanceof JsApiError) this.#log.debug({ err_code: outcome.errCode }, 'publish refused');
      return;
    }
    if (outcome instanceof JsApiError) {
      this.#reply(reply, pubAckErrorJson(this.name, outcome));
      return;
    }
    // ARCHITECTURE.md "Durability": the PubAck waits for the flush that covers this message.
    this.store.flushed().then(
      () => this.#reply(reply, pubAckJson(this.name, outcome.seq, outcome.isDuplicate)),
      (err: unknown) => {
        this.#log.error({ err }, 'store flush failed');
        const text = err instanceof Error ? err.message : String(err);
        this.#reply(reply, pubAckErrorJson(this.name, newStreamStoreFailedError({ err: text })));
      },
    );
  }

  #reply(subject: string, json: string): void {
    this.#host.client.publish(subject, '', 0, Buffer.from(json));
  }

  /**
   * The synchronous part of a publish: checks, dedup, append, limits. Returns the
   * sequence (the original one for a duplicate) or the API error to answer with.
   * Public for canopy's own writers (the hub's link ingest); durable after `store.flushed()`.
   */
  storeMessage(subject: string, headers: Buffer | undefined, data: Buffer): { seq: number; isDuplicate: boolean } | JsApiError {
    if (this.#isClosed) return newStreamStoreFailedError({ err: 'stream is closed' });
    if (this.config.sealed) return newStreamSealedError();
    const headerBytes = headers?.length ?? 0;
    if (headerBytes > HEADER_BYTES_MAX) return newStreamHeaderExceedsMaximumError();
    if (this.config.max_msg_size >= 0 && headerBytes + data.length > this.config.max_msg_size) {
      return newStreamMessageExceedsMaximumError();
    }
    let msgId = '';
    let rollup = '';
    if (headers !== undefined && headers.indexOf(CONTROL_HEADER_LINE) >= 0) {
      const checked = this.#checkHeaders(subject, headers);
      if (checked instanceof JsApiError) return checked;
      if (checked.duplicateSeq !== undefined) return { seq: checked.duplicateSeq, isDuplicate: true };
      msgId = checked.msgId;
      rollup = checked.rollup;
    }
    const refused = this.#checkDiscardNew(subject, this.store.messageBytes(Buffer.byteLength(subject), headerBytes, data.length), rollup !== '');
    if (refused !== undefined) return refused;
    let seq: number;
    const timestampNs = nowNs();
    try {
      seq = this.store.append({ subject, headers, data, timestampNs });
    } catch (err) {
      if (err instanceof StoreError) {
        this.#log.warn({ code: err.code }, 'append refused by store');
        return newStreamStoreFailedError({ err: err.message });
      }
      throw err;
    }
    if (msgId !== '') this.#rememberMsgId(msgId, seq, timestampNs);
    this.#lastMsgId = msgId;
    if (rollup === 'all') this.store.purge({ seq });
    else if (rollup === 'sub') this.store.purge({ subject, seq });
    this.enforceLimits(subject);
    this.#host.onStored(this, seq);
    return { seq, isDuplicate: false };
  }

  /** NATS-SPEC.md §3.3, in nats-server's order. */
  #checkHeaders(
    subject: string,
    headers: Buffer,
  ): { msgId: string; rollup: string; duplicateSeq: number | undefined } | JsApiError {
    const expectedStream = getHeader(headers, JsHeader.expectedStream);
    if (expectedStream !== undefined && expectedStream !== this.name) return newStreamNotMatchError();
    const expectedSubjectSeq = getHeader(headers, JsHeader.expectedLastSubjectSeq);
    if (expectedSubjectSeq !== undefined) {
      const checkSubject = getHeader(headers, JsHeader.expectedLastSubjectSeqSubject) || subject;
      const lastSeq = this.store.loadLast(checkSubject)?.seq ?? 0;
      if (Number(expectedSubjectSeq) !== lastSeq) return newStreamWrongLastSequenceError({ seq: lastSeq });
    }
    const expectedSeq = getHeader(headers, JsHeader.expectedLastSeq);
    if (expectedSeq !== undefined) {
      const lastSeq = this.store.state().lastSeq;
      if (Number(expectedSeq) !== lastSeq) return newStreamWrongLastSequenceError({ seq: lastSeq });
    }
    const msgId = getHeader(headers, JsHeader.msgId) ?? '';
    if (msgId !== '') {
      const seen = this.#lookupMsgId(msgId);
      if (seen !== undefined) return { msgId, rollup: '', duplicateSeq: seen.seq };
    }
    const expectedMsgId = getHeader(headers, JsHeader.expectedLastMsgId);
    if (expectedMsgId !== undefined && expectedMsgId !== this.#lastMsgId) {
      return newStreamWrongLastMsgIDError({ id: this.#lastMsgId });
    }
    const rollup = getHeader(headers, JsHeader.rollup) ?? '';
    if (rollup !== '') {
      if (!this.config.allow_rollup_hdrs) return newStreamRollupFailedError({ err: 'rollup not permitted' });
      if (rollup !== 'sub' && rollup !== 'all') return newStreamRollupFailedError({ err: `rollup value invalid: ${JSON.stringify(rollup)}` });
    }
    return { msgId, rollup, duplicateSeq: undefined };
  }

  /** discard:new refuses what would exceed max_msgs / max_bytes; per-subject rules as in NATS-SPEC.md §3.4. */
  #checkDiscardNew(subject: string, bytes: number, isRollup: boolean): JsApiError | undefined {
    const config = this.config;
    const perSubjectMax = config.max_msgs_per_subject;
    let subjectCount = 0;
    if (perSubjectMax > 0) subjectCount = this.store.subjectCounts(subject).get(subject) ?? 0;
    const isSubjectFull = perSubjectMax > 0 && subjectCount >= perSubjectMax;
    if (isSubjectFull && config.discard_new_per_subject === true && !isRollup) {
      return newStreamStoreFailedError({ err: 'maximum messages per subject exceeded' });
    }
    if (config.discard !== 'new') return undefined;
    const state = this.store.state();
    if (config.max_msgs > 0 && !isSubjectFull && state.messages + 1 > config.max_msgs) {
      return newStreamStoreFailedError({ err: 'maximum messages exceeded' });
    }
    if (config.max_bytes > 0 && state.bytes + bytes > config.max_bytes) {
      let freed = 0;
      if (isSubjectFull) {
        const oldest = this.store.loadNext(subject, 0);
        if (oldest !== undefined) freed = this.store.messageBytes(Buffer.byteLength(oldest.subject), oldest.headers?.length ?? 0, oldest.data.length);
      }
      if (state.bytes + bytes - freed > config.max_bytes) return newStreamStoreFailedError({ err: 'maximum bytes exceeded' });
    }
    if (config.max_bytes > 0 && bytes > config.max_bytes) return newStreamStoreFailedError({ err: 'message too large' });
    return undefined;
  }

  /** Drops what the limits say must go (discard old, per-subject history, max_age). */
  enforceLimits(subject?: string): void {
    const config = this.config;
    let removed = 0;
    if (config.max_msgs_per_subject > 0) {
      const subjects = subject === undefined ? this.store.subjectCounts('>') : new Map([[subject, this.store.subjectCounts(subject).get(subject) ?? 0]]);
      for (const [name, count] of subjects) {
        for (let extra = count - config.max_msgs_per_subject; extra > 0; extra--) {
          const oldest = this.store.loadNext(name, 0);
          if (oldest === undefined || !this.store.remove(oldest.seq)) break;
          removed++;
        }
      }
    }
    if (config.max_msgs > 0) {
      while (this.store.state().messages > config.max_msgs && this.#removeFirst()) removed++;
    }
    if (config.max_bytes > 0) {
      while (this.store.state().bytes > config.max_bytes && this.#removeFirst()) removed++;
    }
    if (removed > 0) this.#host.onRemoved(this);
  }

  #removeFirst(): boolean {
    const first = this.store.state().firstSeq;
    return first > 0 && this.store.remove(first);
  }

  #scheduleAgeCheck(): void {
    if (this.#ageTimer !== undefined) clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
    if (this.config.max_age <= 0 || this.#isClosed) return;
    const maxAgeMs = this.config.max_age / 1e6;
    this.#ageTimer = setTimeout(() => this.#onAgeCheck(), Math.min(AGE_CHECK_INTERVAL_MS_MAX, Math.max(maxAgeMs / 2, 10)));
    this.#ageTimer.unref();
  }

  #onAgeCheck(): void {
    this.#ageTimer = undefined;
    const cutoffNs = nowNs() - BigInt(this.config.max_age);
    let removed = 0;
    for (;;) {
      const first = this.store.state().firstSeq;
      const message = first > 0 ? this.store.load(first) : undefined;
      if (message === undefined || message.timestampNs > cutoffNs) break;
      if (!this.store.remove(message.seq)) break;
      removed++;
    }
    if (removed > 0) this.#host.onRemoved(this);
    this.#expireMsgIds();
    this.#scheduleAgeCheck();
  }

  /**
   * nats-server parity: stream.go rebuildDedupe. After a restart, the Nats-Msg-Id of
   * messages stored within the duplicate window are known again, so a client that
   * retries a publish across the restart is answered "duplicate", not stored twice.
   */
  #rebuildDedup(): void {
    const state = this.store.state();
    if (state.messages === 0) return;
    const cutoffNs = nowNs() - BigInt(this.config.duplicate_window);
    const found: { id: string; seq: number; timeNs: bigint }[] = [];
    let read = 0;
    for (let seq = state.lastSeq; seq >= state.firstSeq && read < DEDUP_REBUILD_MSGS_MAX; seq--, read++) {
      const message = this.store.load(seq);
      if (message === undefined) continue;
      if (message.timestampNs < cutoffNs) break;
      const id = message.headers === undefined ? undefined : getHeader(message.headers, JsHeader.msgId);
      if (id !== undefined && id !== '') found.push({ id, seq, timeNs: message.timestampNs });
    }
    if (read >= DEDUP_REBUILD_MSGS_MAX) this.#log.warn({ read }, 'duplicate window only partly rebuilt');
    for (let i = found.length - 1; i >= 0; i--) {
      const entry = found[i]!;
      if (!this.#dedup.has(entry.id)) this.#rememberMsgId(entry.id, entry.seq, entry.timeNs);
    }
  }

  #lookupMsgId(msgId: string): DedupEntry | undefined {
    const entry = this.#dedup.get(msgId);
    if (entry === undefined) return undefined;
    if (nowNs() - entry.timeNs > BigInt(this.config.duplicate_window)) return undefined;
    return entry;
  }

  #rememberMsgId(msgId: string, seq: number, timeNs: bigint): void {
    this.#dedup.set(msgId, { seq, timeNs });
    this.#dedupOrder.push(msgId);
    if (this.#dedupOrder.length - this.#dedupOrderHead > 1024) this.#expireMsgIds();
  }

  /** Forgets ids older than the duplicate window (the window bounds the map). */
  #expireMsgIds(): void {
    const cutoffNs = nowNs() - BigInt(this.config.duplicate_window);
    while (this.#dedupOrderHead < this.#dedupOrder.length) {
      const id = this.#dedupOrder[this.#dedupOrderHead]!;
      const entry = this.#dedup.get(id);
      if (entry !== undefined && entry.timeNs > cutoffNs) break;
      if (entry !== undefined) this.#dedup.delete(id);
      this.#dedupOrderHead++;
    }
    if (this.#dedupOrderHead > 4096 && this.#dedupOrderHead * 2 > this.#dedupOrder.length) {
      this.#dedupOrder.splice(0, this.#dedupOrderHead);
      this.#dedupOrderHead = 0;
    }
  }

  /** True when `subject` is one this stream captures. */
  capturesSubject(subject: string): boolean {
    return (this.config.subjects ?? []).some((filter) => subjectMatchesFilter(subject, filter));
  }

  /**
   * A stored message for MSG.GET / DIRECT.GET: undefined when absent, the StoreError
   * when the message asked for is damaged (it is reported, never served).
   */
  getMessage(request: { seq?: number; last_by_subj?: string; next_by_subj?: string }): StoredMessage | StoreError | undefined {
    this.store.damageSeen();
    let message: StoredMessage | undefined;
    if (request.last_by_subj !== undefined) message = this.store.loadLast(request.last_by_subj);
    else if (request.next_by_subj !== undefined) message = this.store.loadNext(request.next_by_subj, request.seq ?? 0);
    else if (request.seq !== undefined) message = this.store.load(request.seq);
    const damage = this.store.damageSeen();
    if (message === undefined && damage !== undefined) return damage;
    return message;
  }
}

/** Bytes of randomness in an incarnation id (hex-encoded: 32 characters). */
const INCARNATION_BYTES = 16;

/**
 * A stream's incarnation id (core/link/README.md "Incarnation"): made when the stream is
 * created, kept for its life, never reused, so a deleted and re-created stream (or a memory
 * stream after a restart) is told apart from the old one by whoever copies it.
 */
export function newIncarnation(): string {
  return randomBytes(INCARNATION_BYTES).toString('hex');
}

/** What is persisted of a file stream: its config, creation time and incarnation. */
export function streamMetaOf(stream: Stream): Record<string, unknown> {
  return { config: stream.config, created_ns: stream.createdNs.toString(), incarnation: stream.incarnation };
}
