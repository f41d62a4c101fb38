/**
 * Goal: a damaged message record is detected and reported, never served as
 * data (issue 3 "corruption", RELIABILITY.md §3.3 and §5.3 L4: LMDB itself
 * does not notice a flipped byte; canopy's per-record CRC-32C must). Reading
 * the damaged message gives an error reply; the server logs it and keeps
 * running; every other message still reads back exactly.
 *
 * Method: a server process builds a store (stream C: 30 messages, each with a
 * unique marker in its payload and its headers; a durable pull consumer;
 * stream OTHER), and is stopped with SIGTERM. Each case copies that store,
 * flips one byte (XOR 0x20) inside the marker of one message in
 * `<store_dir>/jetstream/data.mdb`, at every place the marker occurs (LMDB's
 * copy-on-write leaves stale copies of pages in free space; the live record is
 * among them), checks with a raw LMDB read that the live record now holds the
 * altered bytes (so a server without the check would serve them), starts a
 * server on the copy and reads through one path: STREAM.MSG.GET (by seq, last
 * by subject, next by subject), DIRECT.GET (by seq, last by subject), a pull
 * consumer. One server process per case, so a crash in one path does not hide
 * another.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, JetStreamApiError, type JsMsg, type MsgRequest, type StoredMsg } from '@nats-io/jetstream';
import { open } from 'lmdb';
import { startCanopyServer, type CanopyServer } from '../helpers/canopy-server.ts';
import { freePort } from '../helpers/processes.ts';

const STREAM = 'C';
const MESSAGES = 30;
/** A message in the middle, alone on its subject. */
const TARGET_SEQ = 10;
const TARGET_SUBJECT = 'c.target';
/** A message whose header is damaged. */
const HEADER_SEQ = 20;
const HEADER_SUBJECT = 'c.header';

const tag = Math.random().toString(16).slice(2, 10);
const payloadMarker = (seq: number): string => `PAYLOAD-MARK-${String(seq).padStart(4, '0')}-${tag}`;
const headerMarker = (seq: number): string => `HDR-MARK-${String(seq).padStart(4, '0')}-${tag}`;
const subjectOf = (seq: number): string =>
  seq === TARGET_SEQ ? TARGET_SUBJECT : seq === HEADER_SEQ ? HEADER_SUBJECT : `c.s${seq % 3}`;
const payloadOf = (seq: number): Buffer => Buffer.from(`${payloadMarker(seq)} body of message ${seq}`);

let work = '';
let pristine = '';
let port = 0;
const servers: CanopyServer[] = [];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'canopy-fault-corruption-'));
  pristine = join(work, 'pristine');
  port = await freePort();
  const server = await startCanopyServer(port, pristine);
  servers.push(server);
  const nc = await connect({ servers: server.server, reconnect: false });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['c.>'], allow_direct: true });
  await jsm.streams.add({ name: 'OTHER', subjects: ['other.>'] });
  const js = jetstream(nc);
  for (let seq = 1; seq <= MESSAGES; seq++) {
    const h = headers();
    h.set('X-Mark', headerMarker(seq));
    const ack = await js.publish(subjectOf(seq), payloadOf(seq), { headers: h });
    assert.equal(ack.seq, seq);
  }
  for (let i = 1; i <= 5; i++) await js.publish(`other.${i}`, `other ${i}`);
  await jsm.consumers.add(STREAM, { durable_name: 'D', ack_policy: AckPolicy.Explicit });
  await nc.close();
  assert.equal(await server.stop(), 0);
});

after(async () => {
  for (const server of servers) await server.kill();
  rmSync(work, { recursive: true, force: true });
});

/** Live message records of the store (raw LMDB, no CRC check) that contain `bytes`. */
function liveRecordsContaining(storeDir: string, bytes: Buffer): number {
  const root = open({ path: join(storeDir, 'jetstream'), readOnly: true, maxDbs: 12, compression: false, cache: false });
  try {
    const messages = root.openDB({ name: 'msgs', encoding: 'binary', keyEncoding: 'binary', compression: false, cache: false });
    let count = 0;
    for (const { value } of messages.getRange()) if (Buffer.from(value as Uint8Array).includes(bytes)) count++;
    return count;
  } finally {
    root.close();
  }
}

/**
 * A copy of the pristine store with one byte flipped in `marker` (at `offset`) wherever it
 * occurs in data.mdb; checks that the live record now holds the altered marker.
 */
