/**
 * The StreamStore and JetStreamStorage contracts against LMDB, plus what only a
 * disk store has: restart, on-disk corruption detection, a full filesystem.
 * Every environment lives in a temporary directory removed in t.after().
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { StoreError, type StreamStore } from '../../../core/jetstream/store.ts';
import { fileStoreMessageBytes } from '../../../core/store/accounting.ts';
import { CommitPipeline } from '../../../core/store/lmdb/commit-pipeline.ts';
import { openLmdbDatabases, type LmdbDatabases } from '../../../core/store/lmdb/env.ts';
import { LmdbJetStreamStorage } from '../../../core/store/lmdb/lmdb-jetstream-storage.ts';
import { LmdbStreamStore } from '../../../core/store/lmdb/lmdb-stream-store.ts';
import { AssertionError } from '../../../core/util/assert.ts';
import { eventually } from '../../helpers/eventually.ts';
import {
  consumerState,
  message,
  runJetStreamStorageContract,
  runStreamStoreContract,
  type CommitPoints,
} from '../../contract/stream-store.contract.ts';

function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), 'canopy-lmdb-'));
}

runStreamStoreContract(
  'LmdbStreamStore',
  async () => {
    // Built from its parts (as LmdbJetStreamStorage does) so that the test can watch the pipeline's commits.
    const dir = makeTempDir();
    const databases = openLmdbDatabases(dir, 'always');
    const pipeline = new CommitPipeline(databases.root, dir, databases.space);
    const store = LmdbStreamStore.open({ name: 'S', streamId: 1, databases, pipeline, onClose: () => {} });
    return {
      store,
      commitPoints: lmdbCommitPoints(databases, pipeline),
      dispose: async () => {
        await store.close().catch(() => undefined);
        await pipeline.close();
        await databases.root.close();
        databases.space.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { messageBytes: fileStoreMessageBytes, propertyRuns: 60 },
);

/** Written into every batch by {@link lmdbCommitPoints}: the generation of the commit. */
const COMMIT_MARK_KEY = 'test-commit-mark';
/** How long a commit may take to go into a batch, or a batch to land, before the test gives up. */
const COMMIT_WAIT_MS = 10_000;

/**
 * The points of the pipeline's commits. `landed()` waits for the batch in flight to become
 * visible to new read transactions without yielding to the event loop, so that lmdb-js cannot
 * report the commit meanwhile: the caller then runs in the window between landing and
 * `committed()`, with lmdb-js' implicit read transaction renewed at the landed commit, as its own
 * `setTimeout(0)` reset can leave it at any moment. Landing is seen through a mark each batch
 * also writes (in the meta database, which the stream store never reads).
 */
function lmdbCommitPoints(databases: LmdbDatabases, pipeline: CommitPipeline): CommitPoints {
  const { root, meta } = databases;
  /** Per batch: resolves in the event turn right after lmdb-js started its write thread, before the batch can be reported. */
  const writerStarted = new Map<number, Promise<void>>();
  const batch = root.batch.bind(root);
  root.batch = ((action: () => unknown) => {
    const generation = pipeline.inflightGeneration;
    const committing = batch(() => {
      action();
      void meta.put(COMMIT_MARK_KEY, generation);
    });
    // lmdb-js starts the write thread from a setImmediate queued in batch() (or at once): this one runs right after it.
    writerStarted.set(generation, new Promise((resolve) => setImmediate(resolve)));
    return committing;
  }) as typeof root.batch;
  const hasLanded = (generation: number): boolean => {
    root.resetReadTxn();
    return meta.get(COMMIT_MARK_KEY) === generation;
  };
  return {
    inFlight: async () => {
      const generation = pipeline.pendingGeneration;
      const deadline = performance.now() + COMMIT_WAIT_MS;
      while (pipeline.inflightGeneration < generation) {
        assert.ok(performance.now() < deadline, 'the writes never went into a commit');
        await tick();
      }
    },
    landed: async () => {
      let generation = pipeline.inflightGeneration;
      if (generation === 0) {
        await tick();
        generation = pipeline.inflightGeneration;
        if (generation === 0) return false;
      }
      const started = writerStarted.get(generation);
      if (started === undefined) return false; // nothing to write: no LMDB batch
      // Resumes as a microtask of that setImmediate: no I/O callback (the batch's completion) can run before the spin.
      await started;
      if (pipeline.inflightGeneration !== generation) return false;
      const deadline = performance.now() + COMMIT_WAIT_MS;
      while (!hasLanded(generation)) assert.ok(performance.now() < deadline, 'the commit in flight never landed');
      return true;
    },
    committed: async () => {
      const generation = pipeline.inflightGeneration;
      while (generation !== 0 && pipeline.inflightGeneration === generation) await tick();
    },
  };
}

