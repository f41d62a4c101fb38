/**
 * One JetStream consumer: where it is in its stream, what is delivered and not
 * yet acknowledged, and the delivery itself (pull requests, push delivery,
 * redelivery, heartbeats, flow control). NATS-SPEC.md §4.
 *
 * State (nats-server consumer.go names in brackets):
 * - `#sseq` [sseq]: next stream sequence to look at; `#dseq` [dseq]: next consumer sequence.
 * - `#pending` [pending]: stream seq → { consumer seq of the first delivery, time of the last
 *   delivery or +WPI }, for ack explicit/all. Insertion order is ascending stream sequence
 *   (first deliveries happen in stream order; restored state is sorted), so the first entry
 *   is the oldest unacknowledged message and the ack floor follows from it.
 * - `#redelivered` [rdc]: stream seq → deliveries so far, for messages delivered more than once.
 * - `#redeliveryQueue` [rdq]: messages whose ack_wait expired or were NAKed, redelivered first.
 * - `#waiting` [waiting]: pull requests, FIFO, served round-robin like nats-server's waitQueue.
 *
 * Timers: one per consumer at most (`#timer`, unref'd), armed for the earliest of: an ack_wait
 * deadline, a pull request's expiry or heartbeat, the push idle heartbeat, a push interest
 * poll, the inactivity deadline, and a replay_policy "original" pause. Firing re-evaluates all.
 */
import { encodeHeaders } from '../protocol/headers.ts';
import type { InternalClient } from '../server/internal-client.ts';
import { isSubjectSubset, subjectMatchesFilter } from '../subjects/subject.ts';
import type { Logger } from '../util/logger.ts';
import { formatRfc3339Ns, nowNs, parseRfc3339Ns } from '../util/time.ts';
import { filtersOf, isDurableConfig, isPushConfig, type ConsumerConfig } from './consumer-config.ts';
import type { StreamConfig } from './api/types.ts';
import type { Stream } from './stream.ts';
import type { ConsumerStateRecord, StoredMessage, SubjectFilter } from './store.ts';

/** Most messages one delivery pass sends before yielding the event loop (setImmediate). */
export const DELIVERIES_PER_TURN_MAX = 1024;
/** Most unacknowledged messages one consumer tracks when max_ack_pending is -1 (unlimited). */
export const ACK_PENDING_MAX = 1_000_000;
/** Most waiting pull requests, whatever max_waiting says. */
export const WAITING_REQUESTS_MAX = 16_384;
/** Push consumer without interest: first interest poll after this long (doubles up to the max). */
export const INTEREST_POLL_MS_MIN = 5;
/** Push consumer without interest: slowest interest poll. */
export const INTEREST_POLL_MS_MAX = 250;
/** Push consumer with interest and an inactive_threshold: how often interest loss is looked for. */
export const INTEREST_CHECK_MS = 1000;
/** Flow control window ceiling (nats-server JsFlowControlMaxPending: 32 MiB); it starts at 1/16 of it. */
export const FLOW_CONTROL_WINDOW_BYTES_MAX = 32 * 1024 * 1024;
/** The timer never fires sooner than this after being armed (coalesces bursts). */
const TIMER_DELAY_MS_MIN = 1;

const ACK_PREFIX = '$JS.ACK.';
const FC_PREFIX = '$JS.FC.';
const ADVISORY_PREFIX = '$JS.EVENT.ADVISORY.CONSUMER.';
const HEADER_LAST_CONSUMER = 'Nats-Last-Consumer';
const HEADER_LAST_STREAM = 'Nats-Last-Stream';
const HEADER_STALLED = 'Nats-Consumer-Stalled';
const HEADER_PENDING_MESSAGES = 'Nats-Pending-Messages';
const HEADER_PENDING_BYTES = 'Nats-Pending-Bytes';
const HEADER_MSG_SIZE = 'Nats-Msg-Size';
const CRLF = '\r\n';

/** What a consumer needs from the consumer layer. */
export interface ConsumerHost {
  readonly client: InternalClient;
  readonly log: Logger;
  /** `seq` left the consumer as acknowledged (ack, term, ack-all, ack none delivery): retention may remove it. */
  onAcknowledged(consumer: Consumer, seq: number): void;
  /** Delivered/ack state changed: persist it soon. */
  onStateChanged(consumer: Consumer): void;
  /** The consumer stayed inactive past its inactive_threshold: delete it. */
  onInactive(consumer: Consumer): void;
}

type PendingEntry = { readonly consumerSeq: number; timestampMs: number };

/** One waiting pull request (nats-server waitingRequest). */
type PullRequest = {
  next: PullRequest | undefined;
  readonly reply: string;
  /** Messages still wanted. */
  batchLeft: number;
  delivered: number;
  /** Bytes still allowed; 0 = no max_bytes. */
  bytesLeft: number;
  /** 0 = no expiry. */
  readonly expiresAtMs: number;
  readonly isNoWait: boolean;
  readonly heartbeatMs: number;
  heartbeatDueMs: number;
};

/** A parsed pull request body (NATS-SPEC.md §4.5). */
export type PullRequestOptions = {
  batch: number;
  expiresNs: number;
  maxBytes: number;
  isNoWait: boolean;
  heartbeatNs: number;
};

/** The next message to send and why. */
type Candidate = {
  readonly message: StoredMessage;
  /** Delivery count including this one. */
  readonly deliveries: number;
  readonly source: 'redelivery' | 'skip' | 'tail';
};

/** last_per_subject start: the last sequence of each subject, then everything after `resume`. */
type SkipList = { readonly seqs: number[]; index: number; readonly resume: number };

/** Go's time.Duration String() for the 409 "Exceeded MaxRequestExpires of <d>" text. */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1000) return `${ns}ns`;
  if (ns < 1_000_000) return `${trimFraction(ns / 1000)}µs`;
  if (ns < 1_000_000_000) return `${trimFraction(ns / 1_000_000)}ms`;
  let seconds = ns / 1e9;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const secondsText = `${trimFraction(Number(seconds.toFixed(9)))}s`;
  if (hours > 0) return `${hours}h${minutes}m${secondsText}`;
  if (minutes > 0) return `${minutes}m${secondsText}`;
  return secondsText;
}

function trimFraction(value: number): string {
  return String(Number(value.toFixed(9)));
}

/** A status message's header block: `NATS/1.0 <status>` plus headers. */
function statusHeader(status: string, entries: readonly (readonly [string, string])[] = []): Buffer {
  return encodeHeaders(entries, status);
}

/** The stored header block with `Nats-Msg-Size` appended (headers_only, NATS-SPEC.md §4.2). */
function headersOnlyBlock(headers: Buffer | undefined, payloadBytes: number): Buffer {
  const line = `${HEADER_MSG_SIZE}: ${payloadBytes}${CRLF}${CRLF}`;
  if (headers === undefined || headers.length < 4) return Buffer.from(`NATS/1.0${CRLF}${line}`, 'latin1');
  return Buffer.concat([headers.subarray(0, headers.length - 2), Buffer.from(line, 'latin1')]);
}

