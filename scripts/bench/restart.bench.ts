/**
 * Restart with a big store (issue 3 "Persistence": a restart with 1 M stored messages is ready
 * to serve in under 2 s). Not a test. Fills a file stream with `--msgs` 128-byte messages through
 * a real `canopy server` (the bundle), stops it with SIGTERM, then starts it `--rounds` times and
 * measures, from spawn: accepting clients, stream info answered, first PubAck, a message read.
 *
 *   npm run bench:restart [-- --msgs 1000000 --rounds 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { freePort } from '../../test/helpers/processes.ts';
import { jsPublishOnConnection } from './workloads.ts';

const argv = yargs(hideBin(process.argv))
  .option('msgs', { type: 'number', default: 1_000_000, describe: 'messages stored before the restarts' })
  .option('rounds', { type: 'number', default: 3, describe: 'restarts measured' })
  .strict()
  .parseSync();

const STREAM = 'RESTART';
const dir = mkdtempSync(join(tmpdir(), 'canopy-restart-bench-'));
const port = await freePort();
let child: ChildProcess | undefined;
process.on('exit', () => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function startServer(): ChildProcess {
  child = spawn(
    process.execPath,
    ['--max-semi-space-size=1', 'dist/canopy.mjs', 'server', '-a', '127.0.0.1', '-p', String(port), '-m', '0', '--websocket_port', '0', '--log_level', 'warn', '--store_dir', dir],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return child;
}

async function connectWhenUp(): Promise<NatsConnection> {
  for (;;) {
    try {
      return await connect({ servers: `127.0.0.1:${port}`, reconnect: false });
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

async function stop(server: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
}

let server = startServer();
let nc = await connectWhenUp();
await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: ['restart.>'], storage: StorageType.File });
await jsPublishOnConnection({ nc, subject: 'restart.x', msgs: argv.msgs, sizeBytes: 128, maxPending: 256, isLean: true });
await nc.close();
await stop(server);

console.log(`| restart with ${argv.msgs.toLocaleString('en-US')} stored messages (ms from spawn) | accepting | stream info | first PubAck | message get |`);
console.log('| --- | --- | --- | --- | --- |');
for (let round = 1; round <= argv.rounds; round++) {
  const startedAt = performance.now();
  server = startServer();
  nc = await connectWhenUp();
  const accepting = performance.now() - startedAt;
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(STREAM);
  const infoAt = performance.now() - startedAt;
  await jetstream(nc).publish('restart.x', new Uint8Array(128));
  const ackAt = performance.now() - startedAt;
  await jsm.streams.getMessage(STREAM, { seq: Math.ceil(info.state.messages / 2) });
  const getAt = performance.now() - startedAt;
  if (info.state.messages < argv.msgs) throw new Error(`only ${info.state.messages} messages after the restart`);
  console.log(`| round ${round} | ${accepting.toFixed(0)} | ${infoAt.toFixed(0)} | ${ackAt.toFixed(0)} | ${getAt.toFixed(0)} |`);
  await nc.close();
  await stop(server);
}
process.exit(0);
