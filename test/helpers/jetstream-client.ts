/** Small helpers for tests that drive JetStream through the official @nats-io/jetstream client. */
import assert from 'node:assert/strict';
import { JetStreamApiError, type Consumer, type JsMsg } from '@nats-io/jetstream';

/** Asserts that `promise` rejects with a JetStream API error carrying `errCode` (and a description matching `description`). */
export async function rejectsWithCode(promise: Promise<unknown>, errCode: number, description?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof JetStreamApiError, `expected a JetStreamApiError, got ${String(err)}`);
    assert.equal(err.code, errCode, err.message);
    if (description !== undefined) assert.match(err.message, description);
    return true;
  });
}

/** One pull request for up to `count` messages, waiting at most `expiresMs`; returns what came. */
export async function fetchMessages(consumer: Consumer, count: number, expiresMs = 1000): Promise<JsMsg[]> {
  const out: JsMsg[] = [];
  for await (const message of await consumer.fetch({ max_messages: count, expires: expiresMs })) {
    out.push(message);
    if (out.length >= count) break;
  }
  return out;
}
