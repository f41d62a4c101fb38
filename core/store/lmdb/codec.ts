/**
 * Binary records of the LMDB store (core/store/README.md "Record format").
 * Every record ends with a CRC-32C that is checked before anything in it is
 * used; a mismatch is `StoreError('ERR_STORE_CORRUPT')`, never data.
 *
 * Message record (value of `msgs[streamId, seq]`):
 *
 *     [timestamp ns u64 BE][subject length varint][subject utf8]
 *     [header length varint][headers][payload][crc32c u32 BE]
 *
 * The CRC covers the 12-byte key (stream id and sequence) followed by
 * everything before it, so a record that is intact but stored under the wrong
 * key, stream or sequence, also fails. Overhead beyond subject, headers and
 * payload: 14 bytes for subjects and headers under 128 bytes.
 */
import {
  StoreError,
  StoreErrorCode,
  type ConsumerStateRecord,
  type NewMessage,
  type StoredMessage,
} from '../../jetstream/store.ts';
import { assert } from '../../util/assert.ts';
import { crc32c, crc32cFinish, crc32cUpdate, CRC32C_INIT } from '../../util/crc32c.ts';
import { MESSAGE_KEY_BYTES, seqOfMessageKey } from './keys.ts';

const TIMESTAMP_BYTES = 8;
const CRC_BYTES = 4;
const TIMESTAMP_NS_MAX = 0xffff_ffff_ffff_ffffn;

function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

function writeVarint(target: Buffer, offset: number, value: number): number {
  while (value >= 0x80) {
    target[offset++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 0x80);
  }
  target[offset++] = value;
  return offset;
}

/** Reads a varint at `cursor.offset`; -1 when it runs past `end` or exceeds 2^35. */
function readVarint(source: Uint8Array, cursor: { offset: number }, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    if (cursor.offset >= end) return -1;
    const byte = source[cursor.offset++]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return value;
    scale *= 0x80;
  }
  return -1;
}

function corrupt(what: string, seq?: number): StoreError {
  return new StoreError(StoreErrorCode.corrupt, `${what} failed its checksum`, seq === undefined ? {} : { seq });
}

/** Encodes a message record for `key` (`messageKey(streamId, seq)`). */
export function encodeMessageRecord(key: Buffer, message: NewMessage): Buffer {
  assert(key.length === MESSAGE_KEY_BYTES, 'message key must be 12 bytes');
  assert(message.timestampNs >= 0n && message.timestampNs <= TIMESTAMP_NS_MAX, 'timestamp must fit in u64');
  const subjectLength = Buffer.byteLength(message.subject, 'utf8');
  const headersLength = message.headers?.length ?? 0;
  const dataLength = message.data.length;
  const recordLength =
    TIMESTAMP_BYTES + varintBytes(subjectLength) + subjectLength + varintBytes(headersLength) + headersLength + dataLength + CRC_BYTES;
  const record = Buffer.allocUnsafe(recordLength);
  record.writeBigUInt64BE(message.timestampNs, 0);
  let offset = writeVarint(record, TIMESTAMP_BYTES, subjectLength);
  offset += record.write(message.subject, offset, 'utf8');
  offset = writeVarint(record, offset, headersLength);
  if (message.headers !== undefined) offset += message.headers.copy(record, offset);
  offset += message.data.copy(record, offset);
  assert(offset === recordLength - CRC_BYTES, 'encoded message record must fill its buffer');
  const crc = crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, key), record, 0, offset));
  record.writeUInt32BE(crc, offset);
  return record;
}

/** True when the record's CRC matches `key` and its bytes. */
export function isMessageRecordIntact(key: Uint8Array, record: Uint8Array): boolean {
  if (record.length < TIMESTAMP_BYTES + 2 + CRC_BYTES) return false;
  const end = record.length - CRC_BYTES;
  const crc = crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, key), record, 0, end));
  const stored = ((record[end]! << 24) | (record[end + 1]! << 16) | (record[end + 2]! << 8) | record[end + 3]!) >>> 0;
  return crc === stored;
}

