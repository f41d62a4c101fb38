/**
 * The nats-server side of the leaf → hub catch-up benchmark (issue 4 "Targets":
 * canopy's drain ≥ 3× a NATS mirror over a leafnode link on the same machine).
 * Not a test. Two Debian nats-server processes on loopback, each with JetStream,
 * file storage, default sync and its own JetStream domain:
 *
 * - "hub" (domain `hub`) listens for leafnodes; it holds stream BENCH_MIRROR,
 *   a mirror of the leaf's BENCH through the leaf domain's API prefix
 *   (`mirror: { name: "BENCH", external: { api: "$JS.leaf.API" } }`);
 * - "leaf" (domain `leaf`) has stream BENCH on `bench.>` and a leafnode remote
 *   to the hub.
 *
 * The run has the shape of link.bench.ts's catch-up: the hub is started once
 * alone to create the mirror stream, then stopped (the outage); the leaf stores
 * `msgs` messages with the lean async publisher (256 PubAcks outstanding) and
 * its RSS is read; then the hub starts again, the leaf's link comes up and the
 * mirror catches up. The drain rate is taken from the first poll (every 20 ms,
 * hub stream info) that sees mirrored messages to the one that sees all of them.
 * At the end the mirror must hold exactly `msgs` messages, the last one intact.
 *
 *   npm run bench:link:nats [-- --msgs 1000000 --size 128 --proxy]
 *
 * `--proxy` puts the TCP proxy link.bench.ts uses between leaf and hub, so the
 * bytes on the wire are counted the same way and both links pay for it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { jetstreamManager, StorageType, type JetStreamManager, type StreamSource } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startFaultProxy, type FaultProxy } from '../../test/helpers/fault-proxy.ts';
import { freePort } from '../../test/helpers/processes.ts';
import { ensureNatsServer, rssMb, stopChild, waitFor } from './server-processes.ts';
import { jsPublishOnConnection } from './workloads.ts';

const LABEL = 'bench:link:nats';
const LEAF_STREAM = 'BENCH';
const HUB_STREAM = 'BENCH_MIRROR';
const SUBJECT = 'bench.sensor';
const HUB_DOMAIN = 'hub';
const LEAF_DOMAIN = 'leaf';
/** What the hub's mirror is configured with: the leaf's stream, reached through the leaf domain's API prefix. */
export const MIRROR_SOURCE: StreamSource = { name: LEAF_STREAM, external: { api: `$JS.${LEAF_DOMAIN}.API` } };
const FIRST_MESSAGE_TIMEOUT_MS = 120_000;
const DRAIN_TIMEOUT_MS = 1_800_000;
/** After the last message, the mirror is read again this much later: it must not have grown. */
const SETTLE_MS = 500;
const KILL_GRACE_MS = 5000;
const STDERR_TAIL_CHARS = 2000;

export type NatsMirrorDrainOptions = {
  readonly msgs: number;
  readonly sizeBytes: number;
  /** Leaf → hub through the counting TCP proxy (as link.bench.ts does), for the wire bytes. */
  readonly isProxied?: boolean;
  readonly log?: (line: string) => void;
};

export type NatsMirrorDrainResult = {
  readonly natsServerVersion: string;
  readonly msgs: number;
  readonly sizeBytes: number;
  /** Lean async publish into the leaf's stream, first publish to last PubAck. */
  readonly fillMsgsPerSec: number;
  /** The leaf's VmRSS (anonymous and file-backed parts) with the whole backlog stored, MB. */
  readonly leafRssMb: { readonly total: number; readonly anon: number; readonly file: number };
  /** From spawning the hub again to the first poll that saw a mirrored message. */
  readonly hubStartToFirstMs: number;
  /** Messages already in the mirror at that first poll (not counted in the rate). */
  readonly firstSeenMsgs: number;
  readonly drainSeconds: number;
  readonly drainMsgsPerSec: number;
  /** Leaf → hub bytes over payload bytes, minus 1; only with `isProxied`. */
  readonly wireOverhead?: number;
};

type Server = { readonly child: ChildProcess; readonly clientPort: number; stderrTail(): string };

function startNatsServer(configPath: string, clientPort: number): Server {
  const child = spawn('nats-server', ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (tail = (tail + text).slice(-STDERR_TAIL_CHARS)));
  return { child, clientPort, stderrTail: () => tail };
}

/** A client on `server` once it accepts connections and its JetStream answers. */
async function connectJetStream(server: Server, name: string): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await waitFor(`${name} to accept connections`, async () => {
    if (server.child.exitCode !== null) throw new Error('exited');
    return await connect({ servers: `127.0.0.1:${server.clientPort}`, name: `${LABEL} ${name}`, reconnect: false });
  }, 30_000).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; nats-server said:\n${server.stderrTail()}`);
  });
  const jsm = await waitFor(`${name}'s JetStream`, async () => {
    const manager = await jetstreamManager(nc);
    await manager.getAccountInfo();
    return manager;
  }, 30_000);
  return { nc, jsm };
}

