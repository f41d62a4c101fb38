/**
 * The leaf's link host over real sockets: a real leaf (broker, LMDB in a temp dir, LeafLink)
 * publishes through the official nats.js clients and syncs to a fake hub (fake-hub.ts: a `ws`
 * server with the real codec that checks the receiver's rules). Each test states its goal.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { headers } from '@nats-io/transport-node';
import { StorageType } from '@nats-io/jetstream';
import { backoffDelayMs, LINK_BACKOFF_ATTEMPTS_MAX, LINK_BACKOFF_BASE_MS, LINK_BACKOFF_MAX_MS, type BatchFrame } from '../../../core/link/index.ts';
import { SeededPrng } from '../../../core/util/prng.ts';
import { eventually } from '../../helpers/eventually.ts';
import { FakeHub, keyId, type FakeHubOptions } from './fake-hub.ts';
import { startTestLeaf, type TestLeaf } from './helpers.ts';
import type { LeafLinkTuning } from '../../../leaf/main.ts';
import { LINK_SOCKET_BUFFERED_BYTES_MAX } from '../../../leaf/link/ws-link.ts';
import type { LeafLinkOptions } from '../../../core/server/link-options.ts';

async function setUp(
  t: TestContext,
  options: { hub?: FakeHubOptions; link?: Partial<LeafLinkOptions>; tuning?: LeafLinkTuning } = {},
): Promise<{ hub: FakeHub; leaf: TestLeaf }> {
  const hub = await FakeHub.start(options.hub);
  const leaf = await startTestLeaf({ hubUrl: hub.url, ...(options.link === undefined ? {} : { link: options.link }), ...(options.tuning === undefined ? {} : { tuning: options.tuning }) });
  t.after(async () => {
    await leaf.close();
    await hub.close();
  });
  return { hub, leaf };
}

async function publish(leaf: TestLeaf, subject: string, count: number, first = 1): Promise<void> {
  for (let i = first; i < first + count; i++) {
    const h = headers();
    h.set('X-Trace', `${subject}-${i}`);
    await leaf.js.publish(subject, `payload ${subject} ${i}`, { headers: h });
  }
}

/** The batches for `stream` on the hub, in order, are consecutive and start at `from`; returns their seqs. */
function batchSeqs(batches: readonly BatchFrame[]): number[] {
  const seqs: number[] = [];
  for (const batch of batches) for (const message of batch.msgs) seqs.push(message.seq);
  return seqs;
}

function range(from: number, to: number): number[] {
  const seqs: number[] = [];
  for (let seq = from; seq <= to; seq++) seqs.push(seq);
  return seqs;
}

