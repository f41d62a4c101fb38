/**
 * The `canopy` CLI: one yargs program, commands registered explicitly.
 * Exit codes: 0 ok, 1 a runtime failure, 2 a bad flag or config value.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { serverCommand } from '../core/cli.ts';
import { ConfigError } from '../core/server/options.ts';

const EXIT_USAGE = 2;

function reportFailure(message: string | undefined, err: Error | undefined): void {
  if (err instanceof ConfigError) {
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

await yargs(hideBin(process.argv))
  .scriptName('canopy')
  // nats-server's multi-letter short flags (-sd) must not split into -s -d.
  .parserConfiguration({ 'short-option-groups': false })
  .command(serverCommand)
  .demandCommand(1, 'name a command')
  .strict()
  .recommendCommands()
  .help()
  .alias('help', 'h')
  .version(false)
  .fail((message, err) => reportFailure(message, err))
  .parseAsync();
