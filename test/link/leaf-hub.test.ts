/**
 * Leaf → hub sync end to end (issue 4 "Tests"): a real leaf and a real hub (in this process:
 * real sockets, real LMDB in temp dirs) with the TCP fault proxy between them. The leaf's
 * stream is published to with the official nats.js clients while the link is reset, cut or
 * blackholed; at the end the hub stream must equal the leaf stream exactly: the same origin
 * sequences 1..n in order, each once, with the same subjects (prefixed), headers and payloads.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { resolveLinkOptions, type HubLinkOptions, type LeafLinkOptions } from '../../core/server/link-options.ts';
import { resolveServerOptions } from '../../core/server/options.ts';
import { silentLogger } from '../../core/util/logger.ts';
import { startHub, type Hub } from '../../hub/main.ts';
import { startLeaf, type Leaf } from '../../leaf/main.ts';
import { seededRandom } from '../helpers/canopy-server.ts';
import { eventually } from '../helpers/eventually.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { resetRepeatedly } from '../helpers/link-processes.ts';

const SEED = Number(process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const LEAF = 'gw1';
const TOKEN = 'leaf-secret';
const STREAM = 'ORDERS';
/** Short heartbeats so that dead links are found quickly (two intervals). */
const HEARTBEAT = '300ms';

function serverOptions(storeDir: string): ReturnType<typeof resolveServerOptions> {
  return resolveServerOptions({ store_dir: storeDir, addr: '127.0.0.1', port: -1, http_host: '127.0.0.1', http_port: -1, websocket_port: 0, log_level: 'silent' });
}

type World = {
  hub: Hub;
  leaf: Leaf;
  proxy: FaultProxy;
  leafNc: NatsConnection;
  hubNc: NatsConnection;
  hubJsm: JetStreamManager;
  hubDir: string;
  leafDir: string;
};

async function startWorld(t: TestContext): Promise<World> {
  const hubDir = mkdtempSync(join(tmpdir(), 'canopy-hub-'));
  const leafDir = mkdtempSync(join(tmpdir(), 'canopy-leaf-'));
  const hubLink = resolveLinkOptions('hub', { leaf_port: -1, leaf_host: '127.0.0.1', leaf_tokens: `${LEAF}=${TOKEN}`, link_heartbeat: HEARTBEAT }) as HubLinkOptions;
  const hub = await startHub({ options: serverOptions(hubDir), link: hubLink, log: silentLogger });
  const acceptorPort = hub.acceptor?.port;
  assert.ok(acceptorPort !== undefined, 'the hub listens for leaves');
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: acceptorPort });
  const leafLink = resolveLinkOptions('leaf', { hub: `ws://127.0.0.1:${proxy.port}`, leaf_name: LEAF, hub_token: TOKEN, link_heartbeat: HEARTBEAT }) as LeafLinkOptions;
  const leaf = await startLeaf({ options: serverOptions(leafDir), link: leafLink, log: silentLogger, tuning: { backoffBaseMs: 50, backoffMaxMs: 500 } });
  const leafNc = await connect({ servers: `nats://127.0.0.1:${leaf.broker.server.addresses.port}` });
  const hubNc = await connect({ servers: `nats://127.0.0.1:${hub.broker.server.addresses.port}` });
  const world: World = { hub, leaf, proxy, leafNc, hubNc, hubJsm: await jetstreamManager(hubNc), hubDir, leafDir };
  t.after(async () => {
    await world.leafNc.close().catch(() => undefined);
    await world.hubNc.close().catch(() => undefined);
    await world.leaf.close().catch(() => undefined);
    await world.proxy.close();
    await world.hub.close().catch(() => undefined);
    rmSync(hubDir, { recursive: true, force: true });
    rmSync(leafDir, { recursive: true, force: true });
  });
  await (await jetstreamManager(leafNc)).streams.add({ name: STREAM, subjects: ['orders.>'], storage: StorageType.File });
  return world;
}

function payloadOf(i: number): Uint8Array {
  return new TextEncoder().encode(`order ${i} ${'x'.repeat(i % 50)}`);
}