test('offers every synced stream with its incarnation, resumes from the cursor + 1, and sends exactly what was stored', async (t) => {
  // Method: the hub closes every connection until the leaf's streams hold data, then answers the
  // first offer of ORDERS with cursor 3 (it claims 1…3) and the others with 0. ORDERS is a file
  // stream, SENSORS a memory stream, LOCAL is opted out with "canopy.sync": "false".
  let isFirstOffer = true;
  const { hub, leaf } = await setUp(t, {
    hub: {
      mode: 'closing',
      cursorFor: (offer) => {
        if (offer.stream !== 'ORDERS' || !isFirstOffer) return undefined;
        isFirstOffer = false;
        return 3;
      },
    },
  });
  await leaf.jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
  await leaf.jsm.streams.add({ name: 'SENSORS', subjects: ['sensors.>'], storage: StorageType.Memory });
  await leaf.jsm.streams.add({ name: 'LOCAL', subjects: ['local.>'], metadata: { 'canopy.sync': 'false' } });
  await publish(leaf, 'orders.new', 10);
  await publish(leaf, 'sensors.temp', 4);
  await publish(leaf, 'local.x', 2);
  hub.mode = 'normal';

  const orders = { stream: 'ORDERS', incarnation: leaf.stream('ORDERS').incarnation };
  const sensors = { stream: 'SENSORS', incarnation: leaf.stream('SENSORS').incarnation };
  await eventually(() => {
    assert.deepEqual(hub.storedSeqs(orders), range(4, 10));
    assert.deepEqual(hub.storedSeqs(sensors), range(1, 4));
  });
  const up = hub.connections.find((connection) => connection.hello !== undefined && connection.frames.some((frame) => frame.t === 'offer'))!;
  assert.equal(up.hello?.leaf, 'pi1');
  assert.equal(up.hello?.token, 'secret');
  assert.equal(up.hello?.heartbeatMs, 1000);
  const offers = hub.framesOf('offer', up.id);
  assert.deepEqual(
    offers.map((offer) => [offer.stream, offer.incarnation, offer.firstSeq, offer.lastSeq]).sort(),
    [
      ['ORDERS', orders.incarnation, 1, 10],
      ['SENSORS', sensors.incarnation, 1, 4],
    ],
  );
  assert.match(orders.incarnation, /^[0-9a-f]{32}$/);

  // Batches: consecutive from the cursor + 1, the published subject, headers and payload, the store's timestamps.
  const orderBatches = hub.framesOf('batch').filter((batch) => batch.stream === 'ORDERS');
  assert.deepEqual(batchSeqs(orderBatches), range(4, 10));
  const store = leaf.stream('ORDERS').store;
  for (const message of hub.stored.get(keyId(orders))!) {
    const local = store.load(message.seq)!;
    assert.equal(message.subject, 'orders.new');
    assert.equal(Buffer.from(message.data).toString(), `payload orders.new ${message.seq}`);
    assert.ok(message.headers !== undefined);
    assert.match(Buffer.from(message.headers).toString(), new RegExp(`X-Trace: orders.new-${message.seq}\r\n`));
    assert.deepEqual(Buffer.from(message.headers), local.headers);
    assert.equal(typeof message.timestampNs, 'bigint');
    assert.equal(message.timestampNs, local.timestampNs);
  }
  assert.ok(!hub.received.some((entry) => 'stream' in entry.frame && entry.frame.stream === 'LOCAL'), 'the opted-out stream never crosses the link');

  // After the hub's cursors nothing is pending, and the acknowledged cursors are kept for retention.
  await eventually(() => {
    const status = leaf.leaf.link.status();
    assert.equal(status.state, 'up');
    assert.equal(status.hub, 'fake-hub');
    assert.equal(status.hubUrl, hub.url);
    assert.ok(status.connectedSince !== undefined);
    assert.deepEqual(status.streams.map((stream) => stream.stream).sort(), ['ORDERS', 'SENSORS']);
    for (const stream of status.streams) {
      assert.equal(stream.backlogMsgs, 0, stream.stream);
      assert.equal(stream.backlogBytes, 0);
      assert.equal(stream.oldestUnsyncedAgeMs, undefined);
      assert.equal(stream.ackedSeq, stream.lastSeq);
      assert.equal(stream.state, 'syncing');
      assert.equal(stream.stalled, false);
    }
  });
  assert.deepEqual(leaf.leaf.link.acked('ORDERS'), { stream: 'ORDERS', incarnation: orders.incarnation, seq: 10 });
  assert.equal(leaf.leaf.link.ackedCursors.get('SENSORS')?.seq, 4);
  assert.deepEqual(hub.violations, []);

  // Live: a new message goes out as it is stored.
  await publish(leaf, 'orders.new', 1, 11);
  await eventually(() => assert.deepEqual(hub.storedSeqs(orders), range(4, 11)));
  const info = leaf.log.records.find((record) => record.msg === 'link up');
  assert.equal(info?.level, 'info');
  assert.equal(info?.fields['hub_name'], 'fake-hub');
  assert.equal(info?.fields['link'], 'pi1');
  assert.equal(info?.fields['hub'], hub.url);
});

