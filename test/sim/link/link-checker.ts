/**
 * The link simulator's safety checkers (core/link/README.md "Stream sync rules"), run as each
 * event happens (every write, every frame sent or delivered, every flush and crash), so a
 * violation is reported at the step that caused it:
 *
 * - prefix / order / exactly-once: every receiver write starts at the copy's cursor + 1; its
 *   messages are the sender's own messages for those sequences (same object), consecutive;
 * - gaps are true: a gap frame, when sent, covers only sequences the sender had deleted; a gap
 *   write covers only sequences the receiver never had (it starts at cursor + 1) and the sender
 *   deleted; streams with "keep until acknowledged" retention never see a gap;
 * - cursors are durable: every cursor frame a receiver sends is ≤ its durable cursor, and per
 *   connection a key's cursor frames never go backwards; the durable cursor never goes
 *   backwards, across crashes too;
 * - the window: when a sender sends a batch, the bytes it has unacknowledged on that connection
 *   (computed here from the frames, independently of credit.ts) are 0 or stay within the last
 *   window it heard; batches respect the message and byte limits;
 * - no protocol errors: under this fault model a correct peer never breaks the protocol, so any
 *   protocol error is a bug on one side;
 * - incarnation alerts name a real older incarnation of the same stream.
 *
 * A violation throws SafetyViolation (shared with the Raft harness).
 */
import type { BatchFrame, CursorFrame, GapFrame, LinkFrame, ReceiverEvent, ReceiverWrite, StreamKey } from '../../../core/link/index.ts';
import { messageBytes } from '../../../core/link/index.ts';
import { SafetyViolation } from '../harness/checkers.ts';
import type { SimCopy, SimSink, SimStream, SinkWatcher } from './sim-store.ts';
import { durableCursorOf, keyId } from './sim-store.ts';

function fail(message: string): never {
  throw new SafetyViolation(message);
}

/** The checker's independent accounting of one sender end of one connection. */
type SenderEnd = {
  windowBytes: number;
  /** Per key: sent batch messages not yet covered by a cursor delivered to this end, as [seq, bytes] pairs in order. */
  readonly unacked: Map<string, number[]>;
  unackedBytes: number;
};

/** A receiver end of one connection: last cursor sent per key. */
type ReceiverEnd = { readonly lastCursor: Map<string, number> };

export type BatchLimits = { readonly batchMsgsMax: number; readonly batchBytesMax: number };

export class LinkChecker implements SinkWatcher {
  /** Every stream incarnation ever created, by incarnation id. */
  readonly #streams = new Map<string, SimStream>();
  readonly #senderEnds = new Map<string, SenderEnd>();
  readonly #receiverEnds = new Map<string, ReceiverEnd>();
  readonly #limits: BatchLimits;
  checks = 0;
  gapsChecked = 0;

  constructor(limits: BatchLimits) {
    this.#limits = limits;
  }

  registerStream(stream: SimStream): void {
    if (this.#streams.has(stream.incarnation)) fail(`incarnation ${stream.incarnation} reused`);
    this.#streams.set(stream.incarnation, stream);
  }

  #stream(key: StreamKey, sender: string): SimStream {
    const stream = this.#streams.get(key.incarnation);
    if (stream === undefined || stream.name !== key.stream || stream.node !== sender) fail(`unknown stream incarnation ${key.stream}/${key.incarnation} of ${sender}`);
    return stream;
  }

  // ---------------------------------------------------------------- receiver writes

  onWrite(sink: SimSink, copy: SimCopy, write: ReceiverWrite, cursorBefore: number): void {
    this.checks++;
    const stream = this.#stream(copy.key, sink.peer);
    const where = `${sink.owner}'s copy of ${sink.peer}:${keyId(copy.key)}`;
    if (write.kind === 'msgs') {
      if (write.msgs.length === 0) fail(`${where}: empty write`);
      for (let i = 0; i < write.msgs.length; i++) {
        const message = write.msgs[i]!;
        const expected = cursorBefore + 1 + i;
        if (message.seq !== expected) fail(`${where}: write of seq ${message.seq} where ${expected} is next (duplicate, reorder or hole)`);
        if (stream.history[expected - 1] !== message) fail(`${where}: seq ${expected} is not the sender's message`);
      }
      return;
    }
    const gap = write.gap;
    this.gapsChecked++;
    if (gap.from !== cursorBefore + 1) fail(`${where}: gap ${gap.from}..${gap.to} does not start at cursor + 1 = ${cursorBefore + 1}`);
    if (gap.to < gap.from) fail(`${where}: empty gap ${gap.from}..${gap.to}`);
    if (stream.retention === 'acked') fail(`${where}: gap ${gap.from}..${gap.to} in a stream that keeps data until acknowledged`);
    for (let seq = gap.from; seq <= gap.to; seq++) {
      if (!stream.isGone(seq)) fail(`${where}: gap ${gap.from}..${gap.to} covers seq ${seq}, which the sender ${seq > stream.lastSeq ? 'never had' : 'still has'}`);
    }
  }

  /** After a flush or a crash: the durable cursor never went backwards. */
  onDurable(sink: SimSink): void {
    for (const copy of sink.copies.values()) {
      this.checks++;
      const cursor = durableCursorOf(copy);
      if (cursor < copy.durableCursorMax) fail(`${sink.owner}'s durable cursor of ${keyId(copy.key)} went back from ${copy.durableCursorMax} to ${cursor}`);
    }
  }

  // ---------------------------------------------------------------- frames

  /** A connection came up at a sender end; `windowBytes` is the peer's window from the handshake. */
  onUp(end: string, windowBytes: number): void {
    this.#senderEnds.set(end, { windowBytes, unacked: new Map(), unackedBytes: 0 });
    this.#receiverEnds.set(end, { lastCursor: new Map() });
  }

