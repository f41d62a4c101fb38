/**
 * One seeded simulation run of a Raft cluster under faults (the VOPR idea,
 * RELIABILITY.md §2.4 and §2.7 B).
 *
 * Method. The seed picks a cluster (3 or 5 hosts), Raft settings, and a
 * random subset of fault types ("swarm testing": each seed enables only some
 * faults, which reaches corners that all-faults-on never does). A safety
 * phase then injects those faults while clients propose and read; the
 * checkers in harness/checkers.ts run after every event. Then everything
 * heals (network calm, all hosts restarted and resumed) and a liveness phase
 * requires, within a bound, a leader that commits a new client proposal and
 * every member applying it.
 *
 * Same seed → same run → byte-identical transcript.
 */
import { SeededPrng } from '../../core/util/prng.ts';
import type { NodeId } from '../../hub/raft/index.ts';
import { RaftNode } from '../../hub/raft/index.ts';
import { SafetyViolation } from './harness/checkers.ts';
import type { RaftNodeClass, SimClusterOptions, SimHost, SimStats } from './harness/sim-cluster.ts';
import { SIM_CLUSTER_DEFAULTS, SimCluster } from './harness/sim-cluster.ts';
import { CALM_NETWORK } from './harness/sim-network.ts';

export type SimBugs = {
  /** A wiped or rolled-back host rejoins under its old id (the Jepsen NATS finding). */
  readonly reuseIdAfterWipe: boolean;
  /** The host sends messages before the Ready's write is durable. */
  readonly sendBeforePersist: boolean;
};

export type SimRunOptions = {
  readonly seed: number;
  readonly isTranscriptOn: boolean;
  readonly isVerbose: boolean;
  readonly bugs: SimBugs;
  /** The RaftNode implementation under test (a mutant in the mutation tests). */
  readonly raftNodeClass: RaftNodeClass;
  /** Virtual time of the fault phase. */
  readonly chaosSteps: number;
  /** Virtual time the healed cluster has to show progress. */
  readonly livenessSteps: number;
};

export const SIM_RUN_DEFAULTS = {
  isTranscriptOn: false,
  isVerbose: false,
  bugs: { reuseIdAfterWipe: false, sendBeforePersist: false },
  raftNodeClass: RaftNode,
  chaosSteps: 3000,
  livenessSteps: 3000,
} as const satisfies Omit<SimRunOptions, 'seed'>;

export type SimRunResult = {
  readonly seed: number;
  readonly isOk: boolean;
  /** What failed: a safety violation, an assertion in the core, or liveness. */
  readonly failure: string | undefined;
  readonly profile: string;
  readonly transcript: readonly string[];
  readonly stats: SimStats;
  readonly checks: number;
  readonly commitMax: number;
  readonly endTime: number;
};

const FAULT_KINDS = [
  'crash',
  'power-loss',
  'pause',
  'partition',
  'asymmetric',
  'bridge',
  'isolate-leader',
  'lossy',
  'duplicate',
  'reorder',
  'wipe',
  'rollback',
  'churn',
  'transfer',
  'leader-flap',
] as const;
type FaultKind = (typeof FAULT_KINDS)[number];

type Profile = {
  readonly hostCount: number;
  readonly faults: readonly FaultKind[];
  readonly cluster: Omit<SimClusterOptions, 'seed' | 'isTranscriptOn' | 'isVerbose' | 'reuseIdAfterWipe' | 'sendBeforePersist' | 'raftNodeClass'>;
  readonly faultGapMax: number;
  /** Adversarial elections: leaders flap often and links drop more. */
  readonly adversarial: boolean;
};

/**
 * "Adversarial elections" (a quarter of the seeds): three hosts, one entry per
 * append, lossy links and leaders that die right after winning. Short-lived
 * leaders leave conflicting uncommitted suffixes in different terms, which is
 * the raw material of the paper's Figure 8; uniform swarm seeds almost never
 * line those up.
 */
