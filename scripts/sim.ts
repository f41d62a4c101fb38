/**
 * The Raft simulator runner (hub/raft/README.md "Simulation").
 *
 *   npm run sim -- --seeds 2000            run seeds 1..2000 (progress + summary)
 *   npm run sim -- --seeds 500 --from 9000 run seeds 9000..9499
 *   npm run sim -- --seed 1234             replay one seed and print its transcript
 *   npm run sim -- --seed 1234 --verbose   … including debug lines
 *   npm run sim -- --seeds 500 --bug commit-previous-term   run a deliberate bug (the checkers must fail);
 *                                          bugs are listed in test/sim/mutants.ts (`--bug list`)
 *
 * A failing seed prints `SEED=<n>`; the exit status is 1 if any seed failed.
 */
import { RaftNode } from '../hub/raft/index.ts';
import { BUGS, findBug, loadMutant } from '../test/sim/mutants.ts';
import { runSeed, SIM_RUN_DEFAULTS } from '../test/sim/raft-sim.ts';
import { runSimCli } from './sim-runner.ts';

await runSimCli({
  script: 'sim',
  knob: { flag: '--chaos-steps', defaultValue: SIM_RUN_DEFAULTS.chaosSteps },
  switches: ['--verbose'],
  bugs: BUGS,
  load: async (bug) =>
    bug === undefined ? { raftNodeClass: RaftNode, bugs: SIM_RUN_DEFAULTS.bugs, dispose() {} } : await loadMutant(findBug(bug), RaftNode),
  runSeed: (mutant, { seed, isTranscriptOn, knob, switches }) =>
    runSeed({
      ...SIM_RUN_DEFAULTS,
      seed,
      isTranscriptOn,
      isVerbose: switches.has('--verbose'),
      chaosSteps: knob,
      bugs: mutant.bugs,
      raftNodeClass: mutant.raftNodeClass,
    }),
  describeOk: (result) => `commitMax=${result.commitMax}, checks=${result.checks}`,
});
