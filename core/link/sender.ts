/**
 * The sender side of stream sync on one link (README "Stream sync rules"): the side that has
 * the streams offers them, resumes each one from the receiver's durable cursor, pipelines
 * batches inside the byte window, and tells the receiver about data it deleted before the
 * receiver had it (gaps).
 *
 * A pure state machine (STYLE.md §1.5, house rule 1). Inputs are method calls: `connected`,
 * `disconnected`, `receive` (cursor / window / error frames), `streamChanged`. Outputs are
 * collected and handed out by `poll()`: the frames to send, the acknowledged cursors (for
 * "keep until the hub has it" retention), and a protocol error if the peer broke the rules.
 * It reads the local streams synchronously through `SenderStreams` (canopy's stores read
 * synchronously) and time through the injected `Clock` (for monitoring, and for the pace of
 * filtered tail gaps).
 *
 * One object lives as long as the link (across connections). What a connection learned is
 * dropped by `disconnected()`; only the acknowledged cursors survive, because the receiver's
 * durable cursor never goes backwards (README "Cursor").
 */
import { assert } from '../util/assert.ts';
import type { Clock } from '../util/clock.ts';
import { CreditWindow, messageBytes } from './credit.ts';
import { GAP_REASON_FILTERED, type BatchFrame, type CursorFrame, type ErrorFrame, type GapFrame, type LinkMessage, type OfferFrame, type SenderFrame, type StreamKey, type WindowFrame } from './frames.ts';
import { LINK_BATCH_BYTES_MAX, LINK_BATCH_MSGS_MAX, LINK_FILTERED_TAIL_MS, LINK_INFLIGHT_BATCHES_MAX, LINK_WINDOW_BYTES_MAX, LINK_WINDOW_BYTES_MIN } from './limits.ts';

/**
 * The local streams, as the sender reads them. Every call is synchronous and sees one
 * consistent state (the store between two writes). Calls take the `StreamKey`, so a stream that
 * was deleted or re-created under the same name is never read under its old incarnation.
 */
export interface SenderStreams {
  /** The streams this side syncs over the link now. */
  list(): readonly StreamKey[];
  /**
   * The stream's first and last sequence now (first > last when empty), or undefined when no
   * stream with this name and incarnation exists any more.
   */
  state(key: StreamKey): { readonly firstSeq: number; readonly lastSeq: number } | undefined;
  /**
   * Stored messages with `seq >= fromSeq`, ascending, at most `maxMsgs`, stopping before
   * `maxBytes` (counted with `messageBytes`) would be exceeded, but at least one message if any
   * exists. The sender keeps the returned objects only until the batch frame is handed out.
   */
  read(key: StreamKey, fromSeq: number, maxBytes: number, maxMsgs: number): readonly LinkMessage[];
  /**
   * Why `from … to` is gone ('limits', 'purged', 'deleted'); 'limits' when not implemented.
   * A filtered view (one receiver's share of the stream) answers GAP_REASON_FILTERED for a range
   * whose messages are all stored but not for this receiver: such a gap is no loss, and one over
   * the stream's tail is sent at most every LINK_FILTERED_TAIL_MS (`#step`).
   */
  gapReason?(key: StreamKey, from: number, to: number): string;
  /**
   * For monitoring only: messages stored after `afterSeq`, their bytes, and the store time of
   * the oldest of them (undefined when none).
   */
  pending(key: StreamKey, afterSeq: number): { readonly msgs: number; readonly bytes: number; readonly oldestNs: bigint | undefined };
}

export type SenderOptions = {
  readonly streams: SenderStreams;
  readonly clock: Clock;
  /** Messages per batch at most (default `LINK_BATCH_MSGS_MAX`). */
  readonly batchMsgsMax?: number;
  /** Payload bytes per batch at most, unless one message is larger (default `LINK_BATCH_BYTES_MAX`). */
  readonly batchBytesMax?: number;
  /** Unacknowledged batches per connection at most (default `LINK_INFLIGHT_BATCHES_MAX`). */
  readonly inflightBatchesMax?: number;
};

/** The receiver has everything up to `seq` of this stream incarnation durably (a `cursor` frame). */
export type AckedCursor = { readonly stream: string; readonly incarnation: string; readonly seq: number };

/** What the host does after feeding inputs: send `frames` in order, apply `acked`, close on `error`. */
export type SenderOutput = {
  readonly frames: readonly SenderFrame[];
  /** Cursors acknowledged since the last poll, oldest first (one stream may appear more than once). */
  readonly acked: readonly AckedCursor[];
  /** The peer broke the protocol: close the connection (the hub also sends this frame). */
  readonly error: ErrorFrame | undefined;
};

