/**
 * A small hub for the leaf's link tests: a real `ws` WebSocketServer speaking the link protocol
 * with the real codec (core/link/codec.ts), answering hello with welcome (or a refusal), offers
 * with a cursor the test chooses, batches and gaps with cursor frames, pings with pings. It keeps
 * what it received and checks the stream sync rules a receiver checks (README "Batch", "Gap"):
 * every violation is recorded in `violations`, which a test expects empty.
 *
 * It is deliberately not canopy's hub (hub/ is built elsewhere); it holds messages in memory and
 * treats every append as durable at once.
 */
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeLeafFrame, encodeFrame, LINK_MESSAGE_BYTES_MAX } from '../../../core/link/codec.ts';
import type { GapFrame, HelloFrame, HubFrame, LeafFrame, LinkMessage, OfferFrame, StreamKey } from '../../../core/link/index.ts';
import { LINK_WINDOW_BYTES_DEFAULT } from '../../../core/link/index.ts';

/**
 * - `normal`: welcome, then sync;
 * - `closing`: closes every new connection at once (a hub that is not ready);
 * - `silent`: accepts the WebSocket and never sends anything;
 * - `silent-after-welcome`: welcome, then nothing (no pings, no cursors).
 */
export type FakeHubMode = 'normal' | 'closing' | 'silent' | 'silent-after-welcome';

export type FakeHubOptions = {
  readonly name?: string;
  /** The token leaves must present; undefined accepts any (or none). A wrong one gets error 'auth' and a close. */
  readonly token?: string;
  /** The heartbeat in welcome; default: the leaf's own (the larger of both is the rule). */
  readonly heartbeatMs?: number;
  readonly windowBytes?: number;
  readonly mode?: FakeHubMode;
  /** The answer to an offer; undefined: what this hub stored for that key (0 when nothing). */
  readonly cursorFor?: (offer: OfferFrame) => number | undefined;
};

/** One accepted WebSocket. */
export type FakeHubConnection = {
  readonly id: number;
  readonly ws: WebSocket;
  readonly openedAtMs: number;
  closedAtMs: number | undefined;
  closeCode: number | undefined;
  closeReason: string | undefined;
  hello: HelloFrame | undefined;
  readonly frames: LeafFrame[];
};

export function keyId(key: StreamKey): string {
  return `${key.stream}/${key.incarnation}`;
}

export class FakeHub {
  readonly options: FakeHubOptions;
  readonly connections: FakeHubConnection[] = [];
  /** Every frame received, in order, with its connection id. */
  readonly received: { readonly connection: number; readonly frame: LeafFrame }[] = [];
  /** Stored messages per stream key (duplicates at or below the cursor are dropped, as a receiver does). */
  readonly stored = new Map<string, LinkMessage[]>();
  readonly cursors = new Map<string, number>();
  readonly gaps: GapFrame[] = [];
  readonly violations: string[] = [];
  /** Resent messages (at or below the cursor) that were ignored. */
  duplicates = 0;
  mode: FakeHubMode;
  /** While false, batches and gaps are stored but not acknowledged; `ackAll()` sends the cursors. */
  isAcking = true;
  readonly #server: WebSocketServer;

