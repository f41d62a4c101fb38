import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHeaders } from '../../../core/protocol/headers.ts';
import { mergeHeaders } from '../../../core/link-host/jetstream-sink.ts';
import { OriginHeader } from '../../../hub/ingest/hub-sink.ts';

const INCARNATION = '0123456789abcdef0123456789abcdef';
const ORIGIN: [string, string][] = [
  [OriginHeader.leaf, 'gw1'],
  [OriginHeader.stream, 'ORDERS'],
  [OriginHeader.incarnation, INCARNATION],
  [OriginHeader.seq, '42'],
  [OriginHeader.time, '1700000000123456789'],
];
const message = (headers: Uint8Array | undefined) => ({ seq: 42, subject: 'orders.new', headers, data: Buffer.from('x'), timestampNs: 1_700_000_000_123_456_789n });

test('mergeHeaders: a message without headers gets exactly the origin block the general path builds', () => {
  const fast = mergeHeaders(ORIGIN, message(undefined));
  // An empty header block takes the general path (parse, merge, encode).
  const general = mergeHeaders(ORIGIN, message(Buffer.from('NATS/1.0\r\n\r\n')));
  assert.equal(fast.toString('latin1'), general.toString('latin1'));
  assert.deepEqual(parseHeaders(fast).entries, [
    [OriginHeader.leaf, 'gw1'],
    [OriginHeader.stream, 'ORDERS'],
    [OriginHeader.incarnation, INCARNATION],
    [OriginHeader.seq, '42'],
    [OriginHeader.time, '1700000000123456789'],
  ]);
});

test('mergeHeaders: the leaf headers follow the origin ones; control headers are renamed, a leaf origin header dropped', () => {
  const merged = mergeHeaders(ORIGIN, message(Buffer.from('NATS/1.0\r\nOrder-Kind: k1\r\nNats-Msg-Id: m1\r\nCanopy-Origin-Leaf: forged\r\n\r\n')));
  assert.deepEqual(parseHeaders(merged).entries.slice(4), [
    [OriginHeader.time, '1700000000123456789'],
    ['Order-Kind', 'k1'],
    ['Canopy-Origin-Nats-Msg-Id', 'm1'],
  ]);
});
