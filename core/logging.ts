/**
 * The root pino logger, made at the edge (a CLI) and injected everywhere else
 * (STYLE.md §2.7). JSON lines by default; readable lines when stdout is a terminal.
 * Secrets are redacted; payloads are never logged anywhere.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
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
  // pino fixes a child's level when the child is made (connections, components): a reload of
  // log_level must reach them all, so the level lives here and every wrapper consults it.
  const threshold = { value: pino.levels.values[options.level] ?? Infinity };
  logger.level = 'trace';
  const stdoutFlush = (): void => stdout?.flushSync();
  return wrapPino(logger, threshold, (level) => {
    threshold.value = level === 'silent' ? Infinity : (pino.levels.values[level] ?? threshold.value);
  }, stdoutFlush);
}

/** Our Logger over a pino logger whose records pass only at or above `threshold` (shared by its children). */
function wrapPino(logger: PinoLogger, threshold: { value: number }, setLevel: (level: string) => void, flush: () => void): Logger {
  const at = (level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal') => {
    const value = pino.levels.values[level]!;
    return (obj: object, msg?: string): void => {
      if (value >= threshold.value) logger[level](obj, msg);
    };
  };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (bindings) => wrapPino(logger.child(bindings), threshold, setLevel, flush),
    isLevelEnabled: (level) => (pino.levels.values[level] ?? Infinity) >= threshold.value,
    // Before process.exit: write out what the asynchronous destination still holds.
    flush,
    setLevel,
  };
}
