/**
 * A side's JetStream streams as its link sender reads them (core/link `SenderStreams`; README
 * "Open: what the hosts must provide", "Leaf sender store"). Both roles use it:
 *
 * - the leaf (upstream): every stream it syncs, every message, subjects as stored;
 * - the hub (downstream, one view per leaf): the streams marked `canopy.downstream`, only the
 *   messages whose subject's first token is the leaf's name, which cross the link without that
 *   token (`gw1.cmd.reboot` is read as `cmd.reboot`). The other leaves' messages are holes of
 *   this view; the sender turns them into gaps with reason 'filtered' (no loss, see gapReason).
 *
 * Every read is synchronous and goes through `jetstream.streams` by name, checking the
 * incarnation, so a deleted or re-created stream is never read under its old key, and the
 * stores read synchronously between two writes (one consistent state per call). Filtered reads
 * use the store's subject index (`loadNext(filter)`, `countPending(filter)`).
 *
 * Damaged records. The stream's store is a `QuarantiningStore`: a record that fails its
 * checksum (StoreError ERR_STORE_CORRUPT) is logged once, counted, kept on disk for an operator
 * and skipped by reads as if absent. The link must not crash on it and must not stall every
 * message behind it either, so a damaged message reads as a hole: the sender sends a gap over
 * it, and {@link JetStreamStreams.gapReason} names such a gap `'corrupt'` (logged at error: the
 * peer will never have that message). A gap otherwise never covers data we still have (and are
 * meant to send); a damaged record is data we cannot read.
 */
import type { JetStream } from '../jetstream/jetstream.ts';
import type { QuarantiningStore } from '../jetstream/quarantining-store.ts';
import type { Stream } from '../jetstream/stream.ts';
import { LINK_NAME_BYTES_MAX } from '../link/codec.ts';
import { GAP_REASON_FILTERED, messageBytes, type LinkMessage, type SenderStreams, type StreamKey } from '../link/index.ts';
import { assert } from '../util/assert.ts';
import type { Logger } from '../util/logger.ts';
import type { DurableSeqs } from './durable-seqs.ts';

/** Gap reasons a JetStream sender sends (GapFrame.reason). */
export const LinkGapReason = {
  /** Removed from the front of the stream: by limits, a purge, or work-queue / interest retention (the store does not record which). */
  limits: 'limits',
  /** A hole inside the stream or a removed tail: messages deleted one by one (API delete, filtered purge, per-subject limits). */
  deleted: 'deleted',
  /** Records that failed their checksum: quarantined, never served (see the file comment). */
  corrupt: 'corrupt',
  /** A filtered view only: every message of the range is stored, and none is for this peer. Not a loss. */
  filtered: GAP_REASON_FILTERED,
} as const;
export type LinkGapReason = (typeof LinkGapReason)[keyof typeof LinkGapReason];

/**
 * Whether a stream name can cross the link (codec "Validation": 1 … LINK_NAME_BYTES_MAX UTF-8
 * bytes, no space, control character or DEL). JetStream allows 255 characters, which in UTF-8
 * can be more bytes, and control characters other than whitespace: such a stream stays local.
 */
export function isLinkStreamName(name: string): boolean {
  if (name.length === 0 || Buffer.byteLength(name, 'utf8') > LINK_NAME_BYTES_MAX) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f) return false;
  }
  return true;
}

export type JetStreamStreamsOptions = {
  readonly jetstream: JetStream;
  readonly log: Logger;
  /** Which streams go over the link (streams whose names cannot cross it never do). */
  readonly isSynced: (stream: Stream) => boolean;
  /**
   * Only messages whose subject's first token is this one, read without it (downstream: the
   * leaf's name). Undefined: every message, subjects as stored.
   */
  readonly subjectToken?: string;
  /**
   * Bounds what the sender sees to what is on disk (durable-seqs.ts): a stream ends at its
   * durable watermark, and is absent until it has one. Hosts always pass it; without it (unit
   * tests of the reads) a stream ends at its last sequence, flushed or not.
   */
  readonly durable?: DurableSeqs;
};

/** `SenderStreams` over a JetStream, whole or filtered to one peer's subjects. Stateless: every answer comes from the store now. */
export class JetStreamStreams implements SenderStreams {
  readonly #jetstream: JetStream;
  readonly #log: Logger;
  readonly #isSynced: (stream: Stream) => boolean;
  readonly #durable: DurableSeqs | undefined;
  /** `<token>.>` when filtered. */
  readonly #filter: string | undefined;
  /** `<token>.`: what a read strips from each subject. */
  readonly #prefix: string;
  /** Streams whose names cannot cross the link, already reported. */
  readonly #unsyncable = new Set<string>();

  constructor(options: JetStreamStreamsOptions) {
    const token = options.subjectToken;
    assert(token === undefined || (token.length > 0 && !/[.*> \t\r\n]/.test(token)), `subject token ${token} must be one literal token`);
    this.#jetstream = options.jetstream;
    this.#log = options.log;
    this.#isSynced = options.isSynced;
    this.#durable = options.durable;
    this.#filter = token === undefined ? undefined : `${token}.>`;
    this.#prefix = token === undefined ? '' : `${token}.`;
  }

