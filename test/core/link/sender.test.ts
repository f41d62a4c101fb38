/**
 * core/link/sender.ts, one scenario per README rule on the sender's side: offer on connect,
 * resume from the cursor, pipelining inside the window, gaps only for deleted data, nothing
 * assumed delivered after a disconnect, refusals, incarnations, and the monitoring it exposes.
 * Method: a LinkSender over in-memory streams; the test plays the receiver with frame objects.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from '../../../core/util/assert.ts';
import type { BatchFrame, CursorFrame, SenderFrame, SenderOutput, StreamKey } from '../../../core/link/index.ts';
import { GAP_REASON_FILTERED, LINK_FILTERED_TAIL_MS, LinkSender } from '../../../core/link/index.ts';
import { ManualClock, MemoryStreams } from './helpers.ts';

function setup(options: { window?: number; batchMsgsMax?: number; batchBytesMax?: number; inflightBatchesMax?: number } = {}) {
  const streams = new MemoryStreams();
  const clock = new ManualClock();
  const sender = new LinkSender({
    streams,
    clock,
    ...(options.batchMsgsMax === undefined ? {} : { batchMsgsMax: options.batchMsgsMax }),
    ...(options.batchBytesMax === undefined ? {} : { batchBytesMax: options.batchBytesMax }),
    ...(options.inflightBatchesMax === undefined ? {} : { inflightBatchesMax: options.inflightBatchesMax }),
  });
  return { streams, clock, sender, window: options.window ?? 1_000_000 };
}

function cursor(key: StreamKey, seq: number, batch?: number): CursorFrame {
  return { t: 'cursor', stream: key.stream, incarnation: key.incarnation, seq, batch };
}

/** Frames as short strings: "offer a 1..3", "batch a 1..2", "gap a 1..4 limits". */
function show(frames: readonly SenderFrame[]): string[] {
  return frames.map((frame) => {
    if (frame.t === 'offer') return `offer ${frame.stream} ${frame.firstSeq}..${frame.lastSeq}`;
    if (frame.t === 'gap') return `gap ${frame.stream} ${frame.from}..${frame.to} ${frame.reason}`;
    return `batch ${frame.stream} ${frame.msgs[0]!.seq}..${frame.msgs[frame.msgs.length - 1]!.seq}`;
  });
}

function batches(output: SenderOutput): BatchFrame[] {
  return output.frames.filter((frame): frame is BatchFrame => frame.t === 'batch');
}

test('connect: every stream is offered with its first and last sequence, nothing else before the answer', () => {
  const { streams, sender } = setup();
  streams.create('a', 'inc-a');
  streams.create('b', 'inc-b');
  streams.publish('a', 3);
  sender.connected(10_000);
  assert.deepEqual(show(sender.poll().frames), ['offer a 1..3', 'offer b 1..0']);
  assert.deepEqual(sender.poll().frames, [], 'no batch before the cursor answers the offer');
});

test('offer answer: the sender sends from cursor + 1', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 5);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 3));
  const output = sender.poll();
  assert.deepEqual(show(output.frames), ['batch a 4..5']);
  assert.deepEqual(output.acked, [{ stream: 'a', incarnation: 'inc-a', seq: 3 }]);
  assert.deepEqual(sender.acked('a'), { stream: 'a', incarnation: 'inc-a', seq: 3 });
});

test('window: batches are pipelined up to the window; a cursor releases credit and more goes out', () => {
  const { streams, sender } = setup({ batchMsgsMax: 2 });
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 10, 10); // 10 bytes each
  sender.connected(45);
  sender.poll();
  sender.receive(cursor(a, 0));
  const first = sender.poll();
  assert.deepEqual(show(first.frames), ['batch a 1..2', 'batch a 3..4'], 'only 40 of 45 bytes fit; the 5th message would cross the window');
  assert.equal(sender.credit?.unackedBytes, 40);
  sender.receive(cursor(a, 2, batches(first)[0]!.id));
  assert.deepEqual(show(sender.poll().frames), ['batch a 5..6']);
  assert.equal(sender.credit?.unackedBytes, 40);
  sender.receive(cursor(a, 6));
  assert.deepEqual(show(sender.poll().frames), ['batch a 7..8', 'batch a 9..10']);
});

