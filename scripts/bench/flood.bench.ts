/**
 * Connection floods (issue 6 "Security and hardening"): does an existing client keep its latency
 * while the server is flooded with connections? Not a test. A real `canopy server` (the bundle)
 * runs as a child; a responder and a requester (nats.js, one connection each, opened before the
 * flood) measure sequential request-reply latency:
 *
 * 1. quiet: nothing else connected;
 * 2. idle: with `--idle` (10,000) idle clients connected (one load process, flood-load.ts idle);
 * 3. flood: the idle clients plus `--rate` (2,000) connects a second of churn (INFO, CONNECT,
 *    PING/PONG, close) from `--churn-processes` load processes (flood-load.ts churn).
 *
 * Target: flood p99 ≤ 2 × quiet p99 (medians over the rounds). `--profile` runs the server with `--cpu-prof` (the profile
 * goes to .bench/). The server and the idle load process each hold one fd per connection: run
 * through `npm run bench:flood`, which raises `ulimit -n` to the hard limit first.
 *
 * The phases repeat `--rounds` times (default 3) and the verdict compares the median p99s: on a
 * shared machine one phase can be unlucky.
 *
 *   npm run bench:flood [-- --idle 10000 --rate 2000 --seconds 10 --rounds 3 --churn-processes 2 --profile]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { freePort } from '../../test/helpers/processes.ts';
import { ensureNatsServer, readCpuUs, stopChild, waitFor } from './server-processes.ts';
import { makePayload, summarizeLatencies, type LatencyResult } from './workloads.ts';

const argv = yargs(hideBin(process.argv))
  .option('idle', { type: 'number', default: 10_000, describe: 'idle connections held open during the idle and flood phases' })
  .option('rate', { type: 'number', default: 2000, describe: 'connects per second of churn during the flood phase (all churn processes together)' })
  .option('churn-processes', { type: 'number', default: 2, describe: 'load processes sharing the churn' })
  .option('seconds', { type: 'number', default: 10, describe: 'seconds of sequential requests measured per phase' })
  .option('rounds', { type: 'number', default: 3, describe: 'rounds of quiet, idle and flood phases (the verdict takes the medians)' })
  .option('server-node-flags', { type: 'string', default: '--max-semi-space-size=1', describe: "the server's node flags (default: npm start's)" })
  .option('profile', { type: 'boolean', default: false, describe: 'run the server with --cpu-prof (profile in .bench/)' })
  .option('server', { choices: ['canopy', 'nats'] as const, default: 'canopy' as const, describe: "the server under test: canopy, or Debian's nats-server for reference (installed if missing)" })
  .strict()
  .parseSync();

const SUBJECT = 'flood.echo';
const WARMUP_REQUESTS = 200;
const REQUEST_TIMEOUT_MS = 10_000;
/** fds the server needs beyond the idle clients: churn in flight, its listeners, stdio. */
const FD_HEADROOM = 2048;
/** Churn reports to wait for before measuring: the schedule runs at its rate by then. */
const CHURN_WARMUP_REPORTS = 2;

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function openFilesLimit(): number {
  const line = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return line?.[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(line?.[1] ?? 1024);
}

/**
 * A child that speaks JSON lines on stdout: `next(type)` resolves with the next line of that type;
 * `exited` is taken at spawn, so an exit that comes before anyone waits for it is not missed.
 */
function spawnJsonChild(args: readonly string[]): { child: ChildProcess; exited: Promise<unknown>; next(type: string): Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const waiting: { type: string; resolve: (message: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as Record<string, unknown>;
    const index = waiting.findIndex((waiter) => waiter.type === message['type']);
    if (index >= 0) waiting.splice(index, 1)[0]!.resolve(message);
  });
  return {
    child,
    exited,
    next: (type) => new Promise((resolve) => waiting.push({ type, resolve })),
  };
}

/** Sequential requests for `durationMs` (at least `WARMUP_REQUESTS` of them): their latencies. */
async function measure(nc: NatsConnection, durationMs: number): Promise<LatencyResult> {
  const payload = makePayload(64);
  const samplesUs: number[] = [];
  const startedMs = performance.now();
  while (performance.now() - startedMs < durationMs || samplesUs.length < WARMUP_REQUESTS) {
    const sentMs = performance.now();
    await nc.request(SUBJECT, payload, { timeout: REQUEST_TIMEOUT_MS });
    samplesUs.push((performance.now() - sentMs) * 1000);
  }
  return summarizeLatencies(samplesUs, performance.now() - startedMs);
}

async function stopLoad(load: { child: ChildProcess; exited: Promise<unknown> }): Promise<void> {
  load.child.stdin?.end();
  await load.exited;
}

const needed = argv.idle + FD_HEADROOM;
if (openFilesLimit() < needed) {
  process.stderr.write(`bench:flood: ulimit -n is ${openFilesLimit()}, the run needs about ${needed}; raise it (npm run bench:flood does, up to the hard limit)\n`);
  process.exit(2);
}

/** A nats-server config file raising max_connections, in a temp dir removed at exit. */
function writeNatsConfig(maxConnections: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-flood-nats-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'nats.conf');
  writeFileSync(file, `max_connections: ${maxConnections}\n`);
  return file;
}

