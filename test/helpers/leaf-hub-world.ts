/**
 * A real leaf and a real hub in this process (real sockets, real LMDB in temp dirs) with the TCP
 * fault proxy between them and an official nats.js connection to each: the world of the
 * end-to-end link tests (test/link). Everything is closed and removed after the test.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { resolveLinkOptions, type HubLinkOptions, type LeafLinkOptions } from '../../core/server/link-options.ts';
import { resolveServerOptions } from '../../core/server/options.ts';
import { silentLogger } from '../../core/util/logger.ts';
import { startHub, type Hub } from '../../hub/main.ts';
import { startLeaf, type Leaf } from '../../leaf/main.ts';
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

export async function startWorld(t: TestContext): Promise<World> {
  const hubDir = mkdtempSync(join(tmpdir(), 'canopy-hub-'));
  const leafDir = mkdtempSync(join(tmpdir(), 'canopy-leaf-'));
  const hub = await startHub({ options: worldServerOptions(hubDir), link: worldHubLink(), log: silentLogger });
  const acceptorPort = hub.acceptor?.port;
  assert.ok(acceptorPort !== undefined, 'the hub listens for leaves');
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: acceptorPort });
  const leafLink = resolveLinkOptions('leaf', { hub: `ws://127.0.0.1:${proxy.port}`, leaf_name: WORLD_LEAF, hub_token: WORLD_TOKEN, link_heartbeat: WORLD_HEARTBEAT }) as LeafLinkOptions;
  const leaf = await startLeaf({ options: worldServerOptions(leafDir), link: leafLink, log: silentLogger, tuning: { backoffBaseMs: 50, backoffMaxMs: 500 } });
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
