/**
 * core/link-host over a real JetStream (LMDB), for downstream sync: the hub's view of a
 * downstream stream as one leaf sees it (only the messages addressed to it, without its token;
 * 'filtered' gaps only where every message is stored and meant for others, a cautious reason
 * where something was removed), the durable watermark (nothing newer than the last flush is
 * seen, a stream is absent until its first flush), and the leaf's sink (a 'filtered' gap moves
 * the cursor durably without a gap record; the local copy is created with "canopy.sync": "false"
 * and a local stream that syncs up is refused).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { JetStream } from '../../../core/jetstream/jetstream.ts';
import { DurableSeqs } from '../../../core/link-host/durable-seqs.ts';
import { JetStreamStreams, LinkGapReason } from '../../../core/link-host/jetstream-streams.ts';
import { GAP_REASON_FILTERED, messageBytes, type StreamKey } from '../../../core/link/index.ts';
import { silentLogger } from '../../../core/util/logger.ts';
import { DOWNSTREAM_METADATA_KEY, downstreamStreamsOf } from '../../../hub/ingest/downstream.ts';
import { LeafSink } from '../../../leaf/link/leaf-sink.ts';
import { startTestBroker, type TestBroker } from '../../helpers/broker.ts';
import { eventually } from '../../helpers/eventually.ts';

describe('the downstream view, watermark and sink over a real JetStream', () => {
  /** The broker, a nats.js client on it, and its JetStream object. */
  const world = {} as { broker: TestBroker; nc: NatsConnection; jsm: JetStreamManager; jetstream: JetStream };
  const keyOf = (name: string): StreamKey => ({ stream: name, incarnation: world.jetstream.streams.get(name)!.incarnation });

  before(async () => {
    world.broker = await startTestBroker();
    world.nc = await connect({ servers: world.broker.url });
    world.jsm = await jetstreamManager(world.nc);
    world.jetstream = world.broker.broker.jetstream!;
    await world.jsm.streams.add({ name: 'CMDS', subjects: ['cmds', 'gw1.>', 'gw2.>'], metadata: { [DOWNSTREAM_METADATA_KEY]: 'true' } });
    await world.jsm.streams.add({ name: 'PLAIN', subjects: ['plain.>'] });
    // seq: 1 gw1, 2 gw2, 3 gw2, 4 cmds, 5 gw1, 6 gw1, 7 gw2
    const js = jetstream(world.nc);
    for (const subject of ['gw1.cmd.a', 'gw2.cmd.b', 'gw2.cmd.c', 'cmds', 'gw1.cmd.d', 'gw1.cfg.e', 'gw2.cmd.f']) await js.publish(subject, subject);
  });
  after(async () => {
    await world.nc.close();
    await world.broker.close();
  });

  test('list and state: only the streams marked downstream', () => {
    const durable = new DurableSeqs({ streams: world.jetstream.streams, onDurable: () => undefined });
    const view = downstreamStreamsOf({ jetstream: world.jetstream, leaf: 'gw1', durable, log: silentLogger });
    assert.deepEqual(view.list(), [keyOf('CMDS')]);
    assert.equal(view.state(keyOf('PLAIN')), undefined);
  });

  test('read, gapReason and pending of one leaf share (no watermark)', async () => {
    const view = new JetStreamStreams({ jetstream: world.jetstream, log: silentLogger, isSynced: (stream) => stream.name === 'CMDS', subjectToken: 'gw1' });
    const key = keyOf('CMDS');
    assert.deepEqual(view.state(key), { firstSeq: 1, lastSeq: 7 }, 'the whole stream: the others are holes');
    const first = view.read(key, 1, 1_000_000, 100);
    assert.deepEqual(first.map((m) => [m.seq, m.subject]), [[1, 'cmd.a']], 'stops at the first hole');
    assert.equal(messageBytes(first[0]!), 'cmd.a'.length + 'gw1.cmd.a'.length, 'credit counts what crosses: the stripped subject');
    assert.deepEqual(view.read(key, 2, 1_000_000, 100).map((m) => [m.seq, m.subject]), [[5, 'cmd.d'], [6, 'cfg.e']]);
    assert.deepEqual(view.read(key, 7, 1_000_000, 100), []);
    assert.equal(view.gapReason(key, 2, 4), GAP_REASON_FILTERED, 'stored, for others');
    assert.equal(view.gapReason(key, 7, 7), GAP_REASON_FILTERED);
    assert.equal(view.pending(key, 1).msgs, 2, 'gw1 has 5 and 6 after 1');
    assert.equal(view.pending(key, 6).msgs, 0, 'nothing more for gw1');
    // A removed message: the view cannot tell whose it was, so the range is a possible loss.
    await world.jsm.streams.deleteMessage('CMDS', 3);
    assert.equal(view.gapReason(key, 2, 4), LinkGapReason.deleted);
    assert.equal(view.gapReason(key, 4, 4), GAP_REASON_FILTERED);
  });

  test('the durable watermark: a stream is absent until its first flush, then ends at what is on disk', async () => {
    const moved: string[] = [];
    const durable = new DurableSeqs({ streams: world.jetstream.streams, onDurable: (stream) => moved.push(stream) });
    const view = downstreamStreamsOf({ jetstream: world.jetstream, leaf: 'gw1', durable, log: silentLogger });
    const key = keyOf('CMDS');
    assert.equal(view.state(key), undefined, 'no watermark yet: the sender waits');
    await eventually(() => assert.deepEqual(view.state(key), { firstSeq: 1, lastSeq: 7 }));
    assert.deepEqual(moved, ['CMDS']);
    // A message written and not yet flushed is not seen; it is once the store flushed.
    const stream = world.jetstream.streams.get('CMDS')!;
    const outcome = stream.storeMessage('gw1.cmd.late', undefined, Buffer.from('late'));
    assert.ok(!('errCode' in outcome) && outcome.seq === 8);
    durable.changed(stream);
    assert.equal(view.state(key)!.lastSeq, 7, 'not on disk yet');
    assert.deepEqual(view.read(key, 7, 1_000_000, 100), []);
    await eventually(() => assert.equal(view.state(key)!.lastSeq, 8));
    assert.deepEqual(view.read(key, 7, 1_000_000, 100).map((m) => m.subject), ['cmd.late']);
  });

  test('the durable watermark bounds the first sequence too: removals of what is not on disk yet are not told', async () => {
    await world.jsm.streams.add({ name: 'TRIM', subjects: ['trim.>'] });
    await jetstream(world.nc).publish('trim.a', 'a');
    const durable = new DurableSeqs({ streams: world.jetstream.streams, onDurable: () => undefined });
    const view = new JetStreamStreams({ jetstream: world.jetstream, log: silentLogger, isSynced: (stream) => stream.name === 'TRIM', durable });
    const key = keyOf('TRIM');
    await eventually(() => assert.deepEqual(view.state(key), { firstSeq: 1, lastSeq: 1 }));
    // In one turn: three more messages and a purge of everything; none of it is on disk yet.
    const stream = world.jetstream.streams.get('TRIM')!;
    for (const subject of ['trim.b', 'trim.c', 'trim.d']) stream.storeMessage(subject, undefined, Buffer.from(subject));
    stream.store.purge({});
    durable.changed(stream);
    // The store says first 5 (empty, last 4); the sender must not gap past its watermark (1).
    assert.deepEqual(view.state(key), { firstSeq: 2, lastSeq: 1 });
    await eventually(() => assert.deepEqual(view.state(key), { firstSeq: 5, lastSeq: 4 }));
  });

  test('the leaf sink: a created copy is not synced back up; a filtered gap moves the cursor with no gap record; a synced local stream is refused', async () => {
    const sink = new LeafSink({ jetstream: world.jetstream, clock: { nowMs: () => 1 }, hubName: () => 'hub-1', log: silentLogger });
    const key: StreamKey = { stream: 'DOWN', incarnation: 'ab'.repeat(16) };
    await sink.prepare('DOWN');
    assert.equal(world.jetstream.streams.get('DOWN')?.config.metadata?.['canopy.sync'], 'false');
    assert.equal(sink.refuse(key), undefined);
    sink.append(key, { kind: 'msgs', msgs: [{ seq: 1, subject: 'cmd.x', headers: undefined, data: Buffer.from('x'), timestampNs: 5n }] });
    sink.append(key, { kind: 'gap', gap: { from: 2, to: 9, reason: GAP_REASON_FILTERED, atMs: 1 } });
    const turn = sink.takeTurn()!;
    await world.jetstream.storage.flushed();
    sink.durable(turn);
    assert.equal(sink.cursor(key), 9);
    const state = sink.views().cursors.get(`hub/DOWN/${key.incarnation}`)!;
    assert.deepEqual([state.gapCount, state.gapMsgs, state.gaps.length], [0, 0, 0]);
    const stored = await world.jsm.streams.getMessage('DOWN', { seq: 1 });
    assert.equal(stored?.subject, 'cmd.x');
    assert.equal(stored?.header.get('Canopy-Origin-Hub'), 'hub-1');
    assert.equal(stored?.header.get('Canopy-Origin-Seq'), '1');
    // PLAIN syncs up (no "canopy.sync": "false"): a downstream stream of that name is refused.
    assert.match(sink.refuse({ stream: 'PLAIN', incarnation: 'cd'.repeat(16) }) ?? '', /synced up to the hub/);
  });
});
