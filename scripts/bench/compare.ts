/**
 * `npm run bench:compare`: canopy against Debian's nats-server on this machine,
 * same workloads, same official nats.js client, 128-byte payloads, alternating
 * A B A B for `--rounds` rounds; prints medians, ratios, server CPU per message
 * and RSS as a markdown table; `--record` also writes it into README.md here.
 * See scripts/bench/README.md for what each scenario means and the targets.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { WorkerArgs, WorkerMessage } from './worker.ts';
import type { LatencyResult, SubscribeResult, ThroughputResult } from './workloads.ts';

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
const KILL_GRACE_MS = 2000;
const OUTPUT_TAIL_LINES = 20;
const FAN_OUT_SUBSCRIBERS = 4;
const QUEUE_SUBSCRIBERS = 4;

type CompareOptions = {
  readonly rounds: number;
  readonly msgs: number;
  readonly requests: number;
  readonly sizeBytes: number;
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
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  await exited;
  clearTimeout(timer);
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

function isOnPath(command: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), fsConstants.X_OK);
      return true;
    } catch {
      // Not in this directory; try the next one.
    }
  }
  return false;
}

function ensureNatsServer(): void {
  if (isOnPath('nats-server')) return;
  process.stderr.write('bench:compare: nats-server is not on PATH; running: apt-get update && apt-get install -y nats-server\n');
  for (const args of [['update'], ['install', '-y', 'nats-server']]) {
    const run = spawnSync('apt-get', args, { stdio: 'inherit' });
    if (run.status !== 0) {
      throw new Error(`apt-get ${args.join(' ')} failed (exit ${run.status ?? run.signal}); install nats-server yourself and retry`);
    }
  }
  if (!isOnPath('nats-server')) throw new Error('apt-get installed nats-server, but it is still not on PATH');
}

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

const CLOCK_TICKS_PER_SEC = Number(commandOutput('getconf', ['CLK_TCK'])) || 100;

/** utime + stime of `pid` in microseconds, from /proc/<pid>/stat. */
function readCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm) ": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / CLOCK_TICKS_PER_SEC) * 1e6;
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