/** The fields of a record, without copying or checking the CRC (scans); undefined when malformed. */
export type RecordLayout = {
  readonly subject: string;
  readonly headersStart: number;
  readonly headersLength: number;
  readonly dataStart: number;
  readonly dataLength: number;
};

export function readMessageLayout(record: Buffer): RecordLayout | undefined {
  const end = record.length - CRC_BYTES;
  const cursor = { offset: TIMESTAMP_BYTES };
  const subjectLength = readVarint(record, cursor, end);
  if (subjectLength < 0 || cursor.offset + subjectLength > end) return undefined;
  const subject = record.toString('utf8', cursor.offset, cursor.offset + subjectLength);
  cursor.offset += subjectLength;
  const headersLength = readVarint(record, cursor, end);
  if (headersLength < 0 || cursor.offset + headersLength > end) return undefined;
  const headersStart = cursor.offset;
  const dataStart = headersStart + headersLength;
  return { subject, headersStart, headersLength, dataStart, dataLength: end - dataStart };
}

/**
 * Decodes a record read from disk under `key`. Throws StoreError `corrupt`
 * when the CRC does not match: the bytes are then never interpreted.
 * `record` must be a buffer the caller owns (the returned message views it).
 */
export function decodeMessageRecord(key: Uint8Array, record: Buffer): StoredMessage {
  const seq = seqOfMessageKey(key);
  if (!isMessageRecordIntact(key, record)) throw corrupt(`message ${seq}`, seq);
  const layout = readMessageLayout(record);
  // Pair assertion of encodeMessageRecord: a record with a valid CRC was written by it.
  assert(layout !== undefined, 'a record with a valid checksum must parse');
  assert(layout.subject.length > 0, 'a stored message has a subject');
  return {
    seq,
    subject: layout.subject,
    headers: layout.headersLength === 0 ? undefined : record.subarray(layout.headersStart, layout.dataStart),
    data: record.subarray(layout.dataStart, layout.dataStart + layout.dataLength),
    timestampNs: record.readBigUInt64BE(0),
  };
}

/** A copy of `record` with headers and payload overwritten by `fill` (erase before delete). */
export function scrubMessageRecord(record: Buffer, fill: (bytes: Buffer) => void): Buffer {
  const copy = Buffer.from(record);
  const layout = readMessageLayout(copy);
  if (layout !== undefined) fill(copy.subarray(layout.headersStart, layout.dataStart + layout.dataLength));
  else fill(copy.subarray(TIMESTAMP_BYTES));
  return copy;
}

/** Counters of one stream, persisted with every commit that changes the stream. */
export type StreamStateRecord = {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly messages: number;
  readonly bytes: number;
  readonly numSubjects: number;
  readonly firstTimestampNs: bigint;
  readonly lastTimestampNs: bigint;
};

const STATE_VERSION = 1;
const STATE_RECORD_BYTES = 1 + 5 * 8 + 2 * 8 + CRC_BYTES;

export function encodeStreamState(state: StreamStateRecord): Buffer {
  assert(state.messages >= 0 && state.bytes >= 0 && state.numSubjects >= 0, 'stream counters are never negative');
  assert(state.messages === 0 || state.firstSeq <= state.lastSeq, 'a non-empty stream has firstSeq <= lastSeq');
  assert(state.numSubjects <= state.messages, 'every live subject has a message');
  const record = Buffer.allocUnsafe(STATE_RECORD_BYTES);
  record[0] = STATE_VERSION;
  record.writeDoubleBE(state.firstSeq, 1);
  record.writeDoubleBE(state.lastSeq, 9);
  record.writeDoubleBE(state.messages, 17);
  record.writeDoubleBE(state.bytes, 25);
  record.writeDoubleBE(state.numSubjects, 33);
  record.writeBigUInt64BE(state.firstTimestampNs, 41);
  record.writeBigUInt64BE(state.lastTimestampNs, 49);
  record.writeUInt32BE(crc32c(record, 0, 57), 57);
  return record;
}

