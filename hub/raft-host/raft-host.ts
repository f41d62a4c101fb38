/**
 * RaftHost: one hub node's Raft replica for real: the LMDB log (lmdb-log-storage.ts),
 * the peer transport (peer-transport.ts), a ticker, and the host loop of
 * hub/raft/README.md driving a RaftNode and the ReplicatedLog state machine.
 *
 * The loop, once per Ready, strictly in this order (thesis §3.8; STYLE.md house rule 1):
 * save the snapshot, entries and hard state in one LMDB transaction and, if `mustSync`,
 * wait for its fsync; only then send the messages; then apply the snapshot and the
 * committed entries, answer reads whose index is applied; then `advance`. Ticks,
 * messages and proposals that arrive while a save is in flight are stepped at once and
 * go into the next Ready, which is what batches proposals under load.
 *
 * A failed save (disk full, I/O error) stops the replica: the node is ahead of its
 * disk, so it must not send or apply anything more (RELIABILITY.md §3.4). `failed`
 * resolves with the error; the CLI exits non-zero and a supervisor restarts it from the
 * disk.
 *
 * Identity (hub/raft/README.md "Wiped and rolled-back nodes"): a data directory is
 * created by `initialize()` (an initial member of a new cluster). A blank directory
 * found at start — new or wiped — is never bootstrapped again: the host mints a fresh
 * node id and waits, a member of nothing, until an operator adds it (add-learner, then
 * add-voter). A directory of another cluster is refused; a damaged one is renamed aside
 * (kept for inspection) and the replica starts blank under a new id.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { renameSync } from 'node:fs';
import { StoreError, StoreErrorCode } from '../../core/jetstream/store.ts';
import type { Logger } from '../../core/util/logger.ts';
import { SeededPrng } from '../../core/util/prng.ts';
import type { ConfChange, Entry, Message, NodeId, ProposeResult, RaftLogger, RaftStatus, Ready } from '../raft/index.ts';
import { maySendBeforePersist, RAFT_CONFIG_DEFAULTS, RaftNode } from '../raft/index.ts';
import { LmdbLogStorage } from './lmdb-log-storage.ts';
import { PeerTransport, type PeerTransportStats } from './peer-transport.ts';
import { ReplicatedLog, type LogRecord } from './replicated-log.ts';

/** A proposal not applied within this long is answered "outcome unknown" (it may still commit). */
export const RAFT_PROPOSAL_TIMEOUT_MS = 10_000;
/** A linearizable read not confirmed within this long fails (no leader, or the request was lost). */
export const RAFT_READ_TIMEOUT_MS = 5_000;
/** Proposals waiting for their commit at once; more are refused with `overloaded`. */
export const RAFT_PENDING_PROPOSALS_MAX = 1_000_000;
/** Largest id minted for a new incarnation (ids are safe integers; 2^48 keeps them short). */
const MINTED_ID_MAX = 2 ** 48;

export type RaftHostErrorCode = 'not-leader' | 'refused' | 'timeout' | 'overwritten' | 'overloaded' | 'stopped';

export class RaftHostError extends Error {
  override readonly name = 'RaftHostError';
  constructor(
    readonly code: RaftHostErrorCode,
    message: string,
    /** The leader this node knows of (0 if none), for `not-leader`. */
    readonly leader: NodeId = 0,
  ) {
    super(message);
  }
}

export type RaftHostOptions = {
  readonly dataDir: string;
  readonly clusterId: string;
  readonly secret: Uint8Array;
  readonly listen: { readonly host: string; readonly port: number };
  /** Where the initial members are reached (ws://host:port); members added later bring their address in the change. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Take a snapshot (and compact the log) after this many applied entries. */
  readonly snapshotEntries: number;
  readonly log: Logger;
};

/** Counters of the host loop (GET /status `loop`), for seeing how well proposals batch. */
export type RaftLoopStats = { readys: number; savedEntries: number; syncs: number; sentMessages: number; proposalBatches: number; proposals: number };

export type RaftHostStatus = RaftStatus & {
  readonly loop: RaftLoopStats;
  readonly records: number;
  readonly digest: number;
  readonly transport: PeerTransportStats;
  readonly peers: Record<string, string>;
};

