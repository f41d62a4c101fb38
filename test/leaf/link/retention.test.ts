/**
 * "Keep until the hub has it" (leaf/README.md "Retention"; issue 4 item 5): a real leaf (broker,
 * LMDB in a temp dir, link) and the fake hub (fake-hub.ts: the real codec and protocol), which
 * either refuses every connection (`mode: 'closing'`: the hub is unreachable) or takes the
 * batches without acknowledging them (`isAcking = false`) until the test calls `ackAll()`.
 *
 * For every removal path (max_msgs and max_bytes with discard old, max_msgs_per_subject,
 * max_age, work-queue acks, interest acks and consumer deletion) the unsynced messages must stay
 * and go as soon as the hub acknowledges them; a publish that would have to drop unsynced data
 * is refused with nats-server's discard-new error and nothing is lost; `"limits"` keeps the NATS
 * behaviour and sends a gap; the floor survives a restart with the hub down; a re-created stream
 * starts from floor 0; an invalid policy is refused with 10052.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstreamManager, RetentionPolicy, type Consumer } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startTestBroker } from '../../helpers/broker.ts';
import { eventually } from '../../helpers/eventually.ts';
import { fetchMessages, rejectsWithCode } from '../../helpers/jetstream-client.ts';
import { FakeHub, type FakeHubOptions } from './fake-hub.ts';
import { startTestLeaf, type TestLeaf } from './helpers.ts';
import type { LeafLinkStreamStatus } from '../../../leaf/link/ws-link.ts';

/** A port nothing listens on: a leaf started against it has no hub. */
const NO_HUB_URL = 'ws://127.0.0.1:1';

async function setUp(t: TestContext, hubOptions: FakeHubOptions = {}): Promise<{ hub: FakeHub; leaf: TestLeaf }> {
  const hub = await FakeHub.start(hubOptions);
  const leaf = await startTestLeaf({ hubUrl: hub.url });
  t.after(async () => {
    await leaf.close();
    await hub.close();
  });
  return { hub, leaf };
}

function statusOf(leaf: TestLeaf, stream: string): LeafLinkStreamStatus {
  const status = leaf.leaf.link.status().streams.find((entry) => entry.stream === stream);
  assert.ok(status !== undefined, `${stream} is in the link status`);
  return status;
}

async function publishMany(leaf: TestLeaf, subject: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) await leaf.js.publish(subject, `${subject} ${i}`);
}

async function seqsOf(leaf: TestLeaf, stream: string): Promise<{ first: number; last: number; messages: number }> {
  const info = await leaf.jsm.streams.info(stream);
  return { first: info.state.first_seq, last: info.state.last_seq, messages: info.state.messages };
}

/** Once the hub has a new message, it goes as soon as its (last) consumer acknowledges it, as in NATS. */
async function ackAfterSync(leaf: TestLeaf, options: { stream: string; subject: string; consumer: Consumer; seq: number }): Promise<void> {
  await leaf.js.publish(options.subject, `after sync ${options.seq}`);
  await eventually(() => assert.equal(statusOf(leaf, options.stream).floorSeq, options.seq));
  const [message] = await fetchMessages(options.consumer, 1);
  assert.equal(message?.seq, options.seq);
  assert.equal(await message?.ackAck(), true);
  assert.equal((await seqsOf(leaf, options.stream)).messages, 0);
}

/** Waits until the fake hub stored the stream's messages 1..lastSeq (so that ackAll covers them). */
async function hubHas(hub: FakeHub, leaf: TestLeaf, stream: string, lastSeq: number): Promise<void> {
  const key = { stream, incarnation: leaf.stream(stream).incarnation };
  await eventually(() => assert.equal(hub.storedSeqs(key).at(-1), lastSeq));
}

