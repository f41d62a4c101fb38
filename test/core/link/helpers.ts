/**
 * Small in-memory stand-ins for the link state machines' seams, for readable scenario tests:
 * a stream store the sender reads (`MemoryStreams`), a sink with an explicit flush
 * (`MemorySink`), and a manual clock.
 */
import type { Clock } from '../../../core/util/clock.ts';
import type { LinkMessage, ReceiverSink, ReceiverWrite, SenderStreams, StreamKey } from '../../../core/link/index.ts';
import { messageBytes } from '../../../core/link/index.ts';

export class ManualClock implements Clock {
  now = 1000;
  nowMs(): number {
    return this.now;
  }
}

const encoder = new TextEncoder();

/** A message of exactly `bytes` cost with subject `s` (1 byte) and no headers. */
export function message(seq: number, bytes = 10): LinkMessage {
  return { seq, subject: 's', headers: undefined, data: new Uint8Array(Math.max(0, bytes - 1)), timestampNs: BigInt(seq) * 1_000_000n };
}

export function textMessage(seq: number, subject: string, data: string, headers?: string): LinkMessage {
  return { seq, subject, headers: headers === undefined ? undefined : encoder.encode(headers), data: encoder.encode(data), timestampNs: BigInt(seq) };
}

type MemoryStream = { key: StreamKey; msgs: Map<number, LinkMessage>; firstSeq: number; lastSeq: number; reason: string };

/** Streams held in memory; `publish` and `deleteUpTo` change them (the test then calls `streamChanged`). */
export class MemoryStreams implements SenderStreams {
  readonly streams = new Map<string, MemoryStream>();

  create(stream: string, incarnation: string): StreamKey {
    const key = { stream, incarnation };
    this.streams.set(stream, { key, msgs: new Map(), firstSeq: 1, lastSeq: 0, reason: 'limits' });
    return key;
  }

  /** Appends `count` messages of `bytes` each. */
  publish(stream: string, count = 1, bytes = 10): void {
    const s = this.streams.get(stream)!;
    for (let i = 0; i < count; i++) {
      s.lastSeq += 1;
      s.msgs.set(s.lastSeq, message(s.lastSeq, bytes));
    }
  }

  /** Deletes every message up to `seq` (limits, purge). */
  deleteUpTo(stream: string, seq: number, reason = 'limits'): void {
    const s = this.streams.get(stream)!;
    for (let i = s.firstSeq; i <= seq; i++) s.msgs.delete(i);
    s.firstSeq = Math.max(s.firstSeq, seq + 1);
    s.reason = reason;
  }

  /** Deletes one message in the middle. */
  deleteOne(stream: string, seq: number): void {
    const s = this.streams.get(stream)!;
    s.msgs.delete(seq);
    s.reason = 'deleted';
  }

  remove(stream: string): void {
    this.streams.delete(stream);
  }

  #find(key: StreamKey): MemoryStream | undefined {
    const s = this.streams.get(key.stream);
    return s?.key.incarnation === key.incarnation ? s : undefined;
  }

  list(): StreamKey[] {
    return [...this.streams.values()].map((s) => s.key);
  }

  state(key: StreamKey): { firstSeq: number; lastSeq: number } | undefined {
    const s = this.#find(key);
    return s === undefined ? undefined : { firstSeq: s.firstSeq, lastSeq: s.lastSeq };
  }

  read(key: StreamKey, fromSeq: number, maxBytes: number, maxMsgs: number): LinkMessage[] {
    const s = this.#find(key);
    const result: LinkMessage[] = [];
    if (s === undefined) return result;
    let bytes = 0;
    for (let seq = Math.max(fromSeq, s.firstSeq); seq <= s.lastSeq && result.length < maxMsgs; seq++) {
      const m = s.msgs.get(seq);
      if (m === undefined) continue;
      if (result.length > 0 && bytes + messageBytes(m) > maxBytes) break;
      result.push(m);
      bytes += messageBytes(m);
    }
    return result;
  }

  gapReason(key: StreamKey): string {
    return this.#find(key)?.reason ?? 'deleted';
  }

  pending(key: StreamKey, afterSeq: number): { msgs: number; bytes: number; oldestNs: bigint | undefined } {
    const s = this.#find(key);
    let msgs = 0;
    let bytes = 0;
    let oldestNs: bigint | undefined;
    if (s !== undefined) {
      for (const [seq, m] of s.msgs) {
        if (seq <= afterSeq) continue;
        msgs++;
        bytes += messageBytes(m);
        oldestNs ??= m.timestampNs;
      }
    }
    return { msgs, bytes, oldestNs };
  }
}

/** A sink whose writes stay staged until `flush()`, which returns what the host reports to `durable()`. */
export class MemorySink implements ReceiverSink {
  readonly durableCursors = new Map<string, number>();
  readonly writes: { key: StreamKey; write: ReceiverWrite }[] = [];
  staged: { key: StreamKey; write: ReceiverWrite }[] = [];
  readonly incarnations = new Map<string, string>();
  refused = new Set<string>();

  static id(key: StreamKey): string {
    return `${key.stream}/${key.incarnation}`;
  }

  cursor(key: StreamKey): number {
    return this.durableCursors.get(MemorySink.id(key)) ?? 0;
  }

  lastIncarnation(stream: string): string | undefined {
    return this.incarnations.get(stream);
  }

  append(key: StreamKey, write: ReceiverWrite): void {
    this.staged.push({ key, write });
  }

  refuse(key: StreamKey): string | undefined {
    return this.refused.has(key.stream) ? 'not accepted here' : undefined;
  }

  /** Makes every staged write durable; returns the new durable cursor per key. */
  flush(): { key: StreamKey; seq: number }[] {
    const moved = new Map<string, { key: StreamKey; seq: number }>();
    for (const { key, write } of this.staged) {
      const seq = write.kind === 'gap' ? write.gap.to : write.msgs[write.msgs.length - 1]!.seq;
      this.durableCursors.set(MemorySink.id(key), seq);
      this.incarnations.set(key.stream, key.incarnation);
      this.writes.push({ key, write });
      moved.set(MemorySink.id(key), { key, seq });
    }
    this.staged = [];
    return [...moved.values()];
  }

  /** A crash: staged writes are lost. */
  crash(): void {
    this.staged = [];
  }

  /** The sequences stored (messages) for a key, in order, and the gaps as "from..to". */
  contents(key: StreamKey): string[] {
    const out: string[] = [];
    for (const { key: k, write } of this.writes) {
      if (MemorySink.id(k) !== MemorySink.id(key)) continue;
      if (write.kind === 'gap') out.push(`gap ${write.gap.from}..${write.gap.to} ${write.gap.reason}`);
      else for (const m of write.msgs) out.push(String(m.seq));
    }
    return out;
  }
}