export class Consumer {
  readonly stream: Stream;
  readonly name: string;
  config: ConsumerConfig;
  readonly createdNs: bigint;
  readonly isDurable: boolean;
  readonly #host: ConsumerHost;
  readonly #log: Logger;
  readonly #ackPrefix: string;
  #filters: string[];
  /** The filters as the store takes them; '' when they cover every stream subject. */
  #storeFilter: SubjectFilter = '';
  /** False when the filters cover every subject of the stream (nats-server isFiltered). */
  #isFiltered = false;
  #filtersCheckedFor: StreamConfig | undefined = undefined;
  #isPush: boolean;
  #sseq = 1;
  #dseq = 1;
  #deliveredStreamSeq = 0;
  #ackFloorConsumer = 0;
  #ackFloorStream = 0;
  readonly #pending = new Map<number, PendingEntry>();
  readonly #redelivered = new Map<number, number>();
  #redeliveryQueue: number[] = [];
  #redeliveryHead = 0;
  readonly #redeliverySet = new Set<number>();
  #skip: SkipList | undefined = undefined;
  // Pull requests (linked FIFO).
  #waitingHead: PullRequest | undefined = undefined;
  #waitingTail: PullRequest | undefined = undefined;
  #waitingCount = 0;
  #noWaitCount = 0;
  // num_pending of the part after the start (lazily counted, see #refreshTail).
  #tailPending = 0;
  #tailCountedThrough = 0;
  #isTailDirty = true;
  #streamLastSeq = 0;
  // Push.
  #isActive = false;
  #interestPollMs = INTEREST_POLL_MS_MIN;
  #heartbeatDueMs = 0;
  #fcWindowBytes = FLOW_CONTROL_WINDOW_BYTES_MAX / 16;
  #fcPendingBytes = 0;
  #fcReply = '';
  #fcSizeBytes = 0;
  // Activity and times for info.
  #lastActiveMs: number;
  #inactiveSinceMs: number;
  #lastDeliveryMs = 0;
  #lastAckMs = 0;
  // replay_policy original.
  #replayThroughSeq = 0;
  #replayLastTsNs = 0n;
  #replayLastAtMs = 0;
  // Scheduling.
  #timer: NodeJS.Timeout | undefined = undefined;
  #timerDueMs = 0;
  #isContinuationScheduled = false;
  #isDelivering = false;
  #needsAnotherPass = false;
  #isStateDirty = false;
  #isClosed = false;

  constructor(options: { stream: Stream; config: ConsumerConfig; createdNs: bigint; host: ConsumerHost }) {
    this.stream = options.stream;
    this.config = options.config;
    this.name = options.config.name;
    this.createdNs = options.createdNs;
    this.isDurable = isDurableConfig(options.config);
    this.#host = options.host;
    this.#log = options.host.log.child({ stream: this.stream.name, consumer: this.name });
    this.#ackPrefix = `${ACK_PREFIX}${this.stream.name}.${this.name}.`;
    this.#filters = filtersOf(options.config);
    this.#refreshFilters();
    this.#isPush = isPushConfig(options.config);
    const nowMs = Date.now();
    this.#lastActiveMs = nowMs;
    this.#inactiveSinceMs = nowMs;
  }

  // --- Start and state --------------------------------------------------------------------------

  /** Picks the starting position from the deliver policy (nats-server selectStartingSeqNo). */
  selectStart(): void {
    const store = this.stream.store;
    const state = store.state();
    const config = this.config;
    let sseq = 0;
    if (config.opt_start_seq !== undefined && config.opt_start_seq > 0) {
      sseq = config.opt_start_seq;
    } else if (config.deliver_policy === 'all') {
      sseq = state.firstSeq;
    } else if (config.deliver_policy === 'last') {
      this.#refreshFilters();
      sseq = !this.#isFiltered ? state.lastSeq : (store.loadLast(this.#storeFilter)?.seq ?? 0);
    } else if (config.deliver_policy === 'last_per_subject') {
      sseq = this.#selectLastPerSubject(state.firstSeq, state.lastSeq);
    } else if (config.deliver_policy === 'by_start_time') {
      sseq = this.#seqFromTime(parseRfc3339Ns(config.opt_start_time ?? '') ?? 0n);
    } else {
      sseq = state.lastSeq + 1;
    }
    const hasStartSeq = (config.opt_start_seq ?? 0) > 0;
    if (state.firstSeq === 0 && !hasStartSeq) sseq = 1;
    else if (sseq > state.lastSeq && !hasStartSeq) sseq = state.lastSeq + 1;
    else if (sseq < state.firstSeq) sseq = state.firstSeq;
    if (sseq < 1) sseq = 1;
    this.#sseq = sseq;
    this.#dseq = 1;
    this.#deliveredStreamSeq = sseq - 1;
    this.#ackFloorConsumer = 0;
    this.#ackFloorStream = sseq - 1;
    this.#streamLastSeq = state.lastSeq;
    this.#isTailDirty = true;
    if (config.replay_policy === 'original') this.#replayThroughSeq = state.lastSeq;
  }

  /** last_per_subject: the last message of every matching subject, ascending (nats-server lastSeqSkipList). */
  #selectLastPerSubject(firstSeq: number, lastSeq: number): number {
    // nats-server parity: with max_msgs_per_subject 1 every message is its subject's last.
    if (this.stream.config.max_msgs_per_subject === 1) return firstSeq;
    const store = this.stream.store;
    const seqs: number[] = [];
    this.#refreshFilters();
    for (const subject of store.subjectCounts(this.#storeFilter).keys()) {
      const last = store.loadLast(subject);
      if (last !== undefined) seqs.push(last.seq);
    }
    seqs.sort((a, b) => a - b);
    if (seqs.length === 0) return lastSeq + 1;
    this.#skip = { seqs, index: 0, resume: lastSeq };
    return seqs[0]!;
  }

