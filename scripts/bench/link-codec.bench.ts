/**
 * Micro-benchmark for core/link/codec.ts (not a test, not a CI gate; STYLE.md §2.8 (6)).
 *
 * Encodes and decodes batch frames of BATCH_MSGS messages with PAYLOAD_BYTES-byte
 * payloads (subjects `sensors.temp.room10` … `room17`, timestamps about 1 ms apart,
 * no headers), plain and deflated. Payloads are random bytes (nothing for deflate to
 * find: its worst case) or a sensor reading in JSON padded to size (a typical IoT
 * message). Prints, per mode, the best of ROUNDS rounds of about ROUND_MSGS_TARGET
 * messages in messages/s, and the wire overhead of batches of 1, 16 and 256 messages:
 * (encoded bytes − payload bytes) / payload bytes.
 *
 * Run: node --import tsx scripts/bench/link-codec.bench.ts [batchMsgs] [payloadBytes]
 */
import { randomBytes } from 'node:crypto';
import { decodeLeafFrame, encodeFrame, type EncodeFrameOptions } from '../../core/link/codec.ts';
import type { BatchFrame, LinkMessage } from '../../core/link/frames.ts';

const BATCH_MSGS = Number(process.argv[2] ?? 256);
const PAYLOAD_BYTES = Number(process.argv[3] ?? 128);
/** About this many messages per round (whole batches). */
const ROUND_MSGS_TARGET = 2_000_000;
const ROUNDS = 5;

type PayloadKind = 'random' | 'json';

function makePayload(kind: PayloadKind, seq: number): Buffer {
  if (kind === 'random') return randomBytes(PAYLOAD_BYTES);
  const reading = {
    sensor: `room${10 + (seq % 8)}`,
    temp_c: Number((20 + ((seq * 37) % 500) / 100).toFixed(2)),
    humidity: Number((40 + ((seq * 13) % 100) / 10).toFixed(1)),
    battery_mv: 2900 + ((seq * 7) % 200),
    fw: '1.4.2',
    status: 'ok',
    uptime_s: 100_000 + seq,
  };
  return Buffer.from(JSON.stringify(reading).padEnd(PAYLOAD_BYTES, ' ').slice(0, PAYLOAD_BYTES));
}

function makeBatch(count: number, firstSeq: number, kind: PayloadKind = 'random'): BatchFrame {
  const msgs: LinkMessage[] = [];
  let timestampNs = 1_764_241_200_123_456_000n + BigInt(firstSeq) * 1_000_000n;
  for (let i = 0; i < count; i++) {
    msgs.push({
      seq: firstSeq + i,
      subject: `sensors.temp.room${10 + ((firstSeq + i) % 8)}`,
      headers: undefined,
      data: makePayload(kind, firstSeq + i),
      timestampNs,
    });
    timestampNs += 1_000_000n + BigInt((i * 7919) % 1000) * 1000n; // about 1 ms apart, microsecond jitter
  }
  return { t: 'batch', stream: 'sensors', incarnation: '5f0c3e0a9d2b4c1e8f7a6b5c4d3e2f10', id: firstSeq, msgs };
}

/** Messages per second for `round` over `roundMsgs` messages, best of ROUNDS. */
function best(label: string, roundMsgs: number, round: () => number): void {
  let bestMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < ROUNDS; i++) {
    const startNs = process.hrtime.bigint();
    const msgCount = round();
    const elapsedMs = Number(process.hrtime.bigint() - startNs) / 1e6;
    if (msgCount !== roundMsgs) throw new Error(`${label}: ${msgCount} messages, expected ${roundMsgs}`);
    bestMs = Math.min(bestMs, elapsedMs);
  }
  const msgsPerSecond = roundMsgs / (bestMs / 1000);
  const megabytesPerSecond = (roundMsgs * PAYLOAD_BYTES) / (bestMs / 1000) / (1024 * 1024);
  console.log(
    `${label.padEnd(28)} ${Math.round(msgsPerSecond).toLocaleString('en-US').padStart(11)} msgs/s  ` +
      `${megabytesPerSecond.toFixed(0).padStart(5)} MiB/s payload  (best of ${ROUNDS} x ${roundMsgs.toLocaleString('en-US')})`,
  );
}

function runMode(options: EncodeFrameOptions, kind: PayloadKind): void {
  const mode = `${options.compress ? 'deflate' : 'plain'} ${kind}`;
  // A few distinct batches, so the encoder does not see one object over and over.
  const batches = [makeBatch(BATCH_MSGS, 1, kind), makeBatch(BATCH_MSGS, 1 + BATCH_MSGS, kind), makeBatch(BATCH_MSGS, 1 + 2 * BATCH_MSGS, kind)];
  const encoded = batches.map((batch) => encodeFrame(batch, options));
  const batchesPerRound = Math.ceil(ROUND_MSGS_TARGET / BATCH_MSGS);
  const roundMsgs = batchesPerRound * BATCH_MSGS;
  let sink = 0;
  best(`encode ${mode} ${BATCH_MSGS} x ${PAYLOAD_BYTES} B`, roundMsgs, () => {
    let msgCount = 0;
    for (let i = 0; i < batchesPerRound; i++) {
      const batch = batches[i % batches.length]!;
      sink += encodeFrame(batch, options).length;
      msgCount += batch.msgs.length;
    }
    return msgCount;
  });
  best(`decode ${mode} ${BATCH_MSGS} x ${PAYLOAD_BYTES} B`, roundMsgs, () => {
    let msgCount = 0;
    for (let i = 0; i < batchesPerRound; i++) {
      const frame = decodeLeafFrame(encoded[i % encoded.length]!);
      if (frame.t !== 'batch') throw new Error('expected a batch');
      sink += frame.msgs[frame.msgs.length - 1]!.data.length;
      msgCount += frame.msgs.length;
    }
    return msgCount;
  });
  if (sink === 0) throw new Error('nothing encoded');
}

console.log(`node ${process.version}, cbor-x pure JS (cbor-extract unavailable)`);
for (const count of [1, 16, 256]) {
  const payloadBytes = count * PAYLOAD_BYTES;
  const plainBytes = encodeFrame(makeBatch(count, 1)).length;
  const deflatedRandomBytes = encodeFrame(makeBatch(count, 1), { compress: true }).length;
  const deflatedJsonBytes = encodeFrame(makeBatch(count, 1, 'json'), { compress: true }).length;
  console.log(
    `batch of ${String(count).padStart(3)} x ${PAYLOAD_BYTES} B: ` +
      `${plainBytes} bytes plain = ${(((plainBytes - payloadBytes) / payloadBytes) * 100).toFixed(1)} % overhead; ` +
      `deflated: ${deflatedRandomBytes} bytes (random payloads), ${deflatedJsonBytes} bytes ` +
      `= ${((deflatedJsonBytes / payloadBytes) * 100).toFixed(0)} % of the payload (JSON payloads)`,
  );
}
runMode({ compress: false }, 'random');
runMode({ compress: true }, 'random');
runMode({ compress: true }, 'json');
