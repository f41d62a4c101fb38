/**
 * `canopy bench pub|sub|pubsub|request|js-pub|js-pub-sync|js-fetch|js-e2e <subject>`: a load generator in the spirit
 * of `nats bench`, on the official nats.js client, against any NATS server. The
 * workloads live in workloads.ts (the compare script runs the same functions in
 * separate processes); this file only parses flags, draws a progress bar on a
 * TTY and prints the summary table.
 */
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/server/options.ts';
import { addConnectionFlags, CliError, describeError, isNoRespondersError, parseClientSecurity, parseServerUrls, readIntegerFlag, readStringFlag, type ClientSecurity } from '../cli/client-connection.ts';
import { readChoiceFlag } from '../cli/stream-commands.ts';
import {
  CLIENTS_MAX,
  connectBenchClient,
  createBenchConsumer,
  deleteBenchStream,
  JS_E2E_RATE_DEFAULT,
  JS_FETCH_BATCH_DEFAULT,
  JS_PENDING_ACKS_DEFAULT,
  jsEndToEndOnConnection,
  jsFetchOnConnection,
  jsPublishOnConnection,
  jsPublishSyncOnConnection,
  prepareBenchStream,
  type JsStorage,
  PAYLOAD_BYTES_DEFAULT,
  PAYLOAD_BYTES_MAX,
  publishWorkload,
  pubSubWorkload,
  requestWorkload,
  startReplier,
  startSubscribers,
  type LatencyResult,
  type ProgressFn,
  type SubscribeResult,
  type ThroughputResult,
} from './workloads.ts';

export const BENCH_MSGS_DEFAULT = 100_000;
export const BENCH_MSGS_MAX = 1_000_000_000;
export const BENCH_IDLE_TIMEOUT_MS = 5000;
export const BENCH_REQUEST_TIMEOUT_MS = 5000;
const REQUEST_WARMUP_MSGS = 20;

type BenchOptions = {
  readonly url: string;
  readonly security: ClientSecurity;
  readonly subject: string;
  readonly msgs: number;
  readonly sizeBytes: number;
  readonly publishers: number;
  readonly subscribers: number;
  readonly queue: string | undefined;
};

function addBenchFlags<T>(yargs: Argv<T>, roles: { hasPublishers: boolean; hasSubscribers: boolean }): Argv<T> {
  let builder = addConnectionFlags(yargs)
    .positional('subject', { type: 'string', describe: 'subject to use' })
    .option('msgs', { type: 'number', default: BENCH_MSGS_DEFAULT, describe: 'messages to publish (or expect per subscriber)' })
    .option('size', { type: 'number', default: PAYLOAD_BYTES_DEFAULT, describe: 'payload bytes per message' });
  if (roles.hasPublishers) {
    builder = builder.option('pub', { type: 'number', default: 1, describe: 'publisher connections (msgs are split among them)' });
  }
  if (roles.hasSubscribers) {
    builder = builder
      .option('sub', { type: 'number', default: 1, describe: 'subscriber connections' })
      .option('queue', { type: 'string', describe: 'put the subscribers in this queue group' });
  }
  return builder as Argv<T>;
}

function readClientsFlag(argv: Record<string, unknown>, key: string): number {
  return argv[key] === undefined ? 1 : readIntegerFlag(argv, key, { min: 1, max: CLIENTS_MAX });
}

function parseBenchOptions(argv: Record<string, unknown>): BenchOptions {
  return {
    url: parseServerUrls(argv['server']).join(','),
    security: parseClientSecurity(argv),
    subject: String(argv['subject']),
    msgs: readIntegerFlag(argv, 'msgs', { min: 1, max: BENCH_MSGS_MAX }),
    sizeBytes: readIntegerFlag(argv, 'size', { min: 0, max: PAYLOAD_BYTES_MAX }),
    publishers: readClientsFlag(argv, 'pub'),
    subscribers: readClientsFlag(argv, 'sub'),
    queue: readStringFlag(argv, 'queue'),
  };
}

