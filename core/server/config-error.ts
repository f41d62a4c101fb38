/** The error every bad flag, config value or TLS file becomes (its own file so that modules options.ts imports, such as auth.ts and tls-material.ts, can throw it). */

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
