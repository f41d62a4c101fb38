/** Small readers for config blocks given as JSON objects (auth.ts, permissions.ts); their errors name the key. */
import { ConfigError } from './config-error.ts';

export type Fields = Readonly<Record<string, unknown>>;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The value under one of several spellings of a key (nats-server accepts `user`/`username`,
 * `pub`/`publish`, …), with its full key for errors; two spellings at once are an error.
 */
export function pick(fields: Fields, path: string, names: readonly string[]): { key: string; value: unknown } | undefined {
  const present = names.filter((name) => fields[name] !== undefined);
  if (present.length > 1) throw new ConfigError(`${path}.${present[1]}`, `cannot be given together with "${present[0]}"`);
  const name = present[0];
  return name === undefined ? undefined : { key: `${path}.${name}`, value: fields[name] };
}

export function checkKnownKeys(fields: Fields, path: string, known: readonly string[]): void {
  for (const key of Object.keys(fields)) {
    if (!known.includes(key)) throw new ConfigError(`${path}.${key}`, `unknown key; known keys: ${known.join(', ')}`);
  }
}