test('max_msgs and max_bytes with discard old: a publish that would drop unsynced data is refused (10077), nothing is lost, and it is taken once the hub has the data', async (t) => {
  const { hub, leaf } = await setUp(t);
  hub.isAcking = false;
  await leaf.jsm.streams.add({ name: 'MSGS', subjects: ['msgs.>'], max_msgs: 5, discard: DiscardPolicy.Old });
  await leaf.jsm.streams.add({ name: 'BYTES', subjects: ['bytes.>'], max_bytes: 400, discard: DiscardPolicy.Old });
  await publishMany(leaf, 'msgs.a', 5);
  await rejectsWithCode(leaf.js.publish('msgs.a', 'six'), 10077, /^maximum messages exceeded$/);
  assert.deepEqual(await seqsOf(leaf, 'MSGS'), { first: 1, last: 5, messages: 5 }, 'the refusal used no sequence and removed nothing');
  // Fill BYTES until the next message does not fit: each takes 22 + 7 + 9 + 8 = 46 bytes (file store accounting).
  let stored = 0;
  for (;;) {
    try {
      await leaf.js.publish('bytes.a', `payload ${stored % 10}`);
      stored++;
    } catch (err) {
      await rejectsWithCode(Promise.reject(err), 10077, /^maximum bytes exceeded$/);
      break;
    }
  }
  assert.equal(stored, 8, '8 × 46 = 368 bytes fit in 400');
  assert.deepEqual(await seqsOf(leaf, 'BYTES'), { first: 1, last: 8, messages: 8 });
  const held = statusOf(leaf, 'MSGS');
  assert.deepEqual([held.retain, held.floorSeq, held.refusedPublishes, held.heldMsgs], ['hub', 0, 1, 0], 'a refused publish holds nothing back');

  await hubHas(hub, leaf, 'MSGS', 5);
  await hubHas(hub, leaf, 'BYTES', 8);
  hub.isAcking = true;
  hub.ackAll();
  await eventually(() => {
    assert.equal(statusOf(leaf, 'MSGS').floorSeq, 5);
    assert.equal(statusOf(leaf, 'BYTES').floorSeq, 8);
  });
  await leaf.js.publish('msgs.a', 'six');
  assert.deepEqual(await seqsOf(leaf, 'MSGS'), { first: 2, last: 6, messages: 5 }, 'discard old again, now that 1 is on the hub');
  await leaf.js.publish('bytes.a', 'payload 8');
  assert.deepEqual(await seqsOf(leaf, 'BYTES'), { first: 2, last: 9, messages: 8 });
  assert.deepEqual(hub.violations, []);
});

test('max_age and max_msgs_per_subject: expired and superseded unsynced messages stay (held) and go once the hub acknowledges them', async (t) => {
  const { hub, leaf } = await setUp(t);
  hub.isAcking = false;
  await leaf.jsm.streams.add({ name: 'AGED', subjects: ['aged.>'], max_age: 300_000_000 }); // 300 ms
  await leaf.jsm.streams.add({ name: 'KV', subjects: ['kv.>'], max_msgs_per_subject: 1 });
  await publishMany(leaf, 'aged.a', 3);
  await publishMany(leaf, 'kv.key', 3);
  // The age check found all three expired and kept them for the hub.
  await eventually(() => assert.equal(statusOf(leaf, 'AGED').heldMsgs, 3), { timeoutMs: 10_000 });
  assert.equal((await seqsOf(leaf, 'AGED')).messages, 3);
  assert.deepEqual(await seqsOf(leaf, 'KV'), { first: 1, last: 3, messages: 3 }, 'the older values of kv.key wait for the hub');
  assert.ok(statusOf(leaf, 'KV').heldMsgs >= 1);

  await hubHas(hub, leaf, 'AGED', 3);
  await hubHas(hub, leaf, 'KV', 3);
  hub.isAcking = true;
  hub.ackAll();
  await eventually(async () => {
    assert.equal((await seqsOf(leaf, 'AGED')).messages, 0);
    assert.deepEqual(await seqsOf(leaf, 'KV'), { first: 3, last: 3, messages: 1 });
  });
  assert.deepEqual([statusOf(leaf, 'AGED').heldMsgs, statusOf(leaf, 'KV').heldMsgs], [0, 0]);
});

test('work queue: acknowledged unsynced messages stay without being redelivered, and go once the hub has them', async (t) => {
  const { hub, leaf } = await setUp(t, { mode: 'closing' }); // the hub is unreachable
  await leaf.jsm.streams.add({ name: 'JOBS', subjects: ['jobs.>'], retention: RetentionPolicy.Workqueue });
  await leaf.jsm.consumers.add('JOBS', { durable_name: 'worker', ack_policy: AckPolicy.Explicit, ack_wait: 500_000_000 });
  await publishMany(leaf, 'jobs.a', 3);
  const worker = await leaf.js.consumers.get('JOBS', 'worker');
  const first = await fetchMessages(worker, 3);
  assert.deepEqual(first.map((message) => message.seq), [1, 2, 3]);
  for (const message of first) assert.equal(await message.ackAck(), true);
  assert.equal((await seqsOf(leaf, 'JOBS')).messages, 3, 'acknowledged, but the hub does not have them yet');
  assert.equal(statusOf(leaf, 'JOBS').heldMsgs, 3);
  // Longer than ack_wait: nothing comes again to the consumer that acknowledged them.
  assert.deepEqual(await fetchMessages(worker, 3, 1200), []);
  const info = await leaf.jsm.consumers.info('JOBS', 'worker');
  assert.deepEqual([info.num_pending, info.num_ack_pending, info.num_redelivered], [0, 0, 0]);

  hub.mode = 'normal';
  await eventually(async () => assert.equal((await seqsOf(leaf, 'JOBS')).messages, 0));
  assert.deepEqual([statusOf(leaf, 'JOBS').floorSeq, statusOf(leaf, 'JOBS').heldMsgs], [3, 0]);
  await ackAfterSync(leaf, { stream: 'JOBS', subject: 'jobs.a', consumer: worker, seq: 4 });
});