test('the backlog stays while the hub holds its cursor, drops to 0 after it; a long wait is a stall, logged once', async (t) => {
  const { hub, leaf } = await setUp(t, { tuning: { stallMs: 300 } });
  hub.isAcking = false;
  await leaf.jsm.streams.add({ name: 'S', subjects: ['s.>'] });
  await publish(leaf, 's.a', 5);
  const key = { stream: 'S', incarnation: leaf.stream('S').incarnation };
  await eventually(() => assert.deepEqual(hub.storedSeqs(key), range(1, 5)));
  let status = leaf.leaf.link.status();
  const stream = status.streams.find((entry) => entry.stream === 'S')!;
  assert.equal(stream.ackedSeq, 0, 'the offer was answered with 0');
  assert.equal(stream.backlogMsgs, 5);
  assert.ok(stream.backlogBytes > 0);
  assert.ok(stream.oldestUnsyncedAgeMs !== undefined && stream.oldestUnsyncedAgeMs >= 0);
  assert.equal(stream.sentSeq, 5);

  await eventually(() => {
    status = leaf.leaf.link.status();
    assert.equal(status.stalled, true);
    assert.equal(status.streams.find((entry) => entry.stream === 'S')?.stalled, true);
  });
  leaf.leaf.link.status(); // asking again does not warn again
  await new Promise((resolve) => setTimeout(resolve, 1200)); // a housekeeping round or more
  const stallWarnings = leaf.log.records.filter((record) => record.level === 'warn' && record.msg?.startsWith('stream sync stalled'));
  assert.equal(stallWarnings.length, 1);
  assert.equal(stallWarnings[0]?.fields['stream'], 'S');

  hub.isAcking = true;
  hub.ackAll();
  await eventually(() => {
    status = leaf.leaf.link.status();
    const entry = status.streams.find((candidate) => candidate.stream === 'S')!;
    assert.equal(entry.ackedSeq, 5);
    assert.equal(entry.backlogMsgs, 0);
    assert.equal(entry.stalled, false);
    assert.equal(status.stalled, false);
  });
  assert.ok(leaf.log.records.some((record) => record.msg === 'stream sync moving again'));
});

