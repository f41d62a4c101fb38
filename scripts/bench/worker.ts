/**
 * One benchmark client in its own process, for `npm run bench:compare`, so the
 * clients do not share one event loop (PERFORMANCE.md: pub→sub "publisher and
 * subscriber in separate processes").
 *
 *   node --import tsx scripts/bench/worker.ts '<json WorkerArgs>'
 *
 * Talks JSON lines on stdout: `{"type":"ready"}` once connected (and subscribed),
 * then `{"type":"result","result":…}` or `{"type":"error","message":…}`.
 * `publish`, `request` and the JetStream roles (`js-*`) wait for a `go` line on
 * stdin after `ready`, so the parent can sample the server's CPU time right
 * before the load starts. A JetStream role makes its own stream first (and for
 * `js-fetch` fills it) before `ready`, and deletes it at the end.
 * `reply` runs until stdin closes or SIGTERM.
 */
import { createInterface } from 'node:readline';
import {
  connectBenchClient,
  createBenchConsumer,
  deleteBenchStream,
  jsEndToEndOnConnection,
  jsFetchOnConnection,
  JS_PENDING_ACKS_DEFAULT,
  jsPublishOnConnection,
  jsPublishSyncOnConnection,
  prepareBenchStream,
  publishOnConnection,
  requestWorkload,
  startReplier,
  startSubscribers,
  type JsStorage,
  type LatencyResult,
  type SubscribeResult,
  type ThroughputResult,
} from './workloads.ts';

/** What every JetStream role shares: its own stream on `subject`, deleted at the end unless kept. */
type JsStreamArgs = {
  readonly url: string;
  readonly stream: string;
  readonly subject: string;
  readonly storage: JsStorage;
  readonly msgs: number;
  readonly sizeBytes: number;
};

const BENCH_CONSUMER = 'bench';

export type WorkerArgs =
  | { readonly role: 'publish'; readonly url: string; readonly subject: string; readonly msgs: number; readonly sizeBytes: number }
  | {
      readonly role: 'subscribe';
      readonly url: string;
      readonly subject: string;
      readonly clients: number;
      readonly queue?: string;
      readonly expectedMsgs: number;
      readonly idleTimeoutMs: number;
      readonly firstMessageTimeoutMs: number;
    }
  | { readonly role: 'reply'; readonly url: string; readonly subject: string }
  | {
      readonly role: 'request';
      readonly url: string;
      readonly subject: string;
      readonly msgs: number;
      readonly sizeBytes: number;
      readonly timeoutMs: number;
      readonly warmupMsgs: number;
    }
  | (JsStreamArgs & { readonly role: 'js-publish'; readonly maxPending: number; readonly isLean: boolean; readonly isKeepingStream?: boolean })
  | (JsStreamArgs & { readonly role: 'js-publish-sync'; readonly warmupMsgs: number })
  | (JsStreamArgs & { readonly role: 'js-fetch'; readonly batch: number })
  | (JsStreamArgs & { readonly role: 'js-e2e'; readonly ratePerSec: number });

export type JsFetchResult = ThroughputResult & { readonly isComplete: boolean };
export type JsEndToEndResult = LatencyResult & { readonly received: number };

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly result: ThroughputResult | SubscribeResult | LatencyResult | JsFetchResult | JsEndToEndResult }
  | { readonly type: 'error'; readonly message: string };

function send(message: WorkerMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Resolves on the first `go` line; rejects when stdin closes first. */
function waitForGo(): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process.stdin });
    lines.on('line', (line) => {
      if (line.trim() === 'go') {
        resolve();
        lines.close();
      }
    });
    lines.on('close', () => reject(new Error('stdin closed before "go"')));
  });
}

function waitForStdinEnd(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
    process.stdin.resume();
    process.once('SIGTERM', resolve);
  });
}

