/**
 * Goal: canopy keeps data.mdb allocated ahead of LMDB (core/store/lmdb/space-reserve.ts),
 * so LMDB never writes to a block the filesystem has not allocated: on ext4,
 * lmdb 3.5.6 aborts the process when such a write fails (test/fault/README.md).
 *
 * Method:
 * - on a temporary directory: the tail is really allocated (no sparse file),
 *   a file larger than the LMDB map reopens with its data intact, and for
 *   workloads that copy many pages (scattered removes, key-value updates,
 *   purges) on a growing file, LMDB never grows past what the reserve
 *   allocated before each commit, with at least SPACE_RESERVE_BYTES to spare;
 * - on a small tmpfs (root only, skipped otherwise): a commit that finds no
 *   space is refused with ERR_STORE_FULL before LMDB sees it; an existing store
 *   opens on a full filesystem and serves reads; a new one is refused with
 *   ERR_STORE_FULL; writes resume when space returns.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, closeSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { StoreError, type NewMessage } from '../../../core/jetstream/store.ts';
import { CommitPipeline } from '../../../core/store/lmdb/commit-pipeline.ts';
import { openLmdbDatabases, type LmdbDatabases } from '../../../core/store/lmdb/env.ts';
import { LmdbJetStreamStorage } from '../../../core/store/lmdb/lmdb-jetstream-storage.ts';
import { LmdbStreamStore } from '../../../core/store/lmdb/lmdb-stream-store.ts';
import { SPACE_EXTEND_STEP_BYTES, SPACE_RESERVE_BYTES } from '../../../core/store/lmdb/space-reserve.ts';
import { fill, mountTmpfs } from '../../helpers/tmpfs.ts';

const MiB = 1024 * 1024;

function makeTempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-space-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let clock = 0n;
function message(subject: string, bytes: number, fill = 0x61): NewMessage {
  clock += 1000n;
  return { subject, headers: undefined, data: Buffer.alloc(bytes, fill), timestampNs: clock };
}

/** One environment with one stream, wired as LmdbJetStreamStorage wires it, with the databases in reach. */
type Env = { readonly dbs: LmdbDatabases; readonly pipeline: CommitPipeline; readonly store: LmdbStreamStore; close(): Promise<void> };

function openEnv(path: string): Env {
  const dbs = openLmdbDatabases(path, 'always');
  const pipeline = new CommitPipeline(dbs.root, path, dbs.space);
  const store = LmdbStreamStore.open({ name: 'S', streamId: 1, databases: dbs, pipeline, onClose: () => undefined });
  let isClosed = false;
  return {
    dbs,
    pipeline,
    store,
    close: async () => {
      if (isClosed) return;
      isClosed = true;
      await store.close().catch(() => undefined);
      await pipeline.close();
      await dbs.root.close();
      dbs.space.close();
    },
  };
}

function dataFile(path: string): string {
  return join(path, 'data.mdb');
}

/** data.mdb's size, and that every byte of it is allocated (blocks, not holes). */
function assertAllocated(path: string, where: string): number {
  const stats = statSync(dataFile(path));
  assert.ok(stats.blocks * 512 >= stats.size, `${where}: data.mdb is allocated, not sparse (${stats.blocks * 512} of ${stats.size} bytes)`);
  return stats.size;
}

