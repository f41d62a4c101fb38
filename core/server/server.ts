/**
 * The NATS core server: listeners (TCP and WebSocket), connections, the sublist,
 * and the read-only snapshots monitoring uses.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ProtocolErrorText } from '../protocol/errors.ts';
import { Sublist } from '../subjects/sublist.ts';
import type { Logger } from '../util/logger.ts';
import { newServerId } from '../util/nuid.ts';
import { Authenticator } from './auth.ts';
import { ClientConnection, type ConnectionHost, type ConnectionKind } from './connection.ts';
import { WEBSOCKET_FRAME_BYTES_MIN, type ServerOptions } from './options.ts';
import { InternalClient } from './internal-client.ts';
import { ClosedReason, ServerStats } from './stats.ts';
import type { Subscription } from './subscription.ts';
import { TcpTransport, WebSocketTransport } from './transports.ts';

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

export type ListenAddresses = {
  readonly port: number;
  readonly websocketPort: number | undefined;
};

export class Server implements ConnectionHost {
  readonly options: ServerOptions;
  readonly serverId: string;
  readonly serverName: string;
  readonly sublist: Sublist<Subscription>;
  readonly stats: ServerStats;
  readonly authenticator: Authenticator | undefined;
  readonly connections: Map<number, ClientConnection>;
  /** Most recent last; bounded by CLOSED_CONNECTIONS_MAX. */
  readonly closedConnections: ClientConnection[];
  readonly startMs: number;
  readonly log: Logger;
  #nextCid: number;
  #infoPrefix: string;
  #tcpServer: NetServer | undefined;
  #websocketHttpServer: HttpServer | undefined;
  #websocketServer: WebSocketServer | undefined;
  #addresses: ListenAddresses | undefined;
  #isShuttingDown: boolean;

  constructor(options: { options: ServerOptions; log: Logger }) {
    this.options = options.options;
    this.serverId = newServerId();
    this.serverName = this.options.serverName === '' ? this.serverId : this.options.serverName;
    this.sublist = new Sublist<Subscription>();
    this.stats = new ServerStats();
    this.authenticator = this.options.auth === undefined ? undefined : new Authenticator(this.options.auth);
    this.connections = new Map();
    this.closedConnections = [];
    this.startMs = Date.now();
    this.log = options.log;
    this.#nextCid = 1;
    this.#infoPrefix = '';
    this.#tcpServer = undefined;
    this.#websocketHttpServer = undefined;
    this.#websocketServer = undefined;
    this.#addresses = undefined;
    this.#isShuttingDown = false;
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
    };
  }

  infoLine(connection: ClientConnection): string {
    const nonce = connection.nonce === undefined ? '' : `,"nonce":"${connection.nonce}"`;
    return `${this.#infoPrefix},"client_id":${connection.cid},"client_ip":${JSON.stringify(connection.remoteAddress)}${nonce}}\r\n`;
  }

  async start(): Promise<ListenAddresses> {
    const tcpServer = createNetServer({ noDelay: true }, (socket) => this.#acceptTcp(socket));
    this.#tcpServer = tcpServer;
    await listen(tcpServer, this.options.port, this.options.host);
    const port = (tcpServer.address() as AddressInfo).port;
    let websocketPort: number | undefined;
    if (this.options.websocketPort !== undefined) {
      const httpServer = createHttpServer((_request, response) => {
        response.writeHead(426, { 'content-type': 'text/plain' }).end('websocket upgrade required\n');
      });
      const websocketServer = new WebSocketServer({
        server: httpServer,
        perMessageDeflate: false,
        maxPayload: Math.max(WEBSOCKET_FRAME_BYTES_MIN, this.options.payloadBytesMax * 2),
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
    const fields = JSON.stringify(this.infoFields());
    this.#infoPrefix = `INFO ${fields.slice(0, -1)}`;
    this.log.info({ host: this.options.host, port, websocket_port: websocketPort }, 'listening for client connections');
    return this.#addresses;
  }

  #acceptTcp(socket: Socket): void {
    socket.on('error', () => {
      // Reported through 'close'; a reset peer is not an operator's problem.
    });
    if (this.#refuseIfFull(socket)) return;
    const connection = this.#newConnection({
      kind: 'tcp',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      transport: new TcpTransport(socket),
    });
    socket.on('data', (chunk: Buffer) => connection.onData(chunk));
    socket.on('drain', () => connection.onDrain());
    socket.on('close', () => connection.close(ClosedReason.clientClosed, { isAbort: true }));
    connection.start();
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
    if (this.connections.size < this.options.connectionsMax && !this.#isShuttingDown) return false;
    this.stats.rejectedConnections++;
    const info = `${this.#infoPrefix},"client_id":0}\r\n`;
    socket.end(`${info}-ERR '${ProtocolErrorText.maxConnectionsExceeded}'\r\n`);
    return true;
  }

  #newConnection(options: {
    kind: ConnectionKind;
    remoteAddress: string;
    remotePort: number;
    transport: TcpTransport | WebSocketTransport;
  }): ClientConnection {
    const cid = this.#nextCid++;
    const connection = new ClientConnection({
      cid,
      kind: options.kind,
      remoteAddress: options.remoteAddress,
      remotePort: options.remotePort,
      host: this,
      transport: options.transport,
      log: this.log.child({ cid, kind: options.kind, remote: `${options.remoteAddress}:${options.remotePort}` }),
    });
    this.connections.set(cid, connection);
    this.stats.totalConnections++;
    return connection;
  }

  /** A client inside the server (JetStream), with its own cid, sharing the sublist and router. */
  createInternalClient(name: string): InternalClient {
    return new InternalClient({ cid: this.#nextCid++, name, sublist: this.sublist });
  }

  onConnectionClosed(connection: ClientConnection): void {
    if (this.connections.get(connection.cid) !== connection) return;
    this.connections.delete(connection.cid);
    this.closedConnections.push(connection);
    if (this.closedConnections.length > CLOSED_CONNECTIONS_MAX) {
      this.closedConnections.splice(0, this.closedConnections.length - CLOSED_CONNECTIONS_MAX);
    }
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
    for (const connection of [...this.connections.values()]) connection.close(ClosedReason.serverShutdown);
    await Promise.race([Promise.all(closing), delay(SHUTDOWN_FLUSH_MS_MAX)]);
    this.#websocketHttpServer?.closeAllConnections();
    this.log.info({}, 'server stopped');
  }
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
