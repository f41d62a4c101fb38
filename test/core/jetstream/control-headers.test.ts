import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsHeader } from '../../../core/jetstream/stream.ts';

// Stream.storeMessage skips its header checks when a block has no line starting "Nats-":
// a control header named otherwise would never be checked.
test('every JetStream control header the stream acts on starts with Nats-', () => {
  for (const name of Object.values(JsHeader)) assert.ok(name.startsWith('Nats-'), name);
});
