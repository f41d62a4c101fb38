/**
 * `canopy leaf`: a thin yargs command module (STYLE.md §2.5 "CLI"), modelled on `canopy server`
 * (core/cli.ts). Every server flag, plus the leaf's link flags (LINK_OPTION_SPECS: hub,
 * leaf_name, hub_token, link_heartbeat, link_compression). A config file may hold both: its link
 * keys go to resolveLinkOptions('leaf', …) (a hub-only key is an error), the rest to
 * resolveServerOptions. Flags override the file. SIGTERM / SIGINT stop the link, then the broker.
 */
import type { CommandModule } from 'yargs';
import { addLinkCommandFlags, LEAF_CONFIG_PROBLEMS_KEY, linkCommandOptionsFromArgv, readConfigFile, reloadLinkCommand, reloadOnSignal, stopOnSignals } from '../core/cli.ts';
import { createRootLogger } from '../core/logging.ts';
import type { LeafLinkOptions } from '../core/server/link-options.ts';
import { ConfigError, type ServerOptions } from '../core/server/options.ts';
import { startLeaf } from './main.ts';

/**
 * Merges the config file (if any) under the flags and splits it: link keys → the link, the rest
 * → the server; its `config_problems` (a list of strings a gateway's setup wrote) → configProblems.
 */
export function leafOptionsFromArgv(argv: Record<string, unknown>): { readonly options: ServerOptions; readonly link: LeafLinkOptions; readonly configProblems: readonly string[] } {
  const { options, link } = linkCommandOptionsFromArgv(argv, 'leaf');
  const problems = typeof argv['config'] === 'string' ? readConfigFile(argv['config'])[LEAF_CONFIG_PROBLEMS_KEY] : undefined;
  if (problems !== undefined && (!Array.isArray(problems) || !problems.every((p) => typeof p === 'string'))) {
    throw new ConfigError(LEAF_CONFIG_PROBLEMS_KEY, 'must be a list of strings');
  }
  return { options, link, configProblems: problems ?? [] };
}

export const leafCommand: CommandModule = {
  command: 'leaf',
  describe: 'run a leaf: a broker whose JetStream streams sync to a hub (--hub ws://host:7422)',
  builder: (yargs) => addLinkCommandFlags(yargs, 'leaf'),
  handler: async (argv) => {
    const { options, link, configProblems } = leafOptionsFromArgv(argv as Record<string, unknown>);
    const log = await createRootLogger({ level: options.logLevel, bindings: { leaf: link.leafName } });
    const leaf = await startLeaf({ options, link, log, configProblems });
    stopOnSignals(log, () => leaf.close());
    reloadOnSignal(log, argv as Record<string, unknown>, () =>
      reloadLinkCommand({ log, broker: leaf.broker, running: link, next: leafOptionsFromArgv(argv as Record<string, unknown>) }),
    );
  },
};