  onDown(end: string): void {
    this.#senderEnds.delete(end);
    this.#receiverEnds.delete(end);
  }

  /** Frames a node sends on connection end `end`; `sink` resolves the receiver's sink for cursor checks. */
  onSend(options: { end: string; node: string; frames: readonly LinkFrame[]; sink: SimSink | undefined }): void {
    for (const frame of options.frames) {
      this.checks++;
      if (frame.t === 'batch') this.#onBatchSent(options.end, options.node, frame);
      else if (frame.t === 'gap') this.#onGapSent(options.node, frame);
      else if (frame.t === 'cursor') this.#onCursorSent(options.end, frame, options.sink);
      else if (frame.t === 'error' && frame.code === 'protocol') fail(`${options.node} sends a protocol error: ${frame.text}`);
    }
  }

  /** Frames delivered to a sender (cursor, window) update the window accounting. */
  onDeliverToSender(end: string, frame: LinkFrame): void {
    const state = this.#senderEnds.get(end);
    if (state === undefined) return;
    if (frame.t === 'window') state.windowBytes = frame.windowBytes;
    if (frame.t === 'error' && frame.code === 'stream') {
      // A refused stream's batches will never be acknowledged: they no longer count.
      for (const [id, list] of state.unacked) {
        if (!id.startsWith(`${frame.stream}/`)) continue;
        for (let i = 1; i < list.length; i += 2) state.unackedBytes -= list[i]!;
        list.length = 0;
      }
      return;
    }
    if (frame.t !== 'cursor') return;
    const list = state.unacked.get(keyId(frame));
    if (list === undefined) return;
    let drop = 0;
    while (drop < list.length && list[drop]! <= frame.seq) {
      state.unackedBytes -= list[drop + 1]!;
      drop += 2;
    }
    list.splice(0, drop);
  }

  #onBatchSent(end: string, node: string, frame: BatchFrame): void {
    const stream = this.#stream(frame, node);
    const state = this.#senderEnds.get(end);
    if (state === undefined) fail(`${node} sends a batch on ${end}, which is not up`);
    let bytes = 0;
    for (let i = 0; i < frame.msgs.length; i++) {
      const message = frame.msgs[i]!;
      if (i > 0 && message.seq !== frame.msgs[i - 1]!.seq + 1) fail(`${node}: batch ${frame.id} not consecutive at ${message.seq}`);
      if (stream.history[message.seq - 1] !== message) fail(`${node}: batch ${frame.id} carries a message that is not seq ${message.seq} of ${frame.stream}`);
      bytes += messageBytes(message);
    }
    if (frame.msgs.length === 0 || frame.msgs.length > this.#limits.batchMsgsMax) fail(`${node}: batch of ${frame.msgs.length} messages`);
    if (frame.msgs.length > 1 && bytes > this.#limits.batchBytesMax) fail(`${node}: batch of ${bytes} bytes over the ${this.#limits.batchBytesMax} limit`);
    // Past the window only as one message alone on an idle window (README "Window").
    if (state.unackedBytes + bytes > state.windowBytes && (state.unackedBytes > 0 || frame.msgs.length > 1)) {
      fail(`${node}: window exceeded on ${end}: ${state.unackedBytes} unacked + ${bytes} in ${frame.msgs.length} messages > ${state.windowBytes}`);
    }
    const id = keyId(frame);
    let list = state.unacked.get(id);
    if (list === undefined) {
      list = [];
      state.unacked.set(id, list);
    }
    for (const message of frame.msgs) list.push(message.seq, messageBytes(message));
    state.unackedBytes += bytes;
  }

  #onGapSent(node: string, frame: GapFrame): void {
    const stream = this.#stream(frame, node);
    this.gapsChecked++;
    if (stream.retention === 'acked') fail(`${node}: gap ${frame.from}..${frame.to} for ${frame.stream}, which keeps data until acknowledged`);
    for (let seq = frame.from; seq <= frame.to; seq++) {
      if (!stream.isGone(seq)) fail(`${node}: gap ${frame.from}..${frame.to} of ${frame.stream} covers seq ${seq}, which it ${seq > stream.lastSeq ? 'never had' : 'still has'}`);
    }
  }

  #onCursorSent(end: string, frame: CursorFrame, sink: SimSink | undefined): void {
    if (sink === undefined) fail(`cursor sent on ${end} without a sink`);
    const durable = sink.cursor(frame);
    if (frame.seq > durable) fail(`${sink.owner} acknowledges ${keyId(frame)} up to ${frame.seq}, but only ${durable} is durable`);
    const state = this.#receiverEnds.get(end);
    if (state === undefined) fail(`${sink.owner} sends a cursor on ${end}, which is not up`);
    const id = keyId(frame);
    const last = state.lastCursor.get(id) ?? 0;
    if (frame.seq < last) fail(`${sink.owner}'s cursor for ${id} went backwards on ${end}: ${frame.seq} < ${last}`);
    state.lastCursor.set(id, frame.seq);
  }

  // ---------------------------------------------------------------- other

  onProtocolError(node: string, text: string): never {
    fail(`${node} saw a protocol error: ${text}`);
  }

  onReceiverEvent(node: string, sender: string, event: ReceiverEvent): void {
    if (event.kind !== 'incarnation') return;
    const previous = this.#streams.get(event.previous);
    const current = this.#streams.get(event.incarnation);
    if (previous === undefined || current === undefined || previous.name !== event.stream || previous.node !== sender || previous.createdAt > current.createdAt) {
      fail(`${node}: incarnation alert for ${event.stream} names ${event.previous}, which is not an older incarnation of it`);
    }
  }
}
