/**
 * Consumers through the official @nats-io/jetstream 3.x client against a real
 * canopy server: the work-queue workflow of ARCHITECTURE.md (fetch, nak, +WPI,
 * max_deliver, removal on ack), fetch/next/consume, ordered pull and push
 * consumers, push consumers with heartbeats and flow control, every deliver
 * and ack policy, max_ack_pending, backoff, filters, headers_only, the pull
 * status messages (404/408/409/400) with their pending headers, info counters,
 * recovery after a restart, ephemeral inactivity, and names/list paging.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createInbox, headers, nanos, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  ReplayPolicy,
  RetentionPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { eventually } from '../helpers/eventually.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function rejectsWithCode(promise: Promise<unknown>, errCode: number, description?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof JetStreamApiError, `expected a JetStreamApiError, got ${String(err)}`);
    assert.equal(err.code, errCode, err.message);
    if (description !== undefined) assert.match(err.message, description);
    return true;
  });
}

/** Messages of one raw pull request, until a terminal status (not 100) or `waitMs`. */
async function rawPull(nc: NatsConnection, subject: string, body: string, waitMs: number): Promise<{ data: Msg[]; statuses: Msg[] }> {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  const data: Msg[] = [];
  const statuses: Msg[] = [];
  const done = (async () => {
    for await (const msg of sub) {
      if (msg.subject === inbox) {
        statuses.push(msg);
        if (msg.headers?.code !== 100) break;
      } else {
        data.push(msg);
      }
    }
  })();
  nc.publish(subject, body, { reply: inbox });
  await Promise.race([done, sleep(waitMs)]);
  sub.unsubscribe();
  return { data, statuses };
}

function statusLine(msg: Msg): string {
  return `${msg.headers?.code ?? 0} ${msg.headers?.description ?? ''}`.trim();
}

async function collect(iterable: AsyncIterable<JsMsg>, count: number, onMessage?: (m: JsMsg) => void): Promise<JsMsg[]> {
  const out: JsMsg[] = [];
  for await (const m of iterable) {
    onMessage?.(m);
    out.push(m);
    if (out.length >= count) break;
  }
  return out;
}

