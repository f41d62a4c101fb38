/**
 * Safety checkers, run after every simulator step (STYLE.md §2.8 (3),
 * RELIABILITY.md §2.3 KRaft invariants):
 *
 * - election safety: at most one leader per term;
 * - log matching: two logs holding an entry with the same (index, term) hold
 *   identical prefixes up to it (checked with chain hashes as entries are
 *   persisted);
 * - leader completeness: a new leader holds every entry committed so far;
 * - committed entries never change: every node that reports commit ≥ i has
 *   the same term at i as the first node that committed it;
 * - state-machine safety: every node applies the same entry at each index
 *   (chain hashes of the applied sequence agree);
 * - monotonic commit index per node lifetime;
 * - ReadIndex linearizability: a read point is ≥ every commit index any node
 *   had reported when the read was issued;
 * - committed entries are protected: no node lacking the latest committed
 *   entry could win an election by log comparison (see onElectability).
 *
 * A violation throws {@link SafetyViolation}; the runner prints `SEED=…`.
 */
import type { NodeId } from '../../../hub/raft/index.ts';

export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
}

function fail(message: string): never {
  throw new SafetyViolation(message);
}

export type LeaderView = {
  readonly id: NodeId;
  readonly term: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  termAt(index: number): number | undefined;
};

/** What the electability check needs to know about one node's log. */
export type ElectabilityView = {
  readonly id: NodeId;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Voters of its latest configuration (whose votes it would count). */
  readonly voters: readonly NodeId[];
  readonly hasConfiguration: boolean;
  /** Whether its log holds the entry (index, term), a snapshot covering it counting as holding. */
  holds(index: number, term: number): boolean;
};

export class SafetyChecker {
  readonly #leaders = new Map<number, NodeId>();
  /** committedTerms[i] = term of the committed entry at index i (index 0 unused). */
  readonly #committedTerms: number[] = [0];
  /**
   * commitTerms[i] = the term of the first node seen with commit ≥ i: the
   * leader that committed it, or an upper bound (a follower's term is never
   * below that of the leader that told it), which only weakens the check.
   */
  readonly #commitTerms: number[] = [0];
  readonly #appliedHashes: number[] = [0];
  readonly #logMatch = new Map<number, number>();
  #checks = 0;

  /** Highest index any node has reported committed. */
  get commitMax(): number {
    return this.#committedTerms.length - 1;
  }

  get checkCount(): number {
    return this.#checks;
  }

  leaderOf(term: number): NodeId | undefined {
    return this.#leaders.get(term);
  }

