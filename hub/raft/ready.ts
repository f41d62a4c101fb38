/**
 * Ready: everything the host must do, in order, before calling advance()
 * (STYLE.md house rule 1; etcd `node.go` Ready, in our own words):
 *
 * 1. persist `snapshot` (if any), then `entries` (overwriting any existing
 *    suffix from `entries[0].index`), then `hardState` (if any), as one
 *    atomic write, and if `mustSync` wait until it is durable (fsync);
 * 2. only then send `messages`: vote grants and append acknowledgements in
 *    them promise that this state is on disk (thesis §3.8);
 * 3. apply `snapshot` to the state machine, then `committedEntries` in order;
 *    serve `readStates` once the applied index reaches their index;
 * 4. call `advance(ready)`.
 *
 * Only one Ready is outstanding at a time: `ready()` may not be called again
 * until `advance()`. The node keeps accepting ticks, messages and proposals
 * meanwhile; their effects appear in the next Ready.
 */
import type { Entry, HardState, Message, ReadState, Role, Snapshot, SoftState } from './messages.ts';

export type Ready = {
  /** Changed volatile state (role, leader), for the host's information. */
  readonly softState?: SoftState;
  /** The hard state to persist, present when it changed. */
  readonly hardState?: HardState;
  /** Entries to append durably; they may overwrite an uncommitted suffix. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader: persist it, then restore the state machine from it. */
  readonly snapshot?: Snapshot;
  /** To send after the write above is durable. */
  readonly messages: readonly Message[];
  /** Committed entries to apply, in order, after the write above is durable. */
  readonly committedEntries: readonly Entry[];
  /** Confirmed ReadIndex requests. */
  readonly readStates: readonly ReadState[];
  /** Whether the write must be fsynced before sending: false only when nothing but the commit index changed. */
  readonly mustSync: boolean;
};

/**
 * The one exception to "send after the write is durable" (thesis §10.2.1): a leader may send
 * its appends and heartbeats while its own write is in flight. They promise nothing about
 * the leader's disk: the leader counts itself toward a commit only once `advance()` reports
 * its entries persisted, and its term was durable before it campaigned. So this holds only
 * when the node leads (`role`), the Ready installs no snapshot, changes neither term nor vote
 * against `persisted` (the last hard state handed to storage), and holds nothing but
 * `append` and `heartbeat` messages. The host and the simulator both use this rule.
 */
export function maySendBeforePersist(ready: Ready, role: Role, persisted: { readonly term: number; readonly vote: number }): boolean {
  if (ready.messages.length === 0 || role !== 'leader' || ready.snapshot !== undefined) return false;
  const hard = ready.hardState;
  if (hard !== undefined && (hard.term !== persisted.term || hard.vote !== persisted.vote)) return false;
  return ready.messages.every((message) => message.type === 'append' || message.type === 'heartbeat');
}