export function decodeStreamState(record: Buffer, streamName: string): StreamStateRecord {
  if (record.length !== STATE_RECORD_BYTES || record.readUInt32BE(57) !== crc32c(record, 0, 57) || record[0] !== STATE_VERSION) {
    throw corrupt(`state of stream ${streamName}`);
  }
  const state: StreamStateRecord = {
    firstSeq: record.readDoubleBE(1),
    lastSeq: record.readDoubleBE(9),
    messages: record.readDoubleBE(17),
    bytes: record.readDoubleBE(25),
    numSubjects: record.readDoubleBE(33),
    firstTimestampNs: record.readBigUInt64BE(41),
    lastTimestampNs: record.readBigUInt64BE(49),
  };
  // Pair assertions of encodeStreamState.
  assert(Number.isSafeInteger(state.firstSeq) && Number.isSafeInteger(state.lastSeq), 'stored sequences are integers');
  assert(state.messages === 0 || state.firstSeq <= state.lastSeq, 'a stored non-empty stream has firstSeq <= lastSeq');
  assert(state.numSubjects <= state.messages, 'stored numSubjects <= messages');
  return state;
}

const CONSUMER_STATE_VERSION = 1;

/** Consumer positions as doubles (exact for sequences and ms timestamps below 2^53). */
export function encodeConsumerState(state: ConsumerStateRecord): Buffer {
  const pending = state.pending;
  const redelivered = state.redelivered;
  const length = 1 + 4 * 8 + 4 + pending.length * 24 + 4 + redelivered.length * 16 + CRC_BYTES;
  const record = Buffer.allocUnsafe(length);
  record[0] = CONSUMER_STATE_VERSION;
  let offset = 1;
  for (const value of [state.delivered.consumerSeq, state.delivered.streamSeq, state.ackFloor.consumerSeq, state.ackFloor.streamSeq]) {
    offset = record.writeDoubleBE(value, offset);
  }
  offset = record.writeUInt32BE(pending.length, offset);
  for (const [streamSeq, consumerSeq, timestampMs] of pending) {
    offset = record.writeDoubleBE(streamSeq, offset);
    offset = record.writeDoubleBE(consumerSeq, offset);
    offset = record.writeDoubleBE(timestampMs, offset);
  }
  offset = record.writeUInt32BE(redelivered.length, offset);
  for (const [streamSeq, count] of redelivered) {
    offset = record.writeDoubleBE(streamSeq, offset);
    offset = record.writeDoubleBE(count, offset);
  }
  assert(offset === length - CRC_BYTES, 'encoded consumer state must fill its buffer');
  record.writeUInt32BE(crc32c(record, 0, offset), offset);
  return record;
}

export function decodeConsumerState(record: Buffer, what: string): ConsumerStateRecord {
  const end = record.length - CRC_BYTES;
  if (end < 1 + 4 * 8 + 8 || record.readUInt32BE(end) !== crc32c(record, 0, end) || record[0] !== CONSUMER_STATE_VERSION) {
    throw corrupt(`state of consumer ${what}`);
  }
  let offset = 1;
  const next = (): number => {
    const value = record.readDoubleBE(offset);
    offset += 8;
    return value;
  };
  const delivered = { consumerSeq: next(), streamSeq: next() };
  const ackFloor = { consumerSeq: next(), streamSeq: next() };
  const pendingCount = record.readUInt32BE(offset);
  offset += 4;
  const pending: [number, number, number][] = [];
  for (let i = 0; i < pendingCount; i++) pending.push([next(), next(), next()]);
  const redeliveredCount = record.readUInt32BE(offset);
  offset += 4;
  const redelivered: [number, number][] = [];
  for (let i = 0; i < redeliveredCount; i++) redelivered.push([next(), next()]);
  // Pair assertion of encodeConsumerState.
  assert(offset === end, 'a consumer state with a valid checksum must parse exactly');
  return { delivered, ackFloor, pending, redelivered };
}
