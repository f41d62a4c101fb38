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
/** Messages one work-queue / interest retention scan looks at before yielding the event loop. */
export const RETENTION_SCAN_PER_TURN_MAX = 10_000;

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
  /** The retention hold's floor for the stream (retention-hold.ts); RETENTION_FLOOR_NONE without a hold. */
  retentionFloor(stream: Stream): number;
  /** Work-queue / interest retention: may `seq` go (its consumer acknowledged it / no consumer needs it)? */
  isRetentionDone(stream: Stream, seq: number, subject: string): boolean;
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
  /** Highest sequence whose removal by limits or retention the retention floor deferred (0: none). */
  #heldThroughSeq = 0;
  /** Lowest sequence whose work-queue / interest removal may be deferred (0: none): where the next retention scan starts. */
  #scanFromSeq = 0;
  /** A max_msgs_per_subject removal was deferred: the per-subject limit runs again when the floor moves. */
  #isPerSubjectHeld = false;
  #heldRefusals = 0;

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

  /** Applies an updated (validated) config: limits and retention run again (the retention floor may have changed with it). */
  update(config: StreamConfig): void {
    this.config = config;
    for (const subscription of this.#subscriptions) this.#host.client.unsubscribe(subscription);
    this.#subscribeSubjects();
    this.#isPerSubjectHeld = true; // the per-subject limit itself may have changed
    this.applyRetention();
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
    const bytes = this.store.messageBytes(Buffer.byteLength(subject), headerBytes, data.length);
    const refused = this.#checkDiscardNew(subject, bytes, rollup !== '') ?? this.#checkHeldLimits(subject, bytes, rollup);
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
        if (oldest !== undefined) freed = this.#bytesOf(oldest);
      }
      if (state.bytes + bytes - freed > config.max_bytes) return newStreamStoreFailedError({ err: 'maximum bytes exceeded' });
    }
    if (config.max_bytes > 0 && bytes > config.max_bytes) return newStreamStoreFailedError({ err: 'message too large' });
    return undefined;
  }

  /**
   * Retention hold with discard old (retention-hold.ts): a publish after which the limits would
   * have to remove a message above the floor is refused with the discard-new errors instead.
   * Walks the messages enforceLimits would remove after the append (a full subject's oldest
   * first, then from the front): as many as it removes anyway when the publish is taken.
   * A rollup of everything frees the stream itself; a subject rollup is checked as a publish.
   */
  #checkHeldLimits(subject: string, bytes: number, rollup: string): JsApiError | undefined {
    const config = this.config;
    if (config.discard !== 'old' || rollup === 'all' || (config.max_msgs <= 0 && config.max_bytes <= 0)) return undefined;
    const state = this.store.state();
    let msgsOver = config.max_msgs > 0 ? state.messages + 1 - config.max_msgs : 0;
    let bytesOver = config.max_bytes > 0 ? state.bytes + bytes - config.max_bytes : 0;
    if (msgsOver <= 0 && bytesOver <= 0) return undefined;
    const floor = this.retentionFloor();
    if (floor >= state.lastSeq) return undefined;
    let subjectOldestSeq = 0;
    if (config.max_msgs_per_subject > 0 && (this.store.subjectCounts(subject).get(subject) ?? 0) >= config.max_msgs_per_subject) {
      const oldest = this.store.loadNext(subject, 0);
      if (oldest !== undefined && oldest.seq <= floor) {
        subjectOldestSeq = oldest.seq;
        msgsOver--;
        bytesOver -= this.#bytesOf(oldest);
      }
    }
    // The usual case at a max_msgs limit: the first message (live by definition) goes, and it is synced.
    if (bytesOver <= 0 && msgsOver === 1 && state.firstSeq <= floor && state.firstSeq !== subjectOldestSeq) return undefined;
    for (let seq = state.firstSeq; msgsOver > 0 || bytesOver > 0; ) {
      const message = seq <= floor ? this.store.loadNext('>', seq) : undefined;
      if (message === undefined || message.seq > floor) {
        this.#heldRefusals++;
        return newStreamStoreFailedError({ err: msgsOver > 0 ? 'maximum messages exceeded' : 'maximum bytes exceeded' });
      }
      seq = message.seq + 1;
      if (message.seq === subjectOldestSeq) continue;
      msgsOver--;
      bytesOver -= this.#bytesOf(message);
    }
    return undefined;
  }

  #bytesOf(message: StoredMessage): number {
    return this.store.messageBytes(Buffer.byteLength(message.subject), message.headers?.length ?? 0, message.data.length);
  }

  /** Drops what the limits say must go (discard old, per-subject history), down to the retention floor. */
  enforceLimits(subject?: string): void {
    const removed = this.#enforcePerSubject(subject, undefined) + this.#enforceFront(undefined);
    if (removed > 0) this.#host.onRemoved(this);
  }

  /**
   * max_msgs_per_subject for one subject or all: the oldest of a subject go while it is over,
   * unless the floor holds them. The floor is asked for only when something is over (the hot path).
   */
  #enforcePerSubject(subject: string | undefined, floor: number | undefined): number {
    const max = this.config.max_msgs_per_subject;
    if (max <= 0) return 0;
    const subjects = subject === undefined ? this.store.subjectCounts('>') : new Map([[subject, this.store.subjectCounts(subject).get(subject) ?? 0]]);
    let removed = 0;
    for (const [name, count] of subjects) {
      for (let extra = count - max; extra > 0; extra--) {
        const oldest = this.store.loadNext(name, 0);
        if (oldest === undefined) break;
        floor ??= this.retentionFloor();
        if (oldest.seq > floor) {
          this.#isPerSubjectHeld = true;
          this.#noteHeld(oldest.seq);
          break;
        }
        if (!this.store.remove(oldest.seq)) break;
        removed++;
      }
    }
    return removed;
  }

  /** max_msgs and max_bytes with discard old: the first message goes while over, unless the floor holds it. */
  #enforceFront(floor: number | undefined): number {
    const config = this.config;
    let removed = 0;
    for (let state = this.store.state(); config.max_msgs > 0 && state.messages > config.max_msgs; state = this.store.state()) {
      floor ??= this.retentionFloor();
      if (state.firstSeq > floor) {
        // Only after a config change (a publish that needs this is refused): the excess is held.
        this.#noteHeld(Math.min(state.lastSeq, state.firstSeq + state.messages - config.max_msgs - 1));
        break;
      }
      if (state.firstSeq <= 0 || !this.store.remove(state.firstSeq)) break;
      removed++;
    }
    for (let state = this.store.state(); config.max_bytes > 0 && state.bytes > config.max_bytes; state = this.store.state()) {
      floor ??= this.retentionFloor();
      if (state.firstSeq > floor) {
        this.#noteHeld(state.firstSeq);
        break;
      }
      if (state.firstSeq <= 0 || !this.store.remove(state.firstSeq)) break;
      removed++;
    }
    return removed;
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
    if (this.#expireAged(this.retentionFloor()) > 0) this.#host.onRemoved(this);
    this.#expireMsgIds();
    this.#scheduleAgeCheck();
  }

  /** max_age: expired messages go from the front, down to the floor; the expired ones above it are noted as held. */
  #expireAged(floor: number): number {
    if (this.config.max_age <= 0) return 0;
    const cutoffNs = nowNs() - BigInt(this.config.max_age);
    let removed = 0;
    for (;;) {
      const first = this.store.state().firstSeq;
      const message = first > 0 ? this.store.load(first) : undefined;
      if (message === undefined || message.timestampNs > cutoffNs) break;
      if (message.seq > floor) {
        this.#noteHeld(this.#lastExpiredSeq(message.seq, cutoffNs));
        break;
      }
      if (!this.store.remove(message.seq)) break;
      removed++;
    }
    return removed;
  }

  /** The newest message stored at or before `cutoffNs`, given that `seq` is: a binary search (store times grow with the sequence). */
  #lastExpiredSeq(seq: number, cutoffNs: bigint): number {
    let low = seq;
    let high = this.store.state().lastSeq;
    while (low < high) {
      const mid = low + Math.ceil((high - low) / 2);
      const message = this.store.loadNext('>', mid);
      if (message !== undefined && message.timestampNs <= cutoffNs) low = message.seq;
      else high = mid - 1;
    }
    return low;
  }

  // --- Retention hold (retention-hold.ts) ---------------------------------------------------------

  /** The highest sequence limits and retention may remove now (RETENTION_FLOOR_NONE when nothing holds the stream). */
  retentionFloor(): number {
    return this.#host.retentionFloor(this);
  }

  /**
   * What the retention floor holds back now: the newest message whose removal by limits or
   * retention it deferred (0: none), and the publishes it refused since start. Messages after
   * the floor up to that one are "held" (an estimate: messages in between that no rule wanted
   * gone count too, and of a subject over max_msgs_per_subject only its oldest is noted).
   */
  retentionHeld(): { readonly throughSeq: number; readonly refusedPublishes: number } {
    return { throughSeq: this.#heldThroughSeq, refusedPublishes: this.#heldRefusals };
  }

  #noteHeld(seq: number): void {
    if (seq > this.#heldThroughSeq) this.#heldThroughSeq = seq;
  }

  /**
   * Work-queue and interest retention: removes `seq` unless the retention floor holds it (true
   * when removed); a held message goes in applyRetention once the floor passes it. The host is
   * not told (the consumer layer calls this from inside its own bookkeeping).
   */
  removeForRetention(seq: number): boolean {
    if (seq > this.retentionFloor()) {
      this.#noteHeld(seq);
      if (this.#scanFromSeq === 0 || seq < this.#scanFromSeq) this.#scanFromSeq = seq;
      return false;
    }
    return this.store.remove(seq);
  }

  /**
   * Runs limits and retention again and removes what they want gone and the floor no longer
   * holds: the holder calls it when the floor moved; a config update too. Work-queue / interest
   * messages are checked again from the lowest deferred one up to the floor.
   */
  applyRetention(): void {
    if (this.#isClosed) return;
    const floor = this.retentionFloor();
    const heldThrough = this.#heldThroughSeq;
    if (floor >= heldThrough) this.#heldThroughSeq = 0; // noted again below if something is still held
    const isPerSubjectHeld = this.#isPerSubjectHeld;
    this.#isPerSubjectHeld = false;
    const removed = (isPerSubjectHeld ? this.#enforcePerSubject(undefined, floor) : 0) + this.#enforceFront(floor) + this.#expireAged(floor);
    if (removed > 0) this.#host.onRemoved(this);
    const from = this.#scanFromSeq;
    if (from === 0 || from > floor) return;
    if (this.config.retention === 'limits') {
      this.#scanFromSeq = 0;
      return;
    }
    this.#scanFromSeq = heldThrough > floor ? floor + 1 : 0;
    this.#scanRetention(from, Math.min(floor, heldThrough));
  }

  /**
   * Checks every message against work-queue / interest retention (removing what may go, noting
   * what the floor holds): at start, because what waited for the floor is not persisted, and
   * after a consumer was deleted or changed its filter. Per-subject limits run again on the
   * next floor move for the same reason.
   */
  recheckRetention(): void {
    if (this.config.max_msgs_per_subject > 0) this.#isPerSubjectHeld = true;
    const state = this.store.state();
    if (this.config.retention === 'limits' || state.messages === 0) return;
    this.#scanRetention(state.firstSeq, state.lastSeq);
  }

  /** Work-queue / interest retention over [from, to], RETENTION_SCAN_PER_TURN_MAX messages per event-loop turn. */
  #scanRetention(from: number, to: number): void {
    if (this.#isClosed) return;
    let removed = 0;
    let scanned = 0;
    for (let message = this.store.loadNext('>', from); message !== undefined && message.seq <= to; message = this.store.loadNext('>', message.seq + 1)) {
      if (++scanned > RETENTION_SCAN_PER_TURN_MAX) {
        const resumeSeq = message.seq;
        setImmediate(() => this.#scanRetention(resumeSeq, to));
        break;
      }
      if (this.#host.isRetentionDone(this, message.seq, message.subject) && this.removeForRetention(message.seq)) removed++;
    }
    if (removed > 0) this.#host.onRemoved(this);
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