/**
 * - `offered`: offer sent, waiting for the receiver's cursor;
 * - `syncing`: sending from the cursor;
 * - `refused`: the receiver refused the stream (error code 'stream') for this connection;
 * - `diverged`: the receiver's cursor is past our last sequence: our stream lost data it had
 *   acknowledged (a rolled-back disk that kept its incarnation). Nothing is sent until the stream
 *   gets a new incarnation; monitoring must alert.
 * - `disconnected`: no connection.
 */
export type SenderStreamState = 'disconnected' | 'offered' | 'syncing' | 'refused' | 'diverged';

/** Per-stream monitoring (EDGE-SYNC.md finding 8: lag alone is not a health signal). */
export type SenderStreamProgress = {
  readonly stream: string;
  readonly incarnation: string;
  readonly state: SenderStreamState;
  /** The receiver's durable cursor as last heard (this process), or undefined before its first answer. */
  readonly ackedSeq: number | undefined;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Highest sequence sent (batch or gap) on this connection, 0 before any. */
  readonly sentSeq: number;
  /** Batch bytes of this stream sent and not yet acknowledged on this connection. */
  readonly inflightBytes: number;
  /** Stored messages after the acknowledged cursor (after 0 before the first answer). */
  readonly backlogMsgs: number;
  readonly backlogBytes: number;
  /** Store time of the oldest message the receiver does not have yet. */
  readonly oldestUnsyncedNs: bigint | undefined;
  /** Clock time of the last cursor that moved (or confirmed) the acknowledged cursor. */
  readonly lastAckMs: number | undefined;
  /** Gap frames sent for this incarnation, and the sequences they covered, in this process ('filtered' ones not counted). */
  readonly gapsSent: number;
  readonly gapMsgs: number;
  /** Sequences skipped by 'filtered' gaps (messages for other receivers) in this process. */
  readonly filteredMsgs: number;
  /** The receiver's refusal text when `state` is 'refused'. */
  readonly refusal: string | undefined;
};

/** Link-level counters (for /leafz and metrics). */
export type SenderStats = {
  readonly connections: number;
  readonly offersSent: number;
  readonly batchesSent: number;
  readonly msgsSent: number;
  readonly bytesSent: number;
  readonly gapsSent: number;
  /** An offer was answered with a cursor lower than one acknowledged before (receiver rolled back). */
  readonly cursorRegressions: number;
  /** Streams found diverged (receiver ahead of our stream). */
  readonly divergences: number;
};

/** A batch sent and not yet fully acknowledged. `msgBytes[i]` is the cost of `firstSeq + i`. */
type Inflight = { readonly id: number; readonly firstSeq: number; readonly msgBytes: readonly number[]; released: number };

/** One stream incarnation on the current connection. */
type Sync = {
  readonly key: StreamKey;
  phase: 'offered' | 'syncing' | 'refused' | 'diverged';
  /** Next sequence to send (batch or gap). */
  nextSeq: number;
  /** Highest sequence sent on this connection. */
  sentSeq: number;
  /** Highest cursor heard on this connection. */
  cursorSeq: number;
  readonly inflight: Inflight[];
  refusal: string | undefined;
  /** Clock time of the last 'filtered' gap over the stream's tail (throttled: LINK_FILTERED_TAIL_MS). */
  filteredTailAtMs: number;
};

/** What survives connections for one stream incarnation. */
type Record = {
  readonly incarnation: string;
  ackedSeq: number | undefined;
  lastAckMs: number | undefined;
  gapsSent: number;
  gapMsgs: number;
  filteredMsgs: number;
};

function keyId(key: StreamKey): string {
  return `${key.stream}\u0000${key.incarnation}`;
}

export class LinkSender {
  readonly #streams: SenderStreams;
  readonly #clock: Clock;
  readonly #batchMsgsMax: number;
  readonly #batchBytesMax: number;
  readonly #inflightBatchesMax: number;

  #credit: CreditWindow | undefined = undefined;
  /** Active incarnation per stream name on this connection. */
  readonly #syncs = new Map<string, Sync>();
  /** Old incarnations (stream deleted or re-created) with bytes still in flight on this connection. */
  readonly #retired = new Map<string, Sync>();
  /** Every key offered on this connection: a cursor for any other key is a protocol error. */
  readonly #offered = new Set<string>();
  readonly #records = new Map<string, Record>();
  #inflightBatches = 0;
  #batchId = 0;
  /** Round-robin start, so one busy stream does not starve the others. */
  #turn = 0;

