/**
 * The `canopy` CLI: one yargs program, commands registered explicitly.
 * Exit codes: 0 ok, 1 a runtime failure, 2 a bad flag or config value.
 */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { serverCommand } from '../core/cli.ts';
import { ConfigError } from '../core/server/options.ts';

const EXIT_USAGE = 2;

function reportFailure(message: string | undefined, err: Error | undefined): void {
  if (err instanceof ConfigError || (err !== undefined && err.name === 'YError')) {
    process.stderr.write(`canopy: ${err.message}\n`);
    process.exit(EXIT_USAGE);
  }
  if (err !== undefined) {
    process.stderr.write(`canopy: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`canopy: ${message ?? 'invalid arguments'} (see --help)\n`);
  process.exit(EXIT_USAGE);
}

/**
 * `canopy server`, `canopy leaf` and `canopy hub` load only what the broker needs (the client, JetStream
 * and bench commands pull in the NATS clients and progress bars: memory a gateway should
 * not pay for). Every other invocation, --help included, sees every command.
 */
async function loadCommands(): Promise<CommandModule[]> {
  if (process.argv[2] === 'server') return [serverCommand];
  if (process.argv[2] === 'leaf') return [(await import('../leaf/cli.ts')).leafCommand as CommandModule];
  if (process.argv[2] === 'hub') return [(await import('../hub/cli.ts')).hubCommand as CommandModule];
  if (process.argv[2] === 'raft-node') return [(await import('../hub/raft-host/cli.ts')).raftNodeCommand];
  const [leaf, hub, raftNode, status, clients, streams, consumers, kv, bench] = await Promise.all([
    import('../leaf/cli.ts'),
    import('../hub/cli.ts'),
    import('../hub/raft-host/cli.ts'),
    import('./cli/status-command.ts'),
    import('./cli/client-commands.ts'),
    import('./cli/stream-commands.ts'),
    import('./cli/consumer-commands.ts'),
    import('./cli/kv-commands.ts'),
    import('./bench/bench-command.ts'),
  ]);
  return [
    serverCommand,
    leaf.leafCommand,
    hub.hubCommand,
    raftNode.raftNodeCommand,
    status.statusCommand,
    clients.pubCommand,
    clients.subCommand,
    clients.reqCommand,
    clients.replyCommand,
    streams.streamCommand,
    consumers.consumerCommand,
    kv.kvCommand,
    bench.benchCommand,
  ] as CommandModule[];
}

let program = yargs(hideBin(process.argv))
  .scriptName('canopy')
  // nats-server's multi-letter short flags (-sd) must not split into -s -d.
  .parserConfiguration({ 'short-option-groups': false });
for (const command of await loadCommands()) program = program.command(command);
await program
  .demandCommand(1, 'name a command')
  .strict()
  .recommendCommands()
  .help()
  .alias('help', 'h')
  .version(false)
  .fail((message, err) => reportFailure(message, err))
  .parseAsync();
