/**
 * Every test must be able to fail (issue 5 "Done when"). Each deliberate bug
 * in test/sim/mutants.ts (a one-line mutation of a hub/raft rule, applied to
 * a temporary copy, or a host that breaks its side of the contract) must be
 * caught by the simulator within the fixed seed set that `sim.test.ts`
 * requires to pass with the real code. The Figure 8 transcript must also
 * diverge under the commit-rule mutant.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { RaftNode } from '../../../hub/raft/index.ts';
import { InteractionEnv } from '../../sim/interaction-env.ts';
import { BUGS, findBug, loadMutant } from '../../sim/mutants.ts';
import { runSeed, SIM_RUN_DEFAULTS } from '../../sim/raft-sim.ts';
import { FIXED_SEED_COUNT, FIXED_SEED_FIRST } from './sim-seeds.ts';

for (const bug of BUGS) {
  test(`simulator catches deliberate bug "${bug.name}" (${bug.rule})`, async (t) => {
    const mutant = await loadMutant(bug, RaftNode);
    try {
      let caught: { seed: number; failure: string } | undefined;
      for (let seed = FIXED_SEED_FIRST; seed < FIXED_SEED_FIRST + FIXED_SEED_COUNT && caught === undefined; seed++) {
        const result = runSeed({ ...SIM_RUN_DEFAULTS, seed, bugs: mutant.bugs, raftNodeClass: mutant.raftNodeClass });
        if (!result.isOk) caught = { seed, failure: (result.failure ?? '').split('\n')[0] ?? '' };
      }
      assert.ok(caught !== undefined, `bug ${bug.name} survived all ${FIXED_SEED_COUNT} fixed seeds`);
      t.diagnostic(`caught by SEED=${caught.seed}: ${caught.failure} (npm run sim -- --seed ${caught.seed} --bug ${bug.name})`);
    } finally {
      mutant.dispose();
    }
  });
}

test('the Figure 8 transcript diverges when old-term entries are committed by counting', async () => {
  const mutant = await loadMutant(findBug('commit-previous-term'), RaftNode);
  try {
    const script = readFileSync('test/hub/raft/testdata/commit-previous-term.txt', 'utf8');
    const commands = script.split('\n').filter((_line, index, lines) => lines[index + 1] === '----');
    const real = new InteractionEnv();
    const broken = new InteractionEnv({ raftNodeClass: mutant.raftNodeClass });
    const divergence = commands.find((command) => real.run(command) !== broken.run(command));
    assert.ok(divergence !== undefined, 'the mutant produced the same transcript');
  } finally {
    mutant.dispose();
  }
});