const port = await freePort();
const profileArgs = argv.profile ? ['--cpu-prof', '--cpu-prof-dir', '.bench'] : [];
if (argv.profile) mkdirSync('.bench', { recursive: true });
const maxConnections = String(argv.idle * 2 + FD_HEADROOM);
if (argv.server === 'nats') ensureNatsServer('bench:flood');
const server =
  argv.server === 'nats'
    ? // The same bench against nats-server on the same machine, for reference (its max_connections is a config key only).
      spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-c', writeNatsConfig(maxConnections)], { stdio: ['ignore', 'ignore', 'inherit'] })
    : spawn(
        process.execPath,
        [...profileArgs, ...argv['server-node-flags'].split(' ').filter((flag) => flag !== ''), 'dist/canopy.mjs', 'server', '-a', '127.0.0.1', '-p', String(port), '-m', '0', '--websocket_port', '0', '--jetstream', 'false', '--log_level', 'warn', '--max_connections', maxConnections],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
children.push(server);
const url = `127.0.0.1:${port}`;
const responder = await waitFor('the server', () => connect({ servers: url, name: 'flood-responder' }), 30_000);
responder.subscribe(SUBJECT, {
  callback: (err, msg) => {
    if (err === null) msg.respond(msg.data);
  },
});
await responder.flush();
const requester = await connect({ servers: url, name: 'flood-requester', timeout: REQUEST_TIMEOUT_MS });
await measure(requester, 0);
const phaseMs = argv.seconds * 1000;

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  return readCpuUs(pid!) / 1e6;
}

type Round = { serverCpuFlood: number; churnCpuFlood: number; quiet: LatencyResult; idle: LatencyResult; flood: LatencyResult; idleOpen: number; idleFailed: number; idleOpenMs: number; churned: number; churnFailed: number; churnMs: number };

