/** The error every bad flag, config value or TLS file becomes (its own file so that tls-material.ts and options.ts need not import each other). */

/** A bad flag or config value: one line naming the key and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ERR_CONFIG';
  readonly key: string;
  constructor(key: string, message: string) {
    super(`invalid value for "${key}": ${message}`);
    this.key = key;
  }
}
