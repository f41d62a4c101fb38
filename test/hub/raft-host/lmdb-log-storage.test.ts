/**
 * LmdbLogStorage (hub/raft-host/lmdb-log-storage.ts): the LogStorage contract
 * (with the default tail cache, and with a tiny one so that reads go to LMDB),
 * then what only a disk has: reopening, identity, damage detection.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { StoreError, StoreErrorCode } from '../../../core/jetstream/store.ts';
import { AssertionError } from '../../../core/util/assert.ts';
import { SeededPrng } from '../../../core/util/prng.ts';
import { decodeEntry, encodeEntry } from '../../../hub/raft-host/log-codec.ts';
import { LmdbLogStorage } from '../../../hub/raft-host/lmdb-log-storage.ts';
import type { Entry } from '../../../hub/raft/index.ts';
import { confStateOf, MemoryLogStorage, RAFT_CONFIG_DEFAULTS, RaftNode, silentRaftLogger } from '../../../hub/raft/index.ts';
import { fill, mountTmpfs } from '../../helpers/tmpfs.ts';
import { describeLogStorage, entryRange, normal, runLogStorageContract } from './log-storage.contract.ts';

const IDENTITY = { clusterId: 'test-cluster', nodeId: 7 } as const;
/** Small enough that most reads in the tests below go to LMDB (about 4 entries). */
const TINY_CACHE_BYTES = 150;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-raft-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens `dir`, closing it when the test ends (unless the test closed it). */
function openIn(t: TestContext, dir: string, cacheBytesMax?: number): LmdbLogStorage {
  const storage = LmdbLogStorage.open(cacheBytesMax === undefined ? { path: dir } : { path: dir, cacheBytesMax });
  t.after(() => storage.close());
  return storage;
}

async function makeInitialized(t: TestContext, cacheBytesMax?: number): Promise<LmdbLogStorage> {
  const storage = openIn(t, tempDir(t), cacheBytesMax);
  await storage.initialize({ identity: IDENTITY });
  return storage;
}

runLogStorageContract('LmdbLogStorage', (t) => makeInitialized(t));
runLogStorageContract('LmdbLogStorage (tiny cache)', (t) => makeInitialized(t, TINY_CACHE_BYTES));

test('LmdbLogStorage: a blank environment has no identity and takes no log until initialized', async (t) => {
  const dir = tempDir(t);
  const storage = LmdbLogStorage.open({ path: dir });
  assert.equal(storage.identity, undefined);
  assert.throws(() => storage.append([normal(1, 1)]), AssertionError);
  await storage.initialize({ identity: IDENTITY });
  assert.throws(() => storage.initialize({ identity: IDENTITY }), AssertionError, 'only once');
  await storage.close();
  const reopened = openIn(t, dir);
  assert.deepEqual(reopened.identity, IDENTITY);
});

test('LmdbLogStorage: initialize with voters writes the bootstrap configuration of MemoryLogStorage.bootstrap', async (t) => {
  const dir = tempDir(t);
  const storage = LmdbLogStorage.open({ path: dir });
  await storage.initialize({ identity: IDENTITY, voters: [3, 1, 2] });
  await storage.close();
  assert.deepEqual(describeLogStorage(openIn(t, dir)), describeLogStorage(MemoryLogStorage.bootstrap([1, 2, 3])));
});

test('LmdbLogStorage: a second open of the same environment in one process is refused', async (t) => {
  const dir = tempDir(t);
  openIn(t, dir);
  assert.throws(() => LmdbLogStorage.open({ path: dir }), AssertionError);
});

