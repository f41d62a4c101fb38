/**
 * kill -9 of the leaf and of the hub while a hub stream syncs down (issue 4 item 4, in the
 * manner of leaf-hub-crash.test.ts): real `canopy hub` and `canopy leaf` processes on loopback,
 * the hub published to through the official client, half of the messages addressed to the leaf
 * and half to another leaf. After every kill and restart the leaf's copy must be a prefix of
 * the hub's messages addressed to it (hub sequences in order, each once), and at the end equal
 * to them: nothing the hub stored for the leaf is lost or duplicated by a crash of either side.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { seededRandom } from '../helpers/canopy-server.ts';
import { eventually } from '../helpers/eventually.ts';
import { killRounds, startLinkProcesses } from '../helpers/link-processes.ts';

const SEED = Number(process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = Number(process.env['LINK_CRASH_KILLS'] ?? 3);
const STREAM = 'COMMANDS';
const LEAF = 'edge7';
const TOKEN = 'crash-token';

/** The hub's sequences addressed to the leaf, read once each (the stream only grows). */
class HubView {
  readonly addressed: number[] = [];
  #readUpTo = 0;

  async refresh(jsm: JetStreamManager): Promise<void> {
    const last = (await jsm.streams.info(STREAM)).state.last_seq;
    for (let seq = this.#readUpTo + 1; seq <= last; seq++) {
      const stored = await jsm.streams.getMessage(STREAM, { seq });
      assert.ok(stored !== null, `hub seq ${seq}`);
      if (stored.subject.startsWith(`${LEAF}.`)) this.addressed.push(seq);
    }
    this.#readUpTo = last;
  }
}

/** The hub sequences of the leaf's copy, in leaf order. */
async function leafOriginSeqs(jsm: JetStreamManager): Promise<number[]> {
  const info = await jsm.streams.info(STREAM).catch(() => undefined);
  const seqs: number[] = [];
  for (let seq = 1; seq <= (info?.state.messages ?? 0); seq++) {
    const stored = await jsm.streams.getMessage(STREAM, { seq });
    assert.ok(stored !== null, `leaf seq ${seq}`);
    assert.match(stored.subject, /^cmd\.n[0-2]$/, 'subject without the leaf token');
    seqs.push(Number(stored.header.get('Canopy-Origin-Seq')));
  }
  return seqs;
}

function assertPrefix(copy: readonly number[], addressed: readonly number[], where: string): void {
  assert.ok(copy.length <= addressed.length, `${where}: the leaf has ${copy.length} messages, the hub addressed ${addressed.length}`);
  copy.forEach((seq, i) => assert.equal(seq, addressed[i], `${where}: leaf message ${i + 1} is hub seq ${addressed[i]} (no loss, no duplicate, in order)`));
}

test(`downstream: kill -9 of the leaf and of the hub while syncing down loses and duplicates nothing (${KILLS} kills each, SEED=${SEED})`, async (t) => {
  const random = seededRandom(SEED);
  const processes = await startLinkProcesses(t, { leaf: LEAF, token: TOKEN, dirPrefix: 'canopy-down-crash' });
  const connectTo = processes.connectTo;
  await (await jetstreamManager(await connectTo(processes.hub))).streams.add({
    name: STREAM,
    subjects: [`${LEAF}.cmd.>`, 'other.cmd.>'],
    storage: StorageType.File,
    metadata: { 'canopy.downstream': 'true' },
  });

  let published = 0;
  /** Publishes on the hub for `ms` (or until the hub dies): half to the leaf, half to another. */
  const publishFor = async (ms: number): Promise<void> => {
    const nc = await connectTo(processes.hub);
    const js = jetstream(nc);
    const until = Date.now() + ms;
    try {
      while (Date.now() < until) {
        const batch = Array.from({ length: 20 }, (_, i) => {
          const n = published + i;
          return js.publish(n % 2 === 0 ? `${LEAF}.cmd.n${n % 3}` : `other.cmd.n${n % 3}`, new TextEncoder().encode(`command ${n}`));
        });
        published += batch.length;
        await Promise.all(batch);
      }
    } catch {
      // The hub was killed under the publisher: what it stored is what counts (read back below).
    }
    await nc.close().catch(() => undefined);
  };

  const view = new HubView();
  // Both sides die mid-publish: the hub with messages it has not flushed yet (they must not reach the leaf first).
  await killRounds(processes, {
    kills: KILLS,
    random,
    seed: SEED,
    publishFor,
    check: async (where) => {
      await view.refresh(await jetstreamManager(await connectTo(processes.hub)));
      // Read after the hub's view (nothing is published now): a copy is a prefix of what the hub has.
      assertPrefix(await leafOriginSeqs(await jetstreamManager(await connectTo(processes.leaf))), view.addressed, where);
    },
  });

  const hubJsm = await jetstreamManager(await connectTo(processes.hub));
  await view.refresh(hubJsm);
  const leafJsm = await jetstreamManager(await connectTo(processes.leaf));
  await eventually(async () => assert.equal((await leafJsm.streams.info(STREAM)).state.messages, view.addressed.length), { timeoutMs: 30_000, intervalMs: 200 });
  const copy = await leafOriginSeqs(leafJsm);
  assertPrefix(copy, view.addressed, 'at the end');
  assert.equal(copy.length, view.addressed.length);
  t.diagnostic(`${KILLS} leaf kills and ${KILLS} hub kills; ${published} published on the hub, ${view.addressed.length} stored for the leaf, all on the leaf once, in order`);
});
