/**
 * Upstream sync into the hub (core/link/README.md "Stream sync rules", "Where synced data
 * lands"), driven by a raw link client and checked through the official nats.js JetStream
 * client: what lands where, with which headers, acknowledged when, exactly once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeHeaders } from '../../../core/protocol/headers.ts';
import { eventually } from '../../helpers/eventually.ts';
import { describeHub, messages, newIncarnation } from './link-test-client.ts';

describe('leaf streams synced into the hub', () => {
  const fixture = describeHub();
  const leaf = fixture.leaf;

  test('offer → cursor 0 and the stream is created; a batch is acknowledged once durable; messages carry the prefix and origin headers', async () => {
    const client = await leaf('gw1');
    const key = { stream: 'SENSORS', incarnation: newIncarnation() };
    client.offer(key, 1, 3);
    const answer = await client.expect('cursor');
    assert.deepEqual({ ...answer }, { t: 'cursor', ...key, seq: 0, batch: undefined });

    const info = await fixture.jsm().streams.info('SENSORS');
    assert.equal(info.config.storage, 'file');
    assert.deepEqual(info.config.subjects, ['SENSORS']);

    const original = encodeHeaders([['App', 'x'], ['Trace', 't-1']]);
    const id = client.batch(key, [...messages(1, 2, 'sensors.temp'), ...messages(3, 3, 'sensors.hum', original)]);
    const cursor = await client.expect('cursor');
    assert.equal(cursor.seq, 3);
    assert.equal(cursor.batch, id);
    // The cursor is sent only after the flush, so the messages are there (and durable) by now.
    const stored = await fixture.jsm().streams.info('SENSORS');
    assert.equal(stored.state.messages, 3);

    const first = await fixture.jsm().streams.getMessage('SENSORS', { seq: 1 });
    assert.ok(first !== null);
    assert.equal(first.subject, 'gw1.sensors.temp');
    assert.equal(new TextDecoder().decode(first.data), 'm1');
    assert.equal(first.header.get('Canopy-Origin-Leaf'), 'gw1');
    assert.equal(first.header.get('Canopy-Origin-Stream'), 'SENSORS');
    assert.equal(first.header.get('Canopy-Origin-Incarnation'), key.incarnation);
    assert.equal(first.header.get('Canopy-Origin-Seq'), '1');
    assert.equal(first.header.get('Canopy-Origin-Time'), String(messages(1, 1)[0]!.timestampNs));
    const third = await fixture.jsm().streams.getMessage('SENSORS', { seq: 3 });
    assert.ok(third !== null);
    assert.equal(third.subject, 'gw1.sensors.hum');
    assert.equal(third.header.get('App'), 'x');
    assert.equal(third.header.get('Trace'), 't-1');
    assert.equal(third.header.get('Canopy-Origin-Seq'), '3');
  });

  test('a resend overlapping what the hub has is ignored (no duplicates); a pure resend is answered at once', async () => {
    const client = await leaf('gw2');
    const key = { stream: 'RESEND', incarnation: newIncarnation() };
    client.offer(key, 1, 10);
    assert.equal((await client.expect('cursor')).seq, 0);
    client.batch(key, messages(1, 5));
    await client.cursorAt(key, 5);
    // The leaf did not hear the cursor (say) and resends 1…5, then 3…8 (overlapping).
    client.batch(key, messages(1, 5));
    assert.equal((await client.expect('cursor')).seq, 5);
    client.batch(key, messages(3, 8));
    await client.cursorAt(key, 8);
    const info = await fixture.jsm().streams.info('RESEND');
    assert.equal(info.state.messages, 8);
    for (let seq = 1; seq <= 8; seq++) {
      const message = await fixture.jsm().streams.getMessage('RESEND', { seq });
      assert.equal(message?.header.get('Canopy-Origin-Seq'), String(seq));
    }
    // A batch that skips data without a gap is a protocol error.
    client.batch(key, messages(10, 10));
    const error = await client.expect('error');
    assert.equal(error.code, 'protocol');
    await client.waitClosed();
  });

  test('a gap is recorded durably (range, reason, time), counted, and moves the cursor', async () => {
    const client = await leaf('gw3');
    const key = { stream: 'GAPS', incarnation: newIncarnation() };
    client.offer(key, 1, 9);
    await client.expect('cursor');
    client.batch(key, messages(1, 2));
    await client.cursorAt(key, 2);
    client.gap(key, 3, 6, 'limits');
    assert.equal((await client.expect('cursor')).seq, 6);
    client.batch(key, messages(7, 9));
    await client.cursorAt(key, 9);
    const info = await fixture.jsm().streams.info('GAPS');
    assert.equal(info.state.messages, 5);
    const seventh = await fixture.jsm().streams.getMessage('GAPS', { seq: 3 });
    assert.equal(seventh?.header.get('Canopy-Origin-Seq'), '7');

    const states = fixture.hub().hub.broker.jetstream!.storage.loadLinkStates('GAPS');
    const state = states.get(`gw3/GAPS/${key.incarnation}`) as { cursor: number; gaps: { from: number; to: number; reason: string; atMs: number }[]; gapCount: number; gapMsgs: number };
    assert.equal(state.cursor, 9);
    assert.equal(state.gapCount, 1);
    assert.equal(state.gapMsgs, 4);
    assert.deepEqual(state.gaps.map(({ from, to, reason }) => ({ from, to, reason })), [{ from: 3, to: 6, reason: 'limits' }]);
    assert.ok(state.gaps[0]!.atMs > Date.now() - 60_000);
    const status = fixture.hub().hub.acceptor!.status().find((leafStatus) => leafStatus.leaf === 'gw3')!;
    assert.equal(status.stats.gaps, 1);
    assert.equal(status.stats.gapMsgs, 4);
    const stream = status.streams.find((entry) => entry.stream === 'GAPS')!;
    assert.equal(stream.cursor, 9);
    assert.equal(stream.gaps, 1);
  });

  test('a new incarnation starts at cursor 0, is counted, and its messages say which incarnation they come from', async () => {
    const client = await leaf('gw4');
    const first = { stream: 'REBORN', incarnation: newIncarnation() };
    client.offer(first, 1, 3);
    await client.expect('cursor');
    client.batch(first, messages(1, 3));
    await client.cursorAt(first, 3);
    const second = { stream: 'REBORN', incarnation: newIncarnation() };
    client.offer(second, 1, 2);
    assert.equal((await client.expect('cursor')).seq, 0);
    client.batch(second, messages(1, 2));
    await client.cursorAt(second, 2);
    const fourth = await fixture.jsm().streams.getMessage('REBORN', { seq: 4 });
    assert.equal(fourth?.header.get('Canopy-Origin-Incarnation'), second.incarnation);
    assert.equal(fourth?.header.get('Canopy-Origin-Seq'), '1');
    const status = fixture.hub().hub.acceptor!.status().find((leafStatus) => leafStatus.leaf === 'gw4')!;
    assert.equal(status.stats.incarnationChanges, 1);
    const current = status.streams.find((entry) => entry.incarnation === second.incarnation)!;
    assert.equal(current.isCurrent, true);
    assert.equal(current.incarnationChanges, 1);
    assert.equal(current.cursor, 2);
    const old = status.streams.find((entry) => entry.incarnation === first.incarnation)!;
    assert.equal(old.isCurrent, false);
    assert.equal(old.cursor, 3);
  });

  test('a leaf writes only into its own namespace: subjects, origin headers and cursors are its own', async () => {
    const a = await leaf('alpha');
    const b = await leaf('beta');
    const key = { stream: 'SHARED', incarnation: newIncarnation() };
    a.offer(key, 1, 2);
    await a.expect('cursor');
    // alpha publishes on "beta.…" subjects and forges origin headers.
    const forged = encodeHeaders([['Canopy-Origin-Leaf', 'beta'], ['canopy-origin-seq', '999'], ['App', 'kept']]);
    a.batch(key, messages(1, 2, 'beta.cmd', forged));
    await a.cursorAt(key, 2);
    // beta offering the same stream and incarnation starts from its own cursor, 0.
    b.offer(key, 1, 1);
    assert.equal((await b.expect('cursor')).seq, 0);
    b.batch(key, messages(1, 1, 'cmd'));
    await b.cursorAt(key, 1);

    const first = await fixture.jsm().streams.getMessage('SHARED', { seq: 1 });
    assert.equal(first?.subject, 'alpha.beta.cmd');
    assert.deepEqual(first?.header.values('Canopy-Origin-Leaf'), ['alpha']);
    assert.equal(first?.header.get('Canopy-Origin-Seq'), '1');
    assert.equal(first?.header.get('App'), 'kept');
    const third = await fixture.jsm().streams.getMessage('SHARED', { seq: 3 });
    assert.equal(third?.subject, 'beta.cmd');
    assert.equal(third?.header.get('Canopy-Origin-Leaf'), 'beta');
    const states = fixture.hub().hub.broker.jetstream!.storage.loadLinkStates('SHARED');
    assert.equal((states.get(`alpha/SHARED/${key.incarnation}`) as { cursor: number }).cursor, 2);
    assert.equal((states.get(`beta/SHARED/${key.incarnation}`) as { cursor: number }).cursor, 1);
  });

  test('JetStream control headers of leaf messages are kept under Canopy-Origin-: the hub stream does not dedup, check or roll up', async () => {
    const a = await leaf('ctl-a');
    const b = await leaf('ctl-b');
    const key = { stream: 'CONTROL', incarnation: newIncarnation() };
    const sameId = encodeHeaders([['Nats-Msg-Id', 'reading-1'], ['Nats-Expected-Last-Sequence', '41'], ['Nats-Rollup', 'all']]);
    for (const client of [a, b]) {
      client.offer(key, 1, 2);
      await client.expect('cursor');
      client.batch(key, messages(1, 2, 'r', sameId));
      await client.cursorAt(key, 2);
    }
    const info = await fixture.jsm().streams.info('CONTROL');
    assert.equal(info.state.messages, 4);
    const message = await fixture.jsm().streams.getMessage('CONTROL', { seq: 4 });
    assert.equal(message?.header.get('Nats-Msg-Id'), '');
    assert.equal(message?.header.get('Canopy-Origin-Nats-Msg-Id'), 'reading-1');
    assert.equal(message?.header.get('Canopy-Origin-Nats-Expected-Last-Sequence'), '41');
    assert.equal(message?.header.get('Canopy-Origin-Nats-Rollup'), 'all');
  });

  test('a message the target stream refuses: the stored prefix is acknowledged, then error stream; the connection stays up; the next connection retries', async () => {
    await fixture.jsm().streams.add({ name: 'SMALL', subjects: ['small.>'], max_msg_size: 400 });
    const client = await leaf('gw5');
    const key = { stream: 'SMALL', incarnation: newIncarnation() };
    const other = { stream: 'OTHER5', incarnation: newIncarnation() };
    client.offer(key, 1, 4);
    await client.expect('cursor');
    client.offer(other, 1, 1);
    await client.expect('cursor');
    const msgs = messages(1, 4, 'big');
    const big = { ...msgs[2]!, data: Buffer.alloc(1000, 1) };
    client.batch(key, [msgs[0]!, msgs[1]!, big, msgs[3]!]);
    const cursor = await client.expect('cursor');
    assert.equal(cursor.seq, 2, 'the cursor covers only what was stored');
    const error = await client.expect('error');
    assert.equal(error.code, 'stream');
    assert.equal(error.stream, 'SMALL');
    assert.match(error.text, /refused message 3/);
    // Pipelined batches of the refused stream store nothing; other streams keep syncing.
    client.batch(key, messages(5, 5));
    client.batch(other, messages(1, 1));
    await client.cursorAt(other, 1);
    assert.equal((await fixture.jsm().streams.info('SMALL')).state.messages, 2);
    const status = fixture.hub().hub.acceptor!.status().find((leafStatus) => leafStatus.leaf === 'gw5')!;
    assert.equal(status.connected, true);
    assert.equal(status.stats.refusals, 1);
    assert.match(status.streams.find((entry) => entry.stream === 'SMALL')!.refusal ?? '', /refused message 3/);
    // A re-offer on the same connection is refused again.
    client.offer(key, 1, 5);
    assert.equal((await client.expect('error')).stream, 'SMALL');

    // The operator raises the limit; the leaf's next connection retries from the durable cursor.
    await fixture.jsm().streams.update('SMALL', { subjects: ['small.>'], max_msg_size: 4000 });
    client.close();
    const again = await leaf('gw5');
    again.offer(key, 1, 5);
    assert.equal((await again.expect('cursor')).seq, 2);
    again.batch(key, [big, msgs[3]!, ...messages(5, 5)]);
    await again.cursorAt(key, 5);
    assert.equal((await fixture.jsm().streams.info('SMALL')).state.messages, 5);
    const third = await fixture.jsm().streams.getMessage('SMALL', { seq: 3 });
    assert.equal(third?.header.get('Canopy-Origin-Seq'), '3');
    assert.equal(third?.data.length, 1000);
  });

  test('stream names the hub cannot have are refused per stream', async () => {
    const client = await leaf('gw6');
    client.offer({ stream: 'a.b', incarnation: newIncarnation() }, 1, 1);
    const error = await client.expect('error');
    assert.equal(error.code, 'stream');
    assert.equal(error.stream, 'a.b');
    // A stream whose default subject overlaps an existing stream's cannot be created: refused with the reason.
    await fixture.jsm().streams.add({ name: 'WIDE', subjects: ['taken'] });
    client.offer({ stream: 'taken', incarnation: newIncarnation() }, 1, 1);
    const overlap = await client.expect('error');
    assert.equal(overlap.stream, 'taken');
    assert.match(overlap.text, /cannot create hub stream taken: .*overlap/);
    assert.equal(client.isClosed, false);
  });

  test("a leaf's new connection replaces its older one; the new one carries on from the cursor", async () => {
    const older = await leaf('gw7');
    const key = { stream: 'REPLACED', incarnation: newIncarnation() };
    older.offer(key, 1, 4);
    await older.expect('cursor');
    older.batch(key, messages(1, 2));
    await older.cursorAt(key, 2);
    const newer = await leaf('gw7');
    await older.waitClosed();
    newer.offer(key, 1, 4);
    assert.equal((await newer.expect('cursor')).seq, 2);
    newer.batch(key, messages(3, 4));
    await newer.cursorAt(key, 4);
    const status = fixture.hub().hub.acceptor!.status().find((leafStatus) => leafStatus.leaf === 'gw7')!;
    assert.equal(status.connected, true);
    assert.equal(status.reconnects, 1);
    assert.equal(status.streams.find((entry) => entry.stream === 'REPLACED')!.cursor, 4);
  });

  test('the target stream deleted under a syncing leaf: error reset and close; the next connection starts over at 0 in a new stream', async () => {
    const client = await leaf('gw8');
    const key = { stream: 'DOOMED', incarnation: newIncarnation() };
    client.offer(key, 1, 4);
    await client.expect('cursor');
    client.batch(key, messages(1, 2));
    await client.cursorAt(key, 2);
    await fixture.jsm().streams.delete('DOOMED');
    client.batch(key, messages(3, 4));
    const reset = await client.expect('error');
    assert.equal(reset.code, 'reset');
    assert.match(reset.text, /DOOMED was deleted/);
    await client.waitClosed();
    const again = await leaf('gw8');
    again.offer(key, 1, 4);
    assert.equal((await again.expect('cursor')).seq, 0);
    again.batch(key, messages(1, 4));
    await again.cursorAt(key, 4);
    await eventually(async () => assert.equal((await fixture.jsm().streams.info('DOOMED')).state.messages, 4));
  });

  test('the target stream deleted while the leaf was away: its next connection starts at 0 without a reset', async () => {
    const client = await leaf('gw10');
    const key = { stream: 'AWAY', incarnation: newIncarnation() };
    client.offer(key, 1, 3);
    await client.expect('cursor');
    client.batch(key, messages(1, 3));
    await client.cursorAt(key, 3);
    client.close();
    await client.waitClosed();
    await eventually(() => assert.equal(fixture.hub().hub.acceptor!.status().find((entry) => entry.leaf === 'gw10')?.connected, false));
    await fixture.jsm().streams.delete('AWAY');
    const again = await leaf('gw10');
    again.offer(key, 1, 3);
    assert.equal((await again.expect('cursor')).seq, 0);
    again.batch(key, messages(1, 3));
    await again.cursorAt(key, 3);
    assert.equal((await fixture.jsm().streams.info('AWAY')).state.messages, 3);
  });

  test('a cursor frame from a leaf is a protocol error (the hub offers nothing downstream)', async () => {
    const client = await leaf('gw9');
    client.send({ t: 'cursor', stream: 'X', incarnation: 'ab', seq: 1, batch: undefined });
    const error = await client.expect('error');
    assert.equal(error.code, 'protocol');
    await client.waitClosed();
  });
});
