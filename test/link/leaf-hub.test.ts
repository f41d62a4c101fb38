/**
 * Leaf → hub sync end to end (issue 4 "Tests"): a real leaf and a real hub (in this process:
 * real sockets, real LMDB in temp dirs) with the TCP fault proxy between them. The leaf's
 * stream is published to with the official nats.js clients while the link is reset, cut or
 * blackholed; at the end the hub stream must equal the leaf stream exactly: the same origin
 * sequences 1..n in order, each once, with the same subjects (prefixed), headers and payloads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { silentLogger } from '../../core/util/logger.ts';
import { startHub } from '../../hub/main.ts';
import { seededRandom } from '../helpers/canopy-server.ts';
import { eventually } from '../helpers/eventually.ts';
import {
  checkHubEquals,
  leafz,
  ORDERS as STREAM,
  publishOrders as publish,
  startOrdersWorld as startWorld,
  WORLD_LEAF as LEAF,
  worldHubLink,
  worldServerOptions as serverOptions,
} from '../helpers/leaf-hub-world.ts';
import { resetRepeatedly } from '../helpers/link-processes.ts';

const SEED = Number(process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));

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
  world.hub = await startHub({ options: { ...serverOptions(world.hubDir), port: hubPort }, link: worldHubLink(leafPort), log: silentLogger });
  world.hubNc = await connect({ servers: `nats://127.0.0.1:${hubPort}` });
  world.hubJsm = await jetstreamManager(world.hubNc);
  await checkHubEquals(world, 1000);
});
