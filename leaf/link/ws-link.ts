/**
 * The leaf's link host (core/link/README.md "The host loop", "Open: what the hosts must
 * provide", "Leaf transport"): the pure `LeafConnection` and one `LinkSender` (for the process's
 * life, across connections) driven by real WebSockets to the hub URLs.
 *
 * - `dial` opens a WebSocket (binary messages, one frame each; `maxPayload` =
 *   LINK_MESSAGE_BYTES_MAX; permessage-deflate off: the codec compresses batches itself when
 *   the link agreed on it). Its events are reported with the action's connection number, so
 *   the machine ignores those of an older connection.
 * - A received message is decoded (`decodeHubFrame`); a LinkError, or a text message, aborts the
 *   connection. Sync frames for the sender (cursor, window, error 'stream') go to the upstream
 *   sender, offers, batches and gaps to the downstream receiver.
 * - `up` → `connected` on both, `down` → `disconnected` on both, `close` → the socket is closed
 *   (terminated after a grace period).
 * - Upstream: a core/link-host {@link SenderHost} (the pump, coalesced per event-loop turn, that
 *   feeds stream changes to the `LinkSender` over {@link LeafStreams}, sends its frames and keeps
 *   the acknowledged cursors ({@link LeafLink.ackedCursors}) for the later "keep until the hub
 *   has it" retention; backpressure above LINK_SOCKET_BUFFERED_BYTES_MAX unsent bytes).
 * - Downstream: a core/link-host {@link ReceiverHost} (a `LinkReceiver` over a {@link LeafSink}:
 *   hub stream S lands in local stream S, cursors atomic with the data, one flush per turn before
 *   any cursor goes out). A failed flush closes the connection; the next one resends.
 * - A tick timer (min(1 s, heartbeat / 4)) drives pings, dead-link and dial timeouts, the end of
 *   a backoff, a reconciliation of the synced stream list, and stall detection.
 *
 * Visibility: {@link LeafLink.status} (state, hub, connected since, reconnects, per stream the
 * acknowledged and last sequence, backlog, oldest unsynced age, last ack) and stall detection
 * (EDGE-SYNC.md finding 8: lag alone is not a health signal): a stream is stalled when the link
 * has been up for {@link LINK_STALL_MS_DEFAULT} (or `stallMs`) and the stream has a backlog but
 * its acknowledged cursor did not move in that time. A stall is logged once (warn), its end at
 * info. While the link is down no stream is "stalled": the link state says why nothing moves.
 */
import { randomInt } from 'node:crypto';
import WebSocket from 'ws';
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import type { Stream } from '../../core/jetstream/stream.ts';
import { wsMessageBytes } from '../../core/link-host/message-bytes.ts';
import { DurableSeqs } from '../../core/link-host/durable-seqs.ts';
import { linkStatesByPeer, receivedStreamRows, type ReceivedStreamStatus } from '../../core/link-host/link-states.ts';
import { ReceiverHost, TurnFlusher, type ReceiverHostStats } from '../../core/link-host/receiver-host.ts';
import { LINK_SOCKET_BUFFERED_BYTES_MAX, SenderHost, sentStreamStatus, type SentStreamStatus } from '../../core/link-host/sender-host.ts';
import { decodeHubFrame, encodeFrame, LINK_MESSAGE_BYTES_MAX } from '../../core/link/codec.ts';
import { LinkError } from '../../core/link/errors.ts';
import {
  LeafConnection,
  LINK_WINDOW_BYTES_DEFAULT,
  type AckedCursor,
  type ErrorFrame,
  type HubFrame,
  type LeafConnectionState,
  type LeafFrame,
  type LinkAction,
  type LinkSession,
  type SenderStats,
  type SenderStreamProgress,
  type SyncFrame,
} from '../../core/link/index.ts';
import type { LeafLinkOptions } from '../../core/server/link-options.ts';
import { AssertionError } from '../../core/util/assert.ts';
import { SYSTEM_CLOCK, type Clock } from '../../core/util/clock.ts';
import type { Logger } from '../../core/util/logger.ts';
import { SeededPrng, type Prng } from '../../core/util/prng.ts';
import { nowNs } from '../../core/util/time.ts';
import type { HubRetention, StreamRetentionStatus } from './hub-retention.ts';
import { dialFailureOf, tlsDialOptions } from './hub-tls.ts';
import { LeafSink, HUB_PEER } from './leaf-sink.ts';
import { LeafStreams } from './leaf-streams.ts';

