/**
 * The link state machines are pure (core/link/README.md, STYLE.md house rule 1): no node:*
 * module, no package, no timers, no clocks, no Math.random, no I/O. Time and randomness come in
 * as arguments or through the injected Clock / Prng, so the simulator replays any run from its
 * seed. The codec (codec.ts, cbor-x) is not part of this set. Method: the shared scanner over
 * each state-machine file; it is shown to catch a planted violation first.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { purityViolations } from '../../helpers/purity-scanner.ts';

const LINK_DIR = 'core/link';
const STATE_MACHINE_FILES = ['frames.ts', 'limits.ts', 'credit.ts', 'sender.ts', 'receiver.ts', 'connection.ts', 'index.ts'];
/** This folder, core/util's assert and prng, and the Clock interface (type-only: its system clock is impure). */
const ALLOWED_IMPORTS = [/^\.\/[a-z-]+\.ts$/, /^\.\.\/util\/(assert|prng|clock)\.ts$/];

function violations(name: string, source: string): string[] {
  const found = purityViolations(name, source, ALLOWED_IMPORTS);
  for (const line of source.split('\n')) {
    if (line.includes("'../util/clock.ts'") && !/^import type /.test(line)) found.push(`${name}: clock.ts may only be imported as a type`);
  }
  return found;
}

test('the scanner catches planted violations (so this test can fail)', () => {
  const planted = ["import { WebSocket } from 'ws';", "import { SYSTEM_CLOCK } from '../util/clock.ts';", 'const t = Date.now();', 'setTimeout(() => {}, 1);'].join('\n');
  const found = violations('planted.ts', planted);
  for (const expected of ["'ws'", 'clock.ts may only', 'Date', 'setTimeout']) {
    assert.ok(found.some((line) => line.includes(expected)), `scanner missed ${expected}: ${found.join('; ')}`);
  }
  assert.deepEqual(violations('clean.ts', "import type { Clock } from '../util/clock.ts';\nimport { assert } from '../util/assert.ts';"), []);
});

test('core/link state machines import nothing impure and use no timers, clocks, randomness or I/O', () => {
  const found: string[] = [];
  for (const name of STATE_MACHINE_FILES) found.push(...violations(name, readFileSync(join(LINK_DIR, name), 'utf8')));
  assert.deepEqual(found, []);
});
