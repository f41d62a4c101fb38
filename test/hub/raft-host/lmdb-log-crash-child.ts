/**
 * Child process of lmdb-log-crash.test.ts: one Raft host's writes to the LMDB
 * log at argv[2], one Ready at a time as the driver makes them, until killed.
 * Mostly appends of 1-32 entries; one in ten replaces the last 0-4 entries
 * under a new term (a follower's conflict); every 40th write takes a snapshot
 * and compacts. Each write is announced before it starts and acknowledged
 * once its promise resolved (the protocol in lmdb-log-crash-writes.ts).
 */
import { LmdbLogStorage } from '../../../hub/raft-host/lmdb-log-storage.ts';
import { CRASH_CONF_STATE, crashEntries, crashHardState, crashSnapshotData } from './lmdb-log-crash-writes.ts';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: lmdb-log-crash-child.ts <path>');
const storage = LmdbLogStorage.open({ path });
if (storage.identity === undefined) await storage.initialize({ identity: { clusterId: 'crash', nodeId: 1 } });
let term = Math.max(1, storage.initialState().hardState.term);
process.stdout.write(`ready ${storage.lastIndex()}\n`);

const randomBelow = (n: number): number => Math.floor(Math.random() * n);
for (let write = 1; ; write++) {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  if (write % 40 === 0 && last >= first + 20) {
    const snapshotIndex = last - 3;
    const compactTo = snapshotIndex - 10;
    process.stdout.write(`s ${snapshotIndex} ${compactTo}\n`);
    const snapshotted = storage.createSnapshot({ index: snapshotIndex, confState: CRASH_CONF_STATE, data: crashSnapshotData(snapshotIndex) });
    await Promise.all([snapshotted, storage.compact(compactTo)]);
  } else {
    const isConflict = randomBelow(10) === 0 && last >= first + 5;
    if (isConflict) term++;
    const from = isConflict ? last - randomBelow(5) : last + 1;
    const count = 1 + randomBelow(32);
    process.stdout.write(`w ${from} ${count} ${term} ${from - 1}\n`);
    await storage.save({ entries: crashEntries(from, count, term), hardState: crashHardState(term, from - 1) });
  }
  process.stdout.write('a\n');
}
