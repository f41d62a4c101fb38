/**
 * LeafStreams (the link sender's view of the leaf's JetStream) over a real broker with LMDB and
 * memory streams, written through nats.js; and a damaged LMDB record (a flipped byte on disk)
 * crossing the link as a 'corrupt' gap.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { createStream } from '../../../core/jetstream/api/stream-api.ts';
import type { JetStream } from '../../../core/jetstream/jetstream.ts';
import { messageBytes, type StreamKey } from '../../../core/link/index.ts';
import { LeafStreams, SYNC_METADATA_KEY } from '../../../leaf/link/leaf-streams.ts';
import { startTestBroker, type TestBroker } from '../../helpers/broker.ts';
import { eventually } from '../../helpers/eventually.ts';
import { FakeHub, keyId } from './fake-hub.ts';
import { recordingLogger } from '../../helpers/recording-logger.ts';
import { startTestLeaf } from './helpers.ts';

describe('LeafStreams over a real JetStream', () => {
  let broker: TestBroker;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let js: JetStreamClient;
  let jetstreamOf: JetStream;
  let streams: LeafStreams;
  const keyOf = (name: string): StreamKey => ({ stream: name, incarnation: jetstreamOf.streams.get(name)!.incarnation });

  before(async () => {
    broker = await startTestBroker();
    nc = await connect({ servers: broker.url });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
    jetstreamOf = broker.broker.jetstream!;
    streams = new LeafStreams({ jetstream: jetstreamOf, log: recordingLogger() });
    await jsm.streams.add({ name: 'F', subjects: ['f.>'] });
    await jsm.streams.add({ name: 'M', subjects: ['m.>'], storage: StorageType.Memory });
    await jsm.streams.add({ name: 'OFF', subjects: ['off.>'], metadata: { [SYNC_METADATA_KEY]: 'false' } });
    await jsm.streams.add({ name: 'ON', subjects: ['on.>'], metadata: { [SYNC_METADATA_KEY]: 'true' } });
    for (let i = 1; i <= 10; i++) await js.publish(`f.s${i % 3}`, 'x'.repeat(i * 10));
    for (let i = 1; i <= 3; i++) await js.publish('m.a', `m${i}`);
    await js.publish('off.a', 'local only');
  });
  after(async () => {
    await nc.close();
    await broker.close();
  });

  test('list: every stream, file and memory, except those opted out with "canopy.sync": "false"', () => {
    assert.deepEqual(
      [...streams.list()].sort((a, b) => a.stream.localeCompare(b.stream)),
      [keyOf('F'), keyOf('M'), keyOf('ON')],
    );
  });

  test('state: only for the current incarnation of a synced stream; empty streams report first = last + 1', () => {
    assert.deepEqual(streams.state(keyOf('F')), { firstSeq: 1, lastSeq: 10 });
    assert.equal(streams.state({ stream: 'F', incarnation: 'ab'.repeat(16) }), undefined);
    assert.equal(streams.state({ stream: 'NOPE', incarnation: 'ab'.repeat(16) }), undefined);
    assert.equal(streams.state(keyOf('OFF')), undefined);
    assert.deepEqual(streams.state(keyOf('ON')), { firstSeq: 1, lastSeq: 0 });
  });

  test('read: from fromSeq in order, within maxMsgs and maxBytes, at least one message, as stored', () => {
    const key = keyOf('F');
    const all = streams.read(key, 1, 1_000_000, 100);
    assert.deepEqual(
      all.map((message) => message.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    const stored = jetstreamOf.streams.get('F')!.store.load(4)!;
    assert.deepEqual(all[3], stored);
    assert.equal(typeof all[3]!.timestampNs, 'bigint');
    assert.deepEqual(
      streams.read(key, 4, 1_000_000, 3).map((message) => message.seq),
      [4, 5, 6],
    );
    // Bytes as the link counts them: subject + headers + data. 4 and 5 fit in 4's + 5's bytes, 6 does not.
    const budget = messageBytes(all[3]!) + messageBytes(all[4]!);
    assert.deepEqual(
      streams.read(key, 4, budget, 100).map((message) => message.seq),
      [4, 5],
    );
    assert.deepEqual(
      streams.read(key, 4, 1, 100).map((message) => message.seq),
      [4],
      'one message even when it alone is over maxBytes',
    );
    assert.deepEqual(streams.read(key, 11, 1_000_000, 100), []);
    assert.deepEqual(streams.read({ stream: 'F', incarnation: 'ab'.repeat(16) }, 1, 1_000_000, 100), []);
  });

  test('read stops at a hole; gapReason: limits below the first sequence, deleted for holes and a removed tail', async () => {
    await jsm.streams.add({ name: 'H', subjects: ['h.>'] });
    for (let i = 1; i <= 10; i++) await js.publish('h.a', `h${i}`);
    await jsm.streams.purge('H', { seq: 3 }); // 1, 2 gone
    await jsm.streams.deleteMessage('H', 5);
    await jsm.streams.deleteMessage('H', 6);
    await jsm.streams.deleteMessage('H', 10);
    const key = keyOf('H');
    assert.deepEqual(streams.state(key), { firstSeq: 3, lastSeq: 10 });
    assert.deepEqual(
      streams.read(key, 1, 1_000_000, 100).map((message) => message.seq),
      [3, 4],
    );
    assert.deepEqual(
      streams.read(key, 5, 1_000_000, 100).map((message) => message.seq),
      [7, 8, 9],
      'the first message after a hole, then consecutive ones',
    );
    assert.deepEqual(streams.read(key, 10, 1_000_000, 100), []);
    assert.equal(streams.gapReason(key, 1, 2), 'limits');
    assert.equal(streams.gapReason(key, 5, 6), 'deleted');
    assert.equal(streams.gapReason(key, 10, 10), 'deleted');
    // pending with holes is an upper bound (sequences, at most the messages): no scan per status call.
    const after7 = streams.pending(key, 7);
    assert.equal(after7.msgs, 3, '8, 9 and the removed tail 10 (until its gap is acknowledged)');
    assert.equal(after7.oldestNs, jetstreamOf.streams.get('H')!.store.load(8)!.timestampNs);
    assert.equal(streams.pending(key, 4).msgs, 5, '6 sequences after 4, at most the 5 messages');
    assert.equal(streams.pending(key, 10).msgs, 0);
  });

  test('pending: counts, bytes and the oldest time from the store counters', () => {
    const key = keyOf('F');
    const state = jetstreamOf.streams.get('F')!.store.state();
    assert.deepEqual(streams.pending(key, 0), { msgs: 10, bytes: state.bytes, oldestNs: state.firstTimestampNs });
    const after6 = streams.pending(key, 6);
    assert.equal(after6.msgs, 4);
    assert.ok(after6.bytes > 0 && after6.bytes < state.bytes);
    assert.equal(after6.oldestNs, jetstreamOf.streams.get('F')!.store.load(7)!.timestampNs);
    assert.deepEqual(streams.pending(key, 10), { msgs: 0, bytes: 0, oldestNs: undefined });
    assert.deepEqual(streams.pending(keyOf('ON'), 0), { msgs: 0, bytes: 0, oldestNs: undefined });
  });

  test('an emptied stream reports first = last + 1, and its removed messages are a limits gap', async () => {
    await jsm.streams.purge('M');
    const key = keyOf('M');
    assert.deepEqual(streams.state(key), { firstSeq: 4, lastSeq: 3 });
    assert.equal(streams.gapReason(key, 1, 3), 'limits');
    assert.deepEqual(streams.pending(key, 0), { msgs: 0, bytes: 0, oldestNs: undefined });
  });

  test('a stream whose name cannot cross the link (over 255 UTF-8 bytes) stays local, reported once', async () => {
    const log = recordingLogger();
    const own = new LeafStreams({ jetstream: jetstreamOf, log });
    // 100 characters, 300 UTF-8 bytes: a valid JetStream name, created the way canopy itself
    // creates streams (NATS clients send subjects as latin1 bytes, so they cannot name it).
    const name = '\u65e5'.repeat(100);
    const created = await createStream(jetstreamOf, { name, subjects: ['wide.>'] });
    assert.ok(!(created instanceof Error), String(created));
    assert.ok(!own.list().some((entry) => entry.stream === name));
    assert.ok(!own.list().some((entry) => entry.stream === name));
    assert.equal(own.state(keyOf(name)), undefined);
    assert.equal(log.records.filter((record) => record.level === 'error' && record.fields['stream'] === name).length, 1);
  });

  test('a deleted stream is gone for its old key', async () => {
    const key = keyOf('ON');
    await jsm.streams.delete('ON');
    assert.equal(streams.state(key), undefined);
    assert.deepEqual(streams.read(key, 1, 100, 100), []);
    assert.ok(!streams.list().some((entry) => entry.stream === 'ON'));
  });
});

test('a damaged record on disk crosses the link as a corrupt gap; everything else syncs', async (t) => {
  // Method: a leaf stores 10 messages (its hub closes every connection, so nothing syncs) and
  // stops; one byte of message 5's payload is flipped wherever it occurs in LMDB's data.mdb
  // (the live record and stale copies; no LMDB check notices, canopy's record CRC does); the
  // leaf restarts on that store against a hub that syncs.
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-leaf-corrupt-'));
  t.after(() => rmSync(storeDir, { recursive: true, force: true }));
  const marker = `DAMAGE-ME-${Math.random().toString(16).slice(2, 10)}`;
  const closedHub = await FakeHub.start({ mode: 'closing' });
  t.after(() => closedHub.close());
  const first = await startTestLeaf({ hubUrl: closedHub.url, storeDir });
  await first.jsm.streams.add({ name: 'D', subjects: ['d.>'] });
  for (let i = 1; i <= 10; i++) await first.js.publish('d.x', i === 5 ? `${marker} five` : `message ${i}`);
  const incarnation = first.stream('D').incarnation;
  await first.close();

  const file = join(storeDir, 'jetstream', 'data.mdb');
  const data = readFileSync(file);
  const needle = Buffer.from(marker);
  let copies = 0;
  for (let at = data.indexOf(needle); at >= 0; at = data.indexOf(needle, at + 1)) {
    data[at + 3]! ^= 0x20;
    copies++;
  }
  assert.ok(copies >= 1, 'the marker is in data.mdb');
  writeFileSync(file, data);

  const hub = await FakeHub.start();
  t.after(() => hub.close());
  const second = await startTestLeaf({ hubUrl: hub.url, storeDir });
  t.after(() => second.close());
  assert.equal(second.stream('D').incarnation, incarnation);
  const key = { stream: 'D', incarnation };
  await eventually(() => assert.equal(hub.cursors.get(keyId(key)), 10));
  assert.deepEqual(hub.storedSeqs(key), [1, 2, 3, 4, 6, 7, 8, 9, 10]);
  assert.deepEqual(
    hub.gaps.map((gap) => [gap.from, gap.to, gap.reason]),
    [[5, 5, 'corrupt']],
  );
  for (const message of hub.stored.get(keyId(key))!) assert.equal(Buffer.from(message.data).toString(), `message ${message.seq}`);
  assert.deepEqual(hub.violations, []);
  const logged = second.log.records.find((record) => record.msg?.startsWith('damaged messages cannot be synced'));
  assert.equal(logged?.level, 'error');
  assert.equal(logged?.fields['from'], 5);
  assert.equal(second.leaf.link.status().state, 'up');
});
