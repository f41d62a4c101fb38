/**
 * Goal: an acknowledged append (flushed() resolved) survives a crash of the
 * process, intact, and the store reopens consistent: sequences contiguous from
 * 1, no duplicates, counters matching the messages.
 *
 * Method: a child process (lmdb-crash-child.ts) appends with 16 concurrent
 * publishers and prints `ack <seq>` after each flushed(); the test SIGKILLs it
 * at a random moment, reopens the store and checks every printed sequence
 * byte for byte. Ten rounds on the same store, so later rounds also recover a
 * store that was killed before. Messages committed after the last ack the
 * parent read may exist too (in flight when killed), as Jepsen's checkers allow.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LmdbJetStreamStorage } from '../../../core/store/lmdb/lmdb-jetstream-storage.ts';
import { bundleChild, runChildAndKill } from '../../helpers/crash-child.ts';
import { crashPayload, CRASH_STREAM, CRASH_SUBJECTS } from './lmdb-crash-payload.ts';

const ROUNDS = 10;
const RUN_MS_MIN = 50;
const RUN_MS_MAX = 500;
const CHILD_SOURCE = join(import.meta.dirname, 'lmdb-crash-child.ts');

/** Runs the child until a random moment after it is ready; returns the sequences it acknowledged. */
async function runAndKill(childScript: string, storeDir: string, runMs: number): Promise<{ acked: number[]; firstExpected: number }> {
  const lines = await runChildAndKill({ script: childScript, args: [storeDir], runMs });
  const ready = /^ready (\d+)$/.exec(lines[0] ?? '');
  assert.ok(ready !== null, `first line is "ready <seq>": ${lines[0]}`);
  const acked = lines.slice(1).flatMap((line) => {
    const match = /^ack (\d+)$/.exec(line);
    return match === null ? [] : [Number(match[1])];
  });
  return { acked, firstExpected: Number(ready[1]) };
}

test('LMDB: acknowledged appends survive SIGKILL, and the store reopens consistent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-lmdb-crash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const childScript = bundleChild({ dir, source: CHILD_SOURCE });
  const storeDir = join(dir, 'store');
  let previousLast = 0;
  let totalAcked = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const runMs = RUN_MS_MIN + Math.floor(Math.random() * (RUN_MS_MAX - RUN_MS_MIN));
    const { acked, firstExpected } = await runAndKill(childScript, storeDir, runMs);
    const where = `round ${round} (killed after ${runMs} ms, ${acked.length} acks)`;
    assert.equal(firstExpected, previousLast + 1, `${where}: the child continued after the last stored sequence`);
    assert.equal(new Set(acked).size, acked.length, `${where}: no sequence acknowledged twice`);
    const storage = LmdbJetStreamStorage.open(storeDir);
    try {
      const store = storage.openStream(CRASH_STREAM, 'file');
      const state = store.state();
      for (const seq of acked) {
        const message = store.load(seq);
        assert.ok(message !== undefined, `${where}: acknowledged seq ${seq} is present`);
        assert.deepEqual(message.data, crashPayload(seq), `${where}: seq ${seq} is intact`);
      }
      // Contiguous from 1, nothing deleted, and the counters describe what is there.
      if (state.lastSeq > 0) assert.equal(state.firstSeq, 1, where);
      assert.equal(state.messages, state.lastSeq, `${where}: contiguous (no gaps)`);
      assert.equal(state.numDeleted, 0, where);
      assert.ok(state.lastSeq >= Math.max(previousLast, ...acked), `${where}: nothing acknowledged is beyond lastSeq`);
      for (let seq = previousLast + 1; seq <= state.lastSeq; seq++) {
        assert.deepEqual(store.load(seq)?.data, crashPayload(seq), `${where}: seq ${seq} holds its own message`);
      }
      let counted = 0;
      for (const count of store.subjectCounts('>').values()) counted += count;
      assert.equal(counted, state.messages, `${where}: the subject index counts every message once`);
      assert.equal(store.countPending(CRASH_SUBJECTS[0], 0), Math.floor(state.lastSeq / 3), where);
      previousLast = state.lastSeq;
      totalAcked += acked.length;
    } finally {
      await storage.close();
    }
  }
  assert.ok(totalAcked > 0, 'the children acknowledged something');
  t.diagnostic(`${ROUNDS} rounds, ${totalAcked} acknowledged appends, ${previousLast} stored`);
});