test('LmdbLogStorage: random writes match MemoryLogStorage, before and after every reopen', async (t) => {
  // Goal: whatever sequence of Ready writes, snapshots and compactions the host makes, the LMDB log
  // answers exactly as the in-memory model, and a reopen (after each durable write) changes nothing.
  // Method: 300 seeded random operations on both, compared after each; reopen every 7th; a tiny
  // cache so that reads, eviction and the start-up scan's tail all take their LMDB paths.
  const dir = tempDir(t);
  const prng = new SeededPrng(20261127);
  const model = new MemoryLogStorage();
  let storage = LmdbLogStorage.open({ path: dir, cacheBytesMax: TINY_CACHE_BYTES });
  t.after(() => storage.close());
  await storage.initialize({ identity: IDENTITY });
  let term = 1;
  for (let step = 0; step < 300; step++) {
    const last = model.lastIndex();
    const first = model.firstIndex();
    const choice = prng.between(0, 99);
    if (choice < 55) {
      // A Ready: entries (a conflict now and then), hard state.
      const isConflict = choice < 10 && last >= first;
      if (isConflict) term++;
      const from = isConflict ? prng.between(Math.max(first, last - 4), last) : last + 1;
      const entries = entryRange(from, from + prng.between(1, 6) - 1, term);
      const hardState = { term, vote: prng.between(0, 3), commit: Math.max(0, from - 1) };
      model.append(entries);
      model.setHardState(hardState);
      await storage.save({ entries, hardState });
    } else if (choice < 75 && last >= first) {
      const index = prng.between(Math.max(model.snapshot().metadata.index, first - 1), last);
      if (index > 0 && index >= model.snapshot().metadata.index) {
        const options = { index, confState: confStateOf({ voters: [1, 2, 3] }), data: new Uint8Array([step & 0xff]) };
        model.createSnapshot(options);
        await storage.createSnapshot(options);
        const compactTo = prng.between(first - 1, index);
        model.compact(compactTo);
        await storage.compact(compactTo);
      }
    } else if (choice < 80) {
      term++;
      const snapshot = { metadata: { index: last + prng.between(1, 5), term, confState: confStateOf({ voters: [1, 2], learners: [4] }) }, data: new Uint8Array([9]) };
      model.applySnapshot(snapshot);
      await storage.save({ snapshot, entries: [normal(snapshot.metadata.index + 1, term)], hardState: { term, vote: 0, commit: snapshot.metadata.index } });
      model.append([normal(snapshot.metadata.index + 1, term)]);
      model.setHardState({ term, vote: 0, commit: snapshot.metadata.index });
    } else {
      term++;
      const hardState = { term, vote: 1, commit: model.hardState().commit };
      model.setHardState(hardState);
      await storage.setHardState(hardState);
    }
    assert.deepEqual(describeLogStorage(storage), describeLogStorage(model), `step ${step}`);
    if (step % 7 === 6) {
      await storage.close();
      storage = LmdbLogStorage.open({ path: dir, cacheBytesMax: TINY_CACHE_BYTES });
      assert.deepEqual(describeLogStorage(storage), describeLogStorage(model), `step ${step}, reopened`);
    }
  }
});

test('LmdbLogStorage: a flipped byte in a stored entry is reported at open, naming the entry', async (t) => {
  const dir = tempDir(t);
  const storage = LmdbLogStorage.open({ path: dir });
  await storage.initialize({ identity: IDENTITY });
  const marker = (index: number): string => `entry-marker-${String(index).padStart(4, '0')}-`.repeat(4);
  const entries: Entry[] = [];
  for (let index = 1; index <= 50; index++) entries.push(normal(index, 1, marker(index)));
  await storage.append(entries);
  await storage.close();
  const file = join(dir, 'data.mdb');
  const bytes = readFileSync(file);
  const at = bytes.indexOf(Buffer.from(marker(37)));
  assert.ok(at > 0, 'the entry is in data.mdb');
  bytes[at + 20]! ^= 0x04;
  writeFileSync(file, bytes);
  assert.throws(
    () => LmdbLogStorage.open({ path: dir }),
    (err: unknown) => err instanceof StoreError && err.code === StoreErrorCode.corrupt && /entry 37 is damaged/.test(err.message),
  );
});

test('LmdbLogStorage codec: every single-bit flip of an entry record is detected', () => {
  // The read path (entries() below the cache) decodes with the same function as the open scan.
  const record = encodeEntry({ kind: 'conf-change', index: 12, term: 3, change: { type: 'add-voter', nodeId: 4, context: new Uint8Array([1, 2]) } });
  assert.equal(decodeEntry(12, record).term, 3);
  for (let bit = 0; bit < record.length * 8; bit++) {
    const damaged = Buffer.from(record);
    damaged[bit >> 3]! ^= 1 << (bit & 7);
    assert.throws(() => decodeEntry(12, damaged), StoreError, `bit ${bit}`);
  }
  assert.throws(() => decodeEntry(13, record), StoreError, 'an intact record under another index');
  assert.throws(() => decodeEntry(12, record.subarray(0, 3)), StoreError, 'a short record');
});

test('LmdbLogStorage: entries written while a commit is in flight are read from memory, not from the older disk', async (t) => {
  // Goal: the tail cache never evicts an entry that is not on disk yet, even when a commit lands meanwhile.
  // Method: a tiny cache; entries 1-10 of term 1 go to LMDB; while that commit is in flight, 5-12 of
  // term 2 replace the suffix. When the first commit lands, 5-12 must still read as term 2.
  const storage = await makeInitialized(t, TINY_CACHE_BYTES);
  const first = storage.append(entryRange(1, 10, 1));
  await new Promise((resolve) => setImmediate(resolve));
  const second = storage.append(entryRange(5, 12, 2));
  await first;
  const expected = [...entryRange(1, 4, 1), ...entryRange(5, 12, 2)];
  assert.deepEqual(storage.entries(1, 13, Number.MAX_SAFE_INTEGER), expected);
  await second;
  assert.deepEqual(storage.entries(1, 13, Number.MAX_SAFE_INTEGER), expected);
});

