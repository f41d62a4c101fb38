/**
 * The hub's WebSocket listener for leaves: the host of core/link's hub-side machines
 * (core/link/README.md "The host loop", "Open: what the hosts must provide").
 *
 * - One {@link HubConnection} per accepted WebSocket (one binary message = one frame,
 *   core/link/codec.ts), numbered by the acceptor.
 * - A registry by leaf name: a leaf's new connection replaces its older one (`replace()`,
 *   nats-server #1606), so only the leaf's current connection reaches its sync machines.
 * - Per leaf, living across connections: a {@link ReceiverHost} (core/link-host: a
 *   `LinkReceiver` over a {@link HubSink}, replaced from the durable cursors only when the sink
 *   went stale; hub/ingest/README.md "Decisions") for the leaf's upstream streams, and a
 *   {@link SenderHost} (a `LinkSender` over the downstream hub streams as this leaf sees them,
 *   hub/ingest/downstream.ts) for the hub's downstream streams.
 * - A timer calls `tick()` on every connection (pings, dead links, handshake timeouts), pumps
 *   the senders and, once a second, compares each sender's stream list (config changes).
 * - Writes are staged by the sinks during a turn; one `storage.flushed()` per turn for every
 *   leaf (TurnFlusher), then `receiver.durable()` for the keys the turn covered, and the cursor
 *   frames go out.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import { wsMessageBytes } from '../../core/link-host/message-bytes.ts';
import { DurableSeqs } from '../../core/link-host/durable-seqs.ts';
import { linkStatesByPeer, receivedStreamRows, type ReceivedStreamStatus } from '../../core/link-host/link-states.ts';
import {
  clipText,
  ERROR_TEXT_CHARS_MAX,
  ReceiverErrorCode,
  ReceiverHost,
  TurnFlusher,
  emptyReceiverHostStats,
  type ReceiverHostStats,
} from '../../core/link-host/receiver-host.ts';
import { SenderHost, sentStreamStatus, type SentStreamStatus } from '../../core/link-host/sender-host.ts';
import { decodeLeafFrame, encodeFrame } from '../../core/link/codec.ts';
import { LinkError } from '../../core/link/errors.ts';
import { HubConnection, LINK_WINDOW_BYTES_DEFAULT, type HelloFrame, type HubFrame, type LeafFrame, type LinkSession, type SenderStats, type SyncFrame } from '../../core/link/index.ts';
import { isValidLeafName, LEAF_NAME_LENGTH_MAX, type HubLinkOptions } from '../../core/server/link-options.ts';
import { AssertionError, assert } from '../../core/util/assert.ts';
import { SYSTEM_CLOCK, type Clock } from '../../core/util/clock.ts';
import type { Logger } from '../../core/util/logger.ts';
import { nowNs } from '../../core/util/time.ts';
import { downstreamStreamsOf, isDownstreamStream } from './downstream.ts';
import { HubSink } from './hub-sink.ts';
import { LeafListener, type LeafAuthMethod, type LeafPeer } from './leaf-listener.ts';

export { LEAF_MESSAGE_BYTES_MAX, type LeafAuthMethod } from './leaf-listener.ts';
/** The longest interval between two ticks; shorter heartbeats tick at a quarter of theirs. */
export const LEAF_TICK_MS_MAX = 1000;
/** How often each leaf's downstream stream list is compared with JetStream's (catches config changes no event announces). */
export const LEAF_HOUSEKEEPING_MS = 1000;
/** How long close() waits for a leaf to answer the WebSocket close before dropping it. */
const CLOSE_WAIT_MS = 1000;

