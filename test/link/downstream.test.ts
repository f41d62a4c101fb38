/**
 * Hub → leaf sync end to end (issue 4 item 4): a real hub and two real leaves in this process
 * (real sockets, real LMDB in temp dirs), leaf A behind the TCP fault proxy. A hub stream with
 * `"canopy.downstream": "true"` is published to with the official nats.js clients; each leaf
 * must end with exactly the messages addressed to it (subject's first token = its name), in hub
 * order, each once, with the token removed, the hub's payloads and origin headers, whatever
 * happened to the link, the hub or the leaf meanwhile.
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
const LEAVES = ['leafA', 'leafB'] as const;
type LeafName = (typeof LEAVES)[number];
const TOKENS = 'leafA=secret-a,leafB=secret-b';
const STREAM = 'CMDS';
const HEARTBEAT = '300ms';

function serverOptions(storeDir: string, port = -1): ReturnType<typeof resolveServerOptions> {
  return resolveServerOptions({ store_dir: storeDir, addr: '127.0.0.1', port, http_host: '127.0.0.1', http_port: -1, websocket_port: 0, log_level: 'silent' });
}

type LeafNode = { name: LeafName; leaf: Leaf; dir: string; nc: NatsConnection; jsm: JetStreamManager; port: number };

type World = {
  hub: Hub;
  hubDir: string;
  hubPort: number;
  linkPort: number;
  hubNc: NatsConnection;
  hubJsm: JetStreamManager;
  /** Leaf A dials the hub through it; leaf B directly. */
  proxy: FaultProxy;
  leaves: Map<LeafName, LeafNode>;
};

function hubLinkOptions(port: number): HubLinkOptions {
  return resolveLinkOptions('hub', { leaf_port: port, leaf_host: '127.0.0.1', leaf_tokens: TOKENS, link_heartbeat: HEARTBEAT }) as HubLinkOptions;
}

async function startLeafNode(world: Pick<World, 'proxy' | 'linkPort'>, name: LeafName, dir: string, port = -1): Promise<LeafNode> {
  const url = name === 'leafA' ? `ws://127.0.0.1:${world.proxy.port}` : `ws://127.0.0.1:${world.linkPort}`;
  const token = name === 'leafA' ? 'secret-a' : 'secret-b';
  const link = resolveLinkOptions('leaf', { hub: url, leaf_name: name, hub_token: token, link_heartbeat: HEARTBEAT }) as LeafLinkOptions;
  const leaf = await startLeaf({ options: serverOptions(dir, port), link, log: silentLogger, tuning: { backoffBaseMs: 50, backoffMaxMs: 500 } });
  const nc = await connect({ servers: `nats://127.0.0.1:${leaf.broker.server.addresses.port}` });
  return { name, leaf, dir, nc, jsm: await jetstreamManager(nc), port: leaf.broker.server.addresses.port };
}

async function startWorld(t: TestContext, options: { downstream?: boolean } = {}): Promise<World> {
  const hubDir = mkdtempSync(join(tmpdir(), 'canopy-down-hub-'));
  const hub = await startHub({ options: serverOptions(hubDir), link: hubLinkOptions(-1), log: silentLogger });
  const linkPort = hub.acceptor!.port;
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: linkPort });
  const hubNc = await connect({ servers: `nats://127.0.0.1:${hub.broker.server.addresses.port}` });
  const hubJsm = await jetstreamManager(hubNc);
  await hubJsm.streams.add({
    name: STREAM,
    // Not `*.cmd.>`: a subject starting with a wildcard overlaps `$JS.>`, which an acked stream may
    // not capture (nats-server parity); each leaf's prefix is listed instead.
    subjects: ['cmds', 'leafA.cmd.>', 'leafB.cmd.>'],
    storage: StorageType.File,
    ...(options.downstream === false ? {} : { metadata: { 'canopy.downstream': 'true' } }),
  });
  const world: World = { hub, hubDir, hubPort: hub.broker.server.addresses.port, linkPort, hubNc, hubJsm, proxy, leaves: new Map() };
  for (const name of LEAVES) world.leaves.set(name, await startLeafNode(world, name, mkdtempSync(join(tmpdir(), `canopy-down-${name}-`))));
  t.after(async () => {
    for (const node of world.leaves.values()) {
      await node.nc.close().catch(() => undefined);
      await node.leaf.close().catch(() => undefined);
      rmSync(node.dir, { recursive: true, force: true });
    }
    await world.hubNc.close().catch(() => undefined);
    await world.proxy.close();
    await world.hub.close().catch(() => undefined);
    rmSync(hubDir, { recursive: true, force: true });
  });
  return world;
}

