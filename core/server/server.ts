/**
 * The NATS core server: listeners (TCP and WebSocket), connections, the sublist,
 * and the read-only snapshots monitoring uses.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { ProtocolErrorText } from '../protocol/errors.ts';
import { Sublist } from '../subjects/sublist.ts';
import type { Logger } from '../util/logger.ts';
import { newServerId } from '../util/nuid.ts';
import { RingBuffer } from '../util/ring-buffer.ts';
import { AccountRegistry, type Account } from './accounts.ts';
import { Authenticator, newNonce } from './auth.ts';
import { ClientConnection, type ConnectionHost, type ConnectionKind } from './connection.ts';
import { WEBSOCKET_FRAME_BYTES_MIN, type ServerOptions } from './options.ts';
import { InternalClient } from './internal-client.ts';
import { ClosedReason, ServerStats } from './stats.ts';
import type { Subscription } from './subscription.ts';
import { TcpTransport, WebSocketTransport } from './transports.ts';
import type { ClientTlsPeer, ListenerTls } from './listener-tls.ts';
import { tlsFailureReason, type TlsFailureHints } from './tls-material.ts';
import { certIdentityOf } from './cert-identity.ts';
import { diffServerOptions, type OptionsDiff } from './reload.ts';

/**
 * The nats-server version canopy advertises in INFO. nats.js gates features on it
 * (NATS-SPEC.md §7): the core protocol of 2.10 is implemented; JetStream is not
 * enabled yet, which INFO says by omitting `jetstream`.
 */
export const ADVERTISED_NATS_VERSION = '2.10.29';
/** canopy's own version. */
export const CANOPY_VERSION = '0.1.0';
/** How many closed connections /connz?state=closed remembers (nats-server keeps 10,000). */
export const CLOSED_CONNECTIONS_MAX = 10_000;
/** How long shutdown waits for connections to flush before destroying them. */
export const SHUTDOWN_FLUSH_MS_MAX = 2000;

/** The first byte of a TLS record that carries a handshake (a ClientHello starts with it). */
const TLS_RECORD_HANDSHAKE = 0x16;

/** A client-port socket between accept and a finished TLS handshake. */
type PendingHandshake = {
  /** The cid its INFO announced; the connection takes it once the handshake is done. */
  readonly cid: number;
  /** The nonce of that INFO (nkey users configured), which the client signs. */
  readonly nonce: string | undefined;
  readonly socket: Socket;
  readonly remote: string;
  timer: NodeJS.Timeout | undefined;
  /** The client sent a TLS record (a timeout then gets no plain-text -ERR). */
  isTlsStarted: boolean;
  hasFailed: boolean;
};

/** What Server.reload did: applied or refused, the options it changed or refused, the connections it closed. */
export type ReloadOutcome = OptionsDiff & { readonly isApplied: boolean; readonly closedConnections: number };

export type ListenAddresses = {
  readonly port: number;
  readonly websocketPort: number | undefined;
};

export class Server implements ConnectionHost {
  readonly serverId: string;
  readonly serverName: string;
  /** Every account by name (accounts.ts); `accounts.global` is `$G`. */
  readonly accounts: AccountRegistry;
  /** The global account's sublist (`$G`: every client when no accounts are configured). */
  readonly sublist: Sublist<Subscription>;
  readonly stats: ServerStats;
  readonly connections: Map<number, ClientConnection>;
  /** Recently closed connections (/connz state=closed), the oldest dropped past CLOSED_CONNECTIONS_MAX. */
  readonly #closedConnections: RingBuffer<ClientConnection>;
  readonly startMs: number;
  readonly log: Logger;
  /** Swapped whole by reload(): readers take it afresh each time. */
  #options: ServerOptions;
  #authenticator: Authenticator | undefined;
  #nextCid: number;
  #infoPrefix: string;
  #tcpServer: NetServer | undefined;
  #websocketHttpServer: HttpServer | undefined;
  #websocketServer: WebSocketServer | undefined;
  /** Client-port sockets between accept and a finished TLS handshake (shutdown destroys them). */
  readonly #handshakes: Map<Socket, PendingHandshake>;
  #tlsServer: TlsServer | undefined;
  #addresses: ListenAddresses | undefined;
  #isShuttingDown: boolean;

