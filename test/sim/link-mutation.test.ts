/**
 * The link simulator can fail (TigerBeetle: a test that cannot fail proves nothing). Each
 * deliberate bug of test/sim/link/link-mutants.ts — a mutated copy of core/link, or a host that
 * breaks its contract — must be caught by the checkers within the first few hundred seeds, and
 * the real code must pass the same seeds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LINK_BUGS, loadLinkMutant } from './link/link-mutants.ts';
import { LINK_SIM_DEFAULTS, runLinkSeed } from './link/link-sim.ts';

/** Every bug must be caught within this many seeds (they are caught within a few; see the diagnostics). */
const SEEDS_MAX = 200;

for (const bug of LINK_BUGS) {
  test(`deliberate bug ${bug.name} is caught (${bug.rule})`, async (t) => {
    const mutant = await loadLinkMutant(bug);
    try {
      let caughtAt: number | undefined;
      let failure = '';
      for (let seed = 1; seed <= SEEDS_MAX && caughtAt === undefined; seed++) {
        const result = runLinkSeed({ ...LINK_SIM_DEFAULTS, seed, impl: mutant.impl, bugs: mutant.bugs });
        if (!result.isOk) {
          caughtAt = seed;
          failure = (result.failure ?? '').split('\n')[0] ?? '';
        }
      }
      assert.ok(caughtAt !== undefined, `${bug.name} survived ${SEEDS_MAX} seeds: the checkers cannot see it`);
      t.diagnostic(`caught at seed ${caughtAt}: ${failure}`);
    } finally {
      mutant.dispose();
    }
  });
}
