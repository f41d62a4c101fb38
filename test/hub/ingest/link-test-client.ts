/**
 * Test helpers for the hub's leaf ingest: a hub on free loopback ports (real sockets, real
 * LMDB in a temp dir) and a small raw link client (ws + the codec + frames; no leaf code),
 * so a test says exactly which frames a leaf sends, in which order, and sees every answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { WebSocket, type ClientOptions } from 'ws';
import { decodeHubFrame, encodeFrame } from '../../../core/link/codec.ts';
import type { HubFrame, LeafFrame, LinkMessage, StreamKey } from '../../../core/link/index.ts';
import { resolveLinkOptions, type HubLinkOptions } from '../../../core/server/link-options.ts';
import { resolveServerOptions } from '../../../core/server/options.ts';
import { silentLogger, type Logger } from '../../../core/util/logger.ts';
import { startHub, type Hub } from '../../../hub/main.ts';

export type TestHub = {
  readonly hub: Hub;
  /** ws://127.0.0.1:<leaf port> (wss:// with `tls`) */
  readonly linkUrl: string;
  /** nats://127.0.0.1:<client port> */
  readonly natsUrl: string;
  readonly storeDir: string;
  close(): Promise<void>;
};

export type TestHubConfig = {
  /** Reuse a store_dir (restart tests); a new temp dir (removed by close) otherwise. */
  readonly storeDir?: string;
  /** Leaf name → token; none: no token required. */
  readonly tokens?: Readonly<Record<string, string>>;
  /** link_heartbeat, e.g. '200ms'. */
  readonly heartbeat?: string;
  readonly log?: Logger;
  /** The `leaf_tls` block (cert_file, key_file, ca_file, verify): the listener serves wss://. */
  readonly tls?: Readonly<Record<string, unknown>>;
};

