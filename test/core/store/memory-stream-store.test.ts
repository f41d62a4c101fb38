/** The StreamStore and JetStreamStorage contracts against the memory implementations, plus memory-only facts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryStoreMessageBytes } from '../../../core/store/accounting.ts';
import { MemoryJetStreamStorage } from '../../../core/store/memory/memory-jetstream-storage.ts';
import { MemoryStreamStore } from '../../../core/store/memory/memory-stream-store.ts';
import { message, runJetStreamStorageContract, runStreamStoreContract } from '../../contract/stream-store.contract.ts';

runStreamStoreContract(
  'MemoryStreamStore',
  async () => {
    const store = new MemoryStreamStore();
    return { store, dispose: async () => await store.close() };
  },
  { messageBytes: memoryStoreMessageBytes, propertyRuns: 200 },
);

runJetStreamStorageContract('MemoryJetStreamStorage', async () => {
  const storage = new MemoryJetStreamStorage();
  return { storage, dispose: async () => await storage.close() };
});

test('MemoryStreamStore: bytes are nats-server memstore sizes (subject + headers + payload + 16)', () => {
  const store = new MemoryStreamStore();
  store.append(message('foo', '12345'));
  store.append(message('foo', '', 'NATS/1.0\r\n\r\n'));
  assert.equal(store.state().bytes, 3 + 5 + 16 + (3 + 12 + 16));
});
