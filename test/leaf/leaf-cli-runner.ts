/**
 * `canopy leaf` for the CLI test until scripts/canopy.ts registers the command: the same yargs
 * setup as scripts/canopy.ts (strict, nats-server's multi-letter short flags), with leafCommand.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { leafCommand } from '../../leaf/cli.ts';

await yargs(hideBin(process.argv))
  .scriptName('canopy')
  .parserConfiguration({ 'short-option-groups': false })
  .command(leafCommand)
  .demandCommand(1)
  .strict()
  .version(false)
  .fail((message, err) => {
    process.stderr.write(`canopy: ${err?.message ?? message}\n`);
    process.exit(2);
  })
  .parseAsync();