export async function startTestHub(config: TestHubConfig = {}): Promise<TestHub> {
  const isOwnStoreDir = config.storeDir === undefined;
  const storeDir = config.storeDir ?? mkdtempSync(join(tmpdir(), 'canopy-hub-test-'));
  const options = resolveServerOptions({ store_dir: storeDir, addr: '127.0.0.1', port: -1, http_port: 0, websocket_port: 0, server_name: 'hub-test' });
  const link = resolveLinkOptions('hub', {
    leaf_port: -1,
    leaf_host: '127.0.0.1',
    ...(config.tokens === undefined ? {} : { leaf_tokens: config.tokens }),
    ...(config.heartbeat === undefined ? {} : { link_heartbeat: config.heartbeat }),
    ...(config.tls === undefined ? {} : { leaf_tls: config.tls }),
  }) as HubLinkOptions;
  const hub = await startHub({ options, link, log: config.log ?? silentLogger });
  return {
    hub,
    linkUrl: `${config.tls === undefined ? 'ws' : 'wss'}://127.0.0.1:${hub.acceptor!.port}`,
    natsUrl: `nats://127.0.0.1:${hub.broker.server.addresses.port}`,
    storeDir,
    close: async () => {
      await hub.close();
      if (isOwnStoreDir) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/** A random incarnation id as leaves make them (16 bytes, hex). */
export function newIncarnation(): string {
  let hex = '';
  for (let i = 0; i < 32; i++) hex += Math.floor(Math.random() * 16).toString(16);
  return hex;
}

/** Messages `from … to` on `subject`: payload `m<seq>`, timestamps 1 ms apart from a fixed origin. */
export function messages(from: number, to: number, subject = 'sensors.temp', headers?: Uint8Array): LinkMessage[] {
  const msgs: LinkMessage[] = [];
  for (let seq = from; seq <= to; seq++) {
    msgs.push({ seq, subject, headers, data: Buffer.from(`m${seq}`), timestampNs: 1_700_000_000_000_000_000n + BigInt(seq) * 1_000_000n });
  }
  return msgs;
}

type Waiter = { readonly resolve: (frame: HubFrame) => void; readonly reject: (error: Error) => void };

/** A leaf's end of one link connection, driven by hand. */
export class LinkTestClient {
  readonly ws: WebSocket;
  /** Frames received and not yet taken (pings excluded unless asked for). */
  readonly frames: HubFrame[] = [];
  readonly pings: number[] = [];
  readonly closed: Promise<number>;
  #waiter: Waiter | undefined = undefined;
  #keepAlive: NodeJS.Timeout | undefined = undefined;
  #isClosed = false;
  #batchId = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code) => {
        this.#isClosed = true;
        if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive);
        this.#waiter?.reject(new Error(`connection closed (${code}) while waiting for a frame`));
        this.#waiter = undefined;
        resolve(code);
      });
    });
    ws.on('message', (data) => {
      const frame = decodeHubFrame(data as Buffer);
      if (frame.t === 'ping') {
        this.pings.push(Date.now());
        return;
      }
      const waiter = this.#waiter;
      if (waiter !== undefined) {
        this.#waiter = undefined;
        waiter.resolve(frame);
      } else {
        this.frames.push(frame);
      }
    });
    ws.on('error', () => undefined); // the close event reports it
  }

  /** `tls`: socket options for wss:// (ca, cert, key). */
  static async open(url: string, tls: ClientOptions = {}): Promise<LinkTestClient> {
    const ws = new WebSocket(url, { ...tls, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new LinkTestClient(ws);
  }

  /** Opens a connection and says hello; resolves with the welcome (throws on anything else). */
  static async connect(
    url: string,
    leaf: string,
    options: { token?: string; heartbeatMs?: number; compression?: boolean; keepAliveMs?: number; tls?: ClientOptions } = {},
  ): Promise<LinkTestClient> {
    const client = await LinkTestClient.open(url, options.tls);
    const welcome = await client.hello(leaf, options);
    if (welcome.t !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`);
    if (options.keepAliveMs !== 0) client.keepAlive(options.keepAliveMs ?? 500);
    return client;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  hello(leaf: string, options: { token?: string; heartbeatMs?: number; compression?: boolean } = {}): Promise<HubFrame> {
    this.send({ t: 'hello', versions: [1], leaf, token: options.token, compression: options.compression ?? false, heartbeatMs: options.heartbeatMs ?? 5000, windowBytes: 2 * 1024 * 1024 });
    return this.next();
  }

  /** Sends a ping every `intervalMs` (a live leaf). */
  keepAlive(intervalMs: number): void {
    this.#keepAlive = setInterval(() => {
      if (!this.#isClosed) this.send({ t: 'ping' });
    }, intervalMs);
    this.#keepAlive.unref();
  }

  send(frame: LeafFrame, options: { compress?: boolean } = {}): void {
    this.ws.send(encodeFrame(frame, { compress: options.compress ?? false }));
  }

  sendRaw(bytes: Uint8Array | string, options: { binary?: boolean } = {}): void {
    this.ws.send(bytes, { binary: options.binary ?? typeof bytes !== 'string' });
  }

  offer(key: StreamKey, firstSeq: number, lastSeq: number): void {
    this.send({ t: 'offer', ...key, firstSeq, lastSeq });
  }

  /** Sends a batch; returns its id. */
  batch(key: StreamKey, msgs: readonly LinkMessage[]): number {
    const id = ++this.#batchId;
    this.send({ t: 'batch', ...key, id, msgs });
    return id;
  }

  gap(key: StreamKey, from: number, to: number, reason = 'limits'): void {
    this.send({ t: 'gap', ...key, from, to, reason });
  }

  /** The next non-ping frame. */
  next(timeoutMs = 5000): Promise<HubFrame> {
    const queued = this.frames.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#isClosed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = {
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  /** The next frame, which must be of type `t`. */
  async expect<T extends HubFrame['t']>(t: T, timeoutMs = 5000): Promise<Extract<HubFrame, { t: T }>> {
    const frame = await this.next(timeoutMs);
    if (frame.t !== t) throw new Error(`expected a ${t} frame, got ${JSON.stringify(frame, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
    return frame as Extract<HubFrame, { t: T }>;
  }

  /** Cursor frames until one reaches `seq` for `key`; returns it. */
  async cursorAt(key: StreamKey, seq: number, timeoutMs = 5000): Promise<Extract<HubFrame, { t: 'cursor' }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const cursor = await this.expect('cursor', Math.max(1, deadline - Date.now()));
      if (cursor.stream === key.stream && cursor.incarnation === key.incarnation && cursor.seq >= seq) return cursor;
    }
  }

  /** Resolves with the close code, or rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive);
    if (!this.#isClosed) this.ws.terminate();
  }
}

/** One record of a {@link RecordingLogger}: level, message, the child bindings and the fields. */
export type LogRecord = { readonly level: string; readonly msg: string; readonly fields: Readonly<Record<string, unknown>> };

/** A Logger that keeps every record (with its child bindings merged in) for assertions. */
export class RecordingLogger implements Logger {
  readonly records: LogRecord[];
  readonly #bindings: Readonly<Record<string, unknown>>;

  constructor(records: LogRecord[] = [], bindings: Readonly<Record<string, unknown>> = {}) {
    this.records = records;
    this.#bindings = bindings;
  }

  #record(level: string, obj: object, msg?: string): void {
    this.records.push({ level, msg: msg ?? '', fields: { ...this.#bindings, ...obj } });
  }

  trace(obj: object, msg?: string): void {
    this.#record('trace', obj, msg);
  }
  debug(obj: object, msg?: string): void {
    this.#record('debug', obj, msg);
  }
  info(obj: object, msg?: string): void {
    this.#record('info', obj, msg);
  }
  warn(obj: object, msg?: string): void {
    this.#record('warn', obj, msg);
  }
  error(obj: object, msg?: string): void {
    this.#record('error', obj, msg);
  }
  fatal(obj: object, msg?: string): void {
    this.#record('fatal', obj, msg);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.records, { ...this.#bindings, ...bindings });
  }
  isLevelEnabled(): boolean {
    return true;
  }

  /** Records with this message (and level, when given). */
  find(msg: string, level?: string): LogRecord[] {
    return this.records.filter((record) => record.msg === msg && (level === undefined || record.level === level));
  }
}

/**
 * A hub for one `describe` (started before its tests, closed after), a nats.js JetStream
 * manager on it, and raw link clients that are closed with it.
 */
export function describeHub(): { readonly hub: () => TestHub; readonly jsm: () => JetStreamManager; readonly leaf: (name: string) => Promise<LinkTestClient> } {
  let hub: TestHub | undefined;
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager | undefined;
  const clients: LinkTestClient[] = [];
  before(async () => {
    hub = await startTestHub();
    nc = await connect({ servers: hub.natsUrl });
    jsm = await jetstreamManager(nc);
  });
  after(async () => {
    for (const client of clients) client.close();
    await nc?.close();
    await hub?.close();
  });
  return {
    hub: () => hub!,
    jsm: () => jsm!,
    leaf: async (name) => {
      const client = await LinkTestClient.connect(hub!.linkUrl, name);
      clients.push(client);
      return client;
    },
  };
}
