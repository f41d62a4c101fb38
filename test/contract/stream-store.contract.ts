/**
 * The StreamStore and JetStreamStorage contracts (STYLE.md §2.11 rule 7): every
 * behaviour written once, run against the memory and the LMDB implementations
 * (test/core/store/*.test.ts call these functions).
 *
 * Most cases run twice: "in memory" straight after the writes, and "after
 * flushed()", because the LMDB store answers from its in-memory overlay before
 * a commit and from disk after it, and both must say the same thing. A
 * model-based property test then compares random operation sequences, with
 * random flush points, against a plain reference model.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  StoreError,
  type ConsumerStateRecord,
  type JetStreamStorage,
  type NewMessage,
  type PurgeOptions,
  type StoredMessage,
  type StreamStore,
  type SubjectFilter,
} from '../../core/jetstream/store.ts';
import { subjectMatchesFilter } from '../../core/subjects/subject.ts';
import { fastCheckParameters } from '../core/subjects/fast-check-parameters.ts';

/**
 * The points of one commit of a store that commits asynchronously (LMDB), so that reads can be
 * checked at each of them. A store without them (memory) is checked at event turns instead.
 */
export type CommitPoints = {
  /** Resolves once the writes made so far are in a commit in flight (which may or may not have landed yet). */
  inFlight(): Promise<void>;
  /**
   * Resolves true once the commit in flight (or starting within an event turn) is visible to new
   * read transactions while the store has not been told yet: the caller then runs inside that
   * window until it yields. False when nothing was in flight, or the store was told first.
   */
  landed(): Promise<boolean>;
  /** Resolves once the store has been told that the commit in flight is durable. */
  committed(): Promise<void>;
};

/** A fresh, empty store, how to dispose of it, and its commit points if it has any. */
export type StoreFactory = () => Promise<{ store: StreamStore; dispose: () => Promise<void>; commitPoints?: CommitPoints }>;

/** Without commit points: every point is one event turn. */
const EVENT_TURN_POINTS: CommitPoints = {
  inFlight: async () => await tick(),
  landed: async () => {
    await tick();
    return false;
  },
  committed: async () => await tick(),
};