test('window: the window is shared by all streams of the connection, served round-robin', () => {
  const { streams, sender } = setup({ batchMsgsMax: 1 });
  const a = streams.create('a', 'inc-a');
  const b = streams.create('b', 'inc-b');
  streams.publish('a', 5, 10);
  streams.publish('b', 5, 10);
  sender.connected(40);
  sender.poll();
  sender.receive(cursor(a, 0));
  sender.receive(cursor(b, 0));
  const sent = show(sender.poll().frames);
  assert.equal(sent.length, 4);
  assert.equal(sent.filter((line) => line.startsWith('batch a')).length, 2);
  assert.equal(sent.filter((line) => line.startsWith('batch b')).length, 2);
});

test('window: one message larger than the window goes alone, only when nothing is unacknowledged', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 1, 10);
  streams.publish('a', 1, 500);
  streams.publish('a', 1, 10);
  sender.connected(100);
  sender.poll();
  sender.receive(cursor(a, 0));
  assert.deepEqual(show(sender.poll().frames), ['batch a 1..1'], 'the big one waits: 10 bytes are unacknowledged');
  sender.receive(cursor(a, 1));
  assert.deepEqual(show(sender.poll().frames), ['batch a 2..2'], 'alone, past the window');
  assert.deepEqual(show(sender.poll().frames), []);
  sender.receive(cursor(a, 2));
  assert.deepEqual(show(sender.poll().frames), ['batch a 3..3']);
});

test('window: a window frame changes the limit; an out-of-range window is a protocol error', () => {
  const { streams, sender } = setup({ batchMsgsMax: 1 });
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 300, 10);
  sender.connected(1024);
  sender.poll();
  sender.receive(cursor(a, 0));
  assert.equal(batches(sender.poll()).length, 102);
  sender.receive({ t: 'window', windowBytes: 2048 });
  assert.equal(batches(sender.poll()).length, 102);
  sender.receive({ t: 'window', windowBytes: 10 });
  assert.equal(sender.poll().error?.code, 'protocol');
});

test('batch limits: at most batchMsgsMax messages and batchBytesMax bytes per batch', () => {
  const { streams, sender } = setup({ batchMsgsMax: 3, batchBytesMax: 25 });
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 4, 10);
  streams.publish('a', 1, 40);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 0));
  assert.deepEqual(show(sender.poll().frames), ['batch a 1..2', 'batch a 3..4', 'batch a 5..5'], 'a message over the batch limit is a batch alone');
});

test('in-flight batches are bounded whatever the window says', () => {
  const { streams, sender } = setup({ batchMsgsMax: 1, inflightBatchesMax: 3 });
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 10);
  sender.connected(1_000_000);
  sender.poll();
  sender.receive(cursor(a, 0));
  assert.equal(batches(sender.poll()).length, 3);
  sender.receive(cursor(a, 1));
  assert.equal(batches(sender.poll()).length, 1);
});

test('gap: data deleted before the receiver had it is announced before the next batch, with its reason', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 10);
  streams.deleteUpTo('a', 6, 'limits');
  sender.connected(10_000);
  assert.deepEqual(show(sender.poll().frames), ['offer a 7..10']);
  sender.receive(cursor(a, 2));
  assert.deepEqual(show(sender.poll().frames), ['gap a 3..6 limits', 'batch a 7..10']);
});

test('gap: never for data the sender still has', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 10);
  streams.deleteUpTo('a', 6);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 6));
  assert.deepEqual(show(sender.poll().frames), ['batch a 7..10'], 'the receiver has 1..6: no gap');
});

test('gap: a purge of everything, a message deleted in the middle, a deleted tail', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 6);
  streams.deleteOne('a', 3);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 0));
  assert.deepEqual(show(sender.poll().frames), ['batch a 1..2', 'gap a 3..3 deleted', 'batch a 4..6']);
  sender.receive(cursor(a, 6));
  streams.publish('a', 4);
  streams.deleteUpTo('a', 10, 'purged');
  sender.streamChanged('a');
  assert.deepEqual(show(sender.poll().frames), ['gap a 7..10 purged']);
});

