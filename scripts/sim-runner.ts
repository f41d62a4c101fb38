/**
 * What `npm run sim` (Raft) and `npm run sim:link` share: the flags (`--seeds`, `--from`,
 * `--seed`, `--bug`, plus one integer knob of the simulator), replaying one seed with its
 * transcript, running many with progress and a summary, and listing or loading deliberate bugs.
 * Exit status: 0 all seeds passed, 1 a seed failed, 2 a bad flag.
 */

/** One seed's outcome, as both simulators report it. */
export type SeedResult = {
  readonly isOk: boolean;
  readonly failure: string | undefined;
  readonly transcript: readonly string[];
  readonly profile: string;
  readonly checks: number;
  readonly stats: Readonly<Record<string, number>>;
};

export type SimRunnerSpec<R extends SeedResult, Run> = {
  /** The npm script, for messages (`sim`, `sim:link`). */
  readonly script: string;
  /** The simulator's own integer flag (e.g. `--chaos-steps`) and its default. */
  readonly knob: { readonly flag: string; readonly defaultValue: number };
  /** Extra boolean flags (e.g. `--verbose`), off by default. */
  readonly switches?: readonly string[];
  readonly bugs: readonly { readonly name: string; readonly rule: string }[];
  /** The implementation to run: the real one, or a deliberate bug's. */
  load(bug: string | undefined): Promise<Run & { dispose(): void }>;
  runSeed(run: Run, options: { seed: number; isTranscriptOn: boolean; knob: number; switches: ReadonlySet<string> }): R;
  /** The line after `seed N: ok` on a replay. */
  describeOk(result: R): string;
  /** Extra summary text over every result of a `--seeds` run. */
  accumulate?(): { add(result: R): void; text(): string };
};

type Args = { seeds: number; from: number; seed: number | undefined; bug: string | undefined; knob: number; switches: Set<string> };

function parseArgs(argv: readonly string[], spec: SimRunnerSpec<SeedResult, unknown>): Args {
  const args: Args = { seeds: 100, from: 1, seed: undefined, bug: undefined, knob: spec.knob.defaultValue, switches: new Set() };
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
    else if (flag === spec.knob.flag) args.knob = integer();
    else if (spec.switches?.includes(flag) === true) args.switches.add(flag);
    else throw new Error(`unknown option ${flag}`);
  }
  return args;
}

function replay<R extends SeedResult, Run>(spec: SimRunnerSpec<R, Run>, run: Run, args: Args, seed: number): number {
  const result = spec.runSeed(run, { seed, isTranscriptOn: true, knob: args.knob, switches: args.switches });
  for (const line of result.transcript) process.stdout.write(`${line}\n`);
  if (result.isOk) {
    process.stdout.write(`seed ${seed}: ok (${spec.describeOk(result)})\n`);
    return 0;
  }
  process.stdout.write(`SEED=${seed} FAILED: ${result.failure ?? ''}\n`);
  return 1;
}

function many<R extends SeedResult, Run>(spec: SimRunnerSpec<R, Run>, run: Run, args: Args): number {
  const started = performance.now();
  let lastProgress = started;
  const failures: number[] = [];
  let checks = 0;
  const totals: Record<string, number> = {};
  const extra = spec.accumulate?.();
  for (let i = 0; i < args.seeds; i++) {
    const seed = args.from + i;
    const result = spec.runSeed(run, { seed, isTranscriptOn: false, knob: args.knob, switches: args.switches });
    checks += result.checks;
    for (const [name, value] of Object.entries(result.stats)) totals[name] = (totals[name] ?? 0) + value;
    extra?.add(result);
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
      `${seconds.toFixed(1)} s, ${((args.seeds / seconds) * 60).toFixed(0)} seeds/min, ${totals['events'] ?? 0} events, ${checks} checks` +
      `${extra === undefined ? '' : `, ${extra.text()}`}\n`,
  );
  process.stdout.write(`totals: ${Object.entries(totals).map(([name, value]) => `${name}=${value}`).join(' ')}\n`);
  if (failures.length > 0) process.stdout.write(`failed seeds: ${failures.slice(0, 50).join(' ')}\nreplay: npm run ${spec.script} -- --seed ${failures[0]}\n`);
  return failures.length === 0 ? 0 : 1;
}

/** Parses process.argv, runs, and sets the exit status. */
export async function runSimCli<R extends SeedResult, Run>(spec: SimRunnerSpec<R, Run>): Promise<void> {
  try {
    const args = parseArgs(process.argv.slice(2), spec as SimRunnerSpec<SeedResult, unknown>);
    if (args.bug === 'list') {
      for (const bug of spec.bugs) process.stdout.write(`${bug.name}: ${bug.rule}\n`);
      process.exitCode = 0;
      return;
    }
    const run = await spec.load(args.bug);
    try {
      if (args.bug !== undefined) process.stdout.write(`DELIBERATE BUG: ${args.bug}\n`);
      process.exitCode = args.seed === undefined ? many(spec, run, args) : replay(spec, run, args, args.seed);
    } finally {
      run.dispose();
    }
  } catch (error) {
    process.stderr.write(`${spec.script}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  }
}
