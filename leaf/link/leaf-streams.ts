/**
 * The leaf's JetStream streams as the link sender reads them (core/link `SenderStreams`,
 * README "Open: what the hosts must provide", "Leaf sender store").
 *
 * Which streams sync: every stream of the leaf, file and memory, unless its config metadata
 * says `"canopy.sync": "false"` ({@link SYNC_METADATA_KEY}; any other value, or none, syncs),
 * or its name cannot cross the link ({@link isLinkStreamName}; logged once at error).
 * A memory stream gets a new incarnation at every start, so the hub keeps each run apart.
 *
 * Every read is synchronous and goes through `jetstream.streams` by name, checking the
 * incarnation, so a deleted or re-created stream is never read under its old key, and the
 * stores read synchronously between two writes (one consistent state per call).
 *
 * Damaged records. The stream's store is a `QuarantiningStore`: a record that fails its
 * checksum (StoreError ERR_STORE_CORRUPT) is logged once, counted, kept on disk for an operator
 * and skipped by reads as if absent. The link must not crash on it and must not stall every
 * message behind it either, so a damaged message reads as a hole: the sender sends a gap over
 * it, and {@link LeafStreams.gapReason} names such a gap `'corrupt'` (logged at error: the hub
 * will never have that message). A gap otherwise never covers data we still have; a damaged
 * record is data we cannot read.
 */
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import type { Stream } from '../../core/jetstream/stream.ts';
import { LINK_NAME_BYTES_MAX } from '../../core/link/codec.ts';
import { type LinkMessage, type SenderStreams, type StreamKey } from '../../core/link/index.ts';
import type { Logger } from '../../core/util/logger.ts';

/** Stream config metadata key: `"false"` keeps the stream off the link (it stays local). */
export const SYNC_METADATA_KEY = 'canopy.sync';

/** Gap reasons this side sends (GapFrame.reason). */
export const LeafGapReason = {
  /** Removed from the front of the stream: by limits, a purge, or work-queue / interest retention (the store does not record which). */
  limits: 'limits',
  /** A hole inside the stream or a removed tail: messages deleted one by one (API delete, filtered purge). */
  deleted: 'deleted',
  /** Records that failed their checksum: quarantined, never served (see the file comment). */
  corrupt: 'corrupt',
} as const;
export type LeafGapReason = (typeof LeafGapReason)[keyof typeof LeafGapReason];

/** Whether a stream goes over the link (not opted out with `"canopy.sync": "false"`). */
export function isSyncedStream(stream: Stream): boolean {
  return stream.config.metadata?.[SYNC_METADATA_KEY] !== 'false';
}

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

export type LeafStreamsOptions = {
  readonly jetstream: JetStream;
  readonly log: Logger;
};

/** `SenderStreams` over the leaf's local JetStream. Stateless: every answer comes from the store now. */
export class LeafStreams implements SenderStreams {
  readonly #jetstream: JetStream;
  readonly #log: Logger;
  /** Streams whose names cannot cross the link, already reported. */
  readonly #unsyncable = new Set<string>();

  constructor(options: LeafStreamsOptions) {
    this.#jetstream = options.jetstream;
    this.#log = options.log;
  }

