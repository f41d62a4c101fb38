/**
 * Connection-level state of a link (README "Connection"): the handshake, heartbeats, and on the
 * leaf the reconnect backoff. Pure state machines: time comes in as `nowMs` arguments, randomness
 * from an injected `Prng`, frames in as objects; frames to send and actions for the host
 * (dial, up, close, down) come out of `poll()`.
 *
 * The host wires them to a transport and to the sync machines:
 *
 *   action `dial`  → open a transport to `url`; report `opened` / `receive` / `closed` with the
 *                    action's connection number (events of older connections are ignored);
 *   action `up`    → `sender.connected(session.peerWindowBytes)`, `receiver.connected()`;
 *   action `close` → close that transport (the machine already treats it as gone);
 *   action `down`  → `sender.disconnected()`, `receiver.disconnected()`;
 *   `receive` returning true → the frame is a sync frame: route it to the sender (cursor,
 *                    window, error) or the receiver (offer, batch, gap);
 *   after sending any other frame → `sent(connection, nowMs)` (it postpones the next ping).
 */
import { assert } from '../util/assert.ts';
import type { Prng } from '../util/prng.ts';
import type { ErrorFrame, HelloFrame, HubFrame, LeafFrame, LinkFrame, PingFrame, ReceiverFrame, SenderFrame, WelcomeFrame } from './frames.ts';
import { LINK_PROTOCOL_VERSIONS } from './frames.ts';
import {
  LINK_BACKOFF_ATTEMPTS_MAX,
  LINK_BACKOFF_BASE_MS,
  LINK_BACKOFF_MAX_MS,
  LINK_DEAD_INTERVALS,
  LINK_HEARTBEAT_MS_DEFAULT,
  LINK_HEARTBEAT_MS_MAX,
  LINK_HEARTBEAT_MS_MIN,
  LINK_WINDOW_BYTES_MAX,
  LINK_WINDOW_BYTES_MIN,
} from './limits.ts';

/** What a handshake settled; the same on both sides except for the peer's name and window. */
export type LinkSession = {
  readonly version: number;
  /** Heartbeat both sides use: the larger wish, clamped to `LINK_HEARTBEAT_MS_MAX`. */
  readonly heartbeatMs: number;
  readonly compression: boolean;
  /** The peer's name (the leaf's on the hub, the hub's on the leaf). */
  readonly peer: string;
  /** The peer's receive window: what this side's sender may have unacknowledged. */
  readonly peerWindowBytes: number;
};

export type LinkAction =
  /** Open a transport to `url` (leaf only). */
  | { readonly kind: 'dial'; readonly connection: number; readonly url: string }
  /** The handshake finished: start syncing. */
  | { readonly kind: 'up'; readonly connection: number; readonly session: LinkSession }
  /** Close the transport (after sending this output's frames, e.g. an error). */
  | { readonly kind: 'close'; readonly connection: number; readonly reason: string }
  /** A connection that was up is gone: stop syncing (always after `up`, once). */
  | { readonly kind: 'down'; readonly connection: number; readonly reason: string };

export type ConnectionOutput<F> = { readonly frames: readonly F[]; readonly actions: readonly LinkAction[] };

/** The newest version both lists hold (each newest first), or undefined. */
export function negotiateVersion(ours: readonly number[], theirs: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const version of ours) if (theirs.includes(version) && (best === undefined || version > best)) best = version;
  return best;
}

/** Full-jitter backoff (README "Connection" 3): uniform in [0, min(max, base × 2^attempt)]. */
export function backoffDelayMs(options: { readonly attempt: number; readonly baseMs: number; readonly maxMs: number; readonly prng: Prng }): number {
  const attempt = Math.min(options.attempt, LINK_BACKOFF_ATTEMPTS_MAX);
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** attempt);
  return options.prng.between(0, Math.floor(cap));
}

/**
 * Heartbeat arithmetic shared by both sides (README "Connection" 2): ping after one interval
 * of sending nothing, dead after `LINK_DEAD_INTERVALS` intervals of receiving nothing.
 */
