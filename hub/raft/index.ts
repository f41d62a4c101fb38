/**
 * hub/raft: Raft as a pure state machine. See README.md for the design and
 * the host's contract. Imports nothing but core/util and itself (enforced by
 * test/hub/raft/purity.test.ts).
 */
export { applyConfChange, confStateOf, EMPTY_CONF_STATE, formatConfState, isMember, isVoter } from './conf-state.ts';
export type { RaftConfig } from './config.ts';
export { RAFT_APPLY_BYTES_MAX, RAFT_CONFIG_DEFAULTS, RAFT_MSG_BYTES_MAX, RAFT_PENDING_READS_MAX, raftConfigProblem } from './config.ts';
export type { RaftLogFields, RaftLogger } from './logger.ts';
export { silentRaftLogger } from './logger.ts';
export type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Snapshot,
  SnapshotMetadata,
  SoftState,
} from './messages.ts';
export { entryBytes, MESSAGE_TYPES, NO_NODE, Role } from './messages.ts';
export type { FollowerStatus, RaftNodeOptions, RaftStatus } from './node.ts';
export { RaftNode } from './node.ts';
export { RAFT_INFLIGHT_MSGS_MAX } from './progress.ts';
export type { ProposalRefusal, ProposeResult } from './raft.ts';
export type { Ready } from './ready.ts';
export { maySendBeforePersist } from './ready.ts';
export type { InitialState, LogStorage } from './storage.ts';
export { assertAppendable, assertEntriesRange, bootstrapEntries, collectEntries, MemoryLogStorage, snapshotMetadataAt } from './storage.ts';
