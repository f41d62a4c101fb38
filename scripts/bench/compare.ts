/**
 * `npm run bench:compare`: canopy against Debian's nats-server on this machine,
 * same workloads, same official nats.js client, 128-byte payloads, alternating
 * A B A B for `--rounds` rounds; prints medians, ratios, server CPU per message
 * and RSS as a markdown table; `--record` also writes it into README.md here.
 * See scripts/bench/README.md for what each scenario means and the targets.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ensureNatsServer, readCpuUs, stopChild } from './server-processes.ts';
import type { JsEndToEndResult, JsFetchResult, WorkerArgs, WorkerMessage } from './worker.ts';
import {
  connectBenchClient,
  deleteBenchStream,
  JS_E2E_RATE_DEFAULT,
  JS_FETCH_BATCH_DEFAULT,
  JS_PENDING_ACKS_DEFAULT,
  type LatencyResult,
  type SubscribeResult,
  type ThroughputResult,
} from './workloads.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(BENCH_DIR, '../..');
const WORKER_PATH = join(BENCH_DIR, 'worker.ts');
const README_PATH = join(BENCH_DIR, 'README.md');
const RESULTS_HEADING = '## Latest results';

const SERVER_START_TIMEOUT_MS = 60_000;
const WORKER_READY_TIMEOUT_MS = 30_000;
/** A scenario that takes longer than this is abandoned (and reported as failed). */
const SCENARIO_TIMEOUT_MS = 180_000;
/** Subscribers stop waiting when nothing arrived for this long (lost messages, a stuck server). */
const SUBSCRIBER_IDLE_TIMEOUT_MS = 3000;
const REQUEST_TIMEOUT_MS = 5000;
const REQUEST_WARMUP_MSGS = 50;
const IDLE_SETTLE_MS = 1000;
const OUTPUT_TAIL_LINES = 20;
const FAN_OUT_SUBSCRIBERS = 4;
const QUEUE_SUBSCRIBERS = 4;
const JS_SYNC_WARMUP_MSGS = 50;
/** Time for the store to settle (write-back) before `du` reads it. */
const DISK_SETTLE_MS = 1000;
const DISK_PER_MSGS = 1_000_000;

type CompareOptions = {
  readonly rounds: number;
  readonly msgs: number;
  readonly requests: number;
  readonly sizeBytes: number;
  /** Messages per JetStream throughput run (js-pub, js-pub-lean, js-fetch). */
  readonly jsMsgs: number;
  /** Awaited publishes per js-pub-sync run. */
  readonly jsSyncMsgs: number;
  /** Messages per js-e2e run, published at JS_E2E_RATE_DEFAULT msg/s. */
  readonly e2eMsgs: number;
  /** Messages stored for the disk figure (scaled to 1 M). */
  readonly diskMsgs: number;
  /** canopy's `sync` setting (`always`, or an interval such as `1s`). */
  readonly canopySync: string;
  readonly scenarioIds: ReadonlySet<ScenarioId>;
  readonly serverNames: readonly ServerName[];
  readonly isRecording: boolean;
};

// ---------------------------------------------------------------------------------------------
// Child processes: every one is registered so any exit path kills it.

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAllChildren(): void {
  for (const child of children) child.kill('SIGKILL');
  removeStoreDirs();
}

/** JetStream store dirs of the servers under test, removed on every exit path. */
const storeDirs = new Set<string>();

function removeStoreDirs(): void {
  for (const dir of storeDirs) rmSync(dir, { recursive: true, force: true });
  storeDirs.clear();
}

process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`bench:compare: ${signal}, stopping\n`);
    killAllChildren();
    process.exit(130);
  });
}

/** Keeps the last lines a child printed, for error messages. */
function captureTail(child: ChildProcess): () => string {
  const lines: string[] = [];
  const onText = (text: string): void => {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      lines.push(line);
      if (lines.length > OUTPUT_TAIL_LINES) lines.shift();
    }
  };
  child.stdout?.setEncoding('utf8').on('data', onText);
  child.stderr?.setEncoding('utf8').on('data', onText);
  return () => lines.join('\n');
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Environment

function commandOutput(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return 'unknown';
  }
}

type Environment = {
  readonly date: string;
  readonly cpuCount: number;
  readonly cpuModel: string;
  readonly nodeVersion: string;
  readonly natsServerVersion: string;
  readonly gitCommit: string;
};

function describeEnvironment(): Environment {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpuCount: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    nodeVersion: process.version,
    natsServerVersion: commandOutput('nats-server', ['--version']).replace(/^nats-server:\s*/, ''),
    gitCommit: `${commandOutput('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'])}${
      commandOutput('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no']) === '' ? '' : ' with uncommitted changes'
    }`,
  };
}

