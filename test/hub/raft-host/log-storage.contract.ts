/**
 * The LogStorage contract (STYLE.md §2.11 rule 7): every behaviour Raft and
 * the host rely on, written once and run against each implementation
 * (memory-log-storage.test.ts, lmdb-log-storage.test.ts). The index
 * conventions are hub/raft/storage.ts': a snapshot or dummy position at
 * firstIndex() - 1 whose term term() still answers, entries firstIndex() …
 * lastIndex(), and an empty log with firstIndex 1, lastIndex 0, term(0) = 0.
 *
 * Writes go through the host-side operations, which return a promise (durable
 * when it resolves); an invalid write is a programmer error and throws an
 * AssertionError synchronously, before anything changes.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { AssertionError } from '../../../core/util/assert.ts';
import type { ConfState, Entry, HardState, LogStorage, Snapshot } from '../../../hub/raft/index.ts';
import { confStateOf, entryBytes } from '../../../hub/raft/index.ts';

/** One Ready's writes (hub/raft/ready.ts order: snapshot, entries, hard state). */
export type ReadyWrite = { readonly snapshot?: Snapshot; readonly entries: readonly Entry[]; readonly hardState?: HardState };

/** A LogStorage with the operations the host applies, as the suite drives it. */
export type WritableLogStorage = LogStorage & {
  save(write: ReadyWrite): Promise<void>;
  append(entries: readonly Entry[]): Promise<void>;
  setHardState(hardState: HardState): Promise<void>;
  applySnapshot(snapshot: Snapshot): Promise<void>;
  createSnapshot(options: { index: number; confState: ConfState; data: Uint8Array }): Promise<Snapshot>;
  compact(index: number): Promise<void>;
};

/** Makes an empty storage; cleanup goes in `t.after`. */
export type MakeLogStorage = (t: TestContext) => Promise<WritableLogStorage>;

const VOTERS_123 = confStateOf({ voters: [1, 2, 3] });
const EMPTY = new Uint8Array(0);

export function normal(index: number, term: number, text = `e${index}t${term}`): Entry {
  return { kind: 'normal', index, term, data: new TextEncoder().encode(text) };
}

export function entryRange(from: number, to: number, term: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = from; index <= to; index++) entries.push(normal(index, term));
  return entries;
}

/** Every entry in [lo, hi) without a byte limit. */
function all(storage: LogStorage, lo: number, hi: number): readonly Entry[] {
  return storage.entries(lo, hi, Number.MAX_SAFE_INTEGER);
}

/** Everything a LogStorage answers, for comparing two of them with deepEqual. */
export function describeLogStorage(storage: LogStorage): unknown {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const terms: (number | undefined)[] = [];
  for (let index = first - 2; index <= last + 1; index++) terms.push(storage.term(index));
  return {
    first,
    last,
    terms,
    initial: storage.initialState(),
    snapshot: storage.snapshot(),
    entries: last >= first ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [],
  };
}

