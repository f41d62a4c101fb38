/**
 * Benchmark workloads on the official nats.js client, shared by `canopy bench`
 * (in one process), the worker processes of `npm run bench:compare`, and anyone
 * who wants a number: each takes a server URL and parameters, returns a result.
 *
 * Times are measured with `epochMs()` (performance.timeOrigin + now()), which is
 * comparable across processes on one machine, so the compare script can combine
 * a publisher's start with a subscriber's last delivery.
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';

export const PAYLOAD_BYTES_DEFAULT = 128;
export const PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;
export const CLIENTS_MAX = 1024;
/** Messages published between two flushes; at most two windows are unacknowledged at a time. */
export const PUBLISH_WINDOW_MSGS = 8192;
/** Progress callbacks fire at most once per this many messages on the subscriber side. */
const PROGRESS_EVERY_MSGS = 4096;
const IDLE_CHECK_INTERVAL_MS = 100;
const CONNECT_TIMEOUT_MS = 10_000;

export type ProgressFn = (done: number) => void;

export type ThroughputResult = {
  /** Messages counted (published, or delivered to the subscribers). */
  readonly msgs: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly msgsPerSec: number;
  readonly bytesPerSec: number;
  /** epochMs() of the first and last counted message (publish start / flush end for publishers). */
  readonly firstAtMs: number;
  readonly lastAtMs: number;
};

export type SubscribeResult = ThroughputResult & {
  readonly expectedMsgs: number;
  /** Deliveries per subscriber connection. */
  readonly perClientMsgs: readonly number[];
  /** False when the run ended on the idle timeout before every expected message arrived. */
  readonly isComplete: boolean;
};

export type LatencyResult = {
  readonly count: number;
  readonly elapsedMs: number;
  readonly requestsPerSec: number;
  readonly minUs: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
};

/** Wall-clock milliseconds with sub-microsecond resolution, comparable across local processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A payload of printable bytes, the same for every message (as `nats bench` does). */
export function makePayload(sizeBytes: number): Uint8Array {
  const payload = Buffer.alloc(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) payload[i] = 0x61 + (i % 26);
  return payload;
}

export function connectBenchClient(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url.split(','), name, timeout: CONNECT_TIMEOUT_MS, noEcho: false });
}

function throughput(options: { msgs: number; bytes: number; firstAtMs: number; lastAtMs: number }): ThroughputResult {
  const elapsedMs = Math.max(options.lastAtMs - options.firstAtMs, 0.001);
  return {
    ...options,
    elapsedMs,
    msgsPerSec: (options.msgs / elapsedMs) * 1000,
    bytesPerSec: (options.bytes / elapsedMs) * 1000,
  };
}

/** Publishes `msgs` messages of `sizeBytes` on one connection; returns once the server has them all. */
export async function publishOnConnection(options: {
  nc: NatsConnection;
  subject: string;
  msgs: number;
  sizeBytes: number;
  onProgress?: ProgressFn;
}): Promise<ThroughputResult> {
  const { nc, subject, msgs } = options;
  const payload = makePayload(options.sizeBytes);
  let inFlight: Promise<void> | undefined;
  const firstAtMs = epochMs();
  for (let sent = 0; sent < msgs; ) {
    const windowEnd = Math.min(msgs, sent + PUBLISH_WINDOW_MSGS);
    for (; sent < windowEnd; sent++) nc.publish(subject, payload);
    await inFlight;
    inFlight = nc.flush();
    options.onProgress?.(sent);
  }
  await inFlight;
  return throughput({ msgs, bytes: msgs * options.sizeBytes, firstAtMs, lastAtMs: epochMs() });
}

