/**
 * Micro-benchmark for core/protocol/parser.ts (not a test, not a CI gate).
 *
 * Parses PUB_COUNT `PUB <subject> <#bytes>` operations with PAYLOAD_BYTES-byte payloads,
 * fed in CHUNK_BYTES chunks (so some control lines and payloads are split, as from a
 * socket), into a handler that only counts. Prints the best of ROUNDS runs in ops/s.
 *
 * Run: node --import tsx scripts/bench/parser.bench.ts [pubCount] [payloadBytes] [chunkBytes]
 */
import { CONTROL_LINE_BYTES_MAX, PAYLOAD_BYTES_MAX } from '../../core/protocol/limits.ts';
import type { OpHandler } from '../../core/protocol/op-handler.ts';
import { Parser } from '../../core/protocol/parser.ts';

const PUB_COUNT = Number(process.argv[2] ?? 1_000_000);
const PAYLOAD_BYTES = Number(process.argv[3] ?? 128);
const CHUNK_BYTES = Number(process.argv[4] ?? 64 * 1024);
const ROUNDS = 5;

function buildStream(): Buffer {
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const parts: Buffer[] = [];
  for (let i = 0; i < PUB_COUNT; i++) {
    // Vary the subject a little, like a real publisher would.
    parts.push(Buffer.from(`PUB bench.subject.${i % 16} ${PAYLOAD_BYTES}\r\n`, 'latin1'), payload, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function splitIntoChunks(stream: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < stream.length; offset += CHUNK_BYTES) {
    chunks.push(stream.subarray(offset, Math.min(offset + CHUNK_BYTES, stream.length)));
  }
  return chunks;
}

function runRound(chunks: readonly Buffer[]): { elapsedMs: number; pubCount: number; payloadBytes: number } {
  let pubCount = 0;
  let payloadBytes = 0;
  const handler: OpHandler = {
    onConnect() {},
    onPub(_subject, _reply, _headerBytes, data) {
      pubCount++;
      payloadBytes += data.length;
    },
    onSub() {},
    onUnsub() {},
    onPing() {},
    onPong() {},
  };
  const parser = new Parser({
    handler,
    controlLineBytesMax: CONTROL_LINE_BYTES_MAX,
    payloadBytesMax: PAYLOAD_BYTES_MAX,
  });
  const startNs = process.hrtime.bigint();
  for (let i = 0; i < chunks.length; i++) parser.parse(chunks[i]!);
  const elapsedMs = Number(process.hrtime.bigint() - startNs) / 1e6;
  return { elapsedMs, pubCount, payloadBytes };
}

const stream = buildStream();
const chunks = splitIntoChunks(stream);
let bestMs = Number.POSITIVE_INFINITY;
for (let round = 0; round < ROUNDS; round++) {
  const { elapsedMs, pubCount, payloadBytes } = runRound(chunks);
  if (pubCount !== PUB_COUNT || payloadBytes !== PUB_COUNT * PAYLOAD_BYTES) {
    throw new Error(`parsed ${pubCount} PUBs / ${payloadBytes} bytes, expected ${PUB_COUNT}`);
  }
  bestMs = Math.min(bestMs, elapsedMs);
  const roundOpsPerSecond = Math.round(PUB_COUNT / (elapsedMs / 1000));
  console.log(`round ${round + 1}: ${elapsedMs.toFixed(1)} ms, ${roundOpsPerSecond.toLocaleString('en-US')} ops/s`);
}
const opsPerSecond = PUB_COUNT / (bestMs / 1000);
const megabytesPerSecond = stream.length / (bestMs / 1000) / (1024 * 1024);
console.log(
  `parser: ${PUB_COUNT.toLocaleString('en-US')} PUBs x ${PAYLOAD_BYTES} B in ${CHUNK_BYTES} B chunks: ` +
    `best ${bestMs.toFixed(1)} ms, ${Math.round(opsPerSecond).toLocaleString('en-US')} ops/s, ` +
    `${megabytesPerSecond.toFixed(0)} MiB/s`,
);
