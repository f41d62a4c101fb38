/**
 * "Keep until the hub has it" end to end (leaf/README.md "Retention"; issue 4 item 5): a real
 * leaf and a real hub in this process with the fault proxy between them. While the proxy is cut
 * (the hub unreachable), a `hub`-policy stream refuses the publish that would drop unsynced data
 * and keeps acknowledged work-queue jobs; a `limits`-policy stream drops as NATS does. When the
 * link returns the hub gets everything of the first, a recorded gap for the second, and the leaf
 * frees what waited for the hub.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AckPolicy, jetstream, RetentionPolicy } from '@nats-io/jetstream';
import { eventually } from '../helpers/eventually.ts';
import { fetchMessages, rejectsWithCode } from '../helpers/jetstream-client.ts';
import { leafz, startWorld, WORLD_LEAF, type World } from '../helpers/leaf-hub-world.ts';

async function messagesOf(world: World, where: 'leaf' | 'hub', stream: string): Promise<{ first: number; last: number; messages: number }> {
  const info = await (where === 'leaf' ? world.leafJsm : world.hubJsm).streams.info(stream);
  return { first: info.state.first_seq, last: info.state.last_seq, messages: info.state.messages };
}

/** Origin sequences of a hub stream, in hub order. */
async function hubOriginSeqs(world: World, stream: string): Promise<number[]> {
  const { messages } = await messagesOf(world, 'hub', stream);
  const seqs: number[] = [];
  for (let seq = 1; seq <= messages; seq++) seqs.push(Number((await world.hubJsm.streams.getMessage(stream, { seq }))?.header.get('Canopy-Origin-Seq')));
  return seqs;
}

test('link: with the hub unreachable a "hub" stream refuses to drop unsynced data and keeps acked jobs; "limits" drops and the hub records the gap', async (t) => {
  const world = await startWorld(t);
  const js = jetstream(world.leafNc);
  await world.leafJsm.streams.add({ name: 'HELD', subjects: ['held.>'], max_msgs: 5 });
  await world.leafJsm.streams.add({ name: 'LOOSE', subjects: ['loose.>'], max_msgs: 5, metadata: { 'canopy.sync.retain': 'limits' } });
  await world.leafJsm.streams.add({ name: 'JOBS', subjects: ['jobs.>'], retention: RetentionPolicy.Workqueue });
  await world.leafJsm.consumers.add('JOBS', { durable_name: 'worker', ack_policy: AckPolicy.Explicit });
  await eventually(() => assert.equal(world.leaf.link.status().state, 'up'));
  world.proxy.cut(true);
  await eventually(() => assert.notEqual(world.leaf.link.status().state, 'up'));

  for (let i = 1; i <= 5; i++) await js.publish('held.a', `held ${i}`);
  await rejectsWithCode(js.publish('held.a', 'held 6'), 10077, /^maximum messages exceeded$/);
  for (let i = 1; i <= 10; i++) await js.publish('loose.a', `loose ${i}`);
  for (let i = 1; i <= 3; i++) await js.publish('jobs.a', `job ${i}`);
  for (const job of await fetchMessages(await js.consumers.get('JOBS', 'worker'), 3)) assert.equal(await job.ackAck(), true);
  assert.deepEqual(await messagesOf(world, 'leaf', 'HELD'), { first: 1, last: 5, messages: 5 });
  assert.deepEqual(await messagesOf(world, 'leaf', 'LOOSE'), { first: 6, last: 10, messages: 5 });
  assert.equal((await messagesOf(world, 'leaf', 'JOBS')).messages, 3);
  const status = (await leafz(world.leaf.broker.monitor?.port))['link']['streams'] as Record<string, unknown>[];
  const byName = (name: string): Record<string, unknown> => status.find((entry) => entry['stream'] === name)!;
  assert.deepEqual([byName('HELD')['retain'], byName('HELD')['floorSeq'], byName('HELD')['refusedPublishes']], ['hub', 0, 1]);
  assert.deepEqual([byName('JOBS')['heldMsgs'], byName('LOOSE')['retain'], byName('LOOSE')['heldMsgs']], [3, 'limits', 0]);

  world.proxy.cut(false);
  await eventually(async () => {
    assert.deepEqual(await hubOriginSeqs(world, 'HELD'), [1, 2, 3, 4, 5]);
    assert.deepEqual(await hubOriginSeqs(world, 'LOOSE'), [6, 7, 8, 9, 10]);
    assert.deepEqual(await hubOriginSeqs(world, 'JOBS'), [1, 2, 3]);
    assert.equal((await messagesOf(world, 'leaf', 'JOBS')).messages, 0, 'the acknowledged jobs go once the hub has them');
  }, { timeoutMs: 15_000 });
  const hubLeaf = (await leafz(world.hub.broker.monitor?.port))['leafs'].find((entry: { leaf: string }) => entry.leaf === WORLD_LEAF);
  const loose = hubLeaf.streams.find((entry: { stream: string }) => entry.stream === 'LOOSE');
  assert.deepEqual([loose.gaps, loose.gapMsgs], [1, 5], 'the hub recorded what "limits" dropped before it had it');
  assert.equal(hubLeaf.streams.find((entry: { stream: string }) => entry.stream === 'HELD').gaps, 0);

  await eventually(() => assert.equal(world.leaf.link.status().streams.find((entry) => entry.stream === 'HELD')?.floorSeq, 5));
  await js.publish('held.a', 'held 6');
  assert.deepEqual(await messagesOf(world, 'leaf', 'HELD'), { first: 2, last: 6, messages: 5 });
  const metrics = await (await fetch(`http://127.0.0.1:${world.leaf.broker.monitor?.port}/metrics`)).text();
  assert.match(metrics, new RegExp(`^canopy_link_stream_refused_publishes\\{leaf="${WORLD_LEAF}",stream="HELD"\\} 1$`, 'm'));
  assert.match(metrics, new RegExp(`^canopy_link_stream_floor_seq\\{leaf="${WORLD_LEAF}",stream="HELD"\\} [56]$`, 'm'));
  assert.match(metrics, new RegExp(`^canopy_link_stream_held_messages\\{leaf="${WORLD_LEAF}",stream="JOBS"\\} 0$`, 'm'));
});