/** Splits `msgs` over `clients` publisher connections in this process and runs them at once. */
export async function publishWorkload(options: {
  url: string;
  subject: string;
  msgs: number;
  sizeBytes: number;
  clients: number;
  onProgress?: ProgressFn;
}): Promise<ThroughputResult> {
  const connections = await Promise.all(
    Array.from({ length: options.clients }, (_, i) => connectBenchClient(options.url, `bench-pub-${i}`)),
  );
  try {
    const sentPerClient = new Array<number>(options.clients).fill(0);
    const results = await Promise.all(
      connections.map((nc, i) =>
        publishOnConnection({
          nc,
          subject: options.subject,
          msgs: splitCount(options.msgs, options.clients, i),
          sizeBytes: options.sizeBytes,
          onProgress: (sent) => {
            sentPerClient[i] = sent;
            options.onProgress?.(sentPerClient.reduce((a, b) => a + b, 0));
          },
        }),
      ),
    );
    return combineThroughput(results);
  } finally {
    await Promise.all(connections.map((nc) => nc.close()));
  }
}

/** The share of `total` for client `index` of `clients` (the first ones take the remainder). */
export function splitCount(total: number, clients: number, index: number): number {
  return Math.floor(total / clients) + (index < total % clients ? 1 : 0);
}

export function combineThroughput(results: readonly ThroughputResult[]): ThroughputResult {
  return throughput({
    msgs: results.reduce((sum, r) => sum + r.msgs, 0),
    bytes: results.reduce((sum, r) => sum + r.bytes, 0),
    firstAtMs: Math.min(...results.map((r) => r.firstAtMs)),
    lastAtMs: Math.max(...results.map((r) => r.lastAtMs)),
  });
}

export type SubscriberGroup = {
  /** Settles when every expected delivery arrived, or on the idle timeout. */
  readonly done: Promise<SubscribeResult>;
  /** Unsubscribes and closes the connections (also ends `done`). */
  close(): Promise<void>;
};

/**
 * Connects `clients` subscribers (all in `queue` when given) and resolves once the
 * server has registered every subscription. `expectedMsgs` counts deliveries over
 * all clients: N for one subscriber or a queue group, N × clients for a fan-out.
 */
export async function startSubscribers(options: {
  url: string;
  subject: string;
  clients: number;
  queue?: string;
  sizeBytes?: number;
  expectedMsgs: number;
  /** End the run when no message arrived for this long after the first one. */
  idleTimeoutMs: number;
  /** End the run when the first message does not arrive within this time; undefined waits forever. */
  firstMessageTimeoutMs?: number;
  onProgress?: ProgressFn;
}): Promise<SubscriberGroup> {
  const connections = await Promise.all(
    Array.from({ length: options.clients }, (_, i) => connectBenchClient(options.url, `bench-sub-${i}`)),
  );
  const perClientMsgs = new Array<number>(options.clients).fill(0);
  let total = 0;
  let bytes = 0;
  let firstAtMs = 0;
  let lastAtMs = 0;
  const startedAtMs = epochMs();
  let finish: (isComplete: boolean) => void = () => {};
  const done = new Promise<SubscribeResult>((resolve) => {
    finish = (isComplete) => {
      clearInterval(idleTimer);
      for (const subscription of subscriptions) subscription.unsubscribe();
      finish = () => {};
      resolve({
        ...throughput({ msgs: total, bytes, firstAtMs, lastAtMs }),
        expectedMsgs: options.expectedMsgs,
        perClientMsgs: [...perClientMsgs],
        isComplete,
      });
    };
  });
  const subscriptions: Subscription[] = connections.map((nc, i) =>
    nc.subscribe(options.subject, {
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      callback: (err, msg) => {
        if (err !== null) return;
        lastAtMs = epochMs();
        if (total === 0) firstAtMs = lastAtMs;
        total++;
        perClientMsgs[i] = (perClientMsgs[i] ?? 0) + 1;
        bytes += msg.data.length;
        if (total % PROGRESS_EVERY_MSGS === 0) options.onProgress?.(total);
        if (total >= options.expectedMsgs) finish(true);
      },
    }),
  );
  const idleTimer = setInterval(() => {
    const nowMs = epochMs();
    const isIdle = total > 0 && nowMs - lastAtMs > options.idleTimeoutMs;
    const isNeverStarted =
      total === 0 && options.firstMessageTimeoutMs !== undefined && nowMs - startedAtMs > options.firstMessageTimeoutMs;
    if (isIdle || isNeverStarted) finish(false);
  }, IDLE_CHECK_INTERVAL_MS);
  await Promise.all(connections.map((nc) => nc.flush()));
  return {
    done,
    async close() {
      finish(false);
      await Promise.all(connections.map((nc) => nc.close()));
    },
  };
}

