/**
 * Goal: every Raft log write whose promise resolved survives a SIGKILL of the
 * process, and the log reopens as exactly the state after the last
 * acknowledged write, or after the one write in flight (one transaction per
 * Ready: never a part of one), with every entry intact.
 *
 * Method: a child process (lmdb-log-crash-child.ts) saves Readys one at a time
 * (appends, conflict truncations under new terms, snapshots with compaction),
 * announcing each write and acknowledging it once durable; the test SIGKILLs
 * it at a random moment, replays the announced writes on a MemoryLogStorage
 * model and compares the reopened log with the model after the last ack, or
 * after the write announced after it. Ten rounds on the same log, so later
 * rounds also recover a log that was killed before.
 */
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LmdbLogStorage } from '../../../hub/raft-host/lmdb-log-storage.ts';
import { MemoryLogStorage } from '../../../hub/raft/index.ts';
import { bundleChild, runChildAndKill } from '../../helpers/crash-child.ts';
import { describeLogStorage } from './log-storage.contract.ts';
import { CRASH_CONF_STATE, crashEntries, crashHardState, crashSnapshotData } from './lmdb-log-crash-writes.ts';

const ROUNDS = 10;
const RUN_MS_MIN = 50;
const RUN_MS_MAX = 500;
const CHILD_SOURCE = join(import.meta.dirname, 'lmdb-log-crash-child.ts');

/** Applies one announced write (a `w` or `s` line) to the model. */
function applyLine(model: MemoryLogStorage, line: string): void {
  const fields = line.split(' ').map(Number);
  if (line.startsWith('w ')) {
    const [, from, count, term, commit] = fields as [number, number, number, number, number];
    model.append(crashEntries(from, count, term));
    model.setHardState(crashHardState(term, commit));
  } else {
    assert.ok(line.startsWith('s '), `an announced write: ${line}`);
    const [, snapshotIndex, compactTo] = fields as [number, number, number];
    model.createSnapshot({ index: snapshotIndex, confState: CRASH_CONF_STATE, data: crashSnapshotData(snapshotIndex) });
    model.compact(compactTo);
  }
}

test('LMDB Raft log: acknowledged writes survive SIGKILL, and the log reopens at a Ready boundary', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-raft-log-crash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const childScript = bundleChild({ dir, source: CHILD_SOURCE });
  const path = join(dir, 'raft');
  let model = new MemoryLogStorage();
  let totalAcked = 0;
  let inFlightKept = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const runMs = RUN_MS_MIN + Math.floor(Math.random() * (RUN_MS_MAX - RUN_MS_MIN));
    const lines = await runChildAndKill({ script: childScript, args: [path], runMs });
    const where = `round ${round} (killed after ${runMs} ms)`;
    assert.equal(lines[0], `ready ${model.lastIndex()}`, `${where}: the child started from the reopened log`);
    let announced: string | undefined;
    for (const line of lines.slice(1)) {
      if (line === 'a') {
        assert.ok(announced !== undefined, `${where}: an ack follows an announced write`);
        applyLine(model, announced);
        announced = undefined;
        totalAcked++;
      } else {
        assert.equal(announced, undefined, `${where}: one write at a time`);
        announced = line;
      }
    }
    const acked = describeLogStorage(model);
    const withInFlight = model.clone();
    if (announced !== undefined) applyLine(withInFlight, announced);
    const storage = LmdbLogStorage.open({ path });
    try {
      const reopened = describeLogStorage(storage);
      if (!isDeepStrictEqual(reopened, acked)) {
        assert.deepEqual(reopened, describeLogStorage(withInFlight), `${where}: the log is the state after the last ack, or after the write in flight`);
        model = withInFlight;
        inFlightKept++;
      }
      assert.deepEqual(storage.identity, { clusterId: 'crash', nodeId: 1 }, where);
    } finally {
      await storage.close();
    }
  }
  assert.ok(totalAcked > 0, 'the children acknowledged something');
  t.diagnostic(`${ROUNDS} rounds, ${totalAcked} acknowledged writes, ${inFlightKept} writes in flight found on disk, last index ${model.lastIndex()}`);
});
