/**
 * The Raft protocol as a deterministic state machine (paper §5, thesis §3–§6,
 * §9.6), in etcd's shape: every input is a tick, a peer message or a local
 * request; every output is appended to `msgs`, to the unstable log, or to
 * `readStates`, and leaves through RaftNode.ready(). Nothing here performs
 * I/O, reads a clock or draws randomness except from the injected Prng.
 *
 * This class is internal to hub/raft: RaftNode is the public face. Its fields
 * are mutable for RaftNode's sake, not for anyone else's.
 */
import { assert } from '../../core/util/assert.ts';
import type { Prng } from '../../core/util/prng.ts';
import { applyConfChange, confChangeRefusal, formatConfState, isMember, isVoter } from './conf-state.ts';
import type { RaftConfig } from './config.ts';
import { RAFT_PENDING_READS_MAX } from './config.ts';
import { RaftLog } from './log.ts';
import type { RaftLogger } from './logger.ts';
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfState,
  Entry,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  NodeId,
  ReadState,
  Snapshot,
  SnapshotMessage,
  VoteMessage,
  VoteResponseMessage,
} from './messages.ts';
import { NO_NODE, Role } from './messages.ts';
import { Progress } from './progress.ts';
import { committedIndex, hasQuorum, voteResult } from './quorum.ts';
import { ReadIndexQueue } from './read-index.ts';
import type { LogStorage } from './storage.ts';

/** Why a proposal was not appended. Absence of a reason means it was. */
export type ProposalRefusal =
  | 'not-leader'
  | 'leadership-transfer'
  | 'not-member'
  | 'conf-change-pending'
  | 'leader-not-ready'
  | 'invalid-conf-change'
  | 'would-lose-quorum';

export type ProposeResult =
  | { readonly isAccepted: true; readonly index: number; readonly term: number }
  | { readonly isAccepted: false; readonly refusal: ProposalRefusal; readonly lead: NodeId; readonly detail: string };

type CampaignKind = 'pre-election' | 'election' | 'transfer';

const EMPTY_DATA = new Uint8Array(0);

