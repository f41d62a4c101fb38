/**
 * A cluster of real `canopy raft-node run` processes on loopback for the issue 5
 * multi-process tests (test/hub/raft-host/cluster-*.test.ts): start, kill -9,
 * SIGSTOP/SIGCONT, wipe and restart nodes; optionally route every directed peer link
 * through a fault proxy (test/helpers/fault-proxy.ts) so a test can partition the
 * cluster; a load generator whose acknowledged proposals the checks below hold to.
 *
 * The checks (issue 5 item 5): every acknowledged proposal is in every replica's log at
 * the index it was acknowledged with; all replicas converge to the same log; no two
 * processes ever announced leadership in the same term (from every incarnation's log).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'cbor-x';
import { eventually } from './eventually.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { exitCodeOf, freePort, runCanopy, type CliRun } from './processes.ts';

const SECRET = 'raft-cluster-test-secret-0123456789';
const CLUSTER = 'test-raft';
/** Short Raft timers keep the tests quick: election timeout 300-600 ms. */
const TEST_TICK_MS = 30;
const TEST_ELECTION_TICKS = 10;

/** What the cluster needs of a test context: somewhere to register its cleanup (node:test's TestContext, or a benchmark's list). */
export type CleanupScope = { after(fn: () => unknown): void };

export type RaftClusterOptions = {
  readonly size: number;
  readonly viaProxies?: boolean;
  readonly snapshotEntries?: number;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  /** A data directory for a slot other than the default (e.g. on a small tmpfs). */
  readonly dataDirOf?: (slot: number) => string | undefined;
  /** Extra `node` flags for every replica process (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
};

export type RaftStatusView = {
  readonly id: number;
  readonly term: number;
  readonly lead: number;
  readonly role: string;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly records: number;
  readonly digest: number;
  readonly confState: { readonly voters: number[]; readonly learners: number[] };
  readonly progress: readonly { readonly id: number; readonly match: number }[];
};

export type RaftProcess = {
  readonly slot: number;
  readonly dataDir: string;
  readonly peerPort: number;
  readonly httpPort: number;
  run: CliRun | undefined;
  /** The replica id this slot runs now (changes after a wipe). */
  id: number;
  isStopped: boolean;
};

export type RaftCluster = {
  readonly nodes: readonly RaftProcess[];
  /** proxies.get(`${from}->${to}`) when started with `viaProxies` (slots, not ids). */
  readonly proxies: ReadonlyMap<string, FaultProxy>;
  start(slot: number): Promise<void>;
  kill9(slot: number): Promise<void>;
  pause(slot: number): void;
  resume(slot: number): void;
  /** kill -9, delete the data directory, start again (a new replica id). */
  wipe(slot: number): Promise<void>;
  status(slot: number): Promise<RaftStatusView>;
  /** The slot of a leader that the other running nodes agree on. */
  leaderSlot(options?: { readonly among?: readonly number[]; readonly timeoutMs?: number }): Promise<number>;
  request(slot: number, method: string, path: string, body?: unknown): Promise<{ readonly status: number; readonly json: any }>;
  /** Every record of `slot`'s replica (stale read), as index → text. */
  records(slot: number): Promise<Map<number, string>>;
  /** Cuts (or heals) every proxied link between the two groups of slots, both ways. */
  partition(groupA: readonly number[], groupB: readonly number[], isCut: boolean): void;
  /** Every "became leader" line of every incarnation so far: term → ids. */
  leadersByTerm(): Map<number, Set<number>>;
};