/** Publishes messages from..to (every 10th with a header), at most `perSecond`, and waits for every PubAck. */
async function publish(nc: NatsConnection, from: number, to: number, perSecond = Number.POSITIVE_INFINITY): Promise<void> {
  const js = jetstream(nc);
  const pending: Promise<unknown>[] = [];
  const startedAt = Date.now();
  for (let i = from; i <= to; i++) {
    const h = i % 10 === 0 ? headers() : undefined;
    h?.set('Order-Kind', `k${i}`);
    pending.push(js.publish(`orders.${i % 3}`, payloadOf(i), h === undefined ? {} : { headers: h }));
    if (pending.length >= 50) {
      await Promise.all(pending.splice(0));
      const aheadMs = startedAt + ((i - from + 1) / perSecond) * 1000 - Date.now();
      if (aheadMs > 0) await new Promise((resolve) => setTimeout(resolve, aheadMs));
    }
  }
  await Promise.all(pending);
}

/** The hub stream equals the leaf's messages 1..n: subjects prefixed, origin headers, payloads, order, no duplicates. */
async function checkHubEquals(world: World, n: number): Promise<void> {
  await eventually(async () => {
    const info = await world.hubJsm.streams.info(STREAM);
    assert.equal(info.state.messages, n, `hub has ${info.state.messages} of ${n}`);
  }, { timeoutMs: 30_000 });
  const hashOf = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
  for (let seq = 1; seq <= n; seq++) {
    const stored = await world.hubJsm.streams.getMessage(STREAM, { seq });
    assert.ok(stored !== null, `hub seq ${seq} exists`);
    assert.equal(stored.header.get('Canopy-Origin-Seq'), String(seq), `hub seq ${seq} is origin seq ${seq}: in order, no duplicate, no gap`);
    assert.equal(stored.header.get('Canopy-Origin-Leaf'), LEAF);
    assert.equal(stored.subject, `${LEAF}.orders.${seq % 3}`);
    assert.equal(hashOf(stored.data), hashOf(payloadOf(seq)), `payload of ${seq}`);
    if (seq % 10 === 0) assert.equal(stored.header.get('Order-Kind'), `k${seq}`, `original header of ${seq}`);
  }
}

/** Messages of the reset run, published at RESET_RUN_RATE per second (about 6 s). */
const RESET_RUN_MSGS = 6000;
const RESET_RUN_RATE = 1000;

test(`link: leaf stream reaches the hub exactly while the link is reset every 50-400 ms during ~1,000 msg/s (SEED=${SEED})`, async (t) => {
  const world = await startWorld(t);
  const resetter = resetRepeatedly(world.proxy, seededRandom(SEED));
  await publish(world.leafNc, 1, RESET_RUN_MSGS, RESET_RUN_RATE);
  const resets = await resetter.stop();
  await checkHubEquals(world, RESET_RUN_MSGS);
  t.diagnostic(`${resets} resets, ${world.proxy.stats.accepted} connections, SEED=${SEED}`);
  assert.ok(resets >= 10, 'the link was reset during the run');
});

async function leafz(port: number | undefined): Promise<Record<string, any>> {
  assert.ok(port !== undefined, 'monitoring is on');
  return (await (await fetch(`http://127.0.0.1:${port}/leafz`)).json()) as Record<string, any>;
}

