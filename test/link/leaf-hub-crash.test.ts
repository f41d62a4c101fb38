/**
 * kill -9 of the leaf and of the hub while they sync (issue 4 "Tests" (d)): real `canopy leaf`
 * and `canopy hub` processes on loopback, the leaf publishing through the official client.
 * After every kill and restart the hub stream must be a prefix of the leaf stream (origin
 * sequences 1..k in order, each once), and at the end equal to it: every message the leaf
 * acknowledged reaches the hub exactly once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { seededRandom } from '../helpers/canopy-server.ts';
import { eventually } from '../helpers/eventually.ts';
import { killRounds, startLinkProcesses } from '../helpers/link-processes.ts';

const SEED = Number(process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = Number(process.env['LINK_CRASH_KILLS'] ?? 3);
const STREAM = 'TELEMETRY';
const LEAF = 'edge7';
const TOKEN = 'crash-token';

/** Origin sequences of the hub stream, in hub order. */
async function hubOriginSeqs(jsm: JetStreamManager, expected: number): Promise<number[]> {
  const info = await jsm.streams.info(STREAM).catch(() => undefined);
  const count = info?.state.messages ?? 0;
  const seqs: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const stored = await jsm.streams.getMessage(STREAM, { seq });
    assert.ok(stored !== null, `hub seq ${seq}`);
    seqs.push(Number(stored.header.get('Canopy-Origin-Seq')));
  }
  assert.ok(count <= expected, `the hub has ${count} messages, the leaf acknowledged ${expected} or fewer`);
  return seqs;
}

function assertPrefix(seqs: readonly number[], where: string): void {
  seqs.forEach((origin, i) => assert.equal(origin, i + 1, `${where}: hub message ${i + 1} is origin seq ${i + 1} (no loss, no duplicate, in order)`));
}

test(`link: kill -9 of the leaf and of the hub while syncing loses and duplicates nothing (${KILLS} kills each, SEED=${SEED})`, async (t) => {
  const random = seededRandom(SEED);
  const processes = await startLinkProcesses(t, { leaf: LEAF, token: TOKEN, dirPrefix: 'canopy-crash' });
  const connectTo = processes.connectTo;
  await (await jetstreamManager(await connectTo(processes.leaf))).streams.add({ name: STREAM, subjects: ['telemetry.>'], storage: StorageType.File });

  let acked = 0;
  const publishFor = async (ms: number): Promise<void> => {
    const nc = await connectTo(processes.leaf);
    const js = jetstream(nc);
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const batch = Array.from({ length: 20 }, (_, i) => js.publish(`telemetry.t${(acked + i) % 4}`, new TextEncoder().encode(`reading ${acked + i + 1}`)));
      const acks = await Promise.all(batch);
      acked = Math.max(acked, ...acks.map((ack) => ack.seq));
    }
    await nc.close();
  };

  // Publish while the link syncs, kill at a random moment, restart. The leaf dies only after its
  // PubAcks: the messages it acknowledged are the ones that must arrive.
  await killRounds(processes, {
    kills: KILLS,
    random,
    seed: SEED,
    publishFor,
    killAfterPublishing: 'leaf',
    check: async (where) => assertPrefix(await hubOriginSeqs(await jetstreamManager(await connectTo(processes.hub)), acked), where),
  });

  const leafInfo = await (await jetstreamManager(await connectTo(processes.leaf))).streams.info(STREAM);
  assert.ok(leafInfo.state.last_seq >= acked, 'every acknowledged message is on the leaf');
  const hubJsm = await jetstreamManager(await connectTo(processes.hub));
  await eventually(async () => assert.equal((await hubJsm.streams.info(STREAM)).state.messages, leafInfo.state.last_seq), { timeoutMs: 30_000, intervalMs: 200 });
  assertPrefix(await hubOriginSeqs(hubJsm, leafInfo.state.last_seq), 'at the end');
  t.diagnostic(`${KILLS} leaf kills and ${KILLS} hub kills; ${acked} acknowledged on the leaf, ${leafInfo.state.last_seq} stored, all on the hub once, in order`);
});
