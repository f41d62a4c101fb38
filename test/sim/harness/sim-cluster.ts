/**
 * A whole Raft cluster in one thread, on virtual time (TigerBeetle's VOPR,
 * Kafka's RaftEventSimulationTest; RELIABILITY.md §2.3–§2.4, §2.7).
 *
 * Each simulated host runs the loop a real host runs (STYLE.md house rule 1):
 * tick → step → ready → write to disk → wait for the sync → send → apply →
 * advance. Everything nondeterministic comes from one seed through forked
 * PRNGs (one per subsystem), and events at the same virtual time run in
 * scheduling order, so a seed replays exactly.
 *
 * Identity rule under test (hub/raft/README.md): a host whose disk was wiped
 * or rolled back comes back under a NEW Raft id and is re-admitted by a
 * membership change. `reuseIdAfterWipe` breaks that rule on purpose.
 */
import { SeededPrng } from '../../../core/util/prng.ts';
import type { ConfState, Entry, Message, NodeId, ProposeResult, RaftConfig, RaftLogFields, RaftLogger, RaftNodeOptions, Ready } from '../../../hub/raft/index.ts';
import { applyConfChange, formatConfState, maySendBeforePersist, MemoryLogStorage, RAFT_CONFIG_DEFAULTS, RaftNode } from '../../../hub/raft/index.ts';
import type { ElectabilityView } from './checkers.ts';
import { SafetyChecker } from './checkers.ts';
import { EventQueue } from './event-queue.ts';
import { chainHash } from './hash.ts';
import type { DiskWrite } from './sim-disk.ts';
import { SimDisk } from './sim-disk.ts';
import { SimNetwork } from './sim-network.ts';

export type SimClusterOptions = {
  readonly seed: number;
  readonly hostCount: number;
  /** Raft settings shared by every node (id is per host). */
  readonly raft: Omit<RaftConfig, 'id' | 'appliedIndex'>;
  /** Virtual time units per Raft tick; each host drifts by up to ±`tickSkew`. */
  readonly tickPeriod: number;
  readonly tickSkew: number;
  readonly diskLatencyMin: number;
  readonly diskLatencyMax: number;
  /** Host snapshot policy: snapshot after this many applied entries, keeping `compactionKeep` entries. */
  readonly snapshotEvery: number;
  readonly compactionKeep: number;
  /** Record a transcript (replay and golden tests); off for bulk runs. */
  readonly isTranscriptOn: boolean;
  readonly isVerbose: boolean;
  /** DELIBERATE BUG for the checker's own test: a wiped host comes back with its old id. */
  readonly reuseIdAfterWipe: boolean;
  /** DELIBERATE BUG: the host sends a Ready's messages before its write is synced. */
  readonly sendBeforePersist: boolean;
  /** The RaftNode implementation (a mutant copy in the mutation tests). */
  readonly raftNodeClass: RaftNodeClass;
};

export type RaftNodeClass = new (options: RaftNodeOptions) => RaftNode;

export const SIM_CLUSTER_DEFAULTS = {
  raft: { ...RAFT_CONFIG_DEFAULTS, inflightMsgsMax: 4, msgBytesMax: 256 },
  tickPeriod: 10,
  tickSkew: 1,
  diskLatencyMin: 1,
  diskLatencyMax: 4,
  snapshotEvery: 16,
  compactionKeep: 4,
  isTranscriptOn: false,
  isVerbose: false,
  reuseIdAfterWipe: false,
  sendBeforePersist: false,
  raftNodeClass: RaftNode,
} as const satisfies Omit<SimClusterOptions, 'seed' | 'hostCount'>;

type SimEvent =
  | { readonly kind: 'tick'; readonly host: number; readonly life: number }
  | { readonly kind: 'deliver'; readonly fromHost: number; readonly toHost: number; readonly message: Message }
  | { readonly kind: 'sync'; readonly host: number; readonly life: number }
  | { readonly kind: 'call'; readonly label: string; readonly action: () => void };

