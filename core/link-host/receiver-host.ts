/**
 * The receiving half of a link host, for both roles (core/link/README.md "The host loop"): one
 * {@link LinkReceiver} over a {@link JetStreamSink} per peer, living across connections, plus
 * what a real store needs around them. The hub runs one per leaf (its upstream streams), a leaf
 * runs one for its hub (the downstream streams); the transport stays the host's (`send`,
 * `abort` callbacks).
 *
 * - **Creation first.** An offer for a stream this side lacks waits until the sink created it;
 *   the frames after it wait too, in order (a bounded queue).
 * - **One flush per turn.** Writes are staged by the sink during an event-loop turn; a
 *   {@link TurnFlusher} shared by every host of one store takes each dirty host's turn, calls
 *   `storage.flushed()` once, then `sink.durable(turn)`, `receiver.durable()` for the keys the turn
 *   covered, and the cursor frames go out, then the turn's stream refusals (so the cursor of what
 *   was stored goes first).
 * - **Stale sinks.** A sink whose staged state no longer matches the receiver's (a refused
 *   message mid-batch, a target deleted under it, a failed commit) is replaced, together with
 *   the receiver, from the durable cursors, once that is safe: no connection, no flush in flight.
 *   A connection that comes up before that holds its frames until the flushes settle.
 * - A failed flush closes the connection (code `store`): the receiver believes those writes
 *   staged, so it would ignore the resends; the next connection meets a new receiver.
 */
import type { JetStreamStorage } from '../jetstream/store.ts';
import {
  LinkReceiver,
  type BatchFrame,
  type CursorFrame,
  type ErrorFrame,
  type GapFrame,
  type OfferFrame,
  type ReceiverStats,
  type WindowFrame,
} from '../link/index.ts';
import { assert } from '../util/assert.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { JetStreamSink, SinkStats, SinkTurn } from './jetstream-sink.ts';

/**
 * Sync frames a peer may have queued while this side creates a target stream: the sender's
 * in-flight limit is 256 batches, so a correct peer never comes near it.
 */
export const RECEIVER_QUEUED_FRAMES_MAX = 1024;
/** Error texts sent to a peer are clipped to this (LINK_TEXT_BYTES_MAX is 4096 UTF-8 bytes). */
export const ERROR_TEXT_CHARS_MAX = 1000;

/** Connection-level error codes a receiver host closes with (the hub sends them; a leaf only closes). */
export const ReceiverErrorCode = {
  /** A commit of the store failed: the peer reconnects and resends from the durable cursors. */
  store: 'store',
  /** A target stream was deleted or re-created under the peer: reconnect and start over into the new one. */
  reset: 'reset',
  protocol: 'protocol',
} as const;

export type ReceiverInput = OfferFrame | BatchFrame | GapFrame;

/** The receiver's and the sink's counters of one peer (across replacements). */
export type ReceiverHostStats = ReceiverStats & SinkStats;

export type ReceiverHostOptions = {
  /** The peer's name (a leaf's name on the hub, `hub` on a leaf), for logs and the flusher. */
  readonly peer: string;
  /** What the peer is, in log messages: 'leaf' on the hub, 'hub' on a leaf. */
  readonly peerKind: 'leaf' | 'hub';
  /** A new sink (at start and at each replacement: it reads the durable cursors). */
  readonly newSink: () => JetStreamSink;
  readonly flusher: TurnFlusher;
  readonly clock: Clock;
  /** The peer's logger. */
  readonly log: Logger;
  /** Sends frames on the current connection (the host checks the socket). */
  readonly send: (frames: readonly (CursorFrame | WindowFrame | ErrorFrame)[]) => void;
  /** Closes the current connection with a connection-level error. */
  readonly abort: (code: string, text: string) => void;
};

/** A flush of one turn: what a host staged, and the connection it came on (for the refusals). */
type FlushEntry = { readonly host: ReceiverHost; readonly sink: JetStreamSink; readonly turn: SinkTurn; readonly connection: number | undefined };