export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  readonly #prng: Prng;
  readonly #logger: RaftLogger;

  term = 0;
  vote: NodeId = NO_NODE;
  lead: NodeId = NO_NODE;
  role: Role = Role.Follower;

  /** The latest configuration in the log, committed or not (thesis §4.1). */
  confState: ConfState;
  /** (index, configuration) at the snapshot and after each change entry in the log, oldest first. */
  #confHistory: { index: number; confState: ConfState }[];

  /** Leader only: one entry per member, including this node. */
  readonly progress = new Map<NodeId, Progress>();
  /** Candidate only: votes received in this election. */
  readonly #votes = new Map<NodeId, boolean>();

  /** Outbox, drained by RaftNode.ready(); sent only after that Ready is persisted. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #leadTransferee: NodeId = NO_NODE;
  #pendingConfIndex = 0;
  readonly #reads = new ReadIndexQueue();
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  #readsBeforeFirstCommit: { requestId: number; from: NodeId }[] = [];

  constructor(options: { config: RaftConfig; storage: LogStorage; prng: Prng; logger: RaftLogger }) {
    this.id = options.config.id;
    this.config = options.config;
    this.#prng = options.prng;
    this.#logger = options.logger;
    this.log = new RaftLog(options.storage, options.config.appliedIndex);
    const { hardState } = options.storage.initialState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    const snapshot = options.storage.snapshot();
    this.confState = snapshot.metadata.confState;
    this.#confHistory = [{ index: snapshot.metadata.index, confState: this.confState }];
    this.#replayConfEntries(options.storage, snapshot.metadata.index);
    this.#reset(this.term);
    this.role = Role.Follower;
    this.#logger.info('raft started', {
      id: this.id,
      term: this.term,
      commit: this.log.committed,
      lastIndex: this.log.lastIndex(),
      conf: formatConfState(this.confState),
    });
  }

  #replayConfEntries(storage: LogStorage, snapshotIndex: number): void {
    const last = storage.lastIndex();
    if (last <= snapshotIndex) return;
    let lo = snapshotIndex + 1;
    while (lo <= last) {
      const entries = storage.entries(lo, last + 1, this.config.applyBytesMax);
      for (const entry of entries) {
        if (entry.kind !== 'conf-change') continue;
        this.confState = applyConfChange(this.confState, entry.change);
        this.#confHistory.push({ index: entry.index, confState: this.confState });
      }
      lo += entries.length;
    }
  }

  // ---------------------------------------------------------------- roles

  /**
   * Whether this node may campaign: no snapshot half-installed, and a voter in
   * its latest configuration, or in the latest committed one. The second case
   * is a voter whose removal is appended but not committed: its log holds the
   * removal, so it may be the only node the others can vote for, and it must
   * be able to win, commit its own removal, then step down (thesis §4.2.2; the
   * simulator found the deadlock, as ScyllaDB's Raft did). Votes are still
   * counted in the latest configuration.
   */
  isPromotable(): boolean {
    if (this.log.unstable.snapshot !== undefined) return false;
    return isVoter(this.confState, this.id) || isVoter(this.#committedConfState(), this.id);
  }

  /** The latest configuration whose entry (or snapshot) is committed. */
  #committedConfState(): ConfState {
    for (let i = this.#confHistory.length - 1; i >= 0; i--) {
      const entry = this.#confHistory[i];
      if (entry !== undefined && entry.index <= this.log.committed) return entry.confState;
    }
    return this.#confHistory[0]?.confState ?? this.confState;
  }

  #reset(term: number): void {
    if (term !== this.term) {
      assert(term > this.term, `raft: term going backwards ${this.term} → ${term}`);
      this.term = term;
      this.vote = NO_NODE;
    }
    this.lead = NO_NODE;
    this.#resetElectionTimer();
    this.#heartbeatElapsed = 0;
    this.#leadTransferee = NO_NODE;
    this.#votes.clear();
    this.progress.clear();
    this.#pendingConfIndex = 0;
    this.#reads.clear();
    this.#readsBeforeFirstCommit = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.role = Role.Follower;
    this.lead = lead;
    this.#logger.info('became follower', { id: this.id, term, lead });
  }

  #becomePreCandidate(): void {
    assert(this.role !== Role.Leader, 'raft: leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote (thesis §9.6): only its outcome may.
    this.#votes.clear();
    this.role = Role.PreCandidate;
    this.lead = NO_NODE;
    this.#logger.info('became pre-candidate', { id: this.id, term: this.term });
  }

  #becomeCandidate(): void {
    assert(this.role !== Role.Leader, 'raft: leader cannot become candidate');
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
    this.#logger.info('became candidate', { id: this.id, term: this.term });
  }

  #becomeLeader(): void {
    assert(this.role === Role.Candidate, `raft: ${this.role} cannot become leader`);
    this.#reset(this.term);
    this.role = Role.Leader;
    this.lead = this.id;
    this.#rebuildProgress();
    const self = this.progress.get(this.id);
    assert(self !== undefined, 'raft: leader without own progress');
    self.match = this.#persistedIndex();
    self.becomeReplicate();
    // Conservatively treat any change still in the log as pending until committed.
    this.#pendingConfIndex = this.log.lastIndex();
    // Paper §5.4.2 / §8: a new leader commits a no-op of its own term, which also
    // commits everything before it and unlocks ReadIndex.
    this.#appendEntries([{ kind: 'normal', index: this.log.lastIndex() + 1, term: this.term, data: EMPTY_DATA }]);
    this.#logger.info('became leader', { id: this.id, term: this.term, lastIndex: this.log.lastIndex() });
  }

  /** Index up to which this node's log is durable (entries below the unstable tail). */
  #persistedIndex(): number {
    if (this.log.unstable.snapshot !== undefined) return 0;
    return this.log.unstable.offset - 1;
  }

  #rebuildProgress(): void {
    const members = [...this.confState.voters, ...this.confState.learners];
    if (!members.includes(this.id)) members.push(this.id);
    for (const id of [...this.progress.keys()]) {
      if (!members.includes(id)) this.progress.delete(id);
    }
    for (const id of members) {
      if (this.progress.has(id)) continue;
      const progress = new Progress({
        next: this.log.lastIndex() + 1,
        inflightMsgsMax: this.config.inflightMsgsMax,
        isLearner: this.confState.learners.includes(id),
      });
      progress.isRecentActive = true;
      this.progress.set(id, progress);
    }
    for (const [id, progress] of this.progress) {
      if (progress.isLearner !== this.confState.learners.includes(id) && id !== this.id) {
        // A promoted learner: keep its position, drop the learner flag.
        const promoted = new Progress({ next: progress.next, inflightMsgsMax: this.config.inflightMsgsMax, isLearner: false });
        promoted.match = progress.match;
        promoted.isRecentActive = true;
        this.progress.set(id, promoted);
      }
    }
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === Role.Leader) this.#tickLeader();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.#electionElapsed += 1;
    if (!this.isPromotable() || this.#electionElapsed < this.#randomizedElectionTimeout) return;
    this.#electionElapsed = 0;
    this.campaign(this.config.preVote ? 'pre-election' : 'election');
  }

  #tickLeader(): void {
    this.#heartbeatElapsed += 1;
    this.#electionElapsed += 1;
    if (this.#electionElapsed >= this.config.electionTicks) {
      this.#electionElapsed = 0;
      const isQuorumActive = this.#rollActivity();
      if (this.config.checkQuorum && !isQuorumActive) {
        this.#logger.warn('stepped down: quorum not active', { id: this.id, term: this.term });
        this.becomeFollower(this.term, NO_NODE);
        return;
      }
      if (this.#leadTransferee !== NO_NODE) this.#abortLeaderTransfer('timed out');
    }
    for (const [id, progress] of this.progress) {
      if (progress.state !== 'snapshot') continue;
      progress.snapshotElapsedTicks += 1;
      // A lost snapshot is retried: fall back to probing after an election timeout.
      if (progress.snapshotElapsedTicks >= this.config.electionTicks) {
        progress.becomeProbe();
        this.#logger.debug('snapshot timed out', { id: this.id, to: id });
      }
    }
    if (this.#heartbeatElapsed >= this.config.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat(this.#reads.latestRound());
    }
  }

  /**
   * Ends an activity round (one election timeout). Returns whether a majority
   * of voters talked to us in it: check-quorum (thesis §6.2) steps down if not.
   */
  #rollActivity(): boolean {
    const active = new Set<NodeId>();
    for (const [id, progress] of this.progress) {
      if (id === this.id || progress.isRecentActive) active.add(id);
      if (id === this.id) continue;
      progress.wasActiveLastRound = progress.isRecentActive;
      progress.isRecentActive = false;
    }
    return hasQuorum(this.confState.voters, active);
  }

  /**
   * Strict reconfiguration check (etcd's --strict-reconfig-check, as policy in
   * the core): would the voters of `next` still have a quorum of members we
   * have heard from lately? Refusing otherwise keeps an operator from
   * committing the cluster to a configuration it cannot run in (for example
   * removing a live voter while a dead one stays: found by the simulator).
   * Safety never depends on it; availability does.
   */
  #hasActiveQuorum(next: ConfState): boolean {
    const active = new Set<NodeId>([this.id]);
    for (const [id, progress] of this.progress) {
      // match > 0: it has acknowledged something in this term, not merely been added.
      if ((progress.isRecentActive || progress.wasActiveLastRound) && progress.match > 0) active.add(id);
    }
    return hasQuorum(next.voters, active);
  }

  // ---------------------------------------------------------------- elections

  /** Starts an election now (a timeout, a test's `campaign`, or a leadership transfer). */
  campaign(kind: CampaignKind): void {
    if (this.role === Role.Leader) return;
    if (!this.isPromotable()) {
      this.#logger.debug('not campaigning: not promotable', { id: this.id, term: this.term });
      return;
    }
    let voteTerm: number;
    if (kind === 'pre-election') {
      this.#becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.#becomeCandidate();
      voteTerm = this.term;
    }
    const type = kind === 'pre-election' ? 'pre-vote' : 'vote';
    this.#logger.info('campaigning', { id: this.id, term: voteTerm, kind, lastIndex: this.log.lastIndex() });
    this.#votes.set(this.id, true);
    if (this.#tallyVotes()) return;
    for (const voter of this.confState.voters) {
      if (voter === this.id) continue;
      const request: VoteMessage = {
        type,
        from: this.id,
        to: voter,
        term: voteTerm,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        force: kind === 'transfer',
      };
      this.#send(request);
    }
  }

  /** Counts votes; acts on a decision. Returns true if the election is over. */
  #tallyVotes(): boolean {
    const result = voteResult(this.confState.voters, this.#votes);
    if (result === 'pending') return false;
    if (result === 'lost') {
      this.#logger.info('election lost', { id: this.id, term: this.term, role: this.role });
      this.becomeFollower(this.term, NO_NODE);
      return true;
    }
    if (this.role === Role.PreCandidate) {
      this.campaign('election');
    } else {
      this.#becomeLeader();
      this.#broadcastAppend();
    }
    return true;
  }

  // ---------------------------------------------------------------- step

  /** Feeds one peer message (paper Fig. 2 "Rules for Servers": term handling first, then the role). */
  step(message: Message): void {
    if (message.to !== this.id) {
      // A message for another replica id, e.g. an earlier incarnation of this host: never act on it.
      this.#logger.debug('dropped message for another id', { id: this.id, to: message.to, type: message.type });
      return;
    }
    if (!this.#stepTerm(message)) return;
    switch (message.type) {
      case 'vote':
      case 'pre-vote':
        this.#handleVoteRequest(message);
        return;
      default:
        break;
    }
    if (this.role === Role.Leader) this.#stepLeader(message);
    else if (this.role === Role.Follower) this.#stepFollower(message);
    else this.#stepCandidate(message);
  }

  /** Applies the term rules; returns false if the message must go no further. */
  #stepTerm(m: Message): boolean {
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'pre-vote') {
        // Check-quorum lease (thesis §6.2 / §4.2.3): we heard from a leader within
        // the minimum election timeout, so this candidate cannot be needed.
        const isInLease = this.config.checkQuorum && this.lead !== NO_NODE && this.#electionElapsed < this.config.electionTicks;
        if (!m.force && isInLease) {
          this.#logger.debug('ignored vote request in lease', { id: this.id, from: m.from, term: m.term, type: m.type });
          return false;
        }
      }
      if (m.type === 'pre-vote') return true; // a pre-vote never raises our term
      if (m.type === 'pre-vote-resp' && !m.reject) return true; // granted for our future term
      const isFromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
      if (isFromLeader) {
        this.becomeFollower(m.term, m.from);
      } else {
        // Paper Fig. 2: the election timer restarts only on hearing from the
        // leader or granting a vote, not on merely learning a higher term.
        // Otherwise a candidate with a worse log, campaigning first every
        // term, keeps resetting the timer of the one node that could win
        // (found by the simulator with pre-vote off).
        const elapsed = this.#electionElapsed;
        const timeout = this.#randomizedElectionTimeout;
        this.becomeFollower(m.term, NO_NODE);
        this.#electionElapsed = elapsed;
        this.#randomizedElectionTimeout = timeout;
      }
      return true;
    }
    if (m.term < this.term) {
      if (m.type === 'heartbeat' || m.type === 'append') {
        // Paper Fig. 2: the reply carries currentTerm "for leader to update
        // itself". A stale leader must learn the newer term and step down, or a
        // node with a higher term is ignored forever (etcd answers only with
        // pre-vote or check-quorum on; the simulator found the livelock with both off).
        this.#send({ type: 'append-resp', from: this.id, to: m.from, term: this.term, index: 0, reject: false, rejectHint: 0, logTerm: 0 });
      } else if (m.type === 'pre-vote' || m.type === 'vote') {
        // Paper Fig. 2: the reply carries currentTerm "for candidate to update
        // itself". Without it a candidate that is not in our (older)
        // configuration never hears our higher term, and the two can keep
        // out-campaigning each other forever (found by the simulator).
        this.#send({ type: m.type === 'vote' ? 'vote-resp' : 'pre-vote-resp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return false;
    }
    return true;
  }

  #handleVoteRequest(m: VoteMessage): void {
    const responseType = m.type === 'vote' ? 'vote-resp' : 'pre-vote-resp';
    if (this.confState.voters.length === 0) {
      // A blank replica (README "Wiped and rolled-back nodes") has never learned
      // any configuration, so it cannot be a voter anyone should count, and has
      // no log to vouch for. Defence in depth: the identity rule already keeps
      // candidates from asking it.
      this.#send({ type: responseType, from: this.id, to: m.from, term: this.term, reject: true });
      this.#logger.info('vote rejected: no configuration known', { id: this.id, to: m.from, term: m.term, type: m.type });
      return;
    }
    // Paper §5.2: at most one vote per term, first come first served; a repeated
    // request from the candidate we voted for is granted again. A pre-vote for a
    // future term is not a vote and may be granted freely.
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.lead === NO_NODE) ||
      (m.type === 'pre-vote' && m.term > this.term);
    // Paper §5.4.1 election restriction: only for a log at least as up-to-date as ours.
    const isUpToDate = this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && isUpToDate) {
      const response: VoteResponseMessage = { type: responseType, from: this.id, to: m.from, term: m.term, reject: false };
      this.#send(response);
      if (m.type === 'vote') {
        this.#electionElapsed = 0;
        this.vote = m.from;
      }
      this.#logger.info('vote granted', { id: this.id, to: m.from, term: m.term, type: m.type });
      return;
    }
    this.#send({ type: responseType, from: this.id, to: m.from, term: this.term, reject: true });
    this.#logger.info('vote rejected', { id: this.id, to: m.from, term: m.term, type: m.type, isUpToDate, vote: this.vote });
    if (m.type === 'vote' && this.role === Role.Candidate && m.term === this.term && isUpToDate) {
      // We split the vote with a candidate whose log is at least as good as ours:
      // back off (restart our randomized timeout) so that it, rather than we,
      // is likelier to start the next term first. Without this, clock skew can
      // let a candidate that can never win (for instance one whose log lacks a
      // configuration entry naming the other) out-race the one that can,
      // forever, when pre-vote is off (found by the simulator). Timers never
      // affect safety.
      this.#resetElectionTimer();
    }
  }

  #resetElectionTimer(): void {
    this.#electionElapsed = 0;
    this.#randomizedElectionTimeout = this.#prng.between(this.config.electionTicks, 2 * this.config.electionTicks - 1);
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleAppend(m);
        return;
      case 'heartbeat':
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleHeartbeat(m);
        return;
      case 'snapshot':
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleSnapshot(m);
        return;
      case 'timeout-now':
        // Thesis §3.10: the leader asks us to take over; skip pre-vote and the lease.
        this.#logger.info('leadership transfer: campaigning', { id: this.id, term: this.term, from: m.from });
        this.campaign('transfer');
        return;
      case 'read-index-resp':
        this.readStates.push({ requestId: m.requestId, index: m.index });
        return;
      default:
        return;
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader exists in our term (paper §5.2): yield to it, then handle the message.
        this.becomeFollower(m.term, m.from);
        this.#stepFollower(m);
        return;
      case 'vote-resp':
      case 'pre-vote-resp': {
        const isOurRound = (m.type === 'vote-resp') === (this.role === Role.Candidate);
        if (!isOurRound) return;
        this.#votes.set(m.from, !m.reject);
        this.#tallyVotes();
        return;
      }
      default:
        return;
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case 'append-resp':
        this.#handleAppendResponse(m);
        return;
      case 'heartbeat-resp':
        this.#handleHeartbeatResponse(m);
        return;
      case 'read-index':
        this.#handleReadIndexRequest(m.from, m.requestId);
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        assert(false, `raft: two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower replication

  #handleAppend(m: AppendMessage): void {
    if (m.index < this.log.committed) {
      this.#sendAppendResponse(m.from, { index: this.log.committed });
      return;
    }
    if (!this.log.matchTerm(m.index, m.logTerm)) {
      const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
      this.#logger.debug('append rejected', { id: this.id, from: m.from, index: m.index, logTerm: m.logTerm, hint: hint.index });
      this.#send({ type: 'append-resp', from: this.id, to: m.from, term: this.term, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
      return;
    }
    const lastNewIndex = m.index + m.entries.length;
    const conflict = this.log.findConflict(m.entries);
    if (conflict !== 0) {
      assert(conflict > this.log.committed, `raft: conflict at ${conflict} within commit ${this.log.committed}`);
      this.#appendEntries(m.entries.slice(conflict - m.index - 1));
    }
    // Paper Fig. 2: commitIndex = min(leaderCommit, index of last new entry).
    this.log.commitTo(Math.min(m.commit, lastNewIndex));
    this.#sendAppendResponse(m.from, { index: lastNewIndex });
  }

  #sendAppendResponse(to: NodeId, options: { index: number }): void {
    this.#send({ type: 'append-resp', from: this.id, to, term: this.term, index: options.index, reject: false, rejectHint: 0, logTerm: 0 });
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    // The leader caps `commit` at what it knows we hold.
    assert(m.commit <= this.log.lastIndex(), `raft: heartbeat commit ${m.commit} beyond last ${this.log.lastIndex()}`);
    this.log.commitTo(m.commit);
    const response: HeartbeatResponseMessage = { type: 'heartbeat-resp', from: this.id, to: m.from, term: this.term, context: m.context };
    this.#send(response);
  }

  #handleSnapshot(m: SnapshotMessage): void {
    const { index, term } = m.snapshot.metadata;
    if (this.#restore(m.snapshot)) {
      this.#logger.info('snapshot restored', { id: this.id, index, term, conf: formatConfState(this.confState) });
      this.#sendAppendResponse(m.from, { index: this.log.lastIndex() });
    } else {
      this.#logger.debug('snapshot ignored', { id: this.id, index, term, commit: this.log.committed });
      this.#sendAppendResponse(m.from, { index: this.log.committed });
    }
  }

  #restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We already hold the snapshot's last entry: just fast-forward the commit.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.confState = confState;
    this.#confHistory = [{ index, confState }];
    return true;
  }

  // ---------------------------------------------------------------- leader replication

  /** Appends to our log (leader: new entries; follower: after a conflict point) and applies configuration entries at once. */
  #appendEntries(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.#truncateConfHistory(first.index);
    this.log.append(entries);
    this.#applyConfEntries(entries);
  }

  #truncateConfHistory(fromIndex: number): void {
    let count = this.#confHistory.length;
    while (count > 1 && (this.#confHistory[count - 1]?.index ?? 0) >= fromIndex) count -= 1;
    if (count === this.#confHistory.length) return;
    this.#confHistory.length = count;
    const base = this.#confHistory[count - 1];
    assert(base !== undefined, 'raft: empty configuration history');
    this.#setConfState(base.confState, 'truncated');
  }

  #applyConfEntries(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.kind !== 'conf-change') continue;
      const next = applyConfChange(this.confState, entry.change);
      this.#confHistory.push({ index: entry.index, confState: next });
      this.#setConfState(next, `${entry.change.type} ${entry.change.nodeId} at ${entry.index}`);
    }
  }

  /** Index of the entry (or snapshot) that established the current configuration. */
  confIndex(): number {
    return this.#confHistory[this.#confHistory.length - 1]?.index ?? 0;
  }

  #setConfState(confState: ConfState, reason: string): void {
    if (confState === this.confState) return;
    this.confState = confState;
    this.#logger.info('configuration changed', { id: this.id, term: this.term, conf: formatConfState(confState), reason });
    if (this.role !== Role.Leader) return;
    this.#rebuildProgress();
    if (this.#leadTransferee !== NO_NODE && !isVoter(confState, this.#leadTransferee)) this.#abortLeaderTransfer('transferee removed');
  }

  #broadcastAppend(): void {
    for (const id of this.progress.keys()) {
      if (id !== this.id) this.#sendAppend(id, true);
    }
  }

  /** Sends entries (or a snapshot) to `to` if flow control allows. Returns true if something was sent. */
  #sendAppend(to: NodeId, isEmptyAllowed: boolean): boolean {
    const progress = this.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.slice(progress.next, this.log.lastIndex() + 1, this.config.msgBytesMax);
    if (prevTerm === undefined || entries === undefined) {
      this.#sendSnapshot(to, progress);
      return true;
    }
    if (entries.length === 0 && !isEmptyAllowed) return false;
    const message: AppendMessage = { type: 'append', from: this.id, to, term: this.term, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed };
    this.#send(message);
    progress.sentEntries(prevIndex + entries.length, entries.length);
    return true;
  }

  #sendSnapshot(to: NodeId, progress: Progress): void {
    const snapshot = this.log.snapshot();
    assert(snapshot.metadata.index >= this.log.firstIndex() - 1, 'raft: snapshot does not cover the compacted log');
    progress.becomeSnapshot(snapshot.metadata.index);
    this.#logger.debug('sending snapshot', { id: this.id, to, index: snapshot.metadata.index, term: snapshot.metadata.term });
    this.#send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot });
  }

  #broadcastHeartbeat(context: number): void {
    for (const [id, progress] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(progress.match, this.log.committed);
      this.#send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, context });
    }
  }

  #handleAppendResponse(m: AppendResponseMessage): void {
    const progress = this.progress.get(m.from);
    if (progress === undefined) return;
    progress.isRecentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (progress.maybeDecreaseTo(m.index, hint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.#sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = progress.isPaused();
    const isProbeAnswer = progress.match === m.index && progress.state === 'probe';
    if (!progress.maybeUpdate(m.index) && !isProbeAnswer) return;
    if (progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (progress.state === 'snapshot' && (progress.match >= progress.pendingSnapshot || progress.match + 1 >= this.log.firstIndex())) {
      // The follower installed the snapshot, or never needed it: stream entries again.
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeLE(m.index);
    }
    if (this.#maybeCommit()) {
      this.#broadcastAppend();
    } else if (wasPaused) {
      this.#sendAppend(m.from, true);
    }
    while (this.role === Role.Leader && this.#sendAppend(m.from, false)) {
      // Keep the window full (bounded by inflights).
    }
    if (this.role === Role.Leader && m.from === this.#leadTransferee && progress.match === this.log.lastIndex()) {
      this.#sendTimeoutNow(m.from);
    }
  }

  #handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const progress = this.progress.get(m.from);
    if (progress === undefined) return;
    progress.isRecentActive = true;
    progress.isProbeSent = false;
    // The follower is alive: if the window is full, make room for one retry (lost appends).
    if (progress.state === 'replicate' && progress.inflights.isFull()) progress.inflights.freeFirstOne();
    if (progress.match < this.log.lastIndex()) this.#sendAppend(m.from, true);
    if (m.context > 0) {
      this.#reads.ack(m.from, m.context);
      this.#releaseConfirmedReads();
    }
  }

  /**
   * Paper §5.3–§5.4.2: advance the commit index to the highest index stored on
   * a majority, but only if that entry is from the current term. Older entries
   * are committed indirectly, never by counting replicas (Figure 8).
   */
  #maybeCommit(): boolean {
    const selfProgress = this.progress.get(this.id);
    assert(selfProgress !== undefined, 'raft: leader without own progress');
    const index = committedIndex(this.confState.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index <= this.log.committed) return false;
    if (this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    this.#afterCommit();
    return true;
  }

  #afterCommit(): void {
    if (this.#readsBeforeFirstCommit.length > 0 && this.#isCommittedInTerm()) {
      const waiting = this.#readsBeforeFirstCommit;
      this.#readsBeforeFirstCommit = [];
      for (const read of waiting) this.#handleReadIndexRequest(read.from, read.requestId);
    }
    // Thesis §4.2.2: a leader removed from the configuration steps down once the change commits.
    const latest = this.#confHistory[this.#confHistory.length - 1];
    if (latest !== undefined && latest.index <= this.log.committed && !isVoter(this.confState, this.id)) {
      this.#logger.info('stepped down: removed from configuration', { id: this.id, term: this.term });
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  #isCommittedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** Called by RaftNode.advance(): our own log is durable up to the new persisted index. */
  onPersisted(): void {
    if (this.role !== Role.Leader) return;
    const self = this.progress.get(this.id);
    assert(self !== undefined, 'raft: leader without own progress');
    self.maybeUpdate(this.#persistedIndex());
    if (this.#maybeCommit() && this.role === Role.Leader) this.#broadcastAppend();
  }

  // ---------------------------------------------------------------- proposals

  propose(data: Uint8Array): ProposeResult {
    const refusal = this.#proposalRefusal();
    if (refusal !== undefined) return refusal;
    const index = this.log.lastIndex() + 1;
    this.#appendEntries([{ kind: 'normal', index, term: this.term, data }]);
    this.#broadcastAppend();
    return { isAccepted: true, index, term: this.term };
  }

  /** Proposes several entries at once: appended together and sent in one append per follower (not one per entry). */
  proposeBatch(datas: readonly Uint8Array[]): ProposeResult {
    assert(datas.length > 0, 'raft: empty proposal batch');
    const refusal = this.#proposalRefusal();
    if (refusal !== undefined) return refusal;
    const first = this.log.lastIndex() + 1;
    this.#appendEntries(datas.map((data, i): Entry => ({ kind: 'normal', index: first + i, term: this.term, data })));
    this.#broadcastAppend();
    return { isAccepted: true, index: first, term: this.term };
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    const refusal = this.#proposalRefusal();
    if (refusal !== undefined) return refusal;
    if (this.#pendingConfIndex > this.log.committed) {
      return this.#refuse('conf-change-pending', `change at ${this.#pendingConfIndex} not yet committed`);
    }
    // The single-server change fix (Ongaro 2015): first commit an entry of our own term.
    if (!this.#isCommittedInTerm()) return this.#refuse('leader-not-ready', 'no entry of this term committed yet');
    const problem = confChangeRefusal(this.confState, change);
    if (problem !== undefined) return this.#refuse('invalid-conf-change', problem);
    if (!this.#hasActiveQuorum(applyConfChange(this.confState, change))) {
      return this.#refuse('would-lose-quorum', 'the new voters would not have a quorum of active members');
    }
    const index = this.log.lastIndex() + 1;
    this.#pendingConfIndex = index;
    this.#appendEntries([{ kind: 'conf-change', index, term: this.term, change }]);
    this.#broadcastAppend();
    return { isAccepted: true, index, term: this.term };
  }

  #proposalRefusal(): ProposeResult | undefined {
    if (this.role !== Role.Leader) return this.#refuse('not-leader', `role ${this.role}`);
    if (this.#leadTransferee !== NO_NODE) return this.#refuse('leadership-transfer', `transferring to ${this.#leadTransferee}`);
    if (!isMember(this.confState, this.id)) return this.#refuse('not-member', 'leader is being removed');
    return undefined;
  }

  #refuse(refusal: ProposalRefusal, detail: string): ProposeResult {
    return { isAccepted: false, refusal, lead: this.lead, detail };
  }

  // ---------------------------------------------------------------- leadership transfer (thesis §3.10)

  transferLeadership(target: NodeId): ProposeResult {
    if (this.role !== Role.Leader) return this.#refuse('not-leader', `role ${this.role}`);
    if (target === this.id) return { isAccepted: true, index: this.log.lastIndex(), term: this.term };
    if (!isVoter(this.confState, target)) return this.#refuse('invalid-conf-change', `${target} is not a voter`);
    const progress = this.progress.get(target);
    assert(progress !== undefined, 'raft: voter without progress');
    if (this.#leadTransferee === target) return { isAccepted: true, index: this.log.lastIndex(), term: this.term };
    if (this.#leadTransferee !== NO_NODE) this.#abortLeaderTransfer('superseded');
    this.#leadTransferee = target;
    // The transfer must finish within one election timeout or it is abandoned.
    this.#electionElapsed = 0;
    this.#logger.info('leadership transfer started', { id: this.id, term: this.term, to: target });
    if (progress.match === this.log.lastIndex()) this.#sendTimeoutNow(target);
    else this.#sendAppend(target, true);
    return { isAccepted: true, index: this.log.lastIndex(), term: this.term };
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#send({ type: 'timeout-now', from: this.id, to, term: this.term });
  }

  #abortLeaderTransfer(reason: string): void {
    this.#logger.info('leadership transfer aborted', { id: this.id, term: this.term, to: this.#leadTransferee, reason });
    this.#leadTransferee = NO_NODE;
  }

  get leadTransferee(): NodeId {
    return this.#leadTransferee;
  }

  // ---------------------------------------------------------------- ReadIndex (thesis §6.4)

  /** Requests a linearizable read point. Returns false if it was dropped (no known leader, or too many pending). */
  readIndex(requestId: number): boolean {
    if (this.role === Role.Leader) return this.#handleReadIndexRequest(this.id, requestId);
    if (this.lead === NO_NODE) return false;
    this.#send({ type: 'read-index', from: this.id, to: this.lead, term: this.term, requestId });
    return true;
  }

  #handleReadIndexRequest(from: NodeId, requestId: number): boolean {
    if (this.#reads.length + this.#readsBeforeFirstCommit.length >= RAFT_PENDING_READS_MAX) return false;
    if (!this.#isCommittedInTerm()) {
      // Our commit index may lag the previous leader's until our no-op commits.
      this.#readsBeforeFirstCommit.push({ from, requestId });
      return true;
    }
    const index = this.log.committed;
    if (this.confState.voters.length === 1 && isVoter(this.confState, this.id)) {
      this.#answerRead({ from, requestId, index });
      return true;
    }
    const round = this.#reads.add({ requestId, from, index, self: this.id });
    this.#broadcastHeartbeat(round);
    return true;
  }

  #releaseConfirmedReads(): void {
    const confirmed = this.#reads.takeConfirmed((acks) => hasQuorum(this.confState.voters, acks));
    for (const read of confirmed) this.#answerRead(read);
  }

  #answerRead(read: { from: NodeId; requestId: number; index: number }): void {
    if (read.from === this.id) {
      this.readStates.push({ requestId: read.requestId, index: read.index });
      return;
    }
    this.#send({ type: 'read-index-resp', from: this.id, to: read.from, term: this.term, requestId: read.requestId, index: read.index });
  }

  // ---------------------------------------------------------------- output

  #send(message: Message): void {
    assert(message.term > 0, `raft: sending ${message.type} without a term`);
    assert(message.to !== this.id, `raft: sending ${message.type} to self`);
    assert(message.from === this.id, 'raft: sending as someone else');
    this.msgs.push(message);
  }
}
