/**
 * The writes of lmdb-log-crash.test.ts, shared with its child process: entry
 * payloads derived from (index, term), and the line protocol.
 *
 *     ready <lastIndex>                      the child opened the log
 *     w <from> <count> <term> <commit>       it is about to save a Ready: entries from..from+count-1 of
 *                                            `term` (replacing any suffix), hard state (term, vote 1, commit)
 *     s <snapshotIndex> <compactTo>          it is about to take a snapshot and compact, in one commit
 *     a                                      the write announced last is durable (its promise resolved)
 */
import { createHash } from 'node:crypto';
import type { Entry, HardState } from '../../../hub/raft/index.ts';
import { confStateOf } from '../../../hub/raft/index.ts';

export const CRASH_PAYLOAD_BYTES = 128;
export const CRASH_CONF_STATE = confStateOf({ voters: [1] });

/** 128 bytes derived from index and term: an entry stored under another index or term never matches. */
export function crashPayload(index: number, term: number): Uint8Array {
  const digest = createHash('sha256').update(`raft-crash-${index}-${term}`).digest('hex');
  return new Uint8Array(Buffer.from(`${index}/${term}:${digest}${digest}${digest}`.slice(0, CRASH_PAYLOAD_BYTES)));
}

export function crashEntries(from: number, count: number, term: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = from; index < from + count; index++) entries.push({ kind: 'normal', index, term, data: crashPayload(index, term) });
  return entries;
}

export function crashHardState(term: number, commit: number): HardState {
  return { term, vote: 1, commit };
}

export function crashSnapshotData(index: number): Uint8Array {
  return new Uint8Array(Buffer.from(`snapshot-${index}`));
}