/** Clips a text for an error frame. */
export function clipText(text: string, charsMax: number): string {
  return text.length <= charsMax ? text : `${text.slice(0, charsMax - 1)}…`;
}

export class ReceiverHost {
  readonly peer: string;
  readonly #options: ReceiverHostOptions;
  readonly #log: Logger;
  #sink: JetStreamSink;
  #receiver: LinkReceiver;
  /** The current connection's number, undefined while the peer is away. */
  #connection: number | undefined = undefined;
  /** Flushes whose turns hold writes of this sink, not settled yet. */
  #flushesInFlight = 0;
  /** Sync frames of the current connection held while `isHeld` (in order). */
  readonly #queue: ReceiverInput[] = [];
  /** Offers whose target stream the sink was asked to create (each is prepared once). */
  readonly #prepared = new WeakSet<OfferFrame>();
  /** The sink is creating a target stream an offer needs. */
  #isCreating = false;
  /** The connection came up while a stale sink still had flushes in flight: sink and receiver are replaced when they settle. */
  #isRenewPending = false;
  #isClosed = false;
  /** Counters of the receivers and sinks replaced so far. */
  #statsBefore: ReceiverHostStats = emptyReceiverHostStats();

  constructor(options: ReceiverHostOptions) {
    this.peer = options.peer;
    this.#options = options;
    this.#log = options.log;
    this.#sink = options.newSink();
    this.#receiver = new LinkReceiver({ sink: this.#sink, clock: options.clock });
  }

  get sink(): JetStreamSink {
    return this.#sink;
  }

  get receiver(): LinkReceiver {
    return this.#receiver;
  }

