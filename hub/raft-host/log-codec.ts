/**
 * Binary records of the LMDB Raft log (lmdb-log-storage.ts). Every record
 * ends with a CRC-32C that is checked before anything in it is used; a
 * mismatch is `StoreError('ERR_STORE_CORRUPT')` naming the record, never data
 * (RELIABILITY.md §3.3: LMDB itself returns a flipped bit as valid data).
 *
 * Entry record (value of `raft-entries[index]`):
 *
 *     [kind u8][term u64 BE][body][crc32c u32 BE]
 *     normal:      body = data
 *     conf-change: body = [change type u8][node id u64 BE][context]
 *
 * The CRC covers the index (u64 BE, not stored in the value: it is the key)
 * followed by everything before the CRC, so an intact record stored under the
 * wrong index fails too. Overhead beyond the data: 13 bytes.
 *
 * Metadata record (value of `raft-meta[name]`):
 *
 *     [tag u8][fields][crc32c u32 BE]       CRC over tag and fields
 *
 * with one tag per record kind ({@link MetaTag}), so a record read under the
 * wrong name fails as well. Integers are u64 BE, checked safe on both sides.
 */
import { StoreError, StoreErrorCode } from '../../core/jetstream/store.ts';
import { assert } from '../../core/util/assert.ts';
import { crc32c, crc32cFinish, crc32cUpdate, CRC32C_INIT } from '../../core/util/crc32c.ts';
import type { ConfChange, ConfState, Entry, HardState, NodeId, Snapshot } from '../raft/index.ts';

const CRC_BYTES = 4;
const U64_BYTES = 8;
const KIND_NORMAL = 1;
const KIND_CONF_CHANGE = 2;
const ENTRY_HEADER_BYTES = 1 + U64_BYTES;
const CONF_CHANGE_HEADER_BYTES = 1 + U64_BYTES;
/** ConfChange types on disk; the order is the format, never renumber. */
const CHANGE_TYPES = ['add-learner', 'add-voter', 'remove'] as const satisfies readonly ConfChange['type'][];

/** Metadata record kinds. */
export const MetaTag = {
  format: 1,
  identity: 2,
  hardState: 3,
  logStart: 4,
  snapshot: 5,
} as const;
export type MetaTag = (typeof MetaTag)[keyof typeof MetaTag];

/** Who this environment belongs to (lmdb-log-storage.ts "Identity"). */
export type ReplicaIdentity = {
  /** The cluster this replica was created for; a data directory of another cluster is refused. */
  readonly clusterId: string;
  /** This incarnation's id (hub/raft/README.md "Wiped and rolled-back nodes"): never reused. */
  readonly nodeId: NodeId;
};

/** The compaction point: index and term of the position just before the first stored entry. */
export type LogStart = { readonly index: number; readonly term: number };

function writeU64(target: Buffer, offset: number, value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, `raft log codec: ${value} is not a u64 safe integer`);
  target.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  target.writeUInt32BE(value >>> 0, offset + 4);
  return offset + U64_BYTES;
}

/** A u64 BE as a number; -1 when it is not a safe integer (only a damaged record has one). */
function readU64(source: Buffer, offset: number): number {
  const value = source.readUInt32BE(offset) * 0x1_0000_0000 + source.readUInt32BE(offset + 4);
  return Number.isSafeInteger(value) ? value : -1;
}

function indexBytes(index: number): Buffer {
  const bytes = Buffer.allocUnsafe(U64_BYTES);
  writeU64(bytes, 0, index);
  return bytes;
}

function corrupt(what: string, detail: string): StoreError {
  return new StoreError(StoreErrorCode.corrupt, `raft log: ${what} is damaged (${detail}); the data directory cannot be trusted`);
}

export function encodeEntry(entry: Entry): Buffer {
  assert(Number.isSafeInteger(entry.index) && entry.index > 0, 'raft log codec: entry index');
  const body = entry.kind === 'normal' ? entry.data.length : CONF_CHANGE_HEADER_BYTES + entry.change.context.length;
  const record = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + body + CRC_BYTES);
  let offset = 0;
  record[offset++] = entry.kind === 'normal' ? KIND_NORMAL : KIND_CONF_CHANGE;
  offset = writeU64(record, offset, entry.term);
  if (entry.kind === 'normal') {
    record.set(entry.data, offset);
    offset += entry.data.length;
  } else {
    const type = CHANGE_TYPES.indexOf(entry.change.type);
    assert(type >= 0, `raft log codec: conf change type ${entry.change.type}`);
    record[offset++] = type;
    offset = writeU64(record, offset, entry.change.nodeId);
    record.set(entry.change.context, offset);
    offset += entry.change.context.length;
  }
  const crc = crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, indexBytes(entry.index)), record, 0, offset));
  record.writeUInt32BE(crc, offset);
  return record;
}

