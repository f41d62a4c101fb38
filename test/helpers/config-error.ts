/** Assertions on ConfigErrors: the key they name and their message. */
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/server/options.ts';

/** Asserts that `run` throws a ConfigError whose key is `key` and whose message matches `message`. */
export function assertConfigError(run: () => unknown, key: string, message: RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, key, err.message);
    assert.match(err.message, message);
    return true;
  });
}
