/**
 * The leaf↔hub link's frames (core/link/README.md): a discriminated union on `t`.
 * This file is the wire schema: field names are short because every batch carries
 * them, and each one is documented here once. No transport, no encoding here
 * (codec.ts encodes with cbor-x; the ws transport lives in leaf/ and hub/).
 *
 * Sync is symmetric: the *sender* of a stream (the leaf for upstream sync, the hub
 * for downstream) sends offer / batch / gap, the *receiver* answers with cursor and
 * window frames. Only hello / welcome / error are one-way.
 *
 * Sequences are origin (sender) stream sequences: positive safe integers.
 * Timestamps are Unix nanoseconds as bigint (CBOR 64-bit unsigned).
 */

/** The link protocol versions this build speaks, newest first. */
export const LINK_PROTOCOL_VERSIONS = [1] as const;
export type LinkProtocolVersion = (typeof LINK_PROTOCOL_VERSIONS)[number];

/** One stored message of a sender's stream, as it crosses the link. */
export type LinkMessage = {
  /** Origin stream sequence. */
  readonly seq: number;
  /** Subject as stored by the sender (the receiver applies its prefix or transform). */
  readonly subject: string;
  /** NATS/1.0 header block as stored, or undefined. */
  readonly headers: Uint8Array | undefined;
  readonly data: Uint8Array;
  /** Origin store time, Unix ns. */
  readonly timestampNs: bigint;
};

/** Identifies one sender stream's sequence space at the receiver: a re-created stream has a new incarnation. */
export type StreamKey = {
  /** The sender's stream name. */
  readonly stream: string;
  /** Random id made when the sender's stream was created (hex); survives restarts, never reused. */
  readonly incarnation: string;
};

// ---- connection: leaf → hub, then hub → leaf ----------------------------------------------------

/** First frame on a new connection. */
export type HelloFrame = {
  readonly t: 'hello';
  /** Versions the leaf speaks, newest first. */
  readonly versions: readonly number[];
  /** The leaf's name: its namespace on the hub. */
  readonly leaf: string;
  /** Per-leaf token; absent when the leaf authenticates with a TLS client certificate. */
  readonly token: string | undefined;
  /** The leaf asks for compressed batches (the hub may refuse by answering false). */
  readonly compression: boolean;
  /** The leaf's heartbeat interval in ms; the link uses the larger of both sides' values. */
  readonly heartbeatMs: number;
  /** The leaf's receive window for downstream batches, in bytes. */
  readonly windowBytes: number;
};

/** Answer to `hello` when the leaf is accepted. */
export type WelcomeFrame = {
  readonly t: 'welcome';
  /** The version chosen: the newest both sides speak. */
  readonly version: number;
  /** The hub's name (for logs and /leafz). */
  readonly hub: string;
  readonly compression: boolean;
  /** The heartbeat interval both sides use from now on, in ms. */
  readonly heartbeatMs: number;
  /** The hub's receive window for upstream batches, in bytes. */
  readonly windowBytes: number;
};

/**
 * A refusal. Connection-level codes (hub → leaf only) close the connection after it;
 * code 'stream' (either way) refuses one stream and the connection stays up.
 */
export type ErrorFrame = {
  readonly t: 'error';
  /** Stable code: 'auth', 'version', 'protocol', 'stream' (per-stream refusal, connection stays). */
  readonly code: string;
  readonly text: string;
  /** For code 'stream': the stream refused; the connection stays up. */
  readonly stream: string | undefined;
};

// ---- sync, sender → receiver ----------------------------------------------------------------------

/**
 * The sender wants to sync a stream (sent after `welcome`, and again after a reconnect).
 * The receiver answers with a `cursor` frame.
 */
export type OfferFrame = StreamKey & {
  readonly t: 'offer';
  /** The sender stream's first and last sequence now (first > last when empty). */
  readonly firstSeq: number;
  readonly lastSeq: number;
};

/**
 * Messages `first … first + msgs.length - 1` of a stream, consecutive except where a
 * preceding `gap` frame said otherwise. `msgs[0].seq` is the receiver's cursor + 1 as the
 * sender last heard it, or the sequence after the previous batch or gap (pipelining).
 */
export type BatchFrame = StreamKey & {
  readonly t: 'batch';
  /** Sender-chosen batch number, echoed in the receiver's `cursor` frame. */
  readonly id: number;
  readonly msgs: readonly LinkMessage[];
};

/**
 * Sequences `from … to` (inclusive) of the stream will never be sent: the sender deleted
 * them before the receiver had them. The receiver records the gap durably and moves its
 * cursor to `to`.
 */
export type GapFrame = StreamKey & {
  readonly t: 'gap';
  readonly from: number;
  readonly to: number;
  /**
   * Why: 'limits' (max_msgs / max_bytes / max_age / discard old), 'purged', 'deleted', or
   * {@link GAP_REASON_FILTERED} (not a loss: the range held nothing for this receiver).
   */
  readonly reason: string;
};

/**
 * Gap reason of a sender whose view of a stream is filtered (downstream sync: the hub sends each
 * leaf only the messages addressed to it): every sequence of the range is stored but meant for
 * others. Not a loss: the receiver moves its cursor durably but records, counts and logs no gap.
 */
export const GAP_REASON_FILTERED = 'filtered';

// ---- sync, receiver → sender ----------------------------------------------------------------------

/**
 * The receiver's durable cursor for a stream: every origin sequence up to `seq` is stored
 * by the receiver (or recorded as a gap) and on disk. Sent in answer to `offer` and after
 * each durable append. `seq` 0: nothing yet. `batch` is the id of the last batch it covers.
 */
export type CursorFrame = StreamKey & {
  readonly t: 'cursor';
  readonly seq: number;
  readonly batch: number | undefined;
};

/** The receiver changes its flow-control window (batch bytes the sender may have unacknowledged). */
export type WindowFrame = {
  readonly t: 'window';
  readonly windowBytes: number;
};

// ---- both ways --------------------------------------------------------------------------------

/** Heartbeat; any frame proves liveness, a ping is sent only when nothing else was for one interval. */
export type PingFrame = { readonly t: 'ping' };

/** What a stream's sender sends, and what its receiver answers: both directions carry both. */
export type SenderFrame = OfferFrame | BatchFrame | GapFrame;
export type ReceiverFrame = CursorFrame | WindowFrame;
export type LeafFrame = HelloFrame | ErrorFrame | SenderFrame | ReceiverFrame | PingFrame;
export type HubFrame = WelcomeFrame | ErrorFrame | SenderFrame | ReceiverFrame | PingFrame;
export type LinkFrame = LeafFrame | HubFrame;
export type LinkFrameType = LinkFrame['t'];
