import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingBuffer } from '../../../core/util/ring-buffer.ts';

test('RingBuffer keeps the newest `capacity` entries, oldest first', () => {
  const ring = new RingBuffer<number>(3);
  assert.deepEqual(ring.toArray(), []);
  ring.push(1);
  ring.push(2);
  assert.deepEqual(ring.toArray(), [1, 2]);
  assert.equal(ring.size, 2);
  for (let i = 3; i <= 7; i++) ring.push(i);
  assert.deepEqual(ring.toArray(), [5, 6, 7]);
  assert.equal(ring.size, 3);
  assert.throws(() => new RingBuffer(0), RangeError);
});