async function startServer(name: ServerName): Promise<RunningServer> {
  const port = await freePort();
  const monitorPort = await freePort();
  const child = track(
    name === 'canopy'
      ? spawn(
          process.execPath,
          [...CANOPY_NODE_FLAGS, 'dist/canopy.mjs', 'server', '-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '--websocket_port', '0', '--log_level', 'warn'],
          { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
        )
      : spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)], { stdio: ['ignore', 'pipe', 'pipe'] }),
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
  return { name, pid, url: `nats://127.0.0.1:${port}`, child, idleRssBytes: readMemoryBytes(pid).rssBytes };
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

type ScenarioId = 'publish' | 'pubsub' | 'fanout' | 'queue' | 'request';

type Measurement = {
  /** msg/s for throughput scenarios; p50 µs for request-reply. */
  readonly value: number;
  /** p99 µs for request-reply. */
  readonly p99Us?: number;
  /** Server CPU (user + system) per published message or per request, µs. */
  readonly cpuPerMsgUs: number;
  /** Set when fewer messages arrived than were sent. */
  readonly shortfall?: string;
};

type Scenario = {
  readonly id: ScenarioId;
  readonly title: string;
  readonly unit: string;
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
    unit: 'msg/s',
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
    unit: 'msg/s',
    async run(server, options, round) {
      const { subscribe, cpuUs } = await runDelivery(server, options, { subject: `compare.pubsub.${round}`, clients: 1, expectedMsgs: options.msgs });
      return { value: subscribe.msgsPerSec, cpuPerMsgUs: cpuUs / options.msgs, ...optionalShortfall(subscribe) };
    },
  },
  {
    id: 'fanout',
    title: `core fan-out, 1 publisher → ${FAN_OUT_SUBSCRIBERS} subscribers (published msg/s)`,
    unit: 'msg/s',
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
    unit: 'msg/s',
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
    unit: 'µs',
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
];

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

const THROUGHPUT_TARGETS: Readonly<Record<Exclude<ScenarioId, 'request'>, number>> = {
  publish: 0.9,
  pubsub: 0.8,
  fanout: 0.7,
  queue: 0.8,
};
const P50_RATIO_MAX = 1.3;
const P99_RATIO_MAX = 2;
const CPU_RATIO_MAX = 3;
const IDLE_RSS_BYTES_MAX = 64 * 1024 * 1024;

/** A cell: the median, with the spread over rounds and a mark when messages went missing. */
function valueCell(values: readonly number[], format: (v: number) => string, shortfalls: readonly string[]): string {
  if (values.length === 0) return '—';
  const spread = values.length > 1 ? ` (${format(Math.min(...values))}–${format(Math.max(...values))})` : '';
  return `${format(median(values))}${spread}${shortfalls.length > 0 ? ' ⚠' : ''}`;
}

type ServerMemory = { readonly idleRssBytes: number; readonly peakRssBytes: number };
type BaselineMemory = { readonly nodeRssBytes: number };

function renderReport(options: {
  results: Results;
  memory: ReadonlyMap<ServerName, ServerMemory>;
  baseline: BaselineMemory;
  environment: Environment;
  compare: CompareOptions;
  startErrors: ReadonlyMap<ServerName, string>;
}): string {
  const { results, compare } = options;
  const rows: string[] = [
    '| scenario | canopy | nats-server | canopy / nats-server (target) | CPU/msg canopy | CPU/msg nats-server | CPU ratio (≤ 3×) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  const notes: string[] = [];
  for (const scenario of SCENARIOS) {
    const canopy = measurements(results, 'canopy', scenario.id);
    const nats = measurements(results, 'nats-server', scenario.id);
    const cpuCanopy = median(canopy.map((m) => m.cpuPerMsgUs));
    const cpuNats = median(nats.map((m) => m.cpuPerMsgUs));
    const cpuRatio = cpuCanopy / cpuNats;
    const cpuCells = [formatCpu(cpuCanopy), formatCpu(cpuNats), `${formatRatio(cpuRatio)}${verdict(cpuRatio, { atMost: CPU_RATIO_MAX })}`];
    for (const server of SERVER_NAMES) {
      const error = firstError(results, server, scenario.id);
      if (error !== undefined) notes.push(`${server}, ${scenario.id}: failed in at least one round: ${error.split('\n')[0]}`);
      for (const m of measurements(results, server, scenario.id)) {
        if (m.shortfall !== undefined) notes.push(`${server}, ${scenario.id}: ${m.shortfall} (⚠)`);
      }
    }
    const shortfalls = (list: readonly Measurement[]): string[] => list.flatMap((m) => (m.shortfall === undefined ? [] : [m.shortfall]));
    if (scenario.id === 'request') {
      const p50Ratio = median(canopy.map((m) => m.value)) / median(nats.map((m) => m.value));
      const p99Of = (list: readonly Measurement[]): number[] => list.map((m) => m.p99Us ?? Number.NaN);
      const p99Ratio = median(p99Of(canopy)) / median(p99Of(nats));
      rows.push(
        `| ${scenario.title}, ${compare.requests.toLocaleString('en-US')} requests, p50 µs | ${valueCell(canopy.map((m) => m.value), formatMicros, [])} | ${valueCell(nats.map((m) => m.value), formatMicros, [])} | ${formatRatio(p50Ratio)} (≤ ${P50_RATIO_MAX}×)${verdict(p50Ratio, { atMost: P50_RATIO_MAX })} | ${cpuCells.join(' | ')} |`,
        `| ${scenario.title}, p99 µs | ${valueCell(p99Of(canopy), formatMicros, [])} | ${valueCell(p99Of(nats), formatMicros, [])} | ${formatRatio(p99Ratio)} (≤ ${P99_RATIO_MAX}×)${verdict(p99Ratio, { atMost: P99_RATIO_MAX })} | | | |`,
      );
      continue;
    }
    const target = THROUGHPUT_TARGETS[scenario.id];
    const ratio = median(canopy.map((m) => m.value)) / median(nats.map((m) => m.value));
    rows.push(
      `| ${scenario.title}, ${scenario.unit} | ${valueCell(canopy.map((m) => m.value), formatRate, shortfalls(canopy))} | ${valueCell(nats.map((m) => m.value), formatRate, shortfalls(nats))} | ${formatRatio(ratio)} (≥ ${target}×)${verdict(ratio, { atLeast: target })} | ${cpuCells.join(' | ')} |`,
    );
  }
  const memoryRows = ['| server | idle RSS | peak RSS |', '| --- | --- | --- |'];
  for (const server of SERVER_NAMES) {
    const memory = options.memory.get(server);
    const idleVerdict = server === 'canopy' && memory !== undefined ? ` (≤ 64 MB${memory.idleRssBytes <= IDLE_RSS_BYTES_MAX ? ' ✓' : ' ✗'})` : '';
    memoryRows.push(`| ${server} | ${formatMegabytes(memory?.idleRssBytes ?? Number.NaN)}${idleVerdict} | ${formatMegabytes(memory?.peakRssBytes ?? Number.NaN)} |`);
  }
  memoryRows.push(
    `| for reference: an idle bare \`node\` process | ${formatMegabytes(options.baseline.nodeRssBytes)} | |`,
  );
  for (const [server, error] of options.startErrors) notes.unshift(`${server} did not start: ${error.split('\n')[0]}`);
  const env = options.environment;
  return [
    `${env.date}, commit ${env.gitCommit}; ${env.cpuCount} CPUs (${env.cpuModel}); Node.js ${env.nodeVersion}; nats-server ${env.natsServerVersion}.`,
    `${compare.rounds} rounds, canopy and nats-server alternating; ${compare.msgs.toLocaleString('en-US')} messages of ${compare.sizeBytes} B per throughput run;`,
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

function parseCompareOptions(): CompareOptions {
  const argv = yargs(hideBin(process.argv))
    .scriptName('npm run bench:compare --')
    .option('rounds', { type: 'number', default: 3, describe: 'rounds per server (A B A B …)' })
    .option('msgs', { type: 'number', default: 300_000, describe: 'messages per throughput run' })
    .option('requests', { type: 'number', default: 1000, describe: 'sequential requests per request-reply run' })
    .option('size', { type: 'number', default: 128, describe: 'payload bytes' })
    .option('record', { type: 'boolean', default: false, describe: `write the table into ${README_PATH}` })
    .strict()
    .help()
    .fail((message, err) => {
      process.stderr.write(`bench:compare: ${err?.message ?? message}\n`);
      process.exit(2);
    })
    .parseSync();
  const checks: [string, number, number, number][] = [
    ['rounds', argv.rounds, 1, 101],
    ['msgs', argv.msgs, 1, 100_000_000],
    ['requests', argv.requests, 1, 10_000_000],
    ['size', argv.size, 0, 1024 * 1024],
  ];
  for (const [key, value, min, max] of checks) {
    if (!Number.isInteger(value) || value < min || value > max) {
      process.stderr.write(`bench:compare: --${key} must be an integer from ${min} to ${max}\n`);
      process.exit(2);
    }
  }
  return { rounds: argv.rounds, msgs: argv.msgs, requests: argv.requests, sizeBytes: argv.size, isRecording: argv.record };
}

async function runRounds(servers: readonly RunningServer[], options: CompareOptions): Promise<Results> {
  const results: Results = new Map(SERVER_NAMES.map((name) => [name, new Map(SCENARIOS.map((s) => [s.id, [] as Outcome[]]))]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const server of servers) {
      for (const scenario of SCENARIOS) {
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
            : scenario.id === 'request'
              ? `p50 ${formatMicros(outcome.value)} µs, p99 ${formatMicros(outcome.p99Us ?? Number.NaN)} µs`
              : `${formatRate(outcome.value)} msg/s${outcome.shortfall === undefined ? '' : ` (${outcome.shortfall})`}`;
        process.stderr.write(
          `round ${round}/${options.rounds} ${server.name.padEnd(11)} ${scenario.id.padEnd(8)} ${summary}, CPU ${'error' in outcome ? '—' : formatCpu(outcome.cpuPerMsgUs)}/msg [${seconds} s]\n`,
        );
      }
    }
  }
  return results;
}

async function main(): Promise<void> {
  const options = parseCompareOptions();
  ensureNatsServer();
  const environment = describeEnvironment();
  const servers: RunningServer[] = [];
  const startErrors = new Map<ServerName, string>();
  for (const name of SERVER_NAMES) {
    try {
      const server = await startServer(name);
      servers.push(server);
      process.stderr.write(`bench:compare: ${name} on ${server.url} (pid ${server.pid}), idle RSS ${formatMegabytes(server.idleRssBytes)}\n`);
    } catch (err) {
      startErrors.set(name, err instanceof Error ? err.message : String(err));
      process.stderr.write(`bench:compare: ${name} did not start: ${startErrors.get(name)}\n`);
    }
  }
  if (servers.length === 0) throw new Error('neither server started');
  buildCanopy();
  const baseline = { nodeRssBytes: await measureBaselineRss([]) };
  const startedMs = performance.now();
  const results = await runRounds(servers, options);
  const memory = new Map<ServerName, ServerMemory>(
    servers.map((server) => [server.name, { idleRssBytes: server.idleRssBytes, peakRssBytes: readMemoryBytes(server.pid).peakRssBytes }]),
  );
  await Promise.all(servers.map((server) => stopChild(server.child)));
  process.stderr.write(`bench:compare: finished in ${((performance.now() - startedMs) / 1000).toFixed(0)} s\n\n`);
  const report = renderReport({ results, memory, baseline, environment, compare: options, startErrors });
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
