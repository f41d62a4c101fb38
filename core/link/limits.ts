/**
 * Every limit of the link state machines, named once with its reason (STYLE.md house rule 4).
 * The state machines take these as defaults; the simulator overrides the timing ones to fit
 * many reconnect cycles into a short virtual run.
 */
import { assert } from '../util/assert.ts';

// ---- flow control (credit.ts, sender.ts) ---------------------------------------------------------

/**
 * The receive window a side announces when nothing else is configured: batch payload bytes
 * the peer may have unacknowledged. 2 MiB is where nats-server starts its mirror/source flow
 * control (EDGE-SYNC.md finding 4); on a Pi it bounds what one link can buffer in the hub's
 * socket and in our in-flight bookkeeping.
 */
export const LINK_WINDOW_BYTES_DEFAULT = 2 * 1024 * 1024;

/** The smallest window a side may announce: below this a link would send one message per round trip. */
export const LINK_WINDOW_BYTES_MIN = 1024;

/** The largest window a side may announce (nats-server caps its flow-control window at 32 MiB). */
export const LINK_WINDOW_BYTES_MAX = 32 * 1024 * 1024;

/**
 * Messages per batch frame at most: bounds the receiver's per-batch work (one append, one
 * transaction) and the size of a decoded frame's array.
 */
export const LINK_BATCH_MSGS_MAX = 1000;

/**
 * Payload bytes per batch frame at most, unless the batch is a single larger message (a message
 * is never split). Small enough that a batch is one LMDB transaction of modest size and that
 * heartbeats are not stuck behind megabytes on a thin uplink; big enough to amortise per-frame cost.
 */
export const LINK_BATCH_BYTES_MAX = 256 * 1024;

/**
 * Unacknowledged batch frames per connection at most (all streams together), whatever the window
 * says: bounds the sender's in-flight bookkeeping when messages are tiny.
 */
export const LINK_INFLIGHT_BATCHES_MAX = 256;

/**
 * A filtered sender (downstream: a hub stream as one leaf sees it) sends the gap over a tail that
 * holds only other receivers' messages at most this often. Such a tail needs no hurry (it goes
 * out anyway as the gap before the receiver's next message), but a receiver whose cursor stays
 * far behind would meet the stream's front trimming (max_age, max_msgs) as a 'limits' gap it never
 * had any data in: one cursor write per second at most keeps it close behind, instead of one frame
 * and one disk flush on every leaf for every message the hub stores for another leaf.
 */
export const LINK_FILTERED_TAIL_MS = 1000;

// ---- connection (connection.ts) ------------------------------------------------------------------

/**
 * Default heartbeat interval. A side pings after one interval of sending nothing and declares the
 * link dead after two intervals of receiving nothing, so a half-open link is found within ~10 s
 * (nats-server's leaf default of 2 min × 2 pings is the failure EDGE-SYNC.md finding 5 describes).
 */
export const LINK_HEARTBEAT_MS_DEFAULT = 5000;

/** The shortest heartbeat a side may ask for: shorter would spend a thin uplink on pings. */
export const LINK_HEARTBEAT_MS_MIN = 10;

/** The longest heartbeat the link uses (the larger side's wish is clamped to this). */
export const LINK_HEARTBEAT_MS_MAX = 60_000;

/** Silent intervals after which a side declares the connection dead (README "Heartbeats"). */
export const LINK_DEAD_INTERVALS = 2;

/** Reconnect backoff: the first delay is uniform in [0, base]; each failed attempt doubles the cap. */
export const LINK_BACKOFF_BASE_MS = 250;

/** Reconnect backoff: the cap never grows past this, so a healed link is retried within 30 s. */
export const LINK_BACKOFF_MAX_MS = 30_000;

/** Attempt counter ceiling: 2^16 × base is far past any max, and the shift stays exact. */
export const LINK_BACKOFF_ATTEMPTS_MAX = 16;

// Relationships between the limits (checked once at load, TigerBeetle-style).
assert(LINK_WINDOW_BYTES_MIN <= LINK_WINDOW_BYTES_DEFAULT && LINK_WINDOW_BYTES_DEFAULT <= LINK_WINDOW_BYTES_MAX, 'window default within bounds');
assert(LINK_BATCH_BYTES_MAX <= LINK_WINDOW_BYTES_DEFAULT, 'a default window holds at least one full batch');
assert(LINK_HEARTBEAT_MS_MIN <= LINK_HEARTBEAT_MS_DEFAULT && LINK_HEARTBEAT_MS_DEFAULT <= LINK_HEARTBEAT_MS_MAX, 'heartbeat default within bounds');
assert(LINK_BACKOFF_BASE_MS <= LINK_BACKOFF_MAX_MS, 'backoff base below its max');
assert(LINK_BACKOFF_BASE_MS * 2 ** LINK_BACKOFF_ATTEMPTS_MAX >= LINK_BACKOFF_MAX_MS, 'the attempt ceiling reaches the max');
