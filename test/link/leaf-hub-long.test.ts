/**
 * The long link fault runs of issue 4 "Tests": (a) the link reset every 1–5 s while the leaf
 * publishes about 1,000 msg/s, and (c) the link down (the fault proxy refuses and closes every
 * connection) while a backlog grows at 500 msg/s, then back. A real leaf and a real hub in this
 * process with the fault proxy between them (test/helpers/leaf-hub-world.ts).
 *
 * In both the hub stream is a prefix of the leaf stream while the link works (checked every few
 * seconds) and equals it exactly at the end: the same origin sequences 1..n, in order, each once,
 * with the same payload hashes; the hub records no gap (the leaf dropped nothing) and the leaf
 * reports no stall.
 *
 * Each run lasts CANOPY_LONG_LINK_MS (default 120000: 2 minutes); the two run side by side (two
 * worlds on their own ports), so this file takes about 2.5 minutes of `npm test`; a developer can run them shorter, e.g.
 *   CANOPY_LONG_LINK_MS=15000 node --import tsx --test --test-reporter=spec test/link/leaf-hub-long.test.ts
 * SEED=… replays the reset intervals of (a) (printed in its diagnostic).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LINK_STALL_MS_DEFAULT } from '../../leaf/link/ws-link.ts';
import { seededRandom } from '../helpers/canopy-server.ts';
import { eventually } from '../helpers/eventually.ts';
import { checkHubEquals, checkHubPrefix, hubLeafzStream, leafz, ORDERS, publishOrders, publishOrdersFor, startOrdersWorld, WORLD_LEAF, type World } from '../helpers/leaf-hub-world.ts';
import { recordingLogger, type LogRecord } from '../helpers/recording-logger.ts';

const SEED = Number(process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));
/** How long the link is reset (a) or down (c), ms. */
const LONG_MS = Number(process.env['CANOPY_LONG_LINK_MS'] ?? 120_000);
/** Publish rate of (a) and (c), messages per second: a ceiling (a slower machine publishes fewer, the diagnostic says how many). */
const RESET_RUN_RATE = 1000;
const OUTAGE_RATE = 500;
/** Async publishes awaiting their PubAck at a time (50 reach only about 1,000 msg/s on a busy 2-core machine). */
const IN_FLIGHT = 100;
/** How often the hub prefix (and in (c) the leaf's backlog) is checked during a run. */
const CHECK_EVERY_MS = 3000;

/** The clock of the leaf's message timestamps and of status() (core/util/time.ts nowNs), in ms. */
function storeClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Runs `action` after every pause of `pauseMs()` until stopped (a pause is cut short by stop());
 * the first failure ends the loop and is thrown by stop().
 */
function every(pauseMs: () => number, action: () => void | Promise<void>): { stop(): Promise<void> } {
  const abort = new AbortController();
  const loop = (async () => {
    while (!abort.signal.aborted) {
      const isAborted = await sleep(pauseMs(), false, { signal: abort.signal }).catch(() => true);
      if (isAborted) return;
      await action();
    }
  })();
  loop.catch(() => undefined); // thrown by stop(), not as an unhandled rejection meanwhile
  return {
    async stop() {
      abort.abort();
      await loop;
    },
  };
}

function assertNoStallLogged(records: readonly LogRecord[]): void {
  const stalls = records.filter((record) => record.msg?.startsWith('stream sync stalled') === true);
  assert.deepEqual(stalls, [], 'the leaf logged no stall');
}

/** The hub recorded no gap for ORDERS, and the leaf sent none: nothing was dropped. */
async function assertNoGap(world: World): Promise<void> {
  const onHub = await hubLeafzStream(world, ORDERS);
  assert.deepEqual([onHub['gaps'], onHub['gapMsgs']], [0, 0], 'the hub recorded no gap');
  const onLeaf = world.leaf.link.status().streams.find((entry) => entry.stream === ORDERS);
  assert.deepEqual([onLeaf?.gapsSent, onLeaf?.gapMsgs], [0, 0], 'the leaf sent no gap');
}