export function runLogStorageContract(name: string, make: MakeLogStorage): void {
  test(`${name}: an empty log has firstIndex 1, lastIndex 0 and term(0) = 0`, async (t) => {
    const storage = await make(t);
    assert.equal(storage.firstIndex(), 1);
    assert.equal(storage.lastIndex(), 0);
    assert.equal(storage.term(0), 0);
    assert.equal(storage.term(1), undefined);
    assert.deepEqual(storage.initialState(), { hardState: { term: 0, vote: 0, commit: 0 }, confState: { voters: [], learners: [] } });
    assert.equal(storage.snapshot().metadata.index, 0);
    assert.equal(storage.snapshot().metadata.term, 0);
  });

  test(`${name}: appended entries read back by index, with their terms`, async (t) => {
    const storage = await make(t);
    await storage.append([...entryRange(1, 3, 1), ...entryRange(4, 6, 2)]);
    await storage.append(entryRange(7, 8, 2));
    assert.equal(storage.firstIndex(), 1);
    assert.equal(storage.lastIndex(), 8);
    assert.deepEqual(all(storage, 1, 9), [...entryRange(1, 3, 1), ...entryRange(4, 8, 2)]);
    assert.deepEqual(all(storage, 5, 7), entryRange(5, 6, 2));
    assert.deepEqual([0, 1, 3, 4, 8, 9].map((index) => storage.term(index)), [0, 1, 1, 2, 2, undefined]);
  });

  test(`${name}: entries() stops at maxBytes but always returns at least one entry`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 5, 1));
    const size = entryBytes(normal(1, 1));
    assert.equal(storage.entries(1, 6, 0).length, 1, 'one entry even when it alone exceeds maxBytes');
    assert.equal(storage.entries(1, 6, size).length, 1);
    assert.equal(storage.entries(1, 6, 2 * size - 1).length, 1);
    assert.equal(storage.entries(1, 6, 2 * size).length, 2, 'exactly maxBytes fits');
    assert.equal(storage.entries(2, 6, 3 * size).length, 3);
    assert.equal(storage.entries(1, 6, Number.MAX_SAFE_INTEGER).length, 5);
  });

  test(`${name}: entries() outside [firstIndex, lastIndex + 1) or empty ranges are refused`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 3, 1));
    assert.throws(() => storage.entries(0, 2, 100), AssertionError);
    assert.throws(() => storage.entries(1, 5, 100), AssertionError);
    assert.throws(() => storage.entries(2, 2, 100), AssertionError);
  });

  test(`${name}: an append replaces the conflicting suffix from its first index`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 6, 1));
    await storage.append(entryRange(4, 5, 2));
    assert.equal(storage.lastIndex(), 5, 'the entries after the new ones are gone too');
    assert.deepEqual(all(storage, 1, 6), [...entryRange(1, 3, 1), ...entryRange(4, 5, 2)]);
    assert.equal(storage.term(6), undefined);
    // A longer replacement, then one that starts right after the last entry.
    await storage.append(entryRange(2, 7, 3));
    await storage.append(entryRange(8, 8, 3));
    assert.deepEqual(all(storage, 1, 9), [normal(1, 1), ...entryRange(2, 8, 3)]);
    assert.deepEqual([1, 2, 8].map((index) => storage.term(index)), [1, 3, 3]);
  });

  test(`${name}: appends that leave a gap, are not contiguous or start before the log are refused`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 3, 1));
    assert.throws(() => storage.append([normal(5, 1)]), AssertionError, 'gap');
    assert.throws(() => storage.append([normal(4, 1), normal(6, 1)]), AssertionError, 'not contiguous');
    assert.throws(() => storage.append([normal(0, 1)]), AssertionError, 'before the first index');
    assert.deepEqual(all(storage, 1, 4), entryRange(1, 3, 1), 'a refused append changed nothing');
    await storage.append([]);
    assert.equal(storage.lastIndex(), 3, 'an empty append changes nothing');
  });

  test(`${name}: the hard state is what was last set`, async (t) => {
    const storage = await make(t);
    await storage.setHardState({ term: 3, vote: 2, commit: 0 });
    await storage.setHardState({ term: 4, vote: 0, commit: 0 });
    assert.deepEqual(storage.initialState().hardState, { term: 4, vote: 0, commit: 0 });
  });

  test(`${name}: one Ready's snapshot, entries and hard state in one save`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 4, 1));
    const snapshot: Snapshot = { metadata: { index: 20, term: 3, confState: VOTERS_123 }, data: new Uint8Array([7, 7]) };
    await storage.save({ snapshot, entries: entryRange(21, 22, 3), hardState: { term: 3, vote: 1, commit: 20 } });
    assert.equal(storage.firstIndex(), 21);
    assert.equal(storage.lastIndex(), 22);
    assert.equal(storage.term(20), 3);
    assert.deepEqual(all(storage, 21, 23), entryRange(21, 22, 3));
    assert.deepEqual(storage.initialState(), { hardState: { term: 3, vote: 1, commit: 20 }, confState: VOTERS_123 });
    assert.deepEqual(storage.snapshot(), snapshot);
  });

  test(`${name}: compaction keeps the compaction point's term and drops what is before it`, async (t) => {
    const storage = await make(t);
    await storage.append([...entryRange(1, 3, 1), ...entryRange(4, 6, 2), ...entryRange(7, 8, 4)]);
    assert.throws(() => storage.compact(2), AssertionError, 'cannot compact past the snapshot (none yet)');
    const snapshot = await storage.createSnapshot({ index: 5, confState: VOTERS_123, data: new Uint8Array([1]) });
    assert.deepEqual(snapshot.metadata, { index: 5, term: 2, confState: VOTERS_123 });
    assert.equal(storage.firstIndex(), 1, 'taking a snapshot keeps the log');
    await storage.compact(4);
    assert.equal(storage.firstIndex(), 5);
    assert.equal(storage.lastIndex(), 8);
    assert.equal(storage.term(4), 2, 'term(firstIndex - 1) still answers');
    assert.equal(storage.term(3), undefined);
    assert.deepEqual([5, 6, 7, 8].map((index) => storage.term(index)), [2, 2, 4, 4]);
    assert.deepEqual(all(storage, 5, 9), [...entryRange(5, 6, 2), ...entryRange(7, 8, 4)]);
    assert.throws(() => storage.entries(4, 6, 100), AssertionError, 'compacted entries are not readable');
    assert.throws(() => storage.compact(6), AssertionError, 'cannot compact past the snapshot');
    await storage.compact(3);
    assert.equal(storage.firstIndex(), 5, 'compacting to an earlier index changes nothing');
    assert.throws(() => storage.append([normal(4, 2)]), AssertionError, 'appends before the first index are refused');
    await storage.compact(5);
    assert.equal(storage.firstIndex(), 6);
    assert.equal(storage.term(5), 2);
    await storage.append(entryRange(7, 7, 5));
    assert.deepEqual(all(storage, 6, 8), [normal(6, 2), normal(7, 5)], 'appends after compaction still truncate');
  });

  test(`${name}: compacting the whole log leaves it empty at the snapshot`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 3, 2));
    await storage.createSnapshot({ index: 3, confState: VOTERS_123, data: EMPTY });
    await storage.compact(3);
    assert.equal(storage.firstIndex(), 4);
    assert.equal(storage.lastIndex(), 3);
    assert.equal(storage.term(3), 2);
    await storage.append(entryRange(4, 4, 2));
    assert.deepEqual(all(storage, 4, 5), [normal(4, 2)]);
  });

  test(`${name}: createSnapshot refuses indexes before the snapshot or past the log`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 4, 1));
    await storage.createSnapshot({ index: 3, confState: VOTERS_123, data: EMPTY });
    assert.throws(() => storage.createSnapshot({ index: 2, confState: VOTERS_123, data: EMPTY }), AssertionError);
    assert.throws(() => storage.createSnapshot({ index: 5, confState: VOTERS_123, data: EMPTY }), AssertionError);
    assert.equal(storage.snapshot().metadata.index, 3);
  });

  test(`${name}: installing a snapshot replaces the whole log`, async (t) => {
    const storage = await make(t);
    await storage.append(entryRange(1, 12, 1));
    const snapshot: Snapshot = { metadata: { index: 10, term: 4, confState: confStateOf({ voters: [1, 2], learners: [5] }) }, data: new Uint8Array([1, 2, 3]) };
    await storage.applySnapshot(snapshot);
    assert.equal(storage.firstIndex(), 11);
    assert.equal(storage.lastIndex(), 10, 'entries after the snapshot are dropped too');
    assert.equal(storage.term(10), 4);
    assert.equal(storage.term(11), undefined);
    assert.deepEqual(storage.snapshot(), snapshot);
    assert.deepEqual(storage.initialState().confState, snapshot.metadata.confState);
    await storage.append(entryRange(11, 12, 4));
    assert.deepEqual(all(storage, 11, 13), entryRange(11, 12, 4));
    assert.throws(
      () => storage.applySnapshot({ metadata: { index: 9, term: 4, confState: VOTERS_123 }, data: EMPTY }),
      AssertionError,
      'an older snapshot is refused',
    );
  });

  test(`${name}: configuration entries keep their change and context`, async (t) => {
    const storage = await make(t);
    const entries: Entry[] = [
      { kind: 'conf-change', index: 1, term: 1, change: { type: 'add-voter', nodeId: 1, context: EMPTY } },
      { kind: 'conf-change', index: 2, term: 1, change: { type: 'add-learner', nodeId: 9007199254740991, context: new Uint8Array([9, 8]) } },
      { kind: 'conf-change', index: 3, term: 2, change: { type: 'remove', nodeId: 2, context: EMPTY } },
      { kind: 'normal', index: 4, term: 2, data: EMPTY },
    ];
    await storage.append(entries);
    assert.deepEqual(all(storage, 1, 5), entries);
  });

  test(`${name}: writes are visible to reads before their promise resolves`, async (t) => {
    // The node reads storage inside step() while the host's write is in flight.
    const storage = await make(t);
    const written = storage.save({ entries: entryRange(1, 3, 1), hardState: { term: 1, vote: 1, commit: 0 } });
    assert.equal(storage.lastIndex(), 3);
    assert.deepEqual(all(storage, 1, 4), entryRange(1, 3, 1));
    assert.equal(storage.initialState().hardState.vote, 1);
    await written;
    assert.deepEqual(all(storage, 1, 4), entryRange(1, 3, 1));
  });
}
