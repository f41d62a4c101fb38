/**
 * `canopy leaf`: a thin yargs command module (STYLE.md §2.5 "CLI"), modelled on `canopy server`
 * (core/cli.ts). Every server flag, plus the leaf's link flags (LINK_OPTION_SPECS: hub,
 * leaf_name, hub_token, link_heartbeat, link_compression). A config file may hold both: its link
 * keys go to resolveLinkOptions('leaf', …) (a hub-only key is an error), the rest to
 * resolveServerOptions. Flags override the file. SIGTERM / SIGINT stop the link, then the broker.
 */
import type { Argv, CommandModule } from 'yargs';
import { addServerOptionFlags, readConfigFile } from '../core/cli.ts';
import { createRootLogger } from '../core/logging.ts';
import { isLinkOptionKey, LINK_OPTION_SPECS, resolveLinkOptions, type LeafLinkOptions } from '../core/server/link-options.ts';
import { resolveServerOptions, SERVER_OPTION_SPECS, type ServerOptions } from '../core/server/options.ts';
import { startLeaf } from './main.ts';

/** The link options a leaf takes (the others belong to `canopy hub`). */
export const LEAF_LINK_FLAGS = ['hub', 'leaf_name', 'hub_token', 'link_heartbeat', 'link_compression'] as const;

/** Adds every server flag and the leaf's link flags. */
export function addLeafOptionFlags<T>(yargs: Argv<T>): Argv<T> {
  let builder = addServerOptionFlags(yargs);
  for (const key of LEAF_LINK_FLAGS) builder = builder.option(key, { type: 'string', describe: LINK_OPTION_SPECS[key].describe });
  return builder;
}

/** Merges the config file (if any) under the flags and splits it: link keys → the link, the rest → the server. */
export function leafOptionsFromArgv(argv: Record<string, unknown>): { readonly options: ServerOptions; readonly link: LeafLinkOptions } {
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
  for (const key of LEAF_LINK_FLAGS) {
    if (argv[key] !== undefined) linkRaw[key] = argv[key];
  }
  const options = resolveServerOptions(serverRaw);
  const link = resolveLinkOptions('leaf', linkRaw);
  if (link.role !== 'leaf') throw new Error('resolveLinkOptions(leaf) returned hub options');
  return { options, link };
}

export const leafCommand: CommandModule = {
  command: 'leaf',
  describe: 'run a leaf: a broker whose JetStream streams sync to a hub (--hub ws://host:7422)',
  builder: (yargs) => addLeafOptionFlags(yargs),
  handler: async (argv) => {
    const { options, link } = leafOptionsFromArgv(argv as Record<string, unknown>);
    const log = await createRootLogger({ level: options.logLevel, bindings: { leaf: link.leafName } });
    const leaf = await startLeaf({ options, link, log });
    let isStopping = false;
    const stop = (signal: string): void => {
      if (isStopping) return;
      isStopping = true;
      log.info({ signal }, 'signal received');
      leaf.close().then(
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
