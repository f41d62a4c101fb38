/**
 * Goal: JetStream state survives a clean restart of the server process
 * (RELIABILITY.md §5, issue 3 "restart"): every stream (config and state),
 * every message (subject, headers, payload, sequence, timestamp), every
 * consumer position (delivered, ack floor, num_pending, num_ack_pending,
 * num_redelivered) and a KV bucket's keys, values, revisions and history are
 * exactly as before, and the server carries on from there (sequences, acks of
 * deliveries made before the restart, redelivery counts, KV revisions).
 *
 * Method: a real `canopy server` process (runCanopy) with a store_dir; the
 * official clients build varied state; everything observable through the API
 * is snapshotted, the process gets SIGTERM (exit 0 expected) and is started
 * again on the same store_dir, and the snapshot is taken again and compared
 * field by field. Only the reply's `ts` (server clock), `num_waiting` (open
 * pull requests of connections that are gone) and the consumers' `last_active`
 * times (not persisted, as in nats-server) are left out.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  DiscardPolicy,
  StorageType,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { startCanopyServer, seededRandom, type CanopyServer } from '../helpers/canopy-server.ts';
import { freePort } from '../helpers/processes.ts';

type Snapshot = {
  streams: Record<string, unknown>;
  messages: Record<string, unknown[]>;
  consumers: Record<string, unknown>;
  kv: unknown;
};

function withoutKeys(value: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([key]) => !keys.includes(key)));
}

/** Every message of a stream, by sequence, through STREAM.MSG.GET; deleted sequences as `{ seq, deleted: true }`. */
async function readStream(jsm: JetStreamManager, name: string, firstSeq: number, lastSeq: number): Promise<unknown[]> {
  const messages: unknown[] = [];
  for (let seq = firstSeq; seq <= lastSeq && seq > 0; seq++) {
    const message = await jsm.streams.getMessage(name, { seq });
    if (message === null) {
      messages.push({ seq, deleted: true });
      continue;
    }
    const headerEntries: [string, string[]][] = [];
    for (const [key, values] of message.header) headerEntries.push([key, values]);
    messages.push({
      seq: message.seq,
      subject: message.subject,
      time: message.time.toISOString(),
      timestamp: message.timestamp,
      headers: headerEntries,
      data: Buffer.from(message.data).toString('base64'),
    });
  }
  return messages;
}

async function kvSnapshot(kv: KV): Promise<unknown> {
  const status = await kv.status();
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  keys.sort();
  const entries: unknown[] = [];
  for (const key of keys) {
    const entry = await kv.get(key);
    const history: unknown[] = [];
    for await (const item of await kv.history({ key })) {
      history.push({ revision: item.revision, operation: item.operation, value: item.string(), created: item.created.toISOString() });
    }
    entries.push({
      key,
      value: entry?.string(),
      revision: entry?.revision,
      operation: entry?.operation,
      created: entry?.created.toISOString(),
      history,
    });
  }
  return { bucket: status.bucket, values: status.values, history: status.history, ttl: status.ttl, keys, entries };
}

async function snapshot(nc: NatsConnection, kv: KV): Promise<Snapshot> {
  const jsm = await jetstreamManager(nc);
  const result: Snapshot = { streams: {}, messages: {}, consumers: {}, kv: undefined };
  const names: string[] = [];
  for await (const name of jsm.streams.names()) names.push(name);
  names.sort();
  for (const name of names) {
    const info = await jsm.streams.info(name, { deleted_details: true, subjects_filter: '>' });
    result.streams[name] = withoutKeys(info as unknown as Record<string, unknown>, ['ts']);
    result.messages[name] = await readStream(jsm, name, info.state.first_seq, info.state.last_seq);
    const consumers: Record<string, unknown> = {};
    for await (const consumer of jsm.consumers.list(name)) {
      // last_active is the time of the last delivery / ack in this process; nats-server does not persist it either.
      const { delivered, ack_floor: ackFloor } = consumer;
      consumers[consumer.name] = {
        ...withoutKeys(consumer as unknown as Record<string, unknown>, ['ts', 'num_waiting']),
        delivered: { consumer_seq: delivered.consumer_seq, stream_seq: delivered.stream_seq },
        ack_floor: { consumer_seq: ackFloor.consumer_seq, stream_seq: ackFloor.stream_seq },
      };
    }
    result.consumers[name] = consumers;
  }
  result.kv = await kvSnapshot(kv);
  return result;
}