test("gap 'filtered' (a view holding only some messages for this receiver): holes go before the next batch, uncounted; a tail of them at most once per LINK_FILTERED_TAIL_MS", () => {
  const { streams, clock, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 6);
  streams.deleteOne('a', 2);
  streams.deleteOne('a', 3);
  streams.deleteOne('a', 6);
  streams.streams.get('a')!.reason = GAP_REASON_FILTERED; // what a filtered view answers for others' messages
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 0));
  // The hole before 4 goes with the batch; so does the tail (6): the first one at once.
  assert.deepEqual(show(sender.poll().frames), ['batch a 1..1', 'gap a 2..3 filtered', 'batch a 4..5', 'gap a 6..6 filtered']);
  sender.receive(cursor(a, 6));
  streams.publish('a', 2);
  streams.deleteOne('a', 7);
  streams.deleteOne('a', 8);
  streams.streams.get('a')!.reason = GAP_REASON_FILTERED;
  sender.streamChanged('a');
  clock.now += LINK_FILTERED_TAIL_MS - 1;
  assert.deepEqual(show(sender.poll().frames), [], 'the next tail of others messages waits');
  clock.now += 1;
  assert.deepEqual(show(sender.poll().frames), ['gap a 7..8 filtered'], 'then goes, so the receiver stays close behind');
  const progress = sender.progress()[0]!;
  assert.deepEqual([progress.gapsSent, progress.gapMsgs, progress.filteredMsgs, sender.stats.gapsSent], [0, 0, 5, 0]);
});

test('disconnect: nothing in flight is assumed delivered; the next connection offers again and resends from the cursor', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 5);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 0));
  assert.deepEqual(show(sender.poll().frames), ['batch a 1..5']);
  sender.receive(cursor(a, 2));
  sender.poll();
  sender.disconnected();
  assert.equal(sender.credit, undefined);
  sender.connected(10_000);
  assert.deepEqual(show(sender.poll().frames), ['offer a 1..5']);
  sender.receive(cursor(a, 2));
  assert.deepEqual(show(sender.poll().frames), ['batch a 3..5'], '3..5 were in flight: sent again');
  assert.deepEqual(sender.acked('a')?.seq, 2, 'the acknowledged cursor survives the disconnect');
});

test('cursor past what was sent: the receiver already had it (staged earlier), so the sender skips ahead', () => {
  const { streams, sender } = setup({ batchMsgsMax: 2 });
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 10);
  sender.connected(40);
  sender.poll();
  sender.receive(cursor(a, 2));
  assert.deepEqual(show(sender.poll().frames), ['batch a 3..4', 'batch a 5..6']);
  sender.receive(cursor(a, 8));
  assert.equal(sender.credit?.unackedBytes, 0, 'everything in flight is covered');
  assert.deepEqual(show(sender.poll().frames), ['batch a 9..10']);
});

test('protocol errors: a cursor going backwards, for a stream never offered, or not a sequence', () => {
  for (const bad of [
    (key: StreamKey) => cursor(key, 1),
    () => cursor({ stream: 'zz', incarnation: 'x' }, 1),
    (key: StreamKey) => cursor(key, -1),
  ]) {
    const { streams, sender } = setup();
    const a = streams.create('a', 'inc-a');
    streams.publish('a', 5);
    sender.connected(10_000);
    sender.poll();
    sender.receive(cursor(a, 3));
    sender.poll();
    sender.receive(bad(a));
    const output = sender.poll();
    assert.equal(output.error?.code, 'protocol');
    assert.deepEqual(output.frames, []);
    sender.receive(cursor(a, 5));
    assert.deepEqual(sender.poll().frames, [], 'nothing more once the connection is failing');
  }
});

test('refusal: error code stream stops that stream for this connection and frees its credit', () => {
  const { streams, sender } = setup({ batchMsgsMax: 1 });
  const a = streams.create('a', 'inc-a');
  const b = streams.create('b', 'inc-b');
  streams.publish('a', 3, 10);
  streams.publish('b', 3, 10);
  sender.connected(20);
  sender.poll();
  sender.receive(cursor(a, 0));
  assert.deepEqual(show(sender.poll().frames), ['batch a 1..1', 'batch a 2..2']);
  sender.receive(cursor(b, 0));
  sender.receive({ t: 'error', code: 'stream', text: 'not here', stream: 'a' });
  assert.deepEqual(show(sender.poll().frames), ['batch b 1..1', 'batch b 2..2']);
  const progress = sender.progress().find((entry) => entry.stream === 'a')!;
  assert.equal(progress.state, 'refused');
  assert.equal(progress.refusal, 'not here');
  sender.receive({ t: 'error', code: 'auth', text: 'connection-level errors are not the sender\'s business', stream: undefined });
  assert.equal(sender.poll().error, undefined);
});