  list(): readonly StreamKey[] {
    const keys: StreamKey[] = [];
    for (const stream of this.#jetstream.streams.values()) {
      if (!this.#isSynced(stream)) continue;
      if (!isLinkStreamName(stream.name)) {
        if (!this.#unsyncable.has(stream.name)) {
          this.#unsyncable.add(stream.name);
          this.#log.error({ stream: stream.name }, 'stream not synced: its name cannot cross the link (over 255 UTF-8 bytes or a control character)');
        }
        continue;
      }
      keys.push({ stream: stream.name, incarnation: stream.incarnation });
    }
    return keys;
  }

  /**
   * First and last sequence, or undefined when the stream is gone, is another incarnation, or
   * was opted out. An empty stream reports first = last + 1 (a new one: 1 and 0), as the sender
   * expects (first > last when empty), whatever the store says for it (0 for a new stream).
   * A filtered view reports the whole stream's sequences: the others' messages are its holes.
   * With a durable watermark the last sequence is the last one on disk (undefined before the
   * watermark is known: the stream waits, see durable-seqs.ts).
   */
  state(key: StreamKey): { readonly firstSeq: number; readonly lastSeq: number } | undefined {
    const stream = this.#streamOf(key);
    if (stream === undefined) return undefined;
    const lastSeq = this.#lastSeqOf(stream);
    if (lastSeq === undefined) return undefined;
    const state = stream.store.state();
    // Never a first sequence past the watermark + 1: a gap up to it would tell the peer about
    // removals of messages not yet on disk here (a crash would bring back their sequences).
    const firstSeq = state.messages === 0 ? state.lastSeq + 1 : state.firstSeq;
    return { firstSeq: Math.min(firstSeq, lastSeq + 1), lastSeq };
  }

  /**
   * Stored messages (of this view) from `fromSeq` on, ascending, within `maxMsgs` and `maxBytes`
   * (counted with the link's `messageBytes`; the first message always, however big). Stops at
   * the first hole after the first message: the sender ends a batch there anyway and sends the
   * hole's gap. Unfiltered, the StoredMessage objects are returned as they are (they are
   * LinkMessages; the store hands out copies the caller owns); filtered, with the token removed.
   */
  read(key: StreamKey, fromSeq: number, maxBytes: number, maxMsgs: number): readonly LinkMessage[] {
    const stream = this.#streamOf(key);
    if (stream === undefined) return [];
    const store = stream.store;
    const filter = this.#filter ?? '>';
    const lastSeq = this.#lastSeqOf(stream) ?? 0;
    store.damageSeen(); // forget damage met by earlier reads: only this read's counts below
    if (this.#filter === undefined) return readWhole(store, fromSeq, lastSeq, maxBytes, maxMsgs);
    const msgs: LinkMessage[] = [];
    let bytes = 0;
    let seq = fromSeq;
    while (msgs.length < maxMsgs && seq <= lastSeq) {
      const stored = store.loadNext(filter, seq);
      if (stored === undefined || stored.seq > lastSeq) {
        // The quarantining store gives up after a long run of damaged records: go on after the
        // last one it met, so such a run becomes one 'corrupt' gap, not a gap over good data.
        const damage = store.damageSeen();
        if (msgs.length === 0 && damage?.seq !== undefined && damage.seq >= seq && damage.seq < lastSeq) {
          seq = damage.seq + 1;
          continue;
        }
        break;
      }
      const message: LinkMessage = { ...stored, subject: stored.subject.slice(this.#prefix.length) };
      if (msgs.length > 0) {
        const size = messageBytes(message);
        if (message.seq !== seq || bytes + size > maxBytes) break;
        bytes += size;
      } else {
        bytes = messageBytes(message);
      }
      msgs.push(message);
      seq = message.seq + 1;
    }
    return msgs;
  }

  /**
   * Why `from … to` is not sent. The store does not record why a message was removed, nor the
   * subject of one removed, so this is simple and, for a filtered view, cautious:
   * - any quarantined (damaged) sequence in the range makes it 'corrupt';
   * - a range below the stream's first sequence was removed from the front ('limits', which
   *   also stands for a purge and for work-queue / interest retention);
   * - a filtered view's range whose every sequence is stored held only others' messages
   *   ('filtered': no loss);
   * - anything else is a hole or a removed tail ('deleted'). A filtered view cannot tell whether
   *   a removed message was for this peer, so it reports the range as a possible loss.
   */
  gapReason(key: StreamKey, from: number, to: number): LinkGapReason {
    const stream = this.#streamOf(key);
    if (stream === undefined) return LinkGapReason.deleted;
    const damaged = damagedIn(stream, from, to);
    if (damaged > 0) {
      this.#log.error({ stream: key.stream, from, to, damaged }, 'damaged messages cannot be synced: sent to the peer as a gap');
      return LinkGapReason.corrupt;
    }
    const state = stream.store.state();
    const firstSeq = state.messages === 0 ? state.lastSeq + 1 : state.firstSeq;
    if (to < firstSeq) return LinkGapReason.limits;
    if (this.#filter !== undefined && from >= firstSeq && isEveryStored(stream, from, to)) return LinkGapReason.filtered;
    return LinkGapReason.deleted;
  }

  /**
   * Monitoring only, called per status or scrape, so it never scans: the store's counters (or,
   * filtered, its subject index) and at most one read (the oldest pending message's time).
   * - `msgs`: unfiltered, exact when nothing after `afterSeq` was deleted, otherwise an upper
   *   bound (sequences after `afterSeq`, at most the stream's messages): a hole counts until its
   *   gap is acknowledged; filtered, exact (this peer's messages after `afterSeq`).
   * - `bytes`: the store's accounting (nats-server's per-message sizes, a few dozen bytes above
   *   the link's subject + headers + data), the whole stream's average share for `msgs`.
   * - `oldestNs`: the store time of the first message (of this view) after `afterSeq`.
   */
  pending(key: StreamKey, afterSeq: number): { readonly msgs: number; readonly bytes: number; readonly oldestNs: bigint | undefined } {
    const stream = this.#streamOf(key);
    if (stream === undefined) return NOTHING_PENDING;
    const state = stream.store.state();
    // Up to the durable watermark, as state() says: the backlog and the last sequence a status shows agree.
    const lastSeq = Math.min(state.lastSeq, this.#lastSeqOf(stream) ?? 0);
    if (state.messages === 0 || afterSeq >= lastSeq) return NOTHING_PENDING;
    const filter = this.#filter;
    if (filter === undefined && afterSeq < state.firstSeq && lastSeq === state.lastSeq) return { msgs: state.messages, bytes: state.bytes, oldestNs: state.firstTimestampNs };
    const msgs = filter === undefined ? Math.min(state.messages, lastSeq - afterSeq) : stream.store.countPending(filter, afterSeq + 1);
    if (msgs === 0) return NOTHING_PENDING;
    const bytes = Math.round((state.bytes * msgs) / state.messages);
    return { msgs, bytes, oldestNs: stream.store.loadNext(filter ?? '>', afterSeq + 1)?.timestampNs };
  }

  /** The last sequence the sender may see: the store's, bounded by the durable watermark. */
  #lastSeqOf(stream: Stream): number | undefined {
    const lastSeq = stream.store.state().lastSeq;
    if (this.#durable === undefined) return lastSeq;
    const durableSeq = this.#durable.durableSeq(stream);
    return durableSeq === undefined ? undefined : Math.min(lastSeq, durableSeq);
  }

  /** The stream named by `key` if it still is that incarnation and synced. */
  #streamOf(key: StreamKey): Stream | undefined {
    const stream = this.#jetstream.streams.get(key.stream);
    if (stream === undefined || stream.incarnation !== key.incarnation || !this.#isSynced(stream) || !isLinkStreamName(stream.name)) return undefined;
    return stream;
  }
}

const NOTHING_PENDING = { msgs: 0, bytes: 0, oldestNs: undefined } as const;

/** Quarantined sequences within `from … to` (the set holds the few records found damaged). */
function damagedIn(stream: Stream, from: number, to: number): number {
  let count = 0;
  for (const seq of stream.store.damagedSeqs) if (seq >= from && seq <= to) count++;
  return count;
}

/** Whether every sequence of `from … to` (within the stream) is stored: O(1) when the stream has no holes. */
function isEveryStored(stream: Stream, from: number, to: number): boolean {
  const state = stream.store.state();
  if (to > state.lastSeq) return false;
  if (state.numDeleted === 0) return true;
  return stream.store.countPending('>', from) - stream.store.countPending('>', to + 1) === to - from + 1;
}

/**
 * A whole stream's messages from `fromSeq` through `lastSeq` (the durable watermark) in one
 * sequential read (`loadRange`; loadNext('>') per message costs a seek and a get each), cut at
 * the first hole after the first message: the sender ends a batch there and sends the hole's gap.
 */
function readWhole(store: QuarantiningStore, fromSeq: number, lastSeq: number, maxBytes: number, maxMsgs: number): readonly LinkMessage[] {
  let seq = fromSeq;
  while (seq <= lastSeq) {
    const msgs = store.loadRange(seq, Math.min(maxMsgs, lastSeq - seq + 1), maxBytes);
    if (msgs.length > 0) {
      if (msgs[0]!.seq > lastSeq) return [];
      let run = 1;
      while (run < msgs.length && msgs[run]!.seq === msgs[0]!.seq + run && msgs[run]!.seq <= lastSeq) run++;
      msgs.length = run;
      return msgs;
    }
    // The quarantining store gives up after a long run of damaged records: go on after the
    // last one it met, so such a run becomes one 'corrupt' gap, not a gap over good data.
    const damage = store.damageSeen();
    if (damage?.seq === undefined || damage.seq < seq || damage.seq >= lastSeq) break;
    seq = damage.seq + 1;
  }
  return [];
}