/** Connection-level error codes the hub sends besides 'auth', 'version' and 'protocol'. */
export const HubErrorCode = {
  /** A commit of the hub's store failed: the leaf reconnects and resends from the durable cursors. */
  store: ReceiverErrorCode.store,
  /** A target stream was deleted or re-created under the leaf: reconnect and start over into the new one. */
  reset: ReceiverErrorCode.reset,
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

/** One leaf stream (incarnation) as the hub has it (direction 'up'), for /leafz. */
export type LeafStreamStatus = ReceivedStreamStatus;

/** One downstream hub stream as this leaf's share of it goes down (direction 'down'), for /leafz. */
export type DownstreamStatus = SentStreamStatus;

export type LeafLinkStats = ReceiverHostStats;

export type LeafStatus = {
  readonly leaf: string;
  readonly connected: boolean;
  /** Clock ms of the last connect while connected, of the last disconnect otherwise; undefined if never seen. */
  readonly since: number | undefined;
  /** Address of the current or last connection. */
  readonly remote: string | undefined;
  /** Whether the current or last connection is wss:// (undefined: not seen since start). */
  readonly tls: boolean | undefined;
  /** How the current or last connection authenticated (undefined: not seen since start). */
  readonly authMethod: LeafAuthMethod | undefined;
  /** Connections after the first one in this process. */
  readonly reconnects: number;
  readonly lastDownReason: string | undefined;
  /** Counters of this process (receiver and sink, across their replacements). */
  readonly stats: LeafLinkStats;
  /** The leaf's streams the hub receives (upstream). */
  readonly streams: readonly LeafStreamStatus[];
  /** Counters of the hub's downstream sender for this leaf (this process). */
  readonly downstreamStats: SenderStats | undefined;
  /** The hub's downstream streams as this leaf gets them (its connections in this process; empty for a leaf not seen since start). */
  readonly downstream: readonly DownstreamStatus[];
};

/** The leaf listener as a whole, for /leafz `listener` and /metrics. */
export type LeafListenerStatus = {
  readonly port: number;
  /** wss:// (leaf_tls). */
  readonly tls: boolean;
  /** Client certificates are required and name the leaf (leaf_tls verify). */
  readonly verify: boolean;
  /** Failed TLS handshakes since start. */
  readonly tlsFailures: number;
};

/** One accepted WebSocket. */
type Connection = {
  readonly id: number;
  readonly ws: WebSocket;
  readonly hc: HubConnection;
  readonly peer: LeafPeer;
  /** Set when its hello was accepted. */
  authMethod: LeafAuthMethod | undefined;
  log: Logger;
  /** Its leaf once up. */
  link: LeafLink | undefined;
};

/** Everything the hub keeps per leaf, across connections. */
class LeafLink {
  readonly leaf: string;
  readonly log: Logger;
  /** The leaf's upstream streams. */
  readonly receiving: ReceiverHost;
  /** The hub's downstream streams, this leaf's share. */
  readonly sending: SenderHost;
  current: Connection | undefined = undefined;
  connections = 0;
  sinceMs: number | undefined = undefined;
  remote: string | undefined = undefined;
  isTls: boolean | undefined = undefined;
  authMethod: LeafAuthMethod | undefined = undefined;
  lastDownReason: string | undefined = undefined;

  constructor(options: { leaf: string; log: Logger; receiving: (link: LeafLink) => ReceiverHost; sending: (link: LeafLink) => SenderHost }) {
    this.leaf = options.leaf;
    this.log = options.log;
    this.receiving = options.receiving(this);
    this.sending = options.sending(this);
  }
}

export class LeafAcceptor {
  readonly #js: JetStream;
  readonly #options: HubLinkOptions;
  readonly #hubName: string;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #listener: LeafListener;
  readonly #connections = new Map<number, Connection>();
  readonly #links = new Map<string, LeafLink>();
  readonly #tokenDigests = new Map<string, Buffer>();
  readonly #flusher: TurnFlusher;
  /** What of each downstream stream is on disk: only that goes down. */
  readonly #durable: DurableSeqs;
  readonly #timer: NodeJS.Timeout;
  readonly #unsubscribe: () => void;
  #connectionIds = 0;
  #lastHousekeepingMs = 0;
  #isClosed = false;

  private constructor(options: LeafAcceptorOptions, listener: LeafListener) {
    this.#js = options.jetstream;
    this.#options = options.link;
    this.#hubName = linkNameOf(options.hubName);
    this.#log = options.log;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#listener = listener;
    this.#flusher = new TurnFlusher({ storage: options.jetstream.storage, log: options.log, failureMessage: 'storing leaf data failed; the leaves resend after reconnecting' });
    for (const [leaf, token] of options.link.tokens) this.#tokenDigests.set(leaf, digestOf(token));
    this.#durable = new DurableSeqs({ streams: options.jetstream.streams, onDurable: (stream) => this.#downstreamChanged(stream) });
    // Synchronous inside JetStream's write path: only a downstream stream's name is noted, per connected leaf; the pumps do the work.
    this.#unsubscribe = options.jetstream.onStreamChange((stream) => {
      if (!isDownstreamStream(stream)) return;
      this.#durable.changed(stream);
      this.#downstreamChanged(stream.name);
    });
    const tickMs = Math.max(1, Math.min(LEAF_TICK_MS_MAX, Math.floor(options.link.heartbeatMs / 4)));
    this.#timer = setInterval(() => this.#onTick(), tickMs);
    this.#timer.unref();
  }

  /** A downstream stream changed (or more of it is on disk): every connected leaf's sender looks again. */
  #downstreamChanged(stream: string): void {
    for (const link of this.#links.values()) if (link.current !== undefined) link.sending.changed(stream);
  }

  /** Listens on `link.host`:`link.port` (0: a free port) and accepts leaves. */
  static async start(options: LeafAcceptorOptions): Promise<LeafAcceptor> {
    const { link, log } = options;
    assert(link.port !== undefined, 'the leaf listener is off (leaf_port 0)');
    let acceptor: LeafAcceptor | undefined;
    // A leaf that connects in the moment between listen and the constructor is dropped (it retries).
    const onConnection = (ws: WebSocket, peer: LeafPeer): void => (acceptor === undefined ? ws.terminate() : acceptor.#onConnection(ws, peer));
    const listener = await LeafListener.start({ link, log, onConnection });
    acceptor = new LeafAcceptor(options, listener);
    const tls = link.tls;
    const isVerified = tls?.isClientCertRequired === true;
    if (link.tokens.size === 0 && !isVerified) log.warn({}, 'no leaf tokens configured: any client can connect as any leaf (use leaf_tokens or leaf_tls verify)');
    if (tls?.caFile !== undefined && !isVerified) log.warn({ ca_file: tls.caFile }, 'leaf_tls ca_file is set but verify is off: leaves are not asked for client certificates');
    log.info(
      { host: link.host, port: listener.port, tls: tls !== undefined, verify: isVerified, cert_file: tls?.certFile, heartbeat_ms: link.heartbeatMs, leaves_with_tokens: link.tokens.size },
      'listening for leaf connections',
    );
    return acceptor;
  }

  /** The port leaves connect to. */
  get port(): number {
    return this.#listener.port;
  }

  /** The listener as a whole: its port, TLS settings and failed TLS handshakes. */
  listenerStatus(): LeafListenerStatus {
    const tls = this.#options.tls;
    return { port: this.#listener.port, tls: tls !== undefined, verify: tls?.isClientCertRequired === true, tlsFailures: this.#listener.tlsFailures };
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
    this.#unsubscribe();
    for (const link of this.#links.values()) {
      link.receiving.close();
      link.sending.stop();
    }
    clearInterval(this.#timer);
    await Promise.all(closing);
    await this.#listener.close();
    this.#log.info({}, 'leaf listener closed');
  }

  /**
   * Per leaf known to this hub (seen since start, or with link states on disk): its link, the
   * streams it syncs up, and the downstream streams going down to it. Reads link states and
   * counters (and one message per downstream stream): for an endpoint, not a hot path.
   */
  status(): LeafStatus[] {
    const disk = linkStatesByPeer(this.#js, isValidLeafName);
    const names = new Set<string>([...this.#links.keys(), ...disk.keys()]);
    const now = nowNs();
    const result: LeafStatus[] = [];
    for (const leaf of [...names].sort()) {
      const link = this.#links.get(leaf);
      result.push({
        leaf,
        connected: link?.current !== undefined,
        since: link?.sinceMs,
        remote: link?.remote,
        tls: link?.isTls,
        authMethod: link?.authMethod,
        reconnects: Math.max(0, (link?.connections ?? 0) - 1),
        lastDownReason: link?.lastDownReason,
        stats: link?.receiving.stats() ?? emptyReceiverHostStats(),
        streams: receivedStreamRows({ peer: leaf, direction: 'up', host: link?.receiving, disk: disk.get(leaf) }),
        downstreamStats: link?.sending.sender.stats,
        downstream: (link?.sending.sender.progress() ?? []).map((entry) => sentStreamStatus(entry, 'down', now)),
      });
    }
    return result;
  }

  // ---------------------------------------------------------------- connections

  #onConnection(ws: WebSocket, peer: LeafPeer): void {
    if (this.#isClosed) {
      ws.terminate();
      return;
    }
    const id = ++this.#connectionIds;
    const log = this.#log.child({ link: id, remote: peer.remote });
    const conn: Connection = {
      id,
      ws,
      // authorize runs inside receive(), after `conn` is assigned: the closure may use it.
      hc: new HubConnection({
        hub: this.#hubName,
        windowBytes: LINK_WINDOW_BYTES_DEFAULT,
        compression: true,
        authorize: (hello) => this.#authorize(conn, hello),
        heartbeatMs: this.#options.heartbeatMs,
        connection: id,
        nowMs: this.#clock.nowMs(),
      }),
      peer,
      authMethod: undefined,
      log,
      link: undefined,
    };
    this.#connections.set(id, conn);
    ws.on('message', (data, isBinary) => this.#onMessage(conn, data, isBinary));
    ws.on('close', (code) => this.#onSocketClosed(conn, `peer closed (${code})`));
    ws.on('error', (err) => conn.log.debug({ err }, 'leaf socket error'));
    log.debug({}, 'leaf connection accepted');
  }

  /**
   * The hello's leaf name against the connection's credential (README "Authorization"): a
   * client certificate the TLS handshake verified is the credential when there is one (its
   * subject CN must be the leaf name; no token is asked for, as nats-server's verify_and_map
   * needs no password); otherwise the leaf's token when the hub has tokens; otherwise none.
   * The identity comes from the handshake, before the hello: the check stays synchronous.
   */
  #authorize(conn: Connection, hello: HelloFrame): string | undefined {
    const { peer } = conn;
    let refusal: string | undefined;
    let method: LeafAuthMethod = 'none';
    if (!isValidLeafName(hello.leaf)) {
      refusal = `leaf name ${JSON.stringify(clipText(hello.leaf, 80))} must be 1 to ${LEAF_NAME_LENGTH_MAX} letters, digits, "-" or "_"`;
    } else if (peer.hasVerifiedCert) {
      method = 'cert';
      if (peer.certName === undefined) refusal = 'the client certificate has no single subject CN to name a leaf';
      else if (peer.certName !== hello.leaf) refusal = `the client certificate is for leaf ${JSON.stringify(clipText(peer.certName, 80))}, not ${JSON.stringify(hello.leaf)}`;
    } else if (this.#tokenDigests.size > 0) {
      method = 'token';
      const expected = this.#tokenDigests.get(hello.leaf);
      // Compared as digests in constant time; the text does not say whether the name or the token was wrong.
      if (expected === undefined || hello.token === undefined || !timingSafeEqual(expected, digestOf(hello.token))) refusal = 'unknown leaf or wrong token';
    }
    if (refusal !== undefined) {
      conn.log.warn({ leaf: clipText(hello.leaf, 80), auth: method, reason: refusal }, 'leaf refused');
      return refusal;
    }
    conn.authMethod = method;
    return undefined;
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
        frame = decodeLeafFrame(wsMessageBytes(data));
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
      if (conn.link !== undefined) conn.link.receiving.sink.failed();
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
    const isHousekeeping = nowMs - this.#lastHousekeepingMs >= LEAF_HOUSEKEEPING_MS;
    if (isHousekeeping) this.#lastHousekeepingMs = nowMs;
    for (const link of this.#links.values()) {
      if (link.current === undefined) continue;
      if (isHousekeeping) link.sending.reconcile();
      // A throttled 'filtered' tail (LINK_FILTERED_TAIL_MS) and a backlog behind a full socket need a later look.
      link.sending.schedule();
    }
  }

  /** Sends a connection-level error and closes (from any state). */
  #abort(conn: Connection, code: string, text: string): void {
    conn.hc.abort({ t: 'error', code, text: clipText(text, ERROR_TEXT_CHARS_MAX), stream: undefined }, this.#clock.nowMs());
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
    link.remote = conn.peer.remote;
    link.isTls = conn.peer.isTls;
    link.authMethod = conn.authMethod;
    link.receiving.connected(conn.id);
    // The welcome went out before this action; the offers follow it (the hello carried the leaf's window).
    link.sending.connected(session.peerWindowBytes);
    conn.log.info(
      { remote: conn.peer.remote, tls: conn.peer.isTls, auth: conn.authMethod, version: session.version, heartbeat_ms: session.heartbeatMs, compression: session.compression, reconnects: link.connections - 1 },
      'leaf link up',
    );
  }

  #onDown(conn: Connection, reason: string): void {
    const link = conn.link;
    if (link === undefined || link.current !== conn) return;
    link.receiving.disconnected();
    link.sending.disconnected();
    link.current = undefined;
    link.sinceMs = this.#clock.nowMs();
    link.lastDownReason = reason;
    conn.log.info({ reason }, 'leaf link down');
  }

  #linkFor(leaf: string): LeafLink {
    let link = this.#links.get(leaf);
    if (link === undefined) {
      const log = this.#log.child({ leaf });
      const js = this.#js;
      const clock = this.#clock;
      link = new LeafLink({
        leaf,
        log,
        receiving: (self) =>
          new ReceiverHost({
            peer: leaf,
            peerKind: 'leaf',
            newSink: () => new HubSink({ leaf, jetstream: js, clock, log }),
            flusher: this.#flusher,
            clock,
            log,
            send: (frames) => self.current !== undefined && this.#send(self.current, frames),
            abort: (code, text) => self.current !== undefined && this.#abort(self.current, code, text),
          }),
        sending: (self) =>
          new SenderHost({
            streams: downstreamStreamsOf({ jetstream: js, leaf, durable: this.#durable, log }),
            clock,
            log,
            selfKind: 'hub',
            peerKind: 'leaf',
            bufferedBytes: () => (self.current?.hc.state === 'up' && self.current.ws.readyState === WebSocket.OPEN ? self.current.ws.bufferedAmount : undefined),
            send: (frames) => self.current !== undefined && this.#send(self.current, frames),
            abort: (error) => self.current !== undefined && this.#abort(self.current, error.code, error.text),
          }),
      });
      this.#links.set(leaf, link);
    }
    return link;
  }

  // ---------------------------------------------------------------- sync

  /** A sync frame of the leaf's current connection (connection.ts): offer / batch / gap to the receiver, the rest to the downstream sender. */
  #route(conn: Connection, frame: SyncFrame): void {
    const link = conn.link;
    assert(link !== undefined && link.current === conn, `a sync frame of connection ${conn.id}, which is not its leaf's current one`);
    switch (frame.t) {
      case 'offer':
      case 'batch':
      case 'gap':
        link.receiving.receive(frame);
        return;
      case 'error':
        conn.log.warn({ stream: frame.stream, text: frame.text }, 'leaf refused a downstream stream');
        link.sending.receive(frame);
        return;
      case 'cursor':
      case 'window':
        link.sending.receive(frame);
        return;
      default:
        assert(false, `not a sync frame: ${(frame as { t: string }).t}`);
    }
  }

  /** Encodes and writes frames on `conn`. False (after aborting it) when one cannot be encoded. */
  #send(conn: Connection, frames: readonly HubFrame[]): boolean {
    if (conn.ws.readyState !== WebSocket.OPEN) return false;
    const compress = conn.hc.session?.compression ?? false;
    for (const frame of frames) {
      let bytes: Uint8Array;
      try {
        bytes = encodeFrame(frame, { compress });
      } catch (err) {
        if (!(err instanceof LinkError)) throw err;
        // Only a batch can be too big: a single message over LINK_FRAME_BYTES_MAX (max_payload above 8 MiB).
        conn.log.error({ err, t: frame.t }, 'frame too large for the link');
        this.#abort(conn, HubErrorCode.internal, err.message);
        return false;
      }
      conn.ws.send(bytes);
    }
    conn.hc.sent(this.#clock.nowMs());
    return true;
  }
}

// ---------------------------------------------------------------- helpers


function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
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