async function tick(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

runJetStreamStorageContract('LmdbJetStreamStorage', async () => {
  const dir = makeTempDir();
  const storage = LmdbJetStreamStorage.open(dir);
  return {
    storage,
    dispose: async () => {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

/** A storage in a fresh temp dir, closed and removed after the test; `reopen` closes and opens it again. */
function openTemp(t: TestContext, dir = makeTempDir()): { dir: string; storage: () => LmdbJetStreamStorage; reopen: () => Promise<LmdbJetStreamStorage> } {
  let storage = LmdbJetStreamStorage.open(dir);
  t.after(async () => {
    await storage.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    storage: () => storage,
    reopen: async () => {
      await storage.close();
      storage = LmdbJetStreamStorage.open(dir);
      return storage;
    },
  };
}

function snapshot(store: StreamStore): unknown {
  const state = store.state();
  const messages = [];
  for (let seq = state.firstSeq; seq <= state.lastSeq; seq++) {
    const m = store.load(seq);
    if (m !== undefined) messages.push([m.seq, m.subject, m.headers?.toString('latin1'), m.data.toString('latin1'), m.timestampNs]);
  }
  return { state, messages, deleted: store.deletedSeqs(), subjects: [...store.subjectCounts('>')].sort() };
}

test('LMDB: bytes are nats-server filestore record sizes', async (t) => {
  const { storage } = openTemp(t);
  const store = storage().openStream('S', 'file');
  store.append(message('foo', '12345'));
  store.append(message('foo', '', 'NATS/1.0\r\n\r\n'));
  // 22 + subject + payload + 8; with headers also 4 + headers.
  assert.equal(store.state().bytes, 22 + 3 + 5 + 8 + (22 + 3 + 4 + 12 + 0 + 8));
  await store.flushed();
});

test('LMDB: a restart recovers every stream, message, metadata and consumer state', async (t) => {
  const temp = openTemp(t);
  let storage = temp.storage();
  const orders = storage.openStream('ORDERS', 'file');
  const events = storage.openStream('EVENTS', 'file');
  const cache = storage.openStream('CACHE', 'memory');
  for (let i = 0; i < 300; i++) orders.append(message(`orders.${i % 7}`, `order ${i}`, i % 5 === 0 ? `NATS/1.0\r\nN: ${i}\r\n\r\n` : undefined));
  for (let i = 0; i < 20; i++) events.append(message('events.x', `event ${i}`));
  cache.append(message('cache.x'));
  orders.remove(1);
  orders.remove(150);
  orders.remove(300);
  orders.purge({ subject: 'orders.3', keep: 2 });
  events.purge({ seq: 11 });
  await storage.saveStreamMeta('ORDERS', { config: { name: 'ORDERS', storage: 'file' }, created_ns: '7' });
  await storage.saveStreamMeta('EVENTS', { config: { name: 'EVENTS', storage: 'file' } });
  await storage.saveStreamMeta('CACHE', { config: { name: 'CACHE', storage: 'memory' } });
  await storage.saveConsumerMeta('ORDERS', 'worker', { durable_name: 'worker' });
  storage.saveConsumerState('ORDERS', 'worker', consumerState(41));
  storage.saveConsumerState('ORDERS', 'worker', consumerState(42));
  storage.saveLinkState('ORDERS', 'gw1/ORDERS/aa', { cursor: 300, gaps: [[1, 1, 'limits']] });
  storage.saveLinkState('CACHE', 'gw1/CACHE/bb', { cursor: 1 });
  const before = { orders: snapshot(orders), events: snapshot(events) };
  // No explicit flushed(): close() flushes.
  storage = await temp.reopen();
  assert.deepEqual([...storage.loadStreamMetas().keys()].sort(), ['EVENTS', 'ORDERS'], 'memory streams do not survive');
  assert.deepEqual(storage.loadStreamMetas().get('ORDERS'), { config: { name: 'ORDERS', storage: 'file' }, created_ns: '7' });
  assert.deepEqual(storage.loadConsumerMetas('ORDERS').get('worker'), { durable_name: 'worker' });
  assert.deepEqual(storage.loadConsumerState('ORDERS', 'worker'), consumerState(42));
  assert.deepEqual([...storage.loadLinkStates('ORDERS')], [['gw1/ORDERS/aa', { cursor: 300, gaps: [[1, 1, 'limits']] }]]);
  assert.equal(storage.loadLinkStates('CACHE').size, 0, 'a memory stream\'s link states do not survive');
  const reopened = { orders: storage.openStream('ORDERS', 'file'), events: storage.openStream('EVENTS', 'file') };
  assert.deepEqual({ orders: snapshot(reopened.orders), events: snapshot(reopened.events) }, before);
  assert.equal(reopened.orders.append(message('orders.1')), 301, 'sequences continue after the last, even a removed one');
  assert.equal(storage.openStream('CACHE', 'memory').state().messages, 0);
  await storage.flushed();
});

test('LMDB: a deleted stream is gone after a restart, and its name can be reused', async (t) => {
  const temp = openTemp(t);
  let storage = temp.storage();
  const store = storage.openStream('S', 'file');
  for (let i = 0; i < 50; i++) store.append(message('s.x'));
  await storage.saveStreamMeta('S', { config: { name: 'S', storage: 'file' } });
  await storage.saveConsumerMeta('S', 'c', { name: 'c' });
  await storage.deleteStream('S');
  storage = await temp.reopen();
  assert.equal(storage.loadStreamMetas().size, 0);
  assert.equal(storage.loadConsumerMetas('S').size, 0);
  const again = storage.openStream('S', 'file');
  assert.deepEqual([again.state().messages, again.state().lastSeq], [0, 0]);
  assert.equal(again.subjectCounts('>').size, 0, 'no index entries survive');
});

test('LMDB: a big deleted stream is removed over several commits, and the removal resumes after a restart', async (t) => {
  const temp = openTemp(t);
  let storage = temp.storage();
  const store = storage.openStream('BIG', 'file');
  // More keys than the first commit and the few that close() tries can remove.
  for (let i = 0; i < 120_000; i++) store.append(message(`big.${i % 5}`, 'x'));
  await storage.flushed();
  await storage.deleteStream('BIG');
  assert.ok(storage.droppingStreams === 1, 'the deletion is durable before every key is removed');
  assert.equal(storage.loadStreamMetas().has('BIG'), false);
  // Stop in the middle: the removal carries on after the restart.
  storage = await temp.reopen();
  assert.equal(storage.droppingStreams, 1, 'the removal was not finished when the storage closed');
  await eventually(() => assert.equal(storage.droppingStreams, 0), { timeoutMs: 10_000 });
  const again = storage.openStream('BIG', 'file');
  assert.equal(again.state().messages, 0);
  assert.equal(again.append(message('big.0')), 1, 'the name starts a new stream');
  await storage.flushed();
  storage = await temp.reopen();
  assert.equal(storage.droppingStreams, 0);
  assert.equal(storage.openStream('BIG', 'file').state().messages, 1);
});

test('LMDB: the environment is opened once per process', async (t) => {
  const temp = openTemp(t);
  assert.throws(() => LmdbJetStreamStorage.open(temp.dir), AssertionError);
});

/**
 * Goal: a damaged record on disk is reported as ERR_STORE_CORRUPT and never
 * returned as data. Method: store messages with a recognisable payload,
 * close, flip one byte of that payload in data.mdb (every copy LMDB's
 * copy-on-write left in the file), reopen and read.
 */
test('LMDB: a flipped byte in a record on disk is detected', async (t) => {
  const temp = openTemp(t);
  let storage = temp.storage();
  const store = storage.openStream('S', 'file');
  store.append(message('plain.1', 'ordinary payload one'));
  store.append(message('victim', 'PAYLOAD-TO-DAMAGE-0123456789'));
  store.append(message('plain.2', 'ordinary payload two'));
  await storage.close();
  const file = join(temp.dir, 'jetstream', 'data.mdb');
  const bytes = readFileSync(file);
  const marker = Buffer.from('PAYLOAD-TO-DAMAGE');
  let copies = 0;
  for (let at = bytes.indexOf(marker); at !== -1; at = bytes.indexOf(marker, at + 1)) {
    bytes[at + 3]! ^= 0x01; // 'L' -> 'M'
    copies++;
  }
  assert.ok(copies >= 1, 'the payload is in the file');
  writeFileSync(file, bytes);
  storage = await temp.reopen();
  const reopened = storage.openStream('S', 'file');
  const isCorrupt = (err: unknown): boolean => err instanceof StoreError && err.code === 'ERR_STORE_CORRUPT';
  assert.throws(() => reopened.load(2), isCorrupt);
  assert.throws(() => reopened.loadNext('>', 2), isCorrupt);
  assert.throws(() => reopened.loadNext('victim', 0), isCorrupt);
  assert.throws(() => reopened.loadLast('victim'), isCorrupt);
  assert.equal(reopened.loadLast('>')?.seq, 3, 'the newest message is intact');
  assert.equal(reopened.load(1)?.data.toString(), 'ordinary payload one');
  assert.equal(reopened.load(3)?.data.toString(), 'ordinary payload two');
  assert.equal(reopened.loadNext('plain.2', 0)?.seq, 3);
  assert.equal(reopened.state().messages, 3, 'nothing was changed by the failed reads');
  // The remedy: remove the damaged message (its subject comes from the index).
  const bytesBefore = reopened.state().bytes;
  assert.equal(reopened.remove(2), true);
  assert.equal(reopened.state().bytes, bytesBefore - (22 + 'victim'.length + 'PAYLOAD-TO-DAMAGE-0123456789'.length + 8));
  assert.deepEqual([reopened.state().messages, reopened.state().numSubjects], [2, 2]);
  assert.equal(reopened.loadNext('>', 2)?.seq, 3);
  assert.equal(reopened.subjectCounts('victim').size, 0);
  await storage.flushed();
  storage = await temp.reopen();
  const again = storage.openStream('S', 'file');
  assert.deepEqual(again.deletedSeqs(), [2]);
  assert.equal(again.loadNext('>', 0)?.seq, 1);
});

/**
 * Goal: a commit that fails because the disk is full neither crashes the
 * process nor leaves the store claiming data it does not have; publishing
 * works again once space returns. Method (root only): a 4 MiB tmpfs with a
 * 1 MiB filler file; append until flushed() rejects; check the state against
 * what was acknowledged; delete the filler; append again; reopen.
 */
test('LMDB: a full filesystem rejects flushed(), keeps the store consistent, and recovers', async (t) => {
  const mountPoint = makeTempDir();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { stdio: 'pipe' });
  } catch (err) {
    rmSync(mountPoint, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs (needs root): ${(err as Error).message.split('\n')[0]}`);
    return;
  }
  const storeDir = join(mountPoint, 'store');
  mkdirSync(storeDir);
  const temp = openTemp(t, storeDir);
  // After openTemp's hook (hooks run in order), which closes the environment.
  t.after(() => {
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });
  let storage = temp.storage();
  const filler = join(mountPoint, 'filler');
  writeFileSync(filler, Buffer.alloc(1024 * 1024, 1));
  const store = storage.openStream('S', 'file');
  const payload = Buffer.alloc(1000, 0x61).toString();
  let acknowledged = 0;
  let failure: unknown;
  while (failure === undefined) {
    const first = store.append(message('fill', payload));
    for (let i = 1; i < 50; i++) store.append(message('fill', payload));
    // The link state of these appends commits with them, or not at all.
    storage.saveLinkState('S', 'origin', { cursor: first + 49 });
    try {
      await store.flushed();
      acknowledged = first + 49;
    } catch (err) {
      failure = err;
    }
    assert.ok(acknowledged < 100_000, 'the filesystem never filled up');
  }
  assert.ok(failure instanceof StoreError, `a StoreError, got ${String(failure)}`);
  assert.ok(failure.code === 'ERR_STORE_FULL', `full, got ${failure.code}: ${failure.message}`);
  const afterFailure = store.state();
  assert.equal(afterFailure.messages, acknowledged, 'only committed messages remain');
  assert.equal(store.load(acknowledged + 1), undefined, 'failed appends are not visible');
  assert.equal(store.load(acknowledged)?.data.length, 1000);
  assert.deepEqual(storage.loadLinkStates('S').get('origin'), { cursor: acknowledged }, 'the link state failed with its appends');
  assert.ok(afterFailure.lastSeq >= acknowledged + 50, 'failed sequences are not reused');
  assert.deepEqual(store.deletedSeqs().slice(0, 2), [acknowledged + 1, acknowledged + 2]);
  writeFileSync(filler, ''); // space returns
  const seq = store.append(message('after', 'small'));
  assert.equal(seq, afterFailure.lastSeq + 1);
  await store.flushed();
  storage = await temp.reopen();
  const reopened = storage.openStream('S', 'file');
  assert.equal(reopened.state().messages, acknowledged + 1);
  assert.equal(reopened.state().lastSeq, seq);
  assert.equal(reopened.load(seq)?.subject, 'after');
  assert.equal(reopened.load(1)?.data.length, 1000);
  assert.deepEqual(storage.loadLinkStates('S').get('origin'), { cursor: acknowledged }, 'on disk: the link state of the last commit that succeeded');
});