/** One round: quiet, then with the idle clients, then with the idle clients and the churn. */
async function runRound(): Promise<Round> {
  const quiet = await measure(requester, phaseMs);
  const idleLoad = spawnJsonChild(['scripts/bench/flood-load.ts', 'idle', String(port), String(argv.idle)]);
  const openingMs = performance.now();
  const ready = await idleLoad.next('ready');
  const idleOpenMs = performance.now() - openingMs;
  const idle = await measure(requester, phaseMs);
  const perProcessRate = Math.ceil(argv.rate / argv['churn-processes']);
  const churns = Array.from({ length: argv['churn-processes'] }, () => spawnJsonChild(['scripts/bench/flood-load.ts', 'churn', String(port), String(perProcessRate)]));
  for (let i = 0; i < CHURN_WARMUP_REPORTS; i++) await Promise.all(churns.map((churn) => churn.next('churn')));
  const cpuBefore = { server: cpuSeconds(server.pid), churn: churns.reduce((sum, churn) => sum + cpuSeconds(churn.child.pid), 0) };
  const floodStartedMs = performance.now();
  const flood = await measure(requester, phaseMs);
  const floodSeconds = (performance.now() - floodStartedMs) / 1000;
  const serverCpuFlood = (cpuSeconds(server.pid) - cpuBefore.server) / floodSeconds;
  const churnCpuFlood = (churns.reduce((sum, churn) => sum + cpuSeconds(churn.child.pid), 0) - cpuBefore.churn) / floodSeconds;
  const finals = await Promise.all(
    churns.map(async (churn) => {
      const final = churn.next('churn');
      churn.child.stdin?.end();
      return await final;
    }),
  );
  await Promise.all(churns.map((churn) => churn.exited));
  await stopLoad(idleLoad);
  return {
    serverCpuFlood,
    churnCpuFlood,
    quiet,
    idle,
    flood,
    idleOpen: Number(ready['open']),
    idleFailed: Number(ready['failed']),
    idleOpenMs,
    churned: finals.reduce((sum, final) => sum + Number(final['completed']), 0),
    churnFailed: finals.reduce((sum, final) => sum + Number(final['failed']), 0),
    churnMs: Math.max(...finals.map((final) => Number(final['elapsedMs']))),
  };
}

const rounds: Round[] = [];
for (let i = 0; i < argv.rounds; i++) rounds.push(await runRound());
await Promise.all([requester.close(), responder.close()]);
await stopChild(server, 10_000);

const row = (name: string, result: LatencyResult): string =>
  `${name.padEnd(10)} ${result.p50Us.toFixed(0).padStart(8)} ${result.p90Us.toFixed(0).padStart(8)} ${result.p99Us.toFixed(0).padStart(8)} ${result.maxUs.toFixed(0).padStart(9)} ${result.requestsPerSec.toFixed(0).padStart(9)}`;
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const lines: string[] = [];
rounds.forEach((round, i) => {
  lines.push(
    `round ${i + 1}: ${round.idleOpen} idle clients open (${round.idleFailed} failed) in ${(round.idleOpenMs / 1000).toFixed(1)} s; churn ${round.churned} connects in ${(round.churnMs / 1000).toFixed(1)} s (${((round.churned / round.churnMs) * 1000).toFixed(0)}/s, target ${argv.rate}/s), ${round.churnFailed} failed`,
    'phase        p50 µs   p90 µs   p99 µs    max µs     req/s   (sequential request-reply, one client)',
    row('quiet', round.quiet),
    row('idle', round.idle),
    row('flood', round.flood),
    `flood p99 / quiet p99 = ${(round.flood.p99Us / round.quiet.p99Us).toFixed(2)}; during the flood the server used ${(round.serverCpuFlood * 100).toFixed(0)}% of a core, the churn processes ${(round.churnCpuFlood * 100).toFixed(0)}%; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
    '',
  );
});
const quietP99 = median(rounds.map((round) => round.quiet.p99Us));
const floodP99 = median(rounds.map((round) => round.flood.p99Us));
const ratio = floodP99 / quietP99;
lines.push(`median of ${rounds.length} rounds: quiet p99 ${quietP99.toFixed(0)} µs, idle p99 ${median(rounds.map((round) => round.idle.p99Us)).toFixed(0)} µs, flood p99 ${floodP99.toFixed(0)} µs`);
lines.push(`flood p99 / quiet p99 = ${ratio.toFixed(2)} (target ≤ 2): ${ratio <= 2 ? 'met' : 'MISSED'}`, '');
process.stdout.write(lines.join('\n'));
process.exit(0);