function corruptedCopy(t: TestContext, name: string, marker: string, offset: number): string {
  const storeDir = join(work, name);
  cpSync(pristine, storeDir, { recursive: true });
  const file = join(storeDir, 'jetstream', 'data.mdb');
  const data = readFileSync(file);
  const needle = Buffer.from(marker);
  const altered = Buffer.from(needle);
  altered[offset]! ^= 0x20;
  let copies = 0;
  for (let at = data.indexOf(needle); at >= 0; at = data.indexOf(needle, at + 1)) {
    data[at + offset]! ^= 0x20;
    copies++;
  }
  assert.ok(copies >= 1, `the marker ${marker} is in data.mdb`);
  writeFileSync(file, data);
  assert.equal(liveRecordsContaining(storeDir, altered), 1, 'the live record now holds the altered bytes');
  assert.equal(liveRecordsContaining(storeDir, needle), 0, 'no live record holds the original bytes');
  t.diagnostic(`${name}: flipped byte ${offset} of "${marker}" in ${copies} place(s) of data.mdb (the live record and stale copies)`);
  return storeDir;
}

async function startOn(storeDir: string): Promise<{ server: CanopyServer; nc: NatsConnection }> {
  const server = await startCanopyServer(port, storeDir);
  servers.push(server);
  const nc = await connect({ servers: server.server, reconnect: false });
  return { server, nc };
}

/** "running", or how the process ended and the end of its output. */
async function serverState(server: CanopyServer): Promise<string> {
  const how = await Promise.race([server.run.exited, new Promise<string>((resolve) => setTimeout(() => resolve('running'), 300))]);
  return how === 'running' ? 'the server is running' : `the server EXITED (${how}); its output ends:\n${server.logs().slice(-1500)}`;
}

/** The server is still running and answering. */
async function assertAlive(server: CanopyServer): Promise<void> {
  const state = await serverState(server);
  assert.equal(state, 'the server is running');
  const probe = await connect({ servers: server.server, reconnect: false });
  try {
    await (await jetstreamManager(probe)).streams.info(STREAM);
  } finally {
    await probe.close();
  }
}

/** The server is still running and answering, and logged the damage. */
async function assertAliveAndLogged(server: CanopyServer, seq: number): Promise<void> {
  await assertAlive(server);
  const logged = server.logLines().filter((line) => Number(line['level']) >= 40 && /checksum|corrupt/i.test(JSON.stringify(line)));
  assert.ok(logged.length > 0, `a warning or error log line reports the damaged record (seq ${seq}):\n${server.logs().slice(-2500)}`);
}

/** Data served for `seq` must be exactly what was published there. */
function assertIntact(message: { seq: number; subject: string; data: Uint8Array; header?: { get(key: string): string } }, where: string): void {
  assert.deepEqual(Buffer.from(message.data), payloadOf(message.seq), `${where}: seq ${message.seq} payload`);
  assert.equal(message.subject, subjectOf(message.seq), `${where}: seq ${message.seq} subject`);
  assert.equal(message.header?.get('X-Mark'), headerMarker(message.seq), `${where}: seq ${message.seq} header`);
}

/** A read of the damaged message: an error reply (not a timeout), never data. Returns a description for the log. */
async function assertRefused(server: CanopyServer, reading: Promise<StoredMsg | null>, seq: number, where: string): Promise<string> {
  let outcome: StoredMsg | null;
  try {
    outcome = await reading;
  } catch (err) {
    if (/timeout|connection closed|closed connection/i.test(String(err))) {
      assert.fail(`${where}: an error reply expected, got ${String(err)}; ${await serverState(server)}`);
    }
    return err instanceof JetStreamApiError ? `error ${err.status}/${err.code} "${err.message}"` : `error "${String(err)}"`;
  }
  assert.ok(outcome === null || outcome.seq !== seq, `${where}: damaged seq ${seq} was served as data: ${outcome === null ? '' : Buffer.from(outcome.data).toString('latin1')}`);
  if (outcome !== null) assertIntact(outcome, where);
  return outcome === null ? 'not found' : `seq ${outcome.seq} (intact)`;
}

/** Every message but `damaged` reads back exactly through STREAM.MSG.GET. */
async function assertOthersIntact(nc: NatsConnection, damaged: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (let seq = 1; seq <= MESSAGES; seq++) {
    if (seq === damaged) continue;
    const message = await jsm.streams.getMessage(STREAM, { seq });
    assert.ok(message !== null, `seq ${seq} is there`);
    assertIntact(message, 'neighbour');
  }
  const other = await jsm.streams.info('OTHER');
  assert.equal(other.state.messages, 5, 'the other stream is untouched');
}

