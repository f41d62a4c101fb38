/**
 * RaftNode: the public, synchronous face of the Raft core (etcd's RawNode).
 * The host drives it with one loop (STYLE.md house rule 1, README.md):
 * tick() on a timer, step() for each inbound message, then while hasReady():
 * take ready(), persist, send, apply, advance(ready).
 */
import { assert } from '../../core/util/assert.ts';
import type { Prng } from '../../core/util/prng.ts';
import type { RaftConfig } from './config.ts';
import { raftConfigProblem } from './config.ts';
import type { RaftLogger } from './logger.ts';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Role, SoftState } from './messages.ts';
import type { ProgressState } from './progress.ts';
import type { ProposeResult } from './raft.ts';
import { Raft } from './raft.ts';
import type { Ready } from './ready.ts';
import type { LogStorage } from './storage.ts';

export type RaftNodeOptions = {
  readonly config: RaftConfig;
  /** Read-only to the node; the host writes it as each Ready instructs. */
  readonly storage: LogStorage;
  /** Seeded randomness for election timeouts (never Math.random). */
  readonly prng: Prng;
  readonly logger: RaftLogger;
};

export type FollowerStatus = {
  readonly id: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
};

export type RaftStatus = {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly lead: NodeId;
  readonly role: Role;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  /** Index of the entry (or snapshot) that established `confState`: the change is committed once commit ≥ confIndex. */
  readonly confIndex: number;
  readonly leadTransferee: NodeId;
  /** Leader only: what it knows of each member. */
  readonly progress: readonly FollowerStatus[];
};