function leafOf(world: World, name: LeafName): LeafNode {
  return world.leaves.get(name)!;
}

function payloadOf(i: number): Uint8Array {
  return new TextEncoder().encode(`command ${i} ${'y'.repeat(i % 40)}`);
}

/** What the hub stored, in order: every message of the stream (seq, subject, payload hash). */
type HubMessage = { seq: number; subject: string; hash: string };
const hashOf = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * Publishes `count` messages on the hub, addressed in turn to leafA, leafB, leafA, nobody
 * (`cmds`) and leafB, at most `perSecond`; every 7th with a header. Returns what was stored.
 */
async function publish(world: World, from: number, count: number, perSecond = Number.POSITIVE_INFINITY): Promise<HubMessage[]> {
  const js = jetstream(world.hubNc);
  const stored: HubMessage[] = [];
  const startedAt = Date.now();
  const targets = ['leafA', 'leafB', 'leafA', undefined, 'leafB'] as const;
  let batch: Promise<void>[] = [];
  for (let i = from; i < from + count; i++) {
    const target = targets[i % targets.length];
    const subject = target === undefined ? 'cmds' : `${target}.cmd.c${i % 4}`;
    const h = i % 7 === 0 ? headers() : undefined;
    h?.set('Cmd-Kind', `k${i}`);
    const data = payloadOf(i);
    batch.push(
      js.publish(subject, data, h === undefined ? {} : { headers: h }).then((ack) => {
        stored.push({ seq: ack.seq, subject, hash: hashOf(data) });
      }),
    );
    if (batch.length >= 25) {
      await Promise.all(batch);
      batch = [];
      const aheadMs = startedAt + ((i - from + 1) / perSecond) * 1000 - Date.now();
      if (aheadMs > 0) await new Promise((resolve) => setTimeout(resolve, aheadMs));
    }
  }
  await Promise.all(batch);
  return stored.sort((a, b) => a.seq - b.seq);
}