async function tick(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

export type StreamStoreContractOptions = {
  /** The implementation's per-message `bytes` accounting (nats-server file or memory formula). */
  readonly messageBytes: (subjectLength: number, headersLength: number, dataLength: number) => number;
  /** Property-test runs (each builds a store). */
  readonly propertyRuns?: number;
};

let clock = 1_700_000_000_000_000_000n;

/** A message with a fresh timestamp. */
export function message(subject: string, data = `data of ${subject}`, headers?: string): NewMessage {
  clock += 1000n;
  return {
    subject,
    headers: headers === undefined ? undefined : Buffer.from(headers),
    data: Buffer.from(data),
    timestampNs: clock,
  };
}

type Step = (store: StreamStore) => Promise<void>;
const SYNC_POINTS: readonly (readonly [string, Step])[] = [
  ['in memory', async () => {}],
  ['after flushed()', async (store) => await store.flushed()],
];

function seqsOf(messages: readonly (StoredMessage | undefined)[]): (number | undefined)[] {
  return messages.map((m) => m?.seq);
}

/** Appends `subjects` in order; returns their sequences. */
function appendAll(store: StreamStore, subjects: readonly string[]): number[] {
  return subjects.map((subject, i) => store.append(message(subject, `m${i + 1}`)));
}

export function runStreamStoreContract(name: string, makeStore: StoreFactory, options: StreamStoreContractOptions): void {
  /** Runs `body` against a fresh store, once per sync point. */
  function storeTest(title: string, body: (store: StreamStore, sync: Step) => Promise<void> | void): void {
    for (const [syncName, sync] of SYNC_POINTS) {
      test(`${title} (${syncName})`, async (t) => {
        const { store, dispose } = await makeStore();
        t.after(dispose);
        await body(store, sync);
      });
    }
  }

  describe(`${name}: StreamStore contract`, () => {
    storeTest('a new stream is empty', async (store, sync) => {
      await sync(store);
      assert.deepEqual(store.state(), {
        messages: 0,
        bytes: 0,
        firstSeq: 0,
        firstTimestampNs: 0n,
        lastSeq: 0,
        lastTimestampNs: 0n,
        numDeleted: 0,
        numSubjects: 0,
      });
      assert.equal(store.load(1), undefined);
      assert.equal(store.load(0), undefined);
      assert.equal(store.loadNext('>', 0), undefined);
      assert.equal(store.loadLast('>'), undefined);
      assert.equal(store.loadLast('foo'), undefined);
      assert.equal(store.countPending('>', 0), 0);
      assert.equal(store.subjectCounts('>').size, 0);
      assert.deepEqual(store.deletedSeqs(), []);
      assert.equal(store.remove(1), false);
    });

    storeTest('append assigns 1, 2, 3 and load returns exactly what was stored', async (store, sync) => {
      const first = message('orders.new', 'one');
      const second = message('orders.new', 'two', 'NATS/1.0\r\nX: 1\r\n\r\n');
      const third = message('orders.old', '');
      assert.deepEqual([store.append(first), store.append(second), store.append(third)], [1, 2, 3]);
      await sync(store);
      const loaded = store.load(2)!;
      assert.equal(loaded.seq, 2);
      assert.equal(loaded.subject, 'orders.new');
      assert.equal(loaded.data.toString(), 'two');
      assert.equal(loaded.headers?.toString(), 'NATS/1.0\r\nX: 1\r\n\r\n');
      assert.equal(loaded.timestampNs, second.timestampNs);
      assert.equal(store.load(1)!.headers, undefined);
      assert.equal(store.load(3)!.data.length, 0);
      assert.equal(store.load(4), undefined);
      const state = store.state();
      assert.equal(state.messages, 3);
      assert.equal(state.firstSeq, 1);
      assert.equal(state.lastSeq, 3);
      assert.equal(state.firstTimestampNs, first.timestampNs);
      assert.equal(state.lastTimestampNs, third.timestampNs);
      assert.equal(state.numSubjects, 2);
      assert.equal(state.numDeleted, 0);
    });

    storeTest('stored and returned buffers are copies', async (store, sync) => {
      const input = message('copy', 'abc', 'NATS/1.0\r\n\r\n');
      store.append(input);
      input.data.fill(0x21);
      input.headers!.fill(0x21);
      await sync(store);
      const loaded = store.load(1)!;
      assert.equal(loaded.data.toString(), 'abc');
      loaded.data.fill(0x22);
      loaded.headers!.fill(0x22);
      assert.equal(store.load(1)!.data.toString(), 'abc');
      assert.equal(store.load(1)!.headers!.toString(), 'NATS/1.0\r\n\r\n');
    });

    storeTest('an empty header block is stored as no headers', async (store, sync) => {
      store.append({ ...message('h'), headers: Buffer.alloc(0) });
      await sync(store);
      assert.equal(store.load(1)!.headers, undefined);
    });

    storeTest('bytes follow the per-message accounting', async (store, sync) => {
      const headers = 'NATS/1.0\r\nK: V\r\n\r\n';
      store.append(message('a.b', '12345'));
      store.append(message('subject.longer', '', headers));
      await sync(store);
      const second = options.messageBytes(14, headers.length, 0);
      assert.equal(store.state().bytes, options.messageBytes(3, 0, 5) + second);
      store.remove(1);
      await sync(store);
      assert.equal(store.state().bytes, second);
      store.purge({});
      await sync(store);
      assert.equal(store.state().bytes, 0);
    });

    storeTest('remove of first, middle and last', async (store, sync) => {
      appendAll(store, ['a', 'b', 'c', 'd', 'e']);
      await sync(store);
      assert.equal(store.remove(3), true);
      assert.equal(store.remove(3), false);
      await sync(store);
      assert.deepEqual(store.deletedSeqs(), [3]);
      assert.equal(store.state().numDeleted, 1);
      assert.equal(store.remove(1), true);
      await sync(store);
      assert.equal(store.state().firstSeq, 2);
      assert.equal(store.state().firstTimestampNs, store.load(2)!.timestampNs);
      assert.deepEqual(store.deletedSeqs(), [3]);
      assert.equal(store.remove(5), true);
      await sync(store);
      let state = store.state();
      assert.equal(state.lastSeq, 5, 'lastSeq stays after removing the last message');
      assert.equal(state.messages, 2);
      assert.deepEqual(store.deletedSeqs(), [3, 5]);
      assert.equal(state.numDeleted, 2);
      assert.equal(store.remove(0), false);
      assert.equal(store.remove(6), false);
      assert.equal(store.append(message('f')), 6, 'a removed last sequence is never reused');
      await sync(store);
      state = store.state();
      assert.equal(state.lastSeq, 6);
      assert.deepEqual(seqsOf([store.load(2), store.load(4), store.load(6)]), [2, 4, 6]);
      assert.equal(store.load(5), undefined);
    });

    storeTest('removing every message leaves firstSeq = lastSeq + 1', async (store, sync) => {
      appendAll(store, ['a', 'b', 'c']);
      await sync(store);
      for (const seq of [2, 1, 3]) assert.equal(store.remove(seq), true);
      await sync(store);
      const state = store.state();
      assert.equal(state.messages, 0);
      assert.equal(state.firstSeq, 4);
      assert.equal(state.lastSeq, 3);
      assert.equal(state.numDeleted, 0);
      assert.equal(state.numSubjects, 0);
      assert.equal(state.firstTimestampNs, 0n);
      assert.deepEqual(store.deletedSeqs(), []);
      assert.equal(store.append(message('d')), 4);
      await sync(store);
      assert.equal(store.state().firstSeq, 4);
    });

    storeTest('remove with erase takes the message away', async (store, sync) => {
      appendAll(store, ['secret', 'other']);
      await sync(store);
      assert.equal(store.remove(1, { erase: true }), true);
      await sync(store);
      assert.equal(store.load(1), undefined);
      assert.equal(store.state().messages, 1);
      assert.equal(store.remove(1, { erase: true }), false);
      store.append(message('secret', 'again'));
      assert.equal(store.remove(3, { erase: true }), true);
      await sync(store);
      assert.equal(store.load(3), undefined);
      assert.equal(store.state().numSubjects, 1);
    });

    storeTest('loadNext with literal, wildcard and list filters', async (store, sync) => {
      appendAll(store, ['a.1', 'b.1', 'a.2', 'c', 'b.2', 'a.1']);
      store.remove(3);
      await sync(store);
      const next = (filter: SubjectFilter, from: number): number | undefined => store.loadNext(filter, from)?.seq;
      assert.equal(next('>', 0), 1);
      assert.equal(next('', 2), 2);
      assert.equal(next('>', 3), 4, 'skips a removed message');
      assert.equal(next('a.1', 2), 6);
      assert.equal(next('a.*', 2), 6);
      assert.equal(next('a.>', 1), 1);
      assert.equal(next('*.2', 0), 5);
      assert.equal(next('b.*', 3), 5);
      assert.equal(next(['c', 'b.2'], 0), 4);
      assert.equal(next(['c', 'b.*'], 5), 5);
      assert.equal(next(['zz', 'a.>'], 2), 6);
      assert.equal(next([], 4), 4, 'an empty list matches everything');
      assert.equal(next('nope', 0), undefined);
      assert.equal(next('>', 7), undefined);
      assert.equal(next('a.1', 7), undefined);
      store.remove(1);
      await sync(store);
      assert.equal(next('a.1', 0), 6, 'starts at firstSeq');
    });

    storeTest('loadLast with literal, wildcard and list filters', async (store, sync) => {
      appendAll(store, ['a.1', 'b.1', 'a.2', 'a.1', 'b.2']);
      await sync(store);
      const last = (filter: SubjectFilter): number | undefined => store.loadLast(filter)?.seq;
      assert.equal(last('>'), 5);
      assert.equal(last(''), 5);
      assert.equal(last('a.1'), 4);
      assert.equal(last('a.*'), 4);
      assert.equal(last('*.1'), 4);
      assert.equal(last(['a.2', 'b.1'])!, 3);
      assert.equal(last(['a.2', 'b.>'])!, 5);
      assert.equal(last('zz'), undefined);
      store.remove(4);
      store.remove(5);
      await sync(store);
      assert.equal(last('a.1'), 1, 'after removing the newest, the previous one');
      assert.equal(last('>'), 3);
      assert.equal(last('b.*'), 2);
    });

    storeTest('countPending by filter and start sequence', async (store, sync) => {
      appendAll(store, ['a', 'b', 'a', 'c.x', 'a', 'c.y', 'b']);
      store.remove(3);
      await sync(store);
      assert.equal(store.countPending('>', 0), 6);
      assert.equal(store.countPending('>', 1), 6);
      assert.equal(store.countPending('>', 3), 4);
      assert.equal(store.countPending('>', 4), 4);
      assert.equal(store.countPending('>', 8), 0);
      assert.equal(store.countPending('a', 0), 2);
      assert.equal(store.countPending('a', 2), 1);
      assert.equal(store.countPending('c.*', 5), 1);
      assert.equal(store.countPending(['a', 'b'], 2), 3);
      assert.equal(store.countPending(['a', 'c.>'], 0), 4);
      assert.equal(store.countPending(['c.>', '*.x'], 0), 2, 'overlapping list members count a message once');
      assert.equal(store.countPending('nope', 0), 0);
    });

    storeTest('subjectCounts with wildcards, and numSubjects', async (store, sync) => {
      appendAll(store, ['a.1', 'a.2', 'a.1', 'b.1', 'a.1.x']);
      await sync(store);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['a.1', 2], ['a.1.x', 1], ['a.2', 1], ['b.1', 1]]);
      assert.deepEqual(sortedEntries(store.subjectCounts('a.*')), [['a.1', 2], ['a.2', 1]]);
      assert.deepEqual(sortedEntries(store.subjectCounts('a.>')), [['a.1', 2], ['a.1.x', 1], ['a.2', 1]]);
      assert.deepEqual(sortedEntries(store.subjectCounts('*.1')), [['a.1', 2], ['b.1', 1]]);
      assert.deepEqual(sortedEntries(store.subjectCounts('a.1')), [['a.1', 2]]);
      assert.deepEqual(sortedEntries(store.subjectCounts(['b.1', 'a.2'])), [['a.2', 1], ['b.1', 1]]);
      assert.deepEqual(sortedEntries(store.subjectCounts('zz')), []);
      assert.equal(store.state().numSubjects, 4);
      store.remove(2);
      store.remove(1);
      await sync(store);
      assert.deepEqual(sortedEntries(store.subjectCounts('a.*')), [['a.1', 1]]);
      assert.equal(store.state().numSubjects, 3);
      store.append(message('a.2'));
      await sync(store);
      assert.equal(store.state().numSubjects, 4);
    });

    storeTest('purge everything keeps lastSeq', async (store, sync) => {
      appendAll(store, ['a', 'b', 'c', 'd']);
      await sync(store);
      assert.equal(store.purge({}), 4);
      await sync(store);
      const state = store.state();
      assert.deepEqual([state.messages, state.bytes, state.firstSeq, state.lastSeq, state.numSubjects], [0, 0, 5, 4, 0]);
      assert.equal(state.firstTimestampNs, 0n);
      assert.notEqual(state.lastTimestampNs, 0n);
      assert.equal(store.load(2), undefined);
      assert.equal(store.loadLast('a'), undefined);
      assert.equal(store.subjectCounts('>').size, 0);
      assert.equal(store.append(message('e')), 5);
      await sync(store);
      assert.equal(store.state().firstSeq, 5);
      assert.equal(store.purge({ subject: '>' }), 1, "subject '>' is everything");
      assert.equal(store.purge({ seq: 1 }), 0, 'seq 1 is no bound: purge everything (nothing left)');
    });

    storeTest('purge of a new stream', async (store, sync) => {
      assert.equal(store.purge({}), 0);
      await sync(store);
      assert.deepEqual([store.state().firstSeq, store.state().lastSeq], [1, 0]);
      assert.equal(store.append(message('a')), 1);
    });

    storeTest('purge {seq} compacts below seq', async (store, sync) => {
      appendAll(store, ['a', 'b', 'a', 'c', 'd', 'e']);
      store.remove(4);
      await sync(store);
      assert.equal(store.purge({ seq: 1 }), 5, 'seq 1 means no bound');
      appendAll(store, ['a', 'b', 'a', 'c', 'd', 'e']);
      store.remove(10);
      await sync(store);
      assert.equal(store.purge({ seq: 11 }), 3);
      await sync(store);
      assert.equal(store.state().firstSeq, 11);
      assert.equal(store.state().messages, 2);
      assert.equal(store.purge({ seq: 5 }), 0, 'below firstSeq: nothing');
      assert.equal(store.purge({ seq: 11 }), 0);
      store.remove(11);
      await sync(store);
      assert.equal(store.purge({ seq: 12 }), 0);
      assert.equal(store.state().firstSeq, 12);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['e', 1]]);
      assert.equal(store.state().numSubjects, 1);
    });

    storeTest('purge {seq} past the end moves the next sequence', async (store, sync) => {
      appendAll(store, ['a', 'b']);
      await sync(store);
      assert.equal(store.purge({ seq: 100 }), 2);
      await sync(store);
      const state = store.state();
      assert.deepEqual([state.messages, state.firstSeq, state.lastSeq], [0, 100, 99]);
      assert.equal(store.append(message('c')), 100);
      await sync(store);
      assert.deepEqual([store.state().firstSeq, store.state().lastSeq], [100, 100]);
      assert.equal(store.load(100)?.subject, 'c');
    });

    storeTest('purge {seq} where every message at or above seq is gone empties the stream', async (store, sync) => {
      appendAll(store, ['a', 'b', 'c']);
      store.remove(3);
      await sync(store);
      assert.equal(store.purge({ seq: 3 }), 2);
      await sync(store);
      assert.deepEqual([store.state().messages, store.state().firstSeq, store.state().lastSeq], [0, 4, 3]);
    });

    storeTest('purge {keep} keeps the newest messages', async (store, sync) => {
      appendAll(store, ['a', 'b', 'a', 'c', 'd']);
      await sync(store);
      assert.equal(store.purge({ keep: 5 }), 0);
      assert.equal(store.purge({ keep: 9 }), 0);
      assert.equal(store.purge({ keep: 2 }), 3);
      await sync(store);
      assert.deepEqual([store.state().messages, store.state().firstSeq], [2, 4]);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['c', 1], ['d', 1]]);
      assert.equal(store.state().numSubjects, 2);
    });

    storeTest('purge {keep} counts live messages, not sequences', async (store, sync) => {
      appendAll(store, ['a', 'b', 'c', 'd', 'e']);
      store.remove(4);
      await sync(store);
      assert.equal(store.purge({ keep: 2 }), 2);
      await sync(store);
      assert.deepEqual(seqsOf([store.loadNext('>', 0), store.loadLast('>')]), [3, 5]);
    });

    storeTest('purge {subject}', async (store, sync) => {
      appendAll(store, ['a', 'b', 'a', 'c', 'a']);
      await sync(store);
      assert.equal(store.purge({ subject: 'a' }), 3);
      await sync(store);
      assert.deepEqual([store.state().messages, store.state().firstSeq, store.state().lastSeq], [2, 2, 5]);
      assert.deepEqual(store.deletedSeqs(), [3, 5]);
      assert.equal(store.state().numSubjects, 2);
      assert.equal(store.loadLast('a'), undefined);
      assert.equal(store.purge({ subject: 'a' }), 0);
    });

    storeTest('purge {subject, seq} only below seq', async (store, sync) => {
      appendAll(store, ['a', 'b', 'a', 'c', 'a']);
      await sync(store);
      assert.equal(store.purge({ subject: 'a', seq: 5 }), 2);
      await sync(store);
      assert.deepEqual(store.deletedSeqs(), [3]);
      assert.equal(store.state().firstSeq, 2);
      assert.equal(store.loadLast('a')?.seq, 5);
      assert.equal(store.purge({ subject: 'a', seq: 1 }), 1, 'seq 1 is no bound');
    });

    storeTest('purge {subject, keep} and {subject, seq, keep}', async (store, sync) => {
      appendAll(store, ['a', 'a', 'b', 'a', 'a', 'a']);
      await sync(store);
      assert.equal(store.purge({ subject: 'a', keep: 3 }), 2);
      await sync(store);
      assert.deepEqual(seqsOf([store.loadNext('a', 0)]), [4]);
      assert.equal(store.purge({ subject: 'a', keep: 3 }), 0);
      // nats-server: at most (total - keep) of the matching messages, and only those below seq.
      assert.equal(store.purge({ subject: 'a', seq: 6, keep: 1 }), 2);
      await sync(store);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['a', 1], ['b', 1]]);
      assert.equal(store.loadLast('a')?.seq, 6);
    });

    storeTest('purge with a wildcard subject', async (store, sync) => {
      appendAll(store, ['x.1', 'y.1', 'x.2', 'x.2.z', 'y.2']);
      await sync(store);
      assert.equal(store.purge({ subject: 'x.*' }), 2);
      await sync(store);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['x.2.z', 1], ['y.1', 1], ['y.2', 1]]);
      assert.equal(store.purge({ subject: '*.>', keep: 1 }), 2);
      await sync(store);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['y.2', 1]]);
      assert.equal(store.state().firstSeq, 5);
    });

    storeTest('sequences across subject-index chunks and the 2^32 boundary', async (store, sync) => {
      for (const base of [65530, 2 ** 32 - 3]) {
        store.purge({ seq: base });
        for (let i = 0; i < 10; i++) assert.equal(store.append(message(i % 3 === 0 ? 'k.a' : 'k.b', `v${i}`)), base + i);
        await sync(store);
        assert.equal(store.countPending('k.b', base + 2), 5);
        assert.equal(store.countPending('k.a', base + 7), 1);
        assert.equal(store.loadNext('k.a', base + 4)?.seq, base + 6);
        assert.equal(store.loadLast('k.b')?.seq, base + 8);
        assert.equal(store.load(base + 9)?.data.toString(), 'v9');
        assert.deepEqual(sortedEntries(store.subjectCounts('k.*')), [['k.a', 4], ['k.b', 6]]);
        assert.equal(store.purge({ subject: 'k.b', seq: base + 7 }), 4);
        await sync(store);
        assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['k.a', 4], ['k.b', 2]]);
      }
    });

    storeTest('removals and purges while a commit is in flight', async (store, sync) => {
      appendAll(store, ['a', 'b', 'a', 'b', 'a']);
      await tick(); // the commit of 1-5 starts
      assert.equal(store.remove(3), true);
      assert.equal(store.remove(5), true);
      assert.equal(store.remove(1), true);
      appendAll(store, ['c', 'a']);
      await tick();
      assert.equal(store.remove(7), true);
      assert.equal(store.purge({ subject: 'b', keep: 1 }), 1);
      await sync(store);
      await tick();
      assert.deepEqual(store.deletedSeqs(), [5, 7]);
      assert.deepEqual([store.state().firstSeq, store.state().messages, store.state().numSubjects], [4, 2, 2]);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['b', 1], ['c', 1]]);
      await store.flushed();
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['b', 1], ['c', 1]]);
      appendAll(store, ['d', 'd']);
      await tick();
      assert.equal(store.purge({}), 4);
      await tick();
      assert.equal(store.append(message('e')), 10);
      await store.flushed();
      assert.deepEqual([store.state().firstSeq, store.state().messages], [10, 1]);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [['e', 1]]);
      assert.equal(store.countPending('>', 0), 1);
      assert.equal(store.loadNext('d', 0), undefined);
    });

    test(`${name}: every read agrees with a model at each point of a commit: in flight, landed but not reported, reported`, async (t) => {
      const { store, dispose, commitPoints } = await makeStore();
      t.after(dispose);
      const points = commitPoints ?? EVENT_TURN_POINTS;
      const model = new ModelStore();
      let windows = 0;
      for (const [index, step] of COMMIT_WINDOW_STEPS.entries()) {
        const where = (point: string): string => `step ${index + 1}, ${point}`;
        for (const op of step.first) applyScriptOp(store, model, op, where('first writes'));
        await points.inFlight();
        checkReads(store, model, where('commit in flight'));
        for (const op of step.inFlight) applyScriptOp(store, model, op, where('writes while in flight'));
        checkReads(store, model, where('commit in flight, more writes pending'));
        if (await points.landed()) windows++;
        checkReads(store, model, where('commit landed, not reported'));
        // Inside the window until the next await: these writes decide from reads of the disk too.
        for (const op of step.landed) applyScriptOp(store, model, op, where('writes in the window'));
        checkReads(store, model, where('commit landed, not reported, more writes pending'));
        await points.committed();
        checkReads(store, model, where('commit reported'));
      }
      await store.flushed();
      checkReads(store, model, 'everything flushed');
      if (commitPoints !== undefined) assert.equal(windows, COMMIT_WINDOW_STEPS.length, 'every step read and wrote inside the window');
    });

    storeTest('wildcard queries over many messages per subject, across an index chunk', async (store, sync) => {
      const base = 65_400;
      store.purge({ seq: base });
      const live = new Map<number, string>();
      const subjects = ['w.a', 'w.b', 'z'];
      for (let i = 0; i < 600; i++) live.set(store.append(message(subjects[i % 3]!, `v${i}`)), subjects[i % 3]!);
      for (let seq = base + 1; seq < base + 600; seq += 7) {
        assert.equal(store.remove(seq), true);
        live.delete(seq);
      }
      await sync(store);
      const expectCount = (filter: (subject: string) => boolean, from: number): number =>
        [...live].filter(([seq, subject]) => seq >= from && filter(subject)).length;
      const isW = (subject: string): boolean => subject.startsWith('w.');
      const newest = (filter: (subject: string) => boolean): number => Math.max(...[...live].filter(([, subject]) => filter(subject)).map(([seq]) => seq));
      assert.deepEqual(sortedEntries(store.subjectCounts('w.*')), [['w.a', expectCount((x) => x === 'w.a', 0)], ['w.b', expectCount((x) => x === 'w.b', 0)]]);
      assert.equal(store.countPending('w.*', base + 300), expectCount(isW, base + 300));
      assert.equal(store.countPending(['w.>', 'z'], base + 137), expectCount(() => true, base + 137));
      assert.equal(store.loadLast('w.*')?.seq, newest(isW));
      assert.equal(store.loadLast('*')?.seq, newest((x) => x === 'z'));
      assert.equal(store.loadNext('w.*', base + 594)?.seq, [...live.keys()].sort((a, b) => a - b).find((seq) => seq >= base + 594 && isW(live.get(seq)!)));
      assert.equal(store.purge({ subject: 'w.*', keep: 10 }), expectCount(isW, 0) - 10);
      await sync(store);
      assert.equal(store.countPending('w.>', 0), 10);
      assert.equal(store.state().messages, expectCount((x) => x === 'z', 0) + 10);
      assert.equal(store.state().numSubjects, 3);
    });

    storeTest('loadLast with a wildcard that only matches old messages', async (store, sync) => {
      const old = store.append(message('old.x'));
      store.append(message('old.y'));
      for (let i = 0; i < 1100; i++) store.append(message('new', `${i}`));
      store.remove(old + 1);
      await sync(store);
      assert.equal(store.loadLast('old.*')?.seq, old);
      assert.equal(store.loadLast(['nope', 'old.>'])?.seq, old);
      assert.equal(store.loadLast('none.*'), undefined);
    });

    storeTest('subjects longer than 1 KiB', async (store, sync) => {
      const long = `long.${'x'.repeat(1500)}`;
      appendAll(store, [long, 'short', long, `${long}y`]);
      await sync(store);
      assert.equal(store.loadLast(long)?.seq, 3);
      assert.equal(store.loadNext(long, 2)?.seq, 3);
      assert.equal(store.countPending(long, 2), 1);
      assert.deepEqual(sortedEntries(store.subjectCounts('long.*')), [[long, 2], [`${long}y`, 1]]);
      assert.equal(store.loadNext('long.>', 2)?.seq, 3);
      assert.equal(store.state().numSubjects, 3);
      assert.equal(store.purge({ subject: long }), 2);
      await sync(store);
      assert.deepEqual(sortedEntries(store.subjectCounts('>')), [[`${long}y`, 1], ['short', 1]]);
    });

    storeTest('flushed() resolves', async (store) => {
      store.append(message('a'));
      await store.flushed();
      await store.flushed();
    });

    test(`${name}: a closed store refuses use`, async (t) => {
      const { store, dispose } = await makeStore();
      t.after(dispose);
      store.append(message('a'));
      await store.close();
      assert.throws(() => store.append(message('b')), (err: unknown) => err instanceof StoreError && err.code === 'ERR_STORE_CLOSED');
      assert.throws(() => store.state(), StoreError);
      await assert.rejects(store.flushed(), StoreError);
    });

    test(`${name}: random operations agree with a reference model`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(operationArbitrary(), { minLength: 1, maxLength: 60 }), async (operations) => {
          const { store, dispose, commitPoints } = await makeStore();
          try {
            await checkAgainstModel(store, commitPoints ?? EVENT_TURN_POINTS, operations);
          } finally {
            await dispose();
          }
        }),
        // STORE_PROPERTY_RUNS=2000 for a longer hunt; SEED=<n> replays a failure.
        fastCheckParameters({ numRuns: Number(process.env['STORE_PROPERTY_RUNS'] ?? options.propertyRuns ?? 60) }),
      );
    });
  });
}

