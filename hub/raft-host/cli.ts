/**
 * `canopy raft-node init|run`: one hub node's Raft replica with its replicated log and
 * control API (hub/raft-host/README.md). A thin yargs module: it parses flags, builds
 * the logger and calls RaftHost / startControlServer.
 *
 *     canopy raft-node init --data DIR --cluster C --id 1 --voters 1,2,3
 *     canopy raft-node run  --data DIR --cluster C --secret-file F --listen 127.0.0.1:7430 \
 *                           --http 127.0.0.1:7431 --peers 1=ws://…,2=ws://…,3=ws://…
 *
 * `init` is the one explicit bootstrap step; `run` never bootstraps, so restarting a node
 * whose directory was wiped with the same command line makes it a new replica (new id)
 * rather than a second copy of the old one.
 */
import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { stopOnSignals } from '../../core/cli.ts';
import { createRootLogger } from '../../core/logging.ts';
import { ConfigError } from '../../core/server/config-error.ts';
import { LogLevel } from '../../core/server/options.ts';
import type { NodeId } from '../raft/index.ts';
import { startControlServer } from './control-http.ts';
import { initializeReplica, RaftHost } from './raft-host.ts';

/** The least bytes of a cluster secret (HMAC-SHA256 key). */
export const RAFT_SECRET_BYTES_MIN = 16;

function hostPort(flag: string, value: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || port > 65535) throw new ConfigError(flag, `must be host:port, got "${value}"`);
  return { host: match[1]!, port };
}

function nodeIdOf(flag: string, text: string): NodeId {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id <= 0) throw new ConfigError(flag, `node ids are positive integers, got "${text}"`);
  return id;
}

/** `1=ws://host:port,2=…` → map. */
export function parsePeers(value: string): Map<NodeId, string> {
  const peers = new Map<NodeId, string>();
  for (const item of value.split(',').filter((part) => part !== '')) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError('peers', `"${item}" is not id=ws://host:port`);
    const url = item.slice(eq + 1);
    if (!/^wss?:\/\/[^/]+/.test(url)) throw new ConfigError('peers', `"${url}" is not a ws:// URL`);
    peers.set(nodeIdOf('peers', item.slice(0, eq)), url);
  }
  return peers;
}

function readSecret(file: string | undefined): Uint8Array {
  const text = file === undefined ? process.env.CANOPY_RAFT_SECRET : readFileSync(file, 'utf8');
  if (text === undefined) throw new ConfigError('secret_file', 'is required (or set CANOPY_RAFT_SECRET)');
  const secret = new TextEncoder().encode(text.trim());
  if (secret.length < RAFT_SECRET_BYTES_MIN) throw new ConfigError('secret_file', `the cluster secret must be at least ${RAFT_SECRET_BYTES_MIN} bytes`);
  return secret;
}

function positive(flag: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(flag, `must be a positive integer, got ${value}`);
  return value;
}

/** The flags both subcommands take: which replica directory, of which cluster. */
function replicaFlags(yargs: Argv): Argv<{ data: string; cluster: string }> {
  return yargs
    .option('data', { type: 'string', demandOption: true, describe: 'the replica data directory' })
    .option('cluster', { type: 'string', demandOption: true, describe: 'cluster id' });
}

const initCommand: CommandModule = {
  command: 'init',
  describe: 'create an initial member of a new cluster (identity and bootstrap configuration)',
  builder: (yargs: Argv) =>
    replicaFlags(yargs)
      .option('id', { type: 'number', demandOption: true, describe: "this node's id" })
      .option('voters', { type: 'string', demandOption: true, describe: 'the initial voters, e.g. 1,2,3' }),
  handler: async (argv) => {
    const voters = String(argv.voters).split(',').map((text) => nodeIdOf('voters', text));
    const nodeId = nodeIdOf('id', String(argv.id));
    if (!voters.includes(nodeId)) throw new ConfigError('voters', `must include this node's id ${nodeId}`);
    await initializeReplica({ dataDir: String(argv.data), clusterId: String(argv.cluster), nodeId, voters });
  },
};

const runCommand: CommandModule = {
  command: 'run',
  describe: 'run the replica: peer transport, ticker, replicated log, control API',
  builder: (yargs: Argv) =>
    replicaFlags(yargs)
      .option('secret_file', { type: 'string', describe: 'file holding the cluster secret (else $CANOPY_RAFT_SECRET)' })
      .option('listen', { type: 'string', default: '127.0.0.1:7430', describe: 'peer transport host:port' })
      .option('http', { type: 'string', default: '127.0.0.1:7431', describe: 'control API host:port' })
      .option('peers', { type: 'string', default: '', describe: 'initial members: id=ws://host:port,…' })
      .option('tick_ms', { type: 'number', default: 50, describe: 'Raft tick interval' })
      .option('election_ticks', { type: 'number', default: 10, describe: 'election timeout in ticks (randomized up to 2×)' })
      .option('heartbeat_ticks', { type: 'number', default: 1, describe: 'heartbeat interval in ticks' })
      .option('snapshot_entries', { type: 'number', default: 100_000, describe: 'snapshot and compact after this many applied entries' })
      .option('log_level', { type: 'string', default: 'info', choices: LogLevel }),
  handler: async (argv) => {
    const log = await createRootLogger({ level: argv.log_level as LogLevel });
    const host = await RaftHost.start({
      dataDir: String(argv.data),
      clusterId: String(argv.cluster),
      secret: readSecret(argv.secret_file as string | undefined),
      listen: hostPort('listen', String(argv.listen)),
      peers: parsePeers(String(argv.peers)),
      tickMs: positive('tick_ms', argv.tick_ms as number),
      electionTicks: positive('election_ticks', argv.election_ticks as number),
      heartbeatTicks: positive('heartbeat_ticks', argv.heartbeat_ticks as number),
      snapshotEntries: positive('snapshot_entries', argv.snapshot_entries as number),
      log,
    });
    const control = await startControlServer(host, hostPort('http', String(argv.http)));
    const close = async (): Promise<void> => {
      control.close();
      await host.close();
    };
    void host.failed.then(async () => {
      await close().catch(() => {});
      log.flush?.();
      process.exit(1);
    });
    stopOnSignals(log, close);
  },
};

export const raftNodeCommand: CommandModule = {
  command: 'raft-node <command>',
  describe: "a hub node's Raft replica with a replicated log (issue 5 harness)",
  builder: (yargs: Argv) => yargs.command(initCommand).command(runCommand).demandCommand(1),
  handler: () => {},
};