/** A proposal waiting for its index to be applied; `deadlineMs` is when the ticker answers it `timeout`. */
type PendingProposal = { readonly term: number; readonly resolve: (index: number) => void; readonly reject: (error: Error) => void; readonly deadlineMs: number };
type QueuedRecord = { readonly data: Uint8Array; readonly resolve: (index: number) => void; readonly reject: (error: Error) => void };
type PendingRead = { readonly resolve: (applied: number) => void; readonly reject: (error: Error) => void; readonly timer: NodeJS.Timeout; index: number };

function raftLogger(log: Logger): RaftLogger {
  return {
    debug: (message, fields) => log.debug(fields, message),
    info: (message, fields) => log.info(fields, message),
    warn: (message, fields) => log.warn(fields, message),
  };
}

/** Opens the replica's log: refuses another cluster's directory; sets a damaged one aside. */
async function openReplicaLog(options: RaftHostOptions): Promise<LmdbLogStorage> {
  let storage: LmdbLogStorage;
  try {
    storage = LmdbLogStorage.open({ path: options.dataDir });
  } catch (error) {
    if (!(error instanceof StoreError) || error.code !== StoreErrorCode.corrupt) throw error;
    const aside = `${options.dataDir}.damaged-${Date.now()}`;
    options.log.error({ err: error, movedTo: aside }, 'raft: the data directory is damaged; set aside, starting blank under a new id');
    renameSync(options.dataDir, aside);
    storage = LmdbLogStorage.open({ path: options.dataDir });
  }
  const identity = storage.identity;
  if (identity !== undefined && identity.clusterId !== options.clusterId) {
    await storage.close();
    throw new Error(`raft: ${options.dataDir} belongs to cluster "${identity.clusterId}", not "${options.clusterId}"`);
  }
  if (identity === undefined) {
    const nodeId = randomInt(1, MINTED_ID_MAX);
    await storage.initialize({ identity: { clusterId: options.clusterId, nodeId } });
    options.log.warn({ nodeId }, 'raft: blank data directory: started as a new replica that is a member of nothing; add it to the cluster (add-learner, then add-voter)');
  }
  return storage;
}

/** Writes a new initial member's data directory (`canopy raft-node init`): identity and bootstrap configuration. */
export async function initializeReplica(options: { readonly dataDir: string; readonly clusterId: string; readonly nodeId: NodeId; readonly voters: readonly NodeId[] }): Promise<void> {
  const storage = LmdbLogStorage.open({ path: options.dataDir });
  try {
    if (storage.identity !== undefined) throw new Error(`raft: ${options.dataDir} is already initialized (node ${storage.identity.nodeId} of "${storage.identity.clusterId}")`);
    await storage.initialize({ identity: { clusterId: options.clusterId, nodeId: options.nodeId }, voters: options.voters });
  } finally {
    await storage.close();
  }
}

export class RaftHost {
  readonly failed: Promise<Error>;
  readonly #options: RaftHostOptions;
  readonly #log: Logger;
  readonly #storage: LmdbLogStorage;
  readonly #node: RaftNode;
  readonly #machine: ReplicatedLog;
  #transport!: PeerTransport;
  readonly #ticker: NodeJS.Timeout;
  readonly #proposals = new Map<number, PendingProposal>();
  /** Records proposed since the loop last ran; flushed as one batch. */
  #queued: QueuedRecord[] = [];
  readonly #reads = new Map<number, PendingRead>();
  /** Confirmed reads waiting for the applied index to reach theirs. */
  readonly #readsAwaitingApply: PendingRead[] = [];
  #nextReadId = 1;
  /** Term and vote of the last hard state handed to the storage. */
  #savedTermVote: { term: number; vote: NodeId };
  readonly #stats: RaftLoopStats = { readys: 0, savedEntries: 0, syncs: 0, sentMessages: 0, proposalBatches: 0, proposals: 0 };
  #snapshotIndex: number;
  #isRunning = false;
  #isScheduled = false;
  #failure: Error | undefined;
  #onFailed!: (error: Error) => void;