async function runWorker(args: WorkerArgs): Promise<void> {
  switch (args.role) {
    case 'publish': {
      const nc = await connectBenchClient(args.url, 'compare-publisher');
      send({ type: 'ready' });
      await waitForGo();
      const result = await publishOnConnection({ nc, subject: args.subject, msgs: args.msgs, sizeBytes: args.sizeBytes });
      await nc.close();
      send({ type: 'result', result });
      return;
    }
    case 'subscribe': {
      const group = await startSubscribers({
        url: args.url,
        subject: args.subject,
        clients: args.clients,
        ...(args.queue === undefined ? {} : { queue: args.queue }),
        expectedMsgs: args.expectedMsgs,
        idleTimeoutMs: args.idleTimeoutMs,
        firstMessageTimeoutMs: args.firstMessageTimeoutMs,
      });
      send({ type: 'ready' });
      const result = await group.done;
      await group.close();
      send({ type: 'result', result });
      return;
    }
    case 'reply': {
      const replier = await startReplier({ url: args.url, subject: args.subject });
      send({ type: 'ready' });
      await waitForStdinEnd();
      await replier.close();
      return;
    }
    case 'request': {
      // requestWorkload connects after `go`; its warm-up requests are not measured.
      send({ type: 'ready' });
      await waitForGo();
      const result = await requestWorkload({
        url: args.url,
        subject: args.subject,
        msgs: args.msgs,
        sizeBytes: args.sizeBytes,
        timeoutMs: args.timeoutMs,
        warmupMsgs: args.warmupMsgs,
      });
      send({ type: 'result', result });
      return;
    }
    case 'js-publish':
    case 'js-publish-sync':
    case 'js-fetch':
    case 'js-e2e':
      await runJetStreamWorker(args);
      return;
  }
}

/** Prepares the stream (filled, with a consumer, where the role needs it), says ready, runs on `go`. */
async function runJetStreamWorker(args: Extract<WorkerArgs, JsStreamArgs>): Promise<void> {
  const nc = await connectBenchClient(args.url, `compare-${args.role}`);
  await prepareBenchStream({ nc, stream: args.stream, subject: args.subject, storage: args.storage });
  if (args.role === 'js-fetch') {
    await jsPublishOnConnection({ nc, subject: args.subject, msgs: args.msgs, sizeBytes: args.sizeBytes, maxPending: JS_PENDING_ACKS_DEFAULT, isLean: true });
  }
  if (args.role === 'js-fetch' || args.role === 'js-e2e') await createBenchConsumer({ nc, stream: args.stream, consumer: BENCH_CONSUMER });
  send({ type: 'ready' });
  await waitForGo();
  const common = { nc, subject: args.subject, msgs: args.msgs, sizeBytes: args.sizeBytes };
  let result: WorkerMessage & { type: 'result' };
  switch (args.role) {
    case 'js-publish':
      result = { type: 'result', result: await jsPublishOnConnection({ ...common, maxPending: args.maxPending, isLean: args.isLean }) };
      break;
    case 'js-publish-sync':
      result = { type: 'result', result: await jsPublishSyncOnConnection({ ...common, warmupMsgs: args.warmupMsgs }) };
      break;
    case 'js-fetch':
      result = { type: 'result', result: await jsFetchOnConnection({ nc, stream: args.stream, consumer: BENCH_CONSUMER, msgs: args.msgs, batch: args.batch }) };
      break;
    case 'js-e2e':
      result = { type: 'result', result: await jsEndToEndOnConnection({ ...common, stream: args.stream, consumer: BENCH_CONSUMER, ratePerSec: args.ratePerSec }) };
      break;
  }
  if (!(args.role === 'js-publish' && args.isKeepingStream === true)) await deleteBenchStream(nc, args.stream);
  await nc.close();
  send(result);
}

try {
  const args = JSON.parse(process.argv[2] ?? '') as WorkerArgs;
  await runWorker(args);
  process.exit(0);
} catch (err) {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
