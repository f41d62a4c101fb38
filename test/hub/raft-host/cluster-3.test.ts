/**
 * Issue 5 item 5 with 3 real `canopy raft-node` processes under a steady proposal
 * load: kill -9 of the leader, repeatedly; SIGSTOP/SIGCONT of the leader; one node's
 * data wiped and the node re-admitted under its new id. Every acknowledged proposal
 * survives, no two leaders share a term, all replicas converge (test/helpers/raft-cluster.ts).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually } from '../../helpers/eventually.ts';
import { assertConverged, runLoad, startRaftCluster } from '../../helpers/raft-cluster.ts';
import { fill, mountTmpfs } from '../../helpers/tmpfs.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('3 processes: kill -9 the leader three times, then SIGSTOP/SIGCONT it, under load', { timeout: 240_000 }, async (t) => {
  const cluster = await startRaftCluster(t, { size: 3, snapshotEntries: 500 });
  const load = runLoad(cluster);
  const leaders: number[] = [];
  for (let round = 0; round < 3; round++) {
    await sleep(700);
    const leader = await cluster.leaderSlot();
    leaders.push(cluster.nodes[leader]!.id);
    await cluster.kill9(leader);
    const next = await cluster.leaderSlot();
    assert.notEqual(next, leader);
    await sleep(500);
    await cluster.start(leader);
  }
  await sleep(700);
  const paused = await cluster.leaderSlot();
  const pausedTerm = (await cluster.status(paused)).term;
  cluster.pause(paused);
  const successor = await cluster.leaderSlot({ among: cluster.nodes.filter((node) => node.slot !== paused).map((node) => node.slot) });
  assert.ok((await cluster.status(successor)).term > pausedTerm, 'the new leader has a newer term');
  await sleep(500);
  cluster.resume(paused);
  // The old leader learns the newer term and follows.
  await eventually(async () => assert.equal((await cluster.status(paused)).role, 'follower'), { timeoutMs: 20_000, intervalMs: 50 });
  await sleep(700);
  const result = await load.stop();
  assert.ok(result.acked.size > 200, `the load made progress (${result.acked.size} acknowledged)`);
  await assertConverged(cluster, result);
});

test('3 processes: a wiped node comes back under a new id, is re-admitted, and counts toward quorum', { timeout: 240_000 }, async (t) => {
  const cluster = await startRaftCluster(t, { size: 3, snapshotEntries: 300 });
  const load = runLoad(cluster);
  await sleep(1500);
  const leader = await cluster.leaderSlot();
  const wiped = (leader + 1) % 3;
  const other = (leader + 2) % 3;
  const oldId = cluster.nodes[wiped]!.id;
  await cluster.wipe(wiped);
  const newId = cluster.nodes[wiped]!.id;
  const blank = await cluster.status(wiped);
  assert.deepEqual(blank.confState, { voters: [], learners: [] }, 'a wiped replica is a member of nothing');
  assert.equal(blank.role, 'follower');

  // Re-admission (hub/raft/README.md "Wiped and rolled-back nodes"): add-learner new, remove old, add-voter new.
  const address = `ws://127.0.0.1:${cluster.nodes[wiped]!.peerPort}`;
  const change = async (body: object): Promise<void> => {
    await eventually(
      async () => {
        const { status, json } = await cluster.request(await cluster.leaderSlot(), 'POST', '/members', body);
        assert.equal(status, 200, JSON.stringify(json));
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  };
  await change({ type: 'add-learner', nodeId: newId, address });
  // It catches up by snapshot (the log was compacted past its start).
  await eventually(async () => assert.ok((await cluster.status(wiped)).records > 0, 'the learner holds records'), { timeoutMs: 30_000, intervalMs: 100 });
  await change({ type: 'remove', nodeId: oldId });
  await change({ type: 'add-voter', nodeId: newId });
  await eventually(async () => assert.deepEqual((await cluster.status(wiped)).confState.voters.includes(newId), true), { timeoutMs: 20_000, intervalMs: 100 });
  assert.ok(!(await cluster.status(leader)).confState.voters.includes(oldId), 'the old id is no longer a voter');

  // With the third original replica gone, committing needs the new voter.
  await cluster.kill9(other);
  const before = (await cluster.status(await cluster.leaderSlot())).commit;
  await eventually(async () => assert.ok((await cluster.status(await cluster.leaderSlot())).commit > before + 20), { timeoutMs: 30_000, intervalMs: 100 });
  await cluster.start(other);
  const result = await load.stop();
  await assertConverged(cluster, result);
});

test('3 processes: a follower whose disk fills stops (exit 1, fatal log line); the others go on; freed and restarted, it catches up', { timeout: 240_000 }, async (t) => {
  // The follower's data directory is on a 64 MiB tmpfs (root only; skipped otherwise), big enough to hold the
  // whole log again after the filler is removed (the load's records are 16 KiB).
  let cluster: Awaited<ReturnType<typeof startRaftCluster>> | undefined;
  const mountPoint = mountTmpfs(t, 64 * 1024 * 1024, async () => {
    for (const node of cluster?.nodes ?? []) await cluster?.kill9(node.slot);
  });
  if (mountPoint === undefined) return;
  cluster = await startRaftCluster(t, { size: 3, dataDirOf: (slot) => (slot === 2 ? join(mountPoint, 'raft') : undefined) });
  const small = cluster.nodes[2]!;
  if ((await cluster.leaderSlot()) === 2) {
    // The small-disk node is to be a follower: hand leadership to node 1.
    assert.equal((await cluster.request(2, 'POST', '/transfer', { to: cluster.nodes[0]!.id })).status, 200);
    await eventually(async () => assert.notEqual(await cluster!.leaderSlot(), 2, 'leadership moved'), { timeoutMs: 20_000, intervalMs: 100 });
  }
  fill(mountPoint, 'filler', 0);
  const big = Buffer.alloc(16 * 1024, 0x62);
  const load = runLoad(cluster, { batch: 4, record: big });
  const exitCode = await small.run!.exited;
  assert.equal(exitCode, 1, 'the replica exits 1 when its log cannot be written');
  assert.match(small.run!.stdout(), /the replica stopped: its log could not be written/);
  const leader = await cluster.leaderSlot({ among: [0, 1] });
  const before = (await cluster.status(leader)).commit;
  await eventually(async () => assert.ok((await cluster!.status(leader)).commit > before + 4, 'the two others still commit'), { timeoutMs: 30_000, intervalMs: 100 });
  const result = await load.stop();
  rmSync(join(mountPoint, 'filler'));
  small.run = undefined;
  await cluster.start(2);
  await assertConverged(cluster, result);
});
