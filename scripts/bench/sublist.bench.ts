/**
 * Sublist match throughput, cached and uncached. Not a test, not a CI gate
 * (STYLE.md §2.8 (6)). Run: `node --import tsx scripts/bench/sublist.bench.ts`.
 *
 * The trie mirrors nats-server's sublist_test.go benchmark setup: every
 * subject of 1 to 5 tokens over 8 words (37,448 literal subscriptions) plus
 * `cloud.>`, `cloud.continuum.component.>` and `cloud.*.*.router.*`.
 */
import { performance } from 'node:perf_hooks';
import { Sublist, type SublistEntry } from '../../core/subjects/sublist.ts';

const WORDS = ['apcera', 'continuum', 'component', 'router', 'api', 'imgr', 'jmgr', 'auth'];
const DEPTH_MAX = 5;
const ROUNDS = 3;
const ROUND_MS = 1000;

interface BenchEntry extends SublistEntry {
  readonly id: number;
}

function buildSubjects(prefix: string, depth: number, out: string[]): string[] {
  for (const word of WORDS) {
    const subject = prefix === '' ? word : `${prefix}.${word}`;
    out.push(subject);
    if (depth < DEPTH_MAX) buildSubjects(subject, depth + 1, out);
  }
  return out;
}

function buildSublist(subjects: readonly string[], cacheEntriesMax: number): Sublist<BenchEntry> {
  const sublist = new Sublist<BenchEntry>({ cacheEntriesMax });
  let id = 0;
  for (const subject of subjects) sublist.insert({ subject, queue: '', id: id++ });
  for (const subject of ['cloud.>', 'cloud.continuum.component.>', 'cloud.*.*.router.*']) {
    sublist.insert({ subject, queue: '', id: id++ });
  }
  sublist.insert({ subject: 'apcera.continuum.component.router', queue: 'workers', id: id++ });
  return sublist;
}

/** Matches `subjects` round-robin for about `durationMs`; returns matches per second. */
function measure(sublist: Sublist<BenchEntry>, subjects: readonly string[], durationMs: number): number {
  let matches = 0;
  let sink = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    for (let i = 0; i < subjects.length; i++) sink += sublist.match(subjects[i]!).plain.length;
    matches += subjects.length;
    elapsed = performance.now() - started;
  }
  if (sink < 0) console.log(sink); // keep the work observable
  return (matches / elapsed) * 1000;
}

function report(name: string, sublist: Sublist<BenchEntry>, subjects: readonly string[]): void {
  measure(sublist, subjects, 300); // warm-up
  let best = 0;
  for (let round = 0; round < ROUNDS; round++) best = Math.max(best, measure(sublist, subjects, ROUND_MS));
  console.log(`${name.padEnd(44, '_')} ${(best / 1e6).toFixed(2).padStart(7)} M matches/s`);
}

const subjects = buildSubjects('', 1, []);
const fourTokens = subjects.filter((subject) => subject.split('.').length === 4).slice(0, 512);
const mixed = [
  'apcera',
  'apcera.continuum',
  'apcera.continuum.component',
  'apcera.continuum.component.router',
  'cloud.continuum.component.router',
  'cloud.continuum.component.router.api',
  'apcera.continuum.component.router.ZZZZ',
];

console.log(`sublist: ${subjects.length + 4} subscriptions, node ${process.version}`);
report('cached, 7 subjects (one Map lookup)', buildSublist(subjects, 1024), mixed);
report('cached, 512 four-token subjects', buildSublist(subjects, 1024), fourTokens);
report('uncached, 7 subjects', buildSublist(subjects, 0), mixed);
report('uncached, 512 four-token subjects', buildSublist(subjects, 0), fourTokens);
report('cache thrash: 4096 subjects, 1024 cache', buildSublist(subjects, 1024), subjects.slice(0, 4096));