type HostState = 'up' | 'down' | 'paused';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** One simulated machine: a Raft node, its disk and its (tiny) state machine. */
export class SimHost {
  readonly index: number;
  id: NodeId;
  state: HostState = 'up';
  /** Incremented on every crash and restart: events of an older life are ignored. */
  life = 0;
  node: RaftNode;
  readonly disk: SimDisk;
  readonly tickPeriod: number;
  /** State machine: applied index, chain hash, configuration at that index. */
  appliedIndex = 0;
  appliedHash = 0;
  appliedConf: ConfState;
  snapshotIndex = 0;
  /** Ready being persisted (waiting for its sync). */
  inflight: Ready | undefined = undefined;
  isSyncDone = false;
  /** The in-flight Ready's messages already left (maySendBeforePersist, or the deliberate bug). */
  isSentEarly = false;
  /** Messages that arrived while paused (a stopped process's socket buffers). */
  heldInbox: { fromHost: number; message: Message }[] = [];
  /** Checker bookkeeping for this life. */
  lastCommit = 0;
  shadowBase = 0;
  shadowHashes: number[] = [0];
  /** Reads issued here: requestId → global commit index at issue. */
  readonly pendingReads = new Map<number, number>();
  backupImage: MemoryLogStorage | undefined = undefined;

  constructor(options: { index: number; id: NodeId; node: RaftNode; disk: SimDisk; tickPeriod: number; conf: ConfState }) {
    this.index = options.index;
    this.id = options.id;
    this.node = options.node;
    this.disk = options.disk;
    this.tickPeriod = options.tickPeriod;
    this.appliedConf = options.conf;
  }

  get name(): string {
    return `h${this.index}/n${this.id}`;
  }
}

export type SimStats = {
  messagesSent: number;
  messagesDelivered: number;
  events: number;
  crashes: number;
  wipes: number;
  rollbacks: number;
  pauses: number;
  partitions: number;
  snapshotsSent: number;
  proposalsAccepted: number;
  readsConfirmed: number;
  confChanges: number;
  transfers: number;
  leaderChanges: number;
};

export class SimCluster {
  readonly options: SimClusterOptions;
  readonly hosts: SimHost[] = [];
  readonly network: SimNetwork;
  readonly checker = new SafetyChecker();
  readonly transcript: string[] = [];
  readonly stats: SimStats = {
    messagesSent: 0,
    messagesDelivered: 0,
    events: 0,
    crashes: 0,
    wipes: 0,
    rollbacks: 0,
    pauses: 0,
    partitions: 0,
    snapshotsSent: 0,
    proposalsAccepted: 0,
    readsConfirmed: 0,
    confChanges: 0,
    transfers: 0,
    leaderChanges: 0,
  };
  now = 0;
  /** Called once per (term, leader) when a leader first appears; fault schedules hook in here. */
  onLeaderElected: (host: SimHost) => void = () => {};
  readonly #queue = new EventQueue<SimEvent>();
  readonly #netPrng: SeededPrng;
  readonly #diskPrng: SeededPrng;
  readonly #raftPrng: SeededPrng;
  readonly #bootstrapConf: ConfState;
  #nextId: NodeId;
  #readRequestId = 0;
  #lastLeader: NodeId = 0;
  /** Ids ever used, to assert an id is never reused (unless the bug is on). */
  readonly #usedIds = new Set<NodeId>();

