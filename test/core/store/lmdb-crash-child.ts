/**
 * Child process of lmdb-crash.test.ts: appends to stream CRASH in the store
 * given as argv[2] with PUBLISHERS_MAX concurrent publishers, each waiting for
 * flushed() before printing `ack <seq>` and appending again, until killed.
 * The payload is derived from the sequence (crashPayload), so the parent can
 * check every acknowledged message byte for byte.
 */
import { LmdbJetStreamStorage } from '../../../core/store/lmdb/lmdb-jetstream-storage.ts';
import { crashPayload, CRASH_STREAM, CRASH_SUBJECTS } from './lmdb-crash-payload.ts';

const PUBLISHERS_MAX = 16;

const storeDir = process.argv[2];
if (storeDir === undefined) throw new Error('usage: lmdb-crash-child.ts <store_dir>');
const storage = LmdbJetStreamStorage.open(storeDir);
const store = storage.openStream(CRASH_STREAM, 'file');
let nextSeq = store.state().lastSeq + 1;
process.stdout.write(`ready ${nextSeq}\n`);

async function publish(): Promise<void> {
  for (;;) {
    const expected = nextSeq++;
    const seq = store.append({
      subject: CRASH_SUBJECTS[expected % CRASH_SUBJECTS.length]!,
      headers: undefined,
      data: crashPayload(expected),
      timestampNs: BigInt(expected) * 1000n,
    });
    if (seq !== expected) throw new Error(`append returned ${seq}, expected ${expected}`);
    await store.flushed();
    process.stdout.write(`ack ${seq}\n`);
  }
}

for (let i = 0; i < PUBLISHERS_MAX; i++) void publish();
