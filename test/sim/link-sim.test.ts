/**
 * The link simulator over a fixed seed set (core/link/README.md "Simulation"). Each seed runs
 * a leaf↔hub sync workload under a random subset of faults (resets, half-open connections,
 * partitions, crashes with lost disk writes, slow disks, auth refusals, limits, purges, deletes,
 * re-created streams, window changes) with the safety checkers on every step, then heals and
 * requires every copy to equal its sender's stream. A failure names the seed:
 * `npm run sim:link -- --seed <n>` replays it with a transcript.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LINK_SIM_DEFAULTS, runLinkSeed } from './link/link-sim.ts';

/** `npm test` runs these seeds; `npm run sim:link -- --seeds 20000` is the long run. */
const FIXED_SEED_FIRST = 1;
const FIXED_SEED_COUNT = 1000;

test(`link simulator: ${FIXED_SEED_COUNT} fixed seeds keep every safety invariant and converge after healing`, (t) => {
  const failures: string[] = [];
  const totals = { events: 0, msgsSent: 0, gaps: 0, ups: 0, crashes: 0, writesLost: 0, heartbeatTimeouts: 0, incarnationAlerts: 0, resets: 0, partitions: 0, authRefusals: 0, windowChanges: 0 };
  const started = performance.now();
  for (let seed = FIXED_SEED_FIRST; seed < FIXED_SEED_FIRST + FIXED_SEED_COUNT; seed++) {
    const result = runLinkSeed({ ...LINK_SIM_DEFAULTS, seed });
    for (const name of Object.keys(totals) as (keyof typeof totals)[]) totals[name] += result.stats[name];
    if (!result.isOk) failures.push(`SEED=${seed} ${(result.failure ?? '').split('\n')[0] ?? ''} (npm run sim:link -- --seed ${seed})`);
  }
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(`${FIXED_SEED_COUNT} seeds in ${seconds.toFixed(1)} s: ${JSON.stringify(totals)}`);
  assert.deepEqual(failures, []);
  // The faults must actually happen, or the seeds prove little.
  const n = FIXED_SEED_COUNT;
  assert.ok(totals.ups > 3 * n, `too few connections: ${totals.ups}`);
  assert.ok(totals.crashes > n, `too few crashes: ${totals.crashes}`);
  assert.ok(totals.writesLost > n / 5, `too few lost staged writes: ${totals.writesLost}`);
  assert.ok(totals.gaps > n, `too few gaps: ${totals.gaps}`);
  assert.ok(totals.heartbeatTimeouts > n, `too few half-open connections found by heartbeats: ${totals.heartbeatTimeouts}`);
  assert.ok(totals.incarnationAlerts > n, `too few incarnation changes: ${totals.incarnationAlerts}`);
  assert.ok(totals.authRefusals > n / 5, `too few auth refusals: ${totals.authRefusals}`);
});

test('link simulator: the same seed gives a byte-identical transcript', () => {
  for (const seed of [7, 236, 1234]) {
    const first = runLinkSeed({ ...LINK_SIM_DEFAULTS, seed, isTranscriptOn: true });
    const second = runLinkSeed({ ...LINK_SIM_DEFAULTS, seed, isTranscriptOn: true });
    assert.ok(first.transcript.length > 100, `seed ${seed}: transcript too short`);
    assert.equal(first.transcript.join('\n'), second.transcript.join('\n'), `seed ${seed} is not deterministic`);
  }
});

test('link simulator: different seeds give different runs', () => {
  const a = runLinkSeed({ ...LINK_SIM_DEFAULTS, seed: 11, isTranscriptOn: true });
  const b = runLinkSeed({ ...LINK_SIM_DEFAULTS, seed: 12, isTranscriptOn: true });
  assert.notEqual(a.transcript.join('\n'), b.transcript.join('\n'));
});