  constructor(options: SimClusterOptions) {
    this.options = options;
    const root = new SeededPrng(options.seed);
    this.#netPrng = root.fork();
    this.#diskPrng = root.fork();
    this.#raftPrng = root.fork();
    this.network = new SimNetwork(options.hostCount);
    const voters: NodeId[] = [];
    for (let i = 0; i < options.hostCount; i++) voters.push(i + 1);
    this.#bootstrapConf = { voters, learners: [] };
    this.#nextId = options.hostCount + 1;
    for (let i = 0; i < options.hostCount; i++) {
      const id = i + 1;
      this.#usedIds.add(id);
      const disk = new SimDisk(MemoryLogStorage.bootstrap(this.#bootstrapConf.voters));
      const tickPeriod = options.tickPeriod + this.#raftPrng.between(-options.tickSkew, options.tickSkew);
      const host = new SimHost({ index: i, id, node: this.#newNode(id, disk.storage, i, 0), disk, tickPeriod, conf: disk.storage.snapshot().metadata.confState });
      this.hosts.push(host);
      this.#shadowRebuild(host);
      this.#scheduleTick(host, this.#raftPrng.between(1, tickPeriod));
    }
  }

  // ---------------------------------------------------------------- plumbing

  note(line: string): void {
    if (this.options.isTranscriptOn) this.transcript.push(`${String(this.now).padStart(6, '0')} ${line}`);
  }

  #newNode(id: NodeId, storage: MemoryLogStorage, hostIndex: number, appliedIndex: number): RaftNode {
    const logger = this.#loggerFor(hostIndex, id);
    return new this.options.raftNodeClass({
      config: { ...this.options.raft, id, appliedIndex },
      storage,
      prng: this.#raftPrng.fork(),
      logger,
    });
  }

  #loggerFor(hostIndex: number, id: NodeId): RaftLogger {
    const format = (message: string, fields: RaftLogFields): string => {
      let line = `h${hostIndex}/n${id} ${message}`;
      for (const key of Object.keys(fields)) {
        if (key !== 'id') line += ` ${key}=${String(fields[key])}`;
      }
      return line;
    };
    return {
      debug: (message, fields) => {
        if (this.options.isVerbose) this.note(format(message, fields));
      },
      info: (message, fields) => {
        this.note(format(message, fields));
      },
      warn: (message, fields) => {
        this.note(format(message, fields));
      },
    };
  }

  schedule(delay: number, label: string, action: () => void): void {
    this.#queue.push(this.now + Math.max(0, delay), { kind: 'call', label, action });
  }

  #scheduleTick(host: SimHost, delay: number): void {
    this.#queue.push(this.now + delay, { kind: 'tick', host: host.index, life: host.life });
  }

  /** Runs events until virtual time `until` (inclusive) or the agenda is empty. */
  runUntil(until: number): void {
    for (;;) {
      const time = this.#queue.peekTime();
      if (time === undefined || time > until) break;
      const item = this.#queue.pop()!;
      this.now = item.time;
      this.stats.events += 1;
      this.#dispatch(item.event);
    }
    this.now = Math.max(this.now, until);
  }

  #dispatch(event: SimEvent): void {
    switch (event.kind) {
      case 'tick':
        this.#onTick(event.host, event.life);
        return;
      case 'deliver':
        this.#onDeliver(event.fromHost, event.toHost, event.message);
        return;
      case 'sync':
        this.#onSync(event.host, event.life);
        return;
      case 'call':
        event.action();
        return;
    }
  }

