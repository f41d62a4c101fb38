/**
 * A TCP proxy on loopback that the link fault tests put between a leaf and a hub
 * (issue 4 "Tests"): it forwards bytes both ways and can, at any moment,
 *
 * - `reset()`: reset every open connection (RST both ways), as a NAT or LTE drop does;
 * - `blackhole(true)`: keep connections open but forward nothing, holding the bytes as
 *   TCP would while it retransmits; `blackhole(false)` delivers what was held, in order
 *   (unless an endpoint gave up and closed first);
 * - `setDelayMs(ms)`: deliver every chunk `ms` later (order kept);
 * - `setThrottle(bytesPerSecond)`: at most that many bytes per second per direction;
 * - `cut(true)`: reset open connections and refuse new ones until `cut(false)`.
 *
 * The proxy never alters, drops or reorders bytes within a connection: that is what a
 * real TCP connection guarantees, and what the link is allowed to rely on.
 */
import net from 'node:net';

/** Throttle granularity: bytes are released in slices every this many ms. */
const THROTTLE_TICK_MS = 10;

export type FaultProxyStats = {
  /** Connections accepted (refused ones included). */
  readonly accepted: number;
  /** Connections reset by reset() or cut(). */
  readonly resets: number;
  /** Connections refused while cut. */
  readonly refused: number;
  /** Bytes forwarded leaf → hub and hub → leaf. */
  readonly bytesUp: number;
  readonly bytesDown: number;
};

export type FaultProxy = {
  /** The port to connect to instead of the target's. */
  readonly port: number;
  /** Open connection pairs right now. */
  readonly openConnections: number;
  readonly stats: FaultProxyStats;
  reset(): void;
  blackhole(isOn: boolean): void;
  setDelayMs(ms: number): void;
  setThrottle(bytesPerSecond: number | undefined): void;
  cut(isOn: boolean): void;
  close(): Promise<void>;
};

type Direction = 'up' | 'down';

/** One direction of one connection: an ordered queue of chunks with delay and throttle applied. */
class Pump {
  readonly #to: net.Socket;
  readonly #proxy: ProxyState;
  readonly #direction: Direction;
  readonly #queue: { chunk: Buffer; dueMs: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #throttleBudget = 0;
  #throttleAtMs = 0;

  constructor(to: net.Socket, proxy: ProxyState, direction: Direction) {
    this.#to = to;
    this.#proxy = proxy;
    this.#direction = direction;
  }

  push(chunk: Buffer): void {
    this.#queue.push({ chunk, dueMs: Date.now() + this.#proxy.delayMs });
    this.run();
  }

  /** Forwards what is due; re-arms a timer for the rest. */
  run(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#queue.length > 0 && !this.#proxy.isBlackholed && !this.#to.destroyed) {
      const head = this.#queue[0]!;
      const now = Date.now();
      if (head.dueMs > now) {
        this.#timer = setTimeout(() => this.run(), head.dueMs - now);
        return;
      }
      const allowed = this.#allowance(now);
      if (allowed === 0) {
        this.#timer = setTimeout(() => this.run(), THROTTLE_TICK_MS);
        return;
      }
      const part = head.chunk.length <= allowed ? head.chunk : head.chunk.subarray(0, allowed);
      if (part === head.chunk) this.#queue.shift();
      else head.chunk = head.chunk.subarray(allowed);
      this.#spend(part.length);
      this.#to.write(part);
      this.#proxy.count(this.#direction, part.length);
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }

  #allowance(nowMs: number): number {
    const rate = this.#proxy.throttleBytesPerSecond;
    if (rate === undefined) return Number.MAX_SAFE_INTEGER;
    const elapsedMs = nowMs - this.#throttleAtMs;
    this.#throttleAtMs = nowMs;
    // At most one second of budget accumulates while idle.
    this.#throttleBudget = Math.min(rate, this.#throttleBudget + (rate * elapsedMs) / 1000);
    return Math.floor(this.#throttleBudget);
  }

  #spend(bytes: number): void {
    if (this.#proxy.throttleBytesPerSecond !== undefined) this.#throttleBudget -= bytes;
  }
}

type Pair = { readonly client: net.Socket; readonly upstream: net.Socket; readonly pumps: readonly Pump[] };

type ProxyState = {
  delayMs: number;
  throttleBytesPerSecond: number | undefined;
  isBlackholed: boolean;
  count(direction: Direction, bytes: number): void;
};

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  let isCut = false;
  const stats = { accepted: 0, resets: 0, refused: 0, bytesUp: 0, bytesDown: 0 };
  const state: ProxyState = {
    delayMs: 0,
    throttleBytesPerSecond: undefined,
    isBlackholed: false,
    count(direction, bytes) {
      if (direction === 'up') stats.bytesUp += bytes;
      else stats.bytesDown += bytes;
    },
  };

  const resetPair = (pair: Pair): void => {
    for (const pump of pair.pumps) pump.stop();
    pair.client.resetAndDestroy();
    pair.upstream.resetAndDestroy();
    pairs.delete(pair);
  };

  const server = net.createServer((client) => {
    stats.accepted++;
    if (isCut) {
      stats.refused++;
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect({ host: target.host, port: target.port });
    upstream.setNoDelay(true);
    const up = new Pump(upstream, state, 'up');
    const down = new Pump(client, state, 'down');
    const pair: Pair = { client, upstream, pumps: [up, down] };
    pairs.add(pair);
    client.on('data', (chunk: Buffer) => up.push(chunk));
    upstream.on('data', (chunk: Buffer) => down.push(chunk));
    // One side closing or failing closes the other: a half-open pair is never left behind.
    const end = (): void => {
      if (!pairs.delete(pair)) return;
      for (const pump of pair.pumps) pump.stop();
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');

  const rerunAll = (): void => {
    for (const pair of pairs) for (const pump of pair.pumps) pump.run();
  };

  const resetAll = (): void => {
    for (const pair of [...pairs]) {
      stats.resets++;
      resetPair(pair);
    }
  };

  return {
    port: address.port,
    get openConnections() {
      return pairs.size;
    },
    stats,
    reset: resetAll,
    blackhole(isOn) {
      state.isBlackholed = isOn;
      if (!isOn) rerunAll();
    },
    setDelayMs(ms) {
      state.delayMs = ms;
    },
    setThrottle(bytesPerSecond) {
      state.throttleBytesPerSecond = bytesPerSecond;
      rerunAll();
    },
    cut(isOn) {
      isCut = isOn;
      if (isOn) resetAll();
    },
    async close() {
      for (const pair of [...pairs]) resetPair(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
