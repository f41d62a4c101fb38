/**
 * Configurations and single-server membership changes (thesis §4.1–§4.2).
 *
 * Every change adds or removes at most one voter, so any majority of the old
 * voter set and any majority of the new one intersect: no joint consensus is
 * needed. The price is the rule that only one change may be in flight (the
 * leader refuses a second until the first commits) and the 2015 fix that a
 * new leader must commit an entry of its own term before its first change
 * (Ongaro, raft-dev "bug in single-server membership changes"). Both are
 * enforced in raft.ts `proposeConfChange`.
 *
 * {@link applyConfChange} is a total, pure function: the core applies it when a
 * change entry is appended to the log, the host applies it to track the
 * configuration at its applied index (for snapshots). Both must agree, so they
 * share this one function.
 */
import type { ConfChange, ConfState, NodeId } from './messages.ts';

export const EMPTY_CONF_STATE: ConfState = Object.freeze({ voters: [], learners: [] });

function sortedWith(ids: readonly NodeId[], id: NodeId): NodeId[] {
  const result = ids.filter((other) => other !== id);
  result.push(id);
  result.sort((a, b) => a - b);
  return result;
}

function without(ids: readonly NodeId[], id: NodeId): NodeId[] {
  return ids.filter((other) => other !== id);
}

/** The configuration after `change`. A change that does not apply (for example adding an existing voter) returns `confState` unchanged. */
export function applyConfChange(confState: ConfState, change: ConfChange): ConfState {
  const isVoterNow = confState.voters.includes(change.nodeId);
  const isLearnerNow = confState.learners.includes(change.nodeId);
  switch (change.type) {
    case 'add-learner':
      if (isVoterNow || isLearnerNow) return confState;
      return { voters: confState.voters, learners: sortedWith(confState.learners, change.nodeId) };
    case 'add-voter':
      if (isVoterNow) return confState;
      return { voters: sortedWith(confState.voters, change.nodeId), learners: without(confState.learners, change.nodeId) };
    case 'remove':
      if (!isVoterNow && !isLearnerNow) return confState;
      if (isVoterNow && confState.voters.length === 1) return confState;
      return { voters: without(confState.voters, change.nodeId), learners: without(confState.learners, change.nodeId) };
  }
}

/** Why a proposed change is refused before it reaches the log, or undefined if it is acceptable. */
export function confChangeRefusal(confState: ConfState, change: ConfChange): string | undefined {
  if (!Number.isSafeInteger(change.nodeId) || change.nodeId <= 0) return 'bad node id';
  const next = applyConfChange(confState, change);
  if (next === confState) return 'change has no effect';
  if (next.voters.length === 0) return 'would remove the last voter';
  return undefined;
}

export function isVoter(confState: ConfState, id: NodeId): boolean {
  return confState.voters.includes(id);
}

export function isMember(confState: ConfState, id: NodeId): boolean {
  return confState.voters.includes(id) || confState.learners.includes(id);
}

export function confStateEquals(a: ConfState, b: ConfState): boolean {
  if (a.voters.length !== b.voters.length || a.learners.length !== b.learners.length) return false;
  for (let i = 0; i < a.voters.length; i++) if (a.voters[i] !== b.voters[i]) return false;
  for (let i = 0; i < a.learners.length; i++) if (a.learners[i] !== b.learners[i]) return false;
  return true;
}

/** Builds a configuration from id lists, sorted and checked. */
export function confStateOf(options: { voters: readonly NodeId[]; learners?: readonly NodeId[] }): ConfState {
  const voters = [...options.voters].sort((a, b) => a - b);
  const learners = [...(options.learners ?? [])].sort((a, b) => a - b);
  for (const id of voters) if (learners.includes(id)) throw new RangeError(`node ${id} is both voter and learner`);
  return { voters, learners };
}

export function formatConfState(confState: ConfState): string {
  const learners = confState.learners.length === 0 ? '' : ` learners=(${confState.learners.join(',')})`;
  return `voters=(${confState.voters.join(',')})${learners}`;
}
