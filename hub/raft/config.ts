/**
 * RaftNode configuration. Every field is explicit (TigerBeetle: no implicit
 * library defaults); {@link RAFT_CONFIG_DEFAULTS} holds recommended values the
 * host spreads in on purpose.
 */
import type { NodeId } from './messages.ts';
import { RAFT_INFLIGHT_MSGS_MAX } from './progress.ts';

/** Largest entries payload per append message (bytes); at least one entry is always sent. */
export const RAFT_MSG_BYTES_MAX = 64 * 1024;

/** Largest batch of committed entries per Ready (bytes); at least one entry is always returned. */
export const RAFT_APPLY_BYTES_MAX = 1024 * 1024;

/** Unconfirmed ReadIndex requests the leader holds before refusing more. */
export const RAFT_PENDING_READS_MAX = 1024;

export type RaftConfig = {
  /** This replica's id: unique, never reused (README.md "Wiped and rolled-back nodes"). */
  readonly id: NodeId;
  /**
   * Ticks without hearing from a leader before a follower campaigns; the
   * actual timeout is drawn from [electionTicks, 2 × electionTicks − 1] on
   * every reset (paper §5.2 randomized timeouts). Also the check-quorum period
   * and the leadership-transfer deadline. Must exceed heartbeatTicks, ideally
   * by 10× (etcd's guidance), so a lost heartbeat or two does not start an
   * election.
   */
  readonly electionTicks: number;
  /** Ticks between leader heartbeats. */
  readonly heartbeatTicks: number;
  /**
   * Pre-vote (thesis §9.6): before raising its term a node asks whether it
   * could win. Stops a partitioned node from disrupting the cluster with an
   * inflated term when it returns.
   */
  readonly preVote: boolean;
  /**
   * Check-quorum (thesis §6.2): a leader that has not heard from a majority in
   * an election timeout steps down, and a follower that heard from a leader
   * within the timeout ignores vote requests (the "lease").
   */
  readonly checkQuorum: boolean;
  /** Flow-control window per follower, in messages (≤ {@link RAFT_INFLIGHT_MSGS_MAX} recommended). */
  readonly inflightMsgsMax: number;
  /** Entry bytes per append message. */
  readonly msgBytesMax: number;
  /** Committed entry bytes per Ready. */
  readonly applyBytesMax: number;
  /**
   * The index the host's state machine reflects at start: the storage
   * snapshot's index if it restores from that snapshot (the usual case), or a
   * higher index if its state machine is durable by itself. Entries up to it
   * are not handed out again in committedEntries.
   */
  readonly appliedIndex: number;
};

export const RAFT_CONFIG_DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  inflightMsgsMax: RAFT_INFLIGHT_MSGS_MAX,
  msgBytesMax: RAFT_MSG_BYTES_MAX,
  applyBytesMax: RAFT_APPLY_BYTES_MAX,
  appliedIndex: 0,
} as const satisfies Omit<RaftConfig, 'id'>;

/** Returns a description of what is wrong with `config`, or undefined if it is usable. */
export function raftConfigProblem(config: RaftConfig): string | undefined {
  if (!Number.isSafeInteger(config.id) || config.id <= 0) return `id must be a positive integer, got ${config.id}`;
  if (!Number.isSafeInteger(config.heartbeatTicks) || config.heartbeatTicks <= 0) return 'heartbeatTicks must be a positive integer';
  if (!Number.isSafeInteger(config.electionTicks) || config.electionTicks <= config.heartbeatTicks) {
    return 'electionTicks must be an integer greater than heartbeatTicks';
  }
  if (!Number.isSafeInteger(config.inflightMsgsMax) || config.inflightMsgsMax <= 0) return 'inflightMsgsMax must be a positive integer';
  if (!Number.isSafeInteger(config.msgBytesMax) || config.msgBytesMax <= 0) return 'msgBytesMax must be a positive integer';
  if (!Number.isSafeInteger(config.applyBytesMax) || config.applyBytesMax <= 0) return 'applyBytesMax must be a positive integer';
  if (!Number.isSafeInteger(config.appliedIndex) || config.appliedIndex < 0) return 'appliedIndex must be a non-negative integer';
  return undefined;
}
