/**
 * The hub's WebSocket listener for leaves: the host of core/link's hub-side machines
 * (core/link/README.md "The host loop", "Open: what the hosts must provide").
 *
 * - One {@link HubConnection} per accepted WebSocket (one binary message = one frame,
 *   core/link/codec.ts), numbered by the acceptor.
 * - A registry by leaf name: a leaf's new connection replaces its older one (`replace()`,
 *   nats-server #1606), so only the leaf's current connection reaches its sync machines.
 * - Per leaf, one {@link LinkReceiver} over a {@link HubSink}, living across connections;
 *   both are replaced (from the durable cursors) only when the sink went stale
 *   (hub/ingest/README.md "Decisions").
 * - A timer calls `tick()` on every connection (pings, dead links, handshake timeouts).
 * - Writes are staged by the sink during a turn; one `storage.flushed()` per turn, then
 *   `receiver.durable()` for the keys the turn covered, and the cursor frames go out.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import { decodeLeafFrame, encodeFrame, LINK_MESSAGE_BYTES_MAX } from '../../core/link/codec.ts';
import { LinkError } from '../../core/link/errors.ts';
import {
  HubConnection,
  LINK_WINDOW_BYTES_DEFAULT,
  LinkReceiver,
  type BatchFrame,
  type ErrorFrame,
  type GapFrame,
  type GapRecord,
  type HelloFrame,
  type HubFrame,
  type LeafFrame,
  type LinkSession,
  type OfferFrame,
  type ReceiverStats,
  type SyncFrame,
} from '../../core/link/index.ts';
import { isValidLeafName, LEAF_NAME_LENGTH_MAX, type HubLinkOptions } from '../../core/server/link-options.ts';
import { AssertionError, assert } from '../../core/util/assert.ts';
import { SYSTEM_CLOCK, type Clock } from '../../core/util/clock.ts';
import type { Logger } from '../../core/util/logger.ts';
import { HubSink, originCursorStateOf, originStreamStateOf, type OriginCursorState, type OriginStreamState, type SinkStats, type SinkTurn } from './hub-sink.ts';

/** ws `maxPayload`: the largest link message plus slack for ws' own accounting. */
export const LEAF_MESSAGE_BYTES_MAX = LINK_MESSAGE_BYTES_MAX + 1024;
/** The longest interval between two ticks; shorter heartbeats tick at a quarter of theirs. */
export const LEAF_TICK_MS_MAX = 1000;
/**
 * Sync frames a leaf may have queued while the hub creates a target stream (ms): the sender's
 * in-flight limit is 256 batches, so a correct leaf never comes near it.
 */
export const LEAF_QUEUED_FRAMES_MAX = 1024;
/** How long close() waits for a leaf to answer the WebSocket close before dropping it. */
const CLOSE_WAIT_MS = 1000;
/** Error texts sent to a leaf are clipped to this (LINK_TEXT_BYTES_MAX is 4096 UTF-8 bytes). */
const ERROR_TEXT_CHARS_MAX = 1000;

/** Connection-level error codes the hub sends besides 'auth', 'version' and 'protocol'. */
export const HubErrorCode = {
  /** A commit of the hub's store failed: the leaf reconnects and resends from the durable cursors. */
  store: 'store',
  /** A target stream was deleted or re-created under the leaf: reconnect and start over into the new one. */
  reset: 'reset',
  /** The hub is stopping. */
  shutdown: 'shutdown',
  /** The hub failed handling a frame (a bug, logged): reconnect. */
  internal: 'internal',
} as const;

export type LeafAcceptorOptions = {
  readonly jetstream: JetStream;
  readonly link: HubLinkOptions;
  /** The hub's name, sent in `welcome`. */
  readonly hubName: string;
  readonly log: Logger;
  readonly clock?: Clock;
};

