/**
 * The data Raft exchanges with its host and its peers: log entries, hard
 * state, snapshots, configurations and messages. Plain readonly data; the
 * host encodes it (cbor-x on the wire, LMDB on disk). Names follow the Raft
 * paper and etcd's raftpb, written here in our own words.
 */

/**
 * A replica's identity: a positive safe integer, unique for the lifetime of
 * the cluster and never reused. A host that starts with a blank (wiped) or
 * rolled-back data directory must mint a NEW id and join as a learner; see
 * README.md "Wiped and rolled-back nodes".
 */
export type NodeId = number;

/** `vote` value meaning "voted for nobody in this term". */
export const NO_NODE: NodeId = 0;

/** A membership change; one voter at a time (single-server changes, thesis §4.1). */
export type ConfChange = {
  /** `add-learner` adds a non-voting member; `add-voter` adds a voter or promotes a learner; `remove` removes either. */
  readonly type: 'add-learner' | 'add-voter' | 'remove';
  readonly nodeId: NodeId;
  /** Opaque host data (for example the replica's address); Raft never reads it. */
  readonly context: Uint8Array;
};

/** A cluster configuration. Voters and learners are disjoint and sorted. */
export type ConfState = {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
};

/** An application entry; an empty `data` is the leader's no-op. */
export type NormalEntry = {
  readonly kind: 'normal';
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
};

/** A membership change entry; it takes effect as soon as it is in a log (thesis §4.1). */
export type ConfChangeEntry = {
  readonly kind: 'conf-change';
  readonly index: number;
  readonly term: number;
  readonly change: ConfChange;
};

export type Entry = NormalEntry | ConfChangeEntry;

/** The state that must be durable before any message that depends on it is sent. */
export type HardState = {
  readonly term: number;
  /** The candidate voted for in `term`, or {@link NO_NODE}. */
  readonly vote: NodeId;
  /** Highest index known committed. Persisting it is an optimisation; losing it is safe. */
  readonly commit: number;
};

export type SnapshotMetadata = {
  /** Last log index covered by the snapshot. */
  readonly index: number;
  /** Term of the entry at `index`. */
  readonly term: number;
  /** The configuration in force at `index`. */
  readonly confState: ConfState;
};

/** A state machine image at `metadata.index`; `data` is opaque to Raft. */
export type Snapshot = {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
};

/** Fields every peer message carries. */
type MessageBase = {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's current term (for a pre-vote request: the term it would campaign in). */
  readonly term: number;
};

/** AppendEntries (paper Fig. 2): entries after (index, logTerm), plus the leader's commit index. */
export type AppendMessage = MessageBase & {
  readonly type: 'append';
  readonly index: number;
  readonly logTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
};

/**
 * Reply to `append` or `snapshot`. On success `index` is the last index the
 * follower now holds durably. On rejection `index` echoes the rejected
 * `append.index`, and (`rejectHint`, `logTerm`) is the follower's guess at a
 * matching point: the largest index ≤ min(append.index, its last index) whose
 * term is ≤ append.logTerm (fast backtracking, thesis §5.4.1 "optimization").
 * A reply with only a higher `term` (index 0) tells a stale leader to step down.
 */
export type AppendResponseMessage = MessageBase & {
  readonly type: 'append-resp';
  readonly index: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly logTerm: number;
};

/** Leader heartbeat. `commit` is capped at the follower's known match; `context` is a ReadIndex round (0 = none). */
export type HeartbeatMessage = MessageBase & {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: number;
};

export type HeartbeatResponseMessage = MessageBase & {
  readonly type: 'heartbeat-resp';
  readonly context: number;
};

/**
 * RequestVote (paper §5.2) or PreVote (thesis §9.6). (index, logTerm) is the
 * candidate's last entry. `force` is set only by a leadership transfer and
 * overrides the check-quorum lease.
 */
export type VoteMessage = MessageBase & {
  readonly type: 'vote' | 'pre-vote';
  readonly index: number;
  readonly logTerm: number;
  readonly force: boolean;
};

export type VoteResponseMessage = MessageBase & {
  readonly type: 'vote-resp' | 'pre-vote-resp';
  readonly reject: boolean;
};

/** InstallSnapshot (paper §7), sent whole. */
export type SnapshotMessage = MessageBase & {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
};

/** Leadership transfer (thesis §3.10): "campaign now, skipping pre-vote and the lease". */
export type TimeoutNowMessage = MessageBase & {
  readonly type: 'timeout-now';
};

/** A follower forwarding a linearizable read to its leader (thesis §6.4). */
export type ReadIndexMessage = MessageBase & {
  readonly type: 'read-index';
  readonly requestId: number;
};

export type ReadIndexResponseMessage = MessageBase & {
  readonly type: 'read-index-resp';
  readonly requestId: number;
  readonly index: number;
};

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

export type MessageType = Message['type'];

/** The closed set of message types, for exhaustive tables. */
export const MESSAGE_TYPES = [
  'append',
  'append-resp',
  'heartbeat',
  'heartbeat-resp',
  'vote',
  'vote-resp',
  'pre-vote',
  'pre-vote-resp',
  'snapshot',
  'timeout-now',
  'read-index',
  'read-index-resp',
] as const satisfies readonly MessageType[];

/** A linearizable read point: serve request `requestId` once applied ≥ `index`. */
export type ReadState = {
  readonly requestId: number;
  readonly index: number;
};

/** Roles (paper §5.1, plus the pre-vote phase of thesis §9.6). */
export const Role = {
  Follower: 'follower',
  PreCandidate: 'pre-candidate',
  Candidate: 'candidate',
  Leader: 'leader',
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** Volatile state the host may want to watch (who leads, our role). */
export type SoftState = {
  readonly lead: NodeId;
  readonly role: Role;
};

/** Approximate in-memory size of an entry, for byte limits. */
export function entryBytes(entry: Entry): number {
  const ENTRY_OVERHEAD_BYTES = 24;
  if (entry.kind === 'normal') return ENTRY_OVERHEAD_BYTES + entry.data.length;
  return ENTRY_OVERHEAD_BYTES + 16 + entry.change.context.length;
}