test('interest: messages acknowledged by every consumer, wanted by none, or left by deleted consumers stay until the hub has them', async (t) => {
  const { hub, leaf } = await setUp(t, { mode: 'closing' });
  await leaf.jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'], retention: RetentionPolicy.Interest });
  await leaf.js.publish('events.a', 'nobody listens'); // seq 1: no consumer
  // Deliver policy "new": a held message is still in the stream, so "all" would deliver seq 1 too.
  await leaf.jsm.consumers.add('EVENTS', { durable_name: 'reader', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
  await leaf.jsm.consumers.add('EVENTS', { durable_name: 'slow', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
  await publishMany(leaf, 'events.a', 3); // seqs 2..4
  const reader = await leaf.js.consumers.get('EVENTS', 'reader');
  for (const message of await fetchMessages(reader, 3)) assert.equal(await message.ackAck(), true);
  const slow = await leaf.js.consumers.get('EVENTS', 'slow');
  for (const message of await fetchMessages(slow, 3)) assert.equal(await message.ackAck(), true);
  await leaf.jsm.consumers.add('EVENTS', { durable_name: 'leaving', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
  await leaf.js.publish('events.a', 'for leaving'); // seq 5
  for (const message of await fetchMessages(reader, 1)) assert.equal(await message.ackAck(), true);
  await leaf.jsm.consumers.delete('EVENTS', 'leaving'); // seq 5: slow still needs it
  await leaf.jsm.consumers.delete('EVENTS', 'slow'); // now nobody does
  assert.deepEqual(await seqsOf(leaf, 'EVENTS'), { first: 1, last: 5, messages: 5 });
  assert.equal(statusOf(leaf, 'EVENTS').heldMsgs, 5);

  hub.mode = 'normal';
  await eventually(async () => assert.equal((await seqsOf(leaf, 'EVENTS')).messages, 0));
  await ackAfterSync(leaf, { stream: 'EVENTS', subject: 'events.a', consumer: reader, seq: 6 });
});

test('"limits" keeps the NATS behaviour (the hub gets a gap); opted-out streams are never held', async (t) => {
  const { hub, leaf } = await setUp(t, { mode: 'closing' });
  await leaf.jsm.streams.add({ name: 'LOOSE', subjects: ['loose.>'], max_msgs: 2, metadata: { 'canopy.sync.retain': 'limits' } });
  await leaf.jsm.streams.add({ name: 'LOCAL', subjects: ['local.>'], max_msgs: 2, metadata: { 'canopy.sync': 'false' } });
  await publishMany(leaf, 'loose.a', 5);
  await publishMany(leaf, 'local.a', 5);
  assert.deepEqual(await seqsOf(leaf, 'LOOSE'), { first: 4, last: 5, messages: 2 });
  assert.deepEqual(await seqsOf(leaf, 'LOCAL'), { first: 4, last: 5, messages: 2 });
  hub.mode = 'normal';
  const key = { stream: 'LOOSE', incarnation: leaf.stream('LOOSE').incarnation };
  await eventually(() => assert.deepEqual(hub.storedSeqs(key), [4, 5]));
  assert.deepEqual(hub.gaps.map((gap) => [gap.stream, gap.from, gap.to, gap.reason]), [['LOOSE', 1, 3, 'limits']]);
  const loose = statusOf(leaf, 'LOOSE');
  assert.deepEqual([loose.retain, loose.floorSeq, loose.heldMsgs], ['limits', undefined, 0]);
  assert.ok(!leaf.leaf.link.status().streams.some((entry) => entry.stream === 'LOCAL'));
  assert.deepEqual(hub.violations, []);
});

test('an invalid canopy.sync.retain is refused on create and update with 10052; a plain server does not look at it', async (t) => {
  const { leaf } = await setUp(t);
  const bad = { name: 'BAD', subjects: ['bad.>'], metadata: { 'canopy.sync.retain': 'forever' } };
  await rejectsWithCode(leaf.jsm.streams.add(bad), 10052, /^stream metadata "canopy.sync.retain" must be "hub" or "limits", not "forever"$/);
  await leaf.jsm.streams.add({ name: 'GOOD', subjects: ['good.>'], metadata: { 'canopy.sync.retain': 'limits' } });
  await rejectsWithCode(leaf.jsm.streams.update('GOOD', { metadata: { 'canopy.sync.retain': '' } }), 10052, /must be "hub" or "limits", not ""/);
  assert.equal((await leaf.jsm.streams.info('GOOD')).config.metadata?.['canopy.sync.retain'], 'limits');

  const broker = await startTestBroker();
  const nc = await connect({ servers: broker.url });
  t.after(async () => {
    await nc.close();
    await broker.close();
  });
  const info = await (await jetstreamManager(nc)).streams.add(bad);
  assert.equal(info.config.metadata?.['canopy.sync.retain'], 'forever');
});

test('the floor survives a restart with the hub down: unsynced data stays, limits still hold; a re-created stream starts from floor 0', async (t) => {
  // Method: the hub acknowledges 1..2 of LIMITED and nothing of JOBS (acknowledged by its worker),
  // the leaf stops and starts again against no hub at all. LIMITED (max_msgs 5) may then drop 1 and 2
  // for new messages, not 3; JOBS keeps its acknowledged jobs and does not redeliver them.
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-retention-'));
  const hub = await FakeHub.start();
  let leaf = await startTestLeaf({ hubUrl: hub.url, storeDir });
  t.after(async () => {
    await leaf.close();
    await hub.close();
    rmSync(storeDir, { recursive: true, force: true });
  });
  await leaf.jsm.streams.add({ name: 'LIMITED', subjects: ['limited.>'], max_msgs: 5 });
  await leaf.jsm.streams.add({ name: 'JOBS', subjects: ['jobs.>'], retention: RetentionPolicy.Workqueue });
  await leaf.jsm.consumers.add('JOBS', { durable_name: 'worker', ack_policy: AckPolicy.Explicit });
  await publishMany(leaf, 'limited.a', 2);
  await eventually(() => assert.equal(statusOf(leaf, 'LIMITED').floorSeq, 2));
  hub.isAcking = false;
  await publishMany(leaf, 'limited.a', 3);
  await hubHas(hub, leaf, 'LIMITED', 5);
  hub.mode = 'closing';
  hub.dropConnection();
  await publishMany(leaf, 'jobs.a', 2);
  for (const message of await fetchMessages(await leaf.js.consumers.get('JOBS', 'worker'), 2)) assert.equal(await message.ackAck(), true);
  await leaf.close();

  leaf = await startTestLeaf({ hubUrl: NO_HUB_URL, storeDir });
  assert.notEqual(leaf.leaf.link.status().state, 'up');
  // The stream shows in the link status once its first flush after the start resolved (core/link-host/durable-seqs.ts).
  await eventually(() => assert.equal(statusOf(leaf, 'LIMITED').floorSeq, 2, 'the persisted floor, before any hub answered'));
  assert.deepEqual(await seqsOf(leaf, 'JOBS'), { first: 1, last: 2, messages: 2 }, 'acknowledged jobs the hub lacks are still here');
  await eventually(() => assert.equal(statusOf(leaf, 'JOBS').heldMsgs, 2), { timeoutMs: 2000 });
  assert.deepEqual(await fetchMessages(await leaf.js.consumers.get('JOBS', 'worker'), 2), [], 'and not redelivered');
  await publishMany(leaf, 'limited.b', 2); // seqs 6, 7 push out 1 and 2
  assert.deepEqual(await seqsOf(leaf, 'LIMITED'), { first: 3, last: 7, messages: 5 });
  await rejectsWithCode(leaf.js.publish('limited.b', 'eight'), 10077, /^maximum messages exceeded$/);
  assert.deepEqual(await seqsOf(leaf, 'LIMITED'), { first: 3, last: 7, messages: 5 });

  // A new incarnation: the old floor (2) does not carry over.
  await leaf.jsm.streams.delete('LIMITED');
  await leaf.jsm.streams.add({ name: 'LIMITED', subjects: ['limited.>'], max_msgs: 1 });
  await leaf.js.publish('limited.c', 'one');
  assert.equal(statusOf(leaf, 'LIMITED').floorSeq, 0);
  await rejectsWithCode(leaf.js.publish('limited.c', 'two'), 10077, /^maximum messages exceeded$/);
});

test('a stream update to "limits" removes at once what only the hold kept; back to "hub" holds again', async (t) => {
  const { leaf } = await setUp(t, { mode: 'closing' });
  await leaf.jsm.streams.add({ name: 'KV', subjects: ['kv.>'], max_msgs_per_subject: 1, metadata: { 'canopy.sync.retain': 'hub' } });
  await publishMany(leaf, 'kv.key', 3);
  assert.equal((await seqsOf(leaf, 'KV')).messages, 3);
  await leaf.jsm.streams.update('KV', { metadata: { 'canopy.sync.retain': 'limits' } });
  assert.deepEqual(await seqsOf(leaf, 'KV'), { first: 3, last: 3, messages: 1 });
  await leaf.jsm.streams.update('KV', { metadata: { 'canopy.sync.retain': 'hub' } });
  await publishMany(leaf, 'kv.key', 1);
  assert.deepEqual(await seqsOf(leaf, 'KV'), { first: 3, last: 4, messages: 2 }, 'seq 3 never reached the hub');
});
