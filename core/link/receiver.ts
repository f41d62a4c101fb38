/**
 * The receiver side of stream sync on one link (README "Stream sync rules"): it answers each
 * offer with its durable cursor, appends batches and gaps strictly in sequence, ignores what it
 * already has, and acknowledges with `cursor` frames only what is durable.
 *
 * A pure state machine (STYLE.md §1.5, house rule 1). Inputs: `connected`, `disconnected`,
 * `receive` (offer / batch / gap frames), `durable` (the host's word that staged writes reached
 * the disk), `setWindow`. Outputs, handed out by `poll()`: frames to send (cursor, window,
 * per-stream refusals), events to log and count (gaps, incarnation changes), and a protocol error
 * that closes the connection. Writes go to the injected `ReceiverSink`, which stages them; like
 * etcd's `msgsAfterAppend`, a cursor frame waits until the write it covers is durable (house
 * rule 8). One object lives as long as the link, across connections, but not across a crash:
 * after a restart the host makes a new one, which starts from the sink's durable cursors.
 */
import { assert } from '../util/assert.ts';
import type { Clock } from '../util/clock.ts';
import { GAP_REASON_FILTERED, type BatchFrame, type CursorFrame, type ErrorFrame, type GapFrame, type LinkMessage, type OfferFrame, type StreamKey, type WindowFrame } from './frames.ts';
import { LINK_BATCH_MSGS_MAX, LINK_WINDOW_BYTES_MAX, LINK_WINDOW_BYTES_MIN } from './limits.ts';

/** A gap as the receiver records it (README "Gap": range, reason, time). */
export type GapRecord = { readonly from: number; readonly to: number; readonly reason: string; readonly atMs: number };

/**
 * One staged write: consecutive messages, or one gap. Either way it moves the key's cursor to
 * its last sequence, in the same transaction as the data (README "Cursor"). A gap whose reason
 * is GAP_REASON_FILTERED is no loss: the sink moves the cursor and records no gap.
 */
export type ReceiverWrite = { readonly kind: 'msgs'; readonly msgs: readonly LinkMessage[] } | { readonly kind: 'gap'; readonly gap: GapRecord };

/**
 * Where received data lands (the hub's JetStream sink upstream, the leaf's store downstream).
 * Keys are (sender stream, incarnation) of this link's peer; the sink adds the peer's identity.
 */
export interface ReceiverSink {
  /** The durable cursor of `key`: 0 when it has nothing for this incarnation. Excludes staged writes. */
  cursor(key: StreamKey): number;
  /** The incarnation of `stream` the sink stored data for most recently, or undefined. */
  lastIncarnation(stream: string): string | undefined;
  /**
   * Stages `write`, which starts at the key's staged cursor + 1. It becomes durable later, in
   * order with every other staged write; the host then calls `LinkReceiver.durable`.
   */
  append(key: StreamKey, write: ReceiverWrite): void;
  /** Per-stream admission: undefined accepts; a text refuses (error code 'stream', the connection stays). */
  refuse?(key: StreamKey): string | undefined;
}

export type ReceiverOptions = {
  readonly sink: ReceiverSink;
  readonly clock: Clock;
};

export type ReceiverEvent =
  /** A gap was staged: log a warning (README "Gap"). */
  | { readonly kind: 'gap'; readonly stream: string; readonly incarnation: string; readonly from: number; readonly to: number; readonly reason: string }
  /** A known stream came with a new incarnation: a new sequence space; warn and raise the alert metric. */
  | { readonly kind: 'incarnation'; readonly stream: string; readonly previous: string; readonly incarnation: string };

/** What the host does after feeding inputs: send `frames` in order, log `events`, close on `error`. */
export type ReceiverOutput = {
  readonly frames: readonly (CursorFrame | WindowFrame | ErrorFrame)[];
  readonly events: readonly ReceiverEvent[];
  /** The peer broke the protocol: close the connection (the hub also sends this frame). */
  readonly error: ErrorFrame | undefined;
};