export async function startRaftCluster(t: CleanupScope, options: RaftClusterOptions): Promise<RaftCluster> {
  const root = mkdtempSync(join(tmpdir(), 'canopy-raft-cluster-'));
  const secretFile = join(root, 'secret');
  writeFileSync(secretFile, SECRET);
  const nodes: RaftProcess[] = [];
  for (let slot = 0; slot < options.size; slot++) {
    nodes.push({ slot, dataDir: options.dataDirOf?.(slot) ?? join(root, `node${slot + 1}`), peerPort: await freePort(), httpPort: await freePort(), run: undefined, id: slot + 1, isStopped: false });
  }
  const proxies = new Map<string, FaultProxy>();
  if (options.viaProxies === true) {
    for (const from of nodes) {
      for (const to of nodes) {
        if (from !== to) proxies.set(`${from.slot}->${to.slot}`, await startFaultProxy({ host: '127.0.0.1', port: to.peerPort }));
      }
    }
  }
  const logs: string[] = [];
  const voters = nodes.map((node) => node.id).join(',');
  for (const node of nodes) {
    const init = runCanopy(['raft-node', 'init', '--data', node.dataDir, '--cluster', CLUSTER, '--id', String(node.id), '--voters', voters]);
    assert.equal(await exitCodeOf(init), 0, init.stderr());
  }

  const peersFor = (from: RaftProcess): string =>
    nodes
      .map((to) => {
        const port = to === from ? to.peerPort : (proxies.get(`${from.slot}->${to.slot}`)?.port ?? to.peerPort);
        return `${to.slot + 1}=ws://127.0.0.1:${port}`;
      })
      .join(',');

  const request = async (slot: number, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const isCbor = path === '/propose';
    const response = await fetch(`http://127.0.0.1:${nodes[slot]!.httpPort}${path}`, {
      method,
      ...(body === undefined ? {} : { body: isCbor ? encode(body) : JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: response.status, json: await response.json() };
  };

  const status = async (slot: number): Promise<RaftStatusView> => (await request(slot, 'GET', '/status')).json as RaftStatusView;

  const start = async (slot: number): Promise<void> => {
    const node = nodes[slot]!;
    const run = runCanopy(
      [
      'raft-node', 'run', '--data', node.dataDir, '--cluster', CLUSTER, '--secret_file', secretFile,
      '--listen', `127.0.0.1:${node.peerPort}`, '--http', `127.0.0.1:${node.httpPort}`, '--peers', peersFor(node),
      '--tick_ms', String(options.tickMs ?? TEST_TICK_MS), '--election_ticks', String(options.electionTicks ?? TEST_ELECTION_TICKS),
      '--snapshot_entries', String(options.snapshotEntries ?? 100_000),
      ],
      { nodeArgs: options.nodeArgs ?? [] },
    );
    node.run = run;
    node.isStopped = false;
    void run.exited.then(() => logs.push(run.stdout()));
    node.id = (await eventually(() => status(slot), { timeoutMs: 30_000, intervalMs: 100 })).id;
  };

  const kill9 = async (slot: number): Promise<void> => {
    const run = nodes[slot]!.run;
    if (run === undefined) return;
    run.child.kill('SIGCONT');
    run.child.kill('SIGKILL');
    assert.equal(await run.exited, 'SIGKILL', `node slot ${slot} ended otherwise than by kill -9: ${run.stderr()}`);
    nodes[slot]!.run = undefined;
  };

  t.after(async () => {
    for (const node of nodes) await kill9(node.slot).catch(() => {});
    for (const proxy of proxies.values()) await proxy.close();
    rmSync(root, { recursive: true, force: true });
  });

  for (const node of nodes) await start(node.slot);

  const cluster: RaftCluster = {
    nodes,
    proxies,
    start,
    kill9,
    pause(slot) {
      nodes[slot]!.run?.child.kill('SIGSTOP');
      nodes[slot]!.isStopped = true;
    },
    resume(slot) {
      nodes[slot]!.run?.child.kill('SIGCONT');
      nodes[slot]!.isStopped = false;
    },
    async wipe(slot) {
      await kill9(slot);
      rmSync(nodes[slot]!.dataDir, { recursive: true, force: true });
      const oldId = nodes[slot]!.id;
      await start(slot);
      assert.notEqual(nodes[slot]!.id, oldId, 'a wiped replica must come back under a new id');
    },
    status,
    request,
    async leaderSlot({ among, timeoutMs = 20_000 } = {}) {
      const candidates = among ?? nodes.filter((node) => node.run !== undefined && !node.isStopped).map((node) => node.slot);
      return eventually(
        async () => {
          const views = await Promise.all(candidates.map((slot) => status(slot)));
          const leader = views.findIndex((view) => view.role === 'leader');
          assert.ok(leader >= 0, 'no leader yet');
          const { id, term } = views[leader]!;
          assert.ok(views.filter((view) => view.term === term && view.lead === id).length * 2 > views.length, 'leader not yet known to a majority');
          return candidates[leader]!;
        },
        { timeoutMs, intervalMs: 50 },
      );
    },
    async records(slot) {
      const all = new Map<number, string>();
      let from = 1;
      for (;;) {
        const { status: code, json } = await request(slot, 'GET', `/records?from=${from}&stale=1`);
        assert.equal(code, 200, JSON.stringify(json));
        for (const record of json.records as { index: number; data: string }[]) all.set(record.index, Buffer.from(record.data, 'base64').toString().split('\0')[0]!);
        if (json.records.length === 0) return all;
        from = json.records[json.records.length - 1].index + 1;
      }
    },
    partition(groupA, groupB, isCut) {
      for (const a of groupA) {
        for (const b of groupB) {
          proxies.get(`${a}->${b}`)?.cut(isCut);
          proxies.get(`${b}->${a}`)?.cut(isCut);
        }
      }
    },
    leadersByTerm() {
      const byTerm = new Map<number, Set<number>>();
      const live = nodes.map((node) => node.run?.stdout() ?? '');
      for (const text of [...logs, ...live]) {
        for (const line of text.split('\n')) {
          if (!line.includes('"became leader"')) continue;
          const entry = JSON.parse(line) as { id: number; term: number };
          const ids = byTerm.get(entry.term) ?? new Set<number>();
          ids.add(entry.id);
          byTerm.set(entry.term, ids);
        }
      }
      return byTerm;
    },
  };
  return cluster;
}

export type LoadResult = {
  /** Acknowledged proposals: text → the index the leader answered with. */
  readonly acked: Map<string, number>;
  readonly attempts: number;
  readonly failures: number;
};

/**
 * Proposes batches of unique records to whichever node leads, until `stop()`. A failed
 * batch (no leader, timeout, a killed node) is never retried with the same texts, so a
 * record is either acknowledged once or unknown.
 */
export function runLoad(cluster: RaftCluster, options: { readonly batch?: number; readonly prefix?: string; readonly record?: Buffer } = {}): { stop(): Promise<LoadResult> } {
  const batch = options.batch ?? 20;
  const acked = new Map<string, number>();
  let attempts = 0;
  let failures = 0;
  let isRunning = true;
  let next = 0;
  const loop = (async () => {
    let slot = 0;
    while (isRunning) {
      const texts = Array.from({ length: batch }, () => `${options.prefix ?? 'p'}-${next++}`);
      attempts++;
      try {
        const node = cluster.nodes[slot]!;
        if (node.run === undefined || node.isStopped) throw new Error('not running');
        // With `record`, each proposal is the text followed by that padding (the log compares by the text before the first NUL).
        const payload = (text: string): Buffer => (options.record === undefined ? Buffer.from(text) : Buffer.concat([Buffer.from(`${text}\0`), options.record]));
        const { status, json } = await cluster.request(slot, 'POST', '/propose', texts.map(payload));
        if (status !== 200) throw new Error(`${status} ${JSON.stringify(json)}`);
        texts.forEach((text, i) => acked.set(text, json.indexes[i]));
      } catch {
        failures++;
        slot = (slot + 1) % cluster.nodes.length;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  return {
    async stop() {
      isRunning = false;
      await loop;
      return { acked, attempts, failures };
    },
  };
}

/**
 * Waits until every running member's replica holds the same log (same applied index,
 * same records) and checks the acknowledged proposals and the leader-per-term rule.
 */
export async function assertConverged(cluster: RaftCluster, load: LoadResult, options: { readonly slots?: readonly number[] } = {}): Promise<Map<number, string>> {
  const slots = options.slots ?? cluster.nodes.filter((node) => node.run !== undefined).map((node) => node.slot);
  await eventually(
    async () => {
      const views = await Promise.all(slots.map((slot) => cluster.status(slot)));
      const first = views[0]!;
      for (const view of views) {
        assert.equal(view.applied, first.applied, `applied indexes differ: ${views.map((v) => `${v.id}:${v.applied}`).join(' ')}`);
        assert.equal(view.records, first.records);
        assert.equal(view.digest, first.digest, 'replica digests differ at the same applied index');
      }
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  const logs = await Promise.all(slots.map((slot) => cluster.records(slot)));
  for (const log of logs.slice(1)) assert.deepEqual(log, logs[0], 'replicas hold different logs');
  const log = logs[0]!;
  const seen = new Set<string>();
  for (const text of log.values()) {
    assert.ok(!seen.has(text), `record ${text} is in the log twice`);
    seen.add(text);
  }
  for (const [text, index] of load.acked) assert.equal(log.get(index), text, `acknowledged ${text} at index ${index} is not there`);
  for (const [term, ids] of cluster.leadersByTerm()) assert.equal(ids.size, 1, `term ${term} had leaders ${[...ids].join(', ')}`);
  return log;
}