export { LINK_SOCKET_BUFFERED_BYTES_MAX };

/** The longest tick: pings and timeouts are checked at least this often (README "Leaf transport": ~1 s). */
export const LINK_TICK_MS_MAX = 1000;
/** Ticks per heartbeat interval at least, so a dead link is found within a quarter interval of the rule. */
export const LINK_TICKS_PER_HEARTBEAT = 4;
/** After a close frame, how long the hub has to finish the close handshake before the socket is destroyed. */
export const LINK_CLOSE_GRACE_MS = 1000;
/** A stream with a backlog whose acknowledged cursor did not move for this long while the link is up is stalled. */
export const LINK_STALL_MS_DEFAULT = 30_000;
/** How often the synced stream list is compared with JetStream's (catches config changes no event announces) and stalls are checked. */
export const LINK_HOUSEKEEPING_MS = 1000;
/** WebSocket close codes the leaf sends. */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_PROTOCOL = 1002;
/** A close frame's reason is at most 123 bytes (RFC 6455 §5.5); ours are ASCII, kept well under. */
const CLOSE_REASON_CHARS_MAX = 100;

export type LeafLinkHostOptions = {
  readonly jetstream: JetStream;
  /** The retention hold JetStream consults (installed with the broker, before its streams were recovered). */
  readonly retention: HubRetention;
  readonly link: LeafLinkOptions;
  /** The link's logger; the host adds `{ link: leafName, hub: urls }`. */
  readonly log: Logger;
  /** Time for the machines and timestamps (default: the system clock). */
  readonly clock?: Clock;
  /** Reconnect jitter (default: a SeededPrng from a random seed). */
  readonly prng?: Prng;
  /** Stall threshold (default {@link LINK_STALL_MS_DEFAULT}). */
  readonly stallMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** This leaf's receive window for downstream batches (default LINK_WINDOW_BYTES_DEFAULT). */
  readonly windowBytes?: number;
};

/** One stream synced up (direction 'up'), as {@link LeafLink.status} shows it (core/link-host SentStreamStatus, with its retention hold). */
export type LeafLinkStreamStatus = SentStreamStatus & StreamRetentionStatus & {
  readonly stalled: boolean;
};

export type LeafLinkStatus = {
  readonly state: LeafConnectionState;
  /** URL of the current (or last) connection attempt. */
  readonly hubUrl: string | undefined;
  /** The hub's name while up. */
  readonly hub: string | undefined;
  /** Clock time the current connection came up (undefined while not up). */
  readonly connectedSince: number | undefined;
  /** Connections that came up after the first one. */
  readonly reconnects: number;
  readonly dials: number;
  /** Consecutive failed attempts (the backoff exponent). */
  readonly attempt: number;
  /** While in backoff: how long until the next dial. */
  readonly retryInMs: number | undefined;
  /** Closes by reason, since start. */
  readonly closes: Readonly<Record<string, number>>;
  readonly sender: SenderStats;
  /** Counters of the downstream receiver and sink (this process). */
  readonly receiver: ReceiverHostStats;
  /** Bytes the current socket holds unsent (backpressure stops polling the sender above LINK_SOCKET_BUFFERED_BYTES_MAX). */
  readonly socketBufferedBytes: number;
  /** Some stream is stalled. */
  readonly stalled: boolean;
  /** The leaf's streams synced up to the hub. */
  readonly streams: readonly LeafLinkStreamStatus[];
  /** The hub's downstream streams this leaf has (direction 'down'): cursor, gaps, incarnations (the backlog is the hub's to see). */
  readonly downstream: readonly ReceivedStreamStatus[];
};