describe('JetStream consumers with nats.js', () => {
  let srv: TestBroker;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let js: JetStreamClient;

  before(async () => {
    srv = await startTestBroker();
    nc = await connect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
  });
  after(async () => {
    await nc.close();
    await srv.close();
  });

  async function publishN(subject: string, count: number, prefix = 'm'): Promise<void> {
    for (let i = 1; i <= count; i++) await js.publish(subject, `${prefix}${i}`);
  }

  test('work queue: fetch, nak until max_deliver, +WPI extends ack_wait, ack removes (the Go workflow)', async () => {
    // Goal: the ARCHITECTURE.md example (PullSubscribe + Fetch + Ack/Nak/InProgress) on a work-queue stream.
    await jsm.streams.add({ name: 'WQ', subjects: ['orders.>'], retention: RetentionPolicy.Workqueue, max_age: nanos(24 * 3600 * 1000) });
    await jsm.consumers.add('WQ', {
      durable_name: 'order-processor',
      filter_subject: 'orders.new',
      ack_policy: AckPolicy.Explicit,
      max_deliver: 5,
      ack_wait: nanos(400),
    });
    const advisories: unknown[] = [];
    const advisorySub = nc.subscribe('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.WQ.order-processor', {
      callback: (_err, msg) => {
        advisories.push(msg.json());
      },
    });
    await nc.flush();
    await publishN('orders.new', 3, 'o');
    const consumer = await js.consumers.get('WQ', 'order-processor');
    const first = await collect(await consumer.fetch({ max_messages: 10, expires: 1000 }), 3);
    assert.deepEqual(first.map((m) => m.string()), ['o1', 'o2', 'o3']);
    assert.deepEqual(first.map((m) => m.info.pending), [2, 1, 0]);
    assert.equal(await first[0]!.ackAck(), true);
    first[2]!.nak();
    await nc.flush();
    let info = await jsm.consumers.info('WQ', 'order-processor');
    assert.equal(info.num_ack_pending, 2);
    assert.equal(info.ack_floor.stream_seq, 1);
    assert.equal(info.delivered.consumer_seq, 3);
    assert.equal(info.delivered.stream_seq, 3);
    assert.equal(info.num_pending, 0);
    assert.equal((await jsm.streams.info('WQ')).state.messages, 2, 'the acked message left the work queue');

    // o2 is "in progress": +WPI every 150 ms keeps it from being redelivered past its 400 ms ack_wait.
    const working = setInterval(() => first[1]!.working(), 150);
    try {
      // o3 comes back after each NAK with a growing delivery count, up to max_deliver (5).
      for (let delivery = 2; delivery <= 5; delivery++) {
        const again = await consumer.next({ expires: 1000 });
        assert.ok(again !== null, `delivery ${delivery} of o3`);
        assert.equal(again.string(), 'o3');
        assert.equal(again.info.deliveryCount, delivery);
        assert.equal(again.info.redelivered, true);
        again.nak();
      }
      await nc.flush();
      const none = await consumer.next({ expires: 1000 });
      assert.equal(none, null, 'no sixth delivery after max_deliver, and o2 stays with its worker');
    } finally {
      clearInterval(working);
    }
    await eventually(() => assert.equal(advisories.length, 1));
    assert.deepEqual(
      { ...(advisories[0] as Record<string, unknown>), id: undefined, timestamp: undefined },
      { type: 'io.nats.jetstream.advisory.v1.max_deliver', id: undefined, timestamp: undefined, stream: 'WQ', consumer: 'order-processor', stream_seq: 3, deliveries: 5 },
    );
    advisorySub.unsubscribe();
    info = await jsm.consumers.info('WQ', 'order-processor');
    assert.equal(info.num_ack_pending, 1, 'only o2 is pending; o3 was given up');
    assert.equal(info.num_redelivered, 1);

    // Without +WPI, o2 is redelivered after ack_wait; acking it removes it from the queue.
    const redelivered = await consumer.next({ expires: 2000 });
    assert.ok(redelivered !== null, 'o2 redelivered');
    assert.equal(redelivered.string(), 'o2');
    assert.equal(redelivered.info.deliveryCount, 2);
    assert.equal(await redelivered.ackAck(), true);
    const state = (await jsm.streams.info('WQ')).state;
    assert.equal(state.messages, 1, 'o3 stays: never acked');
    assert.equal(state.first_seq, 3);
    info = await jsm.consumers.info('WQ', 'order-processor');
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.ack_floor.stream_seq, 3);
  });

  test('work-queue consumer rules: 10084, 10098, 10101, 10099, 10100', async () => {
    await jsm.streams.add({ name: 'WQR', subjects: ['wq.>'], retention: RetentionPolicy.Workqueue });
    await rejectsWithCode(jsm.consumers.add('WQR', { durable_name: 'n', ack_policy: AckPolicy.None }), 10084);
    await rejectsWithCode(jsm.consumers.add('WQR', { durable_name: 'a', ack_policy: AckPolicy.All }), 10098);
    await rejectsWithCode(jsm.consumers.add('WQR', { durable_name: 'l', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.Last }), 10101);
    await jsm.consumers.add('WQR', { durable_name: 'wa', ack_policy: AckPolicy.Explicit, filter_subject: 'wq.a' });
    await rejectsWithCode(jsm.consumers.add('WQR', { durable_name: 'all', ack_policy: AckPolicy.Explicit }), 10099);
    await rejectsWithCode(jsm.consumers.add('WQR', { durable_name: 'wide', ack_policy: AckPolicy.Explicit, filter_subject: 'wq.>' }), 10100);
    await jsm.consumers.add('WQR', { durable_name: 'wb', ack_policy: AckPolicy.Explicit, filter_subject: 'wq.b' });
    assert.equal((await jsm.streams.info('WQR')).state.consumer_count, 2);
  });

  test('fetch, next and consume; info counters after each step', async () => {
    await jsm.streams.add({ name: 'PULLS', subjects: ['pulls.>'] });
    await publishN('pulls.x', 10);
    await jsm.consumers.add('PULLS', { durable_name: 'p', ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get('PULLS', 'p');
    let info = await consumer.info();
    assert.equal(info.num_pending, 10);
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.delivered.consumer_seq, 0);

    const fetched = await collect(await consumer.fetch({ max_messages: 4, expires: 2000 }), 4);
    assert.deepEqual(fetched.map((m) => m.seq), [1, 2, 3, 4]);
    info = await consumer.info();
    assert.equal(info.num_pending, 6);
    assert.equal(info.num_ack_pending, 4);
    assert.equal(info.delivered.consumer_seq, 4);
    assert.equal(info.ack_floor.consumer_seq, 0);
    for (const m of fetched) m.ack();
    await nc.flush();

    const next = await consumer.next({ expires: 2000 });
    assert.equal(next?.seq, 5);
    assert.equal(next?.info.pending, 5);
    next?.ack();

    const messages = await consumer.consume({ max_messages: 3 });
    const consumed = await collect(messages, 5, (m) => m.ack());
    await messages.close();
    assert.deepEqual(consumed.map((m) => m.seq), [6, 7, 8, 9, 10]);
    assert.equal(consumed.at(-1)!.info.pending, 0);
    await nc.flush();
    await eventually(async () => {
      info = await consumer.info();
      assert.equal(info.num_pending, 0);
      assert.equal(info.num_ack_pending, 0);
      assert.equal(info.delivered.consumer_seq, 10);
      assert.equal(info.ack_floor.consumer_seq, 10);
      assert.equal(info.ack_floor.stream_seq, 10);
      assert.equal(info.num_waiting, 0);
    });
    const started = Date.now();
    const empty = await collect(await consumer.fetch({ max_messages: 5, expires: 1000 }), 5);
    assert.equal(empty.length, 0);
    assert.ok(Date.now() - started >= 900, 'fetch ended by the 408 at expiry');
  });

  test('ordered pull consumer reads everything in order; filters and last_per_subject', async () => {
    await jsm.streams.add({ name: 'ORD', subjects: ['ord.>'] });
    for (let i = 1; i <= 20; i++) await js.publish(`ord.k${i % 4}`, `v${i}`);
    const ordered = await js.consumers.get('ORD');
    const all = await collect(await ordered.consume(), 20);
    assert.deepEqual(all.map((m) => m.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(all.map((m) => m.info.deliverySequence), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.equal(all.at(-1)!.info.pending, 0);
    const cached = await ordered.info(true);
    assert.equal(cached.config.ack_policy, 'none');
    assert.equal(cached.config.mem_storage, true);

    const last = await js.consumers.get('ORD', { filter_subjects: ['ord.k1', 'ord.k2'], deliver_policy: DeliverPolicy.LastPerSubject });
    const lastInfo = await last.info(true);
    assert.equal(lastInfo.num_pending, 2, 'last_per_subject counts one per subject');
    const lasts = await collect(await last.fetch({ max_messages: 2, expires: 1000 }), 2);
    assert.deepEqual(lasts.map((m) => m.string()), ['v17', 'v18']);
    assert.deepEqual(lasts.map((m) => m.info.pending), [1, 0]);
  });

  test('every deliver policy picks its start', async () => {
    await jsm.streams.add({ name: 'DP', subjects: ['dp.>'] });
    await publishN('dp.a', 3, 'a');
    await sleep(50);
    const middle = new Date().toISOString();
    await sleep(50);
    await publishN('dp.b', 3, 'b');
    const firstOf = async (config: Partial<ConsumerConfig>, count: number): Promise<string[]> => {
      const ci = await jsm.consumers.add('DP', { ack_policy: AckPolicy.None, ...config });
      const consumer = await js.consumers.get('DP', ci.name);
      const got = await collect(await consumer.fetch({ max_messages: count, expires: 1000 }), count);
      await consumer.delete();
      return got.map((m) => m.string());
    };
    assert.deepEqual(await firstOf({ deliver_policy: DeliverPolicy.All }, 6), ['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
    assert.deepEqual(await firstOf({ deliver_policy: DeliverPolicy.Last }, 1), ['b3']);
    assert.deepEqual(await firstOf({ deliver_policy: DeliverPolicy.Last, filter_subject: 'dp.a' }, 1), ['a3']);
    assert.deepEqual(await firstOf({ deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 5 }, 2), ['b2', 'b3']);
    assert.deepEqual(await firstOf({ deliver_policy: DeliverPolicy.StartTime, opt_start_time: middle }, 3), ['b1', 'b2', 'b3']);
    assert.deepEqual(await firstOf({ deliver_policy: DeliverPolicy.LastPerSubject, filter_subject: 'dp.>' }, 2), ['a3', 'b3']);
    const fresh = await jsm.consumers.add('DP', { ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.New });
    assert.equal(fresh.num_pending, 0);
    const consumer = await js.consumers.get('DP', fresh.name);
    await js.publish('dp.c', 'c1');
    const news = await collect(await consumer.fetch({ max_messages: 1, expires: 1000 }), 1);
    assert.deepEqual(news.map((m) => m.string()), ['c1']);
    await rejectsWithCode(jsm.consumers.add('DP', { deliver_policy: DeliverPolicy.StartSequence }), 10094, /optional start sequence is not set/);
    await rejectsWithCode(jsm.consumers.add('DP', { deliver_policy: DeliverPolicy.LastPerSubject }), 10094, /filter subject is not set/);
  });

  test('ack policies: none, all, explicit', async () => {
    await jsm.streams.add({ name: 'ACKS', subjects: ['acks.>'] });
    await publishN('acks.x', 5);
    await jsm.consumers.add('ACKS', { durable_name: 'none', ack_policy: AckPolicy.None });
    const none = await js.consumers.get('ACKS', 'none');
    const got = await collect(await none.fetch({ max_messages: 5, expires: 1000 }), 5);
    assert.equal(got.length, 5);
    let info = await none.info();
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.ack_floor.stream_seq, 5, 'ack none: delivered = acked');

    await jsm.consumers.add('ACKS', { durable_name: 'all', ack_policy: AckPolicy.All });
    const all = await js.consumers.get('ACKS', 'all');
    const batch = await collect(await all.fetch({ max_messages: 5, expires: 1000 }), 5);
    assert.equal(await batch[2]!.ackAck(), true);
    info = await all.info();
    assert.equal(info.num_ack_pending, 2, 'acking 3 acked 1..3');
    assert.equal(info.ack_floor.stream_seq, 3);
    assert.equal(info.ack_floor.consumer_seq, 3);

    await jsm.consumers.add('ACKS', { durable_name: 'explicit', ack_policy: AckPolicy.Explicit });
    const explicit = await js.consumers.get('ACKS', 'explicit');
    const each = await collect(await explicit.fetch({ max_messages: 5, expires: 1000 }), 5);
    assert.equal(await each[2]!.ackAck(), true);
    info = await explicit.info();
    assert.equal(info.num_ack_pending, 4, 'explicit acks one message');
    assert.equal(info.ack_floor.stream_seq, 0);
    assert.equal(await each[0]!.ackAck(), true);
    assert.equal(await each[1]!.ackAck(), true);
    info = await explicit.info();
    assert.equal(info.ack_floor.stream_seq, 3, 'the floor moves over the earlier ack');
    // nats.js answers a second ackAck() itself; on the wire a repeated ack still gets its empty reply.
    const ackSubject = `$JS.ACK.ACKS.explicit.1.2.${each[1]!.info.deliverySequence}.${each[1]!.info.timestampNanos}.3`;
    const reply = await nc.request(ackSubject, '+ACK');
    assert.equal(reply.data.length, 0, 'a second ack is answered too');
    each[3]!.term('bad input');
    await nc.flush();
    info = await explicit.info();
    assert.equal(info.num_ack_pending, 1, '+TERM counts as acked');
  });

  test('max_ack_pending stops delivery until acks arrive', async () => {
    await jsm.streams.add({ name: 'MAP', subjects: ['map.>'] });
    await publishN('map.x', 5);
    await jsm.consumers.add('MAP', { durable_name: 'c', ack_policy: AckPolicy.Explicit, max_ack_pending: 2 });
    const consumer = await js.consumers.get('MAP', 'c');
    const got = await collect(await consumer.fetch({ max_messages: 5, expires: 1000 }), 5);
    assert.equal(got.length, 2);
    assert.equal((await consumer.info()).num_ack_pending, 2);
    got[0]!.ack();
    const more = await collect(await consumer.fetch({ max_messages: 5, expires: 1000 }), 5);
    assert.deepEqual(more.map((m) => m.seq), [3]);
  });

  test('backoff replaces ack_wait per delivery; a delayed NAK waits', async () => {
    await jsm.streams.add({ name: 'BO', subjects: ['bo.>'] });
    await js.publish('bo.x', 'x');
    await rejectsWithCode(
      jsm.consumers.add('BO', { durable_name: 'bad', ack_policy: AckPolicy.Explicit, max_deliver: 1, backoff: [nanos(100), nanos(200)] }),
      10116,
    );
    const ci = await jsm.consumers.add('BO', { durable_name: 'b', ack_policy: AckPolicy.Explicit, max_deliver: 4, backoff: [nanos(200), nanos(600)] });
    assert.equal(ci.config.ack_wait, nanos(200), 'ack_wait is backoff[0]');
    const consumer = await js.consumers.get('BO', 'b');
    const times: number[] = [];
    const messages = await consumer.consume({ max_messages: 10 });
    const started = Date.now();
    await collect(messages, 3, () => times.push(Date.now() - started));
    await messages.close();
    assert.ok(times[1]! >= 180 && times[1]! < 5000, `second delivery after ~200 ms (never before; a loaded machine may be late), got ${times[1]}`);
    assert.ok(times[2]! - times[1]! >= 550, `third delivery ~600 ms later, got ${times[2]! - times[1]!}`);

    await js.publish('bo.y', 'y');
    await jsm.consumers.add('BO', { durable_name: 'nak', ack_policy: AckPolicy.Explicit, filter_subject: 'bo.y', ack_wait: nanos(10_000) });
    const nak = await js.consumers.get('BO', 'nak');
    const m = await nak.next({ expires: 1000 });
    assert.ok(m !== null, 'first delivery');
    const nakAt = Date.now();
    m.nak(300);
    const again = await nak.next({ expires: 2000 });
    assert.ok(again !== null, 'redelivery after the NAK');
    assert.ok(Date.now() - nakAt >= 280, 'redelivered after the NAK delay');
    assert.equal(again.info.deliveryCount, 2);
  });

  test('filter_subjects and headers_only', async () => {
    await jsm.streams.add({ name: 'FS', subjects: ['fs.>'] });
    const h = headers();
    h.set('X-Kind', 'test');
    await js.publish('fs.a', 'aaaa', { headers: h });
    await js.publish('fs.b', 'bb');
    await js.publish('fs.c', 'c');
    await rejectsWithCode(jsm.consumers.add('FS', { durable_name: 'o', filter_subjects: ['fs.>', 'fs.a'] }), 10138);
    await jsm.consumers.add('FS', { durable_name: 'f', filter_subjects: ['fs.a', 'fs.c'], headers_only: true, ack_policy: AckPolicy.None });
    const consumer = await js.consumers.get('FS', 'f');
    assert.equal((await consumer.info()).num_pending, 2);
    const got = await collect(await consumer.fetch({ max_messages: 2, expires: 1000 }), 2);
    assert.deepEqual(got.map((m) => m.subject), ['fs.a', 'fs.c']);
    assert.equal(got[0]!.data.length, 0);
    assert.equal(got[0]!.headers?.get('Nats-Msg-Size'), '4');
    assert.equal(got[0]!.headers?.get('X-Kind'), 'test');
    assert.equal(got[1]!.headers?.get('Nats-Msg-Size'), '1');
  });

  test('pull status messages: 404, 408 with pending headers, 409s, 400, 503', async () => {
    await jsm.streams.add({ name: 'ST', subjects: ['st.>'] });
    await jsm.consumers.add('ST', { durable_name: 'p', ack_policy: AckPolicy.Explicit, max_waiting: 1, max_batch: 10, max_expires: nanos(5000) });
    const next = '$JS.API.CONSUMER.MSG.NEXT.ST.p';
    let result = await rawPull(nc, next, JSON.stringify({ batch: 2, no_wait: true }), 1000);
    assert.deepEqual(result.statuses.map(statusLine), ['404 No Messages']);
    result = await rawPull(nc, next, JSON.stringify({ batch: 5, expires: nanos(200) }), 2000);
    assert.deepEqual(result.statuses.map(statusLine), ['408 Request Timeout']);
    assert.equal(result.statuses[0]!.headers?.get('Nats-Pending-Messages'), '5');
    assert.equal(result.statuses[0]!.headers?.get('Nats-Pending-Bytes'), '0');
    result = await rawPull(nc, next, JSON.stringify({ batch: 50 }), 1000);
    assert.deepEqual(result.statuses.map(statusLine), ['409 Exceeded MaxRequestBatch of 10']);
    result = await rawPull(nc, next, JSON.stringify({ batch: 1, expires: nanos(60_000) }), 1000);
    assert.deepEqual(result.statuses.map(statusLine), ['409 Exceeded MaxRequestExpires of 5s']);
    result = await rawPull(nc, next, JSON.stringify({ batch: 1, expires: nanos(1000), idle_heartbeat: nanos(800) }), 1000);
    assert.deepEqual(result.statuses.map(statusLine), ['400 Bad Request - heartbeat value too large']);
    // One waiting request is the maximum: a second one is refused.
    const waitingInbox = createInbox();
    const waitingSub = nc.subscribe(waitingInbox);
    nc.publish(next, JSON.stringify({ batch: 1, expires: nanos(3000) }), { reply: waitingInbox });
    await nc.flush();
    result = await rawPull(nc, next, JSON.stringify({ batch: 1, expires: nanos(1000) }), 1000);
    assert.deepEqual(result.statuses.map(statusLine), ['409 Exceeded MaxWaiting']);
    assert.equal((await jsm.consumers.info('ST', 'p')).num_waiting, 1);
    waitingSub.unsubscribe();
    await nc.flush();
    await eventually(async () => assert.equal((await jsm.consumers.info('ST', 'p')).num_waiting, 0), { timeoutMs: 2000 });

    // max_bytes: a message larger than what is left ends the request; a batch done with bytes left says so.
    await js.publish('st.big', 'x'.repeat(200));
    await js.publish('st.small', 'y');
    await jsm.consumers.add('ST', { durable_name: 'bytes', ack_policy: AckPolicy.None });
    result = await rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.ST.bytes', JSON.stringify({ batch: 5, max_bytes: 100, expires: nanos(1000) }), 1500);
    assert.deepEqual(result.statuses.map(statusLine), ['409 Message Size Exceeds MaxBytes']);
    assert.equal(result.statuses[0]!.headers?.get('Nats-Pending-Messages'), '5');
    assert.equal(result.statuses[0]!.headers?.get('Nats-Pending-Bytes'), '100');
    result = await rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.ST.bytes', JSON.stringify({ batch: 1, max_bytes: 10_000, expires: nanos(1000) }), 1500);
    assert.equal(result.data.length, 1);
    assert.equal(result.data[0]!.subject, 'st.big', 'data messages carry the stored subject');
    assert.deepEqual(result.statuses.map(statusLine), ['409 Batch Completed']);
    assert.equal(result.statuses[0]!.headers?.get('Nats-Pending-Messages'), '0');

    // no_wait with messages: delivers what there is, then 404 at the end.
    result = await rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.ST.bytes', JSON.stringify({ batch: 5, no_wait: true }), 1500);
    assert.deepEqual(result.data.map((m) => m.subject), ['st.small']);
    assert.deepEqual(result.statuses.map(statusLine), ['404 No Messages']);

    // A push consumer refuses pulls; a missing consumer answers like nobody is listening.
    await jsm.consumers.add('ST', { durable_name: 'push', deliver_subject: createInbox(), ack_policy: AckPolicy.None });
    result = await rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.ST.push', '', 1000);
    assert.deepEqual(result.statuses.map(statusLine), ['409 Consumer is push based']);
    result = await rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.ST.missing', '', 1000);
    assert.deepEqual(result.statuses.map(statusLine), ['503']);

    // Deleting a consumer releases its waiting requests with 409 Consumer Deleted.
    await jsm.consumers.add('ST', { durable_name: 'gone', ack_policy: AckPolicy.Explicit, filter_subject: 'st.none' });
    const pending = rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.ST.gone', JSON.stringify({ batch: 1, expires: nanos(3000) }), 3000);
    await eventually(async () => assert.equal((await jsm.consumers.info('ST', 'gone')).num_waiting, 1));
    await jsm.consumers.delete('ST', 'gone');
    result = await pending;
    assert.deepEqual(result.statuses.map(statusLine), ['409 Consumer Deleted']);
  });

  test('pull idle heartbeats carry the last delivered positions', async () => {
    await jsm.streams.add({ name: 'HB', subjects: ['hb.>'] });
    await js.publish('hb.x', 'x');
    await jsm.consumers.add('HB', { durable_name: 'h', ack_policy: AckPolicy.None });
    const result = await rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.HB.h', JSON.stringify({ batch: 5, expires: nanos(700), idle_heartbeat: nanos(200) }), 1500);
    assert.equal(result.data.length, 1);
    const beats = result.statuses.filter((m) => m.headers?.code === 100);
    assert.ok(beats.length >= 2, `heartbeats: ${beats.length}`);
    assert.equal(statusLine(beats[0]!), '100 Idle Heartbeat');
    assert.equal(beats[0]!.headers?.get('Nats-Last-Consumer'), '1');
    assert.equal(beats[0]!.headers?.get('Nats-Last-Stream'), '1');
    assert.equal(statusLine(result.statuses.at(-1)!), '408 Request Timeout');
    assert.equal(result.statuses.at(-1)!.headers?.get('Nats-Pending-Messages'), '4');
  });

  test('push consumers: held without interest, heartbeats, deliver_group, flow control', async () => {
    await jsm.streams.add({ name: 'PUSH', subjects: ['push.>'] });
    await publishN('push.x', 3);
    const deliver = createInbox();
    await jsm.consumers.add('PUSH', { durable_name: 'p', deliver_subject: deliver, ack_policy: AckPolicy.Explicit, idle_heartbeat: nanos(200) });
    let info = await jsm.consumers.info('PUSH', 'p');
    assert.equal(info.push_bound, undefined, 'nobody subscribed yet');
    assert.equal(info.delivered.consumer_seq, 0, 'nothing sent without interest');
    const consumer = await js.consumers.getPushConsumer('PUSH', 'p');
    const got: string[] = [];
    const messages = await consumer.consume({
      callback: (m) => {
        got.push(m.string());
        m.ack();
      },
    });
    const notifications: string[] = [];
    void (async () => {
      for await (const s of messages.status()) notifications.push(s.type);
    })();
    await eventually(() => assert.deepEqual(got, ['m1', 'm2', 'm3']));
    info = await jsm.consumers.info('PUSH', 'p');
    assert.equal(info.push_bound, true);
    await eventually(() => assert.ok(notifications.includes('heartbeat'), `notifications: ${notifications.join(',')}`), { timeoutMs: 2000 });
    await messages.close();
    await eventually(async () => assert.equal((await jsm.consumers.info('PUSH', 'p')).push_bound, undefined));

    // deliver_group: members of a queue group share the messages.
    const group = createInbox();
    await jsm.consumers.add('PUSH', { durable_name: 'q', deliver_subject: group, deliver_group: 'workers', ack_policy: AckPolicy.None });
    const counts = [0, 0];
    const subs = [0, 1].map((i) =>
      nc.subscribe(group, {
        queue: 'workers',
        callback: () => {
          counts[i]!++;
        },
      }),
    );
    await eventually(() => assert.equal(counts[0]! + counts[1]!, 3));
    for (const sub of subs) sub.unsubscribe();

    // Flow control: over 1 MiB in flight gets a FlowControl request that nats.js answers.
    const big = 'z'.repeat(64 * 1024);
    for (let i = 0; i < 40; i++) await js.publish('push.big', big);
    const ordered = await js.consumers.getPushConsumer('PUSH', { filter_subjects: 'push.big' });
    const bigMessages = await ordered.consume();
    const flow: string[] = [];
    void (async () => {
      for await (const s of bigMessages.status()) flow.push(s.type);
    })();
    const all = await collect(bigMessages, 40);
    assert.equal(all.length, 40);
    assert.ok(flow.includes('flow_control'), `notifications: ${flow.join(',')}`);
    void bigMessages.close();
  });

  test('ordered push consumer (as KV watchers use it) with last_per_subject', async () => {
    await jsm.streams.add({ name: 'OP', subjects: ['op.>'], max_msgs_per_subject: 5 });
    for (let i = 1; i <= 6; i++) await js.publish(`op.k${i % 3}`, `v${i}`);
    const ordered = await js.consumers.getPushConsumer('OP', { deliver_policy: DeliverPolicy.LastPerSubject, filter_subjects: 'op.>' });
    const info = await ordered.info(true);
    assert.equal(info.num_pending, 3);
    const got: JsMsg[] = [];
    const messages = await ordered.consume({
      callback: (m) => {
        got.push(m);
      },
    });
    await eventually(() => assert.equal(got.length, 3));
    assert.deepEqual(got.map((m) => m.string()), ['v4', 'v5', 'v6']);
    assert.deepEqual(got.map((m) => m.info.pending), [2, 1, 0]);
    await js.publish('op.k1', 'v7');
    await eventually(() => assert.equal(got.length, 4));
    assert.equal(got[3]!.string(), 'v7');
    await messages.close();
  });

  test('interest retention removes a message once every matching consumer acked it', async () => {
    await jsm.streams.add({ name: 'INT', subjects: ['int.>'], retention: RetentionPolicy.Interest });
    await js.publish('int.x', 'dropped');
    assert.equal((await jsm.streams.info('INT')).state.messages, 0, 'nobody was interested');
    await jsm.consumers.add('INT', { durable_name: 'a', ack_policy: AckPolicy.Explicit });
    await jsm.consumers.add('INT', { durable_name: 'b', ack_policy: AckPolicy.Explicit });
    await jsm.consumers.add('INT', { durable_name: 'other', ack_policy: AckPolicy.Explicit, filter_subject: 'int.other' });
    await js.publish('int.x', 'kept');
    const a = await (await js.consumers.get('INT', 'a')).next({ expires: 1000 });
    assert.equal(await a?.ackAck(), true);
    assert.equal((await jsm.streams.info('INT')).state.messages, 1, 'b has not acked yet');
    const b = await (await js.consumers.get('INT', 'b')).next({ expires: 1000 });
    assert.equal(await b?.ackAck(), true);
    assert.equal((await jsm.streams.info('INT')).state.messages, 0, 'acked by every matching consumer');
  });

  test('purge and limits fix pending, ack floor and num_pending; stream delete releases pulls', async () => {
    await jsm.streams.add({ name: 'PRG', subjects: ['prg.>'], max_msgs: 8 });
    await publishN('prg.x', 6);
    await jsm.consumers.add('PRG', { durable_name: 'c', ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get('PRG', 'c');
    const got = await collect(await consumer.fetch({ max_messages: 3, expires: 1000 }), 3);
    assert.equal(got.length, 3);
    let info = await consumer.info();
    assert.equal(info.num_ack_pending, 3);
    assert.equal(info.num_pending, 3);
    // max_msgs 8: four more publishes push seqs 1 and 2 out; their pending acks go with them.
    await publishN('prg.x', 4, 'n');
    info = await consumer.info();
    assert.equal(info.num_ack_pending, 1, 'only seq 3 is still pending');
    assert.equal(info.ack_floor.stream_seq, 2);
    assert.equal(info.num_pending, 7);
    await jsm.streams.purge('PRG', { seq: 9 });
    info = await consumer.info();
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.num_pending, 2, 'seqs 9 and 10 are left');
    assert.equal(info.ack_floor.stream_seq, 8);
    const rest = await collect(await consumer.fetch({ max_messages: 2, expires: 1000 }), 2);
    assert.deepEqual(rest.map((m) => m.seq), [9, 10]);

    await jsm.consumers.add('PRG', { durable_name: 'w', ack_policy: AckPolicy.Explicit, filter_subject: 'prg.none' });
    const waiting = rawPull(nc, '$JS.API.CONSUMER.MSG.NEXT.PRG.w', JSON.stringify({ batch: 1, expires: nanos(3000) }), 3000);
    await eventually(async () => assert.equal((await jsm.consumers.info('PRG', 'w')).num_waiting, 1));
    await jsm.streams.delete('PRG');
    assert.deepEqual((await waiting).statuses.map(statusLine), ['409 Consumer Deleted']);
  });

  test('+TERM sends the terminated advisory with its reason', async () => {
    await jsm.streams.add({ name: 'TRM', subjects: ['trm.>'] });
    await js.publish('trm.x', 'x');
    await jsm.consumers.add('TRM', { durable_name: 't', ack_policy: AckPolicy.Explicit });
    const advisories: Record<string, unknown>[] = [];
    const sub = nc.subscribe('$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.TRM.t', {
      callback: (_err, msg) => {
        advisories.push(msg.json());
      },
    });
    await nc.flush();
    const m = await (await js.consumers.get('TRM', 't')).next({ expires: 1000 });
    assert.ok(m !== null, 'delivered');
    m.term('cannot parse');
    await eventually(() => assert.equal(advisories.length, 1));
    assert.equal(advisories[0]!['type'], 'io.nats.jetstream.advisory.v1.terminated');
    assert.equal(advisories[0]!['reason'], 'cannot parse');
    assert.equal(advisories[0]!['stream_seq'], 1);
    sub.unsubscribe();
    assert.equal((await jsm.consumers.info('TRM', 't')).num_ack_pending, 0);
  });

  test('+NXT acks and pulls the next message to the given inbox', async () => {
    await jsm.streams.add({ name: 'NXT', subjects: ['nxt.>'] });
    await publishN('nxt.x', 2);
    await jsm.consumers.add('NXT', { durable_name: 'n', ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get('NXT', 'n');
    const first = await consumer.next({ expires: 1000 });
    assert.ok(first !== null, 'first message');
    const inbox = createInbox();
    const sub = nc.subscribe(inbox, { max: 1 });
    first.next(inbox, { batch: 1, expires: 1000 });
    for await (const msg of sub) assert.equal(msg.string(), 'm2');
    const info = await consumer.info();
    assert.equal(info.ack_floor.stream_seq, 1);
    assert.equal(info.delivered.stream_seq, 2);
  });

  test('create semantics: actions, subject/body consistency, config echo', async () => {
    await jsm.streams.add({ name: 'CR', subjects: ['cr.>'] });
    const created = await jsm.consumers.add('CR', { durable_name: 'c', ack_policy: AckPolicy.Explicit, filter_subject: 'cr.a' });
    assert.equal(created.config.max_waiting, 512);
    assert.equal(created.config.max_ack_pending, 1000);
    assert.equal(created.config.ack_wait, 30_000_000_000);
    assert.equal(created.config.max_deliver, -1);
    assert.equal(created.config.replay_policy, 'instant');
    assert.equal(created.config.deliver_subject, undefined, 'pull consumers have no deliver_subject');
    await jsm.consumers.add('CR', { durable_name: 'c', ack_policy: AckPolicy.Explicit, filter_subject: 'cr.a' });
    await rejectsWithCode(jsm.consumers.add('CR', { durable_name: 'c', ack_policy: AckPolicy.Explicit, filter_subject: 'cr.b' }), 10148);
    const updated = await jsm.consumers.update('CR', 'c', { max_ack_pending: 5 });
    assert.equal(updated.config.max_ack_pending, 5);
    await rejectsWithCode(jsm.consumers.update('CR', 'c', { ack_policy: AckPolicy.All } as never), 10012, /ack policy can not be updated/);
    await rejectsWithCode(jsm.consumers.update('CR', 'nope', {}), 10014);
    await rejectsWithCode(jsm.consumers.add('CR', { name: 'x', durable_name: 'y' }), 10017);
    await rejectsWithCode(jsm.consumers.add('CR', { durable_name: 'p', deliver_subject: 'cr.loop' }), 10081);
    await rejectsWithCode(jsm.consumers.add('CR', { durable_name: 'p', idle_heartbeat: nanos(1000) }), 10088);
    await rejectsWithCode(jsm.consumers.add('CR', { durable_name: 'p', deliver_subject: 'd.x', flow_control: true }), 10108);
    await rejectsWithCode(jsm.consumers.info('CR', 'missing'), 10014);
    await rejectsWithCode(jsm.consumers.info('NOSTREAM', 'x'), 10059);

    const request = async (subject: string, body: unknown): Promise<Record<string, unknown>> =>
      (await nc.request(subject, JSON.stringify(body))).json<Record<string, unknown>>();
    const errorCode = (response: Record<string, unknown>): number => (response['error'] as { err_code: number }).err_code;
    let response = await request('$JS.API.CONSUMER.CREATE.CR.n.cr.a', { stream_name: 'CR', config: { name: 'n', filter_subject: 'cr.b' } });
    assert.equal(errorCode(response), 10131);
    response = await request('$JS.API.CONSUMER.CREATE.CR.n.cr.a', { stream_name: 'CR', config: { name: 'n', filter_subjects: ['cr.a'] } });
    assert.equal(errorCode(response), 10137);
    response = await request('$JS.API.CONSUMER.CREATE.OTHER.n', { stream_name: 'CR', config: {} });
    assert.equal(errorCode(response), 10056);
    response = await request('$JS.API.CONSUMER.DURABLE.CREATE.CR.d', { stream_name: 'CR', config: { durable_name: 'e' } });
    assert.equal(errorCode(response), 10017);
    response = await request('$JS.API.CONSUMER.DURABLE.CREATE.CR.d', { stream_name: 'CR', config: {} });
    assert.equal(errorCode(response), 10018);
    response = await request('$JS.API.CONSUMER.CREATE.CR', { stream_name: 'CR', config: { durable_name: 'e' } });
    assert.equal(errorCode(response), 10020);
    response = await request('$JS.API.CONSUMER.CREATE.CR', { stream_name: 'CR', config: { ack_policy: 'explicit' } });
    assert.equal(response['type'], 'io.nats.jetstream.api.v1.consumer_create_response');
    assert.match(String(response['name']), /^[A-Za-z0-9]{8}$/, 'legacy ephemerals get a generated name');
    assert.equal((response['config'] as Record<string, unknown>)['inactive_threshold'], 5_000_000_000);
    response = await request('$JS.API.CONSUMER.DURABLE.CREATE.CR.d', { stream_name: 'CR', config: { durable_name: 'd', ack_policy: 'explicit' } });
    assert.equal(response['name'], 'd');
    response = await request('$JS.API.CONSUMER.PAUSE.CR.d', {});
    assert.equal(errorCode(response), 10003);
  });

  test('names and list page and sort', async () => {
    await jsm.streams.add({ name: 'MANY', subjects: ['many.>'] });
    const names: string[] = [];
    for (let i = 0; i < 260; i++) names.push(`c${String(i).padStart(3, '0')}`);
    for (const name of [...names].reverse()) await jsm.consumers.add('MANY', { durable_name: name, ack_policy: AckPolicy.None });
    const listed: string[] = [];
    for await (const ci of jsm.consumers.list('MANY')) listed.push(ci.name);
    assert.deepEqual(listed, names);
    const page = (await nc.request('$JS.API.CONSUMER.LIST.MANY', JSON.stringify({ offset: 0 }))).json<Record<string, unknown>>();
    assert.equal(page['total'], 260);
    assert.equal(page['limit'], 256);
    assert.equal((page['consumers'] as unknown[]).length, 256);
    const namesPage = (await nc.request('$JS.API.CONSUMER.NAMES.MANY', JSON.stringify({ offset: 250 }))).json<Record<string, unknown>>();
    assert.equal(namesPage['type'], 'io.nats.jetstream.api.v1.consumer_names_response');
    assert.equal(namesPage['limit'], 1024);
    assert.equal(namesPage['offset'], 250);
    assert.deepEqual(namesPage['consumers'], names.slice(250));
    assert.equal((await jsm.streams.info('MANY')).state.consumer_count, 260);
    assert.equal(await jsm.consumers.delete('MANY', 'c000'), true);
    assert.equal((await jsm.streams.info('MANY')).state.consumer_count, 259);
  });

  test('an ephemeral is deleted after inactive_threshold; a durable is not', async () => {
    await jsm.streams.add({ name: 'EPH', subjects: ['eph.>'] });
    const ephemeral = await jsm.consumers.add('EPH', { name: 'e', ack_policy: AckPolicy.None, inactive_threshold: nanos(300) });
    assert.equal(ephemeral.config.durable_name, undefined);
    await jsm.consumers.add('EPH', { durable_name: 'd', ack_policy: AckPolicy.None });
    await eventually(async () => rejectsWithCode(jsm.consumers.info('EPH', 'e'), 10014), { timeoutMs: 3000 });
    const durable = await jsm.consumers.info('EPH', 'd');
    assert.equal(durable.name, 'd');
  });

  test('replay_policy original keeps the original spacing', async () => {
    await jsm.streams.add({ name: 'RP', subjects: ['rp.>'] });
    await js.publish('rp.x', '1');
    await sleep(300);
    await js.publish('rp.x', '2');
    await jsm.consumers.add('RP', { durable_name: 'r', ack_policy: AckPolicy.None, replay_policy: ReplayPolicy.Original });
    const consumer = await js.consumers.get('RP', 'r');
    const times: number[] = [];
    const started = Date.now();
    await collect(await consumer.fetch({ max_messages: 2, expires: 2000 }), 2, () => times.push(Date.now() - started));
    assert.ok(times[1]! - times[0]! >= 250, `replayed ${times[1]! - times[0]!} ms apart`);
  });
});

describe('JetStream consumers across a restart', () => {
  test('a durable consumer keeps its config, positions and pending acks (LMDB store)', async (t) => {
    const storeDir = mkdtempSync(join(tmpdir(), 'canopy-consumers-'));
    t.after(() => rmSync(storeDir, { recursive: true, force: true }));
    let srv = await startTestBroker({ store_dir: storeDir });
    let nc = await connect({ servers: srv.url });
    try {
      let jsm = await jetstreamManager(nc);
      let js = jetstream(nc);
      await jsm.streams.add({ name: 'DUR', subjects: ['dur.>'] });
      for (let i = 1; i <= 5; i++) await js.publish('dur.x', `d${i}`);
      await jsm.consumers.add('DUR', { durable_name: 'keep', ack_policy: AckPolicy.Explicit, ack_wait: nanos(500) });
      await jsm.consumers.add('DUR', { name: 'gone', ack_policy: AckPolicy.None });
      const consumer = await js.consumers.get('DUR', 'keep');
      const got = await collect(await consumer.fetch({ max_messages: 3, expires: 1000 }), 3);
      assert.equal(await got[0]!.ackAck(), true);
      await nc.close();
      await srv.close();

      srv = await startTestBroker({ store_dir: storeDir });
      nc = await connect({ servers: srv.url });
      jsm = await jetstreamManager(nc);
      js = jetstream(nc);
      const info = await jsm.consumers.info('DUR', 'keep');
      assert.equal(info.config.ack_wait, nanos(500));
      assert.equal(info.delivered.consumer_seq, 3);
      assert.equal(info.ack_floor.stream_seq, 1);
      assert.equal(info.num_ack_pending, 2);
      assert.equal(info.num_pending, 2);
      await rejectsWithCode(jsm.consumers.info('DUR', 'gone'), 10014);
      const restarted = await js.consumers.get('DUR', 'keep');
      const rest = await collect(await restarted.fetch({ max_messages: 4, expires: 2000 }), 4);
      assert.deepEqual(rest.map((m) => m.string()).sort(), ['d2', 'd3', 'd4', 'd5']);
      const redeliveries = rest.filter((m) => m.info.redelivered).map((m) => m.string());
      assert.deepEqual(redeliveries.sort(), ['d2', 'd3']);
      for (const m of rest) assert.equal(await m.ackAck(), true);
      assert.equal((await jsm.consumers.info('DUR', 'keep')).num_ack_pending, 0);
    } finally {
      await nc.close();
      await srv.close();
    }
  });
});
