/**
 * One benchmark client in its own process, for `npm run bench:compare`, so the
 * clients do not share one event loop (PERFORMANCE.md: pub→sub "publisher and
 * subscriber in separate processes").
 *
 *   node --import tsx scripts/bench/worker.ts '<json WorkerArgs>'
 *
 * Talks JSON lines on stdout: `{"type":"ready"}` once connected (and subscribed),
 * then `{"type":"result","result":…}` or `{"type":"error","message":…}`.
 * `publish` and `request` wait for a `go` line on stdin after `ready`, so the
 * parent can sample the server's CPU time right before the load starts.
 * `reply` runs until stdin closes or SIGTERM.
 */
import { createInterface } from 'node:readline';
import {
  connectBenchClient,
  publishOnConnection,
  requestWorkload,
  startReplier,
  startSubscribers,
  type LatencyResult,
  type SubscribeResult,
  type ThroughputResult,
} from './workloads.ts';

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
    };

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly result: ThroughputResult | SubscribeResult | LatencyResult }
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
  }
}

try {
  const args = JSON.parse(process.argv[2] ?? '') as WorkerArgs;
  await runWorker(args);
  process.exit(0);
} catch (err) {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