  /** First sequence whose timestamp is at or after `startNs` (binary search; timestamps grow with seq). */
  #seqFromTime(startNs: bigint): number {
    const store = this.stream.store;
    const state = store.state();
    let low = Math.max(state.firstSeq, 1);
    let high = state.lastSeq + 1;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const message = store.loadNext('', middle);
      if (message === undefined) {
        high = middle;
        continue;
      }
      if (message.timestampNs >= startNs) high = middle;
      else low = message.seq + 1;
    }
    return low;
  }

  /** Restores persisted positions (nats-server applyState). */
  restoreState(record: ConsumerStateRecord): void {
    this.#sseq = record.delivered.streamSeq + 1;
    this.#dseq = record.delivered.consumerSeq + 1;
    this.#deliveredStreamSeq = record.delivered.streamSeq;
    this.#ackFloorConsumer = record.ackFloor.consumerSeq;
    this.#ackFloorStream = record.ackFloor.streamSeq;
    const pending = [...record.pending].sort((a, b) => a[0] - b[0]);
    for (const [streamSeq, consumerSeq, timestampMs] of pending) this.#pending.set(streamSeq, { consumerSeq, timestampMs });
    for (const [streamSeq, count] of record.redelivered) this.#redelivered.set(streamSeq, count);
    this.#streamLastSeq = this.stream.store.state().lastSeq;
    this.#isTailDirty = true;
    this.onStreamRemoved();
  }

  /** Positions to persist (nats-server writeStoreState). */
  stateRecord(): ConsumerStateRecord {
    const pending: [number, number, number][] = [];
    for (const [streamSeq, entry] of this.#pending) pending.push([streamSeq, entry.consumerSeq, entry.timestampMs]);
    const redelivered: [number, number][] = [];
    for (const [streamSeq, count] of this.#redelivered) redelivered.push([streamSeq, count]);
    return {
      delivered: { consumerSeq: this.#dseq - 1, streamSeq: this.#sseq - 1 },
      ackFloor: { consumerSeq: this.#ackFloorConsumer, streamSeq: this.#ackFloorStream },
      pending,
      redelivered,
    };
  }

  /** Clears the dirty mark; true when there was something to persist. */
  takeStateDirty(): boolean {
    const wasDirty = this.#isStateDirty;
    this.#isStateDirty = false;
    return wasDirty;
  }

  #markStateDirty(): void {
    if (this.#isStateDirty) return;
    this.#isStateDirty = true;
    this.#host.onStateChanged(this);
  }

  /** Starts delivering (after creation or restore). */
  start(): void {
    if (this.#isPush) {
      this.#isActive = this.#host.client.hasInterest(this.config.deliver_subject ?? '');
      this.#interestPollMs = INTEREST_POLL_MS_MIN;
      this.#heartbeatDueMs = Date.now() + this.#heartbeatMs();
    }
    this.#rescheduleAll();
  }

  /** Stops timers and tells waiting pull requests the consumer is gone (409 Consumer Deleted). */
  stop(options: { isDeleted: boolean }): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!options.isDeleted) return;
    for (let request = this.#waitingHead; request !== undefined; request = request.next) {
      this.#sendStatus(request.reply, statusHeader('409 Consumer Deleted'));
    }
    this.#waitingHead = undefined;
    this.#waitingTail = undefined;
    this.#waitingCount = 0;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  get isPush(): boolean {
    return this.#isPush;
  }

  /** Applies an allowed config update (the caller checked it with checkConsumerUpdate). */
  updateConfig(next: ConsumerConfig): void {
    const previous = this.config;
    this.config = next;
    const filtersChanged = JSON.stringify(filtersOf(previous)) !== JSON.stringify(filtersOf(next));
    if (filtersChanged) {
      this.#filters = filtersOf(next);
      this.#filtersCheckedFor = undefined;
      this.#refreshFilters();
      this.#isTailDirty = true;
    }
    if ((previous.deliver_subject ?? '') !== (next.deliver_subject ?? '')) {
      // nats-server parity: a new deliver subject redelivers everything pending (forceExpirePending).
      for (const seq of this.#pending.keys()) this.#queueRedelivery(seq);
      this.#isActive = this.#host.client.hasInterest(next.deliver_subject ?? '');
      this.#interestPollMs = INTEREST_POLL_MS_MIN;
    }
    this.#lastActiveMs = Date.now();
    this.#rescheduleAll();
    this.deliver();
  }

  // --- Stream events ----------------------------------------------------------------------------

  /**
   * A message was stored (seq is the stream's last sequence). `subject` is given when
   * {@link needsStoredSubject} (the layer loads it once for all consumers).
   */
  onStored(seq: number, subject: string | undefined): void {
    // Count it now when it directly follows what was counted (else #refreshTail counts the gap).
    if (!this.#isTailDirty && seq === this.#tailCountedThrough + 1) {
      if (seq >= this.#tailStart() && (subject === undefined ? !this.#isFiltered : this.matchesSubject(subject))) this.#tailPending++;
      this.#tailCountedThrough = seq;
    }
    this.#streamLastSeq = seq;
    if (this.#isPush && !this.#isActive) {
      this.#pollInterest(Date.now());
      if (!this.#isActive) return;
    }
    if (!this.#isPush && this.#waitingCount === 0) return;
    this.deliver();
  }

  /** Messages were removed (limits, purge, delete): drop what is gone below the stream's first sequence. */
  onStreamRemoved(): void {
    this.#isTailDirty = true;
    const state = this.stream.store.state();
    const firstSeq = state.messages === 0 ? state.lastSeq + 1 : state.firstSeq;
    if (this.#sseq < firstSeq) this.#sseq = firstSeq;
    let removed = 0;
    for (const seq of this.#pending.keys()) {
      if (seq >= firstSeq) break;
      this.#pending.delete(seq);
      this.#unqueueRedelivery(seq);
      removed++;
    }
    for (const seq of this.#redelivered.keys()) if (seq < firstSeq) this.#redelivered.delete(seq);
    if (this.#skip !== undefined) {
      while (this.#skip.index < this.#skip.seqs.length && this.#skip.seqs[this.#skip.index]! < firstSeq) this.#skip.index++;
      if (this.#skip.index >= this.#skip.seqs.length) this.#endSkip();
    }
    this.#updateAckFloor();
    if (this.config.ack_policy === 'none' && this.#ackFloorStream < firstSeq - 1) this.#ackFloorStream = Math.min(firstSeq - 1, this.#sseq - 1);
    if (removed > 0) {
      this.#markStateDirty();
      this.deliver();
    }
  }

  // --- num_pending ------------------------------------------------------------------------------

  #tailStart(): number {
    return this.#skip !== undefined ? this.#skip.resume + 1 : this.#sseq;
  }

  /**
   * Brings the count of matching messages at or after the tail start up to date: a full count
   * after removals, otherwise only the messages stored since the last count.
   */
  #refreshTail(): void {
    const store = this.stream.store;
    this.#refreshFilters();
    if (this.#isTailDirty) {
      this.#streamLastSeq = store.state().lastSeq;
      this.#tailPending = store.countPending(this.#storeFilter, this.#tailStart());
      this.#tailCountedThrough = this.#streamLastSeq;
      this.#isTailDirty = false;
      return;
    }
    if (this.#streamLastSeq > this.#tailCountedThrough) {
      const from = Math.max(this.#tailCountedThrough + 1, this.#tailStart());
      if (from <= this.#streamLastSeq) this.#tailPending += store.countPending(this.#storeFilter, from);
      this.#tailCountedThrough = this.#streamLastSeq;
    }
  }

  /** Messages not yet delivered once (last_per_subject: one per subject while starting). */
  numPending(): number {
    this.#refreshTail();
    const skipLeft = this.#skip === undefined ? 0 : this.#skip.seqs.length - this.#skip.index;
    return skipLeft + Math.max(this.#tailPending, 0);
  }

  // --- Info -------------------------------------------------------------------------------------

  /** ConsumerInfo (NATS-SPEC.md §2.6), without `type`. */
  info(): Record<string, unknown> {
    const numPending = this.numPending();
    let numWaiting = 0;
    if (!this.#isPush) {
      this.#processWaiting(Date.now(), false);
      numWaiting = this.#waitingCount;
    }
    // Looked up, not polled: info() must not start deliveries (the create response is taken before start()).
    const isPushBound = this.#isPush && this.#host.client.hasInterest(this.config.deliver_subject ?? '');
    return {
      stream_name: this.stream.name,
      name: this.name,
      created: formatRfc3339Ns(this.createdNs),
      config: this.config,
      delivered: {
        consumer_seq: this.#dseq - 1,
        stream_seq: this.#deliveredStreamSeq,
        ...(this.#lastDeliveryMs === 0 ? {} : { last_active: formatRfc3339Ns(BigInt(this.#lastDeliveryMs) * 1_000_000n) }),
      },
      ack_floor: {
        consumer_seq: this.#ackFloorConsumer,
        stream_seq: this.#ackFloorStream,
        ...(this.#lastAckMs === 0 ? {} : { last_active: formatRfc3339Ns(BigInt(this.#lastAckMs) * 1_000_000n) }),
      },
      num_ack_pending: this.#pending.size,
      // nats-server parity: redeliveries are disabled with max_deliver 1, so none are reported.
      num_redelivered: this.config.max_deliver === 1 ? 0 : this.#redelivered.size,
      num_waiting: numWaiting,
      num_pending: numPending,
      ...(isPushBound ? { push_bound: true } : {}),
      ts: formatRfc3339Ns(nowNs()),
    };
  }

  /** Interest retention: does this consumer still need `seq` (nats-server needAck)? */
  needsAck(seq: number, subject: string): boolean {
    if (!this.matchesSubject(subject)) return false;
    let isNeeded: boolean;
    if (this.config.ack_policy === 'explicit') isNeeded = seq > this.#ackFloorStream && (seq >= this.#sseq || this.#pending.has(seq));
    else isNeeded = seq > this.#ackFloorStream;
    return isNeeded || this.#redelivered.has(seq);
  }

  matchesSubject(subject: string): boolean {
    this.#refreshFilters();
    if (!this.#isFiltered) return true;
    const filters = this.#filters;
    for (let i = 0; i < filters.length; i++) if (subjectMatchesFilter(subject, filters[i]!)) return true;
    return false;
  }

  /** The consumer's filters ([] = everything). */
  get filters(): readonly string[] {
    return this.#filters;
  }

  /** Whether onStored needs the stored message's subject (a filtered consumer). */
  get needsStoredSubject(): boolean {
    this.#refreshFilters();
    return this.#isFiltered;
  }

  /**
   * Filtered or not, as nats-server's isFiltered: filters that cover every stream subject
   * count as no filter, so the store can skip subject matching (a KV watcher on `$KV.B.>`).
   */
  #refreshFilters(): void {
    const streamConfig = this.stream.config;
    if (this.#filtersCheckedFor === streamConfig) return;
    this.#filtersCheckedFor = streamConfig;
    const filters = this.#filters;
    const subjects = streamConfig.subjects ?? [];
    const coversStream =
      filters.length === 0 || (subjects.length > 0 && subjects.every((subject) => filters.some((filter) => isSubjectSubset(subject, filter))));
    this.#isFiltered = !coversStream;
    this.#storeFilter = coversStream ? '' : storeFilterOf(filters);
  }

  // --- Delivery ---------------------------------------------------------------------------------

  /** Delivers what can be delivered now. Re-entrant calls turn into one more pass. */
  deliver(): void {
    if (this.#isClosed) return;
    if (this.#isDelivering) {
      this.#needsAnotherPass = true;
      return;
    }
    this.#isDelivering = true;
    try {
      do {
        this.#needsAnotherPass = false;
        this.#deliverPass();
      } while (this.#needsAnotherPass && !this.#isClosed);
    } finally {
      this.#isDelivering = false;
    }
  }

  #deliverPass(): void {
    const nowMs = Date.now();
    let count = 0;
    let isEndOfStream = false;
    for (;;) {
      if (this.#isClosed) return;
      if (count >= DELIVERIES_PER_TURN_MAX) {
        this.#scheduleContinuation();
        return;
      }
      let request: PullRequest | undefined;
      if (this.#isPush) {
        if (!this.#isActive || this.#fcPendingBytes > this.#fcWindowBytes) break;
      } else {
        request = this.#firstWaiting(nowMs);
        if (request === undefined) break;
      }
      const candidate = this.#nextCandidate();
      if (candidate === undefined) {
        isEndOfStream = this.#redeliveryHead >= this.#redeliveryQueue.length && !this.#isAckPendingFull();
        break;
      }
      if (candidate.source !== 'redelivery' && this.#isReplayPaused(candidate.message, nowMs)) break;
      const result = this.#deliverCandidate(candidate, request, nowMs);
      if (result === 'stop') break;
      if (result === 'delivered') count++;
    }
    if (isEndOfStream && this.#noWaitCount > 0) this.#processWaiting(nowMs, true);
  }

  #scheduleContinuation(): void {
    if (this.#isContinuationScheduled) return;
    this.#isContinuationScheduled = true;
    setImmediate(() => {
      this.#isContinuationScheduled = false;
      this.deliver();
    });
  }

  #isAckPendingFull(): boolean {
    if (this.config.ack_policy === 'none') return false;
    const max = this.config.max_ack_pending ?? 0;
    const limit = max > 0 ? Math.min(max, ACK_PENDING_MAX) : ACK_PENDING_MAX;
    return this.#pending.size >= limit;
  }

  /** Redeliveries first, then (unless max_ack_pending is reached) the skip list and the tail. */
  #nextCandidate(): Candidate | undefined {
    const store = this.stream.store;
    while (this.#redeliveryHead < this.#redeliveryQueue.length) {
      const seq = this.#redeliveryQueue[this.#redeliveryHead]!;
      if (!this.#pending.has(seq) || !this.#redeliverySet.has(seq)) {
        this.#popRedelivery();
        continue;
      }
      const deliveries = (this.#redelivered.get(seq) ?? 1) + 1;
      if (this.config.max_deliver > 0 && deliveries > this.config.max_deliver) {
        // A NAK after the last allowed delivery (nats-server getNextMsg): give up instead.
        this.#popRedelivery();
        this.#giveUp(seq);
        continue;
      }
      const message = store.load(seq);
      if (message === undefined) {
        // Removed while waiting for redelivery: nats-server terminates it ("Unacknowledged message was deleted").
        this.#popRedelivery();
        this.#pending.delete(seq);
        this.#redelivered.delete(seq);
        this.#updateAckFloor();
        this.#markStateDirty();
        continue;
      }
      return { message, deliveries, source: 'redelivery' };
    }
    if (this.#isAckPendingFull()) return undefined;
    const skip = this.#skip;
    while (skip !== undefined && skip.index < skip.seqs.length) {
      const message = store.load(skip.seqs[skip.index]!);
      if (message !== undefined) return { message, deliveries: 1, source: 'skip' };
      skip.index++;
      if (skip.index >= skip.seqs.length) this.#endSkip();
    }
    // Unfiltered and in order: the next message is usually exactly at #sseq (one key lookup, no range scan).
    let message = this.#storeFilter === '' && this.#sseq <= this.#streamLastSeq ? store.load(this.#sseq) : undefined;
    message ??= store.loadNext(this.#storeFilter, this.#sseq);
    if (message === undefined) {
      // nats-server parity: at the end of the stream the next sequence moves past the last one.
      const lastSeq = store.state().lastSeq;
      if (this.#sseq <= lastSeq) this.#sseq = lastSeq + 1;
      return undefined;
    }
    return { message, deliveries: 1, source: 'tail' };
  }

  #endSkip(): void {
    const skip = this.#skip;
    if (skip === undefined) return;
    this.#skip = undefined;
    if (this.#sseq < skip.resume + 1) this.#sseq = skip.resume + 1;
    this.#isTailDirty = true;
  }

  /** replay_policy original: hold a message until its original distance from the previous one has passed. */
  #isReplayPaused(message: StoredMessage, nowMs: number): boolean {
    if (this.#replayThroughSeq === 0) return false;
    if (this.#sseq > this.#replayThroughSeq && this.#skip === undefined) {
      this.#replayThroughSeq = 0;
      return false;
    }
    if (this.#replayLastTsNs === 0n) return false;
    const gapMs = Number(message.timestampNs - this.#replayLastTsNs) / 1e6;
    const dueMs = this.#replayLastAtMs + gapMs;
    if (gapMs <= 1 || dueMs <= nowMs) return false;
    this.#arm(dueMs);
    return true;
  }

  /**
   * Sends one candidate to the push deliver subject or the pull request, then records it.
   * 'skipped': the request was finished or dropped, the candidate stays next.
   */
  #deliverCandidate(candidate: Candidate, request: PullRequest | undefined, nowMs: number): 'delivered' | 'skipped' | 'stop' {
    const message = candidate.message;
    const isFirstDelivery = candidate.source !== 'redelivery';
    let pendingAfter = this.numPending();
    if (isFirstDelivery && pendingAfter > 0) pendingAfter--;
    // v1 ack subject (NATS-SPEC.md §4.3), built by concatenation: this runs once per message.
    const ackSubject =
      this.#ackPrefix + candidate.deliveries + '.' + message.seq + '.' + this.#dseq + '.' + message.timestampNs + '.' + pendingAfter;
    let headerBytes = message.headers?.length ?? 0;
    let data: Buffer;
    if (this.config.headers_only === true) {
      data = headersOnlyBlock(message.headers, message.data.length);
      headerBytes = data.length;
    } else if (headerBytes > 0) {
      data = Buffer.concat([message.headers!, message.data]);
    } else {
      data = message.data;
    }
    // nats-server counts subject + reply + headers + payload against max_bytes.
    const sizeBytes = message.subject.length + ackSubject.length + data.length;
    let target: string;
    if (request !== undefined) {
      if (request.bytesLeft > 0 && sizeBytes > request.bytesLeft) {
        const pending: [string, string][] = [[HEADER_PENDING_MESSAGES, String(request.batchLeft)], [HEADER_PENDING_BYTES, String(request.bytesLeft)]];
        this.#sendStatus(request.reply, statusHeader('409 Message Size Exceeds MaxBytes', pending));
        this.#removeWaiting(request);
        return 'skipped';
      }
      target = request.reply;
    } else {
      target = this.config.deliver_subject ?? '';
    }
    const deliveries = this.#host.client.publishAs(target, message.subject, ackSubject, headerBytes, data);
    if (deliveries === 0) {
      if (request !== undefined) {
        // nats-server drops a request whose inbox lost its subscribers, silently.
        this.#removeWaiting(request);
        return 'skipped';
      }
      this.#setActive(false, nowMs);
      return 'stop';
    }
    this.#commit(candidate, nowMs);
    if (request !== undefined) this.#afterPullDelivery(request, sizeBytes, nowMs);
    else this.#afterPushDelivery(sizeBytes, nowMs);
    return 'delivered';
  }

  /** Records a delivery: positions, pending, redelivery counts, ack none acknowledgement. */
  #commit(candidate: Candidate, nowMs: number): void {
    const seq = candidate.message.seq;
    const dseq = this.#dseq;
    this.#dseq = dseq + 1;
    this.#lastDeliveryMs = nowMs;
    this.#lastActiveMs = nowMs;
    if (candidate.source === 'redelivery') {
      this.#popRedelivery();
      this.#redelivered.set(seq, candidate.deliveries);
    } else {
      if (candidate.source === 'skip') {
        const skip = this.#skip!;
        skip.index++;
        this.#sseq = seq + 1;
        if (skip.index >= skip.seqs.length) this.#endSkip();
      } else {
        if (seq <= this.#tailCountedThrough && !this.#isTailDirty) this.#tailPending--;
        this.#sseq = seq + 1;
      }
      if (seq > this.#deliveredStreamSeq) this.#deliveredStreamSeq = seq;
      if (this.#replayThroughSeq !== 0) {
        this.#replayLastTsNs = candidate.message.timestampNs;
        this.#replayLastAtMs = nowMs;
      }
    }
    if (this.config.ack_policy === 'none') {
      this.#ackFloorConsumer = dseq;
      this.#ackFloorStream = seq;
      this.#markStateDirty();
      if (this.stream.config.retention !== 'limits') this.#host.onAcknowledged(this, seq);
      return;
    }
    const entry = this.#pending.get(seq);
    if (entry !== undefined) entry.timestampMs = nowMs;
    else this.#pending.set(seq, { consumerSeq: dseq, timestampMs: nowMs });
    this.#arm(nowMs + this.#ackWaitMsFor(seq));
    this.#markStateDirty();
  }

  #afterPullDelivery(request: PullRequest, sizeBytes: number, nowMs: number): void {
    request.batchLeft--;
    request.delivered++;
    if (request.bytesLeft > 0) {
      request.bytesLeft -= sizeBytes;
      // nats-server parity: a request whose bytes are used up exactly is done after this message.
      if (request.bytesLeft === 0) request.batchLeft = 0;
    }
    if (request.batchLeft <= 0) {
      this.#removeWaiting(request);
      if (request.bytesLeft > 0) {
        const pending: [string, string][] = [[HEADER_PENDING_MESSAGES, '0'], [HEADER_PENDING_BYTES, String(request.bytesLeft)]];
        this.#sendStatus(request.reply, statusHeader('409 Batch Completed', pending));
      }
      return;
    }
    if (request.heartbeatMs > 0) request.heartbeatDueMs = nowMs + request.heartbeatMs;
    // nats-server waitQueue.pop: a request with more to go moves to the back (round robin).
    if (this.#waitingCount > 1 && request === this.#waitingHead) {
      this.#removeWaiting(request);
      this.#appendWaiting(request);
    }
  }

  #afterPushDelivery(sizeBytes: number, nowMs: number): void {
    const heartbeatMs = this.#heartbeatMs();
    if (heartbeatMs > 0) this.#heartbeatDueMs = nowMs + heartbeatMs;
    if (this.config.flow_control !== true) return;
    this.#fcPendingBytes += sizeBytes;
    if (this.#fcReply === '' && this.#fcPendingBytes > this.#fcWindowBytes / 2) {
      this.#sendFlowControlRequest();
    } else if (this.#fcReply !== '' && this.#fcPendingBytes - this.#fcSizeBytes >= this.#fcWindowBytes) {
      this.#fcSizeBytes += sizeBytes;
    }
  }

  #sendFlowControlRequest(): void {
    const reply = `${FC_PREFIX}${this.stream.name}.${this.name}.${randomToken(4)}`;
    this.#fcReply = reply;
    this.#fcSizeBytes = this.#fcPendingBytes;
    const header = statusHeader('100 FlowControl Request');
    this.#host.client.publish(this.config.deliver_subject ?? '', reply, header.length, header);
  }

  /** A client answered a flow control request (`$JS.FC.<stream>.<consumer>.<token>`). */
  onFlowControlReply(subject: string): void {
    if (subject !== this.#fcReply) return;
    this.#fcWindowBytes = Math.min(this.#fcWindowBytes * 2, FLOW_CONTROL_WINDOW_BYTES_MAX);
    this.#fcPendingBytes = Math.max(this.#fcPendingBytes - this.#fcSizeBytes, 0);
    this.#fcReply = '';
    this.#fcSizeBytes = 0;
    this.deliver();
  }

  #sendStatus(subject: string, header: Buffer): void {
    this.#host.client.publish(subject, '', header.length, header);
  }

  #heartbeatMs(): number {
    return (this.config.idle_heartbeat ?? 0) / 1e6;
  }

  /** `100 Idle Heartbeat` with the last delivered positions (and the stalled FC reply). */
  #sendHeartbeat(subject: string): void {
    const entries: [string, string][] = [
      [HEADER_LAST_CONSUMER, String(this.#dseq - 1)],
      [HEADER_LAST_STREAM, String(this.#sseq - 1)],
    ];
    if (this.#fcReply !== '') entries.push([HEADER_STALLED, this.#fcReply]);
    this.#sendStatus(subject, statusHeader('100 Idle Heartbeat', entries));
  }

  // --- Push interest ----------------------------------------------------------------------------

  #setActive(isActive: boolean, nowMs: number): void {
    if (this.#isActive === isActive) return;
    this.#isActive = isActive;
    this.#interestPollMs = INTEREST_POLL_MS_MIN;
    if (!isActive) {
      this.#inactiveSinceMs = nowMs;
    } else {
      this.#heartbeatDueMs = nowMs + this.#heartbeatMs();
    }
    this.#arm(nowMs + (isActive ? INTEREST_CHECK_MS : INTEREST_POLL_MS_MIN));
  }

  #pollInterest(nowMs: number): void {
    const isActive = this.#host.client.hasInterest(this.config.deliver_subject ?? '');
    if (isActive !== this.#isActive) {
      this.#setActive(isActive, nowMs);
      if (isActive) this.deliver();
    }
  }

  // --- Pull requests ----------------------------------------------------------------------------

  /** A `CONSUMER.MSG.NEXT` request (or the rest of a `+NXT` ack). NATS-SPEC.md §4.5. */
  processPullRequest(reply: string, options: PullRequestOptions | string): void {
    if (this.#isClosed || reply === '') return;
    if (this.#isPush) {
      this.#sendStatus(reply, statusHeader('409 Consumer is push based'));
      return;
    }
    if (typeof options === 'string') {
      this.#sendStatus(reply, statusHeader(`400 Bad Request - ${options}`));
      return;
    }
    const refused = this.#checkPullLimits(options);
    if (refused !== undefined) {
      this.#sendStatus(reply, statusHeader(refused));
      return;
    }
    const nowMs = Date.now();
    this.#lastActiveMs = nowMs;
    const waitingMax = Math.min(this.config.max_waiting ?? 0, WAITING_REQUESTS_MAX);
    if (this.#waitingCount >= waitingMax) this.#processWaiting(nowMs, false);
    if (options.isNoWait) {
      const available = this.numPending() + (this.#redeliveryQueue.length - this.#redeliveryHead);
      if (available === 0 && options.expiresNs === 0) {
        this.#sendStatus(reply, statusHeader('404 No Messages'));
        return;
      }
      if (available > 0 && available < this.#waitingBatchTotal()) {
        this.#sendStatus(reply, statusHeader('408 Requests Pending'));
        return;
      }
    }
    if (this.#waitingCount >= waitingMax) {
      // nats-server parity: no 409 when the request has a heartbeat (the client would re-pull in a hot loop).
      if (options.heartbeatNs === 0) this.#sendStatus(reply, statusHeader('409 Exceeded MaxWaiting'));
      return;
    }
    const heartbeatMs = options.heartbeatNs / 1e6;
    const request: PullRequest = {
      next: undefined,
      reply,
      batchLeft: options.batch,
      delivered: 0,
      bytesLeft: options.maxBytes,
      expiresAtMs: options.expiresNs > 0 ? nowMs + options.expiresNs / 1e6 : 0,
      isNoWait: options.isNoWait,
      heartbeatMs,
      heartbeatDueMs: heartbeatMs > 0 ? nowMs + heartbeatMs : 0,
    };
    this.#appendWaiting(request);
    if (request.expiresAtMs > 0) this.#arm(request.expiresAtMs);
    if (request.heartbeatDueMs > 0) this.#arm(request.heartbeatDueMs);
    this.deliver();
  }

  #checkPullLimits(options: PullRequestOptions): string | undefined {
    const maxBatch = this.config.max_batch ?? 0;
    if (maxBatch > 0 && options.batch > maxBatch) return `409 Exceeded MaxRequestBatch of ${maxBatch}`;
    const maxExpires = this.config.max_expires ?? 0;
    if (maxExpires > 0 && options.expiresNs > maxExpires) return `409 Exceeded MaxRequestExpires of ${formatGoDuration(maxExpires)}`;
    const maxBytes = this.config.max_bytes ?? 0;
    if (options.maxBytes > 0 && maxBytes > 0 && options.maxBytes > maxBytes) return `409 Exceeded MaxRequestMaxBytes of ${maxBytes}`;
    return undefined;
  }

  #waitingBatchTotal(): number {
    let total = 0;
    for (let request = this.#waitingHead; request !== undefined; request = request.next) total += request.batchLeft;
    return total;
  }

  #appendWaiting(request: PullRequest): void {
    request.next = undefined;
    if (this.#waitingTail === undefined) this.#waitingHead = request;
    else this.#waitingTail.next = request;
    this.#waitingTail = request;
    this.#waitingCount++;
    if (request.isNoWait) this.#noWaitCount++;
  }

  #removeWaiting(request: PullRequest): void {
    let previous: PullRequest | undefined;
    let current = this.#waitingHead;
    while (current !== undefined && current !== request) {
      previous = current;
      current = current.next;
    }
    if (current === undefined) return;
    if (previous === undefined) this.#waitingHead = current.next;
    else previous.next = current.next;
    if (this.#waitingTail === current) this.#waitingTail = previous;
    current.next = undefined;
    this.#waitingCount--;
    if (current.isNoWait) this.#noWaitCount--;
  }

  /** The request to serve next; expired ones get their 408 on the way (nats-server nextWaiting). */
  #firstWaiting(nowMs: number): PullRequest | undefined {
    for (let request = this.#waitingHead; request !== undefined; request = this.#waitingHead) {
      if (request.expiresAtMs === 0 || nowMs < request.expiresAtMs) return request;
      this.#sendStatus(request.reply, this.#requestTimeoutHeader(request));
      this.#removeWaiting(request);
    }
    return undefined;
  }

  #requestTimeoutHeader(request: PullRequest): Buffer {
    return statusHeader('408 Request Timeout', [
      [HEADER_PENDING_MESSAGES, String(request.batchLeft)],
      [HEADER_PENDING_BYTES, String(request.bytesLeft)],
    ]);
  }

  /**
   * Expires requests (408), ends no_wait requests at the end of the stream (404), drops
   * requests without interest, sends due heartbeats; returns the next due time
   * (nats-server processWaiting).
   */
  #processWaiting(nowMs: number, isEndOfStream: boolean): number {
    let dueMs = Number.POSITIVE_INFINITY;
    let request = this.#waitingHead;
    while (request !== undefined) {
      const next = request.next;
      const isExpired = request.expiresAtMs > 0 && nowMs >= request.expiresAtMs;
      if (isExpired) {
        this.#sendStatus(request.reply, this.#requestTimeoutHeader(request));
        this.#removeWaiting(request);
      } else if (isEndOfStream && request.isNoWait && (request.expiresAtMs === 0 || request.delivered > 0)) {
        this.#sendStatus(request.reply, statusHeader('404 No Messages'));
        this.#removeWaiting(request);
      } else if (!this.#host.client.hasInterest(request.reply)) {
        this.#removeWaiting(request);
      } else {
        if (request.heartbeatMs > 0) {
          if (nowMs >= request.heartbeatDueMs) {
            this.#sendHeartbeat(request.reply);
            request.heartbeatDueMs = nowMs + request.heartbeatMs;
          }
          dueMs = Math.min(dueMs, request.heartbeatDueMs);
        }
        if (request.expiresAtMs > 0) dueMs = Math.min(dueMs, request.expiresAtMs);
      }
      request = next;
    }
    return dueMs;
  }

  // --- Acks -------------------------------------------------------------------------------------

  /**
   * One message on this consumer's ack subject. `payload` is the body (headers stripped).
   * Returns whether the ack-ack (empty reply) may be sent (NATS-SPEC.md §4.3).
   */
  processAck(fields: { deliveries: number; streamSeq: number; consumerSeq: number }, payload: Buffer, reply: string): boolean {
    if (this.#isClosed) return false;
    const kind = ackKind(payload);
    const nowMs = Date.now();
    if (this.config.inactive_threshold !== undefined) this.#noteAckActivity(nowMs);
    switch (kind) {
      case 'ack':
        return this.#ack(fields.streamSeq, fields.consumerSeq);
      case 'next': {
        this.#ack(fields.streamSeq, fields.consumerSeq);
        this.processPullRequest(reply, parsePullRequest(payload.subarray(4)));
        return false;
      }
      case 'nak':
        this.#nak(fields, payload.subarray(4), nowMs);
        return true;
      case 'progress': {
        const entry = this.#pending.get(fields.streamSeq);
        if (entry !== undefined) {
          entry.timestampMs = nowMs;
          this.#markStateDirty();
        }
        return true;
      }
      case 'term': {
        const isAcked = this.#ack(fields.streamSeq, fields.consumerSeq);
        const reason = payload.subarray(5).toString('utf8').trim();
        this.#sendTerminatedAdvisory(fields, reason);
        return isAcked;
      }
      case 'unknown':
        return true;
    }
  }

  #noteAckActivity(nowMs: number): void {
    this.#lastActiveMs = nowMs;
    if (this.#isPush && !this.#isActive) this.#inactiveSinceMs = nowMs;
  }

  /** +ACK / +TERM / the ack part of +NXT. False when the sequence was never delivered (no reply then). */
  #ack(streamSeq: number, consumerSeq: number): boolean {
    if (streamSeq <= 0 || streamSeq >= this.#sseq) return false;
    const policy = this.config.ack_policy;
    if (policy === 'none') return false;
    this.#lastAckMs = Date.now();
    if (policy === 'explicit') {
      const entry = this.#pending.get(streamSeq);
      const wasRedelivered = this.#redelivered.delete(streamSeq);
      this.#unqueueRedelivery(streamSeq);
      if (entry === undefined) {
        // nats-server parity: the stream hears of the ack even when it was not pending (a message past max_deliver).
        if (wasRedelivered) this.#markStateDirty();
        if (this.stream.config.retention !== 'limits') this.#host.onAcknowledged(this, streamSeq);
        return true;
      }
      const wasFull = this.#isAckPendingFull();
      this.#pending.delete(streamSeq);
      this.#updateAckFloor();
      this.#markStateDirty();
      if (this.stream.config.retention !== 'limits') this.#host.onAcknowledged(this, streamSeq);
      if (wasFull) this.deliver();
      return true;
    }
    // ack all: everything at or below streamSeq.
    if (consumerSeq <= this.#ackFloorConsumer || streamSeq <= this.#ackFloorStream) return true;
    const wasFull = this.#isAckPendingFull();
    const acked: number[] = [];
    for (const seq of this.#pending.keys()) {
      if (seq > streamSeq) break;
      acked.push(seq);
    }
    for (const seq of acked) {
      this.#pending.delete(seq);
      this.#redelivered.delete(seq);
      this.#unqueueRedelivery(seq);
    }
    this.#updateAckFloor();
    if (this.#ackFloorStream < streamSeq) {
      this.#ackFloorStream = streamSeq;
      this.#ackFloorConsumer = Math.max(this.#ackFloorConsumer, consumerSeq);
    }
    this.#markStateDirty();
    if (this.stream.config.retention !== 'limits') for (const seq of acked) this.#host.onAcknowledged(this, seq);
    if (wasFull) this.deliver();
    return true;
  }

  /** -NAK, optionally with a delay (`{"delay": ns}` or a Go duration). */
  #nak(fields: { deliveries: number; streamSeq: number; consumerSeq: number }, argument: Buffer, nowMs: number): void {
    if (fields.consumerSeq <= this.#ackFloorConsumer || fields.consumerSeq >= this.#dseq) return;
    const entry = this.#pending.get(fields.streamSeq);
    if (entry === undefined) return;
    this.#sendAdvisory('MSG_NAKED', 'io.nats.jetstream.advisory.v1.nak', {
      consumer_seq: fields.consumerSeq,
      stream_seq: fields.streamSeq,
      deliveries: fields.deliveries,
    });
    const delayMs = parseNakDelayMs(argument);
    if (delayMs !== undefined) {
      // Rescheduled as if its ack wait expires `delay` from now.
      this.#unqueueRedelivery(fields.streamSeq);
      entry.timestampMs = nowMs - this.#ackWaitMsFor(fields.streamSeq) + delayMs;
      this.#markStateDirty();
      this.#arm(nowMs + delayMs);
      return;
    }
    this.#queueRedelivery(fields.streamSeq);
    this.deliver();
  }

  /** Ack floor from the oldest unacknowledged message (nats-server moveAckFloor, for any ack order). */
  #updateAckFloor(): void {
    if (this.config.ack_policy === 'none') return;
    const first = this.#pending.entries().next();
    if (first.done === true) {
      this.#ackFloorConsumer = this.#dseq - 1;
      this.#ackFloorStream = this.#sseq - 1;
      return;
    }
    const [seq, entry] = first.value;
    this.#ackFloorConsumer = entry.consumerSeq - 1;
    this.#ackFloorStream = seq - 1;
  }

  #ackWaitMsFor(seq: number): number {
    const backoff = this.config.backoff;
    if (backoff !== undefined && backoff.length > 0) {
      const deliveries = this.#redelivered.get(seq) ?? 1;
      return backoff[Math.min(deliveries - 1, backoff.length - 1)]! / 1e6;
    }
    return (this.config.ack_wait ?? 0) / 1e6;
  }

  #queueRedelivery(seq: number): void {
    if (this.#redeliverySet.has(seq)) return;
    this.#redeliverySet.add(seq);
    this.#redeliveryQueue.push(seq);
  }

  #unqueueRedelivery(seq: number): void {
    // Lazy removal: the queue entry is skipped when its seq is no longer in the set.
    this.#redeliverySet.delete(seq);
  }

  #popRedelivery(): void {
    const seq = this.#redeliveryQueue[this.#redeliveryHead]!;
    this.#redeliveryHead++;
    this.#redeliverySet.delete(seq);
    if (this.#redeliveryHead >= this.#redeliveryQueue.length) {
      this.#redeliveryQueue = [];
      this.#redeliveryHead = 0;
    } else if (this.#redeliveryHead > 1024 && this.#redeliveryHead * 2 > this.#redeliveryQueue.length) {
      this.#redeliveryQueue = this.#redeliveryQueue.slice(this.#redeliveryHead);
      this.#redeliveryHead = 0;
    }
  }

  /** ack_wait expirations: queue for redelivery, or give up after max_deliver (nats-server checkPending). */
  #checkAckDeadlines(nowMs: number): number {
    let dueMs = Number.POSITIVE_INFINITY;
    if (this.#pending.size === 0 || this.config.ack_policy === 'none') return dueMs;
    const maxDeliver = this.config.max_deliver;
    let exhausted: number[] | undefined;
    let expired: number[] | undefined;
    for (const [seq, entry] of this.#pending) {
      if (this.#redeliverySet.has(seq)) continue;
      const entryDueMs = entry.timestampMs + this.#ackWaitMsFor(seq);
      if (entryDueMs > nowMs) {
        if (entryDueMs < dueMs) dueMs = entryDueMs;
        continue;
      }
      const deliveries = this.#redelivered.get(seq) ?? 1;
      if (maxDeliver > 0 && deliveries >= maxDeliver) (exhausted ??= []).push(seq);
      else (expired ??= []).push(seq);
    }
    if (exhausted !== undefined) for (const seq of exhausted) this.#giveUp(seq);
    if (expired !== undefined) for (const seq of expired) this.#queueRedelivery(seq);
    return dueMs;
  }

  /** max_deliver reached: stop tracking, keep the delivery count, send the advisory. */
  #giveUp(seq: number): void {
    const deliveries = this.#redelivered.get(seq) ?? 1;
    this.#pending.delete(seq);
    this.#redelivered.set(seq, deliveries);
    this.#updateAckFloor();
    this.#markStateDirty();
    this.#sendAdvisory('MAX_DELIVERIES', 'io.nats.jetstream.advisory.v1.max_deliver', { stream_seq: seq, deliveries });
  }

  #sendTerminatedAdvisory(fields: { deliveries: number; streamSeq: number; consumerSeq: number }, reason: string): void {
    this.#sendAdvisory('MSG_TERMINATED', 'io.nats.jetstream.advisory.v1.terminated', {
      consumer_seq: fields.consumerSeq,
      stream_seq: fields.streamSeq,
      deliveries: fields.deliveries,
      ...(reason === '' ? {} : { reason }),
    });
  }

  /** `$JS.EVENT.ADVISORY.CONSUMER.<kind>.<stream>.<consumer>`, only when someone listens. */
  #sendAdvisory(kind: string, type: string, body: Record<string, unknown>): void {
    const subject = `${ADVISORY_PREFIX}${kind}.${this.stream.name}.${this.name}`;
    if (!this.#host.client.hasInterest(subject)) return;
    const json = JSON.stringify({
      type,
      id: randomToken(22),
      timestamp: formatRfc3339Ns(nowNs()),
      stream: this.stream.name,
      consumer: this.name,
      ...body,
    });
    this.#host.client.publish(subject, '', 0, Buffer.from(json));
  }

  // --- Timer ------------------------------------------------------------------------------------

  /** Arms the consumer's one timer for `dueMs` unless it already fires sooner. */
  #arm(dueMs: number): void {
    if (this.#isClosed || !Number.isFinite(dueMs)) return;
    if (this.#timer !== undefined && this.#timerDueMs <= dueMs) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const delayMs = Math.max(dueMs - Date.now(), TIMER_DELAY_MS_MIN);
    this.#timerDueMs = dueMs;
    this.#timer = setTimeout(() => this.#onTimer(), delayMs);
    this.#timer.unref();
  }

  #rescheduleAll(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#onTimer();
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#isClosed) return;
    const nowMs = Date.now();
    let dueMs = this.#checkAckDeadlines(nowMs);
    if (this.#isPush) dueMs = Math.min(dueMs, this.#pushTick(nowMs));
    else if (this.#waitingCount > 0) dueMs = Math.min(dueMs, this.#processWaiting(nowMs, false));
    if (this.#checkInactivity(nowMs)) return;
    this.deliver();
    if (this.#isClosed) return;
    dueMs = Math.min(dueMs, this.#inactivityDueMs());
    this.#arm(dueMs);
  }

  /** Push: interest poll and the idle heartbeat; returns the next due time. */
  #pushTick(nowMs: number): number {
    const isActive = this.#host.client.hasInterest(this.config.deliver_subject ?? '');
    if (isActive !== this.#isActive) this.#setActive(isActive, nowMs);
    let dueMs: number;
    if (!this.#isActive) {
      dueMs = nowMs + this.#interestPollMs;
      this.#interestPollMs = Math.min(this.#interestPollMs * 2, INTEREST_POLL_MS_MAX);
      return dueMs;
    }
    dueMs = (this.config.inactive_threshold ?? 0) > 0 ? nowMs + INTEREST_CHECK_MS : Number.POSITIVE_INFINITY;
    const heartbeatMs = this.#heartbeatMs();
    if (heartbeatMs > 0) {
      if (nowMs >= this.#heartbeatDueMs) {
        this.#sendHeartbeat(this.config.deliver_subject ?? '');
        this.#heartbeatDueMs = nowMs + heartbeatMs;
      }
      dueMs = Math.min(dueMs, this.#heartbeatDueMs);
    }
    return dueMs;
  }

  /** When the inactive_threshold check is next due (nats-server deleteNotActive), or never. */
  #inactivityDueMs(): number {
    const thresholdMs = (this.config.inactive_threshold ?? 0) / 1e6;
    if (thresholdMs <= 0) return Number.POSITIVE_INFINITY;
    if (this.#isPush) return this.#isActive ? Number.POSITIVE_INFINITY : this.#inactiveSinceMs + thresholdMs;
    if (this.#waitingCount > 0) return Date.now() + thresholdMs;
    let dueMs = this.#lastActiveMs + thresholdMs;
    // Wait for the last unacknowledged message's ack deadline too: the client may still be working on it.
    for (const [seq, entry] of this.#pending) dueMs = Math.max(dueMs, entry.timestampMs + this.#ackWaitMsFor(seq) + thresholdMs);
    return dueMs;
  }

  /** Deletes the consumer when inactive past its threshold; true when it did. */
  #checkInactivity(nowMs: number): boolean {
    const dueMs = this.#inactivityDueMs();
    if (dueMs > nowMs) return false;
    this.#log.debug({ inactive_threshold: this.config.inactive_threshold }, 'consumer inactive, deleting');
    this.#host.onInactive(this);
    return true;
  }
}

/** '' (everything), one filter, or a list, as the store takes it. */
function storeFilterOf(filters: readonly string[]): SubjectFilter {
  if (filters.length === 0) return '';
  if (filters.length === 1) return filters[0]!;
  return filters;
}

type AckKind = 'ack' | 'nak' | 'progress' | 'next' | 'term' | 'unknown';

const CHAR_PLUS = 0x2b;
const CHAR_MINUS = 0x2d;

/** Classifies an ack payload by its first bytes (nats-server processAck, NATS-SPEC.md §4.3). */
export function ackKind(payload: Buffer): AckKind {
  const length = payload.length;
  if (length === 0) return 'ack';
  const first = payload[0];
  if (first === CHAR_PLUS) {
    if (length === 4 && payload.latin1Slice(0, 4) === '+ACK') return 'ack';
    if (length === 3 && payload.latin1Slice(0, 3) === '+OK') return 'ack';
    if (length === 4 && payload.latin1Slice(0, 4) === '+WPI') return 'progress';
    if (length >= 4 && payload.latin1Slice(0, 4) === '+NXT') return 'next';
    if (length >= 5 && payload.latin1Slice(0, 5) === '+TERM') return 'term';
    return 'unknown';
  }
  if (first === CHAR_MINUS && length >= 4 && payload.latin1Slice(0, 4) === '-NAK') return 'nak';
  return 'unknown';
}

/** `{"delay": ns}` or a Go duration after -NAK; undefined = plain NAK (also for unparseable delays). */
export function parseNakDelayMs(argument: Buffer): number | undefined {
  const text = argument.toString('utf8').trim();
  if (text === '') return undefined;
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object') return undefined;
      const delay = (parsed as Record<string, unknown>)['delay'];
      if (delay === undefined) return 0;
      if (typeof delay !== 'number' || !Number.isFinite(delay)) return undefined;
      return delay / 1e6;
    } catch {
      // nats-server treats an unparseable delay as a plain NAK.
      return undefined;
    }
  }
  return parseGoDurationMs(text);
}

const GO_UNIT_MS: ReadonlyMap<string, number> = new Map([
  ['ns', 1e-6],
  ['us', 1e-3],
  ['µs', 1e-3],
  ['μs', 1e-3],
  ['ms', 1],
  ['s', 1000],
  ['m', 60_000],
  ['h', 3_600_000],
]);

/** Go's time.ParseDuration ("1.5s", "100ms", "1h2m"); undefined when invalid. */
export function parseGoDurationMs(text: string): number | undefined {
  if (text === '0') return 0;
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let totalMs = 0;
  let consumed = 0;
  for (let match = part.exec(rest); match !== null; match = part.exec(rest)) {
    totalMs += Number(match[1]) * (GO_UNIT_MS.get(match[2] ?? '') ?? Number.NaN);
    consumed = part.lastIndex;
  }
  if (consumed === 0 || consumed !== rest.length || !Number.isFinite(totalMs)) return undefined;
  return sign * totalMs;
}

/**
 * Parses a pull request body (nats-server nextReqFromMsg): empty → batch 1; a number → that
 * batch; JSON → the request. Returns the `400 Bad Request - <reason>` reason on failure.
 */
export function parsePullRequest(body: Buffer): PullRequestOptions | string {
  const text = body.toString('utf8').trim();
  const options: PullRequestOptions = { batch: 1, expiresNs: 0, maxBytes: 0, isNoWait: false, heartbeatNs: 0 };
  if (text === '') return options;
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return (err as Error).message;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'invalid request';
    const raw = parsed as Record<string, unknown>;
    const intOf = (key: string): number | string => {
      const value = raw[key];
      if (value === undefined || value === null) return 0;
      if (typeof value !== 'number' || !Number.isInteger(value)) return `json: cannot unmarshal ${typeof value} into Go struct field JSApiConsumerGetNextRequest.${key}`;
      return value;
    };
    const batch = intOf('batch');
    const expires = intOf('expires');
    const maxBytes = intOf('max_bytes');
    const heartbeat = intOf('idle_heartbeat');
    for (const value of [batch, expires, maxBytes, heartbeat]) if (typeof value === 'string') return value;
    options.batch = (batch as number) > 0 ? (batch as number) : 1;
    options.expiresNs = Math.max(expires as number, 0);
    options.maxBytes = Math.max(maxBytes as number, 0);
    options.isNoWait = raw['no_wait'] === true;
    options.heartbeatNs = Math.max(heartbeat as number, 0);
    if (options.heartbeatNs > 0 && options.heartbeatNs * 2 > options.expiresNs) return 'heartbeat value too large';
    return options;
  }
  const batch = Number(text);
  if (Number.isInteger(batch) && /^[+-]?\d+$/.test(text)) options.batch = batch > 0 ? batch : 1;
  return options;
}

const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random token of `length` alphanumerics (flow control replies, advisory ids). */
export function randomToken(length: number): string {
  let token = '';
  for (let i = 0; i < length; i++) token += TOKEN_ALPHABET[Math.floor(Math.random() * TOKEN_ALPHABET.length)];
  return token;
}