function sortedEntries(map: Map<string, number>): [string, number][] {
  return [...map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

// ---- reads at the points of a commit ----

/** One scripted write: sequences are absolute, every return value is checked against the model. */
type ScriptOp =
  | { readonly append: string }
  | { readonly remove: number; readonly erase?: boolean }
  | { readonly purge: PurgeOptions };

/**
 * Writes before a commit starts, while it is in flight, and inside the window between it
 * landing and the store being told. They hit records of the commit in flight (removed while
 * being written), records on disk (tombs), the floor (purge, compact), sequences moved past the
 * end, and erase.
 */
const COMMIT_WINDOW_STEPS: readonly { readonly first: ScriptOp[]; readonly inFlight: ScriptOp[]; readonly landed: ScriptOp[] }[] = [
  {
    first: [{ append: 'a' }, { append: 'x' }, { append: 'a' }, { append: 'x' }, { append: 'a' }, { append: 'a.b' }],
    inFlight: [{ remove: 3 }, { remove: 5, erase: true }, { remove: 1 }, { append: 'b.c.d' }, { append: 'a' }],
    landed: [{ remove: 8 }, { purge: { subject: 'x', keep: 1 } }, { append: 'a.c' }],
  },
  {
    first: [{ append: 'x' }, { append: 'a.c' }, { remove: 6 }],
    inFlight: [{ purge: { subject: 'a.*' } }, { append: 'b.c.d' }, { remove: 4 }],
    landed: [{ remove: 7 }, { purge: { seq: 11 } }, { append: 'a' }],
  },
  {
    first: [{ append: 'a' }, { append: 'a' }, { append: 'x' }, { append: 'a.b' }],
    inFlight: [{ purge: { subject: 'a', seq: 16 } }, { remove: 17, erase: true }],
    landed: [{ purge: { subject: '>', keep: 2 } }, { append: 'x' }, { remove: 18 }],
  },
  {
    first: [{ append: 'a' }, { append: 'a.b' }],
    inFlight: [{ purge: {} }, { append: 'x' }],
    landed: [{ purge: { seq: 40 } }, { append: 'a' }, { append: 'a.c' }],
  },
  {
    first: [{ append: 'x' }, { remove: 40 }],
    inFlight: [{ remove: 41 }, { remove: 42 }],
    landed: [{ append: 'b.c.d' }, { remove: 43 }, { append: 'a' }],
  },
];

function applyScriptOp(store: StreamStore, model: ModelStore, op: ScriptOp, where: string): void {
  const what = `${where}: ${JSON.stringify(op)}`;
  if ('append' in op) {
    const m = message(op.append);
    assert.equal(store.append(m), model.append({ subject: m.subject, data: m.data.toString(), headers: undefined, timestampNs: m.timestampNs }), what);
  } else if ('remove' in op) {
    assert.equal(store.remove(op.remove, { erase: op.erase === true }), model.remove(op.remove), what);
  } else {
    assert.equal(store.purge(op.purge), model.purge(op.purge), what);
  }
}

/** Every read of the store against the model: state, every message, deletedSeqs, and each filter's loadNext, loadLast, countPending, subjectCounts. */
function checkReads(store: StreamStore, model: ModelStore, where: string): void {
  checkState(store, model, where);
  checkContents(store, model, where);
  const froms = [0, model.first - 1, model.first, model.first + 1, Math.floor((model.first + model.last) / 2), model.last, model.last + 1];
  const live = model.seqs();
  for (const from of froms) {
    if (from < 0) continue;
    for (const [maxMsgs, maxBytes] of LOAD_RANGE_LIMITS) {
      assert.deepEqual(
        store.loadRange(from, maxMsgs, maxBytes).map((message) => message.seq),
        expectedRange(model, live, from, maxMsgs, maxBytes),
        `${where}: loadRange(${from}, ${maxMsgs}, ${maxBytes})`,
      );
    }
  }
  for (const filter of FILTERS) {
    const what = `${where}, filter ${JSON.stringify(filter)}`;
    const matching = model.matching(filter);
    assert.equal(store.loadLast(filter)?.seq, matching.at(-1), `${what}: loadLast`);
    for (const from of froms) {
      if (from < 0) continue;
      assert.equal(store.loadNext(filter, from)?.seq, matching.find((s) => s >= from), `${what}: loadNext from ${from}`);
      assert.equal(store.countPending(filter, from), matching.filter((s) => s >= from).length, `${what}: countPending from ${from}`);
    }
    const counts = new Map<string, number>();
    for (const seq of matching) {
      const subject = model.messages.get(seq)!.subject;
      counts.set(subject, (counts.get(subject) ?? 0) + 1);
    }
    assert.deepEqual(sortedEntries(store.subjectCounts(filter)), sortedEntries(counts), `${what}: subjectCounts`);
  }
}

/** [maxMsgs, maxBytes] pairs for loadRange: message limits, byte limits below, at and above one message. */
const LOAD_RANGE_LIMITS: readonly (readonly [number, number])[] = [
  [1, 1 << 20],
  [3, 1 << 20],
  [1000, 1 << 20],
  [1000, 1],
  [1000, 60],
  [0, 1 << 20],
];

/** loadRange's documented answer, from the model. */
function expectedRange(model: ModelStore, live: readonly number[], from: number, maxMsgs: number, maxBytes: number): number[] {
  const seqs: number[] = [];
  let bytes = 0;
  for (const seq of live) {
    if (seq < from) continue;
    if (seqs.length >= maxMsgs) break;
    const message = model.messages.get(seq)!;
    const size = Buffer.byteLength(message.subject) + Buffer.byteLength(message.headers ?? '') + Buffer.byteLength(message.data);
    if (seqs.length > 0 && bytes + size > maxBytes) break;
    seqs.push(seq);
    bytes += size;
    if (bytes >= maxBytes) break;
  }
  return seqs;
}

// ---- model-based property test ----

const SUBJECTS = ['a', 'a.b', 'a.c', 'b.c.d', 'x'] as const;
const FILTERS: readonly SubjectFilter[] = ['', '>', 'a', 'a.*', 'a.>', '*.c', 'b.*.d', 'nope', ['a', 'x'], ['a.*', 'x'], ['a.b', 'a.>']];

type Operation =
  | { readonly kind: 'append'; readonly subject: string; readonly size: number; readonly withHeaders: boolean }
  | { readonly kind: 'remove'; readonly offset: number; readonly fromEnd: boolean; readonly erase: boolean }
  | { readonly kind: 'purge'; readonly options: PurgeOptions }
  | { readonly kind: 'flush' }
  /** Lets queued work run (a commit may start, or finish, while later operations happen). */
  | { readonly kind: 'tick' }
  /**
   * Waits until the commit in flight has landed but the store has not been told (when the store
   * has commit points), checks every read, and runs the following operations inside that window.
   */
  | { readonly kind: 'window' }
  | { readonly kind: 'query'; readonly filter: number; readonly offset: number };

function operationArbitrary(): fc.Arbitrary<Operation> {
  const subject = fc.constantFrom(...SUBJECTS);
  return fc.oneof(
    { weight: 10, arbitrary: fc.record({ kind: fc.constant('append' as const), subject, size: fc.nat(40), withHeaders: fc.boolean() }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('remove' as const), offset: fc.integer({ min: -1, max: 30 }), fromEnd: fc.constant(false), erase: fc.boolean() }),
    },
    {
      weight: 4,
      arbitrary: fc.record({ kind: fc.constant('remove' as const), offset: fc.integer({ min: -1, max: 6 }), fromEnd: fc.constant(true), erase: fc.boolean() }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('purge' as const),
        options: fc.record(
          {
            subject: fc.constantFrom('', '>', 'a', 'a.*', 'a.>', 'x', '*.c'),
            seq: fc.integer({ min: 0, max: 40 }),
            keep: fc.integer({ min: 0, max: 6 }),
          },
          { requiredKeys: [] },
        ),
      }),
    },
    { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
    { weight: 4, arbitrary: fc.constant({ kind: 'tick' as const }) },
    { weight: 3, arbitrary: fc.constant({ kind: 'window' as const }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('query' as const), filter: fc.nat(FILTERS.length - 1), offset: fc.integer({ min: -2, max: 30 }) }) },
  );
}