/** One leaf stream (incarnation) as the hub has it, for /leafz. */
export type LeafStreamStatus = {
  readonly stream: string;
  readonly incarnation: string;
  /** Durable cursor: every origin sequence up to it is on the hub's disk (stored or a recorded gap). */
  readonly cursor: number;
  /** Appended, possibly not yet durable (= cursor when nothing is pending or unknown). */
  readonly stagedSeq: number;
  readonly gaps: number;
  readonly gapMsgs: number;
  /** The most recent gap records. */
  readonly recentGaps: readonly GapRecord[];
  /** Clock ms of the last batch stored, undefined when none. */
  readonly lastBatchMs: number | undefined;
  /** This is the incarnation the hub stored data for most recently. */
  readonly isCurrent: boolean;
  /** How often this leaf stream came with a new incarnation (durable; the README's alert). */
  readonly incarnationChanges: number;
  /** Why the hub refuses this stream now (until the leaf's next connection), if it does. */
  readonly refusal: string | undefined;
};

export type LeafLinkStats = ReceiverStats & SinkStats;

export type LeafStatus = {
  readonly leaf: string;
  readonly connected: boolean;
  /** Clock ms of the last connect while connected, of the last disconnect otherwise; undefined if never seen. */
  readonly since: number | undefined;
  /** Address of the current or last connection. */
  readonly remote: string | undefined;
  /** Connections after the first one in this process. */
  readonly reconnects: number;
  readonly lastDownReason: string | undefined;
  /** Counters of this process (receiver and sink, across their replacements). */
  readonly stats: LeafLinkStats;
  readonly streams: readonly LeafStreamStatus[];
};

/** One accepted WebSocket. */
type Connection = {
  readonly id: number;
  readonly ws: WebSocket;
  readonly hc: HubConnection;
  readonly remote: string;
  log: Logger;
  /** Its leaf once up. */
  link: LeafLink | undefined;
};

type ReceiverInput = OfferFrame | BatchFrame | GapFrame;

/** Everything the hub keeps per leaf, across connections. */
class LeafLink {
  readonly leaf: string;
  readonly log: Logger;
  sink: HubSink;
  receiver: LinkReceiver;
  current: Connection | undefined = undefined;
  /** Flushes whose turns hold writes of this sink, not settled yet. */
  flushesInFlight = 0;
  /** Sync frames of the current connection held while `isCreating` or `isRenewPending` (in order). */
  readonly queue: ReceiverInput[] = [];
  /** Offers whose target stream the sink was asked to create (each is prepared once). */
  readonly prepared = new WeakSet<OfferFrame>();
  /** The sink is creating a target stream an offer needs. */
  isCreating = false;
  /** The connection came up while a stale sink still had flushes in flight: sink and receiver are replaced when they settle. */
  isRenewPending = false;
  connections = 0;
  sinceMs: number | undefined = undefined;
  remote: string | undefined = undefined;
  lastDownReason: string | undefined = undefined;
  /** Counters of the receivers and sinks replaced so far. */
  statsBefore: LeafLinkStats = emptyStats();

  constructor(leaf: string, log: Logger, sink: HubSink, receiver: LinkReceiver) {
    this.leaf = leaf;
    this.log = log;
    this.sink = sink;
    this.receiver = receiver;
  }

  stats(): LeafLinkStats {
    return addStats(this.statsBefore, { ...this.receiver.stats, ...this.sink.stats });
  }

  /** Sync frames must wait in `queue`. */
  get isHeld(): boolean {
    return this.isCreating || this.isRenewPending;
  }
}

/** A flush of one turn: what each leaf staged, and the connection it came on (for the refusals). */
type FlushEntry = { readonly link: LeafLink; readonly sink: HubSink; readonly turn: SinkTurn; readonly connection: number | undefined };

export class LeafAcceptor {
  readonly #js: JetStream;
  readonly #options: HubLinkOptions;
  readonly #hubName: string;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #wss: WebSocketServer;
  readonly #connections = new Map<number, Connection>();
  readonly #links = new Map<string, LeafLink>();
  readonly #tokenDigests = new Map<string, Buffer>();
  readonly #dirty = new Set<LeafLink>();
  readonly #timer: NodeJS.Timeout;
  #connectionIds = 0;
  #isFlushScheduled = false;
  #isClosed = false;
  #port: number;

