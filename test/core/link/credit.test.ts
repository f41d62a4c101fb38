/**
 * core/link/credit.ts: what a message costs and the per-connection byte window
 * (README "Window (credit)"), and the relationships between the named limits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from '../../../core/util/assert.ts';
import {
  batchBytes,
  CreditWindow,
  LINK_BATCH_BYTES_MAX,
  LINK_WINDOW_BYTES_DEFAULT,
  LINK_WINDOW_BYTES_MAX,
  LINK_WINDOW_BYTES_MIN,
  messageBytes,
  utf8ByteLength,
} from '../../../core/link/index.ts';
import { textMessage } from './helpers.ts';

test('message bytes = subject + headers + data, subject counted in UTF-8', () => {
  assert.equal(messageBytes(textMessage(1, 'orders.new', 'hello')), 10 + 5);
  assert.equal(messageBytes(textMessage(1, 'a', '12345', 'NATS/1.0\r\nA: b\r\n\r\n')), 1 + 5 + 18);
  assert.equal(messageBytes(textMessage(1, 'ä.€', '')), 2 + 1 + 3);
  assert.equal(batchBytes([textMessage(1, 'a', 'bb'), textMessage(2, 'cc', 'd')]), 6);
});

test('utf8ByteLength agrees with TextEncoder, surrogate pairs and lone surrogates included', () => {
  const encoder = new TextEncoder();
  for (const text of ['', 'abc', 'ä', '€', '😀', 'a😀b', '\ud800', 'x\udc00y', '\ud83d']) {
    assert.equal(utf8ByteLength(text), encoder.encode(text).length, JSON.stringify(text));
  }
});

test('window: a batch fits while unacked + batch <= window', () => {
  const credit = new CreditWindow(100);
  assert.ok(credit.canSend(60));
  credit.charge(60);
  assert.equal(credit.availableBytes, 40);
  assert.ok(credit.canSend(40));
  assert.ok(!credit.canSend(41));
  credit.charge(40);
  assert.equal(credit.availableBytes, 0);
  credit.release(60);
  assert.equal(credit.unackedBytes, 40);
  assert.ok(credit.canSend(60));
});

test('window: a batch larger than the window only when nothing is unacknowledged', () => {
  const credit = new CreditWindow(100);
  assert.ok(credit.canSend(500), 'one big message never deadlocks the link');
  credit.charge(500);
  assert.equal(credit.availableBytes, 0);
  assert.ok(!credit.canSend(1), 'nothing more until the big one is acknowledged');
  credit.release(500);
  credit.charge(1);
  assert.ok(!credit.canSend(500), 'not while something else is unacknowledged');
});

test('window: a shrink keeps what is out, and blocks until it is acknowledged', () => {
  const credit = new CreditWindow(1000);
  credit.charge(800);
  credit.setWindow(500);
  assert.equal(credit.availableBytes, 0);
  assert.ok(!credit.canSend(1));
  credit.release(400);
  assert.ok(credit.canSend(100));
  assert.ok(!credit.canSend(101));
});

test('window: misuse is a programmer error', () => {
  assert.throws(() => new CreditWindow(0), AssertionError);
  const credit = new CreditWindow(10);
  assert.throws(() => credit.release(1), AssertionError);
  credit.charge(5);
  assert.throws(() => credit.charge(6), AssertionError);
  assert.throws(() => credit.setWindow(1.5), AssertionError);
});

test('named limits keep their relationships', () => {
  assert.ok(LINK_WINDOW_BYTES_MIN <= LINK_WINDOW_BYTES_DEFAULT && LINK_WINDOW_BYTES_DEFAULT <= LINK_WINDOW_BYTES_MAX);
  assert.ok(LINK_BATCH_BYTES_MAX <= LINK_WINDOW_BYTES_DEFAULT);
});
