/**
 * The import rules of ARCHITECTURE.md and STYLE.md §2.3, checked by a tool rather than by
 * reviewers remembering them: each rule lists the folder, what its files may not import,
 * and a reason. A planted violation proves the scanner can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, normalize, dirname } from 'node:path';

type Rule = { readonly folder: string; readonly forbidden: readonly RegExp[]; readonly reason: string };

const RULES: readonly Rule[] = [
  { folder: 'core', forbidden: [/^(leaf|hub)\//], reason: 'core knows nothing of leaf or hub' },
  { folder: 'leaf', forbidden: [/^hub\//], reason: 'leaf and hub never import each other' },
  { folder: 'hub', forbidden: [/^leaf\//], reason: 'leaf and hub never import each other' },
  {
    folder: 'core/protocol',
    forbidden: [/^core\/(server|jetstream|store|monitor)\//, /^node:net$/, /^pino$/],
    reason: 'the parser knows nothing of sockets, storage or logging libraries',
  },
  { folder: 'core/subjects', forbidden: [/^core\/(server|jetstream|store|monitor)\//, /^node:/], reason: 'the sublist does no I/O' },
  { folder: 'core/util', forbidden: [/^core\/(?!util\/)/], reason: 'util imports nothing else in the repo' },
  {
    folder: 'core/jetstream',
    forbidden: [/^core\/store\//, /^lmdb$/, /^node:net$/],
    reason: 'JetStream depends on the store interface, not on LMDB or the store implementations',
  },
  { folder: 'core/link', forbidden: [/^ws$/, /^node:net$/], reason: 'the link wire format has no transport' },
];
/** Only the LMDB store may import lmdb. */
const LMDB_FOLDER = 'core/store/lmdb';

function sourceFiles(folder: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(folder, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return entries.filter((file) => file.endsWith('.ts')).map((file) => join(folder, file));
}

/** Import specifiers of a file, repo-relative for relative imports (`core/server/x.ts`), else as written. */
export function importsOf(file: string, text: string): string[] {
  const specifiers: string[] = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
    const specifier = match[1] ?? match[2] ?? '';
    specifiers.push(specifier.startsWith('.') ? normalize(join(dirname(file), specifier)) : specifier);
  }
  return specifiers;
}

function violations(rule: Rule, files: readonly { path: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const { path, text } of files) {
    for (const specifier of importsOf(path, text)) {
      if (rule.forbidden.some((pattern) => pattern.test(specifier))) found.push(`${path} imports ${specifier} (${rule.reason})`);
    }
  }
  return found;
}

test('every folder keeps its import rules', () => {
  const found: string[] = [];
  for (const rule of RULES) {
    const files = sourceFiles(rule.folder).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
    found.push(...violations(rule, files));
  }
  for (const folder of ['core', 'leaf', 'hub']) {
    for (const path of sourceFiles(folder)) {
      if (path.startsWith(LMDB_FOLDER)) continue;
      if (importsOf(path, readFileSync(path, 'utf8')).includes('lmdb')) found.push(`${path} imports lmdb (only ${LMDB_FOLDER} may)`);
    }
  }
  assert.deepEqual(found, []);
});

test('the scanner finds a planted violation (so the rules can fail)', () => {
  const planted = [
    { path: 'core/protocol/x.ts', text: "import { Server } from '../server/server.ts';\nimport net from 'node:net';\n" },
    { path: 'core/jetstream/y.ts', text: "const m = await import('../store/lmdb/env.ts');\n" },
  ];
  const protocolRule = RULES.find((rule) => rule.folder === 'core/protocol')!;
  const jetstreamRule = RULES.find((rule) => rule.folder === 'core/jetstream')!;
  assert.equal(violations(protocolRule, planted.slice(0, 1)).length, 2);
  assert.equal(violations(jetstreamRule, planted.slice(1)).length, 1);
});