type ModelMessage = { readonly subject: string; readonly data: string; readonly headers: string | undefined; readonly timestampNs: bigint };

/** The obviously-correct store: a Map and linear scans, nats-server purge semantics. */
class ModelStore {
  readonly messages = new Map<number, ModelMessage>();
  first = 0;
  last = 0;
  lastTimestampNs = 0n;

  append(m: ModelMessage): number {
    const seq = ++this.last;
    this.messages.set(seq, m);
    this.lastTimestampNs = m.timestampNs;
    this.#fixFirst();
    return seq;
  }

  remove(seq: number): boolean {
    const had = this.messages.delete(seq);
    if (had) this.#fixFirst();
    return had;
  }

  purge(options: PurgeOptions): number {
    const subject = options.subject ?? '';
    const seq = options.seq ?? 0;
    const keep = options.keep ?? 0;
    const isAll = subject === '' || subject === '>';
    if (isAll && keep === 0 && seq <= 1) return this.#removeWhere(() => true);
    if (isAll && seq > 1) {
      const purged = this.#removeWhere((s) => s < seq);
      if (seq > this.last + 1) {
        this.last = seq - 1;
        this.#fixFirst();
      }
      return purged;
    }
    const matching = this.seqs().filter((s) => this.#matches(isAll ? '>' : subject, s));
    let limit = Infinity;
    if (keep > 0) {
      if (keep >= matching.length) return 0;
      limit = matching.length - keep;
    }
    const removable = matching.filter((s) => seq <= 1 || s < seq).slice(0, limit);
    for (const s of removable) this.messages.delete(s);
    if (removable.length > 0) this.#fixFirst();
    return removable.length;
  }

  seqs(): number[] {
    return [...this.messages.keys()].sort((a, b) => a - b);
  }

  matching(filter: SubjectFilter): number[] {
    return this.seqs().filter((s) => this.#matchesFilter(filter, s));
  }

  #matchesFilter(filter: SubjectFilter, seq: number): boolean {
    const list = typeof filter === 'string' ? [filter] : filter;
    if (list.length === 0) return true;
    return list.some((f) => this.#matches(f, seq));
  }

  #matches(filter: string, seq: number): boolean {
    const subject = this.messages.get(seq)!.subject;
    return filter === '' || filter === '>' || subject === filter || subjectMatchesFilter(subject, filter);
  }

  #removeWhere(predicate: (seq: number) => boolean): number {
    let purged = 0;
    for (const seq of this.seqs()) {
      if (!predicate(seq)) continue;
      this.messages.delete(seq);
      purged++;
    }
    this.#fixFirst();
    return purged;
  }

