/**
 * `canopy hub`: a thin yargs command module (STYLE.md §2.5 "CLI"), modelled on core/cli.ts
 * `canopy server`: every server flag plus the hub's link flags. It resolves the options,
 * builds the root logger and calls startHub().
 */
import type { Argv, CommandModule } from 'yargs';
import { addServerOptionFlags, readConfigFile } from '../core/cli.ts';
import { createRootLogger } from '../core/logging.ts';
import { isLinkOptionKey, LINK_OPTION_SPECS, resolveLinkOptions, type HubLinkOptions, type LinkOptionKey } from '../core/server/link-options.ts';
import { resolveServerOptions, SERVER_OPTION_SPECS, type ServerOptions } from '../core/server/options.ts';
import { assert } from '../core/util/assert.ts';
import { startHub } from './main.ts';

/** The link options `canopy hub` takes (resolveLinkOptions refuses the leaf's in a config file). */
export const HUB_LINK_OPTION_KEYS = ['leaf_port', 'leaf_host', 'leaf_tokens', 'link_heartbeat'] as const satisfies readonly LinkOptionKey[];

/** Adds the hub's link flags. */
export function addHubLinkFlags<T>(yargs: Argv<T>): Argv<T> {
  let builder = yargs;
  for (const key of HUB_LINK_OPTION_KEYS) builder = builder.option(key, { type: 'string', describe: LINK_OPTION_SPECS[key].describe }) as Argv<T>;
  return builder;
}

/** Merges the config file (if any) under the flags; link keys go to resolveLinkOptions, the rest to resolveServerOptions. */
export function hubOptionsFromArgv(argv: Record<string, unknown>): { options: ServerOptions; link: HubLinkOptions } {
  const fromFile = typeof argv['config'] === 'string' ? readConfigFile(argv['config']) : {};
  const serverRaw: Record<string, unknown> = {};
  const linkRaw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fromFile)) {
    if (isLinkOptionKey(key)) linkRaw[key] = value;
    else serverRaw[key] = value;
  }
  for (const key of Object.keys(SERVER_OPTION_SPECS)) {
    if (argv[key] !== undefined) serverRaw[key] = argv[key];
  }
  for (const key of HUB_LINK_OPTION_KEYS) {
    if (argv[key] !== undefined) linkRaw[key] = argv[key];
  }
  const link = resolveLinkOptions('hub', linkRaw);
  assert(link.role === 'hub', 'hub link options');
  return { options: resolveServerOptions(serverRaw), link };
}

export const hubCommand: CommandModule = {
  command: 'hub',
  describe: 'run a hub: a broker with JetStream that leaves sync their streams to (leaf port 7422)',
  builder: (yargs) => addHubLinkFlags(addServerOptionFlags(yargs)),
  handler: async (argv) => {
    const { options, link } = hubOptionsFromArgv(argv as Record<string, unknown>);
    const log = await createRootLogger({ level: options.logLevel });
    const hub = await startHub({ options, link, log });
    let isStopping = false;
    const stop = (signal: string): void => {
      if (isStopping) return;
      isStopping = true;
      log.info({ signal }, 'signal received');
      hub.close().then(
        () => {
          log.flush?.();
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          log.flush?.();
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  },
};