test('space reserve: data.mdb is allocated ahead of LMDB, and a file bigger than the map reopens intact', async (t) => {
  const path = join(makeTempDir(t), 'jetstream');
  let env = openEnv(path);
  t.after(() => env.close().catch(() => undefined));
  const opened = assertAllocated(path, 'after open');
  assert.ok(opened - env.dbs.space.usedEnd >= SPACE_RESERVE_BYTES, `the open leaves the reserve (${opened} bytes for ${env.dbs.space.usedEnd} used)`);
  assert.equal(opened % SPACE_EXTEND_STEP_BYTES, 0, 'extended in whole steps');

  for (let i = 1; i <= 3000; i++) env.store.append(message(`s.${i % 7}`, 500, i % 251));
  await env.store.flushed();
  const grown = assertAllocated(path, 'after 3000 appends');
  assert.ok(grown - env.dbs.space.usedEnd >= SPACE_RESERVE_BYTES, 'the reserve is kept past what LMDB uses');
  assert.equal(grown % SPACE_EXTEND_STEP_BYTES, 0, 'LMDB did not extend the file itself');

  // 70 MiB asked for: past the 64 MiB map LMDB starts with (env.ts).
  const bigNeed = 70 * MiB;
  assert.equal(env.dbs.space.ensure({ bytes: bigNeed, pageCopies: new Map() }), undefined);
  const big = assertAllocated(path, 'after a 70 MiB extension');
  assert.ok(big >= env.dbs.space.usedEnd + bigNeed + SPACE_RESERVE_BYTES, `extended to cover the need (${big})`);
  assert.ok(big < env.dbs.space.usedEnd + bigNeed + SPACE_RESERVE_BYTES + SPACE_EXTEND_STEP_BYTES, 'by at most one step more');
  await env.close();

  env = openEnv(path);
  assert.equal(statSync(dataFile(path)).size, big, 'a reopen keeps the preallocated tail');
  const state = env.store.state();
  assert.equal(state.messages, 3000);
  for (const seq of [1, 1500, 3000]) {
    const stored = env.store.load(seq);
    assert.deepEqual(stored?.data, Buffer.alloc(500, seq % 251), `message ${seq} intact after the reopen`);
  }
  for (let i = 1; i <= 500; i++) env.store.append(message('after', 2000));
  await env.store.flushed();
  assert.equal(env.store.state().messages, 3500, 'writes work on the reopened file');
  assert.equal(statSync(dataFile(path)).size, big, 'and use the preallocated tail');
});

test('space reserve: LMDB never grows past what was allocated before a commit, whatever the commit copies', async (t) => {
  const path = join(makeTempDir(t), 'jetstream');
  const env = openEnv(path);
  t.after(() => env.close().catch(() => undefined));
  const { store } = env;
  let commits = 0;
  /** After each commit: LMDB stayed inside the allocation and left at least the reserve. */
  const commit = async (what: string): Promise<void> => {
    await store.flushed();
    commits++;
    const size = statSync(dataFile(path)).size;
    const used = env.dbs.space.usedEnd;
    assert.equal(size % SPACE_EXTEND_STEP_BYTES, 0, `${what}: LMDB did not extend data.mdb itself (size ${size})`);
    assert.ok(size - used >= SPACE_RESERVE_BYTES, `${what}: the commit stayed within its bound (${size - used} bytes left of the reserve)`);
  };
  const subjects = 20_000;
  // A growing file (no free pages to reuse): every page a commit copies is a new one.
  for (let batch = 0; batch < 20; batch++) {
    for (let i = 0; i < 1000; i++) store.append(message(`kv.${(batch * 1000 + i) % subjects}`, 150));
    await commit('appends on 20,000 subjects');
  }
  // Removes of scattered messages: each copies a leaf of its own.
  for (let batch = 0; batch < 3; batch++) {
    for (let i = 0; i < 700; i++) store.remove(1 + batch * 7 + i * 23);
    await commit('scattered removes');
  }
  // Key-value updates: a new revision and the removal of the old one, on random keys.
  for (let batch = 0; batch < 5; batch++) {
    for (let i = 0; i < 700; i++) {
      const subject = `kv.${(i * 7919 + batch * 104_729) % subjects}`;
      const old = store.loadLast(subject);
      store.append(message(subject, 150));
      if (old !== undefined) store.remove(old.seq);
    }
    await commit('key-value updates');
  }
  for (let i = 0; i < 300; i++) store.remove(1000 + i * 31, { erase: true });
  await commit('erasing removes');
  store.purge({ keep: Math.floor(store.state().messages / 2) });
  await commit('purge of half');
  store.purge({});
  await commit('purge of everything');
  assert.equal(commits, 31);
  assert.equal(store.state().messages, 0);
});