  #fixFirst(): void {
    const seqs = this.seqs();
    this.first = seqs.length === 0 ? this.last + 1 : seqs[0]!;
  }
}

async function checkAgainstModel(store: StreamStore, points: CommitPoints, operations: readonly Operation[]): Promise<void> {
  const model = new ModelStore();
  for (const [index, operation] of operations.entries()) {
    const where = `operation ${index} ${JSON.stringify(operation)}`;
    switch (operation.kind) {
      case 'append': {
        const m = message(operation.subject, 'x'.repeat(operation.size), operation.withHeaders ? 'NATS/1.0\r\nA: b\r\n\r\n' : undefined);
        const expected = model.append({ subject: m.subject, data: m.data.toString(), headers: m.headers?.toString(), timestampNs: m.timestampNs });
        assert.equal(store.append(m), expected, where);
        break;
      }
      case 'remove': {
        // From the end, removals hit messages whose commit may be in flight.
        const seq = operation.fromEnd ? model.last - operation.offset : model.first + operation.offset;
        assert.equal(store.remove(seq, { erase: operation.erase }), model.remove(seq), where);
        break;
      }
      case 'purge':
        assert.equal(store.purge(operation.options), model.purge(operation.options), where);
        break;
      case 'flush':
        await store.flushed();
        break;
      case 'tick':
        await tick();
        break;
      case 'window': {
        const isInWindow = await points.landed();
        checkReads(store, model, `${where}${isInWindow ? ', commit landed, not reported' : ''}`);
        break;
      }
      case 'query': {
        const filter = FILTERS[operation.filter]!;
        const from = Math.max(0, model.first + operation.offset);
        const matching = model.matching(filter);
        assert.equal(store.loadNext(filter, from)?.seq, matching.find((s) => s >= from), `${where} loadNext`);
        assert.equal(store.loadLast(filter)?.seq, matching.at(-1), `${where} loadLast`);
        assert.equal(store.countPending(filter, from), matching.filter((s) => s >= from).length, `${where} countPending`);
        break;
      }
    }
    checkState(store, model, where);
  }
  await store.flushed();
  checkState(store, model, 'at the end');
  checkContents(store, model, 'at the end');
}

