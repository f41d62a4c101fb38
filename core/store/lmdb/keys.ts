/**
 * LMDB key schema of the JetStream store (core/store/README.md "Key schema").
 *
 * Streams share a few named databases (STYLE.md §2.13 option (a)); a stream is
 * a 4-byte id, allocated once per stream name and never reused, so keys stay
 * short and the number of named databases stays fixed whatever the number of
 * streams.
 *
 * - `msgs`: `[streamId u32][seq u64]`, big-endian, so one stream's messages are
 *   one contiguous range in sequence order.
 * - `subject-index` (dupsort + dupfixed): key `[streamId u32][subject][chunk u48]`,
 *   duplicates are 2-byte big-endian values. A sequence is split as
 *   `chunk = floor(seq / 65536)`, `low = seq % 65536`, so each message costs 2
 *   bytes in the index (LMDB packs dupfixed values without per-item headers)
 *   while one key covers up to 65,536 sequences of one subject.
 *   `[subject]` is `[length u16][utf8 bytes]` when the subject is at most
 *   {@link SUBJECT_INLINE_BYTES_MAX} bytes, else `[0xFFFF][sha256 of the utf8]`:
 *   the length prefix keeps one subject's keys contiguous and apart from any
 *   other subject's (no separator byte can be ambiguous).
 * - `stream-state`: `[streamId u32]` → the stream's counters (codec.ts).
 * - ordered-binary keys elsewhere: `stream-ids` name → id, `stream-metas` name,
 *   `consumer-metas` and `consumer-states` `[stream, consumer]`, `meta` strings.
 */
import { createHash } from 'node:crypto';
import { assert } from '../../util/assert.ts';

export const STREAM_ID_BYTES = 4;
export const SEQ_BYTES = 8;
export const MESSAGE_KEY_BYTES = STREAM_ID_BYTES + SEQ_BYTES;
/** Largest stream id (ids are u32). */
export const STREAM_ID_MAX = 0xffff_fffe;

/** Sequences per subject-index key. */
export const SUBJECT_CHUNK_SEQS = 65536;
export const SUBJECT_CHUNK_BYTES = 6;
export const SUBJECT_LOW_BYTES = 2;
/** Longer subjects are indexed by their SHA-256 (LMDB keys are limited to a few KiB). */
export const SUBJECT_INLINE_BYTES_MAX = 1024;
const HASHED_SUBJECT_MARK = 0xffff;
const SUBJECT_HASH_BYTES = 32;

/** `[streamId][seq]`. */
export function messageKey(streamId: number, seq: number): Buffer {
  const key = Buffer.allocUnsafe(MESSAGE_KEY_BYTES);
  key.writeUInt32BE(streamId, 0);
  writeSeq(key, STREAM_ID_BYTES, seq);
  return key;
}

/** The first key after every message key of `streamId`. */
export function messagesEndKey(streamId: number): Buffer {
  return streamIdKey(streamId + 1);
}

export function seqOfMessageKey(key: Uint8Array): number {
  assert(key.length === MESSAGE_KEY_BYTES, 'message keys are 12 bytes');
  return readSeq(key, STREAM_ID_BYTES);
}

export function streamIdOfKey(key: Uint8Array): number {
  return ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) >>> 0;
}

/** `[streamId]`: the stream-state key, and the start of a stream's message and index ranges. */
export function streamIdKey(streamId: number): Buffer {
  assert(Number.isInteger(streamId) && streamId >= 0 && streamId <= STREAM_ID_MAX + 1, 'stream id out of range');
  const key = Buffer.allocUnsafe(STREAM_ID_BYTES);
  key.writeUInt32BE(streamId, 0);
  return key;
}

function writeSeq(target: Buffer, offset: number, seq: number): void {
  assert(Number.isSafeInteger(seq) && seq >= 0, 'sequence must be a safe non-negative integer');
  target.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), offset);
  target.writeUInt32BE(seq % 0x1_0000_0000, offset + 4);
}