  list(): readonly StreamKey[] {
    const keys: StreamKey[] = [];
    for (const stream of this.#jetstream.streams.values()) {
      if (!isSyncedStream(stream)) continue;
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
   */
  state(key: StreamKey): { readonly firstSeq: number; readonly lastSeq: number } | undefined {
    const stream = this.#streamOf(key);
    if (stream === undefined) return undefined;
    const state = stream.store.state();
    if (state.messages === 0) return { firstSeq: state.lastSeq + 1, lastSeq: state.lastSeq };
    return { firstSeq: state.firstSeq, lastSeq: state.lastSeq };
  }

  /**
   * Stored messages from `fromSeq` on, ascending, within `maxMsgs` and `maxBytes` (the store's
   * `loadRange` counts bytes as the link's `messageBytes` does; the first message always, however
   * big): one sequential read. Stops at the first hole after the first message: the sender ends a
   * batch there anyway and sends the hole's gap.
   * The StoredMessage objects are returned as they are (they are LinkMessages: seq, subject,
   * headers, data, timestampNs as bigint; the store hands out copies the caller owns).
   */
  read(key: StreamKey, fromSeq: number, maxBytes: number, maxMsgs: number): readonly LinkMessage[] {
    const stream = this.#streamOf(key);
    if (stream === undefined) return [];
    const store = stream.store;
    const lastSeq = store.state().lastSeq;
    store.damageSeen(); // forget damage met by earlier reads: only this read's counts below
    let seq = fromSeq;
    while (seq <= lastSeq) {
      const msgs = store.loadRange(seq, maxMsgs, maxBytes);
      if (msgs.length > 0) {
        let run = 1;
        while (run < msgs.length && msgs[run]!.seq === msgs[0]!.seq + run) run++;
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

  /**
   * Why `from … to` is gone. The store does not record why a message was removed, so this is
   * simple: any quarantined (damaged) sequence in the range makes it 'corrupt'; a range below the
   * stream's first sequence was removed from the front ('limits', which also stands for a purge
   * and for work-queue / interest retention); anything else is a hole or a removed tail ('deleted').
   */
  gapReason(key: StreamKey, from: number, to: number): LeafGapReason {
    const stream = this.#streamOf(key);
    if (stream === undefined) return LeafGapReason.deleted;
    const damaged = damagedIn(stream, from, to);
    if (damaged > 0) {
      this.#log.error({ stream: key.stream, from, to, damaged }, 'damaged messages cannot be synced: sent to the hub as a gap');
      return LeafGapReason.corrupt;
    }
    const state = stream.store.state();
    const firstSeq = state.messages === 0 ? state.lastSeq + 1 : state.firstSeq;
    return to < firstSeq ? LeafGapReason.limits : LeafGapReason.deleted;
  }

  /**
   * Monitoring only, called per status or scrape, so it never scans: the store's counters and
   * at most one read (the oldest pending message's time).
   * - `msgs`: exact when nothing after `afterSeq` was deleted; otherwise an upper bound
   *   (sequences after `afterSeq`, at most the stream's messages): a hole counts until its gap
   *   is acknowledged. 0 exactly when nothing is stored after `afterSeq`, up to a removed tail
   *   whose gap is not acknowledged yet.
   * - `bytes`: the store's accounting (nats-server's per-message sizes, a few dozen bytes above
   *   the link's subject + headers + data), the whole stream's share for `msgs`.
   * - `oldestNs`: the store time of the first message after `afterSeq`.
   */
  pending(key: StreamKey, afterSeq: number): { readonly msgs: number; readonly bytes: number; readonly oldestNs: bigint | undefined } {
    const stream = this.#streamOf(key);
    if (stream === undefined) return NOTHING_PENDING;
    const state = stream.store.state();
    if (state.messages === 0 || afterSeq >= state.lastSeq) return NOTHING_PENDING;
    if (afterSeq < state.firstSeq) return { msgs: state.messages, bytes: state.bytes, oldestNs: state.firstTimestampNs };
    const msgs = Math.min(state.messages, state.lastSeq - afterSeq);
    const bytes = Math.round((state.bytes * msgs) / state.messages);
    return { msgs, bytes, oldestNs: stream.store.loadNext('>', afterSeq + 1)?.timestampNs };
  }

  /** The stream named by `key` if it still is that incarnation and synced. */
  #streamOf(key: StreamKey): Stream | undefined {
    const stream = this.#jetstream.streams.get(key.stream);
    if (stream === undefined || stream.incarnation !== key.incarnation || !isSyncedStream(stream) || !isLinkStreamName(stream.name)) return undefined;
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