test('incarnation: a re-created stream is offered as a new sequence space; the old one only releases credit', () => {
  const { streams, sender } = setup();
  const old = streams.create('a', 'inc-1');
  streams.publish('a', 3, 10);
  sender.connected(35);
  sender.poll();
  sender.receive(cursor(old, 0));
  sender.poll();
  assert.equal(sender.credit?.unackedBytes, 30);
  const fresh = streams.create('a', 'inc-2');
  streams.publish('a', 2, 10);
  sender.streamChanged('a');
  assert.deepEqual(show(sender.poll().frames), ['offer a 1..2']);
  sender.receive(cursor(old, 3));
  assert.equal(sender.credit?.unackedBytes, 0, 'the late cursor of the old incarnation releases its bytes');
  sender.receive(cursor(fresh, 0));
  const output = sender.poll();
  assert.deepEqual(show(output.frames), ['batch a 1..2']);
  assert.equal((output.frames[0] as BatchFrame).incarnation, 'inc-2');
  assert.equal(sender.acked('a')?.incarnation, 'inc-2');
});

test('a deleted stream: nothing more is sent, its acknowledged cursor is forgotten', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 3);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 3));
  sender.poll();
  streams.remove('a');
  sender.streamChanged('a');
  streams.create('b', 'inc-b');
  sender.streamChanged('b');
  assert.deepEqual(show(sender.poll().frames), ['offer b 1..0']);
  assert.equal(sender.acked('a'), undefined);
  sender.receive(cursor(a, 3));
  assert.equal(sender.poll().error, undefined, 'a late cursor of a deleted stream is harmless');
});

test('diverged: a receiver cursor past our last sequence stops the stream and is counted', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 3);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 7));
  assert.deepEqual(sender.poll().frames, []);
  assert.equal(sender.progress()[0]!.state, 'diverged');
  assert.equal(sender.stats.divergences, 1);
});

test('a receiver that went back (restored from a backup) is followed, and counted', () => {
  const { streams, sender } = setup();
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 5);
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 5));
  sender.disconnected();
  sender.connected(10_000);
  sender.poll();
  sender.receive(cursor(a, 2));
  assert.deepEqual(show(sender.poll().frames), ['batch a 3..5']);
  assert.equal(sender.stats.cursorRegressions, 1);
});

test('monitoring: progress shows the acknowledged cursor, backlog, oldest unsynced time and last ack time', () => {
  const { streams, sender, clock } = setup({ batchMsgsMax: 2 });
  const a = streams.create('a', 'inc-a');
  streams.publish('a', 5, 10);
  let [progress] = sender.progress();
  assert.equal(progress!.state, 'disconnected');
  assert.equal(progress!.ackedSeq, undefined);
  assert.equal(progress!.backlogMsgs, 5);
  sender.connected(25);
  sender.poll();
  clock.now = 2000;
  sender.receive(cursor(a, 1));
  sender.poll();
  [progress] = sender.progress();
  assert.equal(progress!.state, 'syncing');
  assert.equal(progress!.ackedSeq, 1);
  assert.equal(progress!.sentSeq, 3);
  assert.equal(progress!.inflightBytes, 20);
  assert.equal(progress!.backlogMsgs, 4);
  assert.equal(progress!.backlogBytes, 40);
  assert.equal(progress!.oldestUnsyncedNs, 2_000_000n);
  assert.equal(progress!.lastAckMs, 2000);
});

test('misuse: frames while disconnected, connecting twice', () => {
  const { sender } = setup();
  assert.throws(() => sender.receive({ t: 'window', windowBytes: 4096 }), AssertionError);
  sender.connected(4096);
  assert.throws(() => sender.connected(4096), AssertionError);
});