function readSeq(source: Uint8Array, offset: number): number {
  const high = ((source[offset]! << 24) | (source[offset + 1]! << 16) | (source[offset + 2]! << 8) | source[offset + 3]!) >>> 0;
  const low =
    ((source[offset + 4]! << 24) | (source[offset + 5]! << 16) | (source[offset + 6]! << 8) | source[offset + 7]!) >>> 0;
  return high * 0x1_0000_0000 + low;
}

/** The part of a subject-index key before the chunk: `[streamId][subject]`. */
export function subjectPrefix(streamId: number, subject: string): Buffer {
  const bytes = Buffer.from(subject, 'utf8');
  if (bytes.length <= SUBJECT_INLINE_BYTES_MAX) {
    const prefix = Buffer.allocUnsafe(STREAM_ID_BYTES + 2 + bytes.length);
    prefix.writeUInt32BE(streamId, 0);
    prefix.writeUInt16BE(bytes.length, STREAM_ID_BYTES);
    bytes.copy(prefix, STREAM_ID_BYTES + 2);
    return prefix;
  }
  const prefix = Buffer.allocUnsafe(STREAM_ID_BYTES + 2 + SUBJECT_HASH_BYTES);
  prefix.writeUInt32BE(streamId, 0);
  prefix.writeUInt16BE(HASHED_SUBJECT_MARK, STREAM_ID_BYTES);
  createHash('sha256').update(bytes).digest().copy(prefix, STREAM_ID_BYTES + 2);
  return prefix;
}

export function chunkOf(seq: number): number {
  return Math.floor(seq / SUBJECT_CHUNK_SEQS);
}

/** `prefix` + the chunk of `seq`. */
export function subjectChunkKey(prefix: Buffer, chunk: number): Buffer {
  const key = Buffer.allocUnsafe(prefix.length + SUBJECT_CHUNK_BYTES);
  prefix.copy(key, 0);
  key.writeUIntBE(chunk, prefix.length, SUBJECT_CHUNK_BYTES);
  return key;
}

/** The inclusive upper bound of every chunk key of a subject. */
export function subjectChunkKeyMax(prefix: Buffer): Buffer {
  const key = Buffer.alloc(prefix.length + SUBJECT_CHUNK_BYTES, 0xff);
  prefix.copy(key, 0);
  return key;
}

/** The 2-byte duplicate value of `seq` under its chunk key. */
export function subjectLowValue(seq: number): Buffer {
  const value = Buffer.allocUnsafe(SUBJECT_LOW_BYTES);
  value.writeUInt16BE(seq % SUBJECT_CHUNK_SEQS, 0);
  return value;
}

export function seqOfSubjectValue(chunk: number, value: Uint8Array): number {
  return chunk * SUBJECT_CHUNK_SEQS + ((value[0]! << 8) | value[1]!);
}

export type ParsedSubjectKey = {
  /** The subject, or undefined when the key holds its hash (read it from a message). */
  readonly subject: string | undefined;
  /** Length of `[streamId][subject]`. */
  readonly prefixLength: number;
  readonly chunk: number;
};

export function parseSubjectKey(key: Uint8Array): ParsedSubjectKey {
  const buffer = Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.length);
  const mark = buffer.readUInt16BE(STREAM_ID_BYTES);
  const prefixLength = STREAM_ID_BYTES + 2 + (mark === HASHED_SUBJECT_MARK ? SUBJECT_HASH_BYTES : mark);
  assert(buffer.length === prefixLength + SUBJECT_CHUNK_BYTES, 'subject-index key length must match its subject length');
  const subject =
    mark === HASHED_SUBJECT_MARK ? undefined : buffer.toString('utf8', STREAM_ID_BYTES + 2, STREAM_ID_BYTES + 2 + mark);
  return { subject, prefixLength, chunk: buffer.readUIntBE(prefixLength, SUBJECT_CHUNK_BYTES) };
}
