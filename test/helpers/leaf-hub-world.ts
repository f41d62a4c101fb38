/**
 * A real leaf and a real hub in this process (real sockets, real LMDB in temp dirs) with the TCP
 * fault proxy between them and an official nats.js connection to each: the world of the
 * end-to-end link tests (test/link). Everything is closed and removed after the test.
 *
 * Also the ORDERS workload those tests share: `startOrdersWorld`, `publishOrders` and
 * `publishOrdersFor` (paced, every PubAck awaited), `checkHubPrefix` (cheap, during a run) and
 * `checkHubEquals` (exact, at the end: hub = leaf over ordered consumers).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { resolveLinkOptions, type HubLinkOptions, type LeafLinkOptions } from '../../core/server/link-options.ts';
import { resolveServerOptions } from '../../core/server/options.ts';
import { silentLogger, type Logger } from '../../core/util/logger.ts';
import { startHub, type Hub } from '../../hub/main.ts';
import { startLeaf, type Leaf, type LeafLinkTuning } from '../../leaf/main.ts';
import { eventually } from './eventually.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';

export const WORLD_LEAF = 'gw1';
export const WORLD_TOKEN = 'leaf-secret';
/** Short heartbeats so that dead links are found quickly (two intervals). */
export const WORLD_HEARTBEAT = '300ms';

export function worldServerOptions(storeDir: string): ReturnType<typeof resolveServerOptions> {
  return resolveServerOptions({ store_dir: storeDir, addr: '127.0.0.1', port: -1, http_host: '127.0.0.1', http_port: -1, websocket_port: 0, log_level: 'silent' });
}

/** The hub's link options; `leafPort` -1 picks a free port (a restarted hub passes its old one). */
export function worldHubLink(leafPort = -1): HubLinkOptions {
  return resolveLinkOptions('hub', { leaf_port: leafPort, leaf_host: '127.0.0.1', leaf_tokens: `${WORLD_LEAF}=${WORLD_TOKEN}`, link_heartbeat: WORLD_HEARTBEAT }) as HubLinkOptions;
}

export type World = {
  hub: Hub;
  leaf: Leaf;
  proxy: FaultProxy;
  leafNc: NatsConnection;
  leafJsm: JetStreamManager;
  hubNc: NatsConnection;
  hubJsm: JetStreamManager;
  hubDir: string;
  leafDir: string;
};

/** `leafLog` (default silent) and `leafTuning` (merged over fast backoffs) go to the leaf. */
export async function startWorld(t: TestContext, options: { leafLog?: Logger; leafTuning?: LeafLinkTuning } = {}): Promise<World> {
  const hubDir = mkdtempSync(join(tmpdir(), 'canopy-hub-'));
  const leafDir = mkdtempSync(join(tmpdir(), 'canopy-leaf-'));
  const hub = await startHub({ options: worldServerOptions(hubDir), link: worldHubLink(), log: silentLogger });
  const acceptorPort = hub.acceptor?.port;
  assert.ok(acceptorPort !== undefined, 'the hub listens for leaves');
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: acceptorPort });
  const leafLink = resolveLinkOptions('leaf', { hub: `ws://127.0.0.1:${proxy.port}`, leaf_name: WORLD_LEAF, hub_token: WORLD_TOKEN, link_heartbeat: WORLD_HEARTBEAT }) as LeafLinkOptions;
  const leaf = await startLeaf({
    options: worldServerOptions(leafDir),
    link: leafLink,
    log: options.leafLog ?? silentLogger,
    tuning: { backoffBaseMs: 50, backoffMaxMs: 500, ...options.leafTuning },
  });
  const leafNc = await connect({ servers: `nats://127.0.0.1:${leaf.broker.server.addresses.port}` });
  const hubNc = await connect({ servers: `nats://127.0.0.1:${hub.broker.server.addresses.port}` });
  const world: World = { hub, leaf, proxy, leafNc, leafJsm: await jetstreamManager(leafNc), hubNc, hubJsm: await jetstreamManager(hubNc), hubDir, leafDir };
  t.after(async () => {
    await world.leafNc.close().catch(() => undefined);
    await world.hubNc.close().catch(() => undefined);
    await world.leaf.close().catch(() => undefined);
    await world.proxy.close();
    await world.hub.close().catch(() => undefined);
    rmSync(hubDir, { recursive: true, force: true });
    rmSync(leafDir, { recursive: true, force: true });
  });
  return world;
}