export type ReceiverStreamProgress = {
  readonly stream: string;
  readonly incarnation: string;
  /** Durable cursor: everything up to it is on disk (or a recorded gap). */
  readonly durableSeq: number;
  /** Staged cursor: durable plus writes not yet on disk. */
  readonly stagedSeq: number;
  /** Offered on the current connection. */
  readonly isSyncing: boolean;
  readonly gaps: number;
  readonly gapMsgs: number;
  /** Clock time of the last staged write, or undefined. */
  readonly lastWriteMs: number | undefined;
};

export type ReceiverStats = {
  readonly offers: number;
  readonly batches: number;
  readonly msgsAppended: number;
  /** Messages ignored because the receiver already had them (resends after a reconnect). */
  readonly msgsDuplicate: number;
  readonly gaps: number;
  readonly gapMsgs: number;
  /** Sequences skipped by 'filtered' gaps (meant for other receivers: not gaps, not counted above). */
  readonly filteredMsgs: number;
  /** The alert metric of README "Incarnation". */
  readonly incarnationChanges: number;
  readonly protocolErrors: number;
};

/** A batch (or gap) whose cursor is owed once its last sequence is durable. */
type PendingAck = { readonly seq: number; readonly batch: number | undefined };

type Track = {
  readonly key: StreamKey;
  durableSeq: number;
  stagedSeq: number;
  /** Connection number on which the key was last offered (0: never). */
  offeredOn: number;
  readonly pendingAcks: PendingAck[];
  gaps: number;
  gapMsgs: number;
  lastWriteMs: number | undefined;
};

function keyId(key: StreamKey): string {
  return `${key.stream}\u0000${key.incarnation}`;
}

export class LinkReceiver {
  readonly #sink: ReceiverSink;
  readonly #clock: Clock;
  readonly #tracks = new Map<string, Track>();
  /** Latest incarnation offered per stream name (this process). */
  readonly #incarnations = new Map<string, string>();
  /** Connection counter; 0 while disconnected. */
  #connection = 0;
  #connections = 0;
  #frames: (CursorFrame | WindowFrame | ErrorFrame)[] = [];
  #events: ReceiverEvent[] = [];
  #error: ErrorFrame | undefined = undefined;
  #stats = { offers: 0, batches: 0, msgsAppended: 0, msgsDuplicate: 0, gaps: 0, gapMsgs: 0, filteredMsgs: 0, incarnationChanges: 0, protocolErrors: 0 };

  constructor(options: ReceiverOptions) {
    this.#sink = options.sink;
    this.#clock = options.clock;
  }

  get isConnected(): boolean {
    return this.#connection !== 0;
  }