/** Decodes the entry stored at `index`; throws StoreError `corrupt` on any damage. */
export function decodeEntry(index: number, record: Buffer): Entry {
  const what = `entry ${index}`;
  const crcAt = record.length - CRC_BYTES;
  if (crcAt < ENTRY_HEADER_BYTES) throw corrupt(what, `${record.length} bytes`);
  const crc = crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, indexBytes(index)), record, 0, crcAt));
  if (crc !== record.readUInt32BE(crcAt)) throw corrupt(what, 'checksum mismatch');
  const kind = record[0];
  const term = readU64(record, 1);
  if (term < 0) throw corrupt(what, 'term');
  let offset = ENTRY_HEADER_BYTES;
  let entry: Entry;
  if (kind === KIND_NORMAL) {
    entry = { kind: 'normal', index, term, data: new Uint8Array(record.subarray(offset, crcAt)) };
  } else if (kind === KIND_CONF_CHANGE && crcAt - offset >= CONF_CHANGE_HEADER_BYTES) {
    const type = CHANGE_TYPES[record[offset++]!];
    const nodeId = readU64(record, offset);
    offset += U64_BYTES;
    if (type === undefined || nodeId < 0) throw corrupt(what, 'conf change');
    const context = new Uint8Array(record.subarray(offset, crcAt));
    entry = { kind: 'conf-change', index, term, change: { type, nodeId, context } };
  } else {
    throw corrupt(what, `kind ${kind}`);
  }
  // Pair assertion (STYLE.md §2.6 (4)): what was decoded is what encodeEntry accepts.
  assert(entry.index === index && Number.isSafeInteger(entry.term), 'raft log codec: decoded entry');
  return entry;
}

/** Builds a metadata record from its fields: u64s, then an optional byte tail. */
function encodeMeta(tag: MetaTag, numbers: readonly number[], tail: Uint8Array = EMPTY): Buffer {
  const record = Buffer.allocUnsafe(1 + numbers.length * U64_BYTES + tail.length + CRC_BYTES);
  let offset = 0;
  record[offset++] = tag;
  for (const value of numbers) offset = writeU64(record, offset, value);
  record.set(tail, offset);
  offset += tail.length;
  record.writeUInt32BE(crc32c(record, 0, offset), offset);
  return record;
}

/** The fields of a metadata record: `count` u64s and the byte tail after them. */
function decodeMeta(what: string, tag: MetaTag, record: Buffer, count: number): { numbers: number[]; tail: Buffer } {
  const crcAt = record.length - CRC_BYTES;
  const tailAt = 1 + count * U64_BYTES;
  if (crcAt < tailAt) throw corrupt(what, `${record.length} bytes`);
  if (crc32c(record, 0, crcAt) !== record.readUInt32BE(crcAt)) throw corrupt(what, 'checksum mismatch');
  if (record[0] !== tag) throw corrupt(what, `tag ${record[0]}`);
  const numbers: number[] = [];
  for (let i = 0; i < count; i++) {
    const value = readU64(record, 1 + i * U64_BYTES);
    if (value < 0) throw corrupt(what, 'integer');
    numbers.push(value);
  }
  return { numbers, tail: record.subarray(tailAt, crcAt) };
}

const EMPTY = new Uint8Array(0);

export function encodeFormat(version: number): Buffer {
  return encodeMeta(MetaTag.format, [version]);
}

export function decodeFormat(record: Buffer): number {
  return decodeMeta('format record', MetaTag.format, record, 1).numbers[0]!;
}

export function encodeIdentity(identity: ReplicaIdentity): Buffer {
  assert(identity.nodeId > 0, 'raft log codec: node id must be positive');
  return encodeMeta(MetaTag.identity, [identity.nodeId], Buffer.from(identity.clusterId, 'utf8'));
}

export function decodeIdentity(record: Buffer): ReplicaIdentity {
  const { numbers, tail } = decodeMeta('identity record', MetaTag.identity, record, 1);
  return { nodeId: numbers[0]!, clusterId: tail.toString('utf8') };
}

export function encodeHardState(hardState: HardState): Buffer {
  return encodeMeta(MetaTag.hardState, [hardState.term, hardState.vote, hardState.commit]);
}

export function decodeHardState(record: Buffer): HardState {
  const [term, vote, commit] = decodeMeta('hard state', MetaTag.hardState, record, 3).numbers as [number, number, number];
  return { term, vote, commit };
}

export function encodeLogStart(start: LogStart): Buffer {
  return encodeMeta(MetaTag.logStart, [start.index, start.term]);
}

export function decodeLogStart(record: Buffer): LogStart {
  const [index, term] = decodeMeta('log start', MetaTag.logStart, record, 2).numbers as [number, number];
  return { index, term };
}

/** Snapshot: [index][term][voters count][learners count][voters…][learners…] then the data. */
export function encodeSnapshot(snapshot: Snapshot): Buffer {
  const { index, term, confState } = snapshot.metadata;
  const numbers = [index, term, confState.voters.length, confState.learners.length, ...confState.voters, ...confState.learners];
  return encodeMeta(MetaTag.snapshot, numbers, snapshot.data);
}

export function decodeSnapshot(record: Buffer): Snapshot {
  const head = decodeMeta('snapshot', MetaTag.snapshot, record, 4).numbers as [number, number, number, number];
  const [index, term, voterCount, learnerCount] = head;
  const what = 'snapshot';
  if (voterCount + learnerCount > (record.length - CRC_BYTES) / U64_BYTES) throw corrupt(what, 'configuration size');
  const { numbers, tail } = decodeMeta(what, MetaTag.snapshot, record, 4 + voterCount + learnerCount);
  const confState: ConfState = { voters: numbers.slice(4, 4 + voterCount), learners: numbers.slice(4 + voterCount) };
  return { metadata: { index, term, confState }, data: new Uint8Array(tail) };
}
