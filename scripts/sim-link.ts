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
import type { LoadedLinkMutant } from '../test/sim/link/link-mutants.ts';
import { findLinkBug, LINK_BUGS, loadLinkMutant } from '../test/sim/link/link-mutants.ts';
import type { LinkSimOptions } from '../test/sim/link/link-sim.ts';
import { LINK_SIM_DEFAULTS, runLinkSeed } from '../test/sim/link/link-sim.ts';

type Args = { seeds: number; from: number; seed: number | undefined; bug: string | undefined; chaosMs: number };

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seeds: 100, from: 1, seed: undefined, bug: undefined, chaosMs: LINK_SIM_DEFAULTS.chaosMs };
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
    else if (flag === '--bug') args.bug = value();
    else if (flag === '--chaos-ms') args.chaosMs = integer();
    else throw new Error(`unknown option ${flag} (see scripts/sim-link.ts)`);
  }
  return args;
}

function optionsFor(args: Args, seed: number, isTranscriptOn: boolean, mutant: LoadedLinkMutant): LinkSimOptions {
  return { ...LINK_SIM_DEFAULTS, seed, isTranscriptOn, chaosMs: args.chaosMs, impl: mutant.impl, bugs: mutant.bugs };
}

function replay(args: Args, seed: number, mutant: LoadedLinkMutant): number {
  const result = runLinkSeed(optionsFor(args, seed, true, mutant));
  for (const line of result.transcript) process.stdout.write(`${line}\n`);
  if (result.isOk) {
    process.stdout.write(`seed ${seed}: ok (converged ${result.convergeMs ?? '?'} ms after healing, checks=${result.checks})\n`);
    return 0;
  }
  process.stdout.write(`SEED=${seed} FAILED: ${result.failure ?? ''}\n`);
  return 1;
}

function many(args: Args, mutant: LoadedLinkMutant): number {
  const started = performance.now();
  let lastProgress = started;
  const failures: number[] = [];
  let events = 0;
  let checks = 0;
  let msgs = 0;
  let convergeMax = 0;
  const totals: Record<string, number> = {};
  for (let i = 0; i < args.seeds; i++) {
    const seed = args.from + i;
    const result = runLinkSeed(optionsFor(args, seed, false, mutant));
    events += result.stats.events;
    checks += result.checks;
    msgs += result.stats.msgsSent;
    convergeMax = Math.max(convergeMax, result.convergeMs ?? 0);
    for (const [name, value] of Object.entries(result.stats)) totals[name] = (totals[name] ?? 0) + value;
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
      `${seconds.toFixed(1)} s, ${((args.seeds / seconds) * 60).toFixed(0)} seeds/min, ${events} events, ${checks} checks, ` +
      `${msgs} messages sent, slowest convergence ${convergeMax} ms (virtual)\n`,
  );
  process.stdout.write(`totals: ${Object.entries(totals).map(([name, value]) => `${name}=${value}`).join(' ')}\n`);
  if (failures.length > 0) process.stdout.write(`failed seeds: ${failures.slice(0, 50).join(' ')}\nreplay: npm run sim:link -- --seed ${failures[0]}\n`);
  return failures.length === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.bug === 'list') {
    for (const bug of LINK_BUGS) process.stdout.write(`${bug.name}: ${bug.rule}\n`);
    return 0;
  }
  const mutant = args.bug === undefined ? { impl: LINK_SIM_DEFAULTS.impl, bugs: LINK_SIM_DEFAULTS.bugs, dispose() {} } : await loadLinkMutant(findLinkBug(args.bug));
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
  process.stderr.write(`sim:link: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