/** The leaf's copy equals the hub's messages addressed to it: same origin seqs in order, each once, token removed, payloads. */
async function checkLeafCopy(world: World, name: LeafName, hubMessages: readonly HubMessage[]): Promise<void> {
  const expected = hubMessages.filter((message) => message.subject.startsWith(`${name}.`));
  const node = leafOf(world, name);
  await eventually(
    async () => {
      const info = await node.jsm.streams.info(STREAM);
      assert.equal(info.state.messages, expected.length, `${name} has ${info.state.messages} of ${expected.length}`);
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  for (let i = 0; i < expected.length; i++) {
    const want = expected[i]!;
    const got = await node.jsm.streams.getMessage(STREAM, { seq: i + 1 });
    assert.ok(got !== null, `${name} seq ${i + 1}`);
    assert.equal(got.header.get('Canopy-Origin-Seq'), String(want.seq), `${name} seq ${i + 1} is hub seq ${want.seq}: in order, no loss, no duplicate`);
    assert.equal(got.subject, want.subject.slice(name.length + 1), 'the leaf token is removed');
    assert.equal(hashOf(got.data), want.hash, `payload of hub seq ${want.seq}`);
    assert.equal(got.header.get('Canopy-Origin-Stream'), STREAM);
    if (want.seq % 7 === 0) assert.equal(got.header.get('Cmd-Kind'), `k${want.seq}`, 'the hub message headers come along');
  }
}

test('downstream: each leaf gets exactly the messages addressed to it, in order, without its token; the copy is never synced back up', async (t) => {
  const world = await startWorld(t);
  const stored = await publish(world, 1, 60);
  await checkLeafCopy(world, 'leafA', stored);
  await checkLeafCopy(world, 'leafB', stored);
  const leafA = leafOf(world, 'leafA');
  const first = await leafA.jsm.streams.getMessage(STREAM, { seq: 1 });
  assert.ok((first?.header.get('Canopy-Origin-Hub') ?? '') !== '', 'the hub names itself');
  assert.match(first?.header.get('Canopy-Origin-Incarnation') ?? '', /^[0-9a-f]{32}$/);
  // The local copy was created for the sync and never goes back up to the hub.
  const info = await leafA.jsm.streams.info(STREAM);
  assert.equal(info.config.metadata?.['canopy.sync'], 'false');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const hubLeafA = world.hub.acceptor!.status().find((leaf) => leaf.leaf === 'leafA')!;
  assert.deepEqual(hubLeafA.streams, [], 'nothing synced up from leaf A');
  assert.equal((await world.hubJsm.streams.info(STREAM)).state.messages, 60, 'the hub stream holds only what was published on the hub');
  // Status on both sides: the hub's sender to leaf A, leaf A's receiver.
  await eventually(() => {
    const down = world.hub.acceptor!.status().find((leaf) => leaf.leaf === 'leafA')!.downstream.find((row) => row.stream === STREAM)!;
    assert.equal(down.direction, 'down');
    assert.equal(down.backlogMsgs, 0);
    assert.equal(down.gapsSent, 0, 'filtered gaps are not gaps');
    assert.ok(down.ackedSeq !== undefined && down.ackedSeq >= 58, `leaf A acknowledged up to its last message (${down.ackedSeq})`);
  });
  const leafStatus = leafA.leaf.link.status();
  const row = leafStatus.downstream.find((entry) => entry.stream === STREAM)!;
  assert.equal(row.direction, 'down');
  assert.equal(row.gaps, 0);
  assert.ok(row.cursor >= 58 && row.isCurrent);
  assert.equal(leafStatus.receiver.gaps, 0);
  assert.ok(leafStatus.receiver.filteredMsgs > 0, 'the other messages were skipped as filtered');
  // /leafz and /metrics show the same.
  const leafz = (await (await fetch(`http://127.0.0.1:${leafA.leaf.broker.monitor!.port}/leafz`)).json()) as { link: { downstream: { stream: string; direction: string }[] } };
  assert.deepEqual(leafz.link.downstream.map((entry) => [entry.stream, entry.direction]), [[STREAM, 'down']]);
  const leafMetrics = await (await fetch(`http://127.0.0.1:${leafA.leaf.broker.monitor!.port}/metrics`)).text();
  assert.match(leafMetrics, new RegExp(`^canopy_link_downstream_cursor\\{leaf="leafA",stream="${STREAM}"\\} ${row.cursor}$`, 'm'));
  const hubMetrics = await (await fetch(`http://127.0.0.1:${world.hub.broker.monitor!.port}/metrics`)).text();
  assert.match(hubMetrics, new RegExp(`^canopy_hub_downstream_backlog_messages\\{leaf="leafA",stream="${STREAM}"\\} 0$`, 'm'));
});

test('downstream: a hub stream without "canopy.downstream": "true" is not sent', async (t) => {
  const world = await startWorld(t, { downstream: false });
  await publish(world, 1, 20);
  await new Promise((resolve) => setTimeout(resolve, 800));
  for (const name of LEAVES) {
    const names: string[] = [];
    for await (const stream of leafOf(world, name).jsm.streams.list()) names.push(stream.config.name);
    assert.deepEqual(names, [], `${name} got no stream`);
  }
  assert.deepEqual(world.hub.acceptor!.status().find((leaf) => leaf.leaf === 'leafA')?.downstream, []);
});

test('downstream: messages published while a leaf is away reach it exactly once when it returns', async (t) => {
  const world = await startWorld(t);
  const before = await publish(world, 1, 40);
  await checkLeafCopy(world, 'leafA', before);
  world.proxy.cut(true);
  await eventually(() => assert.notEqual(leafOf(world, 'leafA').leaf.link.status().state, 'up'));
  const during = await publish(world, 41, 200);
  world.proxy.cut(false);
  await checkLeafCopy(world, 'leafA', [...before, ...during]);
  await checkLeafCopy(world, 'leafB', [...before, ...during]);
});

test(`downstream: link resets every 50-400 ms while the hub publishes ~400 msg/s; the leaf copy is exact (SEED=${SEED})`, async (t) => {
  const world = await startWorld(t);
  const resetter = resetRepeatedly(world.proxy, seededRandom(SEED));
  const stored = await publish(world, 1, 2000, 400);
  const resets = await resetter.stop();
  await checkLeafCopy(world, 'leafA', stored);
  await checkLeafCopy(world, 'leafB', stored);
  t.diagnostic(`${resets} resets, ${world.proxy.stats.accepted} connections, SEED=${SEED}`);
  assert.ok(resets >= 10, 'the link was reset during the run');
});

test('downstream: a hub restart and a leaf restart on the same stores keep the copies exact', async (t) => {
  const world = await startWorld(t);
  const first = await publish(world, 1, 100);
  await checkLeafCopy(world, 'leafA', first);
  // Hub restart: same store, same ports (the proxy and leaf B still point there).
  await world.hubNc.close();
  await world.hub.close();
  world.hub = await startHub({ options: serverOptions(world.hubDir, world.hubPort), link: hubLinkOptions(world.linkPort), log: silentLogger });
  world.hubNc = await connect({ servers: `nats://127.0.0.1:${world.hubPort}` });
  world.hubJsm = await jetstreamManager(world.hubNc);
  const second = await publish(world, 101, 100);
  await checkLeafCopy(world, 'leafA', [...first, ...second]);
  await checkLeafCopy(world, 'leafB', [...first, ...second]);
  // Leaf A restart: same store; the hub publishes while it is down.
  const leafA = leafOf(world, 'leafA');
  await leafA.nc.close();
  await leafA.leaf.close();
  const third = await publish(world, 201, 100);
  world.leaves.set('leafA', await startLeafNode(world, 'leafA', leafA.dir, leafA.port));
  const fourth = await publish(world, 301, 50);
  await checkLeafCopy(world, 'leafA', [...first, ...second, ...third, ...fourth]);
  await checkLeafCopy(world, 'leafB', [...first, ...second, ...third, ...fourth]);
});

test('downstream: a leaf refuses a hub stream whose name it syncs up, and the hub refuses leaf streams into a downstream stream', async (t) => {
  const world = await startWorld(t);
  const leafB = leafOf(world, 'leafB');
  // Leaf B's own stream UP is synced up (the default); the hub then makes UP a downstream stream.
  await leafB.jsm.streams.add({ name: 'UP', subjects: ['up.>'], storage: StorageType.File });
  await jetstream(leafB.nc).publish('up.x', new TextEncoder().encode('from leaf B'));
  await eventually(async () => assert.equal((await world.hubJsm.streams.info('UP')).state.messages, 1));
  const hubUp = await world.hubJsm.streams.info('UP');
  await world.hubJsm.streams.update('UP', { ...hubUp.config, subjects: ['UP', 'leafB.up.>'], metadata: { 'canopy.downstream': 'true' } });
  await jetstream(world.hubNc).publish('leafB.up.y', new TextEncoder().encode('from the hub'));
  // Within the reconciliation second the hub offers UP down; leaf B refuses it (it would go back up), the hub refuses it up.
  await eventually(
    () => {
      const down = world.hub.acceptor!.status().find((leaf) => leaf.leaf === 'leafB')!.downstream.find((row) => row.stream === 'UP');
      assert.equal(down?.state, 'refused');
      assert.match(down?.refusal ?? '', /synced up to the hub/);
    },
    { timeoutMs: 5000 },
  );
  await jetstream(leafB.nc).publish('up.z', new TextEncoder().encode('second from leaf B'));
  await eventually(() => {
    const up = leafB.leaf.link.status().streams.find((row) => row.stream === 'UP')!;
    assert.equal(up.state, 'refused');
    assert.match(up.refusal ?? '', /syncs down to leaves/);
  });
  assert.equal((await leafB.jsm.streams.info('UP')).state.messages, 2, 'the leaf stream holds only its own messages');
});
