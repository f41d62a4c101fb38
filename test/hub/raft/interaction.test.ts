/**
 * Transcript tests, after etcd's datadriven testdata/*.txt (STYLE.md §2.8 (4)):
 * every file in testdata/ is a script of InteractionEnv commands, each
 * followed by `----` and the exact output expected. One file per Raft rule;
 * the first comment lines of each file say which rule and why.
 *
 * `UPDATE_GOLDEN=1 npm test -- interaction` rewrites the expected outputs
 * from the current behaviour, for review in the diff.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InteractionEnv } from '../../sim/interaction-env.ts';

const TESTDATA_DIR = 'test/hub/raft/testdata';
const SEPARATOR = '----';

type Block = { readonly comments: string[]; readonly command: string; readonly expected: string; readonly line: number };

function parse(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      if (line.startsWith('#')) comments.push(line);
      else if (comments.length > 0) comments.push('');
      i++;
      continue;
    }
    const commandLine = i + 1;
    if (lines[i + 1] !== SEPARATOR) throw new Error(`line ${commandLine + 1}: expected ${SEPARATOR} after "${line}"`);
    const expected: string[] = [];
    i += 2;
    while (i < lines.length && lines[i] !== '') expected.push(lines[i++]!);
    while (comments[comments.length - 1] === '') comments.pop();
    blocks.push({ comments, command: line, expected: expected.join('\n'), line: commandLine });
    comments = [];
  }
  return blocks;
}

function render(blocks: readonly Block[], outputs: readonly string[]): string {
  const parts: string[] = [];
  blocks.forEach((block, index) => {
    const comment = block.comments.length > 0 ? `${block.comments.join('\n')}\n` : '';
    parts.push(`${comment}${block.command}\n${SEPARATOR}\n${outputs[index] ?? ''}\n`);
  });
  return parts.join('\n');
}

const isUpdating = process.env['UPDATE_GOLDEN'] === '1';
const files = readdirSync(TESTDATA_DIR)
  .filter((name) => name.endsWith('.txt'))
  .sort();

test('there is a transcript per rule', () => {
  assert.ok(files.length >= 12, `expected ≥ 12 transcripts, found ${files.length}`);
});

for (const name of files) {
  test(`transcript ${name}`, () => {
    const path = join(TESTDATA_DIR, name);
    const blocks = parse(readFileSync(path, 'utf8'));
    const env = new InteractionEnv();
    const outputs: string[] = [];
    for (const block of blocks) {
      let output: string;
      try {
        output = env.run(block.command);
      } catch (error) {
        output = `error: ${error instanceof Error ? error.message : String(error)}`;
      }
      outputs.push(output);
      if (!isUpdating) assert.equal(output, block.expected, `${name}:${block.line} "${block.command}"`);
    }
    if (isUpdating) writeFileSync(path, render(blocks, outputs));
  });
}
