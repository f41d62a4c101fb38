/**
 * hub/raft is a pure state machine (STYLE.md §2.3, house rule 1): no node:*
 * module, no package, no timers, no clocks, no Math.random, no I/O, no
 * logging library. Method: strip comments and string literals from every
 * hub/raft source file, then reject any import that is not hub/raft itself
 * or core/util's assert/prng, and any banned global identifier. The scanner
 * is tested on a planted violation first, so this test can fail.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { purityViolations, stripCommentsAndStrings } from '../../helpers/purity-scanner.ts';

const RAFT_DIR = 'hub/raft';
const ALLOWED_IMPORTS = [/^\.\/[a-z-]+\.ts$/, /^\.\.\/\.\.\/core\/util\/(assert|prng)\.ts$/];

function violations(fileName: string, source: string): string[] {
  return purityViolations(fileName, source, ALLOWED_IMPORTS);
}

test('the scanner catches planted violations (so the purity test can fail)', () => {
  const planted = [
    "import { readFileSync } from 'node:fs';",
    "import pino from 'pino';",
    "import { x } from '../../core/server/server.ts';",
    'const now = Date.now();',
    'setTimeout(() => {}, 1);',
    'const r = Math.random();',
    'const p = performance.now();',
    "const m = await import('./x.ts');",
  ].join('\n');
  const found = violations('planted.ts', planted);
  for (const expected of ["'node:fs'", "'pino'", 'core/server', 'Date', 'setTimeout', 'Math.random', 'performance', 'dynamic import']) {
    assert.ok(found.some((line) => line.includes(expected)), `scanner missed ${expected}: ${found.join('; ')}`);
  }
  const clean = "import { assert } from '../../core/util/assert.ts';\n// Date.now() in a comment is fine\nconst s = 'setTimeout';\nthis.#date = 1;";
  assert.deepEqual(violations('clean.ts', clean), []);
});

test('hub/raft imports nothing impure and uses no timers, clocks, randomness or I/O', () => {
  const files = readdirSync(RAFT_DIR).filter((name) => name.endsWith('.ts'));
  assert.ok(files.length >= 8, `expected the hub/raft sources, found ${files.join(', ')}`);
  const found: string[] = [];
  for (const name of files) found.push(...violations(name, readFileSync(join(RAFT_DIR, name), 'utf8')));
  // The two core/util modules hub/raft may load must be just as pure (and import nothing).
  for (const path of ['core/util/assert.ts', 'core/util/prng.ts']) {
    const source = readFileSync(path, 'utf8');
    found.push(...violations(path, source));
    if (stripCommentsAndStrings(source).specifiers.length > 0) found.push(`${path}: imports something`);
  }
  assert.deepEqual(found, []);
});