// Side by side: each is paced by the clock, not by the CPU (about a fifth of a core each).
describe('link (long)', { concurrency: 2 }, () => {
  test(`link (long): reset every 1-5 s for ${LONG_MS / 1000} s while the leaf publishes ~${RESET_RUN_RATE} msg/s; the hub stays a prefix and ends equal (SEED=${SEED})`, async (t) => {
    const random = seededRandom(SEED);
    const log = recordingLogger();
    const world = await startOrdersWorld(t, { leafLog: log });

    let resets = 0;
    const resetter = every(
      () => 1000 + Math.floor(random() * 4000),
      () => {
        world.proxy.reset();
        resets++;
      },
    );

    let prefixChecks = 0;
    let hubSeen = 0;
    const prefixChecker = every(() => CHECK_EVERY_MS, async () => {
      const onHub = await checkHubPrefix(world);
      assert.ok(onHub >= hubSeen, `the hub went back from ${hubSeen} to ${onHub} messages`);
      hubSeen = onHub;
      prefixChecks++;
    });

    const startedAt = Date.now();
    const total = await publishOrdersFor(world.leafNc, 1, LONG_MS, RESET_RUN_RATE, IN_FLIGHT);
    const publishMs = Date.now() - startedAt;
    await resetter.stop();
    await prefixChecker.stop();
    const hubAtEnd = await checkHubPrefix(world);
    const endedAt = Date.now();
    await eventually(async () => assert.equal(await checkHubPrefix(world), total), { timeoutMs: 30_000, intervalMs: 100 });
    const catchUpMs = Date.now() - endedAt;
    await checkHubEquals(world, total);
    const checkMs = Date.now() - endedAt - catchUpMs;
    const status = world.leaf.link.status();
    t.diagnostic(
      `${resets} resets over ${Math.round(publishMs / 1000)} s (${world.proxy.stats.accepted} connections, ${status.reconnects} reconnects, closes ${JSON.stringify(status.closes)}); ` +
        `${total} messages (${Math.round(total / (publishMs / 1000))} msg/s); ${prefixChecks} prefix checks; the hub had ${hubAtEnd} when publishing ended, all ${total} ${catchUpMs} ms later; exact check ${checkMs} ms; SEED=${SEED}`,
    );
    assert.ok(resets >= Math.max(1, Math.floor(LONG_MS / 5000) - 1), `the link was reset about every 1-5 s (${resets} resets)`);
    assert.ok(status.reconnects >= 1, 'the leaf reconnected');
    assert.ok(prefixChecks >= Math.floor(LONG_MS / CHECK_EVERY_MS / 2), `the prefix was checked during the run (${prefixChecks} times)`);
    await assertNoGap(world);
    assertNoStallLogged(log.records);
  });

  test(`link (long): down for ${LONG_MS / 1000} s while a backlog grows at ${OUTAGE_RATE} msg/s, then back: the backlog drains to 0 and the hub ends equal, no gap, no stall`, async (t) => {
    const log = recordingLogger();
    // The outage lasts at least 4 stall thresholds, whatever CANOPY_LONG_LINK_MS is: a link down
    // must not count as a stall (leaf/link/ws-link.ts: while the link is down no stream is stalled).
    const stallMs = Math.min(LINK_STALL_MS_DEFAULT, Math.floor(LONG_MS / 4));
    const world = await startOrdersWorld(t, { leafLog: log, leafTuning: { stallMs } });
    const synced = 500;
    await publishOrders(world.leafNc, 1, synced);
    await checkHubEquals(world, synced);
    await eventually(() => assert.equal(world.leaf.link.status().streams.find((entry) => entry.stream === ORDERS)?.ackedSeq, synced, 'the leaf heard the hub has them'));

    world.proxy.cut(true);
    await eventually(() => assert.notEqual(world.leaf.link.status().state, 'up'));
    const downAt = Date.now();
    // The first unsynced message: stored between these two times, so the oldest-unsynced age is bounded.
    const firstSentAtMs = storeClockMs();
    await publishOrders(world.leafNc, synced + 1, synced + 1);
    const firstAckedAtMs = storeClockMs();

    let samples = 0;
    let backlogPeak = { msgs: 0, bytes: 0 };
    /** `isGrowing`: publishing goes on, so the backlog must be larger than at the last check. */
    const checkOutage = async (isGrowing: boolean): Promise<void> => {
      const beforeMs = storeClockMs();
      const status = (await leafz(world.leaf.broker.monitor?.port))['link'];
      const afterMs = storeClockMs();
      assert.notEqual(status['state'], 'up', 'the leaf shows the link down');
      assert.equal(status['stalled'], false, 'a link down is no stall');
      const stream = status['streams'].find((entry: { stream: string }) => entry.stream === ORDERS);
      assert.equal(stream['ackedSeq'], synced, 'nothing acknowledged while down');
      assert.equal(stream['stalled'], false);
      assert.equal(stream['backlogMsgs'], stream['lastSeq'] - synced, 'the backlog is everything after the acknowledged cursor');
      const [msgs, bytes] = [stream['backlogMsgs'] as number, stream['backlogBytes'] as number];
      assert.ok(isGrowing ? msgs > backlogPeak.msgs : msgs >= backlogPeak.msgs, `the backlog grows (${backlogPeak.msgs} → ${msgs} messages)`);
      assert.ok(isGrowing ? bytes > backlogPeak.bytes : bytes >= backlogPeak.bytes, `the backlog grows (${backlogPeak.bytes} → ${bytes} bytes)`);
      const age = stream['oldestUnsyncedAgeMs'] as number;
      const [low, high] = [Math.floor(beforeMs - firstAckedAtMs) - 1, Math.ceil(afterMs - firstSentAtMs) + 1];
      assert.ok(age >= low && age <= high, `oldest unsynced age ${age} ms is the age of seq ${synced + 1} (${low}..${high} ms)`);
      backlogPeak = { msgs, bytes };
      // The hub did not move.
      assert.equal(await checkHubPrefix(world), synced, 'the hub has what it had before the outage');
      const onHub = await hubLeafzStream(world, ORDERS);
      assert.equal(onHub['cursor'], synced);
      assert.equal((await leafz(world.hub.broker.monitor?.port))['leafs'].find((entry: { leaf: string }) => entry.leaf === WORLD_LEAF).connected, false);
      samples++;
    };
    const outageChecker = every(() => CHECK_EVERY_MS, () => checkOutage(true));
    const total = await publishOrdersFor(world.leafNc, synced + 2, LONG_MS - (Date.now() - downAt), OUTAGE_RATE, IN_FLIGHT);
    await outageChecker.stop();
    await checkOutage(false); // the peak, just before the link returns (the last check may have seen it already)
    const outageMs = Date.now() - downAt;
    assert.ok(samples >= Math.floor(LONG_MS / CHECK_EVERY_MS / 2), `the outage was checked during the run (${samples} times)`);

    world.proxy.cut(false);
    const backAt = Date.now();
    let hubSeen = synced;
    const drainChecker = every(() => 500, async () => {
      const onHub = await checkHubPrefix(world);
      assert.ok(onHub >= hubSeen, `the hub went back from ${hubSeen} to ${onHub} messages`);
      hubSeen = onHub;
    });
    await eventually(
      () => {
        const stream = world.leaf.link.status().streams.find((entry) => entry.stream === ORDERS);
        assert.deepEqual([stream?.ackedSeq, stream?.backlogMsgs, stream?.oldestUnsyncedAgeMs], [total, 0, undefined], 'the backlog drained');
      },
      { timeoutMs: Math.max(60_000, LONG_MS), intervalMs: 100 },
    );
    const drainMs = Date.now() - backAt;
    await drainChecker.stop();
    await checkHubEquals(world, total);
    const status = world.leaf.link.status();
    t.diagnostic(
      `down ${Math.round(outageMs / 1000)} s (${world.proxy.stats.refused} connections refused); ${total - synced} published meanwhile (${Math.round((total - synced) / (outageMs / 1000))} msg/s); backlog peak ${backlogPeak.msgs} messages, ${backlogPeak.bytes} bytes ` +
        `(${samples + 1} checks while down); drained in ${drainMs} ms after the link returned; ${total} messages on the hub, equal; stall threshold ${stallMs} ms`,
    );
    assert.equal(status.state, 'up');
    assert.equal(status.stalled, false);
    await assertNoGap(world);
    assertNoStallLogged(log.records);
  });
});
