/**
 * LMDB stream store benchmark. Not a test, not a CI gate (STYLE.md §2.8 (6)).
 * Run: `node --import tsx scripts/bench/store.bench.ts [--messages 1000000] [--dir /path]`
 *
 * Every figure is "acknowledge after fsync": an append counts once the
 * flushed() covering it resolved.
 * 1. throughput, appends in batches per event turn, then await flushed();
 * 2. throughput with 100 concurrent publishers, each append + await flushed();
 * 3. latency of one append + flushed() at a time (p50, p99);
 * 4. disk bytes for N stored 128-byte messages (default 1 M);
 * 5. reopen time with those N messages (open, state, first reads);
 * 6. read cost (µs per call) on 100,000 messages over 10 subjects, with
 *    nothing in flight, and read rate while a publisher keeps commits in flight.
 * The directory is removed at the end.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NewMessage, StreamStore } from '../../core/jetstream/store.ts';
import { LMDB_PAGE_BYTES } from '../../core/store/lmdb/env.ts';
import { LmdbJetStreamStorage } from '../../core/store/lmdb/lmdb-jetstream-storage.ts';
import { nowNs } from '../../core/util/time.ts';

const PAYLOAD = Buffer.alloc(128, 0x61);
const SUBJECT = 'orders.created';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : (process.argv[index + 1] ?? fallback);
}

const MESSAGES = Number(option('messages', '1000000'));
const BASE_DIR = option('dir', tmpdir());

function newMessage(subject = SUBJECT): NewMessage {
  return { subject, headers: undefined, data: PAYLOAD, timestampNs: nowNs() };
}

function fresh(name: string): { dir: string; storage: LmdbJetStreamStorage; store: StreamStore } {
  const dir = mkdtempSync(join(BASE_DIR, `canopy-store-bench-${name}-`));
  const storage = LmdbJetStreamStorage.open(dir);
  return { dir, storage, store: storage.openStream('BENCH', 'file') };
}

async function dispose(run: { dir: string; storage: LmdbJetStreamStorage }): Promise<void> {
  await run.storage.close();
  rmSync(run.dir, { recursive: true, force: true });
}

function rate(count: number, ms: number): string {
  return `${Math.round((count / ms) * 1000).toLocaleString('en-US')} msg/s`;
}

async function batchedThroughput(batch: number, total: number): Promise<void> {
  const run = fresh('batch');
  const started = performance.now();
  for (let done = 0; done < total; done += batch) {
    for (let i = 0; i < batch; i++) run.store.append(newMessage());
    await run.store.flushed();
  }
  const ms = performance.now() - started;
  console.log(`append, ${batch} per turn then flushed()`.padEnd(52, '.'), rate(total, ms));
  await dispose(run);
}

async function concurrentThroughput(publishers: number, total: number): Promise<void> {
  const run = fresh('concurrent');
  let remaining = total;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: publishers }, async () => {
      while (remaining-- > 0) {
        run.store.append(newMessage());
        await run.store.flushed();
      }
    }),
  );
  const ms = performance.now() - started;
  console.log(`append + flushed(), ${publishers} concurrent publishers`.padEnd(52, '.'), rate(total, ms));
  await dispose(run);
}

async function sequentialLatency(count: number): Promise<void> {
  const run = fresh('latency');
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    run.store.append(newMessage());
    await run.store.flushed();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number): string => `${(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]! * 1000).toFixed(0)} µs`;
  const total = samples.reduce((sum, ms) => sum + ms, 0);
  console.log('append + flushed(), one at a time'.padEnd(52, '.'), `p50 ${at(0.5)}, p99 ${at(0.99)}, ${rate(count, total)}`);
  await dispose(run);
}

async function diskAndReopen(total: number): Promise<void> {
  const run = fresh('disk');
  const batch = 10_000;
  const started = performance.now();
  for (let done = 0; done < total; done += batch) {
    for (let i = 0; i < Math.min(batch, total - done); i++) run.store.append(newMessage());
    await run.store.flushed();
  }
  const fillMs = performance.now() - started;
  await run.storage.close();
  const file = join(run.dir, 'jetstream', 'data.mdb');
  const stats = statSync(file);
  const perMessage = (bytes: number): string => (bytes / total).toFixed(1);
  console.log(`fill ${total.toLocaleString('en-US')} x 128 B (subject "${SUBJECT}")`.padEnd(52, '.'), rate(total, fillMs));
  console.log(
    `disk for ${total.toLocaleString('en-US')} messages (${LMDB_PAGE_BYTES / 1024} KiB pages)`.padEnd(52, '.'),
    `${(stats.size / 1e6).toFixed(1)} MB file, ${(stats.blocks * 512 / 1e6).toFixed(1)} MB allocated (${perMessage(stats.blocks * 512)} B/msg)`,
  );
  const reopenStarted = performance.now();
  const storage = LmdbJetStreamStorage.open(run.dir);
  const store = storage.openStream('BENCH', 'file');
  const state = store.state();
  const ready = performance.now() - reopenStarted;
  const last = store.loadLast(SUBJECT);
  const counts = store.subjectCounts('>');
  const firstReads = performance.now() - reopenStarted;
  if (state.messages !== total || last?.seq !== total || counts.get(SUBJECT) !== total) throw new Error('reopened store disagrees');
  console.log(
    `reopen with ${total.toLocaleString('en-US')} messages`.padEnd(52, '.'),
    `${ready.toFixed(1)} ms to state(), ${firstReads.toFixed(1)} ms incl. loadLast + subjectCounts`,
  );
  await storage.close();
  rmSync(run.dir, { recursive: true, force: true });
}

/** KV-like: every message on its own subject (`kv.key.<n>`): the subject index has one key per message. */
async function uniqueSubjects(total: number): Promise<void> {
  const run = fresh('kv');
  const batch = 1000;
  const started = performance.now();
  for (let done = 0; done < total; done += batch) {
    for (let i = 0; i < batch; i++) run.store.append(newMessage(`kv.key.${done + i}`));
    await run.store.flushed();
  }
  const ms = performance.now() - started;
  const counted = run.store.subjectCounts('kv.key.*').size;
  const countMs = performance.now() - started - ms;
  await run.storage.close();
  const stats = statSync(join(run.dir, 'jetstream', 'data.mdb'));
  console.log(
    `unique subject per message, ${total.toLocaleString('en-US')}, 1000 per turn`.padEnd(52, '.'),
    `${rate(total, ms)}, ${(stats.blocks * 512 / total).toFixed(1)} B/msg on disk, subjectCounts('kv.key.*') of ${counted.toLocaleString('en-US')} in ${countMs.toFixed(0)} ms`,
  );
  rmSync(run.dir, { recursive: true, force: true });
}