  #onTick(hostIndex: number, life: number): void {
    const host = this.hosts[hostIndex]!;
    if (host.life !== life || host.state === 'down') return;
    this.#scheduleTick(host, host.tickPeriod);
    if (host.state === 'paused') return;
    host.node.tick();
    this.#afterStep(host);
  }

  #onDeliver(fromHost: number, toHost: number, message: Message): void {
    const host = this.hosts[toHost]!;
    if (host.state === 'down') return;
    if (!this.network.canReach(fromHost, toHost)) return;
    if (host.state === 'paused') {
      host.heldInbox.push({ fromHost, message });
      return;
    }
    this.stats.messagesDelivered += 1;
    host.node.step(message);
    this.#afterStep(host);
  }

  #onSync(hostIndex: number, life: number): void {
    const host = this.hosts[hostIndex]!;
    if (host.life !== life || host.state === 'down' || host.inflight === undefined) return;
    host.isSyncDone = true;
    if (host.state === 'paused') return; // finished on resume
    this.#finishReady(host);
    this.#afterStep(host);
  }

  // ---------------------------------------------------------------- the host loop

  /** Drains Readys (bounded), then runs the checkers for this host. */
  #afterStep(host: SimHost): void {
    for (let round = 0; round < 64; round++) {
      // Commit checks run before each Ready: the host compacts only up to what it
      // applied, which was committed (and checked) before, so the log is intact here.
      this.#checkCommit(host);
      if (host.state !== 'up' || host.inflight !== undefined || !host.node.hasReady()) break;
      this.#startReady(host);
    }
    this.#check(host);
  }

  #startReady(host: SimHost): void {
    const ready = host.node.ready();
    if (ready.entries.length > 0 || ready.snapshot !== undefined) this.#isElectabilityDirty = true;
    if (ready.snapshot !== undefined) this.#shadowRestore(host, ready.snapshot.metadata.index, decodeSnapshotHash(ready.snapshot.data));
    this.#shadowAppend(host, ready.entries);
    // The real host's one exception (hub/raft maySendBeforePersist): a leader's appends and heartbeats leave before its fsync.
    const persisted = host.disk.storage.initialState().hardState;
    host.isSentEarly = this.options.sendBeforePersist || maySendBeforePersist(ready, host.node.role, persisted);
    host.disk.write({ kind: 'ready', snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState });
    if (host.isSentEarly) {
      for (const message of ready.messages) this.#send(host, message);
    }
    host.inflight = ready;
    host.isSyncDone = false;
    if (ready.mustSync) {
      const latency = this.#diskPrng.between(this.options.diskLatencyMin, this.options.diskLatencyMax);
      this.#queue.push(this.now + latency, { kind: 'sync', host: host.index, life: host.life });
      return;
    }
    // Nothing that needs durability: no fsync wait (the write stays unsynced).
    this.#finishReady(host);
  }

  #finishReady(host: SimHost): void {
    const ready = host.inflight;
    if (ready === undefined) return;
    if (ready.mustSync) host.disk.sync();
    // House rule 8 / thesis §3.8: messages leave only after the write is durable.
    if (!host.isSentEarly) {
      for (const message of ready.messages) this.#send(host, message);
    }
    if (ready.snapshot !== undefined) this.#restoreStateMachine(host, ready.snapshot.metadata.index, ready.snapshot.data, ready.snapshot.metadata.confState);
    for (const entry of ready.committedEntries) this.#apply(host, entry);
    for (const read of ready.readStates) this.#onReadState(host, read.requestId, read.index);
    host.inflight = undefined;
    host.node.advance(ready);
    this.#maybeSnapshot(host);
  }

  #send(host: SimHost, message: Message): void {
    this.stats.messagesSent += 1;
    if (message.type === 'snapshot') this.stats.snapshotsSent += 1;
    const target = this.#hostOwning(message.to);
    if (target === undefined) return;
    const delays = this.network.delaysFor({ from: host.index, to: target.index, prng: this.#netPrng });
    for (const delay of delays) {
      this.#queue.push(this.now + delay, { kind: 'deliver', fromHost: host.index, toHost: target.index, message });
    }
  }

  /** The host that runs or ran `id` (ids are never reused, so at most one). */
  #hostOwning(id: NodeId): SimHost | undefined {
    for (const host of this.hosts) if (host.id === id) return host;
    // An old incarnation's id: deliver to the host that once ran it; its node drops the mail.
    return this.#formerOwner.get(id);
  }

  readonly #formerOwner = new Map<NodeId, SimHost>();
  #isElectabilityDirty = true;

  #apply(host: SimHost, entry: Entry): void {
    if (entry.index <= host.appliedIndex) throw new Error(`${host.name} re-applied ${entry.index}`);
    if (entry.index !== host.appliedIndex + 1) throw new Error(`${host.name} applied ${entry.index} after ${host.appliedIndex}`);
    host.appliedHash = chainHash(host.appliedHash, entry);
    host.appliedIndex = entry.index;
    if (entry.kind === 'conf-change') host.appliedConf = applyConfChange(host.appliedConf, entry.change);
    this.checker.onApply({ id: host.id, index: entry.index, hash: host.appliedHash });
  }

  #restoreStateMachine(host: SimHost, index: number, data: Uint8Array, conf: ConfState): void {
    const hash = decodeSnapshotHash(data);
    this.checker.onRestore({ id: host.id, index, hash });
    host.appliedIndex = index;
    host.appliedHash = hash;
    host.appliedConf = conf;
    host.snapshotIndex = index;
  }

  #maybeSnapshot(host: SimHost): void {
    if (host.appliedIndex - host.snapshotIndex < this.options.snapshotEvery) return;
    const data = encodeSnapshotHash(host.appliedHash);
    const writes: DiskWrite[] = [{ kind: 'snapshot', index: host.appliedIndex, confState: host.appliedConf, data }];
    const compactTo = host.appliedIndex - this.options.compactionKeep;
    if (compactTo > host.disk.storage.firstIndex() - 1) writes.push({ kind: 'compact', index: compactTo });
    for (const write of writes) host.disk.write(write);
    host.snapshotIndex = host.appliedIndex;
  }

  #onReadState(host: SimHost, requestId: number, index: number): void {
    const commitAtIssue = host.pendingReads.get(requestId);
    if (commitAtIssue === undefined) return; // a duplicate answer
    host.pendingReads.delete(requestId);
    this.stats.readsConfirmed += 1;
    this.checker.onReadState({ id: host.id, requestId, index, commitAtIssue });
  }

  // ---------------------------------------------------------------- checkers

  #shadowRestore(host: SimHost, index: number, hash: number): void {
    host.shadowBase = index;
    host.shadowHashes = [hash];
  }

  #shadowAppend(host: SimHost, entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const keep = first.index - host.shadowBase;
    if (keep < 1 || keep > host.shadowHashes.length) {
      throw new Error(`${host.name} shadow log: entries at ${first.index} do not attach to [${host.shadowBase}, ${host.shadowBase + host.shadowHashes.length - 1}]`);
    }
    host.shadowHashes.length = keep;
    for (const entry of entries) {
      const hash = chainHash(host.shadowHashes[host.shadowHashes.length - 1]!, entry);
      host.shadowHashes.push(hash);
      this.checker.onLogEntry({ id: host.id, index: entry.index, term: entry.term, hash });
    }
  }

  #shadowRebuild(host: SimHost): void {
    const storage = host.disk.storage;
    const snapshot = storage.snapshot();
    this.#shadowRestore(host, snapshot.metadata.index, decodeSnapshotHash(snapshot.data));
    const last = storage.lastIndex();
    if (last > snapshot.metadata.index) {
      const entries = storage.entries(snapshot.metadata.index + 1, last + 1, Number.MAX_SAFE_INTEGER);
      this.#shadowAppend(host, entries);
    }
  }

  #checkCommit(host: SimHost): void {
    if (host.state === 'down') return;
    const node = host.node;
    const status = node.status();
    const commit = status.commit;
    if (commit === host.lastCommit) return;
    this.#isElectabilityDirty = true;
    this.checker.onCommit({ id: host.id, nodeTerm: status.term, from: host.lastCommit, to: commit, termAt: (index) => node.inspectTerm(index) });
    host.lastCommit = commit;
  }

  #electabilityView(host: SimHost): ElectabilityView {
    const node = host.node;
    const status = node.status();
    const lastTerm = node.inspectTerm(status.lastIndex) ?? 0;
    return {
      id: host.id,
      lastIndex: status.lastIndex,
      lastTerm,
      voters: status.confState.voters,
      hasConfiguration: status.confState.voters.length > 0,
      holds: (index, term) => {
        if (status.lastIndex < index) return false;
        if (index < status.firstIndex - 1) return true; // inside a snapshot, which only covers committed entries
        return node.inspectTerm(index) === term;
      },
    };
  }

  #checkElectability(): void {
    // Only logs, commit indexes and membership of live nodes matter: skip when none changed.
    if (!this.#isElectabilityDirty) return;
    this.#isElectabilityDirty = false;
    const candidates: ElectabilityView[] = [];
    const acceptors = new Map<NodeId, ElectabilityView>();
    for (const host of this.hosts) {
      if (host.state === 'down') continue;
      const view = this.#electabilityView(host);
      acceptors.set(host.id, view);
      if (view.voters.includes(host.id)) candidates.push(view);
    }
    this.checker.onElectability({ candidates, acceptors });
  }

  #check(host: SimHost): void {
    if (host.state === 'down') return;
    const node = host.node;
    this.#checkCommit(host);
    this.#checkElectability();
    const status = node.status();
    if (status.role === 'leader') {
      const isNew = this.checker.onLeader({
        id: host.id,
        term: status.term,
        firstIndex: status.firstIndex,
        lastIndex: status.lastIndex,
        termAt: (index) => node.inspectTerm(index),
      });
      if (isNew) {
        if (host.id !== this.#lastLeader) this.stats.leaderChanges += 1;
        this.#lastLeader = host.id;
        this.onLeaderElected(host);
      }
    }
  }

  // ---------------------------------------------------------------- faults and clients

  hostById(id: NodeId): SimHost | undefined {
    return this.hosts.find((host) => host.id === id);
  }

  /** Hosts that are up and believe they lead, newest term first. */
  leaders(): SimHost[] {
    const result = this.hosts.filter((host) => host.state === 'up' && host.node.status().role === 'leader');
    result.sort((a, b) => b.node.status().term - a.node.status().term);
    return result;
  }

  /** Proposes `value`; every 4th proposal goes as a batch of two (RaftNode.proposeBatch, as the real host does), with no extra randomness drawn. */
  propose(host: SimHost, value: string): ProposeResult | undefined {
    if (host.state !== 'up') return undefined;
    this.#proposeCalls += 1;
    const data = textEncoder.encode(value);
    const result = this.#proposeCalls % 4 === 0 ? host.node.proposeBatch([data, textEncoder.encode(`${value}.2`)]) : host.node.propose(data);
    if (result.isAccepted) this.stats.proposalsAccepted += 1;
    this.#afterStep(host);
    return result;
  }

  #proposeCalls = 0;

  readIndex(host: SimHost): void {
    if (host.state !== 'up') return;
    this.#readRequestId += 1;
    host.pendingReads.set(this.#readRequestId, this.checker.commitMax);
    host.node.readIndex(this.#readRequestId);
    this.#afterStep(host);
  }

  crash(host: SimHost, options: { isPowerLoss: boolean }): void {
    if (host.state === 'down') return;
    const lost = options.isPowerLoss ? host.disk.crashPower(this.#diskPrng) : host.disk.crashProcess();
    this.note(`FAULT crash ${host.name} ${options.isPowerLoss ? 'power-loss' : 'process'} unsynced-writes-lost=${lost}`);
    this.#down(host);
    this.stats.crashes += 1;
  }

  #down(host: SimHost): void {
    this.#isElectabilityDirty = true;
    host.state = 'down';
    host.life += 1;
    host.inflight = undefined;
    host.heldInbox = [];
    host.pendingReads.clear();
  }

  restart(host: SimHost): void {
    if (host.state !== 'down') return;
    this.#isElectabilityDirty = true;
    host.state = 'up';
    host.life += 1;
    const storage = host.disk.storage;
    const snapshot = storage.snapshot();
    host.node = this.#newNode(host.id, storage, host.index, snapshot.metadata.index);
    host.appliedIndex = snapshot.metadata.index;
    host.appliedHash = decodeSnapshotHash(snapshot.data);
    host.appliedConf = snapshot.metadata.confState;
    host.snapshotIndex = snapshot.metadata.index;
    this.checker.onRestore({ id: host.id, index: host.appliedIndex, hash: host.appliedHash });
    host.lastCommit = 0;
    this.#shadowRebuild(host);
    this.note(`FAULT restart ${host.name} commit=${host.node.status().commit} last=${host.node.status().lastIndex} conf=${formatConfState(host.node.status().confState)}`);
    this.#scheduleTick(host, this.#raftPrng.between(1, host.tickPeriod));
    this.#afterStep(host);
  }

  pause(host: SimHost): void {
    if (host.state !== 'up') return;
    host.state = 'paused';
    this.stats.pauses += 1;
    this.note(`FAULT pause ${host.name}`);
  }

  resume(host: SimHost): void {
    if (host.state !== 'paused') return;
    host.state = 'up';
    this.note(`FAULT resume ${host.name} held=${host.heldInbox.length}`);
    if (host.inflight !== undefined && host.isSyncDone) this.#finishReady(host);
    const held = host.heldInbox;
    host.heldInbox = [];
    for (const item of held) {
      if (host.state !== 'up') break;
      if (!this.network.canReach(item.fromHost, host.index)) continue;
      this.stats.messagesDelivered += 1;
      host.node.step(item.message);
      this.#afterStep(host);
    }
    this.#afterStep(host);
  }

  /**
   * Wipes a host's disk (crashing it) and restarts it blank. The correct host
   * mints a new id; returns [oldId, newId].
   */
  wipe(host: SimHost): [NodeId, NodeId] {
    if (host.state !== 'down') this.#down(host);
    host.disk.wipe();
    this.stats.wipes += 1;
    return this.#reincarnate(host, 'wipe');
  }

  /** Restores a host's disk from its last backup (an older durable image) and restarts it. */
  rollback(host: SimHost): [NodeId, NodeId] | undefined {
    const image = host.backupImage;
    if (image === undefined) return undefined;
    if (host.state !== 'down') this.#down(host);
    host.disk.restore(image);
    this.stats.rollbacks += 1;
    return this.#reincarnate(host, 'rollback');
  }

  takeBackup(host: SimHost): void {
    host.backupImage = host.disk.backup();
  }

  #reincarnate(host: SimHost, reason: string): [NodeId, NodeId] {
    const oldId = host.id;
    let newId = oldId;
    if (!this.options.reuseIdAfterWipe) {
      newId = this.#nextId++;
      if (this.#usedIds.has(newId)) throw new Error(`id ${newId} reused`);
      this.#usedIds.add(newId);
      this.#formerOwner.set(oldId, host);
      host.id = newId;
    }
    this.note(`FAULT ${reason} ${host.name} (was n${oldId})`);
    this.restart(host);
    return [oldId, newId];
  }

  // ---------------------------------------------------------------- membership and leadership

  /** Asks `leader` for one membership change; true if it was appended. */
  proposeConfChange(leader: SimHost, change: { type: 'add-learner' | 'add-voter' | 'remove'; nodeId: NodeId }): boolean {
    if (leader.state !== 'up') return false;
    const result = leader.node.proposeConfChange({ ...change, context: new Uint8Array(0) });
    if (result.isAccepted) {
      this.stats.confChanges += 1;
      this.note(`CONF ${leader.name} proposes ${change.type} n${change.nodeId} at ${result.index}`);
    }
    this.#afterStep(leader);
    return result.isAccepted;
  }

  transferLeadership(leader: SimHost, target: NodeId): void {
    if (leader.state !== 'up') return;
    const result = leader.node.transferLeadership(target);
    if (result.isAccepted) this.stats.transfers += 1;
    this.note(`TRANSFER ${leader.name} -> n${target} ${result.isAccepted ? 'started' : 'refused'}`);
    this.#afterStep(leader);
  }

  /** Heals the network fully. */
  healNetwork(): void {
    this.network.heal();
    this.note('FAULT network healed');
  }
}

export function encodeSnapshotHash(hash: number): Uint8Array {
  return textEncoder.encode(String(hash));
}

export function decodeSnapshotHash(data: Uint8Array): number {
  if (data.length === 0) return 0;
  return Number(textDecoder.decode(data));
}
