/**
 * `canopy server`: a thin yargs command module (STYLE.md §2.5 "CLI"). It parses
 * and validates options, builds the root logger and calls startBroker().
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { Argv, CommandModule } from 'yargs';
import { createRootLogger } from './logging.ts';
import {
  isLinkConfigKey,
  LINK_OPTION_SPECS,
  LINK_ROLE_KEYS,
  resolveLinkOptions,
  type HubLinkOptions,
  type LeafLinkOptions,
  type LinkRole,
} from './server/link-options.ts';
import { ConfigError, resolveServerOptions, SERVER_OPTION_SPECS, type ServerOptions } from './server/options.ts';
import { isPlainObject } from './server/config-fields.ts';
import type { Logger } from './util/logger.ts';
import { startBroker, type Broker } from './start.ts';

/** Where a leaf's monitoring listens unless http_host is given: gateways sit on shared networks. */
export const LEAF_HTTP_HOST_DEFAULT = '127.0.0.1';

/**
 * A leaf config file's key that is no option: problems a device's setup found in its own
 * settings (firmware-images: canopy.conf on a gateway's boot partition), which the leaf logs at
 * start and shows on /leafz. Never a flag.
 */
export const LEAF_CONFIG_PROBLEMS_KEY = 'config_problems';

/** Reads a JSON config file; any problem is a ConfigError naming the file. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('config', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('config', `${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Adds every server option as a flag, with nats-server's names and aliases. */
export function addServerOptionFlags<T>(yargs: Argv<T>): Argv<T> {
  let builder = yargs.option('config', { alias: 'c', type: 'string', describe: 'JSON config file (same keys as the flags)' });
  for (const [key, spec] of Object.entries(SERVER_OPTION_SPECS)) {
    builder = builder.option(key, {
      type: 'string',
      describe: spec.describe,
      ...('alias' in spec ? { alias: spec.alias } : {}),
    });
  }
  return builder as Argv<T>;
}

/** Merges the config file (if any) under the flags and resolves them. */
export function serverOptionsFromArgv(argv: Record<string, unknown>): ServerOptions {
  return resolveServerOptions(rawSettings(argv, undefined).server);
}

/** Adds every server flag plus the link flags of `role` (`canopy leaf`, `canopy hub`). */
export function addLinkCommandFlags<T>(yargs: Argv<T>, role: LinkRole): Argv<T> {
  let builder = addServerOptionFlags(yargs);
  for (const key of LINK_ROLE_KEYS[role]) builder = builder.option(key, { type: 'string', describe: LINK_OPTION_SPECS[key].describe }) as Argv<T>;
  return builder;
}

/**
 * Merges the config file (if any) under the flags and splits the settings: link keys go to
 * resolveLinkOptions(role) (which refuses the other side's), the rest to resolveServerOptions.
 */
export function linkCommandOptionsFromArgv(argv: Record<string, unknown>, role: 'hub'): { options: ServerOptions; link: HubLinkOptions };
export function linkCommandOptionsFromArgv(argv: Record<string, unknown>, role: 'leaf'): { options: ServerOptions; link: LeafLinkOptions };
export function linkCommandOptionsFromArgv(argv: Record<string, unknown>, role: LinkRole): { options: ServerOptions; link: HubLinkOptions | LeafLinkOptions } {
  const raw = rawSettings(argv, role);
  // Issue 6: a leaf's monitoring binds to localhost unless a host is given (http_host, http: "host:port").
  const defaults = role === 'leaf' ? { http_host: LEAF_HTTP_HOST_DEFAULT } : {};
  return { options: resolveServerOptions(raw.server, defaults), link: resolveLinkOptions(role, raw.link) };
}

/** Config file under flags; with a role, the file's link keys and the role's link flags are split off. */
function rawSettings(argv: Record<string, unknown>, role: LinkRole | undefined): { server: Record<string, unknown>; link: Record<string, unknown> } {
  const fromFile = typeof argv['config'] === 'string' ? readConfigFile(argv['config']) : {};
  const server: Record<string, unknown> = {};
  const link: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fromFile)) {
    if (role === 'leaf' && key === LEAF_CONFIG_PROBLEMS_KEY) continue; // leaf/cli.ts reads it
    if (role !== undefined && isLinkConfigKey(key)) link[key] = value;
    else server[key] = value;
  }
  for (const key of Object.keys(SERVER_OPTION_SPECS)) {
    if (argv[key] === undefined) continue;
    // `--tls` beside the file's tls block: the block already turns TLS on (only `--tls false` replaces it).
    if (key === 'tls' && isPlainObject(server['tls']) && argv[key] !== 'false') continue;
    server[key] = argv[key];
  }
  for (const key of role === undefined ? [] : LINK_ROLE_KEYS[role]) {
    if (argv[key] !== undefined) link[key] = argv[key];
  }
  return { server, link };
}

/** SIGTERM / SIGINT run `close` once, flush the log, and exit 0 (1 if closing failed). */
export function stopOnSignals(log: Logger, close: () => Promise<void>): void {
  let isStopping = false;
  const stop = (signal: string): void => {
    if (isStopping) return;
    isStopping = true;
    log.info({ signal }, 'signal received');
    close().then(
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
}

/**
 * SIGHUP reloads the config file, as nats-server's `--signal reload`: `reload` re-reads the file
 * (with the same flags on top) and hands the result to Server.reload, which applies it or
 * refuses it whole (core/server/reload.ts). A file that cannot be read or does not validate is
 * refused with one error line and the running configuration is kept: a reload never stops the
 * process. Without a config file there is nothing to re-read.
 */
export function reloadOnSignal(log: Logger, argv: Record<string, unknown>, reload: () => void): void {
  process.on('SIGHUP', () => {
    const config = argv['config'];
    if (typeof config !== 'string') {
      log.warn({ signal: 'SIGHUP' }, 'configuration reload ignored: the server was started without a config file (-c)');
      return;
    }
    log.info({ signal: 'SIGHUP', config }, 'reloading configuration');
    try {
      reload();
    } catch (err) {
      const key = err instanceof ConfigError ? err.key : undefined;
      log.error({ key, reason: (err as Error).message }, 'configuration reload refused: the config file is not valid; the running configuration is kept');
    }
  });
}

/**
 * The reload of `canopy leaf` and `canopy hub`: the server part goes to Server.reload; the link
 * settings cannot change at runtime, so a file that changes them is refused whole (naming them).
 */
export function reloadLinkCommand<Link extends HubLinkOptions | LeafLinkOptions>(options: {
  log: Logger;
  broker: Broker;
  running: Link;
  next: { options: ServerOptions; link: Link };
}): void {
  const refused = Object.keys(options.running).filter((key) => !isDeepStrictEqual(options.running[key as keyof Link], options.next.link[key as keyof Link]));
  if (refused.length > 0) {
    options.log.error({ refused: refused.map((key) => `link.${key}`) }, 'configuration reload refused: these options need a restart; the running configuration is kept');
    return;
  }
  options.broker.reload(options.next.options);
}

export const serverCommand: CommandModule = {
  command: 'server',
  describe: 'run a standalone broker (client port 4222, WebSocket 8080, monitoring 8222)',
  builder: (yargs) => addServerOptionFlags(yargs),
  handler: async (argv) => {
    const options = serverOptionsFromArgv(argv as Record<string, unknown>);
    const log = await createRootLogger({ level: options.logLevel });
    const broker = await startBroker({ options, log });
    stopOnSignals(log, () => broker.close());
    reloadOnSignal(log, argv as Record<string, unknown>, () => broker.reload(serverOptionsFromArgv(argv as Record<string, unknown>)));
  },
};
