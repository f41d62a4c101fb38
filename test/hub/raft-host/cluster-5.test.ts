/**
 * Issue 5 item 5 with 5 real `canopy raft-node` processes whose peer links all run
 * through fault proxies: the leader and one follower are partitioned from the other
 * three (the majority elects a new leader and keeps committing, the minority cannot),
 * the partition heals, then the leader is killed with -9 twice. Every acknowledged
 * proposal survives, no two leaders share a term, all replicas converge.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../../helpers/eventually.ts';
import { assertConverged, runLoad, startRaftCluster } from '../../helpers/raft-cluster.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('5 processes through proxies: a minority partition with the leader, healing, then kill -9 of the leader twice, under load', { timeout: 300_000 }, async (t) => {
  const cluster = await startRaftCluster(t, { size: 5, viaProxies: true, snapshotEntries: 1000 });
  const load = runLoad(cluster);
  await sleep(1000);
  const oldLeader = await cluster.leaderSlot();
  const minority = [oldLeader, (oldLeader + 1) % 5];
  const majority = [0, 1, 2, 3, 4].filter((slot) => !minority.includes(slot));
  const oldTerm = (await cluster.status(oldLeader)).term;
  cluster.partition(minority, majority, true);

  const newLeader = await cluster.leaderSlot({ among: majority });
  assert.ok((await cluster.status(newLeader)).term > oldTerm, 'the new leader has a newer term');
  const commitAtCut = (await cluster.status(newLeader)).commit;
  await eventually(async () => assert.ok((await cluster.status(newLeader)).commit > commitAtCut + 50, 'the majority commits'), { timeoutMs: 30_000, intervalMs: 100 });
  // The minority's commit index stays where it was (check-quorum makes the old leader step down).
  const minorityCommit = (await cluster.status(oldLeader)).commit;
  await eventually(async () => assert.notEqual((await cluster.status(oldLeader)).role, 'leader'), { timeoutMs: 20_000, intervalMs: 100 });
  await sleep(500);
  assert.ok((await cluster.status(oldLeader)).commit <= minorityCommit, 'the minority commits nothing');

  cluster.partition(minority, majority, false);
  for (let round = 0; round < 2; round++) {
    await sleep(800);
    const leader = await cluster.leaderSlot();
    await cluster.kill9(leader);
    await cluster.leaderSlot();
    await sleep(300);
    await cluster.start(leader);
  }
  await sleep(800);
  const result = await load.stop();
  assert.ok(result.acked.size > 200, `the load made progress (${result.acked.size} acknowledged)`);
  await assertConverged(cluster, result);
});
