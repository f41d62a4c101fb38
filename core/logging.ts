/**
 * The root pino logger, made at the edge (a CLI) and injected everywhere else
 * (STYLE.md §2.7). JSON lines by default; readable lines when stdout is a terminal.
 * Secrets are redacted; payloads are never logged anywhere.
 */
import { pino, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';
import type { Logger } from './util/logger.ts';
import type { LogLevel } from './server/options.ts';

export const REDACTED_PATHS = ['pass', 'auth_token', 'jwt', 'nkey', 'sig', '*.pass', '*.auth_token', '*.jwt', '*.sig'];

export function createRootLogger(options: {
  level: LogLevel;
  bindings?: Record<string, unknown>;
  /** Force readable output (default: when stdout is a TTY). */
  isPretty?: boolean;
  destination?: DestinationStream;
}): Logger {
  const isPretty = options.isPretty ?? process.stdout.isTTY === true;
  const destination =
    options.destination ??
    (isPretty
      ? pretty({ colorize: true, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' })
      : pino.destination({ dest: 1, sync: false }));
  return pino(
    {
      level: options.level,
      base: options.bindings ?? {},
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination,
  ) as unknown as Logger;
}