test('a reconnect resumes from the hub cursor: no gap, no skipped message, while publishing goes on', async (t) => {
  // Method: publish 300 messages; the hub drops the connection after it has 50 and again after
  // 200; the leaf re-offers and the hub answers with what it stored. The hub's copy must be
  // exactly 1…300 (it checks that every batch starts right after its cursor).
  const { hub, leaf } = await setUp(t);
  await leaf.jsm.streams.add({ name: 'R', subjects: ['r.>'] });
  const key = { stream: 'R', incarnation: leaf.stream('R').incarnation };
  const drops = [50, 200];
  for (let i = 1; i <= 300; i++) {
    await leaf.js.publish('r.x', `m${i}`);
    if (drops.length > 0 && (hub.cursors.get(keyId(key)) ?? 0) >= drops[0]!) {
      drops.shift();
      hub.dropConnection();
    }
    if (i % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  if (drops.length > 0) {
    // The leaf ran ahead of the drop points: drop once more now, mid-stream or after.
    hub.dropConnection();
  }
  await eventually(() => assert.deepEqual(hub.storedSeqs(key), range(1, 300)), { timeoutMs: 15_000 });
  assert.deepEqual(hub.violations, []);
  const ups = hub.connections.filter((connection) => connection.frames.some((frame) => frame.t === 'offer'));
  assert.ok(ups.length >= 2, `reconnected (${ups.length} connections offered)`);
  // Every connection's first batch starts right after the cursor the hub answered on it.
  for (const connection of ups.slice(1)) {
    const first = connection.frames.find((frame): frame is BatchFrame => frame.t === 'batch');
    if (first === undefined) continue;
    const answered = Math.max(...hub.storedSeqs(key).filter((seq) => seq < first.msgs[0]!.seq));
    assert.equal(first.msgs[0]!.seq, answered + 1);
  }
  await eventually(() => {
    const status = leaf.leaf.link.status();
    assert.equal(status.state, 'up');
    assert.ok(status.reconnects >= 1, 'reconnected');
    assert.equal(status.streams.find((entry) => entry.stream === 'R')?.backlogMsgs, 0);
  });
  assert.ok(leaf.log.records.some((record) => record.msg === 'link down' && typeof record.fields['retry_in_ms'] === 'number'));
});

test('after a reconnect the leaf resends everything after the answered cursor, even what it had sent', async (t) => {
  // Method: the hub stores 30 messages without acknowledging them, drops the connection, and
  // answers the new offer with 20 (as a hub whose appends after 20 were not durable would). The
  // leaf must not assume its unacknowledged batches arrived: it resends from 21.
  let offers = 0;
  const { hub, leaf } = await setUp(t, { hub: { cursorFor: () => (++offers === 2 ? 20 : undefined) } });
  hub.isAcking = false;
  await leaf.jsm.streams.add({ name: 'U', subjects: ['u.>'] });
  await publish(leaf, 'u.x', 30);
  const key = { stream: 'U', incarnation: leaf.stream('U').incarnation };
  await eventually(() => assert.deepEqual(hub.storedSeqs(key), range(1, 30)));
  hub.isAcking = true;
  hub.dropConnection();
  await eventually(() => assert.equal(leaf.leaf.link.acked('U')?.seq, 30));
  const second = hub.connections.filter((connection) => connection.frames.some((frame) => frame.t === 'offer'))[1]!;
  const batches = second.frames.filter((frame): frame is BatchFrame => frame.t === 'batch');
  assert.deepEqual(batchSeqs(batches), range(21, 30));
  assert.equal(hub.duplicates, 10, 'the hub ignored the resent 21…30 (it had them)');
  assert.deepEqual(hub.storedSeqs(key), range(1, 30));
  assert.deepEqual(hub.violations, []);
});

test('a deleted and re-created stream is offered under its new incarnation, from 1', async (t) => {
  const { hub, leaf } = await setUp(t);
  await leaf.jsm.streams.add({ name: 'E', subjects: ['e.>'] });
  await publish(leaf, 'e.x', 3);
  const first = { stream: 'E', incarnation: leaf.stream('E').incarnation };
  await eventually(() => assert.deepEqual(hub.storedSeqs(first), [1, 2, 3]));
  await leaf.jsm.streams.delete('E');
  await leaf.jsm.streams.add({ name: 'E', subjects: ['e.>'] });
  await publish(leaf, 'e.x', 2, 4);
  const second = { stream: 'E', incarnation: leaf.stream('E').incarnation };
  assert.notEqual(second.incarnation, first.incarnation);
  await eventually(() => assert.deepEqual(hub.storedSeqs(second), [1, 2]));
  assert.deepEqual(hub.storedSeqs(first), [1, 2, 3]);
  assert.deepEqual(
    hub.framesOf('offer').map((offer) => offer.incarnation),
    [first.incarnation, second.incarnation],
  );
  assert.deepEqual(hub.violations, []);
  await eventually(() => assert.equal(leaf.leaf.link.acked('E')?.incarnation, second.incarnation));
});

test('while the socket is backed up the sender is not polled; it resumes when the socket drains', async (t) => {
  // Method: the hub announces a 32 MiB window and stops reading its socket; the leaf stores
  // 20 MB (within the window). Loopback TCP absorbs a few MB, then the socket holds more than
  // LINK_SOCKET_BUFFERED_BYTES_MAX and the leaf stops handing the sender's batches to it
  // although the window has room; once the hub reads again everything arrives, in order.
  // A long heartbeat: a hub that reads nothing also hears no pings, and must not be declared dead here.
  const { hub, leaf } = await setUp(t, { hub: { windowBytes: 32 * 1024 * 1024 }, link: { heartbeatMs: 30_000 } });
  await leaf.jsm.streams.add({ name: 'BIG', subjects: ['big.>'] });
  await eventually(() => assert.equal(leaf.leaf.link.status().streams[0]?.state, 'syncing'));
  hub.pauseReading();
  const payload = Buffer.alloc(200 * 1024, 7);
  for (let i = 0; i < 100; i++) await leaf.js.publish('big.x', payload);
  await eventually(() => assert.ok(leaf.leaf.link.status().socketBufferedBytes > LINK_SOCKET_BUFFERED_BYTES_MAX, 'the socket buffer is over its limit'));
  const sentSeq = leaf.leaf.link.status().streams[0]!.sentSeq;
  await new Promise((resolve) => setTimeout(resolve, 300));
  const status = leaf.leaf.link.status();
  assert.equal(status.streams[0]?.sentSeq, sentSeq, 'nothing more handed to the socket while it is backed up');
  assert.ok(sentSeq < 100, `stopped at ${sentSeq} of 100`);
  assert.ok(sentSeq * payload.length < 32 * 1024 * 1024, 'the window had room');
  hub.resumeReading();
  const key = { stream: 'BIG', incarnation: leaf.stream('BIG').incarnation };
  await eventually(() => assert.deepEqual(hub.storedSeqs(key), range(1, 100)), { timeoutMs: 15_000 });
  assert.deepEqual(hub.violations, []);
  assert.equal(hub.connections.length, 1, 'one connection throughout');
  await eventually(() => assert.equal(leaf.leaf.link.status().streams[0]?.backlogMsgs, 0));
});

test('purged and deleted messages before sync become gap frames with the exact ranges', async (t) => {
  const { hub, leaf } = await setUp(t, { hub: { mode: 'closing' } });
  await leaf.jsm.streams.add({ name: 'P', subjects: ['p.>'] });
  await publish(leaf, 'p.x', 12);
  await leaf.jsm.streams.purge('P', { seq: 6 }); // removes 1…5
  await leaf.jsm.streams.deleteMessage('P', 8);
  await leaf.jsm.streams.deleteMessage('P', 12); // the tail
  hub.mode = 'normal';
  const key = { stream: 'P', incarnation: leaf.stream('P').incarnation };
  await eventually(() => assert.equal(hub.cursors.get(keyId(key)), 12));
  assert.deepEqual(
    hub.gaps.map((gap) => [gap.from, gap.to, gap.reason]),
    [
      [1, 5, 'limits'],
      [8, 8, 'deleted'],
      [12, 12, 'deleted'],
    ],
  );
  assert.deepEqual(hub.storedSeqs(key), [6, 7, 9, 10, 11]);
  assert.deepEqual(hub.violations, []);
  const status = leaf.leaf.link.status().streams.find((entry) => entry.stream === 'P')!;
  assert.equal(status.gapsSent, 3);
  assert.equal(status.gapMsgs, 7);
  assert.equal(status.backlogMsgs, 0);
});

test('a stream opted in or out by a config update is offered or dropped', async (t) => {
  const { hub, leaf } = await setUp(t);
  await leaf.jsm.streams.add({ name: 'LATER', subjects: ['later.>'], metadata: { 'canopy.sync': 'false' } });
  await publish(leaf, 'later.x', 3);
  await eventually(() => assert.equal(leaf.leaf.link.status().state, 'up'));
  assert.equal(hub.framesOf('offer').length, 0);
  await leaf.jsm.streams.update('LATER', { subjects: ['later.>'], metadata: {} });
  const key = { stream: 'LATER', incarnation: leaf.stream('LATER').incarnation };
  await eventually(() => assert.deepEqual(hub.storedSeqs(key), [1, 2, 3]));
  await leaf.jsm.streams.update('LATER', { subjects: ['later.>'], metadata: { 'canopy.sync': 'false' } });
  await eventually(() => assert.deepEqual(leaf.leaf.link.status().streams, []));
  await publish(leaf, 'later.x', 2, 4);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(hub.storedSeqs(key), [1, 2, 3]);
});

test('a hub refusing the token gets a long backoff, not a reconnect storm', async (t) => {
  // Method: a refusal ('auth') sets the attempt count to its ceiling, so the next dial waits a
  // full-jitter delay in [0, 30 s]. The jitter is seeded here: the seed is picked so that the
  // first delay is over 5 s, then the test counts dials for 2 s.
  let seed = 1;
  const delayOf = (candidate: number): number =>
    backoffDelayMs({ attempt: LINK_BACKOFF_ATTEMPTS_MAX, baseMs: LINK_BACKOFF_BASE_MS, maxMs: LINK_BACKOFF_MAX_MS, prng: new SeededPrng(candidate) });
  while (delayOf(seed) < 5000) seed++;
  const { hub, leaf } = await setUp(t, {
    hub: { token: 'the-right-one' },
    tuning: { prng: new SeededPrng(seed), backoffBaseMs: LINK_BACKOFF_BASE_MS, backoffMaxMs: LINK_BACKOFF_MAX_MS },
  });
  await eventually(() => assert.equal(leaf.leaf.link.status().state, 'backoff'));
  const status = leaf.leaf.link.status();
  assert.equal(status.attempt, LINK_BACKOFF_ATTEMPTS_MAX);
  assert.ok(status.retryInMs !== undefined && status.retryInMs > 3000, `retry in ${status.retryInMs} ms`);
  assert.equal(status.closes['hub error auth'], 1);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  assert.equal(hub.connections.length, 1, 'one dial in 2 s');
  assert.equal(leaf.leaf.link.status().dials, 1);
  const refusal = leaf.log.records.find((record) => record.msg === 'link refused by the hub');
  assert.equal(refusal?.level, 'warn');
  assert.equal(refusal?.fields['code'], 'auth');
});

test('a silent hub is dropped after two heartbeat intervals (handshake, then after welcome)', async (t) => {
  // Heartbeat 200 ms: the leaf ticks every 50 ms, so it closes 400 to ~450 ms after
  // the last thing it heard (wide bounds: the machine is shared).
  const { hub, leaf } = await setUp(t, { hub: { mode: 'silent' }, link: { heartbeatMs: 200 }, tuning: { backoffBaseMs: 5000, backoffMaxMs: 5000 } });
  await eventually(() => assert.ok(hub.connections[0]?.closedAtMs !== undefined, 'the hub closed the connection'));
  const silent = hub.connections[0]!;
  const lifetime = silent.closedAtMs! - silent.openedAtMs;
  assert.ok(lifetime >= 380 && lifetime < 3000, `closed after ${lifetime} ms`);
  assert.equal(silent.closeReason, 'handshake timeout');
  assert.equal(leaf.leaf.link.status().closes['handshake timeout'], 1);
  await leaf.close();

  const quiet = await setUp(t, { hub: { mode: 'silent-after-welcome' }, link: { heartbeatMs: 200 }, tuning: { backoffBaseMs: 5000, backoffMaxMs: 5000 } });
  await eventually(() => assert.ok(quiet.hub.connections[0]?.closedAtMs !== undefined, 'the hub closed the connection'));
  const connection = quiet.hub.connections[0]!;
  const upFor = connection.closedAtMs! - connection.openedAtMs;
  assert.ok(upFor >= 380 && upFor < 3000, `closed after ${upFor} ms`);
  assert.equal(connection.closeReason, 'heartbeat timeout');
  assert.ok(connection.frames.some((frame) => frame.t === 'ping'), 'the leaf pinged after one quiet interval');
  await eventually(() => assert.ok(quiet.leaf.log.records.some((record) => record.msg === 'link down' && record.fields['reason'] === 'heartbeat timeout')));
});