function hardStateEquals(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

const EMPTY: readonly never[] = Object.freeze([]);

export class RaftNode {
  readonly #raft: Raft;
  #persistedHardState: HardState;
  #reportedSoftState: SoftState;
  #outstanding: Ready | undefined = undefined;

  constructor(options: RaftNodeOptions) {
    const problem = raftConfigProblem(options.config);
    if (problem !== undefined) throw new RangeError(`raft config: ${problem}`);
    this.#raft = new Raft(options);
    this.#persistedHardState = options.storage.initialState().hardState;
    this.#reportedSoftState = this.#softState();
  }

  get id(): NodeId {
    return this.#raft.id;
  }

  /** This node's current role (cheaper than status()). */
  get role(): Role {
    return this.#raft.role;
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    this.#raft.tick();
  }

  /** Feeds a message from a peer. Messages addressed to another id are dropped. */
  step(message: Message): void {
    this.#raft.step(message);
  }

  /** Proposes application data; only a leader accepts. The entry is committed once it appears in committedEntries. */
  propose(data: Uint8Array): ProposeResult {
    return this.#raft.propose(data);
  }

  /**
   * Proposes several entries at once (etcd's MsgProp with many entries): they get
   * consecutive indexes from the returned `index`, and each follower receives them in
   * as few append messages as the byte limit allows, where one propose() per entry
   * would spend one in-flight slot per entry.
   */
  proposeBatch(datas: readonly Uint8Array[]): ProposeResult {
    return this.#raft.proposeBatch(datas);
  }

  /** Proposes one membership change (single-server; one at a time). */
  proposeConfChange(change: ConfChange): ProposeResult {
    return this.#raft.proposeConfChange(change);
  }

  /** Starts an election now, with pre-vote if configured (etcd `Campaign`). */
  campaign(): void {
    this.#raft.campaign(this.#raft.config.preVote ? 'pre-election' : 'election');
  }

  /** Leader only: hands leadership to voter `target` (thesis §3.10). Proposals are refused until it completes or times out. */
  transferLeadership(target: NodeId): ProposeResult {
    return this.#raft.transferLeadership(target);
  }

  /**
   * Requests a linearizable read (thesis §6.4). A ReadState with the same
   * `requestId` appears in a later Ready once confirmed; serve the read when
   * the applied index reaches it. Returns false if dropped (no known leader);
   * a request may also be lost silently with messages or a leader change, so
   * the host retries on a timeout.
   */
  readIndex(requestId: number): boolean {
    return this.#raft.readIndex(requestId);
  }

  hasReady(): boolean {
    if (this.#outstanding !== undefined) return false;
    const raft = this.#raft;
    if (raft.msgs.length > 0 || raft.readStates.length > 0) return true;
    if (raft.log.unstable.entries.length > 0 || raft.log.unstable.snapshot !== undefined) return true;
    if (!hardStateEquals(this.#hardState(), this.#persistedHardState)) return true;
    if (!this.#softStateEquals(this.#softState())) return true;
    return raft.log.committed > raft.log.applied && raft.log.nextCommittedEntries(1).length > 0;
  }

  /** Collects the work for the host. Call advance() with the same object when done. */
  ready(): Ready {
    assert(this.#outstanding === undefined, 'raft node: ready() called before advance() of the previous Ready');
    const raft = this.#raft;
    const hardState = this.#hardState();
    const isHardStateChanged = !hardStateEquals(hardState, this.#persistedHardState);
    const softState = this.#softState();
    const snapshot = raft.log.unstable.snapshot;
    const entries = raft.log.unstable.entries.slice();
    const committedEntries = raft.log.nextCommittedEntries(raft.config.applyBytesMax);
    const isVoteChanged = hardState.term !== this.#persistedHardState.term || hardState.vote !== this.#persistedHardState.vote;
    const ready: Ready = {
      ...(this.#softStateEquals(softState) ? {} : { softState }),
      ...(isHardStateChanged ? { hardState } : {}),
      ...(snapshot === undefined ? {} : { snapshot }),
      entries: entries.length === 0 ? EMPTY : Object.freeze(entries),
      messages: raft.msgs.length === 0 ? EMPTY : Object.freeze(raft.msgs),
      committedEntries: committedEntries.length === 0 ? EMPTY : Object.freeze(committedEntries.slice()),
      readStates: raft.readStates.length === 0 ? EMPTY : Object.freeze(raft.readStates),
      mustSync: isVoteChanged || entries.length > 0 || snapshot !== undefined,
    };
    raft.msgs = [];
    raft.readStates = [];
    if (ready.softState !== undefined) this.#reportedSoftState = softState;
    this.#outstanding = Object.freeze(ready);
    return this.#outstanding;
  }

  /** The host has persisted, sent and applied `ready`. */
  advance(ready: Ready): void {
    assert(ready === this.#outstanding, 'raft node: advance() with a Ready that is not the outstanding one');
    const log = this.#raft.log;
    if (ready.hardState !== undefined) this.#persistedHardState = ready.hardState;
    if (ready.snapshot !== undefined) {
      log.unstable.stableSnapshotTo(ready.snapshot.metadata.index);
      log.applied = Math.max(log.applied, ready.snapshot.metadata.index);
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) log.unstable.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) {
      assert(lastApplied.index > log.applied, 'raft node: applied going backwards');
      log.applied = lastApplied.index;
    }
    this.#outstanding = undefined;
    this.#raft.onPersisted();
  }

  status(): RaftStatus {
    const raft = this.#raft;
    const progress: FollowerStatus[] = [];
    for (const [id, entry] of raft.progress) {
      progress.push({ id, match: entry.match, next: entry.next, state: entry.state, isLearner: entry.isLearner });
    }
    progress.sort((a, b) => a.id - b.id);
    return {
      id: raft.id,
      term: raft.term,
      vote: raft.vote,
      lead: raft.lead,
      role: raft.role,
      commit: raft.log.committed,
      applied: raft.log.applied,
      firstIndex: raft.log.firstIndex(),
      lastIndex: raft.log.lastIndex(),
      confState: raft.confState,
      confIndex: raft.confIndex(),
      leadTransferee: raft.leadTransferee,
      progress,
    };
  }

  /**
   * Diagnostics: entries [lo, hi) of the in-memory log (durable and unstable),
   * or undefined if compacted. For checkers and debugging, not the data path.
   */
  inspectEntries(lo: number, hi: number): readonly Entry[] | undefined {
    return this.#raft.log.slice(lo, hi, Number.MAX_SAFE_INTEGER);
  }

  /** Diagnostics: the term at `index`, or undefined if compacted or absent. */
  inspectTerm(index: number): number | undefined {
    return this.#raft.log.term(index);
  }

  #hardState(): HardState {
    return { term: this.#raft.term, vote: this.#raft.vote, commit: this.#raft.log.committed };
  }

  #softState(): SoftState {
    return { lead: this.#raft.lead, role: this.#raft.role };
  }

  #softStateEquals(state: SoftState): boolean {
    return state.lead === this.#reportedSoftState.lead && state.role === this.#reportedSoftState.role;
  }
}
