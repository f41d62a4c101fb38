/**
 * Goal: a PubAck means the message is on disk (RELIABILITY.md §5.3 L1, issue 3
 * "crash"): SIGKILL of the server process in the middle of concurrent async
 * publishing loses no acknowledged message, corrupts none, reorders none and
 * never hands out a sequence twice.
 *
 * Method: one file stream; PUBLISHERS connections each keep IN_FLIGHT
 * `js.publish()` calls outstanding. Every payload encodes its publisher and
 * counter plus a filler derived from them (a SHA-256 of both), and carries them
 * in a header and in the subject, so a damaged or foreign value is recognised.
 * The server is SIGKILLed at a random moment (seeded PRNG; the seed is printed,
 * `SEED=<n>` replays the schedule, though not the machine's timing), started
 * again on the same store_dir, and the history is checked, Jepsen-style:
 * - every acknowledged message is at its acknowledged sequence, intact;
 * - every stored message is one a publisher sent (intact), stored at most once;
 *   stored messages whose PubAck never arrived are "recovered / unknown";
 * - a message refused with an error PubAck is not stored;
 * - no sequence is acknowledged for two messages, in any round;
 * - per publisher, counters increase with the stream sequence;
 * - sequences first..last are each either a stored message or a sequence the
 *   store reports as deleted (deleted_details), and the counters agree.
 * Each round checks what it can cheaply (the new sequences and its acks); the
 * last one reads the whole stream again. KILLS (≥ 20, `CRASH_KILLS=<n>` to
 * change) rounds on one store, so later rounds also recover a killed store.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, DeliverPolicy, StorageType, type JetStreamManager, type PubAck } from '@nats-io/jetstream';
import { startCanopyServer, seededRandom, type CanopyServer } from '../helpers/canopy-server.ts';
import { freePort } from '../helpers/processes.ts';

const KILLS = Number(process.env['CRASH_KILLS'] ?? 20);
/** Kills of the `sync: 1s` run (fewer: the mechanism is the same, only the moment of the ack differs). */
const INTERVAL_KILLS = Math.max(1, Math.ceil(KILLS / 4));
const SEED = Number(process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const PUBLISHERS = 4;
const IN_FLIGHT = 32;
/** The kill comes this long after the publishers start (uniform, from the seed). */
const KILL_AFTER_MS_MIN = 0;
const KILL_AFTER_MS_MAX = 400;
const STREAM = 'CRASH';

const subjectOf = (pub: number): string => `crash.p${pub}`;
const idOf = (pub: number, counter: number): string => `p${pub}-c${counter}`;

/** `p<pub>:c<counter>:` plus 16–143 bytes of a SHA-256 of both (hex, repeated). */
function payloadOf(pub: number, counter: number): Buffer {
  const digest = createHash('sha256').update(idOf(pub, counter)).digest('hex');
  const length = 16 + ((pub * 31 + counter * 17) % 128);
  return Buffer.from(`p${pub}:c${counter}:${digest.repeat(3).slice(0, length)}`);
}

type Ack = { pub: number; counter: number; seq: number };
type Read = { seq: number; subject: string; id: string | undefined; data: Buffer };

/** What one round's publishers saw. */
type RoundHistory = {
  acks: Ack[];
  /** Refused with an error PubAck: definitely not stored. */
  refused: { pub: number; counter: number; code: number; text: string }[];
  /** PubAcks naming another stream or flagged duplicate (there are no retries). */
  badAcks: string[];
  /** Sent (or maybe sent) and never answered: unknown. */
  unknown: number;
  /** Next counter per publisher. */
  nextCounter: number[];
  /** When the first PubAck of the round arrived (Date.now()). */
  firstAckAt: number | undefined;
};

async function publishUntilClosed(nc: NatsConnection, pub: number, firstCounter: number, history: RoundHistory): Promise<void> {
  const js = jetstream(nc);
  let counter = firstCounter;
  const inFlight = new Set<Promise<void>>();
  while (!nc.isClosed()) {
    while (inFlight.size < IN_FLIGHT && !nc.isClosed()) {
      const mine = counter++;
      const h = headers();
      h.set('X-Id', idOf(pub, mine));
      const publishing = (async () => {
        let ack: PubAck;
        try {
          ack = await js.publish(subjectOf(pub), payloadOf(pub, mine), { headers: h, timeout: 20_000 });
        } catch (err) {
          if (err instanceof JetStreamApiError) history.refused.push({ pub, counter: mine, code: err.code, text: err.message });
          else history.unknown++;
          return;
        }
        // Nothing is sent twice, so nothing is a duplicate.
        if (ack.stream !== STREAM || ack.duplicate) history.badAcks.push(JSON.stringify({ id: idOf(pub, mine), ...ack }));
        history.acks.push({ pub, counter: mine, seq: ack.seq });
        history.firstAckAt ??= Date.now();
      })();
      inFlight.add(publishing);
      void publishing.finally(() => inFlight.delete(publishing));
    }
    if (inFlight.size > 0) await Promise.race(inFlight);
  }
  await Promise.allSettled([...inFlight]);
  history.nextCounter[pub] = counter;
}

/** The `expected` stored messages from `fromSeq` on, through an ordered consumer, in stream order. */
async function readRange(nc: NatsConnection, fromSeq: number, expected: number): Promise<Read[]> {
  const reads: Read[] = [];
  if (expected <= 0) return reads;
  const consumer = await jetstream(nc).consumers.get(STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq });
  const messages = await consumer.consume({ max_messages: 2000 });
  const timer = setTimeout(() => messages.stop(), 15_000);
  try {
    for await (const message of messages) {
      reads.push({ seq: message.seq, subject: message.subject, id: message.headers?.get('X-Id'), data: Buffer.from(message.data) });
      if (reads.length >= expected || message.info.pending === 0) break;
    }
  } finally {
    clearTimeout(timer);
    messages.stop();
  }
  return reads;
}

