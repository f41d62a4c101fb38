/**
 * core/link/receiver.ts, one scenario per README rule on the receiver's side: the offer is
 * answered with the durable cursor, batches are appended strictly in sequence, duplicates are
 * ignored, cursors wait for durability, gaps are recorded and counted, a new incarnation is a
 * new sequence space with an alert. Method: a LinkReceiver over a sink whose writes stay staged
 * until the test flushes them; the test plays the sender with frame objects.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from '../../../core/util/assert.ts';
import type { BatchFrame, GapFrame, OfferFrame, ReceiverOutput, StreamKey } from '../../../core/link/index.ts';
import { GAP_REASON_FILTERED, LINK_BATCH_MSGS_MAX, LinkReceiver } from '../../../core/link/index.ts';
import { ManualClock, MemorySink, message } from './helpers.ts';

const A: StreamKey = { stream: 'a', incarnation: 'inc-1' };

function setup() {
  const sink = new MemorySink();
  const clock = new ManualClock();
  const receiver = new LinkReceiver({ sink, clock });
  receiver.connected();
  return { sink, clock, receiver };
}

function offer(key: StreamKey, firstSeq = 1, lastSeq = 100): OfferFrame {
  return { t: 'offer', ...key, firstSeq, lastSeq };
}

let batchIds = 0;
function batch(key: StreamKey, from: number, to: number): BatchFrame {
  const msgs = [];
  for (let seq = from; seq <= to; seq++) msgs.push(message(seq));
  return { t: 'batch', ...key, id: ++batchIds, msgs };
}

function gap(key: StreamKey, from: number, to: number, reason = 'limits'): GapFrame {
  return { t: 'gap', ...key, from, to, reason };
}

/** Flushes the sink and reports durability, as the host does after a commit. */
function flush(sink: MemorySink, receiver: LinkReceiver): void {
  for (const { key, seq } of sink.flush()) receiver.durable(key, seq);
}

function cursors(output: ReceiverOutput): string[] {
  return output.frames.map((frame) => (frame.t === 'cursor' ? `cursor ${frame.stream} ${frame.seq}` : frame.t === 'window' ? `window ${frame.windowBytes}` : `error ${frame.code}`));
}

test('offer: answered with the durable cursor, 0 when the receiver has nothing', () => {
  const { sink, receiver } = setup();
  sink.durableCursors.set(MemorySink.id({ stream: 'b', incarnation: 'x' }), 42);
  receiver.receive(offer(A));
  receiver.receive(offer({ stream: 'b', incarnation: 'x' }));
  assert.deepEqual(cursors(receiver.poll()), ['cursor a 0', 'cursor b 42']);
});

test('batch: appended at once, acknowledged only when durable, naming the last batch covered', () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.poll();
  const first = batch(A, 1, 3);
  const second = batch(A, 4, 5);
  receiver.receive(first);
  receiver.receive(second);
  assert.equal(sink.staged.length, 2);
  assert.deepEqual(receiver.poll().frames, [], 'nothing is acknowledged before it is durable');
  flush(sink, receiver);
  const output = receiver.poll();
  assert.deepEqual(output.frames, [{ t: 'cursor', stream: 'a', incarnation: 'inc-1', seq: 5, batch: second.id }]);
  assert.deepEqual(sink.contents(A), ['1', '2', '3', '4', '5']);
});

test('batch: messages at or below the cursor, durable or staged, are ignored; a pure resend is acknowledged at once', () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 4));
  flush(sink, receiver);
  receiver.receive(batch(A, 5, 6)); // staged, not durable
  receiver.poll();
  receiver.receive(batch(A, 3, 8)); // 3..4 durable, 5..6 staged, 7..8 new
  assert.deepEqual(sink.staged.map(({ write }) => (write.kind === 'msgs' ? write.msgs.map((m) => m.seq) : [])), [[5, 6], [7, 8]]);
  receiver.receive(batch(A, 2, 4));
  assert.deepEqual(cursors(receiver.poll()), ['cursor a 4'], 'the resend of durable data gets its cursor now, or the sender would wait forever');
  flush(sink, receiver);
  assert.deepEqual(cursors(receiver.poll()), ['cursor a 8']);
  assert.equal(receiver.stats.msgsDuplicate, 4 + 3);
  assert.deepEqual(sink.contents(A), ['1', '2', '3', '4', '5', '6', '7', '8']);
});