/** A progress bar on stderr when it is a terminal; a no-op otherwise. */
function startProgress(label: string, total: number): { update: ProgressFn; stop(): void } {
  if (process.stderr.isTTY !== true) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}`, stream: process.stderr, hideCursor: true, fps: 10 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    update: (done) => bar.update(Math.min(done, total)),
    stop: () => {
      bar.update(total);
      bar.stop();
    },
  };
}

function formatInteger(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '—';
}

function formatMegabytes(bytesPerSec: number): string {
  return (bytesPerSec / 1e6).toFixed(2);
}

function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function throughputRow(side: string, clients: number, result: ThroughputResult): string[] {
  return [
    side,
    String(clients),
    formatInteger(result.msgs),
    `${(result.elapsedMs / 1000).toFixed(2)} s`,
    formatInteger(result.msgsPerSec),
    formatMegabytes(result.bytesPerSec),
  ];
}

const THROUGHPUT_HEADER = ['side', 'clients', 'msgs', 'elapsed', 'msgs/s', 'MB/s'] as const;

function printIncomplete(result: SubscribeResult): void {
  if (!result.isComplete) {
    process.stderr.write(
      `canopy bench: only ${formatInteger(result.msgs)} of ${formatInteger(result.expectedMsgs)} messages arrived (idle for ${BENCH_IDLE_TIMEOUT_MS} ms)\n`,
    );
  }
}

function printHeadline(mode: string, options: BenchOptions, clients: string): void {
  process.stdout.write(
    `canopy bench ${mode} ${JSON.stringify(options.subject)}: ${formatInteger(options.msgs)} msgs of ${options.sizeBytes} B, ${clients}, ${options.url}\n\n`,
  );
}

/** Runs `body`, turning client failures into one CliError line. */
async function runBench(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (err instanceof CliError || err instanceof ConfigError) throw err;
    const message = isNoRespondersError(err) ? 'no responders are available (start a replier or drop --no-replier)' : describeError(err);
    throw new CliError('ERR_BENCH', `bench failed: ${message}`, { cause: err });
  }
}

const benchPubCommand: CommandModule = {
  command: 'pub <subject>',
  describe: 'publish only',
  builder: (yargs) => addBenchFlags(yargs, { hasPublishers: true, hasSubscribers: false }),
  handler: async (argv) => {
    const options = parseBenchOptions(argv as Record<string, unknown>);
    await runBench(async () => {
      const progress = startProgress('publish', options.msgs);
      const result = await publishWorkload({ ...options, clients: options.publishers, onProgress: progress.update });
      progress.stop();
      printHeadline('pub', options, `${options.publishers} publisher(s)`);
      printTable(THROUGHPUT_HEADER, [throughputRow('pub', options.publishers, result)]);
    });
  },
};

const benchSubCommand: CommandModule = {
  command: 'sub <subject>',
  describe: 'subscribe and measure what another publisher sends (waits for the first message)',
  builder: (yargs) => addBenchFlags(yargs, { hasPublishers: false, hasSubscribers: true }),
  handler: async (argv) => {
    const options = parseBenchOptions(argv as Record<string, unknown>);
    await runBench(async () => {
      const expectedMsgs = options.queue === undefined ? options.msgs * options.subscribers : options.msgs;
      const progress = startProgress('subscribe', expectedMsgs);
      const group = await startSubscribers({
        url: options.url,
        security: options.security,
        subject: options.subject,
        clients: options.subscribers,
        ...(options.queue === undefined ? {} : { queue: options.queue }),
        expectedMsgs,
        idleTimeoutMs: BENCH_IDLE_TIMEOUT_MS,
        onProgress: progress.update,
      });
      const onSignal = (): void => void group.close();
      process.once('SIGINT', onSignal);
      process.stderr.write(`Waiting for ${formatInteger(expectedMsgs)} messages on ${JSON.stringify(options.subject)}\n`);
      const result = await group.done;
      process.removeListener('SIGINT', onSignal);
      await group.close();
      progress.stop();
      printIncomplete(result);
      printHeadline('sub', options, `${options.subscribers} subscriber(s)`);
      printTable(THROUGHPUT_HEADER, [throughputRow('sub', options.subscribers, result)]);
    });
  },
};

const benchPubSubCommand: CommandModule = {
  command: 'pubsub <subject>',
  describe: 'publishers and subscribers in this process',
  builder: (yargs) => addBenchFlags(yargs, { hasPublishers: true, hasSubscribers: true }),
  handler: async (argv) => {
    const options = parseBenchOptions(argv as Record<string, unknown>);
    await runBench(async () => {
      const expectedMsgs = options.queue === undefined ? options.msgs * options.subscribers : options.msgs;
      const progress = startProgress('deliver', expectedMsgs);
      const { publish, subscribe } = await pubSubWorkload({
        url: options.url,
        security: options.security,
        subject: options.subject,
        msgs: options.msgs,
        sizeBytes: options.sizeBytes,
        publishers: options.publishers,
        subscribers: options.subscribers,
        ...(options.queue === undefined ? {} : { queue: options.queue }),
        idleTimeoutMs: BENCH_IDLE_TIMEOUT_MS,
        onProgress: progress.update,
      });
      progress.stop();
      printIncomplete(subscribe);
      printHeadline('pubsub', options, `${options.publishers} publisher(s), ${options.subscribers} subscriber(s)`);
      printTable(THROUGHPUT_HEADER, [
        throughputRow('pub', options.publishers, publish),
        throughputRow('sub', options.subscribers, subscribe),
      ]);
    });
  },
};

function latencyRow(result: LatencyResult): string[] {
  return [
    formatInteger(result.count),
    `${(result.elapsedMs / 1000).toFixed(2)} s`,
    formatInteger(result.requestsPerSec),
    formatInteger(result.minUs),
    formatInteger(result.p50Us),
    formatInteger(result.p90Us),
    formatInteger(result.p99Us),
    formatInteger(result.maxUs),
  ];
}

const benchRequestCommand: CommandModule = {
  command: 'request <subject>',
  aliases: ['req'],
  describe: 'sequential requests with latency percentiles (in-process replier unless --no-replier)',
  builder: (yargs) =>
    addBenchFlags(yargs, { hasPublishers: false, hasSubscribers: false })
      .option('replier', { type: 'boolean', default: true, describe: 'start an echo replier in this process (--no-replier to use your own)' })
      .option('msgs', { type: 'number', default: 10_000, describe: 'requests to send, one after another' }),
  handler: async (argv) => {
    const options = parseBenchOptions(argv as Record<string, unknown>);
    const hasReplier = (argv as Record<string, unknown>)['replier'] !== false;
    await runBench(async () => {
      const replier = hasReplier ? await startReplier({ url: options.url, security: options.security, subject: options.subject }) : undefined;
      try {
        const progress = startProgress('request', options.msgs);
        const result = await requestWorkload({
          url: options.url,
          security: options.security,
          subject: options.subject,
          msgs: options.msgs,
          sizeBytes: options.sizeBytes,
          timeoutMs: BENCH_REQUEST_TIMEOUT_MS,
          warmupMsgs: REQUEST_WARMUP_MSGS,
          onProgress: progress.update,
        });
        progress.stop();
        printHeadline('request', options, hasReplier ? 'in-process replier' : 'external replier');
        printTable(['requests', 'elapsed', 'req/s', 'min µs', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs'], [latencyRow(result)]);
      } finally {
        await replier?.close();
      }
    });
  },
};

// ---------------------------------------------------------------------------------------------
// JetStream: each run makes its own stream (marked as a bench stream) and deletes it unless --keep.

export const BENCH_STREAM_DEFAULT = 'canopy-bench';
export const JS_PENDING_ACKS_MAX = 100_000;
export const JS_RATE_MAX = 1_000_000;
const JS_SYNC_WARMUP_MSGS = 20;
const BENCH_CONSUMER = 'canopy-bench';
const STORAGES: readonly JsStorage[] = ['file', 'memory'];

type JsBenchOptions = BenchOptions & { readonly stream: string; readonly storage: JsStorage; readonly isKeeping: boolean };

function addJsBenchFlags<T>(yargs: Argv<T>, msgsDefault: number): Argv<T> {
  return addBenchFlags(yargs, { hasPublishers: false, hasSubscribers: false })
    .option('msgs', { type: 'number', default: msgsDefault, describe: 'messages to publish' })
    .option('stream', { type: 'string', default: BENCH_STREAM_DEFAULT, describe: 'stream to create for the run (an earlier bench stream of that name is replaced)' })
    .option('storage', { type: 'string', default: 'file', describe: 'file or memory' })
    .option('keep', { type: 'boolean', describe: 'keep the stream afterwards' }) as Argv<T>;
}

function parseJsBenchOptions(argv: Record<string, unknown>): JsBenchOptions {
  const stream = readStringFlag(argv, 'stream') ?? BENCH_STREAM_DEFAULT;
  if (stream === '' || /[\s.*>\\/]/.test(stream)) throw new ConfigError('stream', `${JSON.stringify(stream)} is not a stream name`);
  return {
    ...parseBenchOptions(argv),
    stream,
    storage: readChoiceFlag(argv, 'storage', STORAGES) ?? 'file',
    isKeeping: argv['keep'] === true,
  };
}

function printJsHeadline(mode: string, options: JsBenchOptions, detail: string): void {
  process.stdout.write(
    `canopy bench ${mode} ${JSON.stringify(options.subject)}: ${formatInteger(options.msgs)} msgs of ${options.sizeBytes} B, ${detail}, ` +
      `stream ${options.stream} (${options.storage}), ${options.url}\n\n`,
  );
}

/** Connects, makes the bench stream, runs `body`, deletes the stream (unless --keep), closes. */
async function withBenchStream(options: JsBenchOptions, body: (nc: Awaited<ReturnType<typeof connectBenchClient>>) => Promise<void>): Promise<void> {
  const nc = await connectBenchClient(options.url, 'canopy-bench-js', options.security);
  try {
    await prepareBenchStream({ nc, stream: options.stream, subject: options.subject, storage: options.storage });
    try {
      await body(nc);
    } finally {
      if (!options.isKeeping) await deleteBenchStream(nc, options.stream).catch(() => {});
    }
  } finally {
    await nc.close();
  }
}

const benchJsPubCommand: CommandModule = {
  command: 'js-pub <subject>',
  describe: `JetStream async publish: up to --pending PubAcks outstanding (js.publish(), or --lean)`,
  builder: (yargs) =>
    addJsBenchFlags(yargs, BENCH_MSGS_DEFAULT)
      .option('pending', { type: 'number', default: JS_PENDING_ACKS_DEFAULT, describe: 'PubAcks outstanding at most' })
      .option('lean', { type: 'boolean', describe: 'core publish with one reply subject counting PubAcks, not js.publish()' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const options = parseJsBenchOptions(args);
    const maxPending = readIntegerFlag(args, 'pending', { min: 1, max: JS_PENDING_ACKS_MAX });
    const isLean = args['lean'] === true;
    await runBench(async () => {
      await withBenchStream(options, async (nc) => {
        const progress = startProgress('js publish', options.msgs);
        const result = await jsPublishOnConnection({ nc, subject: options.subject, msgs: options.msgs, sizeBytes: options.sizeBytes, maxPending, isLean, onProgress: progress.update });
        progress.stop();
        printJsHeadline('js-pub', options, `${formatInteger(maxPending)} PubAcks outstanding, ${isLean ? 'lean (core publish + one reply subject)' : 'js.publish()'}`);
        printTable(THROUGHPUT_HEADER, [throughputRow(isLean ? 'js-pub lean' : 'js-pub', 1, result)]);
      });
    });
  },
};

const benchJsPubSyncCommand: CommandModule = {
  command: 'js-pub-sync <subject>',
  describe: 'JetStream publish, one at a time (each PubAck awaited): latency percentiles',
  builder: (yargs) => addJsBenchFlags(yargs, 5000),
  handler: async (argv) => {
    const options = parseJsBenchOptions(argv as Record<string, unknown>);
    await runBench(async () => {
      await withBenchStream(options, async (nc) => {
        const progress = startProgress('js publish', options.msgs);
        const result = await jsPublishSyncOnConnection({ nc, subject: options.subject, msgs: options.msgs, sizeBytes: options.sizeBytes, warmupMsgs: JS_SYNC_WARMUP_MSGS, onProgress: progress.update });
        progress.stop();
        printJsHeadline('js-pub-sync', options, 'one PubAck awaited at a time');
        printTable(['publishes', 'elapsed', 'msg/s', 'min µs', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs'], [latencyRow(result)]);
      });
    });
  },
};

const benchJsFetchCommand: CommandModule = {
  command: 'js-fetch <subject>',
  describe: 'JetStream pull drain: fill the stream, then fetch --batch at a time with explicit acks',
  builder: (yargs) =>
    addJsBenchFlags(yargs, BENCH_MSGS_DEFAULT).option('batch', { type: 'number', default: JS_FETCH_BATCH_DEFAULT, describe: 'messages per fetch' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const options = parseJsBenchOptions(args);
    const batch = readIntegerFlag(args, 'batch', { min: 1, max: JS_PENDING_ACKS_MAX });
    await runBench(async () => {
      await withBenchStream(options, async (nc) => {
        const fillProgress = startProgress('fill', options.msgs);
        const fill = await jsPublishOnConnection({
          nc,
          subject: options.subject,
          msgs: options.msgs,
          sizeBytes: options.sizeBytes,
          maxPending: JS_PENDING_ACKS_DEFAULT,
          isLean: true,
          onProgress: fillProgress.update,
        });
        fillProgress.stop();
        await createBenchConsumer({ nc, stream: options.stream, consumer: BENCH_CONSUMER });
        const progress = startProgress('fetch', options.msgs);
        const result = await jsFetchOnConnection({ nc, stream: options.stream, consumer: BENCH_CONSUMER, msgs: options.msgs, batch, onProgress: progress.update });
        progress.stop();
        if (!result.isComplete) process.stderr.write(`canopy bench: only ${formatInteger(result.msgs)} of ${formatInteger(options.msgs)} messages arrived\n`);
        printJsHeadline('js-fetch', options, `fetch ${batch}, explicit ack`);
        printTable(THROUGHPUT_HEADER, [throughputRow('fill (lean publish)', 1, fill), throughputRow('fetch + ack', 1, result)]);
      });
    });
  },
};

const benchJsE2eCommand: CommandModule = {
  command: 'js-e2e <subject>',
  describe: 'JetStream end to end: publish at --rate msg/s to a pull consumer; latency percentiles',
  builder: (yargs) =>
    addJsBenchFlags(yargs, 10_000).option('rate', { type: 'number', default: JS_E2E_RATE_DEFAULT, describe: 'messages per second' }),
  handler: async (argv) => {
    const args = argv as Record<string, unknown>;
    const options = parseJsBenchOptions(args);
    const ratePerSec = readIntegerFlag(args, 'rate', { min: 1, max: JS_RATE_MAX });
    if (options.sizeBytes < 8) throw new ConfigError('size', 'end-to-end payloads carry an 8-byte timestamp: at least 8');
    await runBench(async () => {
      await withBenchStream(options, async (nc) => {
        await createBenchConsumer({ nc, stream: options.stream, consumer: BENCH_CONSUMER });
        const progress = startProgress('deliver', options.msgs);
        const result = await jsEndToEndOnConnection({
          nc,
          stream: options.stream,
          consumer: BENCH_CONSUMER,
          subject: options.subject,
          msgs: options.msgs,
          sizeBytes: options.sizeBytes,
          ratePerSec,
          onProgress: progress.update,
        });
        progress.stop();
        if (result.received < options.msgs) process.stderr.write(`canopy bench: only ${formatInteger(result.received)} of ${formatInteger(options.msgs)} messages arrived\n`);
        printJsHeadline('js-e2e', options, `${formatInteger(ratePerSec)} msg/s to a pull consumer`);
        printTable(['received', 'elapsed', 'msg/s', 'min µs', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs'], [latencyRow(result)]);
      });
    });
  },
};

export const benchCommand: CommandModule = {
  command: 'bench',
  describe: 'measure a server: bench pub|sub|pubsub|request|js-pub|js-pub-sync|js-fetch|js-e2e <subject>',
  builder: (yargs) =>
    yargs
      .command(benchPubCommand)
      .command(benchSubCommand)
      .command(benchPubSubCommand)
      .command(benchRequestCommand)
      .command(benchJsPubCommand)
      .command(benchJsPubSyncCommand)
      .command(benchJsFetchCommand)
      .command(benchJsE2eCommand)
      .demandCommand(1, 'name a bench mode: pub, sub, pubsub, request, js-pub, js-pub-sync, js-fetch or js-e2e'),
  handler: () => {},
};
