/**
 * MemoryLogStorage (hub/raft/storage.ts) against the LogStorage contract. Its
 * writes are synchronous; the harness wraps them in resolved promises, so a
 * refused write still throws synchronously, as the contract expects.
 */
import { MemoryLogStorage } from '../../../hub/raft/index.ts';
import { runLogStorageContract, type WritableLogStorage } from './log-storage.contract.ts';

function writable(storage: MemoryLogStorage): WritableLogStorage {
  return {
    initialState: () => storage.initialState(),
    entries: (lo, hi, maxBytes) => storage.entries(lo, hi, maxBytes),
    term: (index) => storage.term(index),
    firstIndex: () => storage.firstIndex(),
    lastIndex: () => storage.lastIndex(),
    snapshot: () => storage.snapshot(),
    save: (write) => {
      if (write.snapshot !== undefined) storage.applySnapshot(write.snapshot);
      storage.append(write.entries);
      if (write.hardState !== undefined) storage.setHardState(write.hardState);
      return Promise.resolve();
    },
    append: (entries) => Promise.resolve(storage.append(entries)),
    setHardState: (hardState) => Promise.resolve(storage.setHardState(hardState)),
    applySnapshot: (snapshot) => Promise.resolve(storage.applySnapshot(snapshot)),
    createSnapshot: (options) => Promise.resolve(storage.createSnapshot(options)),
    compact: (index) => Promise.resolve(storage.compact(index)),
  };
}

runLogStorageContract('MemoryLogStorage', () => Promise.resolve(writable(new MemoryLogStorage())));
