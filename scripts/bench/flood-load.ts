/**
 * One connection-flood load process for `npm run bench:flood` (flood.bench.ts), on raw TCP
 * sockets (the load is cheap here, so what is measured is the server):
 *
 *   node --import tsx scripts/bench/flood-load.ts idle  <port> <connections>
 *   node --import tsx scripts/bench/flood-load.ts churn <port> <connects per second>
 *
 * `idle` opens `connections` clients (INFO, CONNECT, PING, PONG) at most IDLE_OPENING_MAX at a
 * time, says `{"type":"ready","open":n}` and keeps them open (answering PINGs) until stdin
 * closes. `churn` opens `rate` clients a second, each INFO → CONNECT + PING → PONG → close (a
 * reset: no TIME_WAIT, so the run does not run out of ephemeral ports), and says
 * `{"type":"churn","completed":n,"failed":n,"elapsedMs":…}` every second until stdin closes.
 * Stdout carries JSON lines only.
 */
import type { Socket } from 'node:net';
import { openFloodClient as openClient } from './flood-client.ts';

/** Idle clients being set up at once (a bounded burst, not 10,000 SYNs together). */
const IDLE_OPENING_MAX = 200;
/** How often the churn schedule opens its next batch. */
const CHURN_TICK_MS = 10;

function say(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function runIdle(port: number, connections: number): Promise<void> {
  const open: Socket[] = [];
  let failed = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < connections) {
      next++;
      try {
        open.push(await openClient(port));
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IDLE_OPENING_MAX, connections) }, worker));
  say({ type: 'ready', open: open.length, failed });
  await stdinClosed();
  for (const socket of open) socket.destroy();
}

async function runChurn(port: number, ratePerSec: number): Promise<void> {
  let completed = 0;
  let failed = 0;
  let started = 0;
  const startedMs = performance.now();
  const churnOne = (): void => {
    openClient(port).then(
      (socket) => {
        completed++;
        socket.resetAndDestroy();
      },
      () => failed++,
    );
  };
  // A fixed schedule: by now, rate × elapsed clients should have been started.
  const tick = setInterval(() => {
    const due = Math.floor(((performance.now() - startedMs) / 1000) * ratePerSec);
    for (; started < due; started++) churnOne();
  }, CHURN_TICK_MS);
  const report = setInterval(() => say({ type: 'churn', started, completed, failed, elapsedMs: performance.now() - startedMs }), 1000);
  await stdinClosed();
  clearInterval(tick);
  clearInterval(report);
  say({ type: 'churn', started, completed, failed, elapsedMs: performance.now() - startedMs });
}

function stdinClosed(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.on('end', resolve).on('close', resolve).resume();
  });
}

const [mode, portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
if ((mode !== 'idle' && mode !== 'churn') || !Number.isInteger(port) || !Number.isInteger(count) || count < 1) {
  process.stderr.write('usage: flood-load.ts idle|churn <port> <connections | connects per second>\n');
  process.exit(2);
}
if (mode === 'idle') await runIdle(port, count);
else await runChurn(port, count);
process.exit(0);