  private constructor(options: LeafAcceptorOptions, wss: WebSocketServer, port: number) {
    this.#js = options.jetstream;
    this.#options = options.link;
    this.#hubName = linkNameOf(options.hubName);
    this.#log = options.log;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#wss = wss;
    this.#port = port;
    for (const [leaf, token] of options.link.tokens) this.#tokenDigests.set(leaf, digestOf(token));
    wss.on('connection', (ws, request) => this.#onConnection(ws, request));
    const tickMs = Math.max(1, Math.min(LEAF_TICK_MS_MAX, Math.floor(options.link.heartbeatMs / 4)));
    this.#timer = setInterval(() => this.#onTick(), tickMs);
    this.#timer.unref();
  }

  /** Listens on `link.host`:`link.port` (0: a free port) and accepts leaves. */
  static async start(options: LeafAcceptorOptions): Promise<LeafAcceptor> {
    const { link, log } = options;
    assert(link.port !== undefined, 'the leaf listener is off (leaf_port 0)');
    const wss = new WebSocketServer({ host: link.host, port: link.port, maxPayload: LEAF_MESSAGE_BYTES_MAX, perMessageDeflate: false, clientTracking: false });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      wss.once('error', onError);
      wss.once('listening', () => {
        wss.off('error', onError);
        resolve();
      });
    });
    wss.on('error', (err) => log.error({ err }, 'leaf listener failed'));
    const address = wss.address();
    const port = typeof address === 'object' && address !== null ? address.port : link.port;
    if (link.tokens.size === 0) log.warn({}, 'no leaf tokens configured: any client can connect as any leaf (use leaf_tokens)');
    log.info({ host: link.host, port, heartbeat_ms: link.heartbeatMs, leaves_with_tokens: link.tokens.size }, 'listening for leaf connections');
    return new LeafAcceptor(options, wss, port);
  }

  /** The port leaves connect to. */
  get port(): number {
    return this.#port;
  }

  /** Stops listening, closes every leaf connection (error 'shutdown') and stops the timer. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    const closing: Promise<void>[] = [];
    for (const conn of [...this.#connections.values()]) {
      this.#abort(conn, HubErrorCode.shutdown, 'the hub is stopping');
      closing.push(closedOrTerminated(conn.ws));
    }
    this.#isClosed = true;
    clearInterval(this.#timer);
    await Promise.all(closing);
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#log.info({}, 'leaf listener closed');
  }

  /** Per leaf known to this hub (seen since start, or with link states on disk): its link and streams. */
  status(): LeafStatus[] {
    const disk = this.#diskStates();
    const names = new Set<string>([...this.#links.keys(), ...disk.keys()]);
    const result: LeafStatus[] = [];
    for (const leaf of [...names].sort()) result.push(this.#leafStatus(leaf, this.#links.get(leaf), disk.get(leaf)));
    return result;
  }

  // ---------------------------------------------------------------- connections

  #onConnection(ws: WebSocket, request: IncomingMessage): void {
    if (this.#isClosed) {
      ws.terminate();
      return;
    }
    const id = ++this.#connectionIds;
    const remote = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`;
    const log = this.#log.child({ link: id, remote });
    const hc = new HubConnection({
      hub: this.#hubName,
      windowBytes: LINK_WINDOW_BYTES_DEFAULT,
      compression: true,
      authorize: (hello) => this.#authorize(hello, log),
      heartbeatMs: this.#options.heartbeatMs,
      connection: id,
      nowMs: this.#clock.nowMs(),
    });
    const conn: Connection = { id, ws, hc, remote, log, link: undefined };
    this.#connections.set(id, conn);
    ws.on('message', (data, isBinary) => this.#onMessage(conn, data, isBinary));
    ws.on('close', (code) => this.#onSocketClosed(conn, `peer closed (${code})`));
    ws.on('error', (err) => conn.log.debug({ err }, 'leaf socket error'));
    log.debug({}, 'leaf connection accepted');
  }

  #authorize(hello: HelloFrame, log: Logger): string | undefined {
    let refusal: string | undefined;
    if (!isValidLeafName(hello.leaf)) {
      refusal = `leaf name ${JSON.stringify(clip(hello.leaf, 80))} must be 1 to ${LEAF_NAME_LENGTH_MAX} letters, digits, "-" or "_"`;
    } else if (this.#tokenDigests.size > 0) {
      const expected = this.#tokenDigests.get(hello.leaf);
      // Compared as digests in constant time; the text does not say whether the name or the token was wrong.
      if (expected === undefined || hello.token === undefined || !timingSafeEqual(expected, digestOf(hello.token))) refusal = 'unknown leaf or wrong token';
    }
    if (refusal !== undefined) log.warn({ leaf: clip(hello.leaf, 80), reason: refusal }, 'leaf refused');
    return refusal;
  }

  #onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (this.#isClosed || conn.hc.state === 'closed') return;
    try {
      if (!isBinary) {
        this.#abort(conn, 'protocol', 'link frames are binary WebSocket messages');
        return;
      }
      let frame: LeafFrame;
      try {
        frame = decodeLeafFrame(bytesOf(data));
      } catch (err) {
        if (!(err instanceof LinkError)) throw err;
        conn.log.warn({ err }, 'undecodable frame from a leaf');
        this.#abort(conn, 'protocol', err.message);
        return;
      }
      const isSync = conn.hc.receive(frame, this.#clock.nowMs());
      this.#drive(conn);
      if (isSync) this.#route(conn, frame as SyncFrame);
    } catch (err) {
      if (err instanceof AssertionError) throw err; // STYLE.md §2.6 (4): never continue past a broken invariant
      // Anything else is a bug in handling this frame: drop this connection, not the hub.
      conn.log.error({ err }, 'handling a leaf frame failed');
      if (conn.link !== undefined) conn.link.sink.failed();
      this.#abort(conn, HubErrorCode.internal, 'the hub failed handling a frame');
    }
  }

  #onSocketClosed(conn: Connection, reason: string): void {
    conn.hc.closed(reason);
    this.#drive(conn);
    this.#connections.delete(conn.id);
  }

  #onTick(): void {
    const nowMs = this.#clock.nowMs();
    for (const conn of [...this.#connections.values()]) {
      conn.hc.tick(nowMs);
      this.#drive(conn);
    }
  }

  /** Sends a connection-level error and closes (from any state). */
  #abort(conn: Connection, code: string, text: string): void {
    conn.hc.abort({ t: 'error', code, text: clip(text, ERROR_TEXT_CHARS_MAX), stream: undefined }, this.#clock.nowMs());
    this.#drive(conn);
  }

  /** Sends what the connection machine produced and carries out its actions. */
  #drive(conn: Connection): void {
    const output = conn.hc.poll();
    if (output.frames.length > 0) this.#send(conn, output.frames);
    for (const action of output.actions) {
      switch (action.kind) {
        case 'up':
          this.#onUp(conn, action.session);
          break;
        case 'close':
          this.#connections.delete(conn.id);
          // A silent peer will not answer a close handshake: drop it. Otherwise close after the frames sent above.
          if (action.reason.endsWith('timeout')) conn.ws.terminate();
          else conn.ws.close(1000);
          conn.log.debug({ reason: action.reason }, 'leaf connection closed');
          break;
        case 'down':
          this.#onDown(conn, action.reason);
          break;
        case 'dial':
          assert(false, 'the hub never dials');
      }
    }
  }

  #onUp(conn: Connection, session: LinkSession): void {
    const link = this.#linkFor(session.peer);
    const older = link.current;
    if (older !== undefined && older !== conn) {
      older.hc.replace();
      this.#drive(older); // close + down: the older connection leaves the sync machines first
    }
    assert(link.current === undefined, `leaf ${link.leaf} still has a current connection`);
    conn.link = link;
    conn.log = this.#log.child({ link: conn.id, leaf: link.leaf });
    link.current = conn;
    link.connections += 1;
    link.sinceMs = this.#clock.nowMs();
    link.remote = conn.remote;
    link.sink.revalidate();
    if (link.sink.isStale && link.flushesInFlight > 0) {
      // The stale sink's last writes are not settled yet: hold this connection's frames until they are (#settled).
      link.isRenewPending = true;
    } else {
      this.#renew(link);
      link.receiver.connected();
    }
    conn.log.info(
      { remote: conn.remote, version: session.version, heartbeat_ms: session.heartbeatMs, compression: session.compression, reconnects: link.connections - 1 },
      'leaf link up',
    );
  }

  #onDown(conn: Connection, reason: string): void {
    const link = conn.link;
    if (link === undefined || link.current !== conn) return;
    if (link.receiver.isConnected) link.receiver.disconnected();
    link.current = undefined;
    link.queue.length = 0; // frames of this connection: the next one starts with offers again
    link.sinceMs = this.#clock.nowMs();
    link.lastDownReason = reason;
    conn.log.info({ reason }, 'leaf link down');
    this.#renew(link);
  }

  #linkFor(leaf: string): LeafLink {
    let link = this.#links.get(leaf);
    if (link === undefined) {
      const log = this.#log.child({ leaf });
      const sink = this.#newSink(leaf, log);
      link = new LeafLink(leaf, log, sink, new LinkReceiver({ sink, clock: this.#clock }));
      this.#links.set(leaf, link);
    }
    return link;
  }

  #newSink(leaf: string, log: Logger): HubSink {
    return new HubSink({ leaf, jetstream: this.#js, clock: this.#clock, log });
  }

  /**
   * Replaces a stale sink and its receiver with new ones that start from the durable cursors,
   * once that is safe: no connection (the receiver is between connections) and no flush in
   * flight (the durable view is final). Until then the stale one keeps refusing what it refused.
   */
  #renew(link: LeafLink): void {
    if (!link.sink.isStale || link.flushesInFlight > 0 || link.receiver.isConnected || this.#isClosed) return;
    link.isRenewPending = false;
    link.statsBefore = link.stats();
    link.sink = this.#newSink(link.leaf, link.log);
    link.receiver = new LinkReceiver({ sink: link.sink, clock: this.#clock });
    link.log.info({}, 'leaf sync state reloaded from the durable cursors');
  }

  // ---------------------------------------------------------------- sync

  /** A sync frame of the leaf's current connection (connection.ts: offer / batch / gap to the receiver, the rest to the sender). */
  #route(conn: Connection, frame: SyncFrame): void {
    const link = conn.link;
    assert(link !== undefined && link.current === conn, `a sync frame of connection ${conn.id}, which is not its leaf's current one`);
    switch (frame.t) {
      case 'offer':
      case 'batch':
      case 'gap':
        if (link.isHeld) {
          if (link.queue.length >= LEAF_QUEUED_FRAMES_MAX) this.#abort(conn, 'protocol', `more than ${LEAF_QUEUED_FRAMES_MAX} frames in flight`);
          else link.queue.push(frame);
          return;
        }
        this.#deliver(link, frame);
        return;
      // No hub stream is synced down to leaves yet: the hub has no sender on the link.
      case 'cursor':
        this.#abort(conn, 'protocol', `cursor for ${frame.stream}/${frame.incarnation}, which the hub never offered`);
        return;
      case 'window':
        return;
      case 'error':
        conn.log.warn({ stream: frame.stream, text: frame.text }, 'leaf refused a stream the hub never offered');
        return;
      default:
        assert(false, `not a sync frame: ${(frame as { t: string }).t}`);
    }
  }

  /** Feeds the receiver; an offer for a stream the hub lacks waits until the sink created it. */
  #deliver(link: LeafLink, frame: ReceiverInput): void {
    // An offer that waited for its stream's creation goes on whatever came of it (refuse() reports a failure).
    if (frame.t === 'offer' && !link.prepared.delete(frame)) {
      const creating = link.sink.prepare(frame.stream);
      if (creating !== undefined) {
        link.isCreating = true;
        link.prepared.add(frame);
        link.queue.unshift(frame);
        void creating.then(() => {
          link.isCreating = false;
          this.#resume(link);
        });
        return;
      }
    }
    link.receiver.receive(frame);
    if (link.sink.hasTurn) this.#scheduleFlush(link);
    this.#pump(link);
    const abort = link.sink.takeAbort();
    if (abort !== undefined && link.current !== undefined) this.#abort(link.current, abort.code, abort.text);
  }

  /** Delivers held frames; stops early when they must wait again (the rest stays queued) or the connection went down (onDown emptied the queue). */
  #resume(link: LeafLink): void {
    while (link.queue.length > 0 && !link.isHeld && link.current !== undefined && !this.#isClosed) this.#deliver(link, link.queue.shift()!);
  }

  /** A flush of the link's writes settled: a renewal the current connection waits for can happen now. */
  #settled(link: LeafLink): void {
    if (this.#isClosed) return;
    if (link.isRenewPending && link.flushesInFlight === 0) {
      this.#renew(link);
      if (link.current !== undefined) link.receiver.connected();
      this.#resume(link);
      return;
    }
    this.#renew(link);
  }

  /** Hands out the receiver's output: events to log, frames to send, a protocol error to close on. */
  #pump(link: LeafLink): void {
    const output = link.receiver.poll();
    for (const event of output.events) {
      if (event.kind === 'gap') {
        link.log.warn(
          { stream: event.stream, incarnation: event.incarnation, from: event.from, to: event.to, msgs: event.to - event.from + 1, reason: event.reason },
          'gap in a leaf stream recorded',
        );
      } else {
        link.log.warn({ stream: event.stream, previous: event.previous, incarnation: event.incarnation }, 'leaf stream has a new incarnation');
      }
    }
    for (const frame of output.frames) {
      if (frame.t === 'error' && frame.code === 'stream') link.log.warn({ stream: frame.stream, reason: frame.text }, 'leaf stream refused');
    }
    const conn = link.current;
    // A receiver waiting for its renewal is not connected: what it might say belongs to no connection.
    if (conn === undefined || !link.receiver.isConnected) return;
    if (output.frames.length > 0) this.#send(conn, output.frames);
    if (output.error !== undefined) {
      conn.log.warn({ text: output.error.text }, 'leaf broke the sync protocol');
      this.#abort(conn, output.error.code, output.error.text);
    }
  }

  #send(conn: Connection, frames: readonly HubFrame[]): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    const compress = conn.hc.session?.compression ?? false;
    for (const frame of frames) conn.ws.send(encodeFrame(frame, { compress }));
    conn.hc.sent(this.#clock.nowMs());
  }

  // ---------------------------------------------------------------- durability

  #scheduleFlush(link: LeafLink): void {
    this.#dirty.add(link);
    if (this.#isFlushScheduled) return;
    this.#isFlushScheduled = true;
    // One flush per event-loop turn, after every frame of the turn was handled.
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#isFlushScheduled = false;
    const entries: FlushEntry[] = [];
    for (const link of this.#dirty) {
      const turn = link.sink.takeTurn();
      if (turn === undefined) continue;
      link.flushesInFlight += 1;
      entries.push({ link, sink: link.sink, turn, connection: link.current?.id });
    }
    this.#dirty.clear();
    if (entries.length === 0) return;
    this.#js.storage.flushed().then(
      () => {
        for (const entry of entries) this.#onFlushed(entry);
      },
      (err: unknown) => {
        this.#log.error({ err, leaves: entries.map((entry) => entry.link.leaf) }, 'storing leaf data failed; the leaves resend after reconnecting');
        for (const entry of entries) this.#onFlushFailed(entry);
      },
    );
  }

  #onFlushed(entry: FlushEntry): void {
    const { link, turn } = entry;
    link.flushesInFlight -= 1;
    assert(entry.sink === link.sink, `leaf ${link.leaf}: sink replaced with a flush in flight`);
    if (this.#isClosed) return;
    link.sink.durable(turn);
    for (const { key, seq } of turn.covered) link.receiver.durable(key, seq);
    this.#pump(link);
    const conn = link.current;
    if (conn !== undefined && conn.id === entry.connection && turn.refusals.length > 0) {
      const refusals: ErrorFrame[] = turn.refusals.map(({ key, text }) => ({ t: 'error', code: 'stream', text: clip(text, ERROR_TEXT_CHARS_MAX), stream: key.stream }));
      this.#send(conn, refusals);
    }
    this.#settled(link);
  }

  /**
   * The store dropped everything not on disk (core/store/README.md "Write failures"), the
   * writes of this turn and every later one included. The receiver still believes them
   * staged, so it would ignore the resends as duplicates and wait forever for their flush:
   * the connection closes, and the leaf's next one meets a new receiver built from the
   * durable cursors, to which the leaf resends.
   */
  #onFlushFailed(entry: FlushEntry): void {
    const { link } = entry;
    link.flushesInFlight -= 1;
    if (this.#isClosed) return;
    link.sink.failed();
    if (link.current !== undefined) this.#abort(link.current, HubErrorCode.store, 'the hub could not store the data; reconnect and resend');
    this.#settled(link);
  }

  // ---------------------------------------------------------------- status

  /** Every leaf's link states on disk (plus what is pending), grouped by leaf. */
  #diskStates(): Map<string, { cursors: Map<string, OriginCursorState>; incarnations: Map<string, OriginStreamState> }> {
    const byLeaf = new Map<string, { cursors: Map<string, OriginCursorState>; incarnations: Map<string, OriginStreamState> }>();
    for (const stream of this.#js.streams.keys()) {
      for (const [origin, value] of this.#js.storage.loadLinkStates(stream)) {
        const parts = origin.split('/');
        const leaf = parts[0]!;
        if (!isValidLeafName(leaf) || parts[1] !== stream || parts.length > 3) continue;
        let states = byLeaf.get(leaf);
        if (states === undefined) {
          states = { cursors: new Map(), incarnations: new Map() };
          byLeaf.set(leaf, states);
        }
        if (parts.length === 3) states.cursors.set(origin, originCursorStateOf(value, origin));
        else states.incarnations.set(origin, originStreamStateOf(value, origin));
      }
    }
    return byLeaf;
  }

  #leafStatus(
    leaf: string,
    link: LeafLink | undefined,
    disk: { cursors: Map<string, OriginCursorState>; incarnations: Map<string, OriginStreamState> } | undefined,
  ): LeafStatus {
    // The sink's durable view is exact for the streams it loaded; the disk scan also shows what is pending.
    const cursors = new Map(disk?.cursors);
    const incarnations = new Map(disk?.incarnations);
    const views = link?.sink.views();
    if (views !== undefined) {
      for (const stream of views.streams) {
        for (const origin of [...cursors.keys()]) if (origin.startsWith(`${leaf}/${stream}/`)) cursors.delete(origin);
        incarnations.delete(`${leaf}/${stream}`);
      }
      for (const [origin, state] of views.cursors) cursors.set(origin, state);
      for (const [origin, state] of views.incarnations) incarnations.set(origin, state);
    }
    const staged = new Map<string, number>();
    for (const progress of link?.receiver.progress() ?? []) staged.set(`${leaf}/${progress.stream}/${progress.incarnation}`, progress.stagedSeq);
    const streams: LeafStreamStatus[] = [];
    for (const [origin, state] of cursors) {
      const [, stream = '', incarnation = ''] = origin.split('/');
      const last = incarnations.get(`${leaf}/${stream}`);
      streams.push({
        stream,
        incarnation,
        cursor: state.cursor,
        stagedSeq: Math.max(state.cursor, staged.get(origin) ?? 0),
        gaps: state.gapCount,
        gapMsgs: state.gapMsgs,
        recentGaps: state.gaps,
        lastBatchMs: state.lastBatchMs === 0 ? undefined : state.lastBatchMs,
        isCurrent: last?.incarnation === incarnation,
        incarnationChanges: last?.incarnationChanges ?? 0,
        refusal: views?.refusals.get(`${stream}/${incarnation}`),
      });
    }
    streams.sort((a, b) => (a.stream === b.stream ? (a.isCurrent ? -1 : b.isCurrent ? 1 : 0) : a.stream < b.stream ? -1 : 1));
    return {
      leaf,
      connected: link?.current !== undefined,
      since: link?.sinceMs,
      remote: link?.remote,
      reconnects: Math.max(0, (link?.connections ?? 0) - 1),
      lastDownReason: link?.lastDownReason,
      stats: link?.stats() ?? emptyStats(),
      streams,
    };
  }
}

// ---------------------------------------------------------------- helpers

function emptyStats(): LeafLinkStats {
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

function addStats(a: LeafLinkStats, b: LeafLinkStats): LeafLinkStats {
  const sum: Record<string, number> = { ...a };
  for (const key of Object.keys(sum) as (keyof LeafLinkStats)[]) sum[key] = a[key] + b[key];
  return sum as LeafLinkStats;
}

/** The bytes of a ws message (binaryType 'nodebuffer': a Buffer; fragments arrive joined). */
function bytesOf(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function clip(text: string, charsMax: number): string {
  return text.length <= charsMax ? text : `${text.slice(0, charsMax - 1)}…`;
}

/** A name the codec accepts in `welcome.hub` (no space or control character, at most 255 bytes). */
function linkNameOf(name: string): string {
  const cleaned = name.replace(/[\u0000-\u0020\u007f]/g, '_').slice(0, 64);
  return cleaned === '' ? 'hub' : cleaned;
}

/** Resolves when the socket closed, or after CLOSE_WAIT_MS, dropping it then. */
function closedOrTerminated(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, CLOSE_WAIT_MS);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