  /** Counters of this process (receiver and sink, across their replacements). */
  stats(): ReceiverHostStats {
    return addReceiverHostStats(this.#statsBefore, { ...this.#receiver.stats, ...this.#sink.stats });
  }

  /** A connection of the peer is up (its older one, if any, went down first). */
  connected(connection: number): void {
    assert(this.#connection === undefined, `peer ${this.peer} still has a current connection`);
    this.#connection = connection;
    this.#sink.revalidate();
    if (this.#sink.isStale && this.#flushesInFlight > 0) {
      // The stale sink's last writes are not settled yet: hold this connection's frames until they are (#settled).
      this.#isRenewPending = true;
    } else {
      this.#renew();
      this.#receiver.connected();
    }
  }

  /** The peer's current connection went down. */
  disconnected(): void {
    if (this.#connection === undefined) return;
    if (this.#receiver.isConnected) this.#receiver.disconnected();
    this.#connection = undefined;
    this.#queue.length = 0; // frames of this connection: the next one starts with offers again
    this.#renew();
  }

  /** Stops for good (the host is closing): nothing settles or renews any more. */
  close(): void {
    this.#isClosed = true;
  }

  /** An offer, batch or gap of the current connection. */
  receive(frame: ReceiverInput): void {
    assert(this.#connection !== undefined, `a ${frame.t} frame of ${this.peer} while it is not connected`);
    if (this.#isHeld) {
      if (this.#queue.length >= RECEIVER_QUEUED_FRAMES_MAX) this.#options.abort(ReceiverErrorCode.protocol, `more than ${RECEIVER_QUEUED_FRAMES_MAX} frames in flight`);
      else this.#queue.push(frame);
      return;
    }
    this.#deliver(frame);
  }

  /** Sync frames must wait in the queue. */
  get #isHeld(): boolean {
    return this.#isCreating || this.#isRenewPending;
  }

  /** Feeds the receiver; an offer for a stream this side lacks waits until the sink created it. */
  #deliver(frame: ReceiverInput): void {
    // An offer that waited for its stream's creation goes on whatever came of it (refuse() reports a failure).
    if (frame.t === 'offer' && !this.#prepared.delete(frame)) {
      const creating = this.#sink.prepare(frame.stream);
      if (creating !== undefined) {
        this.#isCreating = true;
        this.#prepared.add(frame);
        this.#queue.unshift(frame);
        void creating.then(() => {
          this.#isCreating = false;
          try {
            this.#resume();
          } catch (err) {
            // Off the frame handler's try: a bug here must close this connection, not end the process.
            this.#log.error({ err }, `handling a queued ${this.#options.peerKind} frame failed`);
            if (this.#connection !== undefined) this.#options.abort('internal', 'the receiver failed on a queued frame');
          }
        });
        return;
      }
    }
    this.#receiver.receive(frame);
    if (this.#sink.hasTurn) this.#options.flusher.schedule(this);
    this.#pump();
    const abort = this.#sink.takeAbort();
    if (abort !== undefined && this.#connection !== undefined) this.#options.abort(abort.code, abort.text);
  }

  /** Delivers held frames; stops early when they must wait again (the rest stays queued) or the connection went down (disconnected emptied the queue). */
  #resume(): void {
    while (this.#queue.length > 0 && !this.#isHeld && this.#connection !== undefined && !this.#isClosed) this.#deliver(this.#queue.shift()!);
  }

  /**
   * Replaces a stale sink and its receiver with new ones that start from the durable cursors,
   * once that is safe: no connection (the receiver is between connections) and no flush in
   * flight (the durable view is final). Until then the stale one keeps refusing what it refused.
   */
  #renew(): void {
    if (!this.#sink.isStale || this.#flushesInFlight > 0 || this.#receiver.isConnected || this.#isClosed) return;
    this.#isRenewPending = false;
    this.#statsBefore = this.stats();
    this.#sink = this.#options.newSink();
    this.#receiver = new LinkReceiver({ sink: this.#sink, clock: this.#options.clock });
    this.#log.info({}, `${this.#options.peerKind} sync state reloaded from the durable cursors`);
  }

  /** A flush of this host's writes settled: a renewal the current connection waits for can happen now. */
  #settled(): void {
    if (this.#isClosed) return;
    if (this.#isRenewPending && this.#flushesInFlight === 0) {
      this.#renew();
      if (this.#connection !== undefined) this.#receiver.connected();
      this.#resume();
      return;
    }
    this.#renew();
  }

  /** Hands out the receiver's output: events to log, frames to send, a protocol error to close on. */
  #pump(): void {
    const output = this.#receiver.poll();
    const kind = this.#options.peerKind;
    for (const event of output.events) {
      if (event.kind === 'gap') {
        this.#log.warn(
          { stream: event.stream, incarnation: event.incarnation, from: event.from, to: event.to, msgs: event.to - event.from + 1, reason: event.reason },
          `gap in a ${kind} stream recorded`,
        );
      } else {
        this.#log.warn({ stream: event.stream, previous: event.previous, incarnation: event.incarnation }, `${kind} stream has a new incarnation`);
      }
    }
    for (const frame of output.frames) {
      if (frame.t === 'error' && frame.code === 'stream') this.#log.warn({ stream: frame.stream, reason: frame.text }, `${kind} stream refused`);
    }
    // A receiver waiting for its renewal is not connected: what it might say belongs to no connection.
    if (this.#connection === undefined || !this.#receiver.isConnected) return;
    if (output.frames.length > 0) this.#options.send(output.frames.map((frame) => (frame.t === 'error' ? { ...frame, text: clipText(frame.text, ERROR_TEXT_CHARS_MAX) } : frame)));
    if (output.error !== undefined) {
      this.#log.warn({ text: output.error.text }, `${kind} broke the sync protocol`);
      this.#options.abort(output.error.code, output.error.text);
    }
  }

  // ---------------------------------------------------------------- flushes (TurnFlusher)

  /** The turn to flush now, if this host staged anything. */
  takeFlush(): FlushEntry | undefined {
    const turn = this.#sink.takeTurn();
    if (turn === undefined) return undefined;
    this.#flushesInFlight += 1;
    return { host: this, sink: this.#sink, turn, connection: this.#connection };
  }

  /** The flush that followed `entry`'s turn resolved. */
  flushed(entry: FlushEntry): void {
    const { turn } = entry;
    this.#flushesInFlight -= 1;
    assert(entry.sink === this.#sink, `peer ${this.peer}: sink replaced with a flush in flight`);
    if (this.#isClosed) return;
    this.#sink.durable(turn);
    for (const { key, seq } of turn.covered) this.#receiver.durable(key, seq);
    this.#pump();
    if (this.#connection !== undefined && this.#connection === entry.connection && turn.refusals.length > 0) {
      const refusals: ErrorFrame[] = turn.refusals.map(({ key, text }) => ({ t: 'error', code: 'stream', text: clipText(text, ERROR_TEXT_CHARS_MAX), stream: key.stream }));
      this.#options.send(refusals);
    }
    this.#settled();
  }

  /**
   * The store dropped everything not on disk (core/store/README.md "Write failures"), the
   * writes of this turn and every later one included. The receiver still believes them
   * staged, so it would ignore the resends as duplicates and wait forever for their flush:
   * the connection closes, and the peer's next one meets a new receiver built from the
   * durable cursors, to which the peer resends.
   */
  flushFailed(): void {
    this.#flushesInFlight -= 1;
    if (this.#isClosed) return;
    this.#sink.failed();
    if (this.#connection !== undefined) this.#options.abort(ReceiverErrorCode.store, `the ${this.#options.peerKind === 'leaf' ? 'hub' : 'leaf'} could not store the data; reconnect and resend`);
    this.#settled();
  }
}

/**
 * One `storage.flushed()` per event-loop turn for every receiver host writing to one store
 * (hub/ingest/README.md "Durability: one flush per turn").
 */
export class TurnFlusher {
  readonly #storage: JetStreamStorage;
  readonly #log: Logger;
  readonly #failureMessage: string;
  readonly #dirty = new Set<ReceiverHost>();
  #isScheduled = false;

  constructor(options: { readonly storage: JetStreamStorage; readonly log: Logger; readonly failureMessage: string }) {
    this.#storage = options.storage;
    this.#log = options.log;
    this.#failureMessage = options.failureMessage;
  }

  /** `host` staged writes: flush them after every frame of this turn was handled. */
  schedule(host: ReceiverHost): void {
    this.#dirty.add(host);
    if (this.#isScheduled) return;
    this.#isScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#isScheduled = false;
    const entries: FlushEntry[] = [];
    for (const host of this.#dirty) {
      const entry = host.takeFlush();
      if (entry !== undefined) entries.push(entry);
    }
    this.#dirty.clear();
    if (entries.length === 0) return;
    this.#storage.flushed().then(
      () => {
        for (const entry of entries) entry.host.flushed(entry);
      },
      (err: unknown) => {
        this.#log.error({ err, peers: entries.map((entry) => entry.host.peer) }, this.#failureMessage);
        for (const entry of entries) entry.host.flushFailed();
      },
    );
  }
}

export function emptyReceiverHostStats(): ReceiverHostStats {
  return {
    offers: 0,
    batches: 0,
    msgsAppended: 0,
    msgsDuplicate: 0,
    gaps: 0,
    gapMsgs: 0,
    filteredMsgs: 0,
    incarnationChanges: 0,
    protocolErrors: 0,
    msgsStored: 0,
    gapsRecorded: 0,
    refusals: 0,
    msgsDropped: 0,
  };
}

function addReceiverHostStats(a: ReceiverHostStats, b: ReceiverHostStats): ReceiverHostStats {
  const sum: Record<string, number> = { ...a };
  for (const key of Object.keys(sum) as (keyof ReceiverHostStats)[]) sum[key] = a[key] + b[key];
  return sum as ReceiverHostStats;
}