/** GET /leafz of a process with monitoring on. */
export async function leafz(port: number | undefined): Promise<Record<string, any>> {
  assert.ok(port !== undefined, 'monitoring is on');
  return (await (await fetch(`http://127.0.0.1:${port}/leafz`)).json()) as Record<string, any>;
}

/** The hub's /leafz entry of one of this world's leaf streams (cursor, gaps, gapMsgs, …). */
export async function hubLeafzStream(world: World, stream: string): Promise<Record<string, any>> {
  const status = await leafz(world.hub.broker.monitor?.port);
  const leaf = status['leafs'].find((entry: { leaf: string }) => entry.leaf === WORLD_LEAF);
  assert.ok(leaf !== undefined, `the hub knows leaf ${WORLD_LEAF}`);
  const entry = leaf.streams.find((candidate: { stream: string }) => candidate.stream === stream);
  assert.ok(entry !== undefined, `the hub knows ${WORLD_LEAF}'s stream ${stream}`);
  return entry;
}

// ---------------------------------------------------------------- the ORDERS workload

/** The stream the link tests publish to on the leaf (subjects orders.0..2; the hub's are prefixed `gw1.`). */
export const ORDERS = 'ORDERS';

/** A world whose leaf has the file stream ORDERS. */
export async function startOrdersWorld(t: TestContext, options: Parameters<typeof startWorld>[1] = {}): Promise<World> {
  const world = await startWorld(t, options);
  await world.leafJsm.streams.add({ name: ORDERS, subjects: ['orders.>'], storage: StorageType.File });
  return world;
}

/** The payload of order `i` (its length varies with i). */
export function orderPayload(i: number): Uint8Array {
  return new TextEncoder().encode(`order ${i} ${'x'.repeat(i % 50)}`);
}

