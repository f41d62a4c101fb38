/**
 * The logger type every module takes by injection: the subset of pino that
 * canopy uses, so tests can pass a silent or recording logger.
 */
export interface Logger {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  fatal(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: string): boolean;
  /** Writes out buffered lines (pino's asynchronous destination); optional. */
  flush?(): void;
  /** Changes the level of this logger and every child (config reload of `log_level`); optional. */
  setLevel?(level: string): void;
}

/** A logger that drops everything, for tests and embedded use. */
export const silentLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
  child() {
    return silentLogger;
  },
  isLevelEnabled() {
    return false;
  },
};
