/** The LMDB store's binary records and keys: round trips, and every damaged record is refused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreError, type NewMessage } from '../../../core/jetstream/store.ts';
import {
  decodeConsumerState,
  decodeMessageRecord,
  decodeStreamState,
  encodeConsumerState,
  encodeMessageRecord,
  encodeStreamState,
} from '../../../core/store/lmdb/codec.ts';
import {
  messageKey,
  parseSubjectKey,
  seqOfMessageKey,
  subjectChunkKey,
  subjectPrefix,
} from '../../../core/store/lmdb/keys.ts';

const isCorrupt = (err: unknown): boolean => err instanceof StoreError && err.code === 'ERR_STORE_CORRUPT';

function sample(overrides: Partial<NewMessage> = {}): NewMessage {
  return { subject: 'orders.eu.42', headers: Buffer.from('NATS/1.0\r\nA: b\r\n\r\n'), data: Buffer.from('payload bytes'), timestampNs: 1_764_237_600_123_456_789n, ...overrides };
}

test('message records round-trip', () => {
  const cases: NewMessage[] = [
    sample(),
    sample({ headers: undefined }),
    sample({ data: Buffer.alloc(0) }),
    sample({ subject: 'ünïcödé.subject', data: Buffer.alloc(100_000, 7) }),
    sample({ subject: 's'.repeat(300), headers: Buffer.alloc(200, 0x41) }),
    sample({ timestampNs: 0n }),
    sample({ timestampNs: 0xffff_ffff_ffff_ffffn }),
  ];
  for (const [i, m] of cases.entries()) {
    const key = messageKey(7, 1000 + i);
    const decoded = decodeMessageRecord(key, encodeMessageRecord(key, m));
    assert.equal(decoded.seq, 1000 + i);
    assert.equal(decoded.subject, m.subject);
    assert.deepEqual(decoded.headers, m.headers);
    assert.deepEqual(decoded.data, m.data);
    assert.equal(decoded.timestampNs, m.timestampNs);
  }
});

test('a message record costs 14 bytes beyond subject, headers and payload', () => {
  const m = sample();
  assert.equal(encodeMessageRecord(messageKey(1, 1), m).length, m.subject.length + m.headers!.length + m.data.length + 14);
});

test('every single-bit flip of a record, a wrong key or a truncation is ERR_STORE_CORRUPT', () => {
  const key = messageKey(3, 99);
  const record = encodeMessageRecord(key, sample());
  for (let byte = 0; byte < record.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = Buffer.from(record);
      damaged[byte]! ^= 1 << bit;
      assert.throws(() => decodeMessageRecord(key, damaged), isCorrupt, `byte ${byte} bit ${bit}`);
    }
  }
  assert.throws(() => decodeMessageRecord(messageKey(3, 98), Buffer.from(record)), isCorrupt, 'another sequence');
  assert.throws(() => decodeMessageRecord(messageKey(4, 99), Buffer.from(record)), isCorrupt, 'another stream');
  assert.throws(() => decodeMessageRecord(key, record.subarray(0, record.length - 1)), isCorrupt, 'truncated');
  assert.throws(() => decodeMessageRecord(key, Buffer.alloc(3)), isCorrupt, 'too short');
});

test('stream state and consumer state records round-trip and refuse damage', () => {
  const state = { firstSeq: 5, lastSeq: 2 ** 40, messages: 1000, bytes: 170_000, numSubjects: 3, firstTimestampNs: 17n, lastTimestampNs: 2n ** 63n };
  const encodedState = encodeStreamState(state);
  assert.deepEqual(decodeStreamState(encodedState, 'S'), state);
  const consumer = { delivered: { consumerSeq: 9, streamSeq: 20 }, ackFloor: { consumerSeq: 4, streamSeq: 11 }, pending: [[12, 5, 1_700_000_000_000] as const, [15, 8, 1_700_000_000_500] as const], redelivered: [[12, 3] as const] };
  const encodedConsumer = encodeConsumerState(consumer);
  assert.deepEqual(decodeConsumerState(encodedConsumer, 'S > C'), consumer);
  for (const [encoded, decode] of [
    [encodedState, (b: Buffer) => decodeStreamState(b, 'S')],
    [encodedConsumer, (b: Buffer) => decodeConsumerState(b, 'C')],
  ] as const) {
    for (let byte = 0; byte < encoded.length; byte++) {
      const damaged = Buffer.from(encoded);
      damaged[byte]! ^= 0x10;
      assert.throws(() => decode(damaged), isCorrupt, `byte ${byte}`);
    }
  }
});

test('message keys sort by stream, then sequence, for any safe sequence', () => {
  const seqs = [0, 1, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
  for (const seq of seqs) assert.equal(seqOfMessageKey(messageKey(1, seq)), seq);
  for (let i = 1; i < seqs.length; i++) assert.equal(Buffer.compare(messageKey(1, seqs[i - 1]!), messageKey(1, seqs[i]!)), -1);
  assert.equal(Buffer.compare(messageKey(1, Number.MAX_SAFE_INTEGER), messageKey(2, 0)), -1);
});

test('subject-index keys: exact subject prefixes, long subjects hashed', () => {
  const a = subjectChunkKey(subjectPrefix(1, 'a'), 3);
  const ab = subjectChunkKey(subjectPrefix(1, 'a.b'), 0);
  assert.deepEqual(parseSubjectKey(a), { subject: 'a', prefixLength: 4 + 2 + 1, chunk: 3 });
  assert.deepEqual(parseSubjectKey(ab), { subject: 'a.b', prefixLength: 4 + 2 + 3, chunk: 0 });
  assert.ok(!ab.subarray(0, 7).equals(a.subarray(0, 7)), "'a' is no prefix of 'a.b'");
  const long = 'x.'.repeat(600);
  const longKey = subjectChunkKey(subjectPrefix(1, long), 1);
  assert.equal(longKey.length, 4 + 2 + 32 + 6);
  assert.deepEqual(parseSubjectKey(longKey), { subject: undefined, prefixLength: 38, chunk: 1 });
  assert.ok(subjectPrefix(1, long).equals(subjectPrefix(1, long)));
  assert.ok(!subjectPrefix(1, long).equals(subjectPrefix(1, `${long}y`)));
});