export function hashOf(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Publishes orders from..to to the leaf (subject orders.<i % 3>, every 10th with an Order-Kind
 * header), `inFlight` async publishes at a time, at most `perSecond`, and waits for every PubAck.
 */
export async function publishOrders(nc: NatsConnection, from: number, to: number, perSecond = Number.POSITIVE_INFINITY, inFlight = 50): Promise<void> {
  const js = jetstream(nc);
  const pending: Promise<unknown>[] = [];
  const startedAt = Date.now();
  for (let i = from; i <= to; i++) {
    const h = i % 10 === 0 ? headers() : undefined;
    h?.set('Order-Kind', `k${i}`);
    pending.push(js.publish(`orders.${i % 3}`, orderPayload(i), h === undefined ? {} : { headers: h }));
    if (pending.length >= inFlight) {
      await Promise.all(pending.splice(0));
      const aheadMs = startedAt + ((i - from + 1) / perSecond) * 1000 - Date.now();
      if (aheadMs > 0) await new Promise((resolve) => setTimeout(resolve, aheadMs));
    }
  }
  await Promise.all(pending);
}

/**
 * Publishes orders from `from` on for `ms` (as publishOrders, in slices of a tenth of a second),
 * at most `perSecond`: fewer when the machine is slower, so the run's length does not depend on
 * its speed. Returns the last order published (every one acknowledged).
 */
export async function publishOrdersFor(nc: NatsConnection, from: number, ms: number, perSecond: number, inFlight = 50): Promise<number> {
  const untilMs = Date.now() + ms;
  const slice = Math.max(inFlight, Math.round(perSecond / 10));
  let last = from - 1;
  while (Date.now() < untilMs) {
    await publishOrders(nc, last + 1, last + slice, perSecond, inFlight);
    last += slice;
  }
  return last;
}

/**
 * The hub's ORDERS is a prefix of the leaf's, checked cheaply while the link works: the hub holds
 * exactly origin seqs 1..N (N messages, no deletion, its last one is origin seq N) and its last
 * payload hashes as the leaf's message N. Returns N (0 before the hub has the stream).
 */
export async function checkHubPrefix(world: World): Promise<number> {
  const info = await world.hubJsm.streams.info(ORDERS).catch(() => undefined);
  if (info === undefined || info.state.messages === 0) return 0;
  const { messages, first_seq: firstSeq, last_seq: lastSeq } = info.state;
  assert.deepEqual([firstSeq, lastSeq], [1, messages], `the hub's ${messages} messages are seqs 1..${messages}`);
  const last = await world.hubJsm.streams.getMessage(ORDERS, { seq: lastSeq });
  assert.ok(last !== null, `hub seq ${lastSeq} exists`);
  assert.equal(last.header.get('Canopy-Origin-Seq'), String(lastSeq), `the hub's last message (seq ${lastSeq}) is origin seq ${lastSeq}`);
  const onLeaf = await world.leafJsm.streams.getMessage(ORDERS, { seq: lastSeq });
  assert.ok(onLeaf !== null, `leaf seq ${lastSeq} exists`);
  assert.equal(hashOf(last.data), hashOf(onLeaf.data), `payload of ${lastSeq} as on the leaf`);
  return messages;
}

/** Every message of `stream` from seq 1, in order, through an ordered consumer (one pull of many, not a request per message). */
async function* readStream(nc: NatsConnection, stream: string): AsyncGenerator<JsMsg> {
  const messages = await (await jetstream(nc).consumers.get(stream)).consume({ max_messages: 1000 });
  try {
    yield* messages;
  } finally {
    messages.stop();
  }
}

/**
 * The hub's ORDERS equals the leaf's messages 1..n (waiting up to `timeoutMs` for the hub to have
 * n): hub seq i is origin seq i of this leaf (in order, no duplicate, no gap), with the leaf's
 * subject prefixed, the leaf's payload (same hash, which is order i's) and original headers.
 */
export async function checkHubEquals(world: World, n: number, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => {
    const info = await world.hubJsm.streams.info(ORDERS);
    assert.equal(info.state.messages, n, `hub has ${info.state.messages} of ${n}`);
  }, { timeoutMs, intervalMs: 100 });
  assert.equal((await world.leafJsm.streams.info(ORDERS)).state.last_seq, n, `the leaf has ${n}`);
  const onHub = readStream(world.hubNc, ORDERS);
  const onLeaf = readStream(world.leafNc, ORDERS);
  try {
    for (let seq = 1; seq <= n; seq++) {
      const [hubNext, leafNext] = await Promise.all([onHub.next(), onLeaf.next()]);
      assert.ok(hubNext.done !== true && leafNext.done !== true, `seq ${seq} is read from both`);
      const [hub, leaf] = [hubNext.value, leafNext.value];
      assert.deepEqual([hub.seq, leaf.seq], [seq, seq]);
      assert.equal(hub.headers?.get('Canopy-Origin-Seq'), String(seq), `hub seq ${seq} is origin seq ${seq}: in order, no duplicate, no gap`);
      assert.equal(hub.headers?.get('Canopy-Origin-Leaf'), WORLD_LEAF);
      assert.equal(hub.subject, `${WORLD_LEAF}.${leaf.subject}`);
      assert.equal(leaf.subject, `orders.${seq % 3}`);
      const hash = hashOf(hub.data);
      assert.equal(hash, hashOf(leaf.data), `payload of ${seq} as on the leaf`);
      assert.equal(hash, hashOf(orderPayload(seq)), `payload of ${seq} as published`);
      if (seq % 10 === 0) assert.deepEqual([hub.headers?.get('Order-Kind'), leaf.headers?.get('Order-Kind')], [`k${seq}`, `k${seq}`], `original header of ${seq}`);
    }
  } finally {
    await Promise.all([onHub.return(undefined), onLeaf.return(undefined)]);
  }
}
