/**
 * Deliberate bugs, to prove the simulator and its checkers can fail
 * (issue 5 "Done when"; TigerBeetle: a test that cannot fail proves nothing).
 *
 * A core bug is a textual mutation of one hub/raft source line. `loadMutant`
 * copies hub/raft into a temporary directory, applies the mutation there
 * (never to the real sources), and imports the copy's RaftNode. Host bugs
 * break the host's side of the contract in the simulator instead.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RaftNodeClass } from './harness/sim-cluster.ts';
import type { SimBugs } from './raft-sim.ts';

type CoreMutation = {
  readonly kind: 'core';
  readonly name: string;
  /** The Raft rule the mutation breaks. */
  readonly rule: string;
  readonly file: string;
  readonly find: string;
  readonly replace: string;
};

type HostBug = {
  readonly kind: 'host';
  readonly name: string;
  readonly rule: string;
  readonly bugs: SimBugs;
};

export type Bug = CoreMutation | HostBug;

const NO_HOST_BUGS: SimBugs = { reuseIdAfterWipe: false, sendBeforePersist: false };

export const BUGS: readonly Bug[] = [
  {
    kind: 'core',
    name: 'commit-previous-term',
    rule: 'paper §5.4.2: only entries of the current term are committed by counting replicas (Figure 8)',
    file: 'raft.ts',
    find: '    if (this.log.term(index) !== this.term) return false;\n',
    replace: '',
  },
  {
    kind: 'core',
    name: 'vote-for-shorter-log',
    rule: 'paper §5.4.1: grant a vote only to a candidate whose log is at least as up-to-date',
    file: 'raft.ts',
    find: 'const isUpToDate = this.log.isUpToDate(m.index, m.logTerm);',
    replace: 'const isUpToDate = true;',
  },
  {
    kind: 'core',
    name: 'vote-twice-in-a-term',
    rule: 'paper §5.2: at most one vote per term',
    file: 'raft.ts',
    find: '      this.vote === m.from ||\n',
    replace: '      true ||\n',
  },
  {
    kind: 'core',
    name: 'read-index-before-first-commit',
    rule: 'thesis §6.4: a new leader serves ReadIndex only after committing an entry of its term',
    file: 'raft.ts',
    find: '    if (!this.#isCommittedInTerm()) {\n      // Our commit index may lag',
    replace: '    if (false) {\n      // Our commit index may lag',
  },
  {
    kind: 'host',
    name: 'send-before-persist',
    rule: 'thesis §3.8 / house rule 8: persist hard state and entries before sending what depends on them',
    bugs: { ...NO_HOST_BUGS, sendBeforePersist: true },
  },
  {
    kind: 'host',
    name: 'reuse-id-after-wipe',
    rule: 'README "Wiped and rolled-back nodes": a replica that lost its state never votes or acks under its old identity',
    bugs: { ...NO_HOST_BUGS, reuseIdAfterWipe: true },
  },
];

export function findBug(name: string): Bug {
  const bug = BUGS.find((candidate) => candidate.name === name);
  if (bug === undefined) throw new Error(`unknown bug ${name}; known: ${BUGS.map((candidate) => candidate.name).join(', ')}`);
  return bug;
}

export type LoadedMutant = { readonly raftNodeClass: RaftNodeClass; readonly bugs: SimBugs; dispose(): void };

/** Builds the RaftNode class and host bugs for `bug` (for a host bug: the real RaftNode). */
export async function loadMutant(bug: Bug, real: RaftNodeClass): Promise<LoadedMutant> {
  if (bug.kind === 'host') return { raftNodeClass: real, bugs: bug.bugs, dispose() {} };
  const sourceDir = resolve('hub/raft');
  const utilDir = resolve('core/util');
  const directory = mkdtempSync(join(tmpdir(), `canopy-mutant-${bug.name}-`));
  for (const name of readdirSync(sourceDir)) {
    if (!name.endsWith('.ts')) continue;
    let source = readFileSync(join(sourceDir, name), 'utf8').replaceAll("'../../core/util/", `'${utilDir}/`);
    if (name === bug.file) {
      const count = source.split(bug.find).length - 1;
      if (count !== 1) throw new Error(`mutation ${bug.name}: expected one match in ${name}, found ${count} (did the source change?)`);
      source = source.replace(bug.find, bug.replace);
    }
    writeFileSync(join(directory, name), source);
  }
  const module = (await import(pathToFileURL(join(directory, 'index.ts')).href)) as { RaftNode: RaftNodeClass };
  return {
    raftNodeClass: module.RaftNode,
    bugs: NO_HOST_BUGS,
    dispose() {
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
