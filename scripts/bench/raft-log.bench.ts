/**
 * LMDB Raft log benchmark (hub/raft-host/lmdb-log-storage.ts). Not a test,
 * not a CI gate (STYLE.md §2.8 (6)).
 * Run: `node --import tsx scripts/bench/raft-log.bench.ts [--seconds 5] [--dir /path]`
 *
 * One Ready at a time, as the host's driver saves them: `save()` of N entries
 * of 128 bytes plus the hard state, awaited (one transaction, fsynced before
 * it resolves), for N = 1, 64 and 1024 entries per Ready. Prints entries per
 * second and the latency of one save (p50, p99). Each run starts on a fresh
 * log, with a snapshot and compaction every 64 Ki entries as a host would do
 * (so the figures include the deletes of compaction). The directory is
 * removed at the end. First line: the disk's own floor, a loop of
 * write(128 B) + fdatasync in the same directory, measured just before.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LmdbLogStorage } from '../../hub/raft-host/lmdb-log-storage.ts';
import type { Entry } from '../../hub/raft/index.ts';
import { confStateOf } from '../../hub/raft/index.ts';

const ENTRY_DATA = new Uint8Array(128).fill(0x61);
const BATCHES = [1, 64, 1024] as const;
/** Entries kept after a compaction, and how often the bench compacts. */
const COMPACT_EVERY_ENTRIES = 65_536;
const COMPACT_KEEP_ENTRIES = 4_096;
const CONF_STATE = confStateOf({ voters: [1, 2, 3] });

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : (process.argv[index + 1] ?? fallback);
}

const SECONDS = Number(option('seconds', '5'));
const BASE_DIR = option('dir', tmpdir());

function entriesFrom(from: number, count: number): Entry[] {
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push({ kind: 'normal', index: from + i, term: 2, data: ENTRY_DATA });
  return entries;
}

async function run(batch: number): Promise<void> {
  const dir = mkdtempSync(join(BASE_DIR, 'canopy-raft-log-bench-'));
  const storage = LmdbLogStorage.open({ path: dir });
  try {
    await storage.initialize({ identity: { clusterId: 'bench', nodeId: 1 } });
    const latencies: number[] = [];
    const started = performance.now();
    let compactedAt = 0;
    while (performance.now() - started < SECONDS * 1000) {
      const from = storage.lastIndex() + 1;
      const before = performance.now();
      await storage.save({ entries: entriesFrom(from, batch), hardState: { term: 2, vote: 1, commit: from - 1 } });
      latencies.push(performance.now() - before);
      const last = storage.lastIndex();
      if (last - compactedAt >= COMPACT_EVERY_ENTRIES) {
        const snapshot = storage.createSnapshot({ index: last, confState: CONF_STATE, data: new Uint8Array(0) });
        await Promise.all([snapshot, storage.compact(last - COMPACT_KEEP_ENTRIES)]);
        compactedAt = last;
      }
    }
    report(`${String(batch).padStart(5)} entries/Ready`, latencies, batch, performance.now() - started);
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The disk's floor: write(128 B) + fdatasync, one at a time, for a second. */
function fsyncFloor(): void {
  const dir = mkdtempSync(join(BASE_DIR, 'canopy-raft-log-bench-fsync-'));
  const fd = openSync(join(dir, 'floor'), 'w');
  const latencies: number[] = [];
  const started = performance.now();
  try {
    while (performance.now() - started < 1000) {
      const before = performance.now();
      writeSync(fd, ENTRY_DATA);
      fdatasyncSync(fd);
      latencies.push(performance.now() - before);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  latencies.sort((a, b) => a - b);
  report('write + fdatasync', latencies, 1, performance.now() - started);
}

function report(label: string, latencies: number[], batch: number, elapsedMs: number): void {
  latencies.sort((a, b) => a - b);
  const at = (q: number): string => `${latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(2)} ms`;
  const rate = Math.round(((latencies.length * batch) / elapsedMs) * 1000).toLocaleString('en-US');
  let sum = 0;
  for (const latency of latencies) sum += latency;
  const mean = `${(sum / latencies.length).toFixed(2)} ms`;
  console.log(label.padEnd(24), `${rate} entries/s`.padEnd(22), `${latencies.length} writes, p50 ${at(0.5)}, p90 ${at(0.9)}, p99 ${at(0.99)}, mean ${mean}`);
}

console.log(`LMDB Raft log: save() of one Ready at a time, fsynced (128-byte entries, ${SECONDS} s per size)`);
fsyncFloor();
for (const batch of BATCHES) await run(batch);
