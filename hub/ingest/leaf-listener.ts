/**
 * The hub's listening socket for leaves (hub/ingest/README.md "Transport"): an HTTP server,
 * or an HTTPS one when `leaf_tls` is configured (wss://), with `ws` in noServer mode on its
 * upgrade requests. It hands each WebSocket to the acceptor together with what the transport
 * knows before the leaf's hello: its address, whether the link is TLS, and the subject CN of
 * the client certificate the handshake verified ({@link LeafPeer}).
 *
 * With `verify`, OpenSSL refuses a leaf without a client certificate signed by `leaf_tls_ca`
 * during the handshake (as nats-server does), before any HTTP is read. Every failed TLS
 * handshake is logged (warn, with the remote address and the reason) and counted
 * ({@link LeafListener.tlsFailures}, /leafz `listener.tlsFailures`, /metrics
 * `canopy_hub_link_tls_failures_total`).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { LINK_MESSAGE_BYTES_MAX } from '../../core/link/codec.ts';
import type { HubLinkOptions } from '../../core/server/link-options.ts';
import { tlsFailureReason, type TlsFailureHints } from '../../core/server/tls-material.ts';
import type { Logger } from '../../core/util/logger.ts';

/** ws `maxPayload`: the largest link message plus slack for ws' own accounting. */
export const LEAF_MESSAGE_BYTES_MAX = LINK_MESSAGE_BYTES_MAX + 1024;
/**
 * How long a TLS handshake may take (Node's default is 120 s). nats-server gives leafnode TLS
 * 2 s; a Pi on a poor uplink gets more, and a socket that never finishes holds a descriptor.
 */
export const LEAF_TLS_HANDSHAKE_MS_MAX = 5000;

const LEAF_TLS_FAILURE_HINTS: TlsFailureHints = {
  verifyHint: 'leaf_tls verify requires one',
  plainHint: 'the leaf must use wss://',
  handshakeTimeoutMs: LEAF_TLS_HANDSHAKE_MS_MAX,
};

/** How a leaf connection authenticated: its client certificate, its token, or nothing (a hub without tokens or verify). */
export type LeafAuthMethod = 'token' | 'cert' | 'none';

/** What the transport tells about a leaf connection before its hello. */
export type LeafPeer = {
  /** `address:port` of the leaf's end. */
  readonly remote: string;
  /** The connection is wss:// (TLS). */
  readonly isTls: boolean;
  /** The TLS handshake verified a client certificate against `leaf_tls_ca`. */
  readonly hasVerifiedCert: boolean;
  /** That certificate's subject CN when it has exactly one; undefined otherwise. */
  readonly certName: string | undefined;
};

export type LeafListenerOptions = {
  readonly link: HubLinkOptions;
  readonly log: Logger;
  /** A WebSocket that completed its upgrade. */
  readonly onConnection: (ws: WebSocket, peer: LeafPeer) => void;
};

/** Listens on `link.host`:`link.port` for leaf WebSockets (ws:// or wss://). */
export class LeafListener {
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #log: Logger;
  /** Every accepted TCP socket until it closes (close() destroys what is left: handshakes, idle HTTP). */
  readonly #sockets = new Set<Socket>();
  /** `address:port` of each accepted TCP socket, read on accept: a TLS socket its handshake destroyed no longer knows it. */
  readonly #remotes = new WeakMap<Socket, string>();
  readonly #port: number;
  #tlsFailures = 0;
  #isClosed = false;

  private constructor(server: Server, wss: WebSocketServer, port: number, options: LeafListenerOptions) {
    this.#server = server;
    this.#wss = wss;
    this.#port = port;
    this.#log = options.log;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      this.#remotes.set(socket, remoteOf(socket));
      socket.once('close', () => this.#sockets.delete(socket));
    });
    server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.#isClosed) {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => options.onConnection(ws, peerOf(request)));
    });
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => this.#onTlsFailure(err, socket));
    server.on('error', (err) => this.#log.error({ err }, 'leaf listener failed'));
  }

  static async start(options: LeafListenerOptions): Promise<LeafListener> {
    const { link } = options;
    const tls = link.tls;
    // ws itself answers plain HTTP requests this way when it owns the server.
    const onRequest = (_request: IncomingMessage, response: ServerResponse): void => {
      response.writeHead(426, { 'content-type': 'text/plain' }).end('Upgrade Required: this port takes canopy leaf links (WebSocket)');
    };
    const server: Server =
      tls === undefined
        ? createHttpServer(onRequest)
        : createHttpsServer(
            {
              cert: tls.cert,
              key: tls.key,
              ...(tls.ca === undefined ? {} : { ca: tls.ca }),
              requestCert: tls.isClientCertRequired,
              rejectUnauthorized: tls.isClientCertRequired,
              handshakeTimeout: LEAF_TLS_HANDSHAKE_MS_MAX,
            },
            onRequest,
          );
    const wss = new WebSocketServer({ noServer: true, maxPayload: LEAF_MESSAGE_BYTES_MAX, perMessageDeflate: false, clientTracking: false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(link.port, link.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : (link.port ?? 0);
    return new LeafListener(server, wss, port, options);
  }

  /** The bound port. */
  get port(): number {
    return this.#port;
  }

  /** TLS handshakes that failed since start (wrong or missing client certificate, a client that refused ours, plain ws on the TLS port, timeouts). */
  get tlsFailures(): number {
    return this.#tlsFailures;
  }

  /** Stops listening and destroys the sockets still open (the acceptor closed the leaf links before). */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#wss.close();
    await closed;
  }

  #onTlsFailure(err: Error, socket: TLSSocket): void {
    this.#tlsFailures += 1;
    const code = (err as NodeJS.ErrnoException).code;
    // The TCP socket under the TLS one is `_parent` (a Node internal; '?' if that ever changes).
    const tcp = (socket as TLSSocket & { _parent?: Socket | null })._parent ?? undefined;
    const remote = (tcp === undefined ? undefined : this.#remotes.get(tcp)) ?? remoteOf(socket);
    this.#log.warn({ remote, reason: tlsFailureReason(err, socket, LEAF_TLS_FAILURE_HINTS), code }, 'leaf TLS handshake failed');
  }
}

/** What the socket of an upgraded request says about the leaf. */
function peerOf(request: IncomingMessage): LeafPeer {
  const socket = request.socket;
  const remote = remoteOf(socket);
  if (!(socket instanceof TLSSocket)) return { remote, isTls: false, hasVerifiedCert: false, certName: undefined };
  // `authorized` is true only when a client certificate was asked for (verify) and chains to leaf_tls_ca.
  if (!socket.authorized) return { remote, isTls: true, hasVerifiedCert: false, certName: undefined };
  // A subject with several CN entries comes as an array: it names no single leaf.
  const cn: unknown = socket.getPeerCertificate().subject?.CN;
  return { remote, isTls: true, hasVerifiedCert: true, certName: typeof cn === 'string' ? cn : undefined };
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

