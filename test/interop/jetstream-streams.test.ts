/**
 * Streams through the official @nats-io/jetstream client: the stream API, the
 * publish path (PubAck, dedup, expected-* headers, rollups, limits), message get
 * and delete, direct get, purge, and errors with nats-server's codes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';

/** Asserts that `promise` rejects with a JetStream API error carrying `errCode`. */
async function rejectsWithCode(promise: Promise<unknown>, errCode: number, description?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof JetStreamApiError, `expected a JetStreamApiError, got ${String(err)}`);
    assert.equal(err.code, errCode);
    if (description !== undefined) assert.match(err.message, description);
    return true;
  });
}

describe('JetStream streams with nats.js', () => {
  let broker: TestBroker;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let js: JetStreamClient;

  before(async () => {
    broker = await startTestBroker();
    nc = await connect({ servers: broker.url });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
  });
  after(async () => {
    await nc.close();
    await broker.close();
  });

  test('account info answers, with api counters', async () => {
    const info = await jsm.getAccountInfo();
    assert.equal(info.limits.max_streams, -1);
    assert.ok(info.api.total >= 1);
  });

  test('create fills in nats-server defaults; identical create is idempotent; different config is 10058', async () => {
    const info = await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    assert.equal(info.config.retention, 'limits');
    assert.equal(info.config.storage, 'file');
    assert.equal(info.config.max_msgs, -1);
    assert.equal(info.config.max_bytes, -1);
    assert.equal(info.config.max_msg_size, -1);
    assert.equal(info.config.discard, 'old');
    assert.equal(info.config.num_replicas, 1);
    assert.equal(info.config.duplicate_window, 120_000_000_000);
    assert.equal(info.state.messages, 0);
    assert.equal(info.state.first_seq, 0);
    const again = await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    assert.equal(again.config.name, 'ORDERS');
    await rejectsWithCode(jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'], max_msgs: 5 }), 10058);
  });

  test('bad configs are refused with the codes clients know', async () => {
    await rejectsWithCode(jsm.streams.add({ name: 'OVERLAP', subjects: ['orders.new'] }), 10065);
    await rejectsWithCode(jsm.streams.add({ name: 'R3', subjects: ['r3'], num_replicas: 3 }), 10074);
    await rejectsWithCode(jsm.streams.add({ name: 'SELF', subjects: ['a.*', 'a.b'] }), 10052, /overlaps/);
    await rejectsWithCode(jsm.streams.add({ name: 'ROLL', subjects: ['roll'], deny_purge: true, allow_rollup_hdrs: true }), 10052);
    await rejectsWithCode(jsm.streams.info('NOPE'), 10059);
  });

  test('publish gets a PubAck with the stream and sequence, after the write', async () => {
    const first = await js.publish('orders.new', 'one');
    const second = await js.publish('orders.new', 'two');
    assert.equal(first.stream, 'ORDERS');
    assert.equal(first.seq, 1);
    assert.equal(second.seq, 2);
    const info = await jsm.streams.info('ORDERS');
    assert.equal(info.state.messages, 2);
    assert.equal(info.state.first_seq, 1);
    assert.equal(info.state.last_seq, 2);
    assert.equal(info.state.num_subjects, 1);
  });

  test('Nats-Msg-Id dedup: the duplicate is acked with the original sequence and not stored', async () => {
    await jsm.streams.add({ name: 'DEDUP', subjects: ['dedup'] });
    const a = await js.publish('dedup', 'x', { msgID: 'm-1' });
    const b = await js.publish('dedup', 'x', { msgID: 'm-1' });
    assert.equal(a.duplicate, false);
    assert.equal(b.duplicate, true);
    assert.equal(b.seq, a.seq);
    assert.equal((await jsm.streams.info('DEDUP')).state.messages, 1);
  });

  test('expected-* headers: last sequence, last subject sequence, stream, last msg id', async () => {
    await jsm.streams.add({ name: 'EXP', subjects: ['exp.>'] });
    await js.publish('exp.a', '1', { expect: { lastSequence: 0 } });
    await rejectsWithCode(js.publish('exp.a', '2', { expect: { lastSequence: 5 } }), 10071, /wrong last sequence: 1/);
    await js.publish('exp.b', '2', { expect: { lastSubjectSequence: 0 } });
    await rejectsWithCode(js.publish('exp.b', '3', { expect: { lastSubjectSequence: 0 } }), 10071);
    await js.publish('exp.b', '3', { expect: { lastSubjectSequence: 2 } });
    await rejectsWithCode(js.publish('exp.a', 'x', { expect: { streamName: 'OTHER' } }), 10060);
    await js.publish('exp.c', 'y', { msgID: 'id-9' });
    await rejectsWithCode(js.publish('exp.c', 'z', { expect: { lastMsgID: 'id-8' } }), 10070);
    await js.publish('exp.c', 'z', { expect: { lastMsgID: 'id-9' } });
  });

  test('limits: max_msgs discard old drops the oldest; discard new refuses with 10077', async () => {
    await jsm.streams.add({ name: 'LIM', subjects: ['lim'], max_msgs: 3 });
    for (let i = 1; i <= 5; i++) await js.publish('lim', `${i}`);
    let state = (await jsm.streams.info('LIM')).state;
    assert.equal(state.messages, 3);
    assert.equal(state.first_seq, 3);
    assert.equal(state.last_seq, 5);
    await jsm.streams.add({ name: 'LIMNEW', subjects: ['limnew'], max_msgs: 2, discard: 'new' as never });
    await js.publish('limnew', '1');
    await js.publish('limnew', '2');
    await rejectsWithCode(js.publish('limnew', '3'), 10077, /maximum messages exceeded/);
    state = (await jsm.streams.info('LIMNEW')).state;
    assert.equal(state.messages, 2);
  });

  test('max_msgs_per_subject keeps the newest per subject; max_msg_size refuses with 10054', async () => {
    await jsm.streams.add({ name: 'PER', subjects: ['per.*'], max_msgs_per_subject: 2, max_msg_size: 16 });
    for (let i = 0; i < 4; i++) await js.publish('per.a', `a${i}`);
    await js.publish('per.b', 'b');
    const info = await jsm.streams.info('PER', { subjects_filter: '>' });
    assert.deepEqual(info.state.subjects, { 'per.a': 2, 'per.b': 1 });
    await rejectsWithCode(js.publish('per.a', 'x'.repeat(17)), 10054);
  });

  test('rollup sub replaces the subject history; rollup without permission is refused', async () => {
    await jsm.streams.add({ name: 'ROLLUP', subjects: ['ru.*'], allow_rollup_hdrs: true });
    await js.publish('ru.a', '1');
    await js.publish('ru.a', '2');
    await js.publish('ru.b', '3');
    const h = headers();
    h.set('Nats-Rollup', 'sub');
    await js.publish('ru.a', 'snapshot', { headers: h });
    const info = await jsm.streams.info('ROLLUP', { subjects_filter: '>' });
    assert.deepEqual(info.state.subjects, { 'ru.a': 1, 'ru.b': 1 });
    await rejectsWithCode(js.publish('orders.x', 'r', { headers: h }), 10111, /rollup not permitted/);
  });

  test('get, delete and purge messages', async () => {
    await jsm.streams.add({ name: 'MSGS', subjects: ['msgs.*'] });
    for (let i = 1; i <= 6; i++) await js.publish(`msgs.${i % 2 === 0 ? 'even' : 'odd'}`, `${i}`);
    const third = await jsm.streams.getMessage('MSGS', { seq: 3 });
    assert.equal(third?.subject, 'msgs.odd');
    assert.equal(third?.string(), '3');
    const lastEven = await jsm.streams.getMessage('MSGS', { last_by_subj: 'msgs.even' });
    assert.equal(lastEven?.seq, 6);
    assert.equal(await jsm.streams.getMessage('MSGS', { seq: 99 }), null);
    assert.equal(await jsm.streams.deleteMessage('MSGS', 2), true);
    await rejectsWithCode(jsm.streams.deleteMessage('MSGS', 2), 10043);
    const info = await jsm.streams.info('MSGS', { deleted_details: true });
    assert.equal(info.state.num_deleted, 1);
    assert.deepEqual(info.state.deleted, [2]);
    const purged = await jsm.streams.purge('MSGS', { filter: 'msgs.odd', keep: 1 });
    assert.equal(purged.purged, 2);
    const all = await jsm.streams.purge('MSGS');
    assert.equal(all.purged, 3);
    const after = (await jsm.streams.info('MSGS')).state;
    assert.equal(after.messages, 0);
    assert.equal(after.first_seq, 7);
    assert.equal(after.last_seq, 6);
  });

  test('deny_delete / deny_purge refuse with nats-server errors', async () => {
    await jsm.streams.add({ name: 'DENY', subjects: ['deny'], deny_delete: true, deny_purge: true });
    await js.publish('deny', 'x');
    await rejectsWithCode(jsm.streams.deleteMessage('DENY', 1), 10057);
    await rejectsWithCode(jsm.streams.purge('DENY'), 10110);
  });

  test('direct get with allow_direct, by sequence and by subject', async () => {
    await jsm.streams.add({ name: 'DIRECT', subjects: ['direct.>'], allow_direct: true });
    await js.publish('direct.a', 'first');
    await js.publish('direct.a', 'second');
    const bySeq = await jsm.direct.getMessage('DIRECT', { seq: 1 });
    assert.equal(bySeq?.string(), 'first');
    assert.equal(bySeq?.subject, 'direct.a');
    const last = await jsm.direct.getMessage('DIRECT', { last_by_subj: 'direct.a' });
    assert.equal(last?.seq, 2);
    assert.equal(await jsm.direct.getMessage('DIRECT', { seq: 50 }), null);
    const next = await jsm.direct.getMessage('DIRECT', { next_by_subj: 'direct.a', seq: 2 });
    assert.equal(next?.string(), 'second');
  });

  test('update changes limits and keeps immutable fields; names and list page and filter', async () => {
    const updated = await jsm.streams.update('LIM', { max_msgs: 1, subjects: ['lim'] });
    assert.equal(updated.config.max_msgs, 1);
    assert.equal(updated.state.messages, 1);
    await rejectsWithCode(jsm.streams.update('LIM', { subjects: ['lim'], ...({ storage: 'memory' } as object) }), 10069);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) names.push(name);
    assert.ok(names.includes('ORDERS') && names.includes('LIM'));
    assert.equal(await jsm.streams.find('orders.new'), 'ORDERS');
    const listed: string[] = [];
    for await (const info of jsm.streams.list('dedup')) listed.push(info.config.name);
    assert.deepEqual(listed, ['DEDUP']);
  });

  test('a publish no stream captures gets no-responders; delete removes the stream', async () => {
    await assert.rejects(js.publish('nothing.here', 'x'), /jetstream is not enabled/ /* nats.js's reading of the 503, as with nats-server */);
    assert.equal(await jsm.streams.delete('DENY'), true);
    await rejectsWithCode(jsm.streams.info('DENY'), 10059);
  });
});