/** The ack subject a delivery came with ($JS.ACK...): JsMsgImpl has it, the JsMsg type does not show it. */
function ackSubjectOf(message: JsMsg): string {
  const reply = (message as unknown as { reply?: unknown }).reply;
  assert.ok(typeof reply === 'string' && reply.startsWith('$JS.ACK.'), `an ack subject: ${String(reply)}`);
  return reply;
}

async function fetchAll(nc: NatsConnection, stream: string, consumer: string, count: number): Promise<JsMsg[]> {
  const c = await jetstream(nc).consumers.get(stream, consumer);
  const messages: JsMsg[] = [];
  const batch = await c.fetch({ max_messages: count, expires: 2000 });
  for await (const message of batch) messages.push(message);
  return messages;
}

test('JetStream: streams, messages, consumer positions and KV survive SIGTERM and restart exactly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-fault-restart-'));
  const servers: CanopyServer[] = [];
  t.after(async () => {
    for (const server of servers) await server.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const first = await startCanopyServer(port, dir);
  servers.push(first);
  let nc = await connect({ servers: first.server, reconnect: false });
  let jsm = await jetstreamManager(nc);
  let js = jetstream(nc);
  const random = seededRandom(7);

  // --- State to preserve -------------------------------------------------------------------
  await jsm.streams.add({
    name: 'ORDERS',
    subjects: ['orders.>'],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_msgs: 10_000,
    max_bytes: 8 * 1024 * 1024,
    max_age: 3600 * 1_000_000_000,
    max_msg_size: 256 * 1024,
    max_msgs_per_subject: 50,
    discard: DiscardPolicy.Old,
    duplicate_window: 600 * 1_000_000_000,
    allow_direct: true,
    allow_rollup_hdrs: true,
    description: 'orders of every region',
    metadata: { owner: 'fault-test', tier: 'gold' },
  });
  await jsm.streams.add({ name: 'WORK', subjects: ['work.*'], retention: RetentionPolicy.Workqueue, discard: DiscardPolicy.New, max_msgs: 100 });
  await jsm.streams.add({ name: 'ARCHIVE', subjects: ['archive.>'], deny_delete: true, deny_purge: true });

  const regions = ['eu', 'us', 'ap'];
  for (let i = 1; i <= 40; i++) {
    const h = headers();
    h.set('X-Id', `order-${i}`);
    h.append('X-Tag', 'a');
    h.append('X-Tag', `b-${i}`);
    if (i % 10 === 0) h.set('Nats-Msg-Id', `msg-id-${i}`);
    let data: Uint8Array;
    if (i === 13) data = new Uint8Array(0);
    else if (i === 21) data = Uint8Array.from({ length: 40_000 }, () => Math.floor(random() * 256));
    else data = Uint8Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 256));
    const ack = await js.publish(`orders.${regions[i % 3]}.${i % 7}`, data, { headers: h });
    assert.equal(ack.seq, i);
  }
  await js.publish('orders.plain', 'no headers at all');
  assert.equal(await jsm.streams.deleteMessage('ORDERS', 5, false), true, 'no_erase delete');
  assert.equal(await jsm.streams.deleteMessage('ORDERS', 7, true), true, 'erasing delete');
  assert.equal((await jsm.streams.purge('ORDERS', { filter: 'orders.eu.1', keep: 1 })).success, true);

  for (let i = 1; i <= 10; i++) await js.publish(`work.${i % 2 === 0 ? 'even' : 'odd'}`, `job ${i}`);
  for (let i = 1; i <= 3; i++) await js.publish(`archive.${i}`, `kept ${i}`);
  // `sealed` is missing from nats.js' StreamUpdateConfig type; the server takes it (nats-server does).
  await jsm.streams.update('ARCHIVE', { sealed: true } as Parameters<JetStreamManager['streams']['update']>[1]);

  // ORDERS / P1: explicit acks with a gap, a nak'd redelivery, messages left pending.
  await jsm.consumers.add('ORDERS', {
    durable_name: 'P1',
    ack_policy: AckPolicy.Explicit,
    ack_wait: 600 * 1_000_000_000,
    max_deliver: 5,
    description: 'pull, explicit',
    metadata: { role: 'billing' },
  });
  const p1 = await fetchAll(nc, 'ORDERS', 'P1', 10);
  assert.equal(p1.length, 10);
  for (const index of [0, 1, 2, 4]) assert.equal(await p1[index]!.ackAck(), true);
  p1[5]!.nak();
  const p1Again = await fetchAll(nc, 'ORDERS', 'P1', 1);
  assert.equal(p1Again[0]?.seq, p1[5]!.seq, 'the nak made it the next delivery');
  assert.equal(p1Again[0]?.info.deliveryCount, 2);
  // ORDERS / P2: ack all, filtered.
  await jsm.consumers.add('ORDERS', { durable_name: 'P2', ack_policy: AckPolicy.All, filter_subject: 'orders.us.>', ack_wait: 600 * 1_000_000_000 });
  const p2 = await fetchAll(nc, 'ORDERS', 'P2', 5);
  assert.equal(p2.length, 5);
  assert.equal(await p2[2]!.ackAck(), true);
  // ORDERS / P3: ack none, from a start sequence.
  await jsm.consumers.add('ORDERS', { durable_name: 'P3', ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 20 });
  assert.equal((await fetchAll(nc, 'ORDERS', 'P3', 3)).length, 3);
  // ORDERS / PUSH: a push consumer nobody listens to yet.
  await jsm.consumers.add('ORDERS', { durable_name: 'PUSH', ack_policy: AckPolicy.Explicit, deliver_subject: 'push.orders', filter_subjects: ['orders.eu.>', 'orders.ap.>'] });
  // WORK / W: acked work is removed (interior deletes), the rest pending.
  await jsm.consumers.add('WORK', { durable_name: 'W', ack_policy: AckPolicy.Explicit, ack_wait: 600 * 1_000_000_000 });
  const work = await fetchAll(nc, 'WORK', 'W', 4);
  assert.equal(work.length, 4);
  assert.equal(await work[1]!.ackAck(), true);
  assert.equal(await work[3]!.ackAck(), true);

  const kvm = new Kvm(nc);
  let kv = await kvm.create('settings', { history: 3 });
  await kv.put('color', 'red');
  await kv.put('color', 'blue');
  await kv.put('color', 'green');
  await kv.put('color', 'white');
  await kv.put('size', '10');
  await kv.delete('size');
  await kv.put('shape', 'circle');
  await kv.put('owner.name', 'ada');
  await kv.purge('gone');

  const before = await snapshot(nc, kv);
  const ordersBefore = before.streams['ORDERS'] as { state: { last_seq: number; num_deleted: number } };
  // The snapshot really holds the varied state it is meant to compare.
  assert.deepEqual(Object.keys(before.streams), ['ARCHIVE', 'KV_settings', 'ORDERS', 'WORK']);
  assert.equal(ordersBefore.state.num_deleted, 3, 'ORDERS has deleted sequences (5, 7 and a purged one)');
  assert.equal(before.messages['ORDERS']?.length, 41);
  assert.equal((before.streams['ARCHIVE'] as { config: { sealed: boolean } }).config.sealed, true);
  assert.deepEqual(Object.keys(before.consumers['ORDERS'] as object).sort(), ['P1', 'P2', 'P3', 'PUSH']);
  assert.equal((before.consumers['WORK'] as { W: { num_ack_pending: number } }).W.num_ack_pending, 2);
  assert.equal((before.streams['WORK'] as { state: { messages: number } }).state.messages, 8, 'workqueue acks removed two jobs');
  assert.equal((before.kv as { keys: string[] }).keys.length, 3, 'color, shape, owner.name (size deleted, gone purged)');
  await nc.close();

  // --- Restart ------------------------------------------------------------------------------
  const stoppedAt = Date.now();
  assert.equal(await first.stop(), 0, `SIGTERM ends the server with exit code 0:\n${first.logs()}`);
  const second = await startCanopyServer(port, dir);
  servers.push(second);
  t.diagnostic(`stopped and listening again in ${Date.now() - stoppedAt} ms`);
  nc = await connect({ servers: second.server, reconnect: false });
  t.after(() => nc.close());
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
  kv = await new Kvm(nc).open('settings');

  const after = await snapshot(nc, kv);
  assert.deepEqual(Object.keys(after.streams), Object.keys(before.streams), 'the same streams');
  for (const name of Object.keys(before.streams)) {
    assert.deepEqual(after.streams[name], before.streams[name], `stream ${name}: config and state`);
    assert.deepEqual(after.messages[name], before.messages[name], `stream ${name}: every message`);
    assert.deepEqual(after.consumers[name], before.consumers[name], `stream ${name}: every consumer`);
  }
  assert.deepEqual(after.kv, before.kv, 'KV bucket: keys, values, revisions, history');

  // --- And it carries on from there -----------------------------------------------------------
  const next = await js.publish('orders.after', 'after the restart');
  assert.equal(next.seq, ordersBefore.state.last_seq + 1, 'sequences continue, none reused');
  // An ack of a delivery made before the restart (its reply subject) still counts.
  const ackReply = await nc.request(ackSubjectOf(p1[3]!), '+ACK');
  assert.equal(ackReply.data.length, 0, 'the ack of a pre-restart delivery is accepted');
  const p1Info = await jsm.consumers.info('ORDERS', 'P1');
  // nats-server's floor: just below the oldest pending delivery (p1[5], delivered twice), deleted sequences included.
  assert.deepEqual(p1Info.ack_floor.stream_seq, p1[5]!.seq - 1, 'the ack floor moved up to the oldest pending delivery');
  assert.equal(p1Info.num_ack_pending, (before.consumers['ORDERS'] as { P1: { num_ack_pending: number } }).P1.num_ack_pending - 1);
  // A nak of the message delivered twice before the restart redelivers it as delivery 3.
  await nc.request(ackSubjectOf(p1Again[0]!), '-NAK');
  const redelivered = await fetchAll(nc, 'ORDERS', 'P1', 1);
  assert.equal(redelivered[0]?.seq, p1[5]!.seq);
  assert.equal(redelivered[0]?.info.deliveryCount, 3, 'the redelivery count survived');
  // New deliveries start after the last one delivered before the restart.
  const fresh = await fetchAll(nc, 'ORDERS', 'P1', 1);
  const expectedNext = (before.messages['ORDERS'] as { seq: number; deleted?: boolean }[]).find((m) => m.seq > p1[9]!.seq && m.deleted !== true);
  assert.equal(fresh[0]?.info.streamSequence, expectedNext?.seq, 'the next delivery is the first message after the last delivered');
  assert.equal(fresh[0]?.info.deliveryCount, 1);
  const revision = await kv.put('color', 'black');
  assert.equal(revision, (before.streams['KV_settings'] as { state: { last_seq: number } }).state.last_seq + 1, 'KV revisions continue');
  assert.equal(second.isAlive(), true);
});

