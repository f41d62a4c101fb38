/** CRC-32C against the RFC 3720 (iSCSI) appendix B.4 vectors, and incremental = one-shot. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, crc32cFinish, crc32cUpdate, CRC32C_INIT } from '../../../core/util/crc32c.ts';

test('crc32c: known vectors', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  assert.equal(crc32c(Buffer.alloc(32, 0x00)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
});

test('crc32c: any split of the input gives the same value, and a range equals a slice', () => {
  const bytes = Buffer.from(Array.from({ length: 301 }, (_, i) => (i * 7919) & 0xff));
  const whole = crc32c(bytes);
  for (let split = 0; split <= bytes.length; split += 13) {
    assert.equal(crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, bytes, 0, split), bytes, split)), whole);
  }
  assert.equal(crc32c(bytes, 5, 77), crc32c(bytes.subarray(5, 77)));
});