/** Copies the first `bytes` of a file (LMDB's used pages: the rest of data.mdb is the reserve's zeros). */
function copyHead(from: string, to: string, bytes: number): void {
  const source = openSync(from, 'r');
  const target = openSync(to, 'w');
  const buffer = Buffer.alloc(MiB);
  try {
    for (let offset = 0; offset < bytes; ) {
      const read = readSync(source, buffer, 0, Math.min(buffer.length, bytes - offset), offset);
      assert.ok(read > 0);
      writeSync(target, buffer, 0, read, offset);
      offset += read;
    }
  } finally {
    closeSync(source);
    closeSync(target);
  }
}

test('space reserve on a full tmpfs: refused before LMDB, reads still open, a new store is refused, writes resume', async (t) => {
  let env: Env | undefined;
  const mountPoint = mountTmpfs(t, 8 * MiB, async () => await env?.close());
  if (mountPoint === undefined) return;

  // A store with data, made elsewhere; copied without its preallocated tail, so the reserve has to write.
  const source = join(makeTempDir(t), 'jetstream');
  const made = openEnv(source);
  for (let i = 1; i <= 2000; i++) made.store.append(message(`s.${i % 3}`, 800, i % 199));
  await made.store.flushed();
  const usedEnd = made.dbs.space.usedEnd;
  await made.close();
  const path = join(mountPoint, 'jetstream');
  mkdirSync(path);
  copyFileSync(join(source, 'lock.mdb'), join(path, 'lock.mdb'));
  copyHead(dataFile(source), dataFile(path), usedEnd);
  const filler = fill(mountPoint, 'filler', 0);

  // Opens for reads although the reserve cannot be extended (the open transaction writes nothing).
  env = openEnv(path);
  assert.equal(statSync(dataFile(path)).size, usedEnd, 'nothing could be preallocated');
  assert.equal(env.store.state().messages, 2000);
  assert.deepEqual(env.store.load(1234)?.data, Buffer.alloc(800, 1234 % 199), 'reads work on the full filesystem');

  // A write is refused by the reserve, before LMDB: the store shows what is on disk.
  const seq = env.store.append(message('refused', 100));
  const refusal = await env.store.flushed().then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(refusal instanceof StoreError, `a StoreError, got ${String(refusal)}`);
  assert.equal(refusal.code, 'ERR_STORE_FULL');
  assert.match(refusal.message, /^store is full: No space left on device \(\d+ more bytes needed in data\.mdb\)$/);
  assert.equal(env.store.load(seq), undefined, 'the refused append is gone');
  assert.equal(env.store.state().messages, 2000);
  assert.equal(env.dbs.space.usedEnd, usedEnd, 'LMDB wrote nothing');

  // A new store cannot be created on the full filesystem: an error, not a crash.
  const fresh = join(mountPoint, 'fresh');
  mkdirSync(fresh);
  rmSync(filler);
  fill(mountPoint, 'filler', 256 * 1024); // room for LMDB's lock file and meta pages, not for the reserve
  assert.throws(
    () => LmdbJetStreamStorage.open(fresh),
    (err: unknown) => err instanceof StoreError && err.code === 'ERR_STORE_FULL',
    'a new store on a full filesystem is refused with ERR_STORE_FULL',
  );

  // Space returns: writes resume.
  rmSync(join(mountPoint, 'filler'));
  rmSync(fresh, { recursive: true, force: true });
  const resumed = env.store.append(message('resumed', 100));
  await env.store.flushed();
  assert.equal(env.store.load(resumed)?.subject, 'resumed');
  assert.ok(statSync(dataFile(path)).size - env.dbs.space.usedEnd >= SPACE_RESERVE_BYTES, 'the reserve is back');
});