test('batch: the first new message must be cursor + 1, else a protocol error (data skipped without a gap)', () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 2));
  receiver.receive(batch(A, 4, 5));
  const output = receiver.poll();
  assert.equal(output.error?.code, 'protocol');
  assert.match(output.error!.text, /starts at 4, cursor is 2/);
  assert.equal(sink.staged.length, 1, 'nothing of the bad batch is written');
  receiver.receive(batch(A, 3, 3));
  assert.equal(sink.staged.length, 1, 'nothing more is accepted on a failing connection');
  assert.equal(receiver.stats.protocolErrors, 1);
});

test('batch: malformed batches are protocol errors (empty, not consecutive, too many, stream not offered)', () => {
  const tooMany = batch(A, 1, LINK_BATCH_MSGS_MAX + 1);
  const holes: BatchFrame = { ...batch(A, 1, 3), msgs: [message(1), message(3)] };
  const empty: BatchFrame = { ...batch(A, 1, 1), msgs: [] };
  for (const [name, frame, isOffered] of [
    ['empty', empty, true],
    ['holes', holes, true],
    ['too many', tooMany, true],
    ['not offered', batch(A, 1, 1), false],
  ] as const) {
    const { receiver } = setup();
    if (isOffered) receiver.receive(offer(A));
    receiver.poll();
    receiver.receive(frame);
    assert.equal(receiver.poll().error?.code, 'protocol', name);
  }
});

test('gap: recorded durably with reason and time, counted, logged, and the cursor moves to its end', () => {
  const { sink, clock, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 2));
  clock.now = 5000;
  receiver.receive(gap(A, 3, 9, 'limits'));
  receiver.receive(batch(A, 10, 10));
  const output = receiver.poll();
  assert.deepEqual(output.events, [{ kind: 'gap', stream: 'a', incarnation: 'inc-1', from: 3, to: 9, reason: 'limits' }]);
  const gapWrite = sink.staged[1]!.write;
  assert.deepEqual(gapWrite, { kind: 'gap', gap: { from: 3, to: 9, reason: 'limits', atMs: 5000 } });
  flush(sink, receiver);
  assert.deepEqual(cursors(receiver.poll()), ['cursor a 10']);
  assert.deepEqual(sink.contents(A), ['1', '2', 'gap 3..9 limits', '10']);
  assert.equal(receiver.stats.gaps, 1);
  assert.equal(receiver.stats.gapMsgs, 7);
  assert.equal(receiver.progress()[0]!.gapMsgs, 7);
});

test("gap 'filtered': the cursor moves durably, but no gap is counted, logged or recorded as a loss", () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 1));
  receiver.receive(gap(A, 2, 9, GAP_REASON_FILTERED));
  receiver.receive(batch(A, 10, 10));
  const output = receiver.poll();
  assert.deepEqual(output.events, [], 'no gap event: nothing was lost');
  flush(sink, receiver);
  assert.deepEqual(cursors(receiver.poll()), ['cursor a 10']);
  assert.deepEqual(sink.contents(A), ['1', 'gap 2..9 filtered', '10'], 'the sink still gets the write that moves the cursor');
  assert.deepEqual([receiver.stats.gaps, receiver.stats.gapMsgs, receiver.stats.filteredMsgs], [0, 0, 8]);
  assert.equal(receiver.progress()[0]!.gaps, 0);
});

test('gap: only the part the receiver does not have is recorded (a resend overlapping staged data)', () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 5));
  receiver.receive(gap(A, 3, 8));
  receiver.receive(gap(A, 2, 4));
  assert.deepEqual(
    sink.staged.map(({ write }) => (write.kind === 'gap' ? `gap ${write.gap.from}..${write.gap.to}` : 'msgs')),
    ['msgs', 'gap 6..8'],
  );
});

test('gap: one starting past cursor + 1, or not a range, is a protocol error', () => {
  for (const frame of [gap(A, 5, 9), gap(A, 3, 2), gap(A, 0, 2)]) {
    const { receiver } = setup();
    receiver.receive(offer(A));
    receiver.receive(batch(A, 1, 2));
    receiver.poll();
    receiver.receive(frame);
    assert.equal(receiver.poll().error?.code, 'protocol', `${frame.from}..${frame.to}`);
  }
});