  /** Election safety + leader completeness. Returns true if this is the first sighting of this leader. */
  onLeader(view: LeaderView): boolean {
    this.#checks += 1;
    const known = this.#leaders.get(view.term);
    if (known !== undefined) {
      if (known !== view.id) fail(`election safety: term ${view.term} has leaders ${known} and ${view.id}`);
      return false;
    }
    this.#leaders.set(view.term, view.id);
    // Paper §5.4 Leader Completeness: entries committed in terms BEFORE this
    // leader's term must be in its log. (A leader of an older term may still be
    // elected late, after a newer term committed more: that is allowed.)
    for (let index = Math.max(1, view.firstIndex); index <= this.commitMax; index++) {
      if ((this.#commitTerms[index] ?? 0) >= view.term) continue;
      if (index > view.lastIndex) {
        fail(`leader completeness: leader ${view.id} term ${view.term} ends at ${view.lastIndex}, missing ${index} committed in term ${this.#commitTerms[index]}`);
      }
      const term = view.termAt(index);
      if (term !== this.#committedTerms[index]) {
        fail(`leader completeness: leader ${view.id} term ${view.term} has term ${term} at ${index}, committed term ${this.#committedTerms[index]}`);
      }
    }
    return true;
  }

  /** A node's commit index moved from `from` to `to`; `termAt` reads its log. */
  onCommit(options: { id: NodeId; nodeTerm: number; from: number; to: number; termAt: (index: number) => number | undefined }): void {
    this.#checks += 1;
    const { id, from, to } = options;
    if (to < from) fail(`monotonic commit: node ${id} commit went ${from} → ${to}`);
    for (let index = from + 1; index <= to; index++) {
      const term = options.termAt(index);
      if (term === undefined) continue; // inside a snapshot just installed; covered by the applied hash
      const known = this.#committedTerms[index];
      if (known === undefined) {
        if (index !== this.#committedTerms.length) {
          fail(`commit: node ${id} committed ${index} but nothing is known committed at ${this.#committedTerms.length}`);
        }
        this.#committedTerms.push(term);
        this.#commitTerms.push(options.nodeTerm);
      } else if (known !== term) {
        fail(`committed entry changed: node ${id} has term ${term} at committed index ${index}, first committed with term ${known}`);
      }
    }
  }

  /** A commit index learned through a snapshot: everything up to it is committed, terms unknown here. */
  onSnapshotCommit(options: { id: NodeId; index: number; term: number }): void {
    this.#checks += 1;
    const known = this.#committedTerms[options.index];
    if (known !== undefined && known !== options.term) {
      fail(`snapshot: node ${options.id} installed (${options.index}, ${options.term}) but committed term is ${known}`);
    }
    if (options.index >= this.#committedTerms.length) {
      fail(`snapshot: node ${options.id} installed index ${options.index} beyond any known commit ${this.commitMax}`);
    }
  }

  /** A node applied the entry at `index`; `hash` chains everything applied up to it. */
  onApply(options: { id: NodeId; index: number; hash: number }): void {
    this.#checks += 1;
    const known = this.#appliedHashes[options.index];
    if (known === undefined) {
      if (options.index !== this.#appliedHashes.length) {
        fail(`state machine: node ${options.id} applied ${options.index} but the first unapplied index is ${this.#appliedHashes.length}`);
      }
      this.#appliedHashes.push(options.hash);
    } else if (known !== options.hash) {
      fail(`state machine safety: node ${options.id} applied a different entry sequence at ${options.index}`);
    }
  }

  /** A node restored its state machine from a snapshot at `index` with chain hash `hash`. */
  onRestore(options: { id: NodeId; index: number; hash: number }): void {
    this.#checks += 1;
    if (options.index === 0) return;
    const known = this.#appliedHashes[options.index];
    if (known === undefined) fail(`snapshot: node ${options.id} restored index ${options.index} that nobody applied`);
    if (known !== options.hash) fail(`state machine safety: node ${options.id} restored a different state at ${options.index}`);
  }

  /** An entry written to a node's log, with the chain hash of that log up to it. */
  onLogEntry(options: { id: NodeId; index: number; term: number; hash: number }): void {
    this.#checks += 1;
    const key = options.index * 0x10_0000 + options.term;
    const known = this.#logMatch.get(key);
    if (known === undefined) this.#logMatch.set(key, options.hash);
    else if (known !== options.hash) {
      fail(`log matching: node ${options.id} holds (${options.index}, ${options.term}) with a different prefix`);
    }
  }

  /** A confirmed read point: it must cover everything committed before the read was issued. */
  onReadState(options: { id: NodeId; requestId: number; index: number; commitAtIssue: number }): void {
    this.#checks += 1;
    if (options.index < options.commitAtIssue) {
      fail(`linearizable read: node ${options.id} request ${options.requestId} got index ${options.index} < ${options.commitAtIssue} committed when issued`);
    }
  }

  /**
   * Committed entries are protected (a look-ahead form of leader
   * completeness): no node that lacks the latest committed entry may be able to
   * gather a quorum of votes by log comparison alone. In correct Raft every
   * holder of a committed entry rejects such a candidate (paper §5.4.3's
   * argument) and the holders form a quorum, so this never fires; a broken
   * commit rule trips it the moment it commits, long before some unlucky
   * schedule actually elects the node that would erase the entry.
   *
   * `candidates` are the nodes that could campaign now; `acceptors` those that
   * could vote (nodes that are down are left out of both, which only weakens
   * the check).
   */
  onElectability(options: { candidates: readonly ElectabilityView[]; acceptors: ReadonlyMap<NodeId, ElectabilityView> }): void {
    this.#checks += 1;
    const index = this.commitMax;
    const term = this.#committedTerms[index];
    if (index === 0 || term === undefined) return;
    for (const candidate of options.candidates) {
      if (candidate.holds(index, term)) continue;
      let votes = 0;
      for (const voter of candidate.voters) {
        const acceptor = voter === candidate.id ? candidate : options.acceptors.get(voter);
        if (acceptor === undefined || !acceptor.hasConfiguration) continue;
        const isUpToDate = candidate.lastTerm > acceptor.lastTerm || (candidate.lastTerm === acceptor.lastTerm && candidate.lastIndex >= acceptor.lastIndex);
        if (isUpToDate) votes += 1;
      }
      if (votes >= Math.floor(candidate.voters.length / 2) + 1) {
        fail(`committed entry unprotected: node ${candidate.id} lacks committed ${term}/${index} but ${votes} of ${candidate.voters.length} voters would elect it`);
      }
    }
  }

  appliedHashAt(index: number): number | undefined {
    return this.#appliedHashes[index];
  }
}
