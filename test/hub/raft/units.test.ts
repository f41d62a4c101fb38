/**
 * Unit tests of hub/raft's small pure pieces and of its named limits (house
 * rule 4): the seeded PRNG, quorum arithmetic, the in-flight window, the
 * LogStorage contract of MemoryLogStorage, configuration changes, config
 * validation, and the Ready/advance contract of RaftNode.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from '../../../core/util/assert.ts';
import { SeededPrng } from '../../../core/util/prng.ts';
import type { Entry, Message, RaftConfig } from '../../../hub/raft/index.ts';
import {
  applyConfChange,
  confStateOf,
  MemoryLogStorage,
  RAFT_CONFIG_DEFAULTS,
  RAFT_INFLIGHT_MSGS_MAX,
  RAFT_PENDING_READS_MAX,
  raftConfigProblem,
  RaftNode,
  silentRaftLogger,
} from '../../../hub/raft/index.ts';
import { confChangeRefusal } from '../../../hub/raft/conf-state.ts';
import { Inflights } from '../../../hub/raft/progress.ts';
import { committedIndex, hasQuorum, voteResult } from '../../../hub/raft/quorum.ts';

const EMPTY = new Uint8Array(0);

function normal(index: number, term: number, text = ''): Entry {
  return { kind: 'normal', index, term, data: new TextEncoder().encode(text) };
}

test('prng: same seed, same sequence; bounds are inclusive and checked', () => {
  const a = new SeededPrng(42);
  const b = new SeededPrng(42);
  for (let i = 0; i < 100; i++) assert.equal(a.nextU32(), b.nextU32());
  assert.notEqual(new SeededPrng(1).nextU32(), new SeededPrng(2).nextU32());
  const prng = new SeededPrng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const value = prng.between(3, 7);
    assert.ok(value >= 3 && value <= 7);
    seen.add(value);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6, 7]);
  assert.throws(() => prng.between(5, 4), RangeError);
  assert.throws(() => new SeededPrng(1.5), RangeError);
});

test('quorum: commit index is the majority-th highest match', () => {
  const matches = new Map([
    [1, 9],
    [2, 5],
    [3, 7],
    [4, 2],
    [5, 7],
  ]);
  assert.equal(
    committedIndex([1, 2, 3, 4, 5], (id) => matches.get(id) ?? 0),
    7,
  );
  assert.equal(
    committedIndex([1, 2, 4], (id) => matches.get(id) ?? 0),
    5,
  );
  assert.equal(voteResult([1, 2, 3], new Map([[1, true]])), 'pending');
  assert.equal(voteResult([1, 2, 3], new Map([[1, true], [2, true]])), 'won');
  assert.equal(voteResult([1, 2, 3], new Map([[1, true], [2, false], [3, false]])), 'lost');
  assert.equal(voteResult([1, 2, 3], new Map([[9, true], [1, true]])), 'pending', 'non-voters do not count');
  assert.ok(hasQuorum([1, 2, 3, 4], new Set([1, 2, 3])));
  assert.ok(!hasQuorum([1, 2, 3, 4], new Set([1, 2])));
});

test(`inflights: at most RAFT_INFLIGHT_MSGS_MAX (${RAFT_INFLIGHT_MSGS_MAX}) unacknowledged appends`, () => {
  const inflights = new Inflights(RAFT_INFLIGHT_MSGS_MAX);
  for (let i = 1; i <= RAFT_INFLIGHT_MSGS_MAX; i++) inflights.add(i * 10);
  assert.ok(inflights.isFull());
  assert.throws(() => inflights.add(999), AssertionError);
  inflights.freeLE(25);
  assert.equal(inflights.count, RAFT_INFLIGHT_MSGS_MAX - 2);
  inflights.freeFirstOne();
  assert.equal(inflights.count, RAFT_INFLIGHT_MSGS_MAX - 3);
  inflights.add(5000);
  inflights.freeLE(Number.MAX_SAFE_INTEGER);
  assert.equal(inflights.count, 0);
});

test('MemoryLogStorage: the LogStorage contract', () => {
  const storage = MemoryLogStorage.bootstrap([1, 2, 3]);
  assert.equal(storage.firstIndex(), 1);
  assert.equal(storage.lastIndex(), 3);
  assert.equal(storage.term(0), 0);
  assert.equal(storage.term(3), 1);
  assert.equal(storage.term(4), undefined);
  assert.deepEqual(storage.initialState().hardState, { term: 1, vote: 0, commit: 3 });
  storage.append([normal(4, 2, 'a'), normal(5, 2, 'b'), normal(6, 2, 'c')]);
  // maxBytes caps the batch but at least one entry is always returned.
  assert.equal(storage.entries(4, 7, 1).length, 1);
  assert.equal(storage.entries(4, 7, Number.MAX_SAFE_INTEGER).length, 3);
  // A follower's truncation: appending at 5 drops the old 5 and 6.
  storage.append([normal(5, 3, 'x')]);
  assert.equal(storage.lastIndex(), 5);
  assert.equal(storage.term(5), 3);
  assert.throws(() => storage.append([normal(9, 3)]), AssertionError, 'gaps are refused');
  const snapshot = storage.createSnapshot({ index: 4, confState: confStateOf({ voters: [1, 2, 3] }), data: EMPTY });
  assert.equal(snapshot.metadata.term, 2);
  storage.compact(4);
  assert.equal(storage.firstIndex(), 5);
  assert.equal(storage.term(4), 2, 'the compaction point keeps its term');
  assert.equal(storage.term(3), undefined);
  assert.throws(() => storage.entries(3, 5, 100), AssertionError);
  assert.throws(() => storage.compact(5), AssertionError, 'cannot compact past the snapshot');
  storage.applySnapshot({ metadata: { index: 10, term: 4, confState: confStateOf({ voters: [1, 2] }) }, data: EMPTY });
  assert.equal(storage.firstIndex(), 11);
  assert.equal(storage.lastIndex(), 10);
  assert.equal(storage.term(10), 4);
});

test('configuration changes: one voter at a time, total and pure', () => {
  const base = confStateOf({ voters: [1, 2, 3] });
  const withLearner = applyConfChange(base, { type: 'add-learner', nodeId: 4, context: EMPTY });
  assert.deepEqual(withLearner, { voters: [1, 2, 3], learners: [4] });
  assert.deepEqual(applyConfChange(withLearner, { type: 'add-voter', nodeId: 4, context: EMPTY }), { voters: [1, 2, 3, 4], learners: [] });
  assert.deepEqual(applyConfChange(base, { type: 'remove', nodeId: 2, context: EMPTY }), { voters: [1, 3], learners: [] });
  assert.equal(applyConfChange(base, { type: 'add-voter', nodeId: 2, context: EMPTY }), base, 'no-op changes return the same object');
  const single = confStateOf({ voters: [1] });
  assert.equal(confChangeRefusal(single, { type: 'remove', nodeId: 1, context: EMPTY }), 'change has no effect');
  assert.equal(confChangeRefusal(base, { type: 'add-learner', nodeId: 0, context: EMPTY }), 'bad node id');
});

test('config validation rejects unusable settings', () => {
  const good: RaftConfig = { ...RAFT_CONFIG_DEFAULTS, id: 1 };
  assert.equal(raftConfigProblem(good), undefined);
  assert.match(raftConfigProblem({ ...good, id: 0 }) ?? '', /id/);
  assert.match(raftConfigProblem({ ...good, electionTicks: 1, heartbeatTicks: 1 }) ?? '', /electionTicks/);
  assert.match(raftConfigProblem({ ...good, inflightMsgsMax: 0 }) ?? '', /inflightMsgsMax/);
  assert.throws(
    () => new RaftNode({ config: { ...good, heartbeatTicks: 0 }, storage: new MemoryLogStorage(), prng: new SeededPrng(1), logger: silentRaftLogger }),
    RangeError,
  );
});

function singleNode(): { node: RaftNode; storage: MemoryLogStorage } {
  const storage = MemoryLogStorage.bootstrap([1]);
  const node = new RaftNode({ config: { ...RAFT_CONFIG_DEFAULTS, id: 1 }, storage, prng: new SeededPrng(1), logger: silentRaftLogger });
  return { node, storage };
}

/** Runs the host loop once: persist, (send), apply, advance. */
function drain(node: RaftNode, storage: MemoryLogStorage): Message[] {
  const messages: Message[] = [];
  while (node.hasReady()) {
    const ready = node.ready();
    if (ready.snapshot !== undefined) storage.applySnapshot(ready.snapshot);
    storage.append(ready.entries);
    if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
    messages.push(...ready.messages);
    node.advance(ready);
  }
  return messages;
}