type Checker = {
  /** seq → the message acknowledged at it, over every round. */
  ackedAt: Map<number, string>;
  /** id → seq where it was acknowledged. */
  ackedIds: Map<string, number>;
  refusedIds: Set<string>;
  /** id → seq where it was seen stored. */
  storedIds: Map<string, number>;
  /** Highest counter issued so far per publisher (for "nobody wrote this"). */
  issued: number[];
  lastCounterSeen: number[];
};

/** Checks stored messages: each is one that was sent, intact, stored once, in per-publisher order. */
function checkReads(checker: Checker, reads: readonly Read[], where: string): void {
  let previousSeq = 0;
  for (const read of reads) {
    assert.ok(read.seq > previousSeq, `${where}: seq ${read.seq} read in stream order, once`);
    previousSeq = read.seq;
    const match = /^p(\d+):c(\d+):/.exec(read.data.toString('latin1'));
    assert.ok(match !== null, `${where}: seq ${read.seq} holds a payload someone wrote: ${read.data.toString('latin1').slice(0, 40)}`);
    const pub = Number(match[1]);
    const counter = Number(match[2]);
    const id = idOf(pub, counter);
    assert.ok(pub < PUBLISHERS && counter < (checker.issued[pub] ?? 0), `${where}: seq ${read.seq}: ${id} was issued`);
    assert.deepEqual(read.data, payloadOf(pub, counter), `${where}: seq ${read.seq} (${id}) is intact`);
    assert.equal(read.subject, subjectOf(pub), `${where}: seq ${read.seq} (${id}) subject`);
    assert.equal(read.id, id, `${where}: seq ${read.seq} (${id}) header`);
    const storedBefore = checker.storedIds.get(id);
    assert.ok(storedBefore === undefined || storedBefore === read.seq, `${where}: ${id} stored twice, at ${storedBefore} and ${read.seq}`);
    checker.storedIds.set(id, read.seq);
    assert.ok(!checker.refusedIds.has(id), `${where}: ${id} got an error PubAck yet is stored at ${read.seq}`);
    const ackedSeq = checker.ackedIds.get(id);
    assert.ok(ackedSeq === undefined || ackedSeq === read.seq, `${where}: ${id} acknowledged at ${ackedSeq}, stored at ${read.seq}`);
    assert.ok(counter > (checker.lastCounterSeen[pub] ?? -1), `${where}: ${id} at seq ${read.seq} is out of order for publisher ${pub}`);
    checker.lastCounterSeen[pub] = counter;
  }
}