export class Heartbeat {
  intervalMs: number;
  #lastSentMs: number;
  #lastReceivedMs: number;

  constructor(intervalMs: number, nowMs: number) {
    assert(intervalMs > 0, `heartbeat interval must be positive: ${intervalMs}`);
    this.intervalMs = intervalMs;
    this.#lastSentMs = nowMs;
    this.#lastReceivedMs = nowMs;
  }

  get lastReceivedMs(): number {
    return this.#lastReceivedMs;
  }

  sent(nowMs: number): void {
    this.#lastSentMs = Math.max(this.#lastSentMs, nowMs);
  }

  received(nowMs: number): void {
    this.#lastReceivedMs = Math.max(this.#lastReceivedMs, nowMs);
  }

  isDead(nowMs: number): boolean {
    return nowMs - this.#lastReceivedMs >= LINK_DEAD_INTERVALS * this.intervalMs;
  }

  needsPing(nowMs: number): boolean {
    return nowMs - this.#lastSentMs >= this.intervalMs;
  }
}

function isHeartbeatValid(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms >= LINK_HEARTBEAT_MS_MIN && ms <= LINK_HEARTBEAT_MS_MAX;
}

function isWindowValid(bytes: number): boolean {
  return Number.isSafeInteger(bytes) && bytes >= LINK_WINDOW_BYTES_MIN && bytes <= LINK_WINDOW_BYTES_MAX;
}

const PING: PingFrame = { t: 'ping' };

/** Frames that belong to stream sync once a connection is up (a per-stream error included). */
export function isSyncFrame(frame: LinkFrame): frame is SyncFrame {
  switch (frame.t) {
    case 'offer':
    case 'batch':
    case 'gap':
    case 'cursor':
    case 'window':
      return true;
    case 'error':
      return frame.code === 'stream';
    default:
      return false;
  }
}

/** What `receive` hands back to the host for routing: offer / batch / gap to the receiver, the rest to the sender. */
export type SyncFrame = SenderFrame | ReceiverFrame | ErrorFrame;

// ==================================================================================== leaf side

export type LeafConnectionOptions = {
  /** The leaf's name (its namespace on the hub). */
  readonly leaf: string;
  /** Per-leaf token, or undefined with a TLS client certificate. */
  readonly token: string | undefined;
  /** Hub URLs, tried in turn. */
  readonly urls: readonly string[];
  /** This side's receive window (for downstream batches). */
  readonly windowBytes: number;
  readonly compression: boolean;
  readonly prng: Prng;
  readonly versions?: readonly number[];
  readonly heartbeatMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
};

/**
 * - `idle`: not started; `stopped`: stopped for good;
 * - `dialing`: transport being opened; `handshake`: hello sent, waiting for welcome;
 * - `up`: welcome received, syncing; `backoff`: waiting until `retryAtMs` to dial again.
 */
export type LeafConnectionState = 'idle' | 'dialing' | 'handshake' | 'up' | 'backoff' | 'stopped';

export type LeafConnectionStats = {
  readonly dials: number;
  readonly welcomes: number;
  /** Closes by reason (heartbeat timeout, peer closed, hub error code, protocol…). */
  readonly closes: Readonly<Record<string, number>>;
};

/** The leaf's side of its link: dial, hello, heartbeats, backoff. One object for the leaf's lifetime. */
export class LeafConnection {
  readonly #options: LeafConnectionOptions;
  readonly #versions: readonly number[];
  readonly #heartbeatMs: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  #state: LeafConnectionState = 'idle';
  /** Number of the current (or last) connection; each dial makes a new one. */
  #connection = 0;
  #dials = 0;
  #attempt = 0;
  #retryAtMs = 0;
  #upAtMs = 0;
  #heartbeat: Heartbeat | undefined = undefined;
  #session: LinkSession | undefined = undefined;
  #frames: LeafFrame[] = [];
  #actions: LinkAction[] = [];
  #welcomes = 0;
  readonly #closes: Record<string, number> = {};

