/**
 * PeerTransport: Raft messages between hub nodes over WebSocket (ws), CBOR frames
 * (wire.ts), authenticated by a shared cluster secret.
 *
 * - **Connections are one-way.** Each node dials every peer it knows an address for and
 *   sends on that connection only; what it receives arrives on connections its peers
 *   dialed. So a proxy or a partition between A→B affects exactly that direction, and
 *   a fault test can cut links one direction at a time.
 * - **Loss is allowed, waiting is not.** Raft tolerates lost messages (it retries on
 *   heartbeats and timeouts), so while a peer is unreachable its messages are dropped
 *   and counted, never queued without bound. A connection whose socket buffer holds
 *   more than {@link RAFT_PEER_BUFFERED_BYTES_MAX} drops new batches too.
 * - **Authentication** (wire.ts): the server sends a fresh nonce; the client answers
 *   with its node id and an HMAC of (cluster id, node id, nonce) under the secret. A
 *   wrong MAC, another cluster, or no hello within {@link RAFT_PEER_HELLO_TIMEOUT_MS}
 *   closes the connection with a log line saying why. The secret never crosses the
 *   wire. (Confidentiality is not covered: run the peer port on a private network.)
 * - Reconnects back off from {@link RAFT_PEER_RECONNECT_MIN_MS} to
 *   {@link RAFT_PEER_RECONNECT_MAX_MS}.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { wsMessageBytes } from '../../core/link-host/message-bytes.ts';
import type { Logger } from '../../core/util/logger.ts';
import type { Message, NodeId } from '../raft/index.ts';
import { decodePeerFrame, encodePeerFrame, RAFT_PEER_FRAME_BYTES_MAX, type PeerFrame } from './wire.ts';

/** A connection must authenticate within this long. */
export const RAFT_PEER_HELLO_TIMEOUT_MS = 5_000;
/** Bytes a peer connection may hold unsent before new batches for it are dropped. */
export const RAFT_PEER_BUFFERED_BYTES_MAX = 64 * 1024 * 1024;
export const RAFT_PEER_RECONNECT_MIN_MS = 50;
export const RAFT_PEER_RECONNECT_MAX_MS = 1_000;
const NONCE_BYTES = 16;
const MAC_LABEL = 'canopy-raft-v1';

export type PeerTransportStats = {
  sentMsgs: number;
  receivedMsgs: number;
  droppedMsgs: number;
  authFailures: number;
  connects: number;
};

export type PeerTransportOptions = {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly secret: Uint8Array;
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  /** Called for every message of an authenticated peer. */
  readonly onMessages: (messages: readonly Message[]) => void;
};

/**
 * WebSocket clients must mask their frames (RFC 6455 §5.3) so that a browser page cannot
 * shape bytes a caching proxy would misread. Between authenticated hub nodes that threat
 * does not exist, and an all-zero mask lets ws skip the XOR pass over every outgoing byte
 * (4 % of a leader's CPU in `npm run bench:raft`).
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

function helloMac(secret: Uint8Array, clusterId: string, nodeId: NodeId, nonce: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${MAC_LABEL}\0${clusterId}\0${nodeId}\0`).update(nonce).digest();
}

/** One outbound connection to one peer, re-dialed while the peer is known. */
class PeerLink {
  #socket: WebSocket | undefined;
  #isReady = false;
  #retryMs = RAFT_PEER_RECONNECT_MIN_MS;
  #timer: NodeJS.Timeout | undefined;
  #isClosed = false;

  constructor(
    readonly peerId: NodeId,
    readonly url: string,
    private readonly transport: PeerTransport,
  ) {
    this.#dial();
  }