/** Stall bookkeeping of one stream incarnation. */
type StallTracker = { incarnation: string; ackedSeq: number | undefined; sinceMs: number; isStalled: boolean };

/** One transport: a WebSocket and the connection number the machine gave it. */
type Transport = {
  readonly connection: number;
  readonly url: string;
  readonly ws: WebSocket;
  /** Why the socket failed, when it did (ws emits 'error' before 'close'). */
  error: string | undefined;
  /** The TLS error code when that failure was TLS's (hub-tls.ts). */
  tlsCode: string | undefined;
  /** The WebSocket opened (errors after that are not dial failures). */
  hasOpened: boolean;
  closeTimer: NodeJS.Timeout | undefined;
};

/** A random seed for the reconnect jitter (two leaves restarted together must not dial in step). */
function randomSeed(): number {
  return randomInt(0, 2 ** 47);
}

/** The leaf's end of its link to the hub: one per leaf process. */
export class LeafLink {
  readonly #jetstream: JetStream;
  readonly #retention: HubRetention;
  readonly #options: LeafLinkOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #stallMs: number;
  readonly #tickMs: number;
  readonly #conn: LeafConnection;
  /** What of each stream is on disk: only that goes up. */
  readonly #durable: DurableSeqs;
  /** Upstream: the leaf's streams to the hub. */
  readonly #sending: SenderHost;
  /** Downstream: the hub's streams to this leaf. */
  readonly #receiving: ReceiverHost;
  /** Open (or closing) transports by connection number. */
  readonly #transports = new Map<number, Transport>();
  readonly #stalls = new Map<string, StallTracker>();
  #session: LinkSession | undefined = undefined;
  #upConnection = 0;
  #upAtMs = 0;
  #lastUrl: string | undefined = undefined;
  #failuresSinceUp = 0;
  /** The reason of the last failed connect, so a new reason is logged at warn again. */
  #lastFailureReason: string | undefined = undefined;
  #lastHousekeepingMs = 0;
  #isStarted = false;
  #isStopped = false;
  #tickTimer: NodeJS.Timeout | undefined = undefined;
  #unsubscribe: (() => void) | undefined = undefined;