/** Stream counters and deleted_details agree with what was read, and cover first..last. */
async function checkState(jsm: JetStreamManager, reads: readonly Read[], fromSeq: number, where: string): Promise<{ lastSeq: number; deleted: number }> {
  const info = await jsm.streams.info(STREAM, { deleted_details: true });
  const { state } = info;
  const deleted = new Set(state.deleted ?? []);
  const numDeleted = state.num_deleted ?? 0; // omitted when 0, as nats-server does
  assert.equal(deleted.size, numDeleted, `${where}: deleted_details lists num_deleted sequences`);
  if (state.messages > 0) assert.equal(state.first_seq, 1, `${where}: nothing removed from the front`);
  assert.equal(state.messages, state.last_seq - numDeleted, `${where}: messages = last_seq - num_deleted`);
  const readSeqs = new Set(reads.map((read) => read.seq));
  for (let seq = fromSeq; seq <= state.last_seq; seq++) {
    assert.ok(readSeqs.has(seq) !== deleted.has(seq), `${where}: seq ${seq} is ${readSeqs.has(seq) ? 'both read and reported deleted' : 'neither stored nor reported deleted (a silent gap)'}`);
  }
  for (const seq of readSeqs) assert.ok(seq <= state.last_seq, `${where}: seq ${seq} read beyond last_seq ${state.last_seq}`);
  return { lastSeq: state.last_seq, deleted: numDeleted };
}

/**
 * `sync: always` is the default and the main case. `sync: <interval>` acks once the commit
 * reached the OS (core/jetstream/store.ts SyncPolicy): that too must survive a process crash.
 */
test(`JetStream: SIGKILL during concurrent async publishing loses no acknowledged message (${KILLS} kills)`, async (t) => {
  await crashScenario(t, KILLS, []);
});

test(`JetStream with sync 1s: SIGKILL during concurrent async publishing loses no acknowledged message (${INTERVAL_KILLS} kills)`, async (t) => {
  await crashScenario(t, INTERVAL_KILLS, ['--sync', '1s']);
});

