/**
 * Raft cluster benchmark (issue 5 targets). Not a test, not a CI gate (STYLE.md §2.8 (6)).
 * Run: `npm run bench:raft [-- --seconds 10 --clients 8 --batch 256 --rounds 5 --nodes 3]`
 *
 * Real `canopy raft-node run` processes on loopback (test/helpers/raft-cluster.ts), with
 * the CLI's default timers (tick 50 ms, election timeout 10 ticks = 500 ms, randomized
 * up to 1 s):
 *
 * 1. **Throughput**: `--clients` concurrent HTTP clients each POST batches of `--batch`
 *    proposals of 128 bytes to the leader's control API for `--seconds`; a proposal
 *    counts once the leader has committed and applied it. Prints committed proposals/s
 *    and the latency of one batch (p50, p99). Target: ≥ 50 k/s on 3 nodes.
 * 2. **Failover**, `--rounds` times: under a light load, kill -9 the leader, then probe
 *    every surviving node with a one-record proposal every 10 ms; the failover time is
 *    from the kill to the first proposal committed by a new leader. Target: ≤ 2 ×
 *    election timeout + 1 s.
 */
import { performance } from 'node:perf_hooks';
import { startRaftCluster, type RaftCluster } from '../../test/helpers/raft-cluster.ts';

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

const SECONDS = option('seconds', 10);
const CLIENTS = option('clients', 8);
const BATCH = option('batch', 256);
const ROUNDS = option('rounds', 5);
const NODES = option('nodes', 3);
const TICK_MS = 50;
const ELECTION_TICKS = 10;
const RECORD = Buffer.alloc(128, 0x61);
/** `--profile DIR`: run every replica with --cpu-prof into DIR (written when they stop at the end). */
const PROFILE_INDEX = process.argv.indexOf('--profile');
const PROFILE_DIR = PROFILE_INDEX === -1 ? undefined : process.argv[PROFILE_INDEX + 1];

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function throughput(cluster: RaftCluster): Promise<void> {
  const leader = await cluster.leaderSlot();
  const records = Array.from({ length: BATCH }, () => RECORD);
  const latencies: number[] = [];
  let committed = 0;
  let errors = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const started = performance.now();
      const { status } = await cluster.request(leader, 'POST', '/propose', records);
      if (status === 200) {
        committed += BATCH;
        latencies.push(performance.now() - started);
      } else errors++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const loop = (await cluster.request(leader, 'GET', '/status')).json.loop;
  console.log(`leader loop: ${JSON.stringify(loop)} (${(loop.savedEntries / Math.max(1, loop.syncs)).toFixed(1)} entries per fsync)`);
  const rate = Math.round(committed / seconds);
  console.log(
    `throughput: ${rate.toLocaleString('en')} committed 128-byte proposals/s on ${NODES} nodes ` +
      `(${CLIENTS} clients × batches of ${BATCH}, ${seconds.toFixed(1)} s, ${errors} failed batches); ` +
      `batch latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms — target ≥ 50,000/s ${rate >= 50_000 ? '✓' : '✗'}`,
  );
}

async function failover(cluster: RaftCluster): Promise<void> {
  const electionMs = TICK_MS * ELECTION_TICKS;
  const targetMs = 2 * electionMs + 1000;
  const times: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const leader = await cluster.leaderSlot();
    const survivors = cluster.nodes.filter((node) => node.slot !== leader).map((node) => node.slot);
    await cluster.kill9(leader);
    const killedAt = performance.now();
    let committedAt: number | undefined;
    while (committedAt === undefined) {
      const answers = await Promise.all(
        survivors.map((slot) =>
          cluster.request(slot, 'POST', '/propose', [RECORD]).then(
            ({ status }) => status === 200,
            () => false,
          ),
        ),
      );
      if (answers.some(Boolean)) committedAt = performance.now();
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const ms = committedAt - killedAt;
    times.push(ms);
    console.log(`failover round ${round}: ${ms.toFixed(0)} ms from kill -9 of the leader to a new leader's commit`);
    await cluster.start(leader);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const worst = Math.max(...times);
  console.log(
    `failover: worst ${worst.toFixed(0)} ms, median ${percentile([...times].sort((a, b) => a - b), 50).toFixed(0)} ms over ${ROUNDS} kills; ` +
      `election timeout ${electionMs} ms (randomized ${electionMs}–${2 * electionMs - TICK_MS} ms), target ≤ ${targetMs} ms ${worst <= targetMs ? '✓' : '✗'}`,
  );
}

const cleanups: (() => unknown)[] = [];
try {
  const cluster = await startRaftCluster(
    { after: (fn) => cleanups.push(fn) },
    { size: NODES, tickMs: TICK_MS, electionTicks: ELECTION_TICKS, snapshotEntries: 10_000_000, nodeArgs: PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] },
  );
  await throughput(cluster);
  if (PROFILE_DIR !== undefined) {
    // Profiles are written when a process exits normally: stop every replica with SIGTERM.
    await Promise.all(cluster.nodes.map((node) => (node.run?.child.kill('SIGTERM'), node.run?.exited)));
  } else await failover(cluster);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}
