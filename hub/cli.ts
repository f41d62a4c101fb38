/**
 * `canopy hub`: a thin yargs command module (STYLE.md §2.5 "CLI"), modelled on core/cli.ts
 * `canopy server`: every server flag plus the hub's link flags. It resolves the options,
 * builds the root logger and calls startHub().
 */
import type { CommandModule } from 'yargs';
import { addLinkCommandFlags, linkCommandOptionsFromArgv, reloadLinkCommand, reloadOnSignal, stopOnSignals } from '../core/cli.ts';
import { createRootLogger } from '../core/logging.ts';
import type { HubLinkOptions } from '../core/server/link-options.ts';
import type { ServerOptions } from '../core/server/options.ts';
import { startHub } from './main.ts';

/** Merges the config file (if any) under the flags; link keys go to resolveLinkOptions, the rest to resolveServerOptions. */
export function hubOptionsFromArgv(argv: Record<string, unknown>): { options: ServerOptions; link: HubLinkOptions } {
  return linkCommandOptionsFromArgv(argv, 'hub');
}

export const hubCommand: CommandModule = {
  command: 'hub',
  describe: 'run a hub: a broker with JetStream that leaves sync their streams to (leaf port 7422)',
  builder: (yargs) => addLinkCommandFlags(yargs, 'hub'),
  handler: async (argv) => {
    const { options, link } = hubOptionsFromArgv(argv as Record<string, unknown>);
    const log = await createRootLogger({ level: options.logLevel });
    const hub = await startHub({ options, link, log });
    stopOnSignals(log, () => hub.close());
    reloadOnSignal(log, argv as Record<string, unknown>, () =>
      reloadLinkCommand({ log, broker: hub.broker, running: link, next: hubOptionsFromArgv(argv as Record<string, unknown>) }),
    );
  },
};