  private constructor(server: WebSocketServer, options: FakeHubOptions) {
    this.#server = server;
    this.options = options;
    this.mode = options.mode ?? 'normal';
    server.on('connection', (ws) => this.#onConnection(ws));
  }

  static async start(options: FakeHubOptions = {}): Promise<FakeHub> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: LINK_MESSAGE_BYTES_MAX, perMessageDeflate: false });
    await once(server, 'listening');
    return new FakeHub(server, options);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The connection currently open (the last accepted one that is not closed). */
  get current(): FakeHubConnection | undefined {
    const last = this.connections.at(-1);
    return last?.closedAtMs === undefined ? last : undefined;
  }

  /** Frames of one type received, optionally on one connection. */
  framesOf<T extends LeafFrame['t']>(t: T, connection?: number): Extract<LeafFrame, { t: T }>[] {
    return this.received.filter((entry) => entry.frame.t === t && (connection === undefined || entry.connection === connection)).map((entry) => entry.frame as Extract<LeafFrame, { t: T }>);
  }

  /** Sequences stored for `key`, in order. */
  storedSeqs(key: StreamKey): number[] {
    return (this.stored.get(keyId(key)) ?? []).map((message) => message.seq);
  }

  /** Sends the current cursor of every stream to the open connection (after `isAcking` was false). */
  ackAll(): void {
    const connection = this.current;
    if (connection === undefined) return;
    for (const [id, seq] of this.cursors) {
      const [stream, incarnation] = id.split('/') as [string, string];
      this.#send(connection, { t: 'cursor', stream, incarnation, seq, batch: undefined });
    }
  }

  /** Stops reading the open connection's socket (a hub that cannot keep up: TCP backs up to the leaf). */
  pauseReading(): void {
    socketOf(this.current?.ws)?.pause();
  }

  resumeReading(): void {
    for (const connection of this.connections) socketOf(connection.ws)?.resume();
  }

  /** Closes the open connection from the hub's side (a normal close frame). */
  dropConnection(): void {
    this.current?.ws.close(1001, 'hub restarting');
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ----------------------------------------------------------------

  #onConnection(ws: WebSocket): void {
    const connection: FakeHubConnection = {
      id: this.connections.length + 1,
      ws,
      openedAtMs: Date.now(),
      closedAtMs: undefined,
      closeCode: undefined,
      closeReason: undefined,
      hello: undefined,
      frames: [],
    };
    this.connections.push(connection);
    ws.on('close', (code, reason) => {
      connection.closedAtMs = Date.now();
      connection.closeCode = code;
      connection.closeReason = reason.toString('utf8');
    });
    ws.on('error', () => undefined); // the close event follows
    if (this.mode === 'closing') {
      ws.close(1013, 'try again later');
      return;
    }
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.violations.push(`c${connection.id}: text message`);
        return;
      }
      let frame: LeafFrame;
      try {
        frame = decodeLeafFrame(data as Buffer);
      } catch (err) {
        this.violations.push(`c${connection.id}: undecodable frame: ${(err as Error).message}`);
        return;
      }
      connection.frames.push(frame);
      this.received.push({ connection: connection.id, frame });
      this.#onFrame(connection, frame);
    });
  }

  #onFrame(connection: FakeHubConnection, frame: LeafFrame): void {
    if (this.mode === 'silent') return;
    if (frame.t === 'hello') {
      this.#onHello(connection, frame);
      return;
    }
    if (connection.hello === undefined) {
      this.violations.push(`c${connection.id}: ${frame.t} before hello`);
      return;
    }
    if (this.mode === 'silent-after-welcome') return;
    switch (frame.t) {
      case 'ping':
        this.#send(connection, { t: 'ping' });
        return;
      case 'offer':
        this.#onOffer(connection, frame);
        return;
      case 'batch': {
        const id = keyId(frame);
        let cursor = this.cursors.get(id);
        if (cursor === undefined) {
          this.violations.push(`c${connection.id}: batch for ${id} before its offer was answered`);
          return;
        }
        let stored = this.stored.get(id);
        if (stored === undefined) this.stored.set(id, (stored = []));
        for (const message of frame.msgs) {
          if (message.seq <= cursor) {
            this.duplicates++;
            continue;
          }
          if (message.seq !== cursor + 1) this.violations.push(`c${connection.id}: ${id} batch skips from ${cursor} to ${message.seq}`);
          stored.push(message);
          cursor = message.seq;
        }
        this.cursors.set(id, cursor);
        if (this.isAcking) this.#send(connection, { t: 'cursor', stream: frame.stream, incarnation: frame.incarnation, seq: cursor, batch: frame.id });
        return;
      }
      case 'gap': {
        const id = keyId(frame);
        const cursor = this.cursors.get(id) ?? 0;
        if (frame.from !== cursor + 1) this.violations.push(`c${connection.id}: ${id} gap ${frame.from}..${frame.to} after cursor ${cursor}`);
        this.gaps.push(frame);
        this.cursors.set(id, Math.max(cursor, frame.to));
        if (this.isAcking) this.#send(connection, { t: 'cursor', stream: frame.stream, incarnation: frame.incarnation, seq: frame.to, batch: undefined });
        return;
      }
      default:
        return; // cursor / window / error from the leaf: nothing the tests need
    }
  }

  #onHello(connection: FakeHubConnection, hello: HelloFrame): void {
    if (connection.hello !== undefined) {
      this.violations.push(`c${connection.id}: second hello`);
      return;
    }
    connection.hello = hello;
    if (this.options.token !== undefined && hello.token !== this.options.token) {
      this.#send(connection, { t: 'error', code: 'auth', text: 'bad token', stream: undefined });
      connection.ws.close(1008, 'auth');
      return;
    }
    this.#send(connection, {
      t: 'welcome',
      version: 1,
      hub: this.options.name ?? 'fake-hub',
      compression: hello.compression,
      heartbeatMs: Math.max(this.options.heartbeatMs ?? hello.heartbeatMs, hello.heartbeatMs),
      windowBytes: this.options.windowBytes ?? LINK_WINDOW_BYTES_DEFAULT,
    });
  }

  #onOffer(connection: FakeHubConnection, offer: OfferFrame): void {
    const id = keyId(offer);
    const chosen = this.options.cursorFor?.(offer);
    const seq = chosen ?? this.cursors.get(id) ?? 0;
    if (chosen !== undefined) this.cursors.set(id, Math.max(this.cursors.get(id) ?? 0, chosen));
    else if (!this.cursors.has(id)) this.cursors.set(id, 0);
    this.#send(connection, { t: 'cursor', stream: offer.stream, incarnation: offer.incarnation, seq, batch: undefined });
  }

  #send(connection: FakeHubConnection, frame: HubFrame): void {
    if (connection.ws.readyState === connection.ws.OPEN) connection.ws.send(encodeFrame(frame), { binary: true });
  }
}

/** The TCP socket under a ws WebSocket (a private field of ws; fine for a test). */
function socketOf(ws: WebSocket | undefined): Socket | undefined {
  return (ws as unknown as { _socket: Socket | undefined } | undefined)?._socket;
}
