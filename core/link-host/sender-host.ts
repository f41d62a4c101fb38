/**
 * The sending half of a link host, for both roles (core/link/README.md "The host loop"): one
 * {@link LinkSender} per peer, living across connections, and the pump that drives it. The leaf
 * runs one for its hub (upstream), the hub one per leaf (downstream, over that leaf's filtered
 * view); the transport stays the host's (`send`, `abort`, `bufferedBytes` callbacks).
 *
 * - **Pump**: JetStream's `onStreamChange` only records the stream name (`changed`); one pump
 *   per event-loop turn (setImmediate) feeds the names to `sender.streamChanged`, polls the
 *   sender, sends its frames, and keeps the acknowledged cursors (`ackedCursors`, for the later
 *   "keep until the peer has it" retention).
 * - **Backpressure**: while the socket holds more than {@link LINK_SOCKET_BUFFERED_BYTES_MAX}
 *   unsent, the sender is not polled; the pump looks again every
 *   {@link LINK_BACKPRESSURE_RETRY_MS} (ws has no drain event). Pings still go out.
 * - **Reconciliation**: a stream opted in or out by a config update is announced by no
 *   JetStream event; the host calls `reconcile()` once a second to compare the synced list.
 * - A diverged stream (the peer has more of it than we do) is logged once at warn.
 */
import { LinkSender, type AckedCursor, type CursorFrame, type ErrorFrame, type SenderFrame, type SenderStreamProgress, type SenderStreams, type WindowFrame } from '../link/index.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';

/**
 * Unsent bytes the socket may hold before the sender is no longer polled. The window (2 MiB by
 * default) bounds what the peer has not acknowledged; this bounds what waits in this process behind
 * a slow link, so a thin link does not pile a whole window into memory at once.
 */
export const LINK_SOCKET_BUFFERED_BYTES_MAX = 512 * 1024;
/** How soon a backpressured pump looks at the socket again (ws has no drain event). */
export const LINK_BACKPRESSURE_RETRY_MS = 20;

export type SenderHostOptions = {
  readonly streams: SenderStreams;
  readonly clock: Clock;
  /** The peer's logger. */
  readonly log: Logger;
  /** This side and the peer, in log messages. */
  readonly selfKind: 'leaf' | 'hub';
  readonly peerKind: 'leaf' | 'hub';
  /** Unsent bytes of the current connection's socket, or undefined when no connection is open. */
  readonly bufferedBytes: () => number | undefined;
  /** Writes the frames in order on the current connection; false when it could not (and aborted it). */
  readonly send: (frames: readonly SenderFrame[]) => boolean;
  /** The peer broke the sync protocol: close the current connection. */
  readonly abort: (error: ErrorFrame) => void;
  /** The cursors the peer acknowledged in one poll (the leaf raises its retention floors with them). */
  readonly onAcked?: (acked: readonly AckedCursor[]) => void;
};

/** Where one synced stream is, for status (the sending side's row). */
export type SentStreamStatus = {
  /** 'up' on a leaf (its streams go up to the hub), 'down' on the hub (its streams go down to a leaf). */
  readonly direction: 'up' | 'down';
  readonly stream: string;
  readonly incarnation: string;
  readonly state: SenderStreamProgress['state'];
  /** The peer's durable cursor as last heard by this process (undefined before its first answer). */
  readonly ackedSeq: number | undefined;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Highest sequence sent on the current connection (0 before any). */
  readonly sentSeq: number;
  /** Messages / bytes (of this peer's share) stored after the acknowledged cursor (approximations: JetStreamStreams.pending). */
  readonly backlogMsgs: number;
  readonly backlogBytes: number;
  /** Age of the oldest message the peer does not have yet, ms (undefined when none). */
  readonly oldestUnsyncedAgeMs: number | undefined;
  /** Clock time of the last cursor from the peer for this stream. */
  readonly lastAckMs: number | undefined;
  readonly gapsSent: number;
  readonly gapMsgs: number;
  /** Sequences skipped as other peers' messages ('filtered' gaps; downstream only). */
  readonly filteredMsgs: number;
  /** The peer's refusal text when state is 'refused'. */
  readonly refusal: string | undefined;
};

/** The status row of one sender stream; `nowNs` for the age. */
export function sentStreamStatus(entry: SenderStreamProgress, direction: 'up' | 'down', nowNs: bigint): SentStreamStatus {
  return {
    direction,
    stream: entry.stream,
    incarnation: entry.incarnation,
    state: entry.state,
    ackedSeq: entry.ackedSeq,
    firstSeq: entry.firstSeq,
    lastSeq: entry.lastSeq,
    sentSeq: entry.sentSeq,
    backlogMsgs: entry.backlogMsgs,
    backlogBytes: entry.backlogBytes,
    oldestUnsyncedAgeMs: entry.oldestUnsyncedNs === undefined ? undefined : Math.max(0, Number((nowNs - entry.oldestUnsyncedNs) / 1_000_000n)),
    lastAckMs: entry.lastAckMs,
    gapsSent: entry.gapsSent,
    gapMsgs: entry.gapMsgs,
    filteredMsgs: entry.filteredMsgs,
    refusal: entry.refusal,
  };
}