test('link: /leafz and /metrics on the leaf and on the hub show the link, the acknowledged cursor and the backlog', async (t) => {
  const world = await startWorld(t);
  await publish(world.leafNc, 1, 120);
  await checkHubEquals(world, 120);
  await eventually(async () => {
    const leaf = await leafz(world.leaf.broker.monitor?.port);
    assert.equal(leaf['role'], 'leaf');
    assert.equal(leaf['link']['state'], 'up');
    const stream = leaf['link']['streams'].find((s: { stream: string }) => s.stream === STREAM);
    assert.deepEqual([stream.ackedSeq, stream.lastSeq, stream.backlogMsgs, stream.stalled], [120, 120, 0, false]);
  });
  const hub = await leafz(world.hub.broker.monitor?.port);
  assert.equal(hub['role'], 'hub');
  const leaf = hub['leafs'].find((l: { leaf: string }) => l.leaf === LEAF);
  assert.equal(leaf.connected, true);
  assert.equal(leaf.streams.find((s: { stream: string }) => s.stream === STREAM).cursor, 120);
  // The same on /metrics.
  const scrape = async (port: number | undefined): Promise<string> => await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const leafMetrics = await scrape(world.leaf.broker.monitor?.port);
  assert.match(leafMetrics, new RegExp(`^canopy_link_up\\{leaf="${LEAF}"\\} 1$`, 'm'));
  assert.match(leafMetrics, new RegExp(`^canopy_link_stream_acked_seq\\{leaf="${LEAF}",stream="${STREAM}"\\} 120$`, 'm'));
  assert.match(leafMetrics, new RegExp(`^canopy_link_stream_backlog_messages\\{leaf="${LEAF}",stream="${STREAM}"\\} 0$`, 'm'));
  const hubMetrics = await scrape(world.hub.broker.monitor?.port);
  assert.match(hubMetrics, new RegExp(`^canopy_hub_leaf_connected\\{leaf="${LEAF}"\\} 1$`, 'm'));
  assert.match(hubMetrics, new RegExp(`^canopy_hub_stream_cursor\\{leaf="${LEAF}",stream="${STREAM}"\\} 120$`, 'm'));
  // While the hub is unreachable the leaf shows the backlog growing.
  world.proxy.cut(true);
  await publish(world.leafNc, 121, 150);
  await eventually(async () => {
    const status = await leafz(world.leaf.broker.monitor?.port);
    assert.notEqual(status['link']['state'], 'up');
    const stream = status['link']['streams'].find((s: { stream: string }) => s.stream === STREAM);
    assert.equal(stream.backlogMsgs, 30);
  });
  world.proxy.cut(false);
  await checkHubEquals(world, 150);
});

test('link: a blackholed link is found dead by heartbeats, and sync resumes exactly when the network returns', async (t) => {
  const world = await startWorld(t);
  await publish(world.leafNc, 1, 200);
  await checkHubEquals(world, 200);
  const connectionsBefore = world.proxy.stats.accepted;
  world.proxy.blackhole(true);
  await publish(world.leafNc, 201, 400); // the leaf keeps accepting while the hub is unreachable
  await new Promise((resolve) => setTimeout(resolve, 1500)); // > 2 heartbeats: the leaf must drop the link
  world.proxy.cut(true); // the held bytes are lost with the dead connections
  world.proxy.blackhole(false);
  world.proxy.cut(false);
  await checkHubEquals(world, 400);
  assert.ok(world.proxy.stats.accepted > connectionsBefore, 'the leaf reconnected');
});

test('link: the hub restarts on the same store while the leaf publishes; nothing lost, nothing twice', async (t) => {
  const world = await startWorld(t);
  await publish(world.leafNc, 1, 500);
  const hubPort = world.hub.broker.server.addresses.port;
  const leafPort = world.hub.acceptor?.port;
  assert.ok(leafPort !== undefined);
  await world.hubNc.close();
  await world.hub.close();
  await publish(world.leafNc, 501, 1000); // hub down: the backlog grows on the leaf
  // Same store, same leaf port (the proxy still points there).
  const hubLink = resolveLinkOptions('hub', {
    leaf_port: leafPort,
    leaf_host: '127.0.0.1',
    leaf_tokens: `${LEAF}=${TOKEN}`,
    link_heartbeat: HEARTBEAT,
  }) as HubLinkOptions;
  world.hub = await startHub({ options: { ...serverOptions(world.hubDir), port: hubPort }, link: hubLink, log: silentLogger });
  world.hubNc = await connect({ servers: `nats://127.0.0.1:${hubPort}` });
  world.hubJsm = await jetstreamManager(world.hubNc);
  await checkHubEquals(world, 1000);
});