function chooseAdversarialProfile(prng: SeededPrng): Profile {
  const raft = { ...SIM_CLUSTER_DEFAULTS.raft, heartbeatTicks: prng.between(1, 2), preVote: prng.chance(0.5), checkQuorum: prng.chance(0.5), inflightMsgsMax: prng.between(1, 4), msgBytesMax: 1 };
  return {
    hostCount: 3,
    faults: ['leader-flap', 'isolate-leader', 'isolate-leader', 'lossy', 'crash', 'partition'],
    faultGapMax: prng.between(30, 120),
    adversarial: true,
    cluster: { ...SIM_CLUSTER_DEFAULTS, hostCount: 3, raft, diskLatencyMax: prng.between(1, 4), snapshotEvery: prng.between(8, 40), compactionKeep: prng.between(0, 8) },
  };
}

function chooseProfile(prng: SeededPrng): Profile {
  if (prng.chance(0.25)) return chooseAdversarialProfile(prng);
  const hostCount = prng.chance(0.6) ? 3 : 5;
  const faults = FAULT_KINDS.filter((kind) => (kind === 'churn' && hostCount === 3 ? false : prng.chance(0.5)));
  const raft = {
    ...SIM_CLUSTER_DEFAULTS.raft,
    heartbeatTicks: prng.between(1, 3),
    preVote: prng.chance(0.8),
    checkQuorum: prng.chance(0.8),
    inflightMsgsMax: prng.between(1, 8),
    // A third of the seeds send one entry per append: old-term entries are then
    // acknowledged before a new leader's no-op, the setting of the paper's Figure 8.
    msgBytesMax: prng.chance(0.35) ? 1 : prng.between(64, 1024),
  };
  return {
    hostCount,
    faults,
    faultGapMax: prng.between(60, 400),
    adversarial: false,
    cluster: {
      ...SIM_CLUSTER_DEFAULTS,
      hostCount,
      raft,
      diskLatencyMax: prng.between(1, 8),
      snapshotEvery: prng.between(4, 40),
      compactionKeep: prng.between(0, 8),
    },
  };
}

function describeProfile(profile: Profile): string {
  const raft = profile.cluster.raft;
  return [
    `hosts=${profile.hostCount}${profile.adversarial ? ' adversarial' : ''}`,
    `faults=${profile.faults.length === 0 ? 'none' : profile.faults.join(',')}`,
    `heartbeat=${raft.heartbeatTicks}`,
    `preVote=${raft.preVote}`,
    `checkQuorum=${raft.checkQuorum}`,
    `inflight=${raft.inflightMsgsMax}`,
    `msgBytes=${raft.msgBytesMax}`,
    `snapshotEvery=${profile.cluster.snapshotEvery}`,
    `keep=${profile.cluster.compactionKeep}`,
    `disk=${profile.cluster.diskLatencyMin}..${profile.cluster.diskLatencyMax}`,
  ].join(' ');
}

/** Runs one seed to completion. Never throws for a protocol failure: it reports it. */
export function runSeed(options: SimRunOptions): SimRunResult {
  const prng = new SeededPrng(options.seed);
  const profile = chooseProfile(prng.fork());
  const cluster = new SimCluster({
    ...profile.cluster,
    seed: prng.nextU32(),
    isTranscriptOn: options.isTranscriptOn,
    isVerbose: options.isVerbose,
    reuseIdAfterWipe: options.bugs.reuseIdAfterWipe,
    sendBeforePersist: options.bugs.sendBeforePersist,
    raftNodeClass: options.raftNodeClass,
  });
  const run = new SimRun({ cluster, profile, prng: prng.fork(), options });
  if (options.isTranscriptOn) cluster.transcript.unshift(`SEED=${options.seed} ${describeProfile(profile)}`);
  let failure: string | undefined;
  try {
    run.execute();
  } catch (error) {
    if (error instanceof SafetyViolation) failure = `safety: ${error.message}`;
    else if (error instanceof Error) failure = `${error.name}: ${error.message}\n${error.stack ?? ''}`;
    else failure = String(error);
    cluster.note(`FAILED ${failure.split('\n')[0] ?? ''}`);
  }
  if (failure === undefined) failure = run.livenessFailure;
  if (failure !== undefined && run.livenessFailure === failure) cluster.note(`FAILED ${failure}`);
  cluster.note(`END ${JSON.stringify(cluster.stats)} commitMax=${cluster.checker.commitMax}`);
  return {
    seed: options.seed,
    isOk: failure === undefined,
    failure,
    profile: describeProfile(profile),
    transcript: cluster.transcript,
    stats: cluster.stats,
    checks: cluster.checker.checkCount,
    commitMax: cluster.checker.commitMax,
    endTime: cluster.now,
  };
}

