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

const RAFT_DIR = 'hub/raft';
const ALLOWED_IMPORTS = [/^\.\/[a-z-]+\.ts$/, /^\.\.\/\.\.\/core\/util\/(assert|prng)\.ts$/];
const BANNED_IDENTIFIERS = [
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'queueMicrotask',
  'Date',
  'performance',
  'process',
  'require',
  'console',
  'fetch',
  'crypto',
  'globalThis',
  'Buffer',
  'WebSocket',
  'XMLHttpRequest',
];

/** Replaces comments and the contents of string/template literals with spaces, keeping import specifiers visible. */
function stripCommentsAndStrings(source: string): { code: string; specifiers: string[] } {
  let code = '';
  const specifiers: string[] = [];
  let i = 0;
  while (i < source.length) {
    const char = source[i]!;
    const next = source[i + 1];
    if (char === '/' && next === '/') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (char === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end === -1 ? source.length : end + 2;
      code += ' ';
    } else if (char === "'" || char === '"' || char === '`') {
      let j = i + 1;
      while (j < source.length && source[j] !== char) j += source[j] === '\\' ? 2 : 1;
      const literal = source.slice(i + 1, j);
      if (/(?:from|import)\s*$/.test(code)) specifiers.push(literal);
      code += "''";
      i = j + 1;
    } else {
      code += char;
      i++;
    }
  }
  return { code, specifiers };
}

function violations(fileName: string, source: string): string[] {
  const found: string[] = [];
  const { code, specifiers } = stripCommentsAndStrings(source);
  for (const specifier of specifiers) {
    if (!ALLOWED_IMPORTS.some((pattern) => pattern.test(specifier))) found.push(`${fileName}: forbidden import '${specifier}'`);
  }
  if (/\bimport\s*\(/.test(code)) found.push(`${fileName}: dynamic import()`);
  if (/\bMath\s*\.\s*random\b/.test(code)) found.push(`${fileName}: Math.random`);
  for (const identifier of BANNED_IDENTIFIERS) {
    if (new RegExp(`(?<![.\\w$#])${identifier}\\b`).test(code)) found.push(`${fileName}: banned identifier ${identifier}`);
  }
  return found;
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
