/**
 * Benchmark workloads on the official nats.js client, shared by `canopy bench`
 * (in one process), the worker processes of `npm run bench:compare`, and anyone
 * who wants a number: each takes a server URL and parameters, returns a result.
 *
 * Times are measured with `epochMs()` (performance.timeOrigin + now()), which is
 * comparable across processes on one machine, so the compare script can combine
 * a publisher's start with a subscriber's last delivery.
 */
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { connect, createInbox, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { ClientSecurity } from '../cli/client-connection.ts';

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

/** `security`: the credential and TLS options of `canopy bench`'s flags. */
export function connectBenchClient(url: string, name: string, security: ClientSecurity = {}): Promise<NatsConnection> {
  return connect({ ...security, servers: url.split(','), name, timeout: CONNECT_TIMEOUT_MS, noEcho: false });
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
  security?: ClientSecurity | undefined;
  subject: string;
  msgs: number;
  sizeBytes: number;
  clients: number;
  onProgress?: ProgressFn;
}): Promise<ThroughputResult> {
  const connections = await Promise.all(
    Array.from({ length: options.clients }, (_, i) => connectBenchClient(options.url, `bench-pub-${i}`, options.security)),
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
  security?: ClientSecurity | undefined;
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
    Array.from({ length: options.clients }, (_, i) => connectBenchClient(options.url, `bench-sub-${i}`, options.security)),
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
export async function startReplier(options: { url: string; security?: ClientSecurity | undefined; subject: string; queue?: string }): Promise<Replier> {
  const nc = await connectBenchClient(options.url, 'bench-replier', options.security);
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
  security?: ClientSecurity | undefined;
  subject: string;
  msgs: number;
  sizeBytes: number;
  timeoutMs: number;
  warmupMsgs: number;
  onProgress?: ProgressFn;
}): Promise<LatencyResult> {
  const nc = await connectBenchClient(options.url, 'bench-requester', options.security);
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
  security?: ClientSecurity | undefined;
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
    security: options.security,
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
      security: options.security,
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

// ---------------------------------------------------------------------------------------------
// JetStream workloads: one stream (file storage unless told otherwise) capturing the subject.

/** Acks outstanding in the async publishers (`nats bench --js`'s default window is similar). */
export const JS_PENDING_ACKS_DEFAULT = 256;
export const JS_FETCH_BATCH_DEFAULT = 256;
export const JS_E2E_RATE_DEFAULT = 2000;
/** A PubAck (or a fetched message) later than this ends the run as failed. */
export const JS_ACK_TIMEOUT_MS = 10_000;
/** The description that marks a stream as made by a benchmark, so it may be replaced or deleted. */
export const BENCH_STREAM_DESCRIPTION = 'canopy bench stream (safe to delete)';
const ERROR_FIELD = Buffer.from('"error"');
/** The end-to-end payload starts with the publish time (epochMs as a float64). */
const TIMESTAMP_BYTES = 8;

export type JsStorage = 'file' | 'memory';

/**
 * Creates stream `stream` on `subject` for a benchmark. A stream of that name
 * made by an earlier benchmark (its description says so) is replaced; any other
 * stream of that name is left alone and the run stops.
 */
export async function prepareBenchStream(options: { nc: NatsConnection; stream: string; subject: string; storage: JsStorage }): Promise<void> {
  const jsm = await jetstreamManager(options.nc);
  try {
    const existing = await jsm.streams.info(options.stream);
    if (existing.config.description !== BENCH_STREAM_DESCRIPTION) {
      throw new Error(`stream ${options.stream} exists and was not made by a benchmark; name another with --stream, or delete it`);
    }
    await jsm.streams.delete(options.stream);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
  }
  await jsm.streams.add({ name: options.stream, subjects: [options.subject], storage: options.storage, description: BENCH_STREAM_DESCRIPTION });
}

export async function deleteBenchStream(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(stream);
}

/** Resolves `wait()` callers whenever `release()` is called: a window of outstanding requests. */
class Window {
  #waiter: (() => void) | undefined;
  wait(): Promise<void> {
    return new Promise((resolve) => (this.#waiter = resolve));
  }
  release(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

/**
 * Publishes `msgs` messages to a stream with up to `maxPending` PubAcks
 * outstanding; measures from the first publish to the last PubAck.
 * `isLean` publishes with core `publish()` and one reply subject, counting the
 * PubAcks in one subscription (the server's cost without the JetStream client's
 * per-request bookkeeping); otherwise every message is a `js.publish()`.
 */
export async function jsPublishOnConnection(options: {
  nc: NatsConnection;
  subject: string;
  msgs: number;
  sizeBytes: number;
  maxPending: number;
  isLean: boolean;
  onProgress?: ProgressFn;
}): Promise<ThroughputResult> {
  const { nc, msgs, maxPending } = options;
  const payload = makePayload(options.sizeBytes);
  const window = new Window();
  let sent = 0;
  let acked = 0;
  let failure: Error | undefined;
  let lastAckAtMs = epochMs();
  const onAck = (): void => {
    acked++;
    lastAckAtMs = epochMs();
    if (acked % PROGRESS_EVERY_MSGS === 0) options.onProgress?.(acked);
    window.release();
  };
  const onFailure = (err: Error): void => {
    failure ??= err;
    window.release();
  };
  let inbox: Subscription | undefined;
  let publishOne: () => void;
  if (options.isLean) {
    const replySubject = createInbox();
    inbox = nc.subscribe(replySubject, {
      callback: (err, msg) => {
        if (err !== null) return onFailure(err);
        // A PubAck is {"stream":…,"seq":…}; an error carries "error"; a 503 status has no payload.
        const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.length);
        if (data.length === 0 || data.includes(ERROR_FIELD)) return onFailure(new Error(`publish failed: ${describeReply(msg.data, msg.headers?.description)}`));
        onAck();
      },
    });
    await nc.flush();
    publishOne = () => nc.publish(options.subject, payload, { reply: replySubject });
  } else {
    const js = jetstream(nc);
    publishOne = () => {
      js.publish(options.subject, payload, { timeout: JS_ACK_TIMEOUT_MS }).then(onAck, onFailure);
    };
  }
  const stallTimer = setInterval(() => {
    if (sent > acked && epochMs() - lastAckAtMs > JS_ACK_TIMEOUT_MS) onFailure(new Error(`no PubAck for ${JS_ACK_TIMEOUT_MS} ms (${acked} of ${sent} acknowledged)`));
  }, IDLE_CHECK_INTERVAL_MS);
  const firstAtMs = epochMs();
  try {
    while (acked < msgs) {
      while (sent < msgs && sent - acked < maxPending) {
        publishOne();
        sent++;
      }
      if (failure !== undefined) throw failure;
      await window.wait();
      if (failure !== undefined) throw failure;
    }
  } finally {
    clearInterval(stallTimer);
    inbox?.unsubscribe();
  }
  options.onProgress?.(acked);
  return throughput({ msgs, bytes: msgs * options.sizeBytes, firstAtMs, lastAtMs: lastAckAtMs });
}

function describeReply(data: Uint8Array, statusDescription: string | undefined): string {
  if (data.length === 0) return statusDescription ?? 'empty reply (no stream captures the subject?)';
  return Buffer.from(data).toString('utf8').slice(0, 200);
}

/** Publishes one message at a time, each awaited (`js.publish()`), after `warmupMsgs` unmeasured ones. */
export async function jsPublishSyncOnConnection(options: {
  nc: NatsConnection;
  subject: string;
  msgs: number;
  sizeBytes: number;
  warmupMsgs: number;
  onProgress?: ProgressFn;
}): Promise<LatencyResult> {
  const js = jetstream(options.nc);
  const payload = makePayload(options.sizeBytes);
  for (let i = 0; i < options.warmupMsgs; i++) await js.publish(options.subject, payload, { timeout: JS_ACK_TIMEOUT_MS });
  const samplesUs = new Array<number>(options.msgs);
  const startedMs = performance.now();
  for (let i = 0; i < options.msgs; i++) {
    const sentMs = performance.now();
    await js.publish(options.subject, payload, { timeout: JS_ACK_TIMEOUT_MS });
    samplesUs[i] = (performance.now() - sentMs) * 1000;
    if ((i + 1) % 100 === 0) options.onProgress?.(i + 1);
  }
  return summarizeLatencies(samplesUs, performance.now() - startedMs);
}

/** A durable pull consumer with explicit acks on `stream`, delivering everything. */
export async function createBenchConsumer(options: { nc: NatsConnection; stream: string; consumer: string }): Promise<void> {
  const jsm = await jetstreamManager(options.nc);
  await jsm.consumers.add(options.stream, { durable_name: options.consumer, ack_policy: 'explicit', deliver_policy: 'all' });
}

/**
 * Drains `msgs` messages from a pull consumer with fetches of `batch`, acking
 * each one (explicit ack); measures from the first fetch until the server has
 * the last ack (a flush after it).
 */
export async function jsFetchOnConnection(options: {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  msgs: number;
  batch: number;
  onProgress?: ProgressFn;
}): Promise<ThroughputResult & { readonly isComplete: boolean }> {
  const consumer = await jetstream(options.nc).consumers.get(options.stream, options.consumer);
  let received = 0;
  let bytes = 0;
  const firstAtMs = epochMs();
  while (received < options.msgs) {
    const before = received;
    const messages = await consumer.fetch({ max_messages: Math.min(options.batch, options.msgs - received), expires: JS_ACK_TIMEOUT_MS });
    for await (const msg of messages) {
      msg.ack();
      received++;
      bytes += msg.data.length;
      if (received % PROGRESS_EVERY_MSGS === 0) options.onProgress?.(received);
    }
    if (received === before) break;
  }
  await options.nc.flush();
  options.onProgress?.(received);
  return { ...throughput({ msgs: received, bytes, firstAtMs, lastAtMs: epochMs() }), isComplete: received >= options.msgs };
}

/**
 * Publishes `msgs` messages at `ratePerSec` (each stamped with its publish
 * time) while a pull consumer (`consume()`, explicit acks) receives them;
 * returns the end-to-end latencies. Both sides share this process; at a few
 * thousand messages a second that costs little.
 */
export async function jsEndToEndOnConnection(options: {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  subject: string;
  msgs: number;
  sizeBytes: number;
  ratePerSec: number;
  onProgress?: ProgressFn;
}): Promise<LatencyResult & { readonly received: number }> {
  if (options.sizeBytes < TIMESTAMP_BYTES) throw new Error(`end-to-end payloads hold a timestamp: at least ${TIMESTAMP_BYTES} bytes`);
  const js = jetstream(options.nc);
  const consumer = await js.consumers.get(options.stream, options.consumer);
  const messages = await consumer.consume({ max_messages: JS_FETCH_BATCH_DEFAULT });
  const samplesUs: number[] = [];
  let lastReceivedAtMs = epochMs();
  const receiving = (async () => {
    for await (const msg of messages) {
      const nowMs = epochMs();
      lastReceivedAtMs = nowMs;
      samplesUs.push((nowMs - Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.length).readDoubleLE(0)) * 1000);
      msg.ack();
      if (samplesUs.length % 100 === 0) options.onProgress?.(samplesUs.length);
      if (samplesUs.length >= options.msgs) break;
    }
  })();
  const template = makePayload(options.sizeBytes);
  let failure: Error | undefined;
  const intervalMs = 1000 / options.ratePerSec;
  const startedMs = performance.now();
  let sent = 0;
  while (sent < options.msgs && failure === undefined) {
    const due = Math.min(options.msgs, Math.floor((performance.now() - startedMs) / intervalMs) + 1);
    for (; sent < due; sent++) {
      const payload = Buffer.from(template);
      payload.writeDoubleLE(epochMs(), 0);
      js.publish(options.subject, payload, { timeout: JS_ACK_TIMEOUT_MS }).catch((err: Error) => (failure ??= err));
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  lastReceivedAtMs = epochMs();
  const idle = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (failure !== undefined || samplesUs.length >= options.msgs || epochMs() - lastReceivedAtMs > JS_ACK_TIMEOUT_MS) {
        clearInterval(timer);
        resolve();
      }
    }, IDLE_CHECK_INTERVAL_MS);
  });
  await Promise.race([receiving, idle]);
  await messages.close();
  if (failure !== undefined) throw failure;
  await options.nc.flush();
  return { ...summarizeLatencies(samplesUs, performance.now() - startedMs), received: samplesUs.length };
}
