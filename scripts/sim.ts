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
import type { LoadedMutant } from '../test/sim/mutants.ts';
import { BUGS, findBug, loadMutant } from '../test/sim/mutants.ts';
import { runSeed, SIM_RUN_DEFAULTS } from '../test/sim/raft-sim.ts';
import type { SimRunOptions } from '../test/sim/raft-sim.ts';

type Args = { seeds: number; from: number; seed: number | undefined; isVerbose: boolean; bug: string | undefined; chaosSteps: number };

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seeds: 100, from: 1, seed: undefined, isVerbose: false, bug: undefined, chaosSteps: SIM_RUN_DEFAULTS.chaosSteps };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] ?? '').split('=', 2) as [string, string | undefined];
    const value = (): string => {
      const next = inline ?? argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const integer = (): number => {
      const text = value();
      const number = Number(text);
      if (!Number.isSafeInteger(number) || number < 0) throw new Error(`${flag} must be a non-negative integer, got ${text}`);
      return number;
    };
    if (flag === '--seeds') args.seeds = integer();
    else if (flag === '--from') args.from = integer();
    else if (flag === '--seed') args.seed = integer();
    else if (flag === '--verbose') args.isVerbose = true;
    else if (flag === '--bug') args.bug = value();
    else if (flag === '--chaos-steps') args.chaosSteps = integer();
    else throw new Error(`unknown option ${flag} (see scripts/sim.ts)`);
  }
  return args;
}

function optionsFor(args: Args, seed: number, isTranscriptOn: boolean, mutant: LoadedMutant): SimRunOptions {
  return {
    ...SIM_RUN_DEFAULTS,
    seed,
    isTranscriptOn,
    isVerbose: args.isVerbose,
    chaosSteps: args.chaosSteps,
    bugs: mutant.bugs,
    raftNodeClass: mutant.raftNodeClass,
  };
}

function replay(args: Args, seed: number, mutant: LoadedMutant): number {
  const result = runSeed(optionsFor(args, seed, true, mutant));
  for (const line of result.transcript) process.stdout.write(`${line}\n`);
  if (result.isOk) {
    process.stdout.write(`seed ${seed}: ok (commitMax=${result.commitMax}, checks=${result.checks})\n`);
    return 0;
  }
  process.stdout.write(`SEED=${seed} FAILED: ${result.failure ?? ''}\n`);
  return 1;
}

function many(args: Args, mutant: LoadedMutant): number {
  const started = performance.now();
  let lastProgress = started;
  const failures: number[] = [];
  let events = 0;
  let checks = 0;
  for (let i = 0; i < args.seeds; i++) {
    const seed = args.from + i;
    const result = runSeed(optionsFor(args, seed, false, mutant));
    events += result.stats.events;
    checks += result.checks;
    if (!result.isOk) {
      failures.push(seed);
      process.stdout.write(`SEED=${seed} FAILED: ${(result.failure ?? '').split('\n')[0] ?? ''}\n  profile: ${result.profile}\n`);
    }
    const now = performance.now();
    if (now - lastProgress > 2000 || i === args.seeds - 1) {
      lastProgress = now;
      const rate = ((i + 1) / (now - started)) * 60_000;
      process.stdout.write(`progress ${i + 1}/${args.seeds} seeds, ${failures.length} failed, ${rate.toFixed(0)} seeds/min\n`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `summary: ${args.seeds} seeds (${args.from}..${args.from + args.seeds - 1}), ${failures.length} failed, ` +
      `${seconds.toFixed(1)} s, ${((args.seeds / seconds) * 60).toFixed(0)} seeds/min, ${events} events, ${checks} checks\n`,
  );
  if (failures.length > 0) process.stdout.write(`failed seeds: ${failures.join(' ')}\nreplay: npm run sim -- --seed ${failures[0]}\n`);
  return failures.length === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.bug === 'list') {
    for (const bug of BUGS) process.stdout.write(`${bug.name}: ${bug.rule}\n`);
    return 0;
  }
  const mutant =
    args.bug === undefined ? { raftNodeClass: RaftNode, bugs: SIM_RUN_DEFAULTS.bugs, dispose() {} } : await loadMutant(findBug(args.bug), RaftNode);
  try {
    if (args.bug !== undefined) process.stdout.write(`DELIBERATE BUG: ${args.bug}\n`);
    return args.seed === undefined ? many(args, mutant) : replay(args, args.seed, mutant);
  } finally {
    mutant.dispose();
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`sim: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
