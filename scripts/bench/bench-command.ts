/**
 * `canopy bench pub|sub|pubsub|request <subject>`: a load generator in the spirit
 * of `nats bench`, on the official nats.js client, against any NATS server. The
 * workloads live in workloads.ts (the compare script runs the same functions in
 * separate processes); this file only parses flags, draws a progress bar on a
 * TTY and prints the summary table.
 */
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/server/options.ts';
import { addServerFlag, CliError, describeError, isNoRespondersError, parseServerUrls, readIntegerFlag, readStringFlag } from '../cli/client-connection.ts';
import {
  CLIENTS_MAX,
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
  readonly subject: string;
  readonly msgs: number;
  readonly sizeBytes: number;
  readonly publishers: number;
  readonly subscribers: number;
  readonly queue: string | undefined;
};

function addBenchFlags<T>(yargs: Argv<T>, roles: { hasPublishers: boolean; hasSubscribers: boolean }): Argv<T> {
  let builder = addServerFlag(yargs)
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
      const replier = hasReplier ? await startReplier({ url: options.url, subject: options.subject }) : undefined;
      try {
        const progress = startProgress('request', options.msgs);
        const result = await requestWorkload({
          url: options.url,
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

export const benchCommand: CommandModule = {
  command: 'bench',
  describe: 'measure a server: bench pub|sub|pubsub|request <subject>',
  builder: (yargs) =>
    yargs
      .command(benchPubCommand)
      .command(benchSubCommand)
      .command(benchPubSubCommand)
      .command(benchRequestCommand)
      .demandCommand(1, 'name a bench mode: pub, sub, pubsub or request'),
  handler: () => {},
};