  /** Sends `frame` if the connection is up and not backed up; false if dropped. */
  send(bytes: Uint8Array): boolean {
    const socket = this.#socket;
    if (!this.#isReady || socket === undefined || socket.bufferedAmount > RAFT_PEER_BUFFERED_BYTES_MAX) return false;
    socket.send(bytes);
    return true;
  }

  close(): void {
    this.#isClosed = true;
    clearTimeout(this.#timer);
    this.#socket?.terminate();
  }

  #dial(): void {
    const options = this.transport.options;
    const socket = new WebSocket(this.url, { maxPayload: RAFT_PEER_FRAME_BYTES_MAX, perMessageDeflate: false, generateMask: zeroMask });
    this.#socket = socket;
    socket.binaryType = 'nodebuffer';
    socket.on('message', (data: Buffer) => {
      const frame = decodePeerFrame(wsMessageBytes(data));
      if (typeof frame === 'string' || frame.t !== 'challenge' || this.#isReady) {
        options.log.warn({ peer: this.peerId, problem: typeof frame === 'string' ? frame : `unexpected ${frame.t}` }, 'raft peer: bad frame from server; closing');
        socket.terminate();
        return;
      }
      const mac = helloMac(options.secret, options.clusterId, options.nodeId, frame.nonce);
      socket.send(encodePeerFrame({ t: 'hello', cluster: options.clusterId, from: options.nodeId, mac }));
      this.#isReady = true;
      this.#retryMs = RAFT_PEER_RECONNECT_MIN_MS;
      this.transport.stats.connects += 1;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#isReady = false;
      this.#socket = undefined;
      if (this.#isClosed) return;
      this.#timer = setTimeout(() => this.#dial(), this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, RAFT_PEER_RECONNECT_MAX_MS);
    });
  }
}

export class PeerTransport {
  readonly stats: PeerTransportStats = { sentMsgs: 0, receivedMsgs: 0, droppedMsgs: 0, authFailures: 0, connects: 0 };
  readonly #links = new Map<NodeId, PeerLink>();
  readonly #server: WebSocketServer;

  private constructor(
    readonly options: PeerTransportOptions,
    server: WebSocketServer,
  ) {
    this.#server = server;
    server.on('connection', (socket) => this.#accept(socket));
  }

  static async listen(options: PeerTransportOptions): Promise<PeerTransport> {
    const server = new WebSocketServer({ host: options.host, port: options.port, maxPayload: RAFT_PEER_FRAME_BYTES_MAX, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return new PeerTransport(options, server);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Sets where peer `id` is reached (dials it); an unchanged address keeps the connection. */
  setPeer(id: NodeId, url: string): void {
    if (id === this.options.nodeId) return;
    const link = this.#links.get(id);
    if (link?.url === url) return;
    link?.close();
    this.#links.set(id, new PeerLink(id, url, this));
  }

  removePeer(id: NodeId): void {
    this.#links.get(id)?.close();
    this.#links.delete(id);
  }

  peers(): ReadonlyMap<NodeId, string> {
    return new Map([...this.#links].map(([id, link]) => [id, link.url]));
  }

  /** Sends `messages` (one Ready's), one frame per destination. */
  send(messages: readonly Message[]): void {
    const byPeer = new Map<NodeId, Message[]>();
    for (const message of messages) {
      const list = byPeer.get(message.to);
      if (list === undefined) byPeer.set(message.to, [message]);
      else list.push(message);
    }
    for (const [to, list] of byPeer) {
      const link = this.#links.get(to);
      if (link !== undefined && link.send(encodePeerFrame({ t: 'msgs', msgs: list }))) this.stats.sentMsgs += list.length;
      else this.stats.droppedMsgs += list.length;
    }
  }

  async close(): Promise<void> {
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    for (const socket of this.#server.clients) socket.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: WebSocket): void {
    const { log, secret, clusterId } = this.options;
    const nonce = randomBytes(NONCE_BYTES);
    let peer: NodeId | undefined;
    const timer = setTimeout(() => refuse('no hello in time'), RAFT_PEER_HELLO_TIMEOUT_MS);
    const refuse = (reason: string): void => {
      this.stats.authFailures += peer === undefined ? 1 : 0;
      log.warn({ reason, peer }, 'raft peer: connection refused');
      socket.terminate();
    };
    socket.on('error', () => {});
    socket.on('close', () => clearTimeout(timer));
    socket.on('message', (data: Buffer) => {
      const frame: PeerFrame | string = decodePeerFrame(wsMessageBytes(data));
      if (typeof frame === 'string') return refuse(frame);
      if (peer === undefined) {
        if (frame.t !== 'hello') return refuse(`${frame.t} before hello`);
        if (frame.cluster !== clusterId) return refuse(`cluster "${frame.cluster}" is not ours ("${clusterId}")`);
        const expected = helloMac(secret, clusterId, frame.from, nonce);
        if (frame.mac.length !== expected.length || !timingSafeEqual(frame.mac, expected)) return refuse(`node ${frame.from}: wrong cluster secret`);
        clearTimeout(timer);
        peer = frame.from;
        return;
      }
      if (frame.t !== 'msgs') return refuse(`unexpected ${frame.t}`);
      const from = peer;
      // A peer speaks only for itself: a message claiming another sender is refused with its frame.
      if (frame.msgs.some((message) => message.from !== from)) return refuse(`node ${from} sent a message as another node`);
      this.stats.receivedMsgs += frame.msgs.length;
      this.options.onMessages(frame.msgs);
    });
    socket.send(encodePeerFrame({ t: 'challenge', nonce }));
  }
}
