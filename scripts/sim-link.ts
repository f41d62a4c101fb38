/**
 * The link simulator runner (core/link/README.md "Simulation").
 *
 *   npm run sim:link -- --seeds 20000             run seeds 1..20000 (progress + summary)
 *   npm run sim:link -- --seeds 500 --from 9000   run seeds 9000..9499
 *   npm run sim:link -- --seed 1234               replay one seed and print its transcript
 *   npm run sim:link -- --seeds 500 --bug receiver-acks-staged   run a deliberate bug (the checkers
 *                                                 must fail); `--bug list` lists them (test/sim/link/link-mutants.ts)
 *
 * A failing seed prints `SEED=<n>`; the exit status is 1 if any seed failed.
 */
import { findLinkBug, LINK_BUGS, loadLinkMutant } from '../test/sim/link/link-mutants.ts';
import { LINK_SIM_DEFAULTS, runLinkSeed, type LinkSimResult } from '../test/sim/link/link-sim.ts';
import { runSimCli } from './sim-runner.ts';

await runSimCli({
  script: 'sim:link',
  knob: { flag: '--chaos-ms', defaultValue: LINK_SIM_DEFAULTS.chaosMs },
  bugs: LINK_BUGS,
  load: async (bug) =>
    bug === undefined ? { impl: LINK_SIM_DEFAULTS.impl, bugs: LINK_SIM_DEFAULTS.bugs, dispose() {} } : await loadLinkMutant(findLinkBug(bug)),
  runSeed: (mutant, { seed, isTranscriptOn, knob }) =>
    runLinkSeed({ ...LINK_SIM_DEFAULTS, seed, isTranscriptOn, chaosMs: knob, impl: mutant.impl, bugs: mutant.bugs }),
  describeOk: (result) => `converged ${result.convergeMs ?? '?'} ms after healing, checks=${result.checks}`,
  accumulate: () => {
    let msgs = 0;
    let convergeMax = 0;
    return {
      add(result: LinkSimResult) {
        msgs += result.stats.msgsSent;
        convergeMax = Math.max(convergeMax, result.convergeMs ?? 0);
      },
      text: () => `${msgs} messages sent, slowest convergence ${convergeMax} ms (virtual)`,
    };
  },
});