function serverConfig(options: { name: string; clientPort: number; storeDir: string; domain: string; leafnodes: string }): string {
  return [
    `server_name: ${options.name}`,
    `listen: "127.0.0.1:${options.clientPort}"`,
    `jetstream { store_dir: "${options.storeDir}", domain: ${options.domain} }`,
    `leafnodes { ${options.leafnodes} }`,
    '',
  ].join('\n');
}

export async function measureNatsMirrorDrain(options: NatsMirrorDrainOptions): Promise<NatsMirrorDrainResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${LABEL}: ${line}\n`));
  const { msgs, sizeBytes } = options;
  ensureNatsServer(LABEL);
  const natsServerVersion = execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim().replace(/^nats-server:\s*/, '');
  const dir = mkdtempSync(join(tmpdir(), 'canopy-nats-mirror-bench-'));
  const servers: Server[] = [];
  const connections: NatsConnection[] = [];
  let proxy: FaultProxy | undefined;
  // An interrupted run (Ctrl-C in the CLI) must not leave nats-servers behind.
  const killAll = (): void => {
    for (const server of servers) server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killAll);
  try {
    const [hubPort, hubLeafnodePort, leafPort] = await Promise.all([freePort(), freePort(), freePort()]);
    if (options.isProxied) proxy = await startFaultProxy({ host: '127.0.0.1', port: hubLeafnodePort });
    const hubConfig = join(dir, 'hub.conf');
    const leafConfig = join(dir, 'leaf.conf');
    writeFileSync(hubConfig, serverConfig({ name: 'bench-hub', clientPort: hubPort, storeDir: join(dir, 'hub'), domain: HUB_DOMAIN, leafnodes: `listen: "127.0.0.1:${hubLeafnodePort}"` }));
    writeFileSync(
      leafConfig,
      serverConfig({ name: 'bench-leaf', clientPort: leafPort, storeDir: join(dir, 'leaf'), domain: LEAF_DOMAIN, leafnodes: `remotes: [ { url: "nats-leaf://127.0.0.1:${proxy?.port ?? hubLeafnodePort}" } ]` }),
    );
    const startServer = (configPath: string, port: number): Server => {
      const server = startNatsServer(configPath, port);
      servers.push(server);
      return server;
    };

    // 0. The hub alone, to create the mirror; then the outage.
    let hub = startServer(hubConfig, hubPort);
    const setup = await connectJetStream(hub, 'the hub');
    await setup.jsm.streams.add({ name: HUB_STREAM, storage: StorageType.File, mirror: MIRROR_SOURCE });
    await setup.nc.close();
    await stopChild(hub.child, KILL_GRACE_MS);
    log(`nats-server ${natsServerVersion}; hub mirror ${HUB_STREAM} created (mirror ${JSON.stringify(MIRROR_SOURCE)}), hub stopped`);

    // 1. The leaf fills its stream while the hub is down.
    const leaf = startServer(leafConfig, leafPort);
    const leafClient = await connectJetStream(leaf, 'the leaf');
    connections.push(leafClient.nc);
    await leafClient.jsm.streams.add({ name: LEAF_STREAM, subjects: ['bench.>'], storage: StorageType.File });
    const fill = await jsPublishOnConnection({ nc: leafClient.nc, subject: SUBJECT, msgs, sizeBytes, maxPending: 256, isLean: true });
    const leafRssMb = rssMb(leaf.child.pid);
    const leafState = (await leafClient.jsm.streams.info(LEAF_STREAM)).state;
    if (leafState.messages !== msgs) throw new Error(`the leaf's ${LEAF_STREAM} holds ${leafState.messages} messages after the fill, not ${msgs}`);
    log(`leaf filled: ${msgs.toLocaleString('en-US')} × ${sizeBytes} B at ${Math.round(fill.msgsPerSec).toLocaleString('en-US')} msg/s; leaf RSS ${leafRssMb.total.toFixed(1)} MB`);

    // 2. The hub comes back; the leaf's link comes up and the mirror catches up.
    const hubStartedAt = Date.now();
    hub = startServer(hubConfig, hubPort);
    const hubClient = await connectJetStream(hub, 'the hub');
    connections.push(hubClient.nc);
    const mirroredCount = async (): Promise<number> => (await hubClient.jsm.streams.info(HUB_STREAM)).state.messages;
    const describeMirror = async (): Promise<string> => {
      try {
        const info = await hubClient.jsm.streams.info(HUB_STREAM);
        return JSON.stringify({ state: info.state, mirror: info.mirror });
      } catch (err) {
        return `unavailable (${err instanceof Error ? err.message : String(err)})`;
      }
    };
    const first = await waitFor('the first mirrored message', async () => {
      const count = await mirroredCount();
      return count > 0 ? { at: Date.now(), count } : undefined;
    }, FIRST_MESSAGE_TIMEOUT_MS).catch(async (err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; hub stream: ${await describeMirror()}; hub said:\n${hub.stderrTail()}`);
    });
    log(`first mirrored messages ${first.at - hubStartedAt} ms after the hub was spawned (${first.count.toLocaleString('en-US')} already there)`);
    const doneAt = await waitFor('the last mirrored message', async () => ((await mirroredCount()) >= msgs ? Date.now() : undefined), DRAIN_TIMEOUT_MS).catch(async (err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; hub stream: ${await describeMirror()}`);
    });
    const drainSeconds = (doneAt - first.at) / 1000;
    const wireOverhead = proxy === undefined ? undefined : proxy.stats.bytesUp / (msgs * sizeBytes) - 1;

    // 3. Is it real: exactly `msgs` messages, sequences 1..msgs, still so a moment later, the last one intact.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const final = await hubClient.jsm.streams.info(HUB_STREAM);
    const { messages, first_seq: firstSeq, last_seq: lastSeq } = final.state;
    if (messages !== msgs || firstSeq !== 1 || lastSeq !== msgs) {
      throw new Error(`the hub's mirror holds ${messages} messages (sequences ${firstSeq}-${lastSeq}), expected exactly ${msgs} (1-${msgs})`);
    }
    const last = await hubClient.jsm.streams.getMessage(HUB_STREAM, { seq: msgs });
    if (last === null || last.subject !== SUBJECT || last.data.length !== sizeBytes) {
      throw new Error(`the hub's mirror's message ${msgs} is not a ${sizeBytes}-byte message on ${SUBJECT}`);
    }
    log(`verified: the hub's ${HUB_STREAM} holds exactly ${msgs.toLocaleString('en-US')} messages (mirror lag ${final.mirror?.lag ?? '?'})`);
    return {
      natsServerVersion,
      msgs,
      sizeBytes,
      fillMsgsPerSec: fill.msgsPerSec,
      leafRssMb,
      hubStartToFirstMs: first.at - hubStartedAt,
      firstSeenMsgs: first.count,
      drainSeconds,
      drainMsgsPerSec: (msgs - first.count) / drainSeconds,
      ...(wireOverhead === undefined ? {} : { wireOverhead }),
    };
  } finally {
    await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
    await Promise.all(servers.map((server) => stopChild(server.child, KILL_GRACE_MS)));
    await proxy?.close();
    process.removeListener('exit', killAll);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One markdown row, to go under link.bench.ts's table (label | value | target). */
export function natsMirrorDrainRow(result: NatsMirrorDrainResult): string {
  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  const wire = result.wireOverhead === undefined ? '' : `; wire overhead ${(result.wireOverhead * 100).toFixed(1)} %`;
  return (
    `| for comparison: nats-server ${result.natsServerVersion}, hub mirror of the leaf's stream over a leafnode ` +
    `(${count(result.msgs)} × ${result.sizeBytes} B; leaf fill ${count(result.fillMsgsPerSec)} msg/s; leaf RSS ${result.leafRssMb.total.toFixed(1)} MB${wire}) ` +
    `| ${count(result.drainMsgsPerSec)} msg/s | canopy's drain ≥ 3× this (${count(result.drainMsgsPerSec * 3)} msg/s) |`
  );
}

async function main(): Promise<void> {
  const argv = yargs(hideBin(process.argv))
    .scriptName('npm run bench:link:nats --')
    .option('msgs', { type: 'number', default: 1_000_000, describe: 'backlog for the catch-up run' })
    .option('size', { type: 'number', default: 128, describe: 'payload bytes' })
    .option('proxy', { type: 'boolean', default: false, describe: 'leaf → hub through the counting TCP proxy link.bench.ts uses (wire overhead)' })
    .strict()
    .help()
    .parseSync();
  if (!Number.isInteger(argv.msgs) || argv.msgs < 1 || !Number.isInteger(argv.size) || argv.size < 0) {
    throw new Error('--msgs must be a positive integer and --size a non-negative one');
  }
  const result = await measureNatsMirrorDrain({ msgs: argv.msgs, sizeBytes: argv.size, isProxied: argv.proxy });
  process.stderr.write(`${LABEL}: ${JSON.stringify(result)}\n`);
  process.stdout.write(`${natsMirrorDrainRow(result)}\n`);
}

const entryScript = process.argv[1];
if (entryScript !== undefined && import.meta.url === pathToFileURL(entryScript).href) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  try {
    await main();
  } catch (err) {
    process.stderr.write(`${LABEL}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