  private constructor(options: RaftHostOptions, storage: LmdbLogStorage) {
    this.#options = options;
    this.#storage = storage;
    const id = storage.identity!.nodeId;
    this.#log = options.log.child({ raftNode: id });
    const snapshot = storage.snapshot();
    this.#machine = new ReplicatedLog(snapshot.metadata.confState);
    this.#machine.restore(snapshot.metadata.index, snapshot.metadata.confState, snapshot.data);
    this.#snapshotIndex = snapshot.metadata.index;
    const { term, vote } = storage.initialState().hardState;
    this.#savedTermVote = { term, vote };
    this.#node = new RaftNode({
      config: {
        ...RAFT_CONFIG_DEFAULTS,
        id,
        electionTicks: options.electionTicks,
        heartbeatTicks: options.heartbeatTicks,
        appliedIndex: snapshot.metadata.index,
      },
      storage,
      prng: new SeededPrng(randomBytes(4).readUInt32BE(0)),
      logger: raftLogger(this.#log),
    });
    this.failed = new Promise((resolve) => (this.#onFailed = resolve));
    this.#ticker = setInterval(() => {
      this.#expireProposals(Date.now());
      this.#node.tick();
      this.#schedule();
    }, options.tickMs);
  }

  static async start(options: RaftHostOptions): Promise<RaftHost> {
    const storage = await openReplicaLog(options);
    const host = new RaftHost(options, storage);
    try {
      host.#transport = await PeerTransport.listen({
        clusterId: options.clusterId,
        nodeId: host.id,
        secret: options.secret,
        host: options.listen.host,
        port: options.listen.port,
        log: host.#log,
        onMessages: (messages) => host.#onMessages(messages),
      });
    } catch (error) {
      clearInterval(host.#ticker);
      await storage.close();
      throw error;
    }
    for (const [id, url] of options.peers) host.#transport.setPeer(id, url);
    for (const [id, url] of host.#machine.addresses()) host.#transport.setPeer(id, url);
    host.#log.info({ port: host.#transport.port, ...host.#summary() }, 'raft: replica started');
    host.#schedule();
    return host;
  }

  get id(): NodeId {
    return this.#node.id;
  }

  get port(): number {
    return this.#transport.port;
  }

  /**
   * Proposes each record; resolves with their indexes once all are committed and applied
   * here. Records queued by every caller since the loop last ran go to Raft as one batch
   * (RaftNode.proposeBatch), so concurrent requests share append messages and fsyncs.
   */
  proposeAll(records: readonly Uint8Array[]): Promise<number[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#stoppedError());
    if (this.#proposals.size + this.#queued.length + records.length > RAFT_PENDING_PROPOSALS_MAX) {
      return Promise.reject(new RaftHostError('overloaded', `${RAFT_PENDING_PROPOSALS_MAX} proposals are already waiting (RAFT_PENDING_PROPOSALS_MAX)`));
    }
    const answers = records.map((data) => new Promise<number>((resolve, reject) => this.#queued.push({ data, resolve, reject })));
    this.#schedule();
    return Promise.all(answers);
  }

  /** One membership change (single-server); `address` is where an added node listens. Resolves once applied. */
  changeMembership(change: { readonly type: ConfChange['type']; readonly nodeId: NodeId; readonly address?: string }): Promise<number> {
    const context = new TextEncoder().encode(change.address ?? '');
    return this.#propose((node) => node.proposeConfChange({ type: change.type, nodeId: change.nodeId, context }));
  }

  transferLeadership(target: NodeId): void {
    const result = this.#node.transferLeadership(target);
    this.#schedule();
    if (!result.isAccepted) throw this.#refusalError(result);
  }

  /** Records from raft index `fromIndex`, at most `max`; linearizable (ReadIndex) unless `isStale`. */
  async read(fromIndex: number, max: number, isStale = false): Promise<{ readonly records: LogRecord[]; readonly applied: number }> {
    if (!isStale) await this.#readIndex();
    return { records: this.#machine.read(fromIndex, max), applied: this.#machine.appliedIndex };
  }

  status(): RaftHostStatus {
    return {
      ...this.#node.status(),
      loop: { ...this.#stats },
      records: this.#machine.length,
      digest: this.#machine.digest,
      transport: { ...this.#transport.stats },
      peers: Object.fromEntries([...this.#transport.peers()].map(([id, url]) => [String(id), url])),
    };
  }

  async close(): Promise<void> {
    clearInterval(this.#ticker);
    this.#stop(new RaftHostError('stopped', 'the replica is shutting down'));
    await this.#transport?.close();
    await this.#storage.close();
  }

  // ---- the loop ----

  #onMessages(messages: readonly Message[]): void {
    if (this.#failure !== undefined) return;
    for (const message of messages) this.#node.step(message);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#isRunning || this.#isScheduled || this.#failure !== undefined) return;
    this.#isScheduled = true;
    setImmediate(() => {
      this.#isScheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    if (this.#isRunning) return;
    this.#isRunning = true;
    try {
      while (this.#failure === undefined && (this.#flushQueued(), this.#node.hasReady())) {
        const ready = this.#node.ready();
        this.#stats.readys += 1;
        this.#stats.savedEntries += ready.entries.length;
        this.#stats.sentMessages += ready.messages.length;
        if (ready.mustSync) this.#stats.syncs += 1;
        const isSentEarly = maySendBeforePersist(ready, this.#node.role, this.#savedTermVote);
        if (isSentEarly) this.#transport.send(ready.messages);
        if (ready.snapshot !== undefined || ready.entries.length > 0 || ready.hardState !== undefined) {
          const saved = this.#storage.save({ snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState });
          if (ready.hardState !== undefined) this.#savedTermVote = { term: ready.hardState.term, vote: ready.hardState.vote };
          if (ready.mustSync) await saved;
          else saved.catch((error: unknown) => this.#fail(error));
        }
        if (this.#failure !== undefined) return;
        if (!isSentEarly) this.#transport.send(ready.messages);
        this.#apply(ready);
        this.#node.advance(ready);
        this.#maybeSnapshot();
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#isRunning = false;
    }
  }

  #apply(ready: Ready): void {
    if (ready.snapshot !== undefined) {
      const { metadata, data } = ready.snapshot;
      this.#machine.restore(metadata.index, metadata.confState, data);
      this.#snapshotIndex = metadata.index;
      for (const [id, url] of this.#machine.addresses()) this.#transport.setPeer(id, url);
    }
    for (const entry of ready.committedEntries) this.#applyEntry(entry);
    for (const state of ready.readStates) {
      const read = this.#reads.get(state.requestId);
      if (read === undefined) continue;
      read.index = state.index;
      this.#readsAwaitingApply.push(read);
      this.#reads.delete(state.requestId);
    }
    const applied = this.#machine.appliedIndex;
    for (let i = this.#readsAwaitingApply.length - 1; i >= 0; i--) {
      const read = this.#readsAwaitingApply[i]!;
      if (read.index > applied) continue;
      this.#readsAwaitingApply.splice(i, 1);
      clearTimeout(read.timer);
      read.resolve(applied);
    }
  }

  #applyEntry(entry: Entry): void {
    const addressChange = this.#machine.apply(entry);
    if (addressChange !== undefined) {
      if (addressChange.address === undefined) this.#transport.removePeer(addressChange.nodeId);
      else this.#transport.setPeer(addressChange.nodeId, addressChange.address);
    }
    if (entry.kind === 'conf-change') this.#log.info({ change: entry.change.type, nodeId: entry.change.nodeId, index: entry.index }, 'raft: membership change applied');
    const pending = this.#proposals.get(entry.index);
    if (pending === undefined) return;
    this.#proposals.delete(entry.index);
    if (pending.term === entry.term) pending.resolve(entry.index);
    else pending.reject(new RaftHostError('overwritten', `entry ${entry.index} was replaced by a newer leader's: the proposal did not commit`));
  }

  #maybeSnapshot(): void {
    const applied = this.#machine.appliedIndex;
    if (applied - this.#snapshotIndex < this.#options.snapshotEntries) return;
    this.#snapshotIndex = applied;
    const data = this.#machine.snapshot();
    this.#storage.createSnapshot({ index: applied, confState: this.#machine.confState, data }).catch((error: unknown) => this.#fail(error));
    // Keep a tail so a follower a little behind catches up from the log, not a snapshot.
    const compactTo = applied - this.#options.snapshotEntries;
    if (compactTo > this.#storage.firstIndex() - 1) this.#storage.compact(compactTo).catch((error: unknown) => this.#fail(error));
  }

  #flushQueued(): void {
    if (this.#queued.length === 0) return;
    const queued = this.#queued;
    this.#queued = [];
    this.#stats.proposalBatches += 1;
    this.#stats.proposals += queued.length;
    const result = this.#node.proposeBatch(queued.map((record) => record.data));
    if (!result.isAccepted) {
      const error = this.#refusalError(result);
      for (const record of queued) record.reject(error);
      return;
    }
    queued.forEach((record, i) => this.#await(result.index + i, result.term, record.resolve, record.reject));
  }

  #propose(attempt: (node: RaftNode) => ProposeResult): Promise<number> {
    if (this.#failure !== undefined) return Promise.reject(this.#stoppedError());
    const result = attempt(this.#node);
    if (!result.isAccepted) return Promise.reject(this.#refusalError(result));
    this.#schedule();
    return new Promise((resolve, reject) => this.#await(result.index, result.term, resolve, reject));
  }

  /** Answers the proposal at (index, term) when that index is applied: resolved if the entry there is ours, rejected if another leader's replaced it. */
  #await(index: number, term: number, resolve: (index: number) => void, reject: (error: Error) => void): void {
    // An older proposal at this index (from an earlier term of ours) can no longer commit.
    const older = this.#proposals.get(index);
    if (older !== undefined) {
      // Deleted first so the map stays in proposal-time order, which #expireProposals relies on.
      this.#proposals.delete(index);
      older.reject(new RaftHostError('overwritten', `entry ${index} was replaced by a newer leader's: the proposal did not commit`));
    }
    this.#proposals.set(index, { term, resolve, reject, deadlineMs: Date.now() + RAFT_PROPOSAL_TIMEOUT_MS });
  }

  /**
   * Answers `timeout` to proposals past their deadline, on each tick: one sweep instead of a
   * timer per proposal (tens of thousands a second under load). The map is in insertion
   * order, which is deadline order, so the sweep stops at the first proposal still in time.
   */
  #expireProposals(nowMs: number): void {
    for (const [index, pending] of this.#proposals) {
      if (pending.deadlineMs > nowMs) return;
      this.#proposals.delete(index);
      pending.reject(new RaftHostError('timeout', `entry ${index} not applied within ${RAFT_PROPOSAL_TIMEOUT_MS} ms: it may still commit`));
    }
  }

  #refusalError(result: Extract<ProposeResult, { isAccepted: false }>): RaftHostError {
    return new RaftHostError(result.refusal === 'not-leader' ? 'not-leader' : 'refused', `${result.refusal}: ${result.detail}`, result.lead);
  }

  #stoppedError(): RaftHostError {
    return new RaftHostError('stopped', `the replica stopped: ${this.#failure?.message ?? 'closed'}`);
  }

  #readIndex(): Promise<number> {
    if (this.#failure !== undefined) return Promise.reject(this.#stoppedError());
    const requestId = this.#nextReadId++;
    if (!this.#node.readIndex(requestId)) return Promise.reject(new RaftHostError('not-leader', 'no leader known: the read cannot be confirmed', 0));
    this.#schedule();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#reads.delete(requestId);
        const index = this.#readsAwaitingApply.findIndex((read) => read.timer === timer);
        if (index >= 0) this.#readsAwaitingApply.splice(index, 1);
        reject(new RaftHostError('timeout', `read not confirmed within ${RAFT_READ_TIMEOUT_MS} ms`));
      }, RAFT_READ_TIMEOUT_MS);
      this.#reads.set(requestId, { resolve, reject, timer, index: 0 });
    });
  }

  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    const failure = error instanceof Error ? error : new Error(String(error));
    this.#log.fatal({ err: failure }, 'raft: the replica stopped: its log could not be written (it is ahead of its disk)');
    this.#stop(failure);
    this.#onFailed(failure);
  }

  #stop(failure: Error): void {
    this.#failure ??= failure;
    clearInterval(this.#ticker);
    const stopped = new RaftHostError('stopped', `the replica stopped: ${failure.message}`);
    for (const pending of this.#proposals.values()) pending.reject(stopped);
    this.#proposals.clear();
    for (const record of this.#queued.splice(0)) record.reject(stopped);
    for (const read of [...this.#reads.values(), ...this.#readsAwaitingApply]) {
      clearTimeout(read.timer);
      read.reject(stopped);
    }
    this.#reads.clear();
    this.#readsAwaitingApply.length = 0;
  }

  #summary(): Record<string, unknown> {
    const status = this.#node.status();
    return { term: status.term, commit: status.commit, lastIndex: status.lastIndex, voters: status.confState.voters.join(','), learners: status.confState.learners.join(',') };
  }
}