export class SenderHost {
  readonly sender: LinkSender;
  readonly #options: SenderHostOptions;
  /** Streams changed since the last pump (coalesced: the sender hears each name once per pump). */
  readonly #changed = new Set<string>();
  /** The peer's durable cursor per stream, latest first heard (for retention). */
  readonly #acked = new Map<string, AckedCursor>();
  /** Streams found diverged, by `stream/incarnation`, so each is reported once. */
  readonly #diverged = new Set<string>();
  #divergencesSeen = 0;
  /** The synced list as last reconciled (`stream incarnation` lines). */
  #syncedList: string;
  #pumpImmediate: NodeJS.Immediate | undefined = undefined;
  #backpressureTimer: NodeJS.Timeout | undefined = undefined;
  #isStopped = false;

  constructor(options: SenderHostOptions) {
    this.#options = options;
    this.sender = new LinkSender({ streams: options.streams, clock: options.clock });
    this.#syncedList = this.#syncedListKey();
  }

  /** Latest acknowledged cursor per stream name (an entry may name an incarnation replaced since; `sender.acked()` checks). */
  get ackedCursors(): ReadonlyMap<string, AckedCursor> {
    return this.#acked;
  }

  /** A connection is up: offer every stream (`windowBytes`: the peer's receive window). */
  connected(windowBytes: number): void {
    this.#changed.clear(); // connected() offers every stream as it is now
    this.sender.connected(windowBytes);
    this.schedule();
  }

  disconnected(): void {
    if (this.sender.isConnected) this.sender.disconnected();
  }

  /** A cursor, window or error 'stream' frame from the peer's receiver. */
  receive(frame: CursorFrame | WindowFrame | ErrorFrame): void {
    this.sender.receive(frame);
    this.schedule();
  }

  /** A stream's content or existence may have changed (synchronous in JetStream's write path: cheap). */
  changed(stream: string): void {
    this.#changed.add(stream);
    this.schedule();
  }

  /** Runs the pump in this turn's setImmediate (coalesced). */
  schedule(): void {
    if (this.#pumpImmediate !== undefined || this.#isStopped) return;
    this.#pumpImmediate = setImmediate(() => {
      this.#pumpImmediate = undefined;
      this.#pump();
    });
  }

  /**
   * A stream opted in or out by a config update, which JetStream announces to no listener:
   * compare the synced list with the last one and tell the sender about the difference. Also
   * forgets acknowledged cursors of streams that are gone.
   */
  reconcile(): void {
    const key = this.#syncedListKey();
    if (key === this.#syncedList) return;
    const before = new Set(this.#syncedList === '' ? [] : this.#syncedList.split('\n'));
    const after = new Set(key === '' ? [] : key.split('\n'));
    this.#syncedList = key;
    for (const id of before) if (!after.has(id)) this.#changed.add(id.slice(0, id.indexOf(' ')));
    for (const id of after) if (!before.has(id)) this.#changed.add(id.slice(0, id.indexOf(' ')));
    for (const [stream, cursor] of this.#acked) if (!after.has(`${stream} ${cursor.incarnation}`)) this.#acked.delete(stream);
    this.schedule();
  }

  stop(): void {
    this.#isStopped = true;
    if (this.#pumpImmediate !== undefined) clearImmediate(this.#pumpImmediate);
    if (this.#backpressureTimer !== undefined) clearTimeout(this.#backpressureTimer);
  }

  /** Feeds stream changes to the sender, polls it and sends what it hands out (unless the socket is backed up). */
  #pump(): void {
    if (this.#isStopped) return;
    const sender = this.sender;
    for (const name of this.#changed) sender.streamChanged(name);
    this.#changed.clear();
    if (!sender.isConnected) return;
    const buffered = this.#options.bufferedBytes();
    if (buffered === undefined) return;
    if (buffered > LINK_SOCKET_BUFFERED_BYTES_MAX) {
      this.#scheduleBackpressureRetry();
      return;
    }
    const output = sender.poll();
    for (const cursor of output.acked) this.#acked.set(cursor.stream, cursor);
    if (output.acked.length > 0) this.#options.onAcked?.(output.acked);
    if (output.error !== undefined) {
      this.#options.log.warn({ text: output.error.text }, `the ${this.#options.peerKind} broke the sync protocol`);
      this.#options.abort(output.error);
      return;
    }
    if (output.frames.length > 0 && !this.#options.send(output.frames)) return;
    if (sender.stats.divergences > this.#divergencesSeen) this.#reportDivergences();
  }

  #scheduleBackpressureRetry(): void {
    if (this.#backpressureTimer !== undefined || this.#isStopped) return;
    this.#backpressureTimer = setTimeout(() => {
      this.#backpressureTimer = undefined;
      this.schedule();
    }, LINK_BACKPRESSURE_RETRY_MS);
  }

  #reportDivergences(): void {
    this.#divergencesSeen = this.sender.stats.divergences;
    for (const entry of this.sender.progress()) {
      const id = `${entry.stream}/${entry.incarnation}`;
      if (entry.state !== 'diverged' || this.#diverged.has(id)) continue;
      this.#diverged.add(id);
      this.#options.log.warn(
        { stream: entry.stream, incarnation: entry.incarnation, last_seq: entry.lastSeq, acked_seq: entry.ackedSeq },
        `stream diverged: the ${this.#options.peerKind} has more of it than this ${this.#options.selfKind} (lost data that was acknowledged); not synced until it is re-created`,
      );
    }
  }

  #syncedListKey(): string {
    return this.#options.streams
      .list()
      .map((key) => `${key.stream} ${key.incarnation}`)
      .join('\n');
  }
}