describe('JetStream: a flipped byte in a stored message record is detected, never served', () => {
  const payloadFlip = { marker: payloadMarker(TARGET_SEQ), offset: 2 };
  const reads: { name: string; read: (nc: NatsConnection) => Promise<StoredMsg | null> }[] = [
    { name: 'STREAM.MSG.GET by seq', read: async (nc) => await (await jetstreamManager(nc)).streams.getMessage(STREAM, { seq: TARGET_SEQ }) },
    { name: 'STREAM.MSG.GET last_by_subj', read: async (nc) => await (await jetstreamManager(nc)).streams.getMessage(STREAM, { last_by_subj: TARGET_SUBJECT }) },
    {
      name: 'STREAM.MSG.GET next_by_subj',
      // nats.js' MsgRequest type lacks next_by_subj; it sends the request as given (nats-server takes it).
      read: async (nc) => await (await jetstreamManager(nc)).streams.getMessage(STREAM, { next_by_subj: TARGET_SUBJECT, seq: 1 } as unknown as MsgRequest),
    },
    { name: 'DIRECT.GET by seq', read: async (nc) => await (await jetstreamManager(nc)).direct.getMessage(STREAM, { seq: TARGET_SEQ }) },
    { name: 'DIRECT.GET last_by_subj', read: async (nc) => await (await jetstreamManager(nc)).direct.getMessage(STREAM, { last_by_subj: TARGET_SUBJECT }) },
  ];
  for (const { name, read } of reads) {
    test(`payload byte flipped; ${name}: an error reply, the server logs it and stays up, the others read fine`, async (t) => {
      const storeDir = corruptedCopy(t, name.replaceAll(/\W+/g, '-'), payloadFlip.marker, payloadFlip.offset);
      const { server, nc } = await startOn(storeDir);
      try {
        const outcome = await assertRefused(server, read(nc), TARGET_SEQ, name);
        t.diagnostic(`${name}: ${outcome}`);
        await assertAliveAndLogged(server, TARGET_SEQ);
        await assertOthersIntact(nc, TARGET_SEQ);
      } finally {
        await nc.close().catch(() => undefined);
        await server.kill();
      }
    });
  }

  test('header byte flipped; STREAM.MSG.GET by seq: an error reply, the server logs it and stays up', async (t) => {
    const storeDir = corruptedCopy(t, 'header', headerMarker(HEADER_SEQ), 5);
    const { server, nc } = await startOn(storeDir);
    try {
      const jsm = await jetstreamManager(nc);
      const outcome = await assertRefused(server, jsm.streams.getMessage(STREAM, { seq: HEADER_SEQ }), HEADER_SEQ, 'header flip');
      t.diagnostic(`header flip: ${outcome}`);
      await assertAliveAndLogged(server, HEADER_SEQ);
      await assertOthersIntact(nc, HEADER_SEQ);
    } finally {
      await nc.close().catch(() => undefined);
      await server.kill();
    }
  });

  test('payload byte flipped; a pull consumer never delivers the damaged message, the server logs it and stays up', async (t) => {
    const storeDir = corruptedCopy(t, 'consumer', payloadFlip.marker, payloadFlip.offset);
    const { server, nc } = await startOn(storeDir);
    try {
      const consumer = await jetstream(nc).consumers.get(STREAM, 'D');
      const messages: JsMsg[] = [];
      const batch = await consumer.fetch({ max_messages: MESSAGES, expires: 2000 });
      try {
        for await (const message of batch) {
          messages.push(message);
          message.ack();
        }
      } catch (err) {
        t.diagnostic(`the fetch ended with ${String(err)}`);
      }
      const delivered = messages.map((message) => message.seq);
      t.diagnostic(`consumer delivered seqs ${delivered.join(',')}`);
      for (const message of messages) {
        assert.notEqual(message.seq, TARGET_SEQ, `damaged seq ${TARGET_SEQ} delivered: ${message.string()}`);
        assertIntact({ seq: message.seq, subject: message.subject, data: message.data, header: message.headers ?? headers() }, 'consumer');
      }
      await assertAlive(server);
      assert.deepEqual(delivered.slice(0, TARGET_SEQ - 1), Array.from({ length: TARGET_SEQ - 1 }, (_, i) => i + 1), 'messages before the damaged one are delivered in order');
      for (let i = 1; i < delivered.length; i++) assert.ok(delivered[i]! > delivered[i - 1]!, 'in stream order');
      await assertAliveAndLogged(server, TARGET_SEQ);
      await assertOthersIntact(nc, TARGET_SEQ);
    } finally {
      await nc.close().catch(() => undefined);
      await server.kill();
    }
  });

  test("payload byte flipped in a stream's last message: the server starts, serves every other message and refuses that one", async (t) => {
    const storeDir = corruptedCopy(t, 'last', payloadMarker(MESSAGES), 2);
    const { server, nc } = await startOn(storeDir);
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(STREAM);
      assert.equal(info.state.last_seq, MESSAGES);
      const outcome = await assertRefused(server, jsm.streams.getMessage(STREAM, { seq: MESSAGES }), MESSAGES, 'last message');
      t.diagnostic(`last message: ${outcome}`);
      await assertAliveAndLogged(server, MESSAGES);
      await assertOthersIntact(nc, MESSAGES);
    } finally {
      await nc.close().catch(() => undefined);
      await server.kill();
    }
  });
});