function checkState(store: StreamStore, model: ModelStore, where: string): void {
  const state = store.state();
  const seqs = model.seqs();
  const subjects = new Set(seqs.map((s) => model.messages.get(s)!.subject));
  assert.deepEqual(
    {
      messages: state.messages,
      firstSeq: state.firstSeq,
      lastSeq: state.lastSeq,
      numDeleted: state.numDeleted,
      numSubjects: state.numSubjects,
      lastTimestampNs: state.lastTimestampNs,
      firstTimestampNs: state.firstTimestampNs,
    },
    {
      messages: seqs.length,
      firstSeq: model.first,
      lastSeq: model.last,
      numDeleted: seqs.length === 0 ? 0 : model.last - model.first + 1 - seqs.length,
      numSubjects: subjects.size,
      lastTimestampNs: model.lastTimestampNs,
      firstTimestampNs: seqs.length === 0 ? 0n : model.messages.get(seqs[0]!)!.timestampNs,
    },
    where,
  );
}

function checkContents(store: StreamStore, model: ModelStore, where: string): void {
  const seqs = model.seqs();
  const live = new Set(seqs);
  for (let seq = Math.max(1, model.first - 2); seq <= model.last + 2; seq++) {
    const loaded = store.load(seq);
    const expected = model.messages.get(seq);
    assert.equal(loaded === undefined, expected === undefined, `${where}: load(${seq}) presence`);
    if (loaded === undefined || expected === undefined) continue;
    assert.equal(loaded.subject, expected.subject, `${where}: load(${seq}) subject`);
    assert.equal(loaded.data.toString(), expected.data, `${where}: load(${seq}) data`);
    assert.equal(loaded.headers?.toString(), expected.headers, `${where}: load(${seq}) headers`);
    assert.equal(loaded.timestampNs, expected.timestampNs, `${where}: load(${seq}) timestamp`);
  }
  const deleted: number[] = [];
  if (seqs.length > 0) for (let seq = model.first; seq <= model.last; seq++) if (!live.has(seq)) deleted.push(seq);
  assert.deepEqual(store.deletedSeqs(), deleted, `${where}: deletedSeqs`);
  const counts = new Map<string, number>();
  for (const seq of seqs) {
    const subject = model.messages.get(seq)!.subject;
    counts.set(subject, (counts.get(subject) ?? 0) + 1);
  }
  assert.deepEqual(sortedEntries(store.subjectCounts('>')), sortedEntries(counts), `${where}: subjectCounts`);
}