class SimRun {
  readonly #cluster: SimCluster;
  readonly #profile: Profile;
  readonly #prng: SeededPrng;
  readonly #options: SimRunOptions;
  /** Hosts that should be voters (the operator steers the configuration toward them). */
  readonly #desiredHosts: Set<number>;
  #isChaos = true;
  #proposalCount = 0;
  /** Post-heal proposals: (index, term) of each accepted one. */
  readonly #liveProposals: { index: number; term: number }[] = [];
  livenessFailure: string | undefined = undefined;

  constructor(options: { cluster: SimCluster; profile: Profile; prng: SeededPrng; options: SimRunOptions }) {
    this.#cluster = options.cluster;
    this.#profile = options.profile;
    this.#prng = options.prng;
    this.#options = options.options;
    this.#desiredHosts = new Set(this.#cluster.hosts.map((host) => host.index));
  }

  execute(): void {
    const cluster = this.#cluster;
    this.#scheduleClients();
    this.#scheduleFaults();
    this.#scheduleOperator();
    cluster.runUntil(this.#options.chaosSteps);
    this.#isChaos = false;
    this.#heal();
    const deadline = this.#options.chaosSteps + this.#options.livenessSteps;
    while (cluster.now < deadline) {
      cluster.runUntil(cluster.now + 50);
      if (this.#isLive()) {
        cluster.note(`LIVE leader=${cluster.leaders()[0]?.name ?? '-'} commitMax=${cluster.checker.commitMax}`);
        return;
      }
    }
    this.livenessFailure = `liveness: no progress within ${this.#options.livenessSteps} steps after healing (${this.#livenessReport()})`;
  }

  // ---------------------------------------------------------------- clients

  #scheduleClients(): void {
    const cluster = this.#cluster;
    const propose = (): void => {
      const leader = cluster.leaders()[0];
      const target = leader !== undefined && this.#prng.chance(0.9) ? leader : this.#randomHost((host) => host.state === 'up');
      if (target !== undefined) {
        this.#proposalCount += 1;
        const value = `v${this.#proposalCount}`;
        const result = cluster.propose(target, value);
        if (result !== undefined && result.isAccepted && !this.#isChaos) {
          this.#liveProposals.push({ index: result.index, term: result.term });
        }
      }
      cluster.schedule(this.#prng.between(3, 25), 'propose', propose);
    };
    const read = (): void => {
      const target = this.#randomHost((host) => host.state === 'up');
      if (target !== undefined) cluster.readIndex(target);
      cluster.schedule(this.#prng.between(20, 80), 'read', read);
    };
    cluster.schedule(this.#prng.between(1, 20), 'propose', propose);
    cluster.schedule(this.#prng.between(1, 80), 'read', read);
  }

  #randomHost(filter: (host: SimHost) => boolean): SimHost | undefined {
    const candidates = this.#cluster.hosts.filter(filter);
    if (candidates.length === 0) return undefined;
    return candidates[this.#prng.between(0, candidates.length - 1)];
  }

  // ---------------------------------------------------------------- faults

  #scheduleFaults(): void {
    if (this.#profile.faults.length === 0) return;
    const cluster = this.#cluster;
    if (this.#profile.faults.includes('leader-flap')) {
      cluster.onLeaderElected = (leader) => this.#flapLeader(leader);
    }
    const inject = (): void => {
      if (!this.#isChaos) return;
      const kind = this.#profile.faults[this.#prng.between(0, this.#profile.faults.length - 1)]!;
      this.#inject(kind);
      // Backups for later rollbacks: an older durable image of a random host.
      const backup = this.#randomHost(() => true);
      if (backup !== undefined && this.#prng.chance(0.3)) cluster.takeBackup(backup);
      cluster.schedule(this.#prng.between(10, this.#profile.faultGapMax), 'fault', inject);
    };
    cluster.schedule(this.#prng.between(50, 300), 'fault', inject);
  }

  #inject(kind: FaultKind): void {
    switch (kind) {
      case 'crash':
      case 'power-loss':
        this.#crash(kind === 'power-loss');
        return;
      case 'pause':
        this.#pause();
        return;
      case 'partition':
      case 'asymmetric':
      case 'bridge':
      case 'isolate-leader':
        this.#partition(kind);
        return;
      case 'lossy':
      case 'duplicate':
      case 'reorder':
        this.#degradeNetwork(kind);
        return;
      case 'wipe':
      case 'rollback':
        this.#wipeOrRollback(kind);
        return;
      case 'churn':
        this.#churn();
        return;
      case 'transfer':
        this.#transfer();
        return;
      case 'leader-flap':
        return; // driven by elections, see #flapLeader
    }
  }

  /**
   * Adversarial timing (VOPR-style): a leader that has just been elected dies
   * or is cut off a few steps later, while its first appends (older-term
   * entries plus its no-op) are half delivered. This is where Figure 8 of the
   * paper and the "commit only up to what the leader vouched for" rule bite.
   */
  #flapLeader(leader: SimHost): void {
    const cluster = this.#cluster;
    if (!this.#isChaos || !this.#prng.chance(this.#profile.adversarial ? 0.7 : 0.35)) return;
    const life = leader.life;
    // Either before its first appends land (its new entries stay on it alone),
    // or inside the repair window (old entries sent, its no-op not yet spread).
    const delay = this.#prng.chance(0.4) ? this.#prng.between(0, 2) : this.#prng.between(6, 40);
    const isCrash = this.#prng.chance(this.#profile.adversarial ? 0.25 : 0.5);
    cluster.schedule(delay, 'flap', () => {
      if (!this.#isChaos || leader.life !== life || leader.state !== 'up') return;
      if (isCrash) {
        cluster.crash(leader, { isPowerLoss: this.#prng.chance(0.5) });
        const downLife = leader.life;
        cluster.schedule(this.#prng.between(20, 300), 'restart', () => {
          if (leader.life === downLife) cluster.restart(leader);
        });
        return;
      }
      cluster.network.partition([leader.index]);
      cluster.stats.partitions += 1;
      cluster.note(`FAULT network ${cluster.network.describe()} (leader flap)`);
      cluster.schedule(this.#profile.adversarial ? this.#prng.between(20, 150) : this.#prng.between(20, 300), 'heal', () => {
        if (this.#isChaos) cluster.healNetwork();
      });
    });
  }

  #crash(isPowerLoss: boolean): void {
    const cluster = this.#cluster;
    const host = this.#randomHost((candidate) => candidate.state !== 'down');
    if (host === undefined) return;
    cluster.crash(host, { isPowerLoss });
    const life = host.life;
    cluster.schedule(this.#prng.between(20, 600), 'restart', () => {
      if (host.life === life) cluster.restart(host);
    });
  }

  #pause(): void {
    const cluster = this.#cluster;
    const preferLeader = this.#prng.chance(0.5) ? cluster.leaders()[0] : undefined;
    const host = preferLeader ?? this.#randomHost((candidate) => candidate.state === 'up');
    if (host === undefined || host.state !== 'up') return;
    cluster.pause(host);
    cluster.schedule(this.#prng.between(20, 400), 'resume', () => cluster.resume(host));
  }

  #partition(kind: 'partition' | 'asymmetric' | 'bridge' | 'isolate-leader'): void {
    const cluster = this.#cluster;
    const network = cluster.network;
    const count = cluster.hosts.length;
    const order = this.#shuffledHosts();
    if (kind === 'partition') {
      network.partition(order.slice(0, this.#prng.between(1, count - 1)));
    } else if (kind === 'isolate-leader') {
      const leader = cluster.leaders()[0];
      network.partition([leader?.index ?? order[0]!]);
    } else if (kind === 'asymmetric') {
      const links: [number, number][] = [];
      for (let a = 0; a < count; a++) {
        for (let b = 0; b < count; b++) if (a !== b && this.#prng.chance(0.3)) links.push([a, b]);
      }
      network.blockOneWay(links);
    } else {
      const bridgeHost = order[0]!;
      const rest = order.slice(1);
      const split = this.#prng.between(1, rest.length - 1);
      network.bridge({ left: rest.slice(0, split), right: rest.slice(split), bridgeHost });
    }
    cluster.stats.partitions += 1;
    cluster.note(`FAULT network ${network.describe()}`);
    cluster.schedule(this.#prng.between(50, 800), 'heal', () => {
      if (this.#isChaos) cluster.healNetwork();
    });
  }

  #shuffledHosts(): number[] {
    const order = this.#cluster.hosts.map((host) => host.index);
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.#prng.between(0, i);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  }

  #degradeNetwork(kind: 'lossy' | 'duplicate' | 'reorder'): void {
    const cluster = this.#cluster;
    const network = cluster.network;
    const profile = { ...network.profile };
    if (kind === 'lossy') profile.lossProbability = this.#prng.between(1, 25) / 100;
    if (kind === 'duplicate') profile.duplicateProbability = this.#prng.between(1, 15) / 100;
    if (kind === 'reorder') {
      profile.delayMax = this.#prng.between(4, 12);
      profile.delaySpikeProbability = this.#prng.between(2, 30) / 100;
      profile.delaySpikeMax = this.#prng.between(10, 250);
    }
    network.profile = profile;
    cluster.note(`FAULT network profile ${JSON.stringify(profile)}`);
    cluster.schedule(this.#prng.between(100, 1000), 'calm', () => {
      if (this.#isChaos) network.profile = CALM_NETWORK;
    });
  }

  /** A wipe or rollback is injected only when the previous one has been repaired (one suspect replica at a time). */
  #wipeOrRollback(kind: 'wipe' | 'rollback'): void {
    const cluster = this.#cluster;
    if (!this.#isConfigurationSettled()) return;
    const host = this.#randomHost(() => true);
    if (host === undefined) return;
    if (kind === 'wipe') cluster.wipe(host);
    else cluster.rollback(host);
  }

  /** The leader's configuration is exactly the desired voters, all under their current ids. */
  #isConfigurationSettled(): boolean {
    const leader = this.#cluster.leaders()[0];
    if (leader === undefined) return false;
    const status = leader.node.status();
    const conf = status.confState;
    // Committed, too: an uncommitted change can vanish with its leader.
    if (status.commit < status.confIndex || conf.learners.length > 0) return false;
    const desired = [...this.#desiredHosts].map((index) => this.#cluster.hosts[index]!.id).sort((a, b) => a - b);
    return desired.length === conf.voters.length && desired.every((id, i) => conf.voters[i] === id);
  }

  #churn(): void {
    const hosts = this.#cluster.hosts;
    if (this.#desiredHosts.size > 3 && this.#prng.chance(0.5)) {
      const members = [...this.#desiredHosts];
      const removed = members[this.#prng.between(0, members.length - 1)]!;
      this.#desiredHosts.delete(removed);
      this.#cluster.note(`CHURN desire removal of h${removed}`);
    } else if (this.#desiredHosts.size < hosts.length) {
      const outside = hosts.filter((host) => !this.#desiredHosts.has(host.index));
      const added = outside[this.#prng.between(0, outside.length - 1)]!;
      this.#desiredHosts.add(added.index);
      this.#cluster.note(`CHURN desire addition of h${added.index}`);
    }
  }

  #transfer(): void {
    const cluster = this.#cluster;
    const leader = cluster.leaders()[0];
    if (leader === undefined) return;
    const voters = leader.node.status().confState.voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    cluster.transferLeadership(leader, voters[this.#prng.between(0, voters.length - 1)]!);
  }

  // ---------------------------------------------------------------- operator

  /**
   * The operator steers the configuration toward the desired voters one
   * single-server change at a time, declaratively (re-derived from the
   * leader's latest configuration each round, so lost proposals are harmless):
   * add missing replicas as learners, remove stale voters (old incarnations,
   * unwanted hosts), promote caught-up learners, remove stale learners.
   */
  #scheduleOperator(): void {
    const cluster = this.#cluster;
    const operate = (): void => {
      this.#operate();
      cluster.schedule(this.#prng.between(20, 80), 'operator', operate);
    };
    cluster.schedule(this.#prng.between(20, 80), 'operator', operate);
  }

  #operate(): void {
    const cluster = this.#cluster;
    const leader = cluster.leaders()[0];
    if (leader === undefined) return;
    const status = leader.node.status();
    const conf = status.confState;
    const desired: NodeId[] = [...this.#desiredHosts].map((index) => cluster.hosts[index]!.id);
    const members = [...conf.voters, ...conf.learners];
    const missing = desired.find((id) => !members.includes(id));
    if (missing !== undefined) {
      cluster.proposeConfChange(leader, { type: 'add-learner', nodeId: missing });
      return;
    }
    // Dead incarnations first: removing a live voter while a dead one stays can
    // leave a configuration without a quorum (the core refuses that anyway).
    const staleVoters = conf.voters.filter((id) => !desired.includes(id));
    const staleVoter = staleVoters.find((id) => cluster.hostById(id) === undefined) ?? staleVoters[0];
    if (staleVoter !== undefined) {
      cluster.proposeConfChange(leader, { type: 'remove', nodeId: staleVoter });
      return;
    }
    for (const id of conf.learners) {
      if (!desired.includes(id)) continue;
      const progress = status.progress.find((entry) => entry.id === id);
      if (progress !== undefined && progress.match + 4 >= status.commit) {
        cluster.proposeConfChange(leader, { type: 'add-voter', nodeId: id });
        return;
      }
    }
    const staleLearner = conf.learners.find((id) => !desired.includes(id));
    if (staleLearner !== undefined) cluster.proposeConfChange(leader, { type: 'remove', nodeId: staleLearner });
  }

  // ---------------------------------------------------------------- liveness

  #heal(): void {
    const cluster = this.#cluster;
    cluster.note('HEAL network calm, all hosts up');
    cluster.network.profile = CALM_NETWORK;
    cluster.healNetwork();
    for (const host of cluster.hosts) {
      if (host.state === 'paused') cluster.resume(host);
      if (host.state === 'down') cluster.restart(host);
    }
  }

  /** A leader committed a post-heal proposal and every member up has applied it. */
  #isLive(): boolean {
    const cluster = this.#cluster;
    const leader = cluster.leaders()[0];
    if (leader === undefined) return false;
    const committed = this.#liveProposals.find((proposal) => cluster.checker.leaderOf(proposal.term) !== undefined && this.#isCommitted(proposal));
    if (committed === undefined) return false;
    const conf = leader.node.status().confState;
    for (const id of [...conf.voters, ...conf.learners]) {
      const host = cluster.hostById(id);
      if (host === undefined) continue; // an old incarnation still listed; the operator removes it
      if (host.state !== 'up' || host.appliedIndex < committed.index) return false;
    }
    return true;
  }

  #isCommitted(proposal: { index: number; term: number }): boolean {
    for (const host of this.#cluster.hosts) {
      if (host.state === 'down' || host.node.status().commit < proposal.index) continue;
      if (host.node.inspectTerm(proposal.index) === proposal.term) return true;
    }
    return false;
  }

  #livenessReport(): string {
    const cluster = this.#cluster;
    return cluster.hosts
      .map((host) => {
        const status = host.node.status();
        return `${host.name} ${host.state} ${status.role} term=${status.term} commit=${status.commit} applied=${host.appliedIndex} last=${status.lastIndex}`;
      })
      .join('; ');
  }
}
