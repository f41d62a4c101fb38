/**
 * The root pino logger, made at the edge (a CLI) and injected everywhere else
 * (STYLE.md §2.7). JSON lines by default; readable lines when stdout is a terminal.
 * Secrets are redacted; payloads are never logged anywhere.
 */
import { pino, type DestinationStream } from 'pino';
import type { Logger } from './util/logger.ts';
import type { LogLevel } from './server/options.ts';

export const REDACTED_PATHS = ['pass', 'auth_token', 'jwt', 'nkey', 'sig', '*.pass', '*.auth_token', '*.jwt', '*.sig'];

export async function createRootLogger(options: {
  level: LogLevel;
  bindings?: Record<string, unknown>;
  /** Force readable output (default: when stdout is a TTY). */
  isPretty?: boolean;
  destination?: DestinationStream;
}): Promise<Logger> {
  const isPretty = options.isPretty ?? process.stdout.isTTY === true;
  let destination = options.destination;
  if (destination === undefined && isPretty) {
    // Loaded only for a terminal: a gateway logging JSON does not pay its memory.
    const { default: pretty } = await import('pino-pretty');
    destination = pretty({ colorize: true, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' });
  }
  // Asynchronous stdout: a slow SD card or a stalled journald must not block the event loop.
  const stdout = destination === undefined ? pino.destination({ dest: 1, sync: false }) : undefined;
  const logger = pino(
    {
      level: options.level,
      base: options.bindings ?? {},
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination ?? stdout,
  );
  return {
    trace: (obj, msg) => logger.trace(obj, msg),
    debug: (obj, msg) => logger.debug(obj, msg),
    info: (obj, msg) => logger.info(obj, msg),
    warn: (obj, msg) => logger.warn(obj, msg),
    error: (obj, msg) => logger.error(obj, msg),
    fatal: (obj, msg) => logger.fatal(obj, msg),
    child: (bindings) => logger.child(bindings) as unknown as Logger,
    isLevelEnabled: (level) => logger.isLevelEnabled(level),
    // Before process.exit: write out what the asynchronous destination still holds.
    flush: () => stdout?.flushSync(),
  };
}