test('LmdbLogStorage on a full disk: a failed save rejects, the log shows the disk, and takes no more writes', async (t) => {
  // Method: an 8 MiB tmpfs (root only; skipped otherwise) filled up, then a Ready larger than the
  // space reserve's headroom: the commit is refused before LMDB sees it (space-reserve.ts).
  let storage: LmdbLogStorage | undefined;
  const mountPoint = mountTmpfs(t, 8 * 1024 * 1024, async () => await storage?.close());
  if (mountPoint === undefined) return;
  storage = LmdbLogStorage.open({ path: join(mountPoint, 'raft') });
  await storage.initialize({ identity: IDENTITY });
  await storage.save({ entries: entryRange(1, 10, 1), hardState: { term: 1, vote: 7, commit: 0 } });
  const before = describeLogStorage(storage);
  fill(mountPoint, 'filler', 0);
  const big: Entry[] = [];
  for (let index = 11; index <= 50; index++) big.push({ kind: 'normal', index, term: 2, data: new Uint8Array(64 * 1024).fill(index) });
  const saved = storage.save({ entries: big, hardState: { term: 2, vote: 7, commit: 10 } });
  assert.equal(storage.lastIndex(), 50, 'visible before the commit');
  await assert.rejects(saved, (err: unknown) => err instanceof StoreError && err.code === StoreErrorCode.full);
  assert.deepEqual(describeLogStorage(storage), before, 'after the failure the log is what is on disk');
  assert.throws(() => storage!.append([normal(11, 1)]), (err: unknown) => err instanceof StoreError && err.code === StoreErrorCode.full);
});

/** The host loop of hub/raft/README.md for one voter (no peers): save, apply, advance; proposes `during` while a save is in flight. */
async function runSingleVoter(node: RaftNode, storage: LmdbLogStorage, applied: string[], during: string[] = []): Promise<void> {
  while (node.hasReady()) {
    const ready = node.ready();
    const saved = storage.save(ready);
    // The node keeps stepping (and reading the storage) while the write is in flight.
    for (const text of during.splice(0)) assert.ok(node.propose(new TextEncoder().encode(text)).isAccepted);
    await saved;
    for (const entry of ready.committedEntries) {
      if (entry.kind === 'normal' && entry.data.length > 0) applied.push(new TextDecoder().decode(entry.data));
    }
    node.advance(ready);
  }
}

test('LmdbLogStorage under a RaftNode: a single voter commits what it saved, and restarts from the disk', async (t) => {
  const dir = tempDir(t);
  const newNode = (storage: LmdbLogStorage): RaftNode =>
    new RaftNode({ config: { ...RAFT_CONFIG_DEFAULTS, id: 1 }, storage, prng: new SeededPrng(1), logger: silentRaftLogger });
  let storage = LmdbLogStorage.open({ path: dir, cacheBytesMax: TINY_CACHE_BYTES });
  t.after(() => storage.close());
  await storage.initialize({ identity: { clusterId: 'test-cluster', nodeId: 1 }, voters: [1] });
  let node = newNode(storage);
  node.campaign();
  const applied: string[] = [];
  await runSingleVoter(node, storage, applied);
  assert.equal(node.status().role, 'leader');
  const expected: string[] = [];
  for (let i = 0; i < 20; i++) {
    const texts = [`p${i}a`, `p${i}b`];
    expected.push(...texts);
    assert.ok(node.propose(new TextEncoder().encode(texts[0]!)).isAccepted);
    await runSingleVoter(node, storage, applied, [texts[1]!]);
  }
  assert.deepEqual(applied, expected);
  const before = node.status();
  await storage.close();

  storage = LmdbLogStorage.open({ path: dir, cacheBytesMax: TINY_CACHE_BYTES });
  node = newNode(storage);
  const after = node.status();
  assert.deepEqual([after.term, after.vote, after.commit, after.lastIndex], [before.term, before.vote, before.commit, before.lastIndex]);
  node.campaign();
  const reapplied: string[] = [];
  await runSingleVoter(node, storage, reapplied, ['after restart']);
  assert.equal(node.status().term, before.term + 1);
  assert.deepEqual(reapplied, [...expected, 'after restart'], 'the restarted node applies the whole durable log, then the new proposal');
});