/** Mean µs per call of `read(i)` over `count` calls. */
function perCall(count: number, read: (i: number) => unknown): string {
  const started = performance.now();
  for (let i = 0; i < count; i++) read(i);
  return `${(((performance.now() - started) * 1000) / count).toFixed(2)} µs`;
}

/** Read paths a consumer or the stream API uses, on 100,000 messages over 10 subjects with every 10th removed. */
async function reads(): Promise<void> {
  const run = fresh('reads');
  const total = 100_000;
  const subjects = Array.from({ length: 10 }, (_, i) => `orders.s${i}`);
  for (let done = 0; done < total; done += 10_000) {
    for (let i = 0; i < 10_000; i++) run.store.append(newMessage(subjects[i % subjects.length]));
    await run.store.flushed();
  }
  for (let seq = 5; seq <= total; seq += 10) run.store.remove(seq);
  await run.store.flushed();
  const store = run.store;
  const seqAt = (i: number): number => 1 + ((i * 7919) % total);
  console.log(
    'reads, nothing in flight'.padEnd(52, '.'),
    [
      `load ${perCall(20_000, (i) => store.load(seqAt(i)))}`,
      `loadNext('>') ${perCall(20_000, (i) => store.loadNext('>', seqAt(i)))}`,
      `loadNext(subject) ${perCall(5_000, (i) => store.loadNext(subjects[i % 10]!, seqAt(i)))}`,
      `loadLast(subject) ${perCall(20_000, (i) => store.loadLast(subjects[i % 10]!))}`,
      `countPending(subject) ${perCall(5_000, (i) => store.countPending(subjects[i % 10]!, seqAt(i)))}`,
      `subjectCounts('>') ${perCall(500, () => store.subjectCounts('>'))}`,
    ].join(', '),
  );
  // A publisher appends in the background: its commits are in flight while the reads run.
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      for (let i = 0; i < 100; i++) store.append(newMessage(subjects[i % subjects.length]));
      await store.flushed();
    }
  })();
  const busyStarted = performance.now();
  let calls = 0;
  while (performance.now() - busyStarted < 1000) {
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 200; i++, calls++) {
      store.load(seqAt(calls));
      store.loadNext('>', seqAt(calls));
      store.loadLast(subjects[calls % 10]!);
    }
  }
  publishing = false;
  await publisher;
  console.log('reads while publishing (load, loadNext, loadLast)'.padEnd(52, '.'), `${(calls / ((performance.now() - busyStarted) / 1000)).toLocaleString('en-US', { maximumFractionDigits: 0 })} triples/s`);
  await dispose(run);
}

console.log(`LMDB stream store, ${SUBJECT}, 128-byte payloads, in ${BASE_DIR}`);
await batchedThroughput(1000, 200_000);
await batchedThroughput(100, 100_000);
await concurrentThroughput(100, 50_000);
await concurrentThroughput(10, 10_000);
await sequentialLatency(2000);
await uniqueSubjects(100_000);
await diskAndReopen(MESSAGES);
await reads();
