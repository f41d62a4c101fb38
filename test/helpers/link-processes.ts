/**
 * Helpers of the link fault tests (test/link): a real `canopy hub` and `canopy leaf` process pair
 * on loopback that a test kills and restarts on their stores, and a proxy resetter.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCanopyServer, type CanopyServer } from './canopy-server.ts';
import type { FaultProxy } from './fault-proxy.ts';
import { freePort } from './processes.ts';

export type LinkProcesses = {
  /** The current processes (replaced by the restarts). */
  hub: CanopyServer;
  leaf: CanopyServer;
  /** A client connection (no reconnect), closed at the end of the test. */
  connectTo(server: CanopyServer): Promise<NatsConnection>;
  /** Starts the hub, or the leaf, again on its store and ports (after a kill). */
  restartHub(): Promise<void>;
  restartLeaf(): Promise<void>;
};

/** Starts a hub and a leaf named `leaf` (token `token`, heartbeat 300 ms) in temp dirs, removed with everything else after the test. */
export async function startLinkProcesses(t: TestContext, options: { readonly leaf: string; readonly token: string; readonly dirPrefix: string }): Promise<LinkProcesses> {
  const hubDir = mkdtempSync(join(tmpdir(), `${options.dirPrefix}-hub-`));
  const leafDir = mkdtempSync(join(tmpdir(), `${options.dirPrefix}-leaf-`));
  const [hubPort, leafPort, linkPort] = [await freePort(), await freePort(), await freePort()];
  const hubArgs = ['--leaf_port', String(linkPort), '--leaf_host', '127.0.0.1', '--leaf_tokens', `${options.leaf}=${options.token}`, '--link_heartbeat', '300ms'];
  const leafArgs = ['--hub', `ws://127.0.0.1:${linkPort}`, '--leaf_name', options.leaf, '--hub_token', options.token, '--link_heartbeat', '300ms'];
  const startHub = (): Promise<CanopyServer> => startCanopyServer(hubPort, hubDir, { command: 'hub', extraArgs: hubArgs });
  const startLeaf = (): Promise<CanopyServer> => startCanopyServer(leafPort, leafDir, { command: 'leaf', extraArgs: leafArgs });
  const open: NatsConnection[] = [];
  const processes: LinkProcesses = {
    hub: await startHub(),
    leaf: await startLeaf(),
    async connectTo(server) {
      const nc = await connect({ servers: server.server, reconnect: false });
      open.push(nc);
      return nc;
    },
    async restartHub() {
      processes.hub = await startHub();
    },
    async restartLeaf() {
      processes.leaf = await startLeaf();
    },
  };
  t.after(async () => {
    for (const nc of open) await nc.close().catch(() => undefined);
    await processes.leaf.kill();
    await processes.hub.kill();
    rmSync(hubDir, { recursive: true, force: true });
    rmSync(leafDir, { recursive: true, force: true });
  });
  return processes;
}

/** Resets the proxy's connections every 50-400 ms (drawn from `random`) until `stop()`, which resolves with the count. */
export function resetRepeatedly(proxy: FaultProxy, random: () => number): { stop(): Promise<number> } {
  let resets = 0;
  let isResetting = true;
  const resetter = (async () => {
    while (isResetting) {
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(random() * 350)));
      proxy.reset();
      resets++;
    }
  })();
  return {
    async stop() {
      isResetting = false;
      await resetter;
      return resets;
    },
  };
}

/**
 * `kills` rounds of kill -9 each for the leaf (odd rounds) and the hub (even rounds) while
 * `publishFor(ms)` publishes (300-800 ms, the kill 100-500 ms in, drawn from `random`): the
 * killed process restarts on its store, then `check(where)` runs. The side named by
 * `killAfterPublishing` is killed only once `publishFor` resolved (its PubAcks are what must
 * arrive); otherwise mid-publish (`publishFor` must then survive the kill of its server).
 */
export async function killRounds(
  processes: LinkProcesses,
  options: {
    readonly kills: number;
    readonly random: () => number;
    readonly seed: number;
    readonly publishFor: (ms: number) => Promise<void>;
    readonly killAfterPublishing?: 'leaf' | 'hub';
    readonly check: (where: string) => Promise<void>;
  },
): Promise<void> {
  const { random } = options;
  for (let round = 1; round <= options.kills * 2; round++) {
    const side = round % 2 === 0 ? 'hub' : 'leaf';
    const publishing = options.publishFor(300 + Math.floor(random() * 500));
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.floor(random() * 400)));
    if (options.killAfterPublishing === side) await publishing;
    const signal = await (side === 'hub' ? processes.hub : processes.leaf).kill();
    if (signal !== 'SIGKILL') throw new Error(`round ${round}: the ${side} ended by ${signal}, not by kill -9`);
    await publishing;
    if (side === 'hub') await processes.restartHub();
    else await processes.restartLeaf();
    await options.check(`round ${round} (kill ${side}, SEED=${options.seed})`);
  }
}