  constructor(options: LeafConnectionOptions) {
    assert(options.urls.length > 0, 'a leaf needs at least one hub URL');
    assert(isWindowValid(options.windowBytes), `window ${options.windowBytes} out of bounds`);
    this.#options = options;
    this.#versions = options.versions ?? LINK_PROTOCOL_VERSIONS;
    this.#heartbeatMs = options.heartbeatMs ?? LINK_HEARTBEAT_MS_DEFAULT;
    this.#backoffBaseMs = options.backoffBaseMs ?? LINK_BACKOFF_BASE_MS;
    this.#backoffMaxMs = options.backoffMaxMs ?? LINK_BACKOFF_MAX_MS;
    assert(isHeartbeatValid(this.#heartbeatMs), `heartbeat ${this.#heartbeatMs} ms out of bounds`);
    assert(this.#backoffBaseMs > 0 && this.#backoffBaseMs <= this.#backoffMaxMs, 'backoff base must be positive and at most max');
  }

  get state(): LeafConnectionState {
    return this.#state;
  }

  /** The current connection's number (0 before the first dial). */
  get connection(): number {
    return this.#connection;
  }

  /** The negotiated session while `up`. */
  get session(): LinkSession | undefined {
    return this.#state === 'up' ? this.#session : undefined;
  }

  /** Consecutive failed attempts (drives the backoff cap). */
  get attempt(): number {
    return this.#attempt;
  }

  /** When the next dial happens, while in `backoff`. */
  get retryAtMs(): number | undefined {
    return this.#state === 'backoff' ? this.#retryAtMs : undefined;
  }

  get stats(): LeafConnectionStats {
    return { dials: this.#dials, welcomes: this.#welcomes, closes: { ...this.#closes } };
  }

  /** Starts dialing now. */
  start(nowMs: number): void {
    assert(this.#state === 'idle', `start() in state ${this.#state}`);
    this.#dial(nowMs);
  }

  /** Closes the current connection (if any) and never dials again. */
  stop(nowMs: number): void {
    if (this.#isOpenState()) this.#close('stopped', nowMs, { isLocal: true });
    this.#state = 'stopped';
  }

  /** The transport of `connection` is open: say hello. */
  opened(connection: number, nowMs: number): void {
    if (!this.#isCurrent(connection) || this.#state !== 'dialing') return;
    this.#state = 'handshake';
    this.#heartbeat = new Heartbeat(this.#heartbeatMs, nowMs);
    const hello: HelloFrame = {
      t: 'hello',
      versions: this.#versions,
      leaf: this.#options.leaf,
      token: this.#options.token,
      compression: this.#options.compression,
      heartbeatMs: this.#heartbeatMs,
      windowBytes: this.#options.windowBytes,
    };
    this.#send(hello, nowMs);
  }

  /**
   * A frame arrived on `connection`. Returns true when it is a sync frame the host must route to
   * the sender or receiver; false when this machine consumed it (or it belongs to an old connection).
   */
  receive(connection: number, frame: HubFrame, nowMs: number): boolean {
    if (!this.#isCurrent(connection) || (this.#state !== 'handshake' && this.#state !== 'up')) return false;
    this.#heartbeat!.received(nowMs);
    if (frame.t === 'error' && frame.code !== 'stream') {
      this.#close(`hub error ${frame.code}`, nowMs, { isLocal: true, isRefused: frame.code === 'auth' || frame.code === 'version' });
      return false;
    }
    if (this.#state === 'handshake') {
      if (frame.t === 'welcome') this.#onWelcome(frame, nowMs);
      else this.#close(`protocol: ${frame.t} before welcome`, nowMs, { isLocal: true });
      return false;
    }
    if (frame.t === 'ping') return false;
    if (!isSyncFrame(frame)) {
      this.#close(`protocol: unexpected ${frame.t}`, nowMs, { isLocal: true });
      return false;
    }
    return true;
  }

  /** The host sent a frame on `connection` (postpones the next ping). */
  sent(connection: number, nowMs: number): void {
    if (this.#isCurrent(connection) && this.#heartbeat !== undefined) this.#heartbeat.sent(nowMs);
  }

  /** The transport of `connection` closed (peer, network, or error). */
  closed(connection: number, nowMs: number, reason: string): void {
    if (!this.#isCurrent(connection) || !this.#isOpenState()) return;
    this.#close(reason, nowMs, { isLocal: false });
  }

  /** The sender or receiver found a protocol violation by the hub: close (a leaf sends no error frame). */
  abort(connection: number, nowMs: number, reason: string): void {
    if (!this.#isCurrent(connection) || !this.#isOpenState()) return;
    this.#close(`protocol: ${reason}`, nowMs, { isLocal: true });
  }

  /** Virtual or real time passed: pings, dead-link detection, dial timeouts, the end of a backoff. */
  tick(nowMs: number): void {
    if (this.#state === 'backoff') {
      if (nowMs >= this.#retryAtMs) this.#dial(nowMs);
      return;
    }
    if (!this.#isOpenState()) return;
    const heartbeat = this.#heartbeat!;
    if (heartbeat.isDead(nowMs)) {
      this.#close(this.#state === 'up' ? 'heartbeat timeout' : `${this.#state} timeout`, nowMs, { isLocal: true });
      return;
    }
    if (this.#state === 'up' && heartbeat.needsPing(nowMs)) this.#send(PING, nowMs);
  }

  poll(): ConnectionOutput<LeafFrame> {
    const output = { frames: this.#frames, actions: this.#actions };
    this.#frames = [];
    this.#actions = [];
    return output;
  }

  // ----------------------------------------------------------------

  #isCurrent(connection: number): boolean {
    return connection === this.#connection && connection !== 0;
  }

  #isOpenState(): boolean {
    return this.#state === 'dialing' || this.#state === 'handshake' || this.#state === 'up';
  }

  #send(frame: LeafFrame, nowMs: number): void {
    this.#frames.push(frame);
    this.#heartbeat?.sent(nowMs);
  }

  #dial(nowMs: number): void {
    this.#connection += 1;
    this.#dials += 1;
    const urls = this.#options.urls;
    const url = urls[(this.#dials - 1) % urls.length]!;
    this.#state = 'dialing';
    this.#session = undefined;
    // Dial timeout: the same dead rule as an open connection, on our own heartbeat.
    this.#heartbeat = new Heartbeat(this.#heartbeatMs, nowMs);
    this.#actions.push({ kind: 'dial', connection: this.#connection, url });
  }

  #onWelcome(frame: WelcomeFrame, nowMs: number): void {
    const problem = !this.#versions.includes(frame.version)
      ? `version ${frame.version} not offered`
      : !isHeartbeatValid(frame.heartbeatMs) || frame.heartbeatMs < this.#heartbeatMs
        ? `heartbeat ${frame.heartbeatMs}`
        : !isWindowValid(frame.windowBytes)
          ? `window ${frame.windowBytes}`
          : frame.compression && !this.#options.compression
            ? 'compression not asked for'
            : undefined;
    if (problem !== undefined) {
      this.#close(`protocol: bad welcome (${problem})`, nowMs, { isLocal: true });
      return;
    }
    this.#state = 'up';
    this.#upAtMs = nowMs;
    this.#welcomes += 1;
    this.#heartbeat!.intervalMs = frame.heartbeatMs;
    this.#session = { version: frame.version, heartbeatMs: frame.heartbeatMs, compression: frame.compression, peer: frame.hub, peerWindowBytes: frame.windowBytes };
    this.#actions.push({ kind: 'up', connection: this.#connection, session: this.#session });
  }

  /**
   * Ends the current connection and schedules the next dial. `isLocal`: this side decided, so the
   * host must close the transport. `isRefused`: the hub refused us (auth, version), so wait up to
   * the longest backoff (nats-server waits 30 s after such errors too).
   */
  #close(reason: string, nowMs: number, options: { readonly isLocal: boolean; readonly isRefused?: boolean }): void {
    const wasUp = this.#state === 'up';
    this.#closes[reason] = (this.#closes[reason] ?? 0) + 1;
    if (options.isLocal) this.#actions.push({ kind: 'close', connection: this.#connection, reason });
    if (wasUp) this.#actions.push({ kind: 'down', connection: this.#connection, reason });
    // README "Connection" 3: a connection that got welcome and stayed up one heartbeat interval resets the attempts.
    if (wasUp && nowMs - this.#upAtMs >= this.#session!.heartbeatMs) this.#attempt = 0;
    if (options.isRefused === true) this.#attempt = LINK_BACKOFF_ATTEMPTS_MAX;
    const delay = backoffDelayMs({ attempt: this.#attempt, baseMs: this.#backoffBaseMs, maxMs: this.#backoffMaxMs, prng: this.#options.prng });
    this.#attempt = Math.min(this.#attempt + 1, LINK_BACKOFF_ATTEMPTS_MAX);
    this.#state = 'backoff';
    this.#retryAtMs = nowMs + delay;
    this.#heartbeat = undefined;
  }
}

// ===================================================================================== hub side

/** The hub's decision on a hello: undefined accepts; otherwise the refusal text (error code 'auth'). */
export type LinkAuthorizer = (hello: HelloFrame) => string | undefined;

export type HubConnectionOptions = {
  /** The hub's name (sent in welcome). */
  readonly hub: string;
  /** This side's receive window (for upstream batches). */
  readonly windowBytes: number;
  /** Whether the hub allows compressed batches. */
  readonly compression: boolean;
  readonly authorize: LinkAuthorizer;
  readonly versions?: readonly number[];
  readonly heartbeatMs?: number;
};

/** `handshake`: waiting for hello; `up`: welcome sent; `closed`: done (one object per accepted transport). */
export type HubConnectionState = 'handshake' | 'up' | 'closed';

/** The hub's side of one accepted connection: hello → welcome or error, then heartbeats. */
export class HubConnection {
  readonly #options: HubConnectionOptions;
  readonly #versions: readonly number[];
  readonly #connection: number;
  #state: HubConnectionState = 'handshake';
  readonly #heartbeat: Heartbeat;
  #session: LinkSession | undefined = undefined;
  #closeReason: string | undefined = undefined;
  #frames: HubFrame[] = [];
  #actions: LinkAction[] = [];

  /** `connection` is the host's number for this transport, echoed in actions. */
  constructor(options: HubConnectionOptions & { readonly connection: number; readonly nowMs: number }) {
    assert(isWindowValid(options.windowBytes), `window ${options.windowBytes} out of bounds`);
    this.#options = options;
    this.#versions = options.versions ?? LINK_PROTOCOL_VERSIONS;
    this.#connection = options.connection;
    const heartbeatMs = options.heartbeatMs ?? LINK_HEARTBEAT_MS_DEFAULT;
    assert(isHeartbeatValid(heartbeatMs), `heartbeat ${heartbeatMs} ms out of bounds`);
    // Before hello the hub waits on its own heartbeat: a silent client is dropped after two intervals.
    this.#heartbeat = new Heartbeat(heartbeatMs, options.nowMs);
  }

  get state(): HubConnectionState {
    return this.#state;
  }

  get connection(): number {
    return this.#connection;
  }

  /** The negotiated session (the leaf's name is `peer`) once up. */
  get session(): LinkSession | undefined {
    return this.#session;
  }

  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /** A frame arrived. Returns true when it is a sync frame for the sender or receiver. */
  receive(frame: LeafFrame, nowMs: number): boolean {
    if (this.#state === 'closed') return false;
    this.#heartbeat.received(nowMs);
    if (this.#state === 'handshake') {
      if (frame.t === 'hello') this.#onHello(frame, nowMs);
      else this.#refuse('protocol', `expected hello, got ${frame.t}`, nowMs);
      return false;
    }
    if (frame.t === 'ping') return false;
    if (!isSyncFrame(frame)) {
      this.#refuse('protocol', `unexpected ${frame.t} frame`, nowMs);
      return false;
    }
    return true;
  }

  /** The host sent a frame (postpones the next ping). */
  sent(nowMs: number): void {
    this.#heartbeat.sent(nowMs);
  }

  /** The transport closed. */
  closed(reason: string): void {
    if (this.#state === 'closed') return;
    this.#end(reason, false);
  }

  /** The sender or receiver found a protocol violation by the leaf: send the error, then close. */
  abort(error: ErrorFrame, nowMs: number): void {
    if (this.#state === 'closed') return;
    this.#refuse(error.code, error.text, nowMs);
  }

  /** Closes the connection because a newer one of the same leaf came up (nats-server #1606). */
  replace(): void {
    if (this.#state !== 'closed') this.#end('replaced by a newer connection', true);
  }

  tick(nowMs: number): void {
    if (this.#state === 'closed') return;
    if (this.#heartbeat.isDead(nowMs)) {
      this.#end(this.#state === 'up' ? 'heartbeat timeout' : 'handshake timeout', true);
      return;
    }
    if (this.#state === 'up' && this.#heartbeat.needsPing(nowMs)) this.#send(PING, nowMs);
  }

  poll(): ConnectionOutput<HubFrame> {
    const output = { frames: this.#frames, actions: this.#actions };
    this.#frames = [];
    this.#actions = [];
    return output;
  }

  // ----------------------------------------------------------------

  #send(frame: HubFrame, nowMs: number): void {
    this.#frames.push(frame);
    this.#heartbeat.sent(nowMs);
  }

  #onHello(hello: HelloFrame, nowMs: number): void {
    if (typeof hello.leaf !== 'string' || hello.leaf.length === 0 || !Array.isArray(hello.versions) || !isWindowValid(hello.windowBytes) || !isHeartbeatValid(hello.heartbeatMs)) {
      this.#refuse('protocol', 'malformed hello', nowMs);
      return;
    }
    const version = negotiateVersion(this.#versions, hello.versions);
    if (version === undefined) {
      this.#refuse('version', `no common version: hub speaks ${this.#versions.join(',')}, leaf ${hello.versions.join(',')}`, nowMs);
      return;
    }
    const refusal = this.#options.authorize(hello);
    if (refusal !== undefined) {
      this.#refuse('auth', refusal, nowMs);
      return;
    }
    const heartbeatMs = Math.min(LINK_HEARTBEAT_MS_MAX, Math.max(this.#heartbeat.intervalMs, hello.heartbeatMs));
    const compression = hello.compression && this.#options.compression;
    this.#heartbeat.intervalMs = heartbeatMs;
    this.#state = 'up';
    this.#session = { version, heartbeatMs, compression, peer: hello.leaf, peerWindowBytes: hello.windowBytes };
    const welcome: WelcomeFrame = { t: 'welcome', version, hub: this.#options.hub, compression, heartbeatMs, windowBytes: this.#options.windowBytes };
    this.#send(welcome, nowMs);
    this.#actions.push({ kind: 'up', connection: this.#connection, session: this.#session });
  }

  /** Sends a connection-level error and closes (README "Connection" 1). */
  #refuse(code: string, text: string, nowMs: number): void {
    this.#send({ t: 'error', code, text, stream: undefined }, nowMs);
    this.#end(`${code}: ${text}`, true);
  }

  #end(reason: string, isLocal: boolean): void {
    const wasUp = this.#state === 'up';
    this.#state = 'closed';
    this.#closeReason = reason;
    if (isLocal) this.#actions.push({ kind: 'close', connection: this.#connection, reason });
    if (wasUp) this.#actions.push({ kind: 'down', connection: this.#connection, reason });
  }
}
