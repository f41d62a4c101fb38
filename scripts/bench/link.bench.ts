/**
 * Leaf → hub link benchmark (issue 4 "Targets"). Not a test. Real `canopy hub` and
 * `canopy leaf` processes (the bundle, as `npm start` runs it) on loopback, with a TCP
 * proxy between them that counts the bytes on the wire.
 *
 *   npm run bench:link [-- --msgs 1000000 --rate 2000 --seconds 10]
 *
 * 1. Catch-up: the hub is down; the leaf stores `--msgs` 128-byte messages (its RSS with that
 *    backlog is read); then the hub starts and the time from its first cursor to the last is
 *    the drain rate (hub /leafz). Wire overhead = proxy bytes leaf → hub over payload bytes.
 * 2. Steady state: `--rate` msg/s published on the leaf for `--seconds`, each payload stamped
 *    with its publish time; a consumer on the hub stream gives publish → stored-on-hub and
 *    delivered latency (p50, p99).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { freePort } from '../../test/helpers/processes.ts';
import { startFaultProxy } from '../../test/helpers/fault-proxy.ts';
import { createMemoryCgroup } from './memory-cgroup.ts';
import { mappedFileRssMb, peakRssMb, rssMb, waitFor } from './server-processes.ts';
import { jsPublishOnConnection, percentile } from './workloads.ts';

const argv = yargs(hideBin(process.argv))
  .option('msgs', { type: 'number', default: 1_000_000, describe: 'backlog for the catch-up run' })
  .option('rate', { type: 'number', default: 2000, describe: 'steady-state msg/s' })
  .option('seconds', { type: 'number', default: 10, describe: 'steady-state duration' })
  .option('size', { type: 'number', default: 128, describe: 'payload bytes' })
  .option('leaf-memory-mb', { type: 'number', default: 96, describe: 'run the leaf in a memory cgroup with this limit (root; 0 = no limit)' })
  .option('node-args', { type: 'string', default: '', describe: 'extra node flags for the leaf and hub, e.g. "--cpu-prof --cpu-prof-dir=prof"' })
  .strict()
  .parseSync();

const STREAM = 'BENCH';
const LEAF = 'bench-leaf';
const TOKEN = 'bench-token';
const children = new Set<ChildProcess>();
const dirs: string[] = [];
const leafGroup = argv.leafMemoryMb > 0 ? createMemoryCgroup(`canopy-bench-leaf-${process.pid}`, argv.leafMemoryMb * 1024 * 1024) : undefined;
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  leafGroup?.remove();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * The leaf runs with `npm start`'s edge flag (a 1 MB young generation: a gateway's memory), the
 * hub with node's defaults (a cloud node: its young generation may grow, so it collects less often).
 */
const NODE_FLAGS: Record<'hub' | 'leaf', readonly string[]> = { leaf: ['--max-semi-space-size=1'], hub: [] };