  #frames: SenderFrame[] = [];
  #acked: AckedCursor[] = [];
  #error: ErrorFrame | undefined = undefined;
  #stats = { connections: 0, offersSent: 0, batchesSent: 0, msgsSent: 0, bytesSent: 0, gapsSent: 0, cursorRegressions: 0, divergences: 0 };

  constructor(options: SenderOptions) {
    this.#streams = options.streams;
    this.#clock = options.clock;
    this.#batchMsgsMax = options.batchMsgsMax ?? LINK_BATCH_MSGS_MAX;
    this.#batchBytesMax = options.batchBytesMax ?? LINK_BATCH_BYTES_MAX;
    this.#inflightBatchesMax = options.inflightBatchesMax ?? LINK_INFLIGHT_BATCHES_MAX;
    assert(this.#batchMsgsMax >= 1 && this.#batchBytesMax >= 1 && this.#inflightBatchesMax >= 1, 'sender limits must be positive');
  }

  get isConnected(): boolean {
    return this.#credit !== undefined;
  }

  get stats(): SenderStats {
    return { ...this.#stats };
  }

  /** The unacknowledged bytes and the window of this connection (monitoring and tests). */
  get credit(): { readonly unackedBytes: number; readonly windowBytes: number } | undefined {
    const credit = this.#credit;
    return credit === undefined ? undefined : { unackedBytes: credit.unackedBytes, windowBytes: credit.windowBytes };
  }

  /** A connection is up (after welcome): offer every stream. `windowBytes` is the peer's receive window. */
  connected(windowBytes: number): void {
    assert(this.#credit === undefined, 'connected twice without disconnected');
    this.#credit = new CreditWindow(windowBytes);
    this.#stats.connections += 1;
    for (const key of this.#streams.list()) this.#offer(key);
  }

  /** The connection closed: nothing in flight is assumed delivered (README "Connection" 4). */
  disconnected(): void {
    this.#credit = undefined;
    this.#syncs.clear();
    this.#retired.clear();
    this.#offered.clear();
    this.#inflightBatches = 0;
    this.#frames = [];
    this.#error = undefined;
  }

  /** A frame from the receiver side of the peer. Call only while connected. */
  receive(frame: CursorFrame | WindowFrame | ErrorFrame): void {
    assert(this.#credit !== undefined, `sender got ${frame.t} while disconnected`);
    if (this.#error !== undefined) return; // the connection is closing
    switch (frame.t) {
      case 'cursor':
        this.#onCursor(frame);
        return;
      case 'window':
        if (!Number.isSafeInteger(frame.windowBytes) || frame.windowBytes < LINK_WINDOW_BYTES_MIN || frame.windowBytes > LINK_WINDOW_BYTES_MAX) {
          this.#fail(`window ${frame.windowBytes} outside [${LINK_WINDOW_BYTES_MIN}, ${LINK_WINDOW_BYTES_MAX}]`);
          return;
        }
        this.#credit.setWindow(frame.windowBytes);
        return;
      case 'error':
        if (frame.code === 'stream' && frame.stream !== undefined) this.#onRefused(frame.stream, frame.text);
        return; // connection-level errors are the connection's business (connection.ts)
    }
  }

  /**
   * The local stream got new data, lost data (limits, purge, delete), or was created, deleted or
   * re-created. Cheap: the work happens in `poll()`.
   */
  streamChanged(stream: string): void {
    if (this.#credit === undefined) return;
    const current = this.#streams.list().find((key) => key.stream === stream);
    const sync = this.#syncs.get(stream);
    if (sync !== undefined && (current === undefined || current.incarnation !== sync.key.incarnation)) this.#retire(sync);
    if (current === undefined) this.#records.delete(stream);
    else if (!this.#syncs.has(stream)) this.#offer(current);
  }

  /** Hands out what to do now: frames to send (batches up to the window), acknowledged cursors, a protocol error. */
  poll(): SenderOutput {
    if (this.#credit !== undefined && this.#error === undefined) this.#pump(this.#credit);
    const output: SenderOutput = { frames: this.#frames, acked: this.#acked, error: this.#error };
    this.#frames = [];
    this.#acked = [];
    return output;
  }

  /** The receiver's durable cursor for the stream's current incarnation, as last heard; for retention. */
  acked(stream: string): AckedCursor | undefined {
    const key = this.#streams.list().find((candidate) => candidate.stream === stream);
    if (key === undefined) return undefined;
    const record = this.#records.get(stream);
    if (record === undefined || record.incarnation !== key.incarnation || record.ackedSeq === undefined) return undefined;
    return { stream, incarnation: key.incarnation, seq: record.ackedSeq };
  }

  /** Monitoring for every stream this side syncs (reads the store: call at scrape time, not per message). */
  progress(): SenderStreamProgress[] {
    const result: SenderStreamProgress[] = [];
    for (const key of this.#streams.list()) {
      const state = this.#streams.state(key);
      if (state === undefined) continue;
      const known = this.#records.get(key.stream);
      const record = known?.incarnation === key.incarnation ? known : undefined;
      const sync = this.#syncs.get(key.stream);
      const isActive = sync !== undefined && sync.key.incarnation === key.incarnation;
      const pending = this.#streams.pending(key, record?.ackedSeq ?? 0);
      let inflightBytes = 0;
      if (isActive) for (const batch of sync.inflight) inflightBytes += unreleasedBytes(batch);
      result.push({
        stream: key.stream,
        incarnation: key.incarnation,
        state: isActive ? sync.phase : 'disconnected',
        ackedSeq: record?.ackedSeq,
        firstSeq: state.firstSeq,
        lastSeq: state.lastSeq,
        sentSeq: isActive ? sync.sentSeq : 0,
        inflightBytes,
        backlogMsgs: pending.msgs,
        backlogBytes: pending.bytes,
        oldestUnsyncedNs: pending.oldestNs,
        lastAckMs: record?.lastAckMs,
        gapsSent: record?.gapsSent ?? 0,
        gapMsgs: record?.gapMsgs ?? 0,
        filteredMsgs: record?.filteredMsgs ?? 0,
        refusal: isActive ? sync.refusal : undefined,
      });
    }
    return result;
  }

  // ---------------------------------------------------------------- inputs

  #offer(key: StreamKey): void {
    const state = this.#streams.state(key);
    if (state === undefined) return;
    // Offered again on one connection only if the stream left the synced list and came back:
    // harmless, the receiver answers with its (monotonic) cursor again.
    this.#offered.add(keyId(key));
    this.#syncs.set(key.stream, { key, phase: 'offered', nextSeq: 0, sentSeq: 0, cursorSeq: 0, inflight: [], refusal: undefined, filteredTailAtMs: -Infinity });
    this.#recordFor(key);
    this.#stats.offersSent += 1;
    const offer: OfferFrame = { t: 'offer', stream: key.stream, incarnation: key.incarnation, firstSeq: state.firstSeq, lastSeq: state.lastSeq };
    this.#frames.push(offer);
  }

  /** The stream's incarnation is gone: send nothing more for it, but keep its bytes in flight until acknowledged. */
  #retire(sync: Sync): void {
    this.#syncs.delete(sync.key.stream);
    if (sync.inflight.length === 0) return;
    const id = keyId(sync.key);
    const earlier = this.#retired.get(id);
    if (earlier === undefined) this.#retired.set(id, sync);
    else earlier.inflight.push(...sync.inflight);
  }

  #onCursor(frame: CursorFrame): void {
    if (!Number.isSafeInteger(frame.seq) || frame.seq < 0) {
      this.#fail(`cursor ${frame.seq} for ${frame.stream} is not a sequence`);
      return;
    }
    const id = keyId(frame);
    const sync = this.#syncs.get(frame.stream);
    if (sync !== undefined && sync.key.incarnation === frame.incarnation) {
      if (sync.phase === 'offered') this.#onOfferAnswer(sync, frame.seq);
      else if (sync.phase === 'syncing') this.#onAck(sync, frame.seq);
      return; // refused or diverged: nothing to do
    }
    const retired = this.#retired.get(id);
    if (retired !== undefined) {
      this.#release(retired, frame.seq);
      if (retired.inflight.length === 0) this.#retired.delete(id);
      return;
    }
    // A late cursor for an incarnation retired since: harmless. For a key never offered: a bug.
    if (!this.#offered.has(id)) this.#fail(`cursor for ${frame.stream}/${frame.incarnation}, which was not offered`);
  }

  #onOfferAnswer(sync: Sync, seq: number): void {
    const state = this.#streams.state(sync.key);
    if (state === undefined) return; // deleted meanwhile; streamChanged retires it
    if (seq > state.lastSeq) {
      this.#diverge(sync);
      return;
    }
    const record = this.#recordFor(sync.key);
    if (record.ackedSeq !== undefined && seq < record.ackedSeq) this.#stats.cursorRegressions += 1;
    sync.phase = 'syncing';
    sync.nextSeq = seq + 1;
    sync.cursorSeq = seq;
    this.#noteAcked(sync.key, seq);
  }

  #onAck(sync: Sync, seq: number): void {
    if (seq < sync.cursorSeq) {
      this.#fail(`cursor for ${sync.key.stream} went backwards: ${seq} < ${sync.cursorSeq}`);
      return;
    }
    const state = this.#streams.state(sync.key);
    if (state === undefined) return;
    if (seq > state.lastSeq) {
      this.#diverge(sync);
      return;
    }
    this.#release(sync, seq);
    sync.cursorSeq = seq;
    // The receiver may already have more than we sent (staged on an earlier connection and
    // durable now): skip ahead instead of resending it.
    if (seq >= sync.nextSeq) sync.nextSeq = seq + 1;
    this.#noteAcked(sync.key, seq);
  }

  #noteAcked(key: StreamKey, seq: number): void {
    const record = this.#recordFor(key);
    record.ackedSeq = seq;
    record.lastAckMs = this.#clock.nowMs();
    this.#acked.push({ stream: key.stream, incarnation: key.incarnation, seq });
  }

  #diverge(sync: Sync): void {
    this.#releaseAll(sync);
    sync.phase = 'diverged';
    this.#stats.divergences += 1;
  }

  #onRefused(stream: string, text: string): void {
    const sync = this.#syncs.get(stream);
    if (sync === undefined) return;
    // The receiver dropped the stream's batches: their bytes will never be acknowledged.
    this.#releaseAll(sync);
    sync.phase = 'refused';
    sync.refusal = text;
  }

  #fail(text: string): void {
    this.#error = { t: 'error', code: 'protocol', text, stream: undefined };
  }

  // ---------------------------------------------------------------- credit

  /** Releases the bytes of every in-flight message up to `seq`. */
  #release(sync: Sync, seq: number): void {
    const credit = this.#credit!;
    while (sync.inflight.length > 0) {
      const batch = sync.inflight[0]!;
      const lastSeq = batch.firstSeq + batch.msgBytes.length - 1;
      const upTo = Math.min(seq, lastSeq);
      while (batch.released < batch.msgBytes.length && batch.firstSeq + batch.released <= upTo) {
        credit.release(batch.msgBytes[batch.released]!);
        batch.released += 1;
      }
      if (batch.released < batch.msgBytes.length) return;
      sync.inflight.shift();
      this.#inflightBatches -= 1;
    }
  }

  #releaseAll(sync: Sync): void {
    this.#release(sync, Number.MAX_SAFE_INTEGER);
  }