async function crashScenario(t: TestContext, kills: number, extraArgs: readonly string[]): Promise<void> {
  console.log(`jetstream-crash: SEED=${SEED}`);
  t.diagnostic(`SEED=${SEED} (replay the schedule with SEED=${SEED})`);
  const random = seededRandom(SEED);
  const dir = mkdtempSync(join(tmpdir(), 'canopy-fault-crash-'));
  let server: CanopyServer | undefined;
  t.after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  server = await startCanopyServer(port, dir, { extraArgs });
  {
    const nc = await connect({ servers: server.server, reconnect: false });
    await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: ['crash.>'], storage: StorageType.File });
    await nc.close();
  }

  const checker: Checker = {
    ackedAt: new Map(),
    ackedIds: new Map(),
    refusedIds: new Set(),
    storedIds: new Map(),
    issued: new Array<number>(PUBLISHERS).fill(0),
    lastCounterSeen: new Array<number>(PUBLISHERS).fill(-1),
  };
  let checkedUpTo = 0;
  let storedBelow = 0;
  let totals = { acked: 0, unknown: 0, refused: 0, recovered: 0, lostUnacked: 0, deleted: 0 };
  /** SIGKILL until the new process listens. */
  const restartMs: number[] = [];
  /** Start of the new process until the first PubAck it sent (includes this test's checks in between). */
  const firstAckMs: number[] = [];
  let restartedAt: number | undefined;
  const startedAt = Date.now();

  for (let round = 1; round <= kills; round++) {
    const killAfterMs = KILL_AFTER_MS_MIN + Math.floor(random() * (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN));
    const where = `round ${round} (kill after ${killAfterMs} ms, SEED=${SEED})`;
    const connections = await Promise.all(
      Array.from({ length: PUBLISHERS }, () => connect({ servers: server!.server, reconnect: false })),
    );
    const history: RoundHistory = { acks: [], refused: [], badAcks: [], unknown: 0, nextCounter: [...checker.issued], firstAckAt: undefined };
    const publishing = connections.map((nc, pub) => publishUntilClosed(nc, pub, checker.issued[pub]!, history));
    await new Promise((resolve) => setTimeout(resolve, killAfterMs));
    assert.equal(await server.kill(), 'SIGKILL', `${where}: the server was killed, not ended:\n${server.logs()}`);
    await Promise.all(publishing);
    if (history.firstAckAt !== undefined && restartedAt !== undefined) firstAckMs.push(history.firstAckAt - restartedAt);
    checker.issued = history.nextCounter;
    assert.deepEqual(history.badAcks, [], `${where}: PubAcks name the stream and no duplicates`);

    // Every sequence acknowledged once, to one message, over all rounds.
    for (const ack of history.acks) {
      const id = idOf(ack.pub, ack.counter);
      const other = checker.ackedAt.get(ack.seq);
      assert.equal(other, undefined, `${where}: seq ${ack.seq} acknowledged for ${id} and for ${other}`);
      checker.ackedAt.set(ack.seq, id);
      checker.ackedIds.set(id, ack.seq);
    }
    for (const refused of history.refused) checker.refusedIds.add(idOf(refused.pub, refused.counter));

    restartedAt = Date.now();
    server = await startCanopyServer(port, dir, { extraArgs });
    restartMs.push(Date.now() - restartedAt);
    const nc = await connect({ servers: server.server, reconnect: false });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(STREAM);
      const reads = await readRange(nc, checkedUpTo + 1, info.state.messages - storedBelow);
      checkReads(checker, reads, where);
      const { lastSeq, deleted } = await checkState(jsm, reads, checkedUpTo + 1, where);
      const readAt = new Map(reads.map((read) => [read.seq, read]));
      for (const ack of history.acks) {
        const id = idOf(ack.pub, ack.counter);
        assert.ok(ack.seq > checkedUpTo, `${where}: ${id} acknowledged at ${ack.seq}, at or below the last sequence stored before this round`);
        assert.equal(readAt.get(ack.seq)?.id, id, `${where}: acknowledged ${id} is stored at seq ${ack.seq}`);
      }
      const recovered = reads.length - history.acks.length;
      totals = {
        acked: totals.acked + history.acks.length,
        unknown: totals.unknown + history.unknown,
        refused: totals.refused + history.refused.length,
        recovered: totals.recovered + recovered,
        lostUnacked: totals.lostUnacked + history.unknown - recovered,
        deleted,
      };
      checkedUpTo = lastSeq;
      storedBelow += reads.length;
    } finally {
      await nc.close();
    }
  }

  // The whole stream once more: nothing acknowledged in an earlier round went missing since.
  const nc = await connect({ servers: server.server, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAM);
    const reads = await readRange(nc, 1, info.state.messages);
    const final: Checker = { ...checker, storedIds: new Map(), lastCounterSeen: new Array<number>(PUBLISHERS).fill(-1) };
    checkReads(final, reads, 'final read');
    await checkState(jsm, reads, 1, 'final read');
    const readAt = new Map(reads.map((read) => [read.seq, read]));
    for (const [seq, id] of checker.ackedAt) assert.equal(readAt.get(seq)?.id, id, `final read: acknowledged ${id} is stored at seq ${seq}`);
    assert.ok(totals.acked > 0, 'publishers got PubAcks');
    t.diagnostic(
      `${kills} kills (${extraArgs.join(' ') || 'sync always'}) in ${Date.now() - startedAt} ms; ${totals.acked} acked (0 lost), ${totals.recovered} unacked but stored (recovered/unknown), ` +
        `${totals.lostUnacked} unacked and not stored (${totals.unknown} unacked in all), ${totals.refused} refused with an error PubAck, ` +
        `${reads.length} stored, ${info.state.num_deleted ?? 0} reported deleted; kill to listening ${Math.min(...restartMs)}–${Math.max(...restartMs)} ms, ` +
        `to the first PubAck ${Math.min(...firstAckMs)}–${Math.max(...firstAckMs)} ms`,
    );
  } finally {
    await nc.close();
  }
}