test('Ready/advance: one Ready at a time, frozen, and nothing counts as durable before advance', () => {
  const { node, storage } = singleNode();
  node.campaign();
  const first = node.ready();
  assert.ok(Object.isFrozen(first));
  assert.ok(Object.isFrozen(first.entries));
  assert.equal(first.mustSync, true, 'a new term and vote must be synced');
  assert.equal(node.hasReady(), false, 'no second Ready before advance');
  assert.throws(() => node.ready(), AssertionError);
  storage.append(first.entries);
  if (first.hardState !== undefined) storage.setHardState(first.hardState);
  node.advance(first);
  drain(node, storage);
  assert.equal(node.status().role, 'leader');
  const result = node.propose(new TextEncoder().encode('x'));
  assert.ok(result.isAccepted);
  // A single voter commits only what it has persisted: the entry is not
  // committed until the Ready carrying it has been advanced.
  const withEntry = node.ready();
  assert.equal(withEntry.entries.length, 1);
  assert.equal(withEntry.committedEntries.length, 0);
  storage.append(withEntry.entries);
  node.advance(withEntry);
  const committed = node.ready();
  assert.deepEqual(
    committed.committedEntries.map((entry) => entry.index),
    [result.index],
  );
  assert.equal(committed.mustSync, false, 'only the commit index changed');
  node.advance(committed);
});

test(`ReadIndex: a leader holds at most RAFT_PENDING_READS_MAX (${RAFT_PENDING_READS_MAX}) unconfirmed reads`, () => {
  const storage = MemoryLogStorage.bootstrap([1, 2, 3]);
  const node = new RaftNode({ config: { ...RAFT_CONFIG_DEFAULTS, id: 1, preVote: false }, storage, prng: new SeededPrng(1), logger: silentRaftLogger });
  node.campaign();
  drain(node, storage);
  node.step({ type: 'vote-resp', from: 2, to: 1, term: 2, reject: false });
  drain(node, storage);
  assert.equal(node.status().role, 'leader');
  for (let i = 0; i < RAFT_PENDING_READS_MAX; i++) assert.equal(node.readIndex(i), true);
  assert.equal(node.readIndex(RAFT_PENDING_READS_MAX), false, 'the next read is refused');
});

test('a message for another replica id is dropped, never acted on', () => {
  const { node, storage } = singleNode();
  drain(node, storage);
  node.step({ type: 'vote', from: 2, to: 99, term: 50, index: 100, logTerm: 50, force: false });
  assert.equal(node.status().term, 1);
  assert.equal(node.hasReady(), false);
});