/** VmRSS and VmHWM (peak) of `pid` in bytes, from /proc/<pid>/status. */
function readMemoryBytes(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** Resolves once something on `port` sends a NATS INFO line. */
function probeNats(port: number): Promise<boolean> {
  return new Promise((resolveProbe) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish(false), 1000);
    function finish(isUp: boolean): void {
      clearTimeout(timer);
      socket.destroy();
      resolveProbe(isUp);
    }
    socket.once('data', (data) => finish(data.subarray(0, 4).toString('latin1') === 'INFO'));
    socket.once('error', () => finish(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Servers under test

type ServerName = 'canopy' | 'nats-server';
const SERVER_NAMES: readonly ServerName[] = ['canopy', 'nats-server'];

type RunningServer = {
  readonly name: ServerName;
  readonly pid: number;
  readonly url: string;
  readonly child: ChildProcess;
  readonly idleRssBytes: number;
  /** JetStream's store directory (a temp dir). */
  readonly storeDir: string;
};

/**
 * canopy runs as `npm start` runs it: the single-file bundle (dist/canopy.mjs, made by `npm run build`
 * at the start of the comparison) with the same node flags. Extra flags for experiments:
 * CANOPY_NODE_FLAGS="--max-semi-space-size=4".
 */
/** The node flags of `npm start` in package.json; keep the two in step. */
const NPM_START_NODE_FLAGS = '--max-semi-space-size=1';
const CANOPY_NODE_FLAGS: readonly string[] = (process.env['CANOPY_NODE_FLAGS'] ?? NPM_START_NODE_FLAGS).split(' ').filter((flag) => flag !== '');

function buildCanopy(): void {
  process.stderr.write('building canopy (npm run build) ...\n');
  const run = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (run.status !== 0) throw new Error('npm run build failed');
}

async function startServer(name: ServerName, canopySync: string): Promise<RunningServer> {
  const port = await freePort();
  const monitorPort = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), `bench-compare-${name}-`));
  storeDirs.add(storeDir);
  const child = track(
    name === 'canopy'
      ? spawn(
          process.execPath,
          [
            ...CANOPY_NODE_FLAGS,
            'dist/canopy.mjs',
            'server',
            ...['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '--websocket_port', '0', '--log_level', 'warn', '--store_dir', storeDir, '--sync', canopySync],
          ],
          { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
        )
      : spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-js', '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const tail = captureTail(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start: ${tail()}`);
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it served clients:\n${tail()}`);
    }
    if (await probeNats(port)) break;
    if (Date.now() > deadline) throw new Error(`${name} did not serve clients within ${SERVER_START_TIMEOUT_MS} ms:\n${tail()}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  await new Promise((resolveWait) => setTimeout(resolveWait, IDLE_SETTLE_MS));
  return { name, pid, url: `nats://127.0.0.1:${port}`, child, idleRssBytes: readMemoryBytes(pid).rssBytes, storeDir };
}

/** RSS of an idle bare Node.js process: what canopy's figure contains before any canopy code. */
async function measureBaselineRss(nodeArgs: readonly string[]): Promise<number> {
  const child = track(spawn(process.execPath, [...nodeArgs, '-e', 'setInterval(() => {}, 1000); console.log("up")'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }));
  try {
    await withTimeout(
      new Promise<void>((resolveUp) => child.stdout?.once('data', () => resolveUp())),
      SERVER_START_TIMEOUT_MS,
      'baseline process',
    );
    await new Promise((resolveWait) => setTimeout(resolveWait, IDLE_SETTLE_MS));
    return child.pid === undefined ? Number.NaN : readMemoryBytes(child.pid).rssBytes;
  } catch {
    return Number.NaN;
  } finally {
    await stopChild(child);
  }
}

// ---------------------------------------------------------------------------------------------
// Workers

type Worker = {
  readonly child: ChildProcess;
  /** Resolves on `ready`. */
  readonly ready: Promise<void>;
  /** Resolves with the `result` payload. */
  readonly result: Promise<unknown>;
  go(): void;
};

function startWorker(args: WorkerArgs): Worker {
  const child = track(spawn(process.execPath, ['--import', 'tsx', WORKER_PATH, JSON.stringify(args)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-2000)));
  let onReady: () => void = () => {};
  let onResult: (value: unknown) => void = () => {};
  let rejectReady: (err: Error) => void = () => {};
  let rejectResult: (err: Error) => void = () => {};
  const ready = new Promise<void>((resolveReady, reject) => {
    onReady = resolveReady;
    rejectReady = reject;
  });
  const result = new Promise<unknown>((resolveResult, reject) => {
    onResult = resolveResult;
    rejectResult = reject;
  });
  const onFailure = (err: Error): void => {
    rejectReady(err);
    rejectResult(err);
  };
  // Both promises may end unobserved when a scenario fails early; the failure is reported once, by the scenario.
  ready.catch(() => {});
  result.catch(() => {});
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    let message: WorkerMessage;
    try {
      message = JSON.parse(line) as WorkerMessage;
    } catch {
      return;
    }
    if (message.type === 'ready') onReady();
    else if (message.type === 'result') onResult(message.result);
    else onFailure(new Error(`${args.role} worker: ${message.message}`));
  });
  child.once('exit', (code, signal) => {
    onFailure(new Error(`${args.role} worker exited (${code ?? signal}) early${stderr === '' ? '' : `: ${stderr.trim()}`}`));
  });
  child.stdin?.on('error', () => {
    // The worker may exit before reading stdin; its exit is reported above.
  });
  return { child, ready, result, go: () => child.stdin?.write('go\n') };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const SCENARIO_IDS = ['publish', 'pubsub', 'fanout', 'queue', 'request', 'js-pub', 'js-pub-lean', 'js-pub-sync', 'js-fetch', 'js-e2e'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];

type Measurement = {
  /** msg/s for throughput scenarios; p50 µs for latency scenarios. */
  readonly value: number;
  /** p99 µs for latency scenarios. */
  readonly p99Us?: number;
  /** Server CPU (user + system) per published message or per request, µs. */
  readonly cpuPerMsgUs: number;
  /** Set when fewer messages arrived than were sent. */
  readonly shortfall?: string;
};

type Scenario = {
  readonly id: ScenarioId;
  readonly title: string;
  /** throughput: `value` is msg/s; latency: `value` is p50 µs and `p99Us` is set. */
  readonly kind: 'throughput' | 'latency';
  /** Throughput: ratio at least this; latency: p50 / p99 ratios at most these. None for the JetStream rows yet. */
  readonly target?: { readonly atLeast: number } | { readonly p50AtMost: number; readonly p99AtMost: number };
  /** For latency rows: how many samples each run takes, shown in the title. */
  samples?(options: CompareOptions): number;
  run(server: RunningServer, options: CompareOptions, round: number): Promise<Measurement>;
};

async function measureCpu<T>(pid: number, body: () => Promise<T>): Promise<{ value: T; cpuUs: number }> {
  const before = readCpuUs(pid);
  const value = await body();
  return { value, cpuUs: readCpuUs(pid) - before };
}

function shortfallOf(result: SubscribeResult): string | undefined {
  return result.isComplete ? undefined : `${result.msgs.toLocaleString('en-US')} of ${result.expectedMsgs.toLocaleString('en-US')} delivered`;
}

/** Publisher in one process, `clients` subscribers in another; returns the subscriber side and CPU. */
async function runDelivery(
  server: RunningServer,
  options: CompareOptions,
  shape: { subject: string; clients: number; queue?: string; expectedMsgs: number },
): Promise<{ subscribe: SubscribeResult; cpuUs: number }> {
  const subscriber = startWorker({
    role: 'subscribe',
    url: server.url,
    subject: shape.subject,
    clients: shape.clients,
    ...(shape.queue === undefined ? {} : { queue: shape.queue }),
    expectedMsgs: shape.expectedMsgs,
    idleTimeoutMs: SUBSCRIBER_IDLE_TIMEOUT_MS,
    firstMessageTimeoutMs: WORKER_READY_TIMEOUT_MS,
  });
  const publisher = startWorker({ role: 'publish', url: server.url, subject: shape.subject, msgs: options.msgs, sizeBytes: options.sizeBytes });
  try {
    await withTimeout(Promise.all([subscriber.ready, publisher.ready]), WORKER_READY_TIMEOUT_MS, 'workers');
    const { value, cpuUs } = await measureCpu(server.pid, async () => {
      publisher.go();
      const [, subscribe] = await Promise.all([publisher.result, subscriber.result]);
      return subscribe as SubscribeResult;
    });
    return { subscribe: value, cpuUs };
  } finally {
    await Promise.all([stopChild(subscriber.child), stopChild(publisher.child)]);
  }
}

const SCENARIOS: readonly Scenario[] = [
  {
    id: 'publish',
    title: 'core publish only (1 publisher, no subscriber)',
    kind: 'throughput',
    target: { atLeast: 0.9 },
    async run(server, options, round) {
      const publisher = startWorker({ role: 'publish', url: server.url, subject: `compare.publish.${round}`, msgs: options.msgs, sizeBytes: options.sizeBytes });
      try {
        await withTimeout(publisher.ready, WORKER_READY_TIMEOUT_MS, 'publisher');
        const { value, cpuUs } = await measureCpu(server.pid, async () => {
          publisher.go();
          return (await publisher.result) as ThroughputResult;
        });
        return { value: value.msgsPerSec, cpuPerMsgUs: cpuUs / options.msgs };
      } finally {
        await stopChild(publisher.child);
      }
    },
  },
  {
    id: 'pubsub',
    title: 'core pub→sub, publisher and subscriber in separate processes (delivered msg/s)',
    kind: 'throughput',
    target: { atLeast: 0.8 },
    async run(server, options, round) {
      const { subscribe, cpuUs } = await runDelivery(server, options, { subject: `compare.pubsub.${round}`, clients: 1, expectedMsgs: options.msgs });
      return { value: subscribe.msgsPerSec, cpuPerMsgUs: cpuUs / options.msgs, ...optionalShortfall(subscribe) };
    },
  },
  {
    id: 'fanout',
    title: `core fan-out, 1 publisher → ${FAN_OUT_SUBSCRIBERS} subscribers (published msg/s)`,
    kind: 'throughput',
    target: { atLeast: 0.7 },
    async run(server, options, round) {
      const { subscribe, cpuUs } = await runDelivery(server, options, {
        subject: `compare.fanout.${round}`,
        clients: FAN_OUT_SUBSCRIBERS,
        expectedMsgs: options.msgs * FAN_OUT_SUBSCRIBERS,
      });
      return { value: subscribe.msgsPerSec / FAN_OUT_SUBSCRIBERS, cpuPerMsgUs: cpuUs / options.msgs, ...optionalShortfall(subscribe) };
    },
  },
  {
    id: 'queue',
    title: `core queue group of ${QUEUE_SUBSCRIBERS} (delivered msg/s)`,
    kind: 'throughput',
    target: { atLeast: 0.8 },
    async run(server, options, round) {
      const { subscribe, cpuUs } = await runDelivery(server, options, {
        subject: `compare.queue.${round}`,
        clients: QUEUE_SUBSCRIBERS,
        queue: 'compare-q',
        expectedMsgs: options.msgs,
      });
      return { value: subscribe.msgsPerSec, cpuPerMsgUs: cpuUs / options.msgs, ...optionalShortfall(subscribe) };
    },
  },
  {
    id: 'request',
    title: 'request-reply, sequential, replier in another process',
    kind: 'latency',
    target: { p50AtMost: 1.3, p99AtMost: 2 },
    samples: (options) => options.requests,
    async run(server, options, round) {
      const subject = `compare.request.${round}`;
      const replier = startWorker({ role: 'reply', url: server.url, subject });
      const requester = startWorker({
        role: 'request',
        url: server.url,
        subject,
        msgs: options.requests,
        sizeBytes: options.sizeBytes,
        timeoutMs: REQUEST_TIMEOUT_MS,
        warmupMsgs: REQUEST_WARMUP_MSGS,
      });
      try {
        await withTimeout(Promise.all([replier.ready, requester.ready]), WORKER_READY_TIMEOUT_MS, 'workers');
        const { value, cpuUs } = await measureCpu(server.pid, async () => {
          requester.go();
          return (await requester.result) as LatencyResult;
        });
        // The CPU window includes the unmeasured warm-up requests.
        return { value: value.p50Us, p99Us: value.p99Us, cpuPerMsgUs: cpuUs / (options.requests + REQUEST_WARMUP_MSGS) };
      } finally {
        replier.child.stdin?.end();
        await Promise.all([stopChild(replier.child), stopChild(requester.child)]);
      }
    },
  },
  {
    id: 'js-pub',
    title: `JetStream async publish, ${JS_PENDING_ACKS_DEFAULT} acks outstanding, \`js.publish()\``,
    kind: 'throughput',
    async run(server, options, round) {
      const { value, cpuUs } = await runJsWorker(server, {
        ...jsStreamArgs(server, options, 'js-pub', round),
        role: 'js-publish',
        maxPending: JS_PENDING_ACKS_DEFAULT,
        isLean: false,
      });
      return { value: (value as ThroughputResult).msgsPerSec, cpuPerMsgUs: cpuUs / options.jsMsgs };
    },
  },
  {
    id: 'js-pub-lean',
    title: `JetStream async publish, ${JS_PENDING_ACKS_DEFAULT} outstanding, lean (core publish + one reply inbox)`,
    kind: 'throughput',
    async run(server, options, round) {
      const { value, cpuUs } = await runJsWorker(server, {
        ...jsStreamArgs(server, options, 'js-pub-lean', round),
        role: 'js-publish',
        maxPending: JS_PENDING_ACKS_DEFAULT,
        isLean: true,
      });
      return { value: (value as ThroughputResult).msgsPerSec, cpuPerMsgUs: cpuUs / options.jsMsgs };
    },
  },
  {
    id: 'js-pub-sync',
    title: 'JetStream publish, awaited one by one',
    kind: 'latency',
    samples: (options) => options.jsSyncMsgs,
    async run(server, options, round) {
      const { value, cpuUs } = await runJsWorker(server, {
        ...jsStreamArgs(server, options, 'js-pub-sync', round),
        role: 'js-publish-sync',
        msgs: options.jsSyncMsgs,
        warmupMsgs: JS_SYNC_WARMUP_MSGS,
      });
      const result = value as LatencyResult;
      return { value: result.p50Us, p99Us: result.p99Us, cpuPerMsgUs: cpuUs / (options.jsSyncMsgs + JS_SYNC_WARMUP_MSGS) };
    },
  },
  {
    id: 'js-fetch',
    title: `JetStream pull drain, fetch ${JS_FETCH_BATCH_DEFAULT}, explicit ack`,
    kind: 'throughput',
    async run(server, options, round) {
      const { value, cpuUs } = await runJsWorker(server, {
        ...jsStreamArgs(server, options, 'js-fetch', round),
        role: 'js-fetch',
        batch: JS_FETCH_BATCH_DEFAULT,
      });
      const result = value as JsFetchResult;
      const shortfall = result.isComplete ? {} : { shortfall: `${result.msgs.toLocaleString('en-US')} of ${options.jsMsgs.toLocaleString('en-US')} fetched` };
      return { value: result.msgsPerSec, cpuPerMsgUs: cpuUs / options.jsMsgs, ...shortfall };
    },
  },
  {
    id: 'js-e2e',
    title: `JetStream end-to-end at ${JS_E2E_RATE_DEFAULT.toLocaleString('en-US')} msg/s to a pull consumer`,
    kind: 'latency',
    samples: (options) => options.e2eMsgs,
    async run(server, options, round) {
      const { value, cpuUs } = await runJsWorker(server, {
        ...jsStreamArgs(server, options, 'js-e2e', round),
        role: 'js-e2e',
        msgs: options.e2eMsgs,
        ratePerSec: JS_E2E_RATE_DEFAULT,
      });
      const result = value as JsEndToEndResult;
      const shortfall = result.received >= options.e2eMsgs ? {} : { shortfall: `${result.received.toLocaleString('en-US')} of ${options.e2eMsgs.toLocaleString('en-US')} received` };
      return { value: result.p50Us, p99Us: result.p99Us, cpuPerMsgUs: cpuUs / options.e2eMsgs, ...shortfall };
    },
  },
];

/** Stream and subject of one JetStream run: its own, so runs never see each other's messages. */
function jsStreamArgs(server: RunningServer, options: CompareOptions, id: ScenarioId, round: number) {
  const token = `${id.replace(/-/g, '_')}_${round}`;
  return { url: server.url, stream: `compare_${token}`, subject: `compare.js.${token}`, storage: 'file' as const, msgs: options.jsMsgs, sizeBytes: options.sizeBytes };
}

/**
 * One JetStream worker: it makes (and for js-fetch fills) its stream before
 * `ready`, so the CPU sample brackets only the measured part.
 */
async function runJsWorker(server: RunningServer, args: Extract<WorkerArgs, { role: `js-${string}` }>): Promise<{ value: unknown; cpuUs: number }> {
  const worker = startWorker(args);
  try {
    // Filling the js-fetch stream happens before `ready`: allow it the scenario's time.
    await withTimeout(worker.ready, args.role === 'js-fetch' ? SCENARIO_TIMEOUT_MS : WORKER_READY_TIMEOUT_MS, `${args.role} worker`);
    return await measureCpu(server.pid, async () => {
      worker.go();
      return await worker.result;
    });
  } finally {
    await stopChild(worker.child);
  }
}

// ---------------------------------------------------------------------------------------------
// Disk: bytes per 1 M stored messages

type DiskMeasurement = { readonly bytesPerMillion: number; readonly msgs: number } | { readonly error: string };

/** Allocated bytes under `dir` (`du -s -B1`: blocks, so sparse files count what they use). */
function duBytes(dir: string): number {
  const output = execFileSync('du', ['-s', '-B1', dir], { encoding: 'utf8' });
  return Number(output.split(/\s/)[0]);
}

/**
 * Stores `diskMsgs` messages in a fresh file stream (lean async publish), lets
 * the store settle, and scales the growth of the store dir to 1 M messages.
 * Runs before the rounds, so the store holds nothing else (LMDB reuses freed
 * pages, which would hide the growth after earlier runs).
 */
async function measureDisk(server: RunningServer, options: CompareOptions): Promise<DiskMeasurement> {
  const stream = 'compare_disk';
  try {
    const beforeBytes = duBytes(server.storeDir);
    await runJsWorker(server, {
      url: server.url,
      stream,
      subject: 'compare.js.disk',
      storage: 'file',
      msgs: options.diskMsgs,
      sizeBytes: options.sizeBytes,
      role: 'js-publish',
      maxPending: JS_PENDING_ACKS_DEFAULT,
      isLean: true,
      isKeepingStream: true,
    });
    await new Promise((resolveWait) => setTimeout(resolveWait, DISK_SETTLE_MS));
    const grownBytes = duBytes(server.storeDir) - beforeBytes;
    const nc = await connectBenchClient(server.url, 'compare-disk-cleanup');
    try {
      await deleteBenchStream(nc, stream);
    } finally {
      await nc.close();
    }
    return { bytesPerMillion: (grownBytes / options.diskMsgs) * DISK_PER_MSGS, msgs: options.diskMsgs };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

function optionalShortfall(result: SubscribeResult): { shortfall?: string } {
  const shortfall = shortfallOf(result);
  return shortfall === undefined ? {} : { shortfall };
}

// ---------------------------------------------------------------------------------------------
// Statistics and report

type Outcome = Measurement | { readonly error: string };
type Results = Map<ServerName, Map<ScenarioId, Outcome[]>>;

function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function measurements(results: Results, server: ServerName, scenario: ScenarioId): Measurement[] {
  return (results.get(server)?.get(scenario) ?? []).filter((o): o is Measurement => !('error' in o));
}

function firstError(results: Results, server: ServerName, scenario: ScenarioId): string | undefined {
  const failed = (results.get(server)?.get(scenario) ?? []).find((o): o is { error: string } => 'error' in o);
  return failed?.error;
}

function formatRate(value: number): string {
  if (!Number.isFinite(value)) return '—';
  return value >= 10_000 ? `${(value / 1000).toFixed(0)} k` : value.toFixed(0);
}

function formatMicros(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '—';
}

function formatCpu(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)} µs` : '—';
}

function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '—';
}

function formatMegabytes(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : '—';
}

function verdict(ratio: number, target: { atLeast?: number; atMost?: number }): string {
  if (!Number.isFinite(ratio)) return '';
  const isMet = (target.atLeast === undefined || ratio >= target.atLeast) && (target.atMost === undefined || ratio <= target.atMost);
  return isMet ? ' ✓' : ' ✗';
}

const CPU_RATIO_MAX = 3;
const IDLE_RSS_BYTES_MAX = 64 * 1024 * 1024;

/** A cell: the median, with the spread over rounds and a mark when messages went missing. */
function valueCell(values: readonly number[], format: (v: number) => string, shortfalls: readonly string[]): string {
  if (values.length === 0) return '—';
  const spread = values.length > 1 ? ` (${format(Math.min(...values))}–${format(Math.max(...values))})` : '';
  return `${format(median(values))}${spread}${shortfalls.length > 0 ? ' ⚠' : ''}`;
}

type ServerMemory = {
  readonly idleRssBytes: number;
  /** VmRSS after every round, the JetStream scenarios included. */
  readonly finalRssBytes: number;
  readonly peakRssBytes: number;
};
type BaselineMemory = { readonly nodeRssBytes: number };

function ratioCell(ratio: number, target: { atLeast?: number; atMost?: number } | undefined): string {
  if (target === undefined) return `${formatRatio(ratio)} (no target)`;
  const bound = target.atLeast !== undefined ? `≥ ${target.atLeast}×` : `≤ ${target.atMost ?? ''}×`;
  return `${formatRatio(ratio)} (${bound})${verdict(ratio, target)}`;
}

function diskCell(disk: DiskMeasurement | undefined): string {
  if (disk === undefined) return '—';
  if ('error' in disk) return `failed: ${disk.error.split('\n')[0] ?? ''}`;
  return `${formatMegabytes(disk.bytesPerMillion)} (${disk.msgs.toLocaleString('en-US')} stored, × ${(DISK_PER_MSGS / disk.msgs).toLocaleString('en-US')})`;
}

function renderReport(options: {
  results: Results;
  memory: ReadonlyMap<ServerName, ServerMemory>;
  disk: ReadonlyMap<ServerName, DiskMeasurement>;
  baseline: BaselineMemory;
  environment: Environment;
  compare: CompareOptions;
  startErrors: ReadonlyMap<ServerName, string>;
}): string {
  const { results, compare } = options;
  const rows: string[] = [
    '| scenario | canopy | nats-server | canopy / nats-server (target) | CPU/msg canopy | CPU/msg nats-server | CPU ratio (≤ 3× for core) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  const notes: string[] = [];
  for (const scenario of SCENARIOS) {
    if (!compare.scenarioIds.has(scenario.id)) continue;
    const canopy = measurements(results, 'canopy', scenario.id);
    const nats = measurements(results, 'nats-server', scenario.id);
    const cpuCanopy = median(canopy.map((m) => m.cpuPerMsgUs));
    const cpuNats = median(nats.map((m) => m.cpuPerMsgUs));
    const cpuRatio = cpuCanopy / cpuNats;
    const cpuCells = [
      formatCpu(cpuCanopy),
      formatCpu(cpuNats),
      `${formatRatio(cpuRatio)}${scenario.target === undefined ? '' : verdict(cpuRatio, { atMost: CPU_RATIO_MAX })}`,
    ];
    for (const server of SERVER_NAMES) {
      const error = firstError(results, server, scenario.id);
      if (error !== undefined) notes.push(`${server}, ${scenario.id}: failed in at least one round: ${error.split('\n')[0]}`);
      for (const m of measurements(results, server, scenario.id)) {
        if (m.shortfall !== undefined) notes.push(`${server}, ${scenario.id}: ${m.shortfall} (⚠)`);
      }
    }
    const shortfalls = (list: readonly Measurement[]): string[] => list.flatMap((m) => (m.shortfall === undefined ? [] : [m.shortfall]));
    const target = scenario.target;
    if (scenario.kind === 'latency') {
      const p50Ratio = median(canopy.map((m) => m.value)) / median(nats.map((m) => m.value));
      const p99Of = (list: readonly Measurement[]): number[] => list.map((m) => m.p99Us ?? Number.NaN);
      const p99Ratio = median(p99Of(canopy)) / median(p99Of(nats));
      const samples = scenario.samples === undefined ? '' : `, ${scenario.samples(compare).toLocaleString('en-US')} samples`;
      const isLatencyTarget = target !== undefined && 'p50AtMost' in target;
      rows.push(
        `| ${scenario.title}${samples}, p50 µs | ${valueCell(canopy.map((m) => m.value), formatMicros, shortfalls(canopy))} | ${valueCell(nats.map((m) => m.value), formatMicros, shortfalls(nats))} | ${ratioCell(p50Ratio, isLatencyTarget ? { atMost: target.p50AtMost } : undefined)} | ${cpuCells.join(' | ')} |`,
        `| ${scenario.title}, p99 µs | ${valueCell(p99Of(canopy), formatMicros, [])} | ${valueCell(p99Of(nats), formatMicros, [])} | ${ratioCell(p99Ratio, isLatencyTarget ? { atMost: target.p99AtMost } : undefined)} | | | |`,
      );
      continue;
    }
    const ratio = median(canopy.map((m) => m.value)) / median(nats.map((m) => m.value));
    const atLeast = target !== undefined && 'atLeast' in target ? { atLeast: target.atLeast } : undefined;
    rows.push(
      `| ${scenario.title}, msg/s | ${valueCell(canopy.map((m) => m.value), formatRate, shortfalls(canopy))} | ${valueCell(nats.map((m) => m.value), formatRate, shortfalls(nats))} | ${ratioCell(ratio, atLeast)} | ${cpuCells.join(' | ')} |`,
    );
  }
  const hasJetStream = [...compare.scenarioIds].some((id) => id.startsWith('js-'));
  const memoryRows = [
    `| server | idle RSS | RSS after the rounds${hasJetStream ? ' (JetStream included)' : ''} | peak RSS | JetStream disk per 1 M stored ${compare.sizeBytes}-byte messages |`,
    '| --- | --- | --- | --- | --- |',
  ];
  for (const server of SERVER_NAMES) {
    if (!compare.serverNames.includes(server)) continue;
    const memory = options.memory.get(server);
    const idleVerdict = server === 'canopy' && memory !== undefined ? ` (≤ 64 MB${memory.idleRssBytes <= IDLE_RSS_BYTES_MAX ? ' ✓' : ' ✗'})` : '';
    memoryRows.push(
      `| ${server} | ${formatMegabytes(memory?.idleRssBytes ?? Number.NaN)}${idleVerdict} | ${formatMegabytes(memory?.finalRssBytes ?? Number.NaN)} | ${formatMegabytes(memory?.peakRssBytes ?? Number.NaN)} | ${diskCell(options.disk.get(server))} |`,
    );
  }
  memoryRows.push(`| for reference: an idle bare \`node\` process | ${formatMegabytes(options.baseline.nodeRssBytes)} | | | |`);
  for (const [server, error] of options.startErrors) notes.unshift(`${server} did not start: ${error.split('\n')[0]}`);
  const env = options.environment;
  return [
    `${env.date}, commit ${env.gitCommit}; canopy with sync ${options.compare.canopySync}; ${env.cpuCount} CPUs (${env.cpuModel}); Node.js ${env.nodeVersion}; nats-server ${env.natsServerVersion}.`,
    `${compare.rounds} rounds, canopy and nats-server alternating; ${compare.msgs.toLocaleString('en-US')} messages of ${compare.sizeBytes} B per core throughput run, ` +
      `${compare.jsMsgs.toLocaleString('en-US')} per JetStream throughput run (one R1 file stream each);`,
    'medians over the rounds, (min–max) in brackets. CPU/msg is the server process\'s user + system time per published message (per request for request-reply).',
    '',
    ...rows,
    '',
    ...memoryRows,
    ...(notes.length > 0 ? ['', ...notes.map((note) => `- ${note}`)] : []),
    '',
  ].join('\n');
}

function recordReport(report: string): void {
  let readme = '';
  try {
    readme = readFileSync(README_PATH, 'utf8');
  } catch {
    readme = '# Benchmarks\n';
  }
  const headingAt = readme.indexOf(RESULTS_HEADING);
  const head = headingAt === -1 ? `${readme.trimEnd()}\n\n` : readme.slice(0, headingAt);
  writeFileSync(README_PATH, `${head}${RESULTS_HEADING}\n\n${report}`);
  process.stderr.write(`bench:compare: wrote the table into ${README_PATH}\n`);
}

// ---------------------------------------------------------------------------------------------
// Main

/** `--quick`: fewer messages (explicit flags still win), for a first look in well under a minute per round. */
const QUICK_DEFAULTS = { msgs: 100_000, requests: 500, 'js-msgs': 20_000, 'js-sync-msgs': 500, 'e2e-msgs': 2000, 'disk-msgs': 20_000 } as const;
const FULL_DEFAULTS = { msgs: 300_000, requests: 1000, 'js-msgs': 100_000, 'js-sync-msgs': 2000, 'e2e-msgs': 10_000, 'disk-msgs': 100_000 } as const;

function parseList<T extends string>(key: string, text: string, allowed: readonly T[]): T[] {
  const values = text.split(',').map((v) => v.trim()).filter((v) => v !== '');
  for (const value of values) {
    if (!(allowed as readonly string[]).includes(value)) {
      process.stderr.write(`bench:compare: --${key}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}\n`);
      process.exit(2);
    }
  }
  return values as T[];
}

function parseCompareOptions(): CompareOptions {
  const argv = yargs(hideBin(process.argv))
    .scriptName('npm run bench:compare --')
    .option('rounds', { type: 'number', default: 3, describe: 'rounds per server (A B A B …)' })
    .option('quick', { type: 'boolean', default: false, describe: 'fewer messages in every scenario (see the defaults below)' })
    .option('msgs', { type: 'number', describe: `messages per core throughput run (default ${FULL_DEFAULTS.msgs}, quick ${QUICK_DEFAULTS.msgs})` })
    .option('requests', { type: 'number', describe: `sequential requests per request-reply run (default ${FULL_DEFAULTS.requests}, quick ${QUICK_DEFAULTS.requests})` })
    .option('js-msgs', { type: 'number', describe: `messages per JetStream throughput run (default ${FULL_DEFAULTS['js-msgs']}, quick ${QUICK_DEFAULTS['js-msgs']})` })
    .option('js-sync-msgs', { type: 'number', describe: `awaited publishes per js-pub-sync run (default ${FULL_DEFAULTS['js-sync-msgs']}, quick ${QUICK_DEFAULTS['js-sync-msgs']})` })
    .option('e2e-msgs', { type: 'number', describe: `messages per js-e2e run at ${JS_E2E_RATE_DEFAULT} msg/s (default ${FULL_DEFAULTS['e2e-msgs']}, quick ${QUICK_DEFAULTS['e2e-msgs']})` })
    .option('disk-msgs', { type: 'number', describe: `messages stored for the disk figure (default ${FULL_DEFAULTS['disk-msgs']}, quick ${QUICK_DEFAULTS['disk-msgs']}; 0 skips it)` })
    .option('size', { type: 'number', default: 128, describe: 'payload bytes' })
    .option('only', { type: 'string', describe: `comma-separated scenarios to run: ${SCENARIO_IDS.join(', ')}` })
    .option('servers', { type: 'string', default: SERVER_NAMES.join(','), describe: 'comma-separated servers to run: canopy, nats-server' })
    .option('canopy-sync', { type: 'string', default: 'always', describe: 'canopy\'s sync setting: always, or an interval such as 1s' })
    .option('record', { type: 'boolean', default: false, describe: `write the table into ${README_PATH}` })
    .strict()
    .help()
    .fail((message, err) => {
      process.stderr.write(`bench:compare: ${err?.message ?? message}\n`);
      process.exit(2);
    })
    .parseSync();
  const defaults = argv.quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
  const pick = (key: keyof typeof FULL_DEFAULTS): number => (argv[key] as number | undefined) ?? defaults[key];
  const values = {
    msgs: pick('msgs'),
    requests: pick('requests'),
    jsMsgs: pick('js-msgs'),
    jsSyncMsgs: pick('js-sync-msgs'),
    e2eMsgs: pick('e2e-msgs'),
    diskMsgs: pick('disk-msgs'),
  };
  const checks: [string, number, number, number][] = [
    ['rounds', argv.rounds, 1, 101],
    ['msgs', values.msgs, 1, 100_000_000],
    ['requests', values.requests, 1, 10_000_000],
    ['js-msgs', values.jsMsgs, 1, 100_000_000],
    ['js-sync-msgs', values.jsSyncMsgs, 1, 10_000_000],
    ['e2e-msgs', values.e2eMsgs, 1, 10_000_000],
    ['disk-msgs', values.diskMsgs, 0, 100_000_000],
    ['size', argv.size, 0, 1024 * 1024],
  ];
  for (const [key, value, min, max] of checks) {
    if (!Number.isInteger(value) || value < min || value > max) {
      process.stderr.write(`bench:compare: --${key} must be an integer from ${min} to ${max}\n`);
      process.exit(2);
    }
  }
  const only = argv.only === undefined ? [...SCENARIO_IDS] : parseList('only', argv.only, SCENARIO_IDS);
  const serverNames = parseList('servers', argv.servers, SERVER_NAMES);
  if (only.includes('js-e2e') && argv.size < 8) {
    process.stderr.write('bench:compare: js-e2e stamps each payload with an 8-byte time: --size must be at least 8 (or leave js-e2e out with --only)\n');
    process.exit(2);
  }
  if (only.length === 0 || serverNames.length === 0) {
    process.stderr.write('bench:compare: --only and --servers need at least one entry each\n');
    process.exit(2);
  }
  return {
    rounds: argv.rounds,
    sizeBytes: argv.size,
    ...values,
    scenarioIds: new Set(only),
    serverNames,
    isRecording: argv.record,
    canopySync: argv['canopy-sync'],
  };
}

async function runRounds(servers: readonly RunningServer[], options: CompareOptions): Promise<Results> {
  const results: Results = new Map(SERVER_NAMES.map((name) => [name, new Map(SCENARIOS.map((s) => [s.id, [] as Outcome[]]))]));
  const scenarios = SCENARIOS.filter((scenario) => options.scenarioIds.has(scenario.id));
  for (let round = 1; round <= options.rounds; round++) {
    for (const server of servers) {
      for (const scenario of scenarios) {
        const startedMs = performance.now();
        let outcome: Outcome;
        try {
          outcome = await withTimeout(scenario.run(server, options, round), SCENARIO_TIMEOUT_MS, scenario.id);
        } catch (err) {
          outcome = { error: err instanceof Error ? err.message : String(err) };
        }
        results.get(server.name)?.get(scenario.id)?.push(outcome);
        const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
        const summary =
          'error' in outcome
            ? `FAILED: ${outcome.error.split('\n')[0]}`
            : scenario.kind === 'latency'
              ? `p50 ${formatMicros(outcome.value)} µs, p99 ${formatMicros(outcome.p99Us ?? Number.NaN)} µs${outcome.shortfall === undefined ? '' : ` (${outcome.shortfall})`}`
              : `${formatRate(outcome.value)} msg/s${outcome.shortfall === undefined ? '' : ` (${outcome.shortfall})`}`;
        process.stderr.write(
          `round ${round}/${options.rounds} ${server.name.padEnd(11)} ${scenario.id.padEnd(11)} ${summary}, CPU ${'error' in outcome ? '—' : formatCpu(outcome.cpuPerMsgUs)}/msg [${seconds} s]\n`,
        );
      }
    }
  }
  return results;
}

async function main(): Promise<void> {
  const options = parseCompareOptions();
  ensureNatsServer('bench:compare');
  const environment = describeEnvironment();
  // Build first: canopy runs from the bundle.
  if (options.serverNames.includes('canopy')) buildCanopy();
  const servers: RunningServer[] = [];
  const startErrors = new Map<ServerName, string>();
  for (const name of options.serverNames) {
    try {
      const server = await startServer(name, options.canopySync);
      servers.push(server);
      process.stderr.write(`bench:compare: ${name} on ${server.url} (pid ${server.pid}), idle RSS ${formatMegabytes(server.idleRssBytes)}, store ${server.storeDir}\n`);
    } catch (err) {
      startErrors.set(name, err instanceof Error ? err.message : String(err));
      process.stderr.write(`bench:compare: ${name} did not start: ${startErrors.get(name)}\n`);
    }
  }
  if (servers.length === 0) throw new Error('no server started');
  const baseline = { nodeRssBytes: await measureBaselineRss([]) };
  const startedMs = performance.now();
  const disk = new Map<ServerName, DiskMeasurement>();
  if (options.diskMsgs > 0) {
    for (const server of servers) {
      const measured = await measureDisk(server, options);
      disk.set(server.name, measured);
      process.stderr.write(`bench:compare: ${server.name} disk per 1 M stored messages: ${diskCell(measured)}\n`);
    }
  }
  const results = await runRounds(servers, options);
  const memory = new Map<ServerName, ServerMemory>(
    servers.map((server) => {
      const { rssBytes, peakRssBytes } = readMemoryBytes(server.pid);
      return [server.name, { idleRssBytes: server.idleRssBytes, finalRssBytes: rssBytes, peakRssBytes }];
    }),
  );
  await Promise.all(servers.map((server) => stopChild(server.child)));
  removeStoreDirs();
  process.stderr.write(`bench:compare: finished in ${((performance.now() - startedMs) / 1000).toFixed(0)} s\n\n`);
  const report = renderReport({ results, memory, disk, baseline, environment, compare: options, startErrors });
  process.stdout.write(report);
  if (options.isRecording) recordReport(report);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench:compare: ${err instanceof Error ? err.message : String(err)}\n`);
  killAllChildren();
  process.exit(1);
}