  // ---------------------------------------------------------------- pump

  /** Sends gaps and batches, one batch per stream per round, until every stream is idle or blocked. */
  #pump(credit: CreditWindow): void {
    const streams = [...this.#syncs.values()];
    if (streams.length === 0) return;
    this.#turn = (this.#turn + 1) % streams.length;
    let isProgress = true;
    while (isProgress) {
      isProgress = false;
      for (let i = 0; i < streams.length; i++) {
        const sync = streams[(this.#turn + i) % streams.length]!;
        if (sync.phase === 'syncing' && this.#step(sync, credit)) isProgress = true;
      }
    }
  }

  /** Sends at most one gap and one batch for `sync`. True if it sent anything. */
  #step(sync: Sync, credit: CreditWindow): boolean {
    const state = this.#streams.state(sync.key);
    if (state === undefined || sync.nextSeq > state.lastSeq) return false;
    let isSent = false;
    // README "Gap": the next sequence was deleted before the receiver had it.
    if (sync.nextSeq < state.firstSeq) {
      this.#sendGap(sync, state.firstSeq - 1, this.#gapReason(sync, state.firstSeq - 1));
      isSent = true;
      if (sync.nextSeq > state.lastSeq) return true;
    }
    if (this.#inflightBatches >= this.#inflightBatchesMax) return isSent;
    if (credit.unackedBytes > 0 && credit.availableBytes === 0) return isSent;
    // A batch never crosses the window, except one message alone when nothing is unacknowledged.
    const maxBytes = Math.max(1, Math.min(this.#batchBytesMax, credit.availableBytes));
    const read = this.#streams.read(sync.key, sync.nextSeq, maxBytes, this.#batchMsgsMax);
    const first = read[0];
    if (first === undefined) {
      // Nothing stored from nextSeq on although nextSeq <= lastSeq: the tail was deleted, or a
      // filtered view holds nothing more for this receiver. Such a tail is no loss and needs no
      // hurry (LINK_FILTERED_TAIL_MS): the next message for the receiver carries it as its gap.
      const reason = this.#gapReason(sync, state.lastSeq);
      if (reason === GAP_REASON_FILTERED) {
        const nowMs = this.#clock.nowMs();
        if (nowMs - sync.filteredTailAtMs < LINK_FILTERED_TAIL_MS) return isSent;
        sync.filteredTailAtMs = nowMs;
      }
      this.#sendGap(sync, state.lastSeq, reason);
      return true;
    }
    assert(first.seq >= sync.nextSeq, `read(${sync.nextSeq}) returned seq ${first.seq}`);
    if (first.seq > sync.nextSeq) {
      // A hole inside the stream (a deleted message, or a filtered view's messages for others): its own gap, then the batch.
      this.#sendGap(sync, first.seq - 1, this.#gapReason(sync, first.seq - 1));
      isSent = true;
    }
    return this.#sendBatch(sync, credit, read, maxBytes) || isSent;
  }

  /** The reason of a gap from nextSeq to `to`. */
  #gapReason(sync: Sync, to: number): string {
    const from = sync.nextSeq;
    assert(from <= to, `gap ${from}..${to} is empty`);
    return this.#streams.gapReason?.(sync.key, from, to) ?? 'limits';
  }

  #sendGap(sync: Sync, to: number, reason: string): void {
    const from = sync.nextSeq;
    assert(from <= to, `gap ${from}..${to} is empty`);
    const record = this.#recordFor(sync.key);
    const gap: GapFrame = { t: 'gap', stream: sync.key.stream, incarnation: sync.key.incarnation, from, to, reason };
    this.#frames.push(gap);
    sync.nextSeq = to + 1;
    sync.sentSeq = to;
    if (reason === GAP_REASON_FILTERED) {
      record.filteredMsgs += to - from + 1;
      return;
    }
    record.gapsSent += 1;
    record.gapMsgs += to - from + 1;
    this.#stats.gapsSent += 1;
  }

  /** Sends the consecutive run of `read` starting at nextSeq that fits the window and the batch limits. */
  #sendBatch(sync: Sync, credit: CreditWindow, read: readonly LinkMessage[], maxBytes: number): boolean {
    const msgs: LinkMessage[] = [];
    const msgBytes: number[] = [];
    let total = 0;
    for (let i = 0; i < read.length && msgs.length < this.#batchMsgsMax; i++) {
      const message = read[i]!;
      if (message.seq !== sync.nextSeq + msgs.length) break; // a hole: the next step sends its gap
      const bytes = messageBytes(message);
      // The first message only needs credit (it may be bigger than a batch when nothing is unacked).
      if (msgs.length === 0 ? !credit.canSend(bytes) : total + bytes > maxBytes) break;
      msgs.push(message);
      msgBytes.push(bytes);
      total += bytes;
    }
    if (msgs.length === 0) return false;
    credit.charge(total);
    this.#batchId += 1;
    const batch: BatchFrame = { t: 'batch', stream: sync.key.stream, incarnation: sync.key.incarnation, id: this.#batchId, msgs };
    this.#frames.push(batch);
    sync.inflight.push({ id: this.#batchId, firstSeq: msgs[0]!.seq, msgBytes, released: 0 });
    this.#inflightBatches += 1;
    sync.nextSeq += msgs.length;
    sync.sentSeq = sync.nextSeq - 1;
    this.#stats.batchesSent += 1;
    this.#stats.msgsSent += msgs.length;
    this.#stats.bytesSent += total;
    return true;
  }

  #recordFor(key: StreamKey): Record {
    let record = this.#records.get(key.stream);
    if (record === undefined || record.incarnation !== key.incarnation) {
      record = { incarnation: key.incarnation, ackedSeq: undefined, lastAckMs: undefined, gapsSent: 0, gapMsgs: 0, filteredMsgs: 0 };
      this.#records.set(key.stream, record);
    }
    return record;
  }
}

function unreleasedBytes(batch: Inflight): number {
  let bytes = 0;
  for (let i = batch.released; i < batch.msgBytes.length; i++) bytes += batch.msgBytes[i]!;
  return bytes;
}