export type Replier = { close(): Promise<void> };

/** Answers every request on `subject` with its own payload. */
export async function startReplier(options: { url: string; subject: string; queue?: string }): Promise<Replier> {
  const nc = await connectBenchClient(options.url, 'bench-replier');
  nc.subscribe(options.subject, {
    ...(options.queue === undefined ? {} : { queue: options.queue }),
    callback: (err, msg) => {
      if (err === null) msg.respond(msg.data);
    },
  });
  await nc.flush();
  return { close: () => nc.close() };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sortedAscending: readonly number[], fraction: number): number {
  if (sortedAscending.length === 0) return Number.NaN;
  const rank = Math.ceil(fraction * sortedAscending.length);
  return sortedAscending[Math.min(Math.max(rank, 1), sortedAscending.length) - 1] ?? Number.NaN;
}

export function summarizeLatencies(samplesUs: readonly number[], elapsedMs: number): LatencyResult {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  return {
    count: sorted.length,
    elapsedMs,
    requestsPerSec: (sorted.length / Math.max(elapsedMs, 0.001)) * 1000,
    minUs: sorted[0] ?? Number.NaN,
    meanUs: sorted.reduce((sum, v) => sum + v, 0) / Math.max(sorted.length, 1),
    p50Us: percentile(sorted, 0.5),
    p90Us: percentile(sorted, 0.9),
    p99Us: percentile(sorted, 0.99),
    maxUs: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** Sends `msgs` requests one after another (after `warmupMsgs` unmeasured ones) and reports latencies. */
export async function requestWorkload(options: {
  url: string;
  subject: string;
  msgs: number;
  sizeBytes: number;
  timeoutMs: number;
  warmupMsgs: number;
  onProgress?: ProgressFn;
}): Promise<LatencyResult> {
  const nc = await connectBenchClient(options.url, 'bench-requester');
  try {
    const payload = makePayload(options.sizeBytes);
    for (let i = 0; i < options.warmupMsgs; i++) await nc.request(options.subject, payload, { timeout: options.timeoutMs });
    const samplesUs = new Array<number>(options.msgs);
    const startedMs = performance.now();
    for (let i = 0; i < options.msgs; i++) {
      const sentMs = performance.now();
      await nc.request(options.subject, payload, { timeout: options.timeoutMs });
      samplesUs[i] = (performance.now() - sentMs) * 1000;
      if ((i + 1) % 100 === 0) options.onProgress?.(i + 1);
    }
    return summarizeLatencies(samplesUs, performance.now() - startedMs);
  } finally {
    await nc.close();
  }
}

/** Publisher(s) and subscriber(s) in this process: returns both sides' figures. */
export async function pubSubWorkload(options: {
  url: string;
  subject: string;
  msgs: number;
  sizeBytes: number;
  publishers: number;
  subscribers: number;
  queue?: string;
  idleTimeoutMs: number;
  onProgress?: ProgressFn;
}): Promise<{ publish: ThroughputResult; subscribe: SubscribeResult }> {
  const expectedMsgs = options.queue === undefined ? options.msgs * options.subscribers : options.msgs;
  const group = await startSubscribers({
    url: options.url,
    subject: options.subject,
    clients: options.subscribers,
    ...(options.queue === undefined ? {} : { queue: options.queue }),
    expectedMsgs,
    idleTimeoutMs: options.idleTimeoutMs,
    firstMessageTimeoutMs: options.idleTimeoutMs,
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  try {
    const publish = await publishWorkload({
      url: options.url,
      subject: options.subject,
      msgs: options.msgs,
      sizeBytes: options.sizeBytes,
      clients: options.publishers,
    });
    const subscribe = await group.done;
    return { publish, subscribe };
  } finally {
    await group.close();
  }
}