test('JetStream: the Nats-Msg-Id duplicate window survives a restart (nats-server rebuilds it from the stream)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-fault-restart-dedup-'));
  const servers: CanopyServer[] = [];
  t.after(async () => {
    for (const server of servers) await server.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const first = await startCanopyServer(port, dir);
  servers.push(first);
  let nc = await connect({ servers: first.server, reconnect: false });
  await (await jetstreamManager(nc)).streams.add({ name: 'DEDUP', subjects: ['dedup.>'], duplicate_window: 600 * 1_000_000_000 });
  const original = await jetstream(nc).publish('dedup.a', 'first copy', { msgID: 'id-1' });
  assert.equal((await jetstream(nc).publish('dedup.a', 'retry', { msgID: 'id-1' })).duplicate, true, 'a duplicate before the restart');
  await jetstream(nc).publish('dedup.a', 'other', { msgID: 'id-2' });
  await nc.close();
  assert.equal(await first.stop(), 0);
  const second = await startCanopyServer(port, dir);
  servers.push(second);
  nc = await connect({ servers: second.server, reconnect: false });
  t.after(() => nc.close());
  // A client that lost its PubAck in the restart retries with the same Nats-Msg-Id.
  const retry = await jetstream(nc).publish('dedup.a', 'retry after restart', { msgID: 'id-1' });
  assert.deepEqual({ seq: retry.seq, duplicate: retry.duplicate }, { seq: original.seq, duplicate: true }, 'the retry is recognised as a duplicate');
  const info = await (await jetstreamManager(nc)).streams.info('DEDUP');
  assert.equal(info.state.messages, 2, 'no second copy stored');
});