test('incarnation: a new incarnation of a known stream starts at cursor 0, with a warning event and the alert counter', () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 3));
  flush(sink, receiver);
  receiver.poll();
  const again: StreamKey = { stream: 'a', incarnation: 'inc-2' };
  receiver.receive(offer(again));
  const output = receiver.poll();
  assert.deepEqual(cursors(output), ['cursor a 0']);
  assert.deepEqual(output.events, [{ kind: 'incarnation', stream: 'a', previous: 'inc-1', incarnation: 'inc-2' }]);
  assert.equal(receiver.stats.incarnationChanges, 1);
  receiver.receive(batch(again, 1, 1));
  assert.equal(receiver.poll().error, undefined, 'seq 1 again is new data of the new incarnation, not a duplicate');
});

test('incarnation: known from the sink after a restart', () => {
  const { sink } = setup();
  sink.incarnations.set('a', 'inc-0');
  const receiver = new LinkReceiver({ sink, clock: new ManualClock() });
  receiver.connected();
  receiver.receive(offer(A));
  assert.equal(receiver.poll().events[0]?.kind, 'incarnation');
});

test('reconnect: staged writes are acknowledged on the next connection once durable; the offer answer stays durable-only', () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 4));
  flush(sink, receiver);
  receiver.receive(batch(A, 5, 9)); // staged when the connection drops
  receiver.poll();
  receiver.disconnected();
  receiver.connected();
  receiver.receive(offer(A));
  assert.deepEqual(cursors(receiver.poll()), ['cursor a 4'], 'README "Offer": the durable cursor, not the staged one');
  receiver.receive(batch(A, 5, 10)); // the sender resends from 5
  flush(sink, receiver);
  assert.deepEqual(cursors(receiver.poll()), ['cursor a 10']);
  assert.deepEqual(sink.contents(A), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
});

test('crash: staged writes are lost, a new receiver starts from the durable cursor', () => {
  const { sink, receiver } = setup();
  receiver.receive(offer(A));
  receiver.receive(batch(A, 1, 4));
  flush(sink, receiver);
  receiver.receive(batch(A, 5, 9));
  sink.crash();
  const restarted = new LinkReceiver({ sink, clock: new ManualClock() });
  restarted.connected();
  restarted.receive(offer(A));
  assert.deepEqual(cursors(restarted.poll()), ['cursor a 4']);
  restarted.receive(batch(A, 5, 6));
  flush(sink, restarted);
  assert.deepEqual(cursors(restarted.poll()), ['cursor a 6']);
});

test('window: setWindow sends a window frame on the current connection', () => {
  const { receiver } = setup();
  receiver.setWindow(65_536);
  assert.deepEqual(cursors(receiver.poll()), ['window 65536']);
  receiver.disconnected();
  receiver.setWindow(4096);
  assert.deepEqual(receiver.poll().frames, []);
  assert.throws(() => receiver.setWindow(1), AssertionError);
});

test('refusal: the sink refuses a stream with error code stream; its batches are then protocol errors', () => {
  const { sink, receiver } = setup();
  sink.refused.add('a');
  receiver.receive(offer(A));
  assert.deepEqual(receiver.poll().frames, [{ t: 'error', code: 'stream', text: 'not accepted here', stream: 'a' }]);
  receiver.receive(batch(A, 1, 1));
  assert.equal(receiver.poll().error?.code, 'protocol');
});

test('memory: streams with nothing staged are forgotten at disconnect (the sink keeps their cursor)', () => {
  const { sink, receiver } = setup();
  const other: StreamKey = { stream: 'b', incarnation: 'x' };
  receiver.receive(offer(A));
  receiver.receive(offer(other));
  receiver.receive(batch(A, 1, 2));
  receiver.receive(batch(other, 1, 2));
  for (const { key, seq } of sink.flush()) if (key.stream === 'a') receiver.durable(key, seq);
  receiver.disconnected();
  assert.deepEqual(
    receiver.progress().map((entry) => `${entry.stream} ${entry.durableSeq}/${entry.stagedSeq}`),
    ['b 0/2'],
    'b still waits for its durable() call',
  );
  receiver.durable(other, 2);
  assert.deepEqual(receiver.progress(), []);
});

test('misuse: frames while disconnected, durable() past what was staged', () => {
  const sink = new MemorySink();
  const receiver = new LinkReceiver({ sink, clock: new ManualClock() });
  assert.throws(() => receiver.receive(offer(A)), AssertionError);
  receiver.connected();
  receiver.receive(offer(A));
  assert.throws(() => receiver.durable(A, 1), AssertionError);
});