// ---- JetStreamStorage ----

/** A fresh storage and how to dispose of it. */
export type StorageFactory = () => Promise<{ storage: JetStreamStorage; dispose: () => Promise<void> }>;

export function consumerState(seq: number): ConsumerStateRecord {
  return {
    delivered: { consumerSeq: seq, streamSeq: seq + 10 },
    ackFloor: { consumerSeq: seq - 1, streamSeq: seq + 9 },
    pending: [[seq + 10, seq, 1_700_000_000_000 + seq]],
    redelivered: [[seq + 10, 2]],
  };
}

export function runJetStreamStorageContract(name: string, makeStorage: StorageFactory): void {
  describe(`${name}: JetStreamStorage contract`, () => {
    test('stream metadata is saved, listed, replaced and deleted', async (t) => {
      const { storage, dispose } = await makeStorage();
      t.after(dispose);
      storage.openStream('ORDERS', 'file');
      storage.openStream('CACHE', 'memory');
      await storage.saveStreamMeta('ORDERS', { config: { name: 'ORDERS', storage: 'file' }, created_ns: '1' });
      await storage.saveStreamMeta('CACHE', { config: { name: 'CACHE', storage: 'memory' } });
      assert.deepEqual(storage.loadStreamMetas().get('ORDERS'), { config: { name: 'ORDERS', storage: 'file' }, created_ns: '1' });
      assert.equal(storage.loadStreamMetas().size, 2);
      const saving = storage.saveStreamMeta('ORDERS', { config: { name: 'ORDERS', storage: 'file' }, created_ns: '2' });
      assert.equal(storage.loadStreamMetas().get('ORDERS')?.['created_ns'], '2', 'visible before it is durable');
      await saving;
      await storage.deleteStream('ORDERS');
      assert.deepEqual([...storage.loadStreamMetas().keys()], ['CACHE']);
    });

    test('a stream store opened twice is the same store; deleting a stream empties it', async (t) => {
      const { storage, dispose } = await makeStorage();
      t.after(dispose);
      const store = storage.openStream('S', 'file');
      assert.equal(storage.openStream('S', 'file'), store);
      store.append(message('a'));
      await storage.saveStreamMeta('S', { config: { name: 'S', storage: 'file' } });
      await storage.deleteStream('S');
      const again = storage.openStream('S', 'file');
      assert.notEqual(again, store);
      assert.equal(again.state().messages, 0);
      assert.equal(again.state().lastSeq, 0);
      assert.equal(again.append(message('b')), 1);
      await again.flushed();
    });

    test('consumer metadata and state', async (t) => {
      const { storage, dispose } = await makeStorage();
      t.after(dispose);
      storage.openStream('S', 'file');
      storage.openStream('SX', 'file');
      await storage.saveConsumerMeta('S', 'c1', { name: 'c1' });
      await storage.saveConsumerMeta('S', 'c2', { name: 'c2' });
      await storage.saveConsumerMeta('SX', 'c1', { name: 'other' });
      assert.deepEqual([...storage.loadConsumerMetas('S').keys()].sort(), ['c1', 'c2']);
      assert.deepEqual(storage.loadConsumerMetas('SX').get('c1'), { name: 'other' });
      assert.equal(storage.loadConsumerState('S', 'c1'), undefined);
      for (let seq = 1; seq <= 50; seq++) storage.saveConsumerState('S', 'c1', consumerState(seq));
      assert.deepEqual(storage.loadConsumerState('S', 'c1'), consumerState(50));
      await storage.flushed();
      assert.deepEqual(storage.loadConsumerState('S', 'c1'), consumerState(50));
      await storage.deleteConsumer('S', 'c1');
      assert.equal(storage.loadConsumerState('S', 'c1'), undefined);
      assert.deepEqual([...storage.loadConsumerMetas('S').keys()], ['c2']);
      storage.saveConsumerState('S', 'c2', consumerState(3));
      await storage.deleteStream('S');
      assert.equal(storage.loadConsumerMetas('S').size, 0);
      assert.equal(storage.loadConsumerState('S', 'c2'), undefined);
      assert.deepEqual(storage.loadConsumerMetas('SX').get('c1'), { name: 'other' }, 'other streams keep theirs');
    });

    test('link states: per stream and origin, latest wins, visible before durable, deleted with the stream', async (t) => {
      const { storage, dispose } = await makeStorage();
      t.after(dispose);
      for (const kind of ['file', 'memory'] as const) {
        const stream = `L-${kind}`;
        const store = storage.openStream(stream, kind);
        storage.openStream(`${stream}-other`, kind);
        assert.equal(storage.loadLinkStates(stream).size, 0);
        store.append(message('a'));
        storage.saveLinkState(stream, 'gw1/S/aa', { cursor: 1 });
        store.append(message('a'));
        storage.saveLinkState(stream, 'gw1/S/aa', { cursor: 2 });
        storage.saveLinkState(stream, 'gw2/S/bb', { cursor: 7, gaps: [[3, 5, 'limits']] });
        storage.saveLinkState(`${stream}-other`, 'gw1/S/aa', { cursor: 9 });
        assert.deepEqual(storage.loadLinkStates(stream).get('gw1/S/aa'), { cursor: 2 }, 'visible before it is durable');
        await storage.flushed();
        assert.deepEqual(
          [...storage.loadLinkStates(stream)].sort(),
          [['gw1/S/aa', { cursor: 2 }], ['gw2/S/bb', { cursor: 7, gaps: [[3, 5, 'limits']] }]],
        );
        assert.equal(store.state().lastSeq, 2);
        storage.saveLinkState(stream, 'gw2/S/bb', undefined);
        assert.deepEqual([...storage.loadLinkStates(stream).keys()], ['gw1/S/aa']);
        await storage.flushed();
        assert.deepEqual([...storage.loadLinkStates(stream).keys()], ['gw1/S/aa']);
        await storage.deleteStream(stream);
        assert.equal(storage.loadLinkStates(stream).size, 0, 'a deleted stream has no link states');
        assert.deepEqual(storage.loadLinkStates(`${stream}-other`).get('gw1/S/aa'), { cursor: 9 }, 'other streams keep theirs');
      }
    });

    test('memory streams work like file streams while the process runs', async (t) => {
      const { storage, dispose } = await makeStorage();
      t.after(dispose);
      const store = storage.openStream('M', 'memory');
      assert.equal(store.storage, 'memory');
      store.append(message('a'));
      await storage.saveConsumerMeta('M', 'c', { name: 'c' });
      storage.saveConsumerState('M', 'c', consumerState(1));
      assert.deepEqual(storage.loadConsumerState('M', 'c'), consumerState(1));
      await storage.flushed();
      await storage.deleteStream('M');
      assert.equal(storage.loadConsumerMetas('M').size, 0);
    });

    test('a closed storage refuses use', async (t) => {
      const { storage, dispose } = await makeStorage();
      t.after(dispose);
      await storage.close();
      assert.throws(() => storage.openStream('S', 'file'), StoreError);
      await assert.rejects(storage.flushed(), StoreError);
    });
  });
}