function start(command: 'hub' | 'leaf', args: string[]): ChildProcess {
  const nodeArgs = [...NODE_FLAGS[command], ...argv.nodeArgs.split(' ').filter((arg) => arg !== ''), 'dist/canopy.mjs', command, '-a', '127.0.0.1', '--websocket_port', '0', '--log_level', 'warn', ...args];
  // In the cgroup from its first page: a shell enters the group, then execs node (same pid).
  const [file, fileArgs] = command === 'leaf' && leafGroup !== undefined ? ['sh', ['-c', `${leafGroup.enterCommand} "$0" "$@"`, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(file, fileArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  return child;
}

async function hubCursor(httpPort: number): Promise<number> {
  const leafz = (await (await fetch(`http://127.0.0.1:${httpPort}/leafz`)).json()) as { leafs?: { streams: { stream: string; cursor: number }[] }[] };
  return leafz.leafs?.[0]?.streams.find((s) => s.stream === STREAM)?.cursor ?? 0;
}

const dir = mkdtempSync(join(tmpdir(), 'canopy-link-bench-'));
dirs.push(dir);
const [hubPort, hubHttp, linkPort, leafPort, leafHttp] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
const proxy = await startFaultProxy({ host: '127.0.0.1', port: linkPort });
const leaf = start('leaf', ['-p', String(leafPort), '-m', String(leafHttp), '--store_dir', join(dir, 'leaf'), '--hub', `ws://127.0.0.1:${proxy.port}`, '--leaf_name', LEAF, '--hub_token', TOKEN]);
const leafNc = await waitFor('the leaf', () => connect({ servers: `127.0.0.1:${leafPort}`, reconnect: false }));
await (await jetstreamManager(leafNc)).streams.add({ name: STREAM, subjects: ['bench.>'], storage: StorageType.File });

// 1. Catch-up.
const fillStarted = Date.now();
await jsPublishOnConnection({ nc: leafNc, subject: 'bench.sensor', msgs: argv.msgs, sizeBytes: argv.size, maxPending: 256, isLean: true });
const fillSeconds = (Date.now() - fillStarted) / 1000;
const leafRssBacklog = { ...rssMb(leaf.pid), lmdbMap: mappedFileRssMb(leaf.pid, 'data.mdb') };
const hubArgs = ['-p', String(hubPort), '-m', String(hubHttp), '--store_dir', join(dir, 'hub'), '--leaf_port', String(linkPort), '--leaf_host', '127.0.0.1', '--leaf_tokens', `${LEAF}=${TOKEN}`];
start('hub', hubArgs);
const firstAt = await waitFor('the first cursor', async () => ((await hubCursor(hubHttp)) > 0 ? Date.now() : undefined));
const firstCursor = await hubCursor(hubHttp);
const doneAt = await waitFor('the last cursor', async () => ((await hubCursor(hubHttp)) >= argv.msgs ? Date.now() : undefined));
const drainRate = (argv.msgs - firstCursor) / ((doneAt - firstAt) / 1000);
const wireOverhead = proxy.stats.bytesUp / (argv.msgs * argv.size) - 1;
const leafPeakRss = peakRssMb(leaf.pid);

// 2. Steady state at --rate.
const hubNc = await connect({ servers: `127.0.0.1:${hubPort}`, reconnect: false });
const consumer = await jetstream(hubNc).consumers.get(STREAM, { opt_start_seq: argv.msgs + 1 });
const latenciesUs: number[] = [];
const total = argv.rate * argv.seconds;
const messages = await consumer.consume();
const receiving = (async () => {
  for await (const m of messages) {
    const sentUs = Number(new DataView(m.data.buffer, m.data.byteOffset, 8).getFloat64(0));
    latenciesUs.push(performance.timeOrigin * 1000 + performance.now() * 1000 - sentUs);
    if (latenciesUs.length >= total) break;
  }
})();
const js = jetstream(leafNc);
const payload = new Uint8Array(argv.size);
const steadyStarted = performance.now();
for (let i = 0; i < total; i++) {
  const due = steadyStarted + (i * 1000) / argv.rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  new DataView(payload.buffer).setFloat64(0, performance.timeOrigin * 1000 + performance.now() * 1000);
  void js.publish('bench.sensor', payload.slice());
}
await receiving;
latenciesUs.sort((a, b) => a - b);

console.log(`| link benchmark (${new Date().toISOString()}, loopback, ${argv.size} B) | value | target |`);
console.log('| --- | --- | --- |');
console.log(`| leaf fill (lean async publish, 256 outstanding) | ${Math.round(argv.msgs / fillSeconds).toLocaleString('en-US')} msg/s | |`);
console.log(
  `| leaf RSS with ${argv.msgs.toLocaleString('en-US')} messages of backlog | ${leafRssBacklog.total.toFixed(1)} MB ` +
    `(anonymous ${leafRssBacklog.anon.toFixed(1)}; file-backed ${leafRssBacklog.file.toFixed(1)}, of which LMDB map pages ${leafRssBacklog.lmdbMap.toFixed(1)}) | ≤ 96 MB |`,
);
console.log(`| leaf peak RSS through fill and drain (VmHWM) | ${leafPeakRss.toFixed(1)} MB | |`);
console.log(
  leafGroup === undefined
    ? `| leaf memory cgroup | not run (${argv.leafMemoryMb > 0 ? 'no writable memory cgroup here: needs root' : '--leaf-memory-mb 0'}) | |`
    : `| leaf in a ${argv.leafMemoryMb} MB memory cgroup (anonymous + page cache charged to it) | peak ${(leafGroup.peakBytes() / 1048576).toFixed(1)} MB, OOM kills ${leafGroup.oomKills()} | 0 OOM kills |`,
);
console.log(`| catch-up drain into the hub | ${Math.round(drainRate).toLocaleString('en-US')} msg/s | ≥ 150,000 msg/s |`);
console.log(`| wire overhead over payload bytes (compression off) | ${(wireOverhead * 100).toFixed(1)} % | ≤ 15 % |`);
console.log(`| steady state at ${argv.rate} msg/s: leaf publish → delivered from the hub stream, p50 | ${(percentile(latenciesUs, 0.5) / 1000).toFixed(2)} ms | ≤ 5 ms (stored on the hub) |`);
console.log(`| steady state p99 | ${(percentile(latenciesUs, 0.99) / 1000).toFixed(2)} ms | |`);
await messages.close();
await proxy.close();
// SIGTERM, not the exit handler's SIGKILL: a process started with --cpu-prof writes its profile on a clean exit.
await Promise.all([...children].map((child) => new Promise((resolve) => {
  child.once('exit', resolve);
  child.kill('SIGTERM');
})));
children.clear();
process.exit(0);