  get stats(): ReceiverStats {
    return { ...this.#stats };
  }

  /** A connection is up (after welcome). The receiver waits for offers. */
  connected(): void {
    assert(this.#connection === 0, 'connected twice without disconnected');
    this.#connections += 1;
    this.#connection = this.#connections;
  }

  /**
   * The connection closed. Staged writes stay staged; their cursors go out on a later
   * connection. Tracks with nothing staged are forgotten (the sink has their durable cursor), so
   * memory stays bounded by the streams of one connection plus what is still being written.
   */
  disconnected(): void {
    this.#connection = 0;
    for (const [id, track] of this.#tracks) {
      track.pendingAcks.length = 0;
      if (track.stagedSeq === track.durableSeq) this.#tracks.delete(id);
    }
    this.#frames = [];
    this.#error = undefined;
  }

  /** A sync frame from the sender side of the peer. Call only while connected. */
  receive(frame: OfferFrame | BatchFrame | GapFrame): void {
    assert(this.#connection !== 0, `receiver got ${frame.t} while disconnected`);
    if (this.#error !== undefined) return; // the connection is closing
    switch (frame.t) {
      case 'offer':
        this.#onOffer(frame);
        return;
      case 'batch':
        this.#onBatch(frame);
        return;
      case 'gap':
        this.#onGap(frame);
        return;
    }
  }

  /**
   * The host's word that every staged write of `key` up to `seq` is durable (the sink's
   * transaction is on disk). Sends the cursor if the key is syncing on this connection.
   */
  durable(key: StreamKey, seq: number): void {
    const track = this.#tracks.get(keyId(key));
    assert(track !== undefined, `durable() for ${key.stream}/${key.incarnation}, which has no staged writes`);
    assert(seq <= track.stagedSeq, `durable(${seq}) past the staged cursor ${track.stagedSeq} of ${key.stream}`);
    if (seq <= track.durableSeq) return;
    track.durableSeq = seq;
    if (this.#isSyncing(track)) this.#sendCursor(track);
    else if (track.stagedSeq === track.durableSeq) this.#tracks.delete(keyId(key)); // see disconnected()
  }

  /** Changes this side's receive window; the peer's sender is told with a `window` frame. */
  setWindow(windowBytes: number): void {
    assert(Number.isSafeInteger(windowBytes) && windowBytes >= LINK_WINDOW_BYTES_MIN && windowBytes <= LINK_WINDOW_BYTES_MAX, `window ${windowBytes} out of bounds`);
    if (this.#connection !== 0) this.#frames.push({ t: 'window', windowBytes });
  }

  poll(): ReceiverOutput {
    const output: ReceiverOutput = { frames: this.#frames, events: this.#events, error: this.#error };
    this.#frames = [];
    this.#events = [];
    return output;
  }

  progress(): ReceiverStreamProgress[] {
    const result: ReceiverStreamProgress[] = [];
    for (const track of this.#tracks.values()) {
      result.push({
        stream: track.key.stream,
        incarnation: track.key.incarnation,
        durableSeq: track.durableSeq,
        stagedSeq: track.stagedSeq,
        isSyncing: this.#isSyncing(track),
        gaps: track.gaps,
        gapMsgs: track.gapMsgs,
        lastWriteMs: track.lastWriteMs,
      });
    }
    return result;
  }

  // ---------------------------------------------------------------- frames

  #onOffer(frame: OfferFrame): void {
    const key: StreamKey = { stream: frame.stream, incarnation: frame.incarnation };
    this.#stats.offers += 1;
    const refusal = this.#sink.refuse?.(key);
    if (refusal !== undefined) {
      this.#frames.push({ t: 'error', code: 'stream', text: refusal, stream: frame.stream });
      return;
    }
    const previous = this.#incarnations.get(frame.stream) ?? this.#sink.lastIncarnation(frame.stream);
    if (previous !== undefined && previous !== frame.incarnation) {
      // README "Incarnation": a new sequence space (its own key, so cursor 0), never a resume.
      this.#stats.incarnationChanges += 1;
      this.#events.push({ kind: 'incarnation', stream: frame.stream, previous, incarnation: frame.incarnation });
    }
    this.#incarnations.set(frame.stream, frame.incarnation);
    const track = this.#trackFor(key);
    track.offeredOn = this.#connection;
    track.pendingAcks.length = 0;
    // README "Offer": answer with the durable cursor. Staged writes beyond it are acknowledged
    // when they become durable; the resends they overlap are ignored as duplicates.
    this.#frames.push({ t: 'cursor', stream: key.stream, incarnation: key.incarnation, seq: track.durableSeq, batch: undefined });
  }

  #onBatch(frame: BatchFrame): void {
    const track = this.#syncingTrack(frame);
    if (track === undefined) return;
    const msgs = frame.msgs;
    if (msgs.length === 0 || msgs.length > LINK_BATCH_MSGS_MAX) {
      this.#fail(`batch ${frame.id} of ${frame.stream} has ${msgs.length} messages`);
      return;
    }
    for (let i = 0; i < msgs.length; i++) {
      const seq = msgs[i]!.seq;
      if (!Number.isSafeInteger(seq) || seq < 1 || (i > 0 && seq !== msgs[i - 1]!.seq + 1)) {
        this.#fail(`batch ${frame.id} of ${frame.stream}: sequences not consecutive at ${seq}`);
        return;
      }
    }
    this.#stats.batches += 1;
    const lastSeq = msgs[msgs.length - 1]!.seq;
    // README "Batch": ignore what we have (durable or staged); the first new one must be cursor + 1.
    const skip = Math.max(0, Math.min(msgs.length, track.stagedSeq - msgs[0]!.seq + 1));
    this.#stats.msgsDuplicate += skip;
    if (skip < msgs.length) {
      if (msgs[skip]!.seq !== track.stagedSeq + 1) {
        this.#fail(`batch ${frame.id} of ${frame.stream} starts at ${msgs[skip]!.seq}, cursor is ${track.stagedSeq}: data skipped without a gap`);
        return;
      }
      const fresh = skip === 0 ? msgs : msgs.slice(skip);
      this.#sink.append(track.key, { kind: 'msgs', msgs: fresh });
      track.stagedSeq = lastSeq;
      track.lastWriteMs = this.#clock.nowMs();
      this.#stats.msgsAppended += fresh.length;
    }
    this.#owe(track, { seq: lastSeq, batch: frame.id });
  }

  #onGap(frame: GapFrame): void {
    const track = this.#syncingTrack(frame);
    if (track === undefined) return;
    if (!Number.isSafeInteger(frame.from) || !Number.isSafeInteger(frame.to) || frame.from < 1 || frame.to < frame.from) {
      this.#fail(`gap ${frame.from}..${frame.to} of ${frame.stream} is not a range`);
      return;
    }
    if (frame.from > track.stagedSeq + 1) {
      this.#fail(`gap of ${frame.stream} starts at ${frame.from}, cursor is ${track.stagedSeq}: data skipped`);
      return;
    }
    if (frame.to > track.stagedSeq) {
      // Only the part we do not have is a gap (a resend may overlap what we staged earlier).
      const from = track.stagedSeq + 1;
      this.#sink.append(track.key, { kind: 'gap', gap: { from, to: frame.to, reason: frame.reason, atMs: this.#clock.nowMs() } });
      track.stagedSeq = frame.to;
      track.lastWriteMs = this.#clock.nowMs();
      if (frame.reason === GAP_REASON_FILTERED) {
        // Messages meant for other receivers: the cursor moves past them, nothing was lost.
        this.#stats.filteredMsgs += frame.to - from + 1;
      } else {
        track.gaps += 1;
        track.gapMsgs += frame.to - from + 1;
        this.#stats.gaps += 1;
        this.#stats.gapMsgs += frame.to - from + 1;
        this.#events.push({ kind: 'gap', stream: frame.stream, incarnation: frame.incarnation, from, to: frame.to, reason: frame.reason });
      }
    }
    this.#owe(track, { seq: frame.to, batch: undefined });
  }

  /** The track of a key offered on this connection, or a protocol error. */
  #syncingTrack(frame: StreamKey & { readonly t: string }): Track | undefined {
    const track = this.#tracks.get(keyId(frame));
    if (track === undefined || !this.#isSyncing(track)) {
      this.#fail(`${frame.t} for ${frame.stream}/${frame.incarnation}, which was not offered on this connection`);
      return undefined;
    }
    return track;
  }

  /** Records a cursor owed for `ack`; sends it now if that part is already durable (a pure resend). */
  #owe(track: Track, ack: PendingAck): void {
    track.pendingAcks.push(ack);
    if (ack.seq <= track.durableSeq) this.#sendCursor(track);
  }

  /** Sends the durable cursor, naming the last batch it fully covers. */
  #sendCursor(track: Track): void {
    let batch: number | undefined;
    const pending = track.pendingAcks;
    let covered = 0;
    while (covered < pending.length && pending[covered]!.seq <= track.durableSeq) {
      batch = pending[covered]!.batch ?? batch;
      covered++;
    }
    pending.splice(0, covered);
    this.#frames.push({ t: 'cursor', stream: track.key.stream, incarnation: track.key.incarnation, seq: track.durableSeq, batch });
  }

  #isSyncing(track: Track): boolean {
    return this.#connection !== 0 && track.offeredOn === this.#connection;
  }

  #fail(text: string): void {
    this.#stats.protocolErrors += 1;
    this.#error = { t: 'error', code: 'protocol', text, stream: undefined };
  }

  #trackFor(key: StreamKey): Track {
    const id = keyId(key);
    let track = this.#tracks.get(id);
    if (track === undefined) {
      const durableSeq = this.#sink.cursor(key);
      assert(Number.isSafeInteger(durableSeq) && durableSeq >= 0, `sink cursor ${durableSeq} for ${key.stream}`);
      track = { key, durableSeq, stagedSeq: durableSeq, offeredOn: 0, pendingAcks: [], gaps: 0, gapMsgs: 0, lastWriteMs: undefined };
      this.#tracks.set(id, track);
    }
    return track;
  }
}