  constructor(options: LeafLinkHostOptions) {
    this.#jetstream = options.jetstream;
    this.#retention = options.retention;
    this.#options = options.link;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#log = options.log.child({ link: options.link.leafName, hub: options.link.hubUrls.join(',') });
    this.#stallMs = options.stallMs ?? LINK_STALL_MS_DEFAULT;
    this.#tickMs = Math.max(1, Math.min(LINK_TICK_MS_MAX, Math.floor(options.link.heartbeatMs / LINK_TICKS_PER_HEARTBEAT)));
    this.#conn = new LeafConnection({
      leaf: options.link.leafName,
      token: options.link.hubToken,
      urls: options.link.hubUrls,
      windowBytes: options.windowBytes ?? LINK_WINDOW_BYTES_DEFAULT,
      compression: options.link.isCompressionWanted,
      prng: options.prng ?? new SeededPrng(randomSeed()),
      heartbeatMs: options.link.heartbeatMs,
      ...(options.backoffBaseMs === undefined ? {} : { backoffBaseMs: options.backoffBaseMs }),
      ...(options.backoffMaxMs === undefined ? {} : { backoffMaxMs: options.backoffMaxMs }),
    });
    this.#durable = new DurableSeqs({ streams: options.jetstream.streams, onDurable: (stream) => this.#sending.changed(stream) });
    this.#sending = new SenderHost({
      streams: new LeafStreams({ jetstream: options.jetstream, log: this.#log, durable: this.#durable }),
      clock: this.#clock,
      log: this.#log,
      selfKind: 'leaf',
      peerKind: 'hub',
      bufferedBytes: () => {
        const transport = this.#currentTransport();
        return transport === undefined ? undefined : transport.ws.bufferedAmount;
      },
      send: (frames) => this.#sendAll(frames),
      abort: (error) => this.#abort(this.#conn.connection, error.text),
      onAcked: (acked) => this.#applyAcked(acked),
    });
    const sinkLog = this.#log.child({ direction: 'down' });
    this.#receiving = new ReceiverHost({
      peer: HUB_PEER,
      peerKind: 'hub',
      newSink: () => new LeafSink({ jetstream: options.jetstream, clock: this.#clock, hubName: () => this.#session?.peer ?? '', log: sinkLog }),
      flusher: new TurnFlusher({ storage: options.jetstream.storage, log: sinkLog, failureMessage: 'storing downstream data failed; the hub resends after reconnecting' }),
      clock: this.#clock,
      log: sinkLog,
      send: (frames) => this.#sendAll(frames),
      abort: (code, text) => this.#closeConnection(code, text),
    });
  }

  /** Starts dialing the hub and listening to stream changes. */
  start(): void {
    if (this.#isStarted) return;
    this.#isStarted = true;
    // Synchronous inside JetStream's write path: only remember the name; the pump does the work.
    this.#unsubscribe = this.#jetstream.onStreamChange((stream) => {
      this.#durable.changed(stream);
      this.#sending.changed(stream.name);
    });
    const tls = this.#options.tls;
    this.#log.info(
      { urls: this.#options.hubUrls, heartbeat_ms: this.#options.heartbeatMs, compression: this.#options.isCompressionWanted, tls_ca_file: tls?.caFile, tls_cert_file: tls?.certFile },
      'link starting',
    );
    this.#conn.start(this.#clock.nowMs());
    this.#drive();
    this.#tickTimer = setInterval(() => this.#onTick(), this.#tickMs);
    this.#tickTimer.unref();
  }

  /** Closes the connection, stops every timer and waits (at most the close grace) for the socket to go. */
  async stop(): Promise<void> {
    if (this.#isStopped) return;
    this.#isStopped = true;
    this.#unsubscribe?.();
    if (this.#tickTimer !== undefined) clearInterval(this.#tickTimer);
    this.#sending.stop();
    this.#receiving.close();
    this.#conn.stop(this.#clock.nowMs());
    this.#drive();
    const closing = [...this.#transports.values()].map(
      (transport) => new Promise<void>((resolve) => (transport.ws.readyState === WebSocket.CLOSED ? resolve() : transport.ws.once('close', () => resolve()))),
    );
    for (const transport of this.#transports.values()) this.#closeTransport(transport, 'stopped');
    this.#retention.persist();
    await Promise.all(closing);
    this.#log.info({}, 'link stopped');
  }

  /** The hub's durable cursor for the stream's current incarnation, as last heard (undefined before the first answer). */
  acked(stream: string): AckedCursor | undefined {
    return this.#sending.sender.acked(stream);
  }

  /** Latest acknowledged cursor per stream name (an entry may name an incarnation replaced since; acked() checks). */
  get ackedCursors(): ReadonlyMap<string, AckedCursor> {
    return this.#sending.ackedCursors;
  }

  /** Where the link is, per stream and as a whole (reads each stream's counters: for status calls, not per message). */
  status(): LeafLinkStatus {
    const nowMs = this.#clock.nowMs();
    const progress = this.#sending.sender.progress();
    const stalled = this.#updateStalls(progress, nowMs);
    const now = nowNs();
    const streams: LeafLinkStreamStatus[] = [];
    for (const entry of progress) {
      const stream = this.#jetstream.streams.get(entry.stream);
      if (stream === undefined || stream.incarnation !== entry.incarnation) continue; // gone since progress() read it
      streams.push({ ...this.#retention.status(stream), ...sentStreamStatus(entry, 'up', now), stalled: stalled.has(entry.stream) });
    }
    const disk = linkStatesByPeer(this.#jetstream, (peer) => peer === HUB_PEER).get(HUB_PEER);
    const stats = this.#conn.stats;
    const retryAtMs = this.#conn.retryAtMs;
    const session = this.#conn.session;
    return {
      state: this.#conn.state,
      hubUrl: this.#lastUrl,
      hub: session?.peer,
      connectedSince: session === undefined ? undefined : this.#upAtMs,
      reconnects: Math.max(0, stats.welcomes - 1),
      dials: stats.dials,
      attempt: this.#conn.attempt,
      retryInMs: retryAtMs === undefined ? undefined : Math.max(0, retryAtMs - nowMs),
      closes: stats.closes,
      sender: this.#sending.sender.stats,
      receiver: this.#receiving.stats(),
      socketBufferedBytes: this.#transports.get(this.#conn.connection)?.ws.bufferedAmount ?? 0,
      stalled: stalled.size > 0,
      streams,
      downstream: receivedStreamRows({ peer: HUB_PEER, direction: 'down', host: this.#receiving, disk }),
    };
  }

  // ---------------------------------------------------------------- connection machine

  /** Hands out the connection machine's output: its frames (hello, ping) and its actions. */
  #drive(): void {
    const output = this.#conn.poll();
    if (output.frames.length > 0) {
      const transport = this.#transports.get(this.#conn.connection);
      if (transport !== undefined) for (const frame of output.frames) this.#send(transport, frame);
    }
    for (const action of output.actions) this.#onAction(action);
  }

  #onAction(action: LinkAction): void {
    switch (action.kind) {
      case 'dial':
        this.#dial(action.connection, action.url);
        return;
      case 'up':
        this.#onUp(action.connection, action.session);
        return;
      case 'close': {
        const transport = this.#transports.get(action.connection);
        if (action.connection !== this.#upConnection && action.reason !== 'stopped') this.#logConnectFailure(transport?.url, action.reason, undefined);
        if (transport !== undefined) this.#closeTransport(transport, action.reason);
        return;
      }
      case 'down':
        this.#onDown(action.reason);
        return;
    }
  }

  #onUp(connection: number, session: LinkSession): void {
    const nowMs = this.#clock.nowMs();
    this.#session = session;
    this.#upConnection = connection;
    this.#upAtMs = nowMs;
    this.#failuresSinceUp = 0;
    this.#lastFailureReason = undefined;
    for (const tracker of this.#stalls.values()) this.#resetStall(tracker, tracker.ackedSeq, nowMs);
    this.#log.info(
      { hub_name: session.peer, version: session.version, url: this.#transports.get(connection)?.url, heartbeat_ms: session.heartbeatMs, compression: session.compression, window_bytes: session.peerWindowBytes },
      'link up',
    );
    this.#sending.connected(session.peerWindowBytes);
    this.#receiving.connected(connection);
  }

  #onDown(reason: string): void {
    this.#sending.disconnected();
    this.#receiving.disconnected();
    this.#session = undefined;
    for (const tracker of this.#stalls.values()) tracker.isStalled = false;
    const retryAtMs = this.#conn.retryAtMs;
    const upForMs = this.#clock.nowMs() - this.#upAtMs;
    if (this.#isStopped) return;
    this.#log.info({ reason, up_for_ms: Math.round(upForMs), retry_in_ms: retryAtMs === undefined ? undefined : Math.max(0, Math.round(retryAtMs - this.#clock.nowMs())) }, 'link down');
  }

  /**
   * A dial or handshake that did not come up: logged at warn on the first of a series and
   * whenever the reason changes, else at debug (status() has the count). A TLS failure (the
   * hub's certificate refused, the hub refusing ours) is an error: it does not heal by
   * itself. Either way the connection machine backs off and dials again.
   */
  #logConnectFailure(url: string | undefined, reason: string, tlsCode: string | undefined): void {
    this.#failuresSinceUp += 1;
    const isNew = this.#failuresSinceUp === 1 || reason !== this.#lastFailureReason;
    this.#lastFailureReason = reason;
    const retryAtMs = this.#conn.retryAtMs;
    const fields = { url, reason, tls_code: tlsCode, attempt: this.#failuresSinceUp, retry_in_ms: retryAtMs === undefined ? undefined : Math.max(0, Math.round(retryAtMs - this.#clock.nowMs())) };
    if (!isNew) this.#log.debug(fields, tlsCode === undefined ? 'link connect failed' : 'link TLS handshake failed');
    else if (tlsCode !== undefined) this.#log.error(fields, 'link TLS handshake failed; retrying (the same failure again at debug until the link is up)');
    else this.#log.warn(fields, 'link connect failed; retrying (the same failure again at debug until the link is up)');
  }

  /** Raises the retention floors with the hub's acknowledged cursors; a stream whose floor moved frees what waited for it. */
  #applyAcked(acked: readonly AckedCursor[]): void {
    const moved = new Set<Stream>();
    for (const cursor of acked) {
      const stream = this.#retention.acknowledged(cursor);
      if (stream !== undefined) moved.add(stream);
    }
    for (const stream of moved) stream.applyRetention();
  }

  // ---------------------------------------------------------------- transport

  #dial(connection: number, url: string): void {
    this.#lastUrl = url;
    this.#log.debug({ url, connection }, 'link dialing');
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, { maxPayload: LINK_MESSAGE_BYTES_MAX, perMessageDeflate: false, ...tlsDialOptions(url, this.#options.tls) });
    } catch (err) {
      // A URL ws rejects (checked at config time, so unexpected): count it as a failed dial.
      queueMicrotask(() => {
        this.#conn.closed(connection, this.#clock.nowMs(), `dial failed: ${(err as Error).message}`);
        this.#logConnectFailure(url, (err as Error).message, undefined);
        this.#drive();
      });
      return;
    }
    const transport: Transport = { connection, url, ws, error: undefined, tlsCode: undefined, hasOpened: false, closeTimer: undefined };
    this.#transports.set(connection, transport);
    ws.on('open', () => {
      transport.hasOpened = true;
      this.#conn.opened(connection, this.#clock.nowMs());
      this.#drive();
    });
    ws.on('message', (data, isBinary) => this.#onMessage(transport, data, isBinary));
    ws.on('error', (err) => {
      // ws emits 'close' after 'error': the close carries this reason to the machine.
      const failure = transport.hasOpened ? { reason: err.message, tlsCode: undefined } : dialFailureOf(url, err);
      transport.error = failure.reason;
      transport.tlsCode = failure.tlsCode;
      this.#log.debug({ url, connection, err }, 'link socket error');
    });
    ws.on('close', (code, reason) => this.#onSocketClose(transport, code, reason.toString('utf8')));
  }

  #onSocketClose(transport: Transport, code: number, reason: string): void {
    if (transport.closeTimer !== undefined) clearTimeout(transport.closeTimer);
    this.#transports.delete(transport.connection);
    const isCurrent = transport.connection === this.#conn.connection && (this.#conn.state === 'dialing' || this.#conn.state === 'handshake' || this.#conn.state === 'up');
    if (!isCurrent) return;
    const why = transport.error ?? (reason === '' ? `hub closed the connection (${code})` : `hub closed the connection (${code} ${reason})`);
    const wasUp = transport.connection === this.#upConnection;
    this.#conn.closed(transport.connection, this.#clock.nowMs(), why);
    if (!wasUp) this.#logConnectFailure(transport.url, why, transport.tlsCode);
    this.#drive();
  }

  #onMessage(transport: Transport, data: WebSocket.RawData, isBinary: boolean): void {
    const connection = transport.connection;
    const nowMs = this.#clock.nowMs();
    if (!isBinary) {
      this.#abort(connection, 'text message on the link');
      return;
    }
    let frame: HubFrame;
    try {
      frame = decodeHubFrame(wsMessageBytes(data));
    } catch (err) {
      if (!(err instanceof LinkError)) throw err;
      this.#log.warn({ err, url: transport.url }, 'undecodable frame from the hub');
      this.#abort(connection, err.message);
      return;
    }
    if (frame.t === 'error' && connection === this.#conn.connection) this.#logHubError(frame);
    const isSync = this.#conn.receive(connection, frame, nowMs);
    if (isSync) {
      try {
        this.#route(frame as SyncFrame);
      } catch (err) {
        if (err instanceof AssertionError) throw err; // STYLE.md §2.6 (4): never continue past a broken invariant
        // Anything else is a bug in handling this frame: drop this connection (the next one starts from the durable cursors), not the leaf.
        this.#log.error({ err }, 'handling a hub frame failed');
        this.#receiving.sink.failed();
        this.#closeConnection('internal', 'the leaf failed handling a frame');
      }
    }
    this.#drive();
  }

  #logHubError(frame: ErrorFrame): void {
    if (frame.code === 'stream') this.#log.warn({ stream: frame.stream, text: frame.text }, 'stream refused by the hub');
    else this.#log.warn({ code: frame.code, text: frame.text }, 'link refused by the hub');
  }

  /** A sync frame of the current, up connection: the receiver's answers to the upstream sender, the sender's frames to the downstream receiver. */
  #route(frame: SyncFrame): void {
    switch (frame.t) {
      case 'cursor':
      case 'window':
      case 'error':
        this.#sending.receive(frame);
        return;
      case 'offer':
      case 'batch':
      case 'gap':
        this.#receiving.receive(frame);
        return;
    }
  }

  /** The hub broke the protocol (or sent what the leaf cannot use): close; the machine backs off. */
  #abort(connection: number, reason: string): void {
    this.#conn.abort(connection, this.#clock.nowMs(), reason);
    this.#drive();
  }

  /** Encodes and writes one frame. False (after aborting the connection) when it cannot be encoded. */
  #send(transport: Transport, frame: LeafFrame): boolean {
    if (transport.ws.readyState !== WebSocket.OPEN) return false;
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame, { compress: this.#session?.compression === true && frame.t === 'batch' });
    } catch (err) {
      if (!(err instanceof LinkError)) throw err;
      // Only a batch can be too big: a single message over LINK_FRAME_BYTES_MAX (max_payload above 8 MiB).
      this.#log.error({ err, t: frame.t }, 'frame too large for the link');
      this.#abort(transport.connection, err.message);
      return false;
    }
    transport.ws.send(bytes, { binary: true });
    return true;
  }

  #closeTransport(transport: Transport, reason: string): void {
    const ws = transport.ws;
    if (ws.readyState === WebSocket.CLOSED || transport.closeTimer !== undefined) return;
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
      return;
    }
    const code = reason === 'stopped' ? CLOSE_GOING_AWAY : reason.startsWith('protocol') ? CLOSE_PROTOCOL : CLOSE_NORMAL;
    ws.close(code, reason.slice(0, CLOSE_REASON_CHARS_MAX).replace(/[^\x20-\x7e]/g, '?'));
    transport.closeTimer = setTimeout(() => ws.terminate(), LINK_CLOSE_GRACE_MS);
    transport.closeTimer.unref();
  }

  // ---------------------------------------------------------------- sending (both directions' frames)

  /** The current connection's transport while its socket is open. */
  #currentTransport(): Transport | undefined {
    const transport = this.#transports.get(this.#conn.connection);
    return transport !== undefined && transport.ws.readyState === WebSocket.OPEN ? transport : undefined;
  }

  /** Writes frames on the current connection; false when there is none or one could not be encoded (the connection was aborted). */
  #sendAll(frames: readonly LeafFrame[]): boolean {
    const transport = this.#currentTransport();
    if (transport === undefined) return false;
    for (const frame of frames) if (!this.#send(transport, frame)) return false;
    if (frames.length > 0) this.#conn.sent(transport.connection, this.#clock.nowMs());
    return true;
  }

  /**
   * The downstream receiver closes the connection: a protocol error of the hub aborts it (close
   * code 1002); anything else (a failed store, a local stream deleted under the sync) is a
   * normal close the machine backs off from, and the next connection starts over.
   */
  #closeConnection(code: string, text: string): void {
    const connection = this.#conn.connection;
    if (code === 'protocol') {
      this.#abort(connection, text);
      return;
    }
    const transport = this.#transports.get(connection);
    this.#conn.closed(connection, this.#clock.nowMs(), `${code}: ${text}`);
    if (transport !== undefined) this.#closeTransport(transport, code);
    this.#drive();
  }

  // ---------------------------------------------------------------- timers

  #onTick(): void {
    if (this.#isStopped) return;
    const nowMs = this.#clock.nowMs();
    this.#conn.tick(nowMs);
    this.#drive();
    if (nowMs - this.#lastHousekeepingMs >= LINK_HOUSEKEEPING_MS) {
      this.#lastHousekeepingMs = nowMs;
      this.#sending.reconcile();
      this.#retention.persist();
      if (this.#sending.sender.isConnected) this.#updateStalls(this.#sending.sender.progress(), nowMs);
    }
    if (this.#sending.sender.isConnected) this.#sending.schedule();
  }

  // ---------------------------------------------------------------- stalls

  /** Updates the stall trackers from `progress`; returns the names of the streams stalled now. */
  #updateStalls(progress: readonly SenderStreamProgress[], nowMs: number): Set<string> {
    const stalled = new Set<string>();
    const isUp = this.#sending.sender.isConnected;
    const seen = new Set<string>();
    for (const entry of progress) {
      seen.add(entry.stream);
      let tracker = this.#stalls.get(entry.stream);
      if (tracker === undefined || tracker.incarnation !== entry.incarnation) {
        tracker = { incarnation: entry.incarnation, ackedSeq: entry.ackedSeq, sinceMs: nowMs, isStalled: false };
        this.#stalls.set(entry.stream, tracker);
      }
      if (!isUp || entry.backlogMsgs === 0 || entry.ackedSeq !== tracker.ackedSeq) {
        if (tracker.isStalled && isUp) this.#log.info({ stream: entry.stream, acked_seq: entry.ackedSeq, backlog_msgs: entry.backlogMsgs }, 'stream sync moving again');
        this.#resetStall(tracker, entry.ackedSeq, nowMs);
        continue;
      }
      const stuckForMs = nowMs - Math.max(tracker.sinceMs, this.#upAtMs);
      if (stuckForMs < this.#stallMs) continue;
      stalled.add(entry.stream);
      if (tracker.isStalled) continue;
      tracker.isStalled = true;
      this.#log.warn(
        { stream: entry.stream, state: entry.state, acked_seq: entry.ackedSeq, last_seq: entry.lastSeq, backlog_msgs: entry.backlogMsgs, stalled_ms: Math.round(stuckForMs), refusal: entry.refusal },
        'stream sync stalled: backlog but no acknowledgement from the hub',
      );
    }
    for (const stream of this.#stalls.keys()) if (!seen.has(stream)) this.#stalls.delete(stream);
    return stalled;
  }

  #resetStall(tracker: StallTracker, ackedSeq: number | undefined, nowMs: number): void {
    tracker.ackedSeq = ackedSeq;
    tracker.sinceMs = nowMs;
    tracker.isStalled = false;
  }
}