  constructor(options: { options: ServerOptions; log: Logger }) {
    this.#options = options.options;
    this.serverId = newServerId();
    this.serverName = this.options.serverName === '' ? this.serverId : this.options.serverName;
    this.#nextCid = 1;
    this.accounts = new AccountRegistry({ configs: this.options.accounts, newCid: () => this.#nextCid++, log: options.log });
    this.sublist = this.accounts.global.sublist;
    this.stats = new ServerStats();
    this.#authenticator = this.#options.auth === undefined ? undefined : new Authenticator(this.#options.auth);
    this.connections = new Map();
    this.#closedConnections = new RingBuffer(CLOSED_CONNECTIONS_MAX);
    this.startMs = Date.now();
    this.log = options.log;
    this.#infoPrefix = '';
    this.#tcpServer = undefined;
    this.#websocketHttpServer = undefined;
    this.#websocketServer = undefined;
    this.#handshakes = new Map();
    this.#tlsServer = undefined;
    this.#addresses = undefined;
    this.#isShuttingDown = false;
  }

  /** Recently closed connections, most recent last (a copy: monitoring reads it, rarely). */
  get closedConnections(): readonly ClientConnection[] {
    return this.#closedConnections.toArray();
  }

  get closedConnectionsCount(): number {
    return this.#closedConnections.size;
  }

  /** The running configuration (reload() replaces it). */
  get options(): ServerOptions {
    return this.#options;
  }

  /** Set when client authentication is configured (reload() replaces it). */
  get authenticator(): Authenticator | undefined {
    return this.#authenticator;
  }

  /**
   * Applies a reloaded configuration (reload.ts says what may change). Refused whole, with one
   * error line naming the options, when any of them needs a restart. Otherwise the new options
   * replace the old: limits apply at once or to new connections, new TLS handshakes use the new
   * files (established connections keep theirs), and when the users or TLS changed every
   * connection is checked again (ClientConnection.reauthorize). One info line says what changed.
   */
  reload(next: ServerOptions): ReloadOutcome {
    const diff = diffServerOptions(this.#options, next);
    if (diff.refused.length > 0) {
      this.log.error({ refused: diff.refused, changed: diff.changed }, 'configuration reload refused: these options need a restart; the running configuration is kept');
      return { isApplied: false, ...diff, closedConnections: 0 };
    }
    const previous = this.#options;
    this.#options = next;
    if (next.logLevel !== previous.logLevel) this.log.setLevel?.(next.logLevel);
    const isAuthChanged = !isDeepStrictEqual(previous.auth, next.auth) || !isDeepStrictEqual(previous.tls, next.tls);
    if (isAuthChanged) this.#authenticator = next.auth === undefined ? undefined : new Authenticator(next.auth, this.#authenticator);
    // New handshakes use the new files: the client port's runner is made again on first use,
    // the wss:// listener swaps its context (verify is fixed: reload.ts).
    if (!isDeepStrictEqual(previous.tls, next.tls)) this.#tlsServer = undefined;
    if (next.websocketTls !== undefined && !isDeepStrictEqual(previous.websocketTls, next.websocketTls)) {
      (this.#websocketHttpServer as TlsServer | undefined)?.setSecureContext(tlsServerMaterial(next.websocketTls));
    }
    // ws reads its options at each upgrade: new WebSocket clients get the new frame ceiling.
    if (this.#websocketServer !== undefined) this.#websocketServer.options.maxPayload = websocketFrameBytesMax(next.payloadBytesMax);
    if (this.#addresses !== undefined) this.#infoPrefix = `INFO ${JSON.stringify(this.infoFields()).slice(0, -1)}`;
    let closedConnections = 0;
    if (isAuthChanged) {
      for (const connection of [...this.connections.values()]) {
        if (!connection.reauthorize(this.#authenticator)) closedConnections++;
      }
    }
    this.log.info({ changed: diff.changed, closed_connections: closedConnections }, diff.changed.length === 0 ? 'configuration reloaded: nothing changed' : 'configuration reloaded');
    return { isApplied: true, ...diff, closedConnections };
  }

  /** Ports actually bound (useful with port 0). Throws before start(). */
  get addresses(): ListenAddresses {
    if (this.#addresses === undefined) throw new Error('server not started');
    return this.#addresses;
  }

  /** The INFO fields every connection shares (NATS-SPEC.md §1.4). */
  infoFields(): Record<string, unknown> {
    return {
      server_id: this.serverId,
      server_name: this.serverName,
      version: ADVERTISED_NATS_VERSION,
      proto: 1,
      go: `canopy ${CANOPY_VERSION} node ${process.version}`,
      host: this.options.host,
      port: this.#addresses?.port ?? this.options.port,
      headers: true,
      max_payload: this.options.payloadBytesMax,
      ...(this.options.isJetStreamEnabled ? { jetstream: true } : {}),
      ...(this.authenticator !== undefined ? { auth_required: true } : {}),
      // NATS-SPEC.md §1.4: the node transport upgrades to TLS on tls_required; tls_verify says a client certificate is needed.
      ...(this.options.tls === undefined ? {} : { tls_required: true }),
      ...(this.options.tls?.isClientCertRequired === true ? { tls_verify: true } : {}),
    };
  }

  infoLine(connection: ClientConnection): string {
    return this.#infoLineFor({ cid: connection.cid, remoteAddress: connection.remoteAddress, nonce: connection.nonce });
  }

  #infoLineFor(client: { cid: number; remoteAddress: string; nonce: string | undefined }): string {
    const nonce = client.nonce === undefined ? '' : `,"nonce":"${client.nonce}"`;
    return `${this.#infoPrefix},"client_id":${client.cid},"client_ip":${JSON.stringify(client.remoteAddress)}${nonce}}\r\n`;
  }

  async start(): Promise<ListenAddresses> {
    const tcpServer = createNetServer({ noDelay: true }, (socket) => this.#acceptTcp(socket));
    this.#tcpServer = tcpServer;
    await listen(tcpServer, this.options.port, this.options.host);
    const port = (tcpServer.address() as AddressInfo).port;
    let websocketPort: number | undefined;
    if (this.options.websocketPort !== undefined) {
      const httpServer = this.#createWebSocketHttpServer(this.options.websocketTls);
      const websocketServer = new WebSocketServer({
        server: httpServer,
        perMessageDeflate: false,
        maxPayload: websocketFrameBytesMax(this.options.payloadBytesMax),
      });
      websocketServer.on('connection', (socket, request) =>
        this.#acceptWebSocket(socket, request.socket.remoteAddress ?? '', request.socket.remotePort ?? 0),
      );
      websocketServer.on('error', (err) => this.log.error({ err }, 'websocket server error'));
      this.#websocketHttpServer = httpServer;
      this.#websocketServer = websocketServer;
      await listen(httpServer, this.options.websocketPort, this.options.websocketHost);
      websocketPort = (httpServer.address() as AddressInfo).port;
    }
    this.#addresses = { port, websocketPort };
    this.#infoPrefix = `INFO ${JSON.stringify(this.infoFields()).slice(0, -1)}`;
    this.log.info(
      { host: this.options.host, port, websocket_port: websocketPort, tls: this.options.tls !== undefined, websocket_tls: this.options.websocketTls !== undefined },
      'listening for client connections',
    );
    return this.#addresses;
  }

  /** The WebSocket port's HTTP(S) server: plain requests get 426; with `websocket.tls` it serves wss://. */
  #createWebSocketHttpServer(tls: ListenerTls | undefined): HttpServer {
    const onRequest = (_request: IncomingMessage, response: ServerResponse): void => {
      response.writeHead(426, { 'content-type': 'text/plain' }).end('websocket upgrade required\n');
    };
    if (tls === undefined) return createHttpServer(onRequest);
    const server = createHttpsServer(
      {
        ...tlsServerMaterial(tls),
        requestCert: tls.isClientCertRequired,
        rejectUnauthorized: tls.isClientCertRequired,
        handshakeTimeout: tls.handshakeTimeoutMs,
      },
      onRequest,
    );
    const hints: TlsFailureHints = { verifyHint: 'websocket.tls verify requires one', plainHint: 'use wss://', handshakeTimeoutMs: tls.handshakeTimeoutMs };
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.#onTlsFailure({ listener: 'websocket', remote: remoteOf(socket), reason: tlsFailureReason(err, socket, hints), code: (err as NodeJS.ErrnoException).code });
    });
    return server;
  }

  #acceptTcp(socket: Socket): void {
    socket.on('error', () => {
      // Reported through 'close'; a reset peer is not an operator's problem.
    });
    if (this.#refuseIfFull(socket)) return;
    const tls = this.options.tls;
    if (tls === undefined) this.#startTcpConnection({ socket, readable: socket, cid: this.#nextCid++, isInfoSent: false, tlsPeer: undefined });
    else this.#acceptTls(socket, tls);
  }

  #startTcpConnection(options: { socket: Socket; readable: Socket; cid: number; nonce?: string | undefined; isInfoSent: boolean; tlsPeer: ClientTlsPeer | undefined }): void {
    const { socket, readable } = options;
    const connection = this.#newConnection({
      cid: options.cid,
      kind: 'tcp',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      transport: new TcpTransport(readable),
      tlsPeer: options.tlsPeer,
      nonce: options.nonce,
    });
    readable.on('data', (chunk: Buffer) => connection.onData(chunk));
    readable.on('drain', () => connection.onDrain());
    readable.on('close', () => connection.close(ClosedReason.clientClosed, { isAbort: true }));
    connection.start({ isInfoSent: options.isInfoSent });
  }

  /**
   * NATS TLS order (NATS-SPEC.md §1.4; nats-server client.go createClient): INFO with
   * `tls_required` goes out in plain text, then the client starts the handshake. The first
   * byte the client sends tells which it did: a TLS record, or plain text (CONNECT), which
   * gets `-ERR 'Secure Connection - TLS Required'` (NATS-SPEC.md §1.9) instead of an OpenSSL
   * error it cannot read. A TLS record goes back into the socket, and the socket is handed to
   * a tls.Server that never listens (Node's documented way to inject a connection): it runs
   * the handshake and checks the client certificate as for any TLS listener, and reports
   * through #onSecureConnection or its 'tlsClientError'. The connection exists once the
   * handshake is done; until then the socket is in #handshakes (counted against
   * max_connections). `tls.timeout` bounds the whole exchange. With `handshake_first` the
   * client starts with the handshake and INFO follows it, encrypted.
   */
  #acceptTls(socket: Socket, tls: ListenerTls): void {
    const remote = remoteOf(socket);
    const nonce = this.authenticator?.isNonceRequired === true ? newNonce() : undefined;
    const handshake: PendingHandshake = { cid: this.#nextCid++, nonce, socket, remote, timer: undefined, isTlsStarted: false, hasFailed: false };
    this.#handshakes.set(socket, handshake);
    socket.once('close', () => {
      clearTimeout(handshake.timer);
      // The TLS layer reports after the TCP socket closed (a rejected certificate, a client that
      // refused ours): give its 'tlsClientError' the turn, then count what is still unexplained.
      setImmediate(() => {
        if (this.#handshakes.get(socket) !== handshake) return;
        this.#failHandshake(handshake, { reason: 'the client closed the connection during the handshake', code: 'ECONNRESET' });
      });
    });
    handshake.timer = setTimeout(() => {
      // nats-server parity: a client that never started the handshake is told in plain text.
      this.#failHandshake(handshake, { reason: `no TLS handshake within ${tls.handshakeTimeoutMs} ms`, code: 'ERR_TLS_HANDSHAKE_TIMEOUT', isGraceful: !handshake.isTlsStarted });
    }, tls.handshakeTimeoutMs);
    handshake.timer.unref();
    // handshake_first: INFO waits for the handshake and goes out encrypted.
    if (!tls.isHandshakeFirst) socket.write(this.#infoLineFor({ cid: handshake.cid, remoteAddress: socket.remoteAddress ?? '', nonce: handshake.nonce }));
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      if (chunk[0] !== TLS_RECORD_HANDSHAKE) {
        this.#failHandshake(handshake, { reason: 'plain text on the TLS port (the client must use TLS)', code: 'ERR_TLS_REQUIRED', isGraceful: true });
        return;
      }
      handshake.isTlsStarted = true;
      // The ClientHello goes back into the stream: the TLSSocket reads what the socket already buffered.
      socket.unshift(chunk);
      this.#clientTlsServer(tls).emit('connection', socket);
    });
  }

  /** The client port's handshake runner (see #acceptTls), made on first use. */
  #clientTlsServer(tls: ListenerTls): TlsServer {
    if (this.#tlsServer !== undefined) return this.#tlsServer;
    const server = createTlsServer({
      ...tlsServerMaterial(tls),
      requestCert: tls.isClientCertRequired,
      rejectUnauthorized: tls.isClientCertRequired,
      handshakeTimeout: tls.handshakeTimeoutMs,
    });
    const hints: TlsFailureHints = { verifyHint: 'tls verify requires one', plainHint: 'the client must use TLS', handshakeTimeoutMs: tls.handshakeTimeoutMs };
    server.on('secureConnection', (secure: TLSSocket) => this.#onSecureConnection(secure));
    server.on('tlsClientError', (err: Error, secure: TLSSocket) => {
      const failure = { reason: tlsFailureReason(err, secure, hints), code: (err as NodeJS.ErrnoException).code };
      const handshake = this.#handshakeOf(secure);
      if (handshake !== undefined) this.#failHandshake(handshake, failure);
      secure.destroy();
    });
    this.#tlsServer = server;
    return server;
  }

  /** The pending handshake a TLSSocket of #clientTlsServer belongs to. */
  #handshakeOf(secure: TLSSocket): PendingHandshake | undefined {
    // The TCP socket under a TLS one is `_parent` (a Node internal); by address if that ever changes.
    const parent = (secure as TLSSocket & { _parent?: Socket | null })._parent ?? undefined;
    if (parent !== undefined) return this.#handshakes.get(parent);
    const remote = remoteOf(secure);
    for (const handshake of this.#handshakes.values()) if (handshake.remote === remote) return handshake;
    return undefined;
  }

  #onSecureConnection(secure: TLSSocket): void {
    const handshake = this.#handshakeOf(secure);
    if (handshake === undefined || handshake.hasFailed || this.#isShuttingDown) {
      secure.destroy();
      return;
    }
    clearTimeout(handshake.timer);
    this.#handshakes.delete(handshake.socket);
    secure.on('error', () => {
      // Reported through 'close', as for plain sockets.
    });
    const isInfoSent = this.options.tls?.isHandshakeFirst !== true;
    this.#startTcpConnection({ socket: handshake.socket, readable: secure, cid: handshake.cid, nonce: handshake.nonce, isInfoSent, tlsPeer: tlsPeerOf(secure) });
  }

  /** Counts and logs a failed handshake once, and closes its socket (after an -ERR when `isGraceful`). */
  #failHandshake(handshake: PendingHandshake, failure: { reason: string; code: string | undefined; isGraceful?: boolean }): void {
    clearTimeout(handshake.timer);
    if (handshake.hasFailed) return;
    handshake.hasFailed = true;
    this.#handshakes.delete(handshake.socket);
    if (this.#isShuttingDown) {
      handshake.socket.destroy();
      return;
    }
    this.#onTlsFailure({ listener: 'client', remote: handshake.remote, reason: failure.reason, code: failure.code });
    if (failure.isGraceful !== true) {
      handshake.socket.destroy();
      return;
    }
    handshake.socket.end(`-ERR '${ProtocolErrorText.secureConnectionTlsRequired}'\r\n`);
    setTimeout(() => handshake.socket.destroy(), SHUTDOWN_FLUSH_MS_MAX).unref();
  }

  #onTlsFailure(failure: { listener: 'client' | 'websocket'; remote: string; reason: string; code: string | undefined }): void {
    this.stats.tlsHandshakeFailures++;
    this.log.warn(failure, 'client TLS handshake failed');
  }

  #acceptWebSocket(socket: WebSocket, remoteAddress: string, remotePort: number): void {
    socket.on('error', () => {
      // ws closes the socket after an error (bad frame, frame over maxPayload); 'close' follows.
    });
    if (this.connections.size >= this.options.connectionsMax || this.#isShuttingDown) {
      this.stats.rejectedConnections++;
      socket.close(1008, 'maximum connections exceeded');
      return;
    }
    let connection: ClientConnection | undefined;
    const transport = new WebSocketTransport(socket, () => connection?.onDrain());
    connection = this.#newConnection({ kind: 'websocket', remoteAddress, remotePort, transport });
    const accepted = connection;
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => accepted.onData(toBuffer(data)));
    socket.on('close', () => accepted.close(ClosedReason.clientClosed, { isAbort: true }));
    accepted.start();
  }

  /** nats-server parity: server.go createClient sends INFO, then the error, then closes. */
  #refuseIfFull(socket: Socket): boolean {
    if (this.connections.size + this.#handshakes.size < this.options.connectionsMax && !this.#isShuttingDown) return false;
    this.stats.rejectedConnections++;
    const info = `${this.#infoPrefix},"client_id":0}\r\n`;
    socket.end(`${info}-ERR '${ProtocolErrorText.maxConnectionsExceeded}'\r\n`);
    return true;
  }

  #newConnection(options: {
    cid?: number;
    kind: ConnectionKind;
    remoteAddress: string;
    remotePort: number;
    transport: TcpTransport | WebSocketTransport;
    tlsPeer?: ClientTlsPeer | undefined;
    nonce?: string | undefined;
  }): ClientConnection {
    const cid = options.cid ?? this.#nextCid++;
    const connection = new ClientConnection({
      cid,
      tlsPeer: options.tlsPeer,
      nonce: options.nonce,
      kind: options.kind,
      remoteAddress: options.remoteAddress,
      remotePort: options.remotePort,
      host: this,
      transport: options.transport,
      log: this.log,
    });
    this.connections.set(cid, connection);
    this.stats.totalConnections++;
    return connection;
  }

  /** A client inside the server (JetStream), with its own cid, in `account`'s sublist (default `$G`). */
  createInternalClient(name: string, account: Account = this.accounts.global): InternalClient {
    return new InternalClient({ cid: this.#nextCid++, name, sublist: account.sublist });
  }

  onConnectionClosed(connection: ClientConnection): void {
    if (this.connections.get(connection.cid) !== connection) return;
    this.connections.delete(connection.cid);
    this.#closedConnections.push(connection);
  }

  /** Stops accepting, flushes every connection, closes them, and resolves when all are closed. */
  async shutdown(): Promise<void> {
    if (this.#isShuttingDown) return;
    this.#isShuttingDown = true;
    this.log.info({ connections: this.connections.size }, 'shutting down');
    const closing: Promise<void>[] = [];
    if (this.#tcpServer !== undefined) closing.push(closeServer(this.#tcpServer));
    if (this.#websocketServer !== undefined) {
      const websocketServer = this.#websocketServer;
      closing.push(new Promise((resolve) => websocketServer.close(() => resolve())));
    }
    if (this.#websocketHttpServer !== undefined) closing.push(closeServer(this.#websocketHttpServer));
    for (const handshake of this.#handshakes.values()) handshake.socket.destroy();
    this.#handshakes.clear();
    for (const connection of [...this.connections.values()]) connection.close(ClosedReason.serverShutdown);
    await Promise.race([Promise.all(closing), delay(SHUTDOWN_FLUSH_MS_MAX)]);
    this.#websocketHttpServer?.closeAllConnections();
    this.log.info({}, 'server stopped');
  }
}

/** The largest WebSocket frame a client may send: a payload and its control line, with room to batch. */
function websocketFrameBytesMax(payloadBytesMax: number): number {
  return Math.max(WEBSOCKET_FRAME_BYTES_MIN, payloadBytesMax * 2);
}

/** A listener's certificate, key and CA as tls.createServer options. */
function tlsServerMaterial(tls: ListenerTls): { cert: Buffer; key: Buffer; ca?: Buffer } {
  return { cert: tls.cert, key: tls.key, ...(tls.ca === undefined ? {} : { ca: tls.ca }) };
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

/** What a finished handshake established (the auth hook's input, /connz's tls fields). */
function tlsPeerOf(socket: TLSSocket): ClientTlsPeer {
  const cipher = socket.getCipher();
  const cert = socket.authorized ? socket.getPeerX509Certificate() : undefined;
  const certIdentity = cert === undefined ? undefined : certIdentityOf(cert);
  const cn = cert === undefined ? undefined : (socket.getPeerCertificate().subject as Record<string, string | string[]> | undefined)?.['CN'];
  return {
    version: socket.getProtocol() ?? '',
    cipherSuite: cipher.standardName ?? cipher.name,
    certSubject: certIdentity?.subject,
    certCn: typeof cn === 'string' ? cn : undefined,
    certIdentity,
  };
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function listen(server: NetServer | HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: NetServer | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
