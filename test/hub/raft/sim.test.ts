/**
 * The deterministic simulator over the fixed seed set (hub/raft/README.md
 * "Simulation"). Each seed runs a randomized fault schedule against a 3- or
 * 5-node cluster with the safety checkers after every event, then heals and
 * requires progress. A failure names the seed: `npm run sim -- --seed <n>`
 * replays it with a transcript.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSeed, SIM_RUN_DEFAULTS } from '../../sim/raft-sim.ts';
import { FIXED_SEED_COUNT, FIXED_SEED_FIRST } from './sim-seeds.ts';

test(`simulator: ${FIXED_SEED_COUNT} fixed seeds keep every safety invariant and recover after healing`, (t) => {
  const failures: string[] = [];
  let events = 0;
  let leaderChanges = 0;
  let wipes = 0;
  let crashes = 0;
  let snapshots = 0;
  const started = performance.now();
  for (let seed = FIXED_SEED_FIRST; seed < FIXED_SEED_FIRST + FIXED_SEED_COUNT; seed++) {
    const result = runSeed({ ...SIM_RUN_DEFAULTS, seed });
    events += result.stats.events;
    leaderChanges += result.stats.leaderChanges;
    wipes += result.stats.wipes + result.stats.rollbacks;
    crashes += result.stats.crashes;
    snapshots += result.stats.snapshotsSent;
    if (!result.isOk) failures.push(`SEED=${seed} ${(result.failure ?? '').split('\n')[0] ?? ''} (npm run sim -- --seed ${seed})`);
  }
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(`${FIXED_SEED_COUNT} seeds in ${seconds.toFixed(1)} s: ${events} events, ${leaderChanges} leader changes, ${crashes} crashes, ${wipes} wipes/rollbacks, ${snapshots} snapshots sent`);
  assert.deepEqual(failures, []);
  // The faults must actually happen, or the seeds prove little.
  assert.ok(leaderChanges > FIXED_SEED_COUNT, `too few leader changes: ${leaderChanges}`);
  assert.ok(wipes > FIXED_SEED_COUNT / 20, `too few wipes/rollbacks: ${wipes}`);
  assert.ok(snapshots > FIXED_SEED_COUNT / 20, `too few snapshots sent: ${snapshots}`);
});

test('simulator: the same seed gives a byte-identical transcript', () => {
  for (const seed of [7, 566, 1234]) {
    const first = runSeed({ ...SIM_RUN_DEFAULTS, seed, isTranscriptOn: true, isVerbose: true });
    const second = runSeed({ ...SIM_RUN_DEFAULTS, seed, isTranscriptOn: true, isVerbose: true });
    assert.ok(first.transcript.length > 100, `seed ${seed}: transcript too short`);
    assert.equal(first.transcript.join('\n'), second.transcript.join('\n'), `seed ${seed} is not deterministic`);
  }
});

test('simulator: different seeds give different runs', () => {
  const a = runSeed({ ...SIM_RUN_DEFAULTS, seed: 11, isTranscriptOn: true });
  const b = runSeed({ ...SIM_RUN_DEFAULTS, seed: 12, isTranscriptOn: true });
  assert.notEqual(a.transcript.join('\n'), b.transcript.join('\n'));
});
