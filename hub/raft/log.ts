/**
 * The Raft log as the core sees it: the durable part in {@link LogStorage}
 * plus an unstable tail (entries and possibly a snapshot) that the host has
 * not yet persisted. The unstable tail is handed out in Ready.entries /
 * Ready.snapshot and dropped in advance() once the host reports it durable.
 */
import { assert } from '../../core/util/assert.ts';
import type { Entry, Snapshot } from './messages.ts';
import { entryBytes } from './messages.ts';
import type { LogStorage } from './storage.ts';

/** Entries and a snapshot not yet persisted. `entries[i].index === offset + i`. */
class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) return this.snapshot.metadata.index;
    return undefined;
  }

  term(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    return this.entries[index - this.offset]?.term;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (after <= this.offset) {
      // Replaces the whole unstable tail; the host will overwrite storage from `after`.
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries.length = after - this.offset;
      for (const entry of entries) this.entries.push(entry);
    }
  }

  /** The host persisted everything up to (index, term): drop it if it is still what we hold. */
  stableTo(index: number, term: number): void {
    if (index < this.offset) return;
    if (this.term(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
    this.offset = snapshot.metadata.index + 1;
  }
}

export class RaftLog {
  readonly storage: LogStorage;
  readonly unstable: Unstable;
  /** Highest index known to be committed (paper Fig. 2 commitIndex). */
  committed: number;
  /** Highest index handed to the host for applying (advance() moves it). */
  applied: number;

  constructor(storage: LogStorage, applied: number) {
    this.storage = storage;
    this.unstable = new Unstable(storage.lastIndex() + 1);
    const { hardState } = storage.initialState();
    // A snapshot only ever covers committed entries, so its index bounds the commit from below.
    this.committed = Math.max(hardState.commit, storage.firstIndex() - 1, storage.snapshot().metadata.index);
    assert(this.committed <= storage.lastIndex(), `log: commit ${this.committed} beyond last ${storage.lastIndex()}`);
    this.applied = Math.max(applied, storage.firstIndex() - 1);
    assert(this.applied <= this.committed, `log: applied ${this.applied} beyond commit ${this.committed}`);
  }

  firstIndex(): number {
    if (this.unstable.snapshot !== undefined) return this.unstable.snapshot.metadata.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /** Term at `index` for index ∈ [firstIndex() - 1, lastIndex()], else undefined (compacted or absent). */
  term(index: number): number | undefined {
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    const unstableTerm = this.unstable.term(index);
    if (unstableTerm !== undefined) return unstableTerm;
    if (this.unstable.snapshot !== undefined) return undefined;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'log: no term for last index');
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Paper §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends at the end (leader) or after a truncation point (follower). Never touches committed entries. */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    assert(first.index - 1 >= this.committed, `log: append at ${first.index} would overwrite commit ${this.committed}`);
    assert(first.index <= this.lastIndex() + 1, `log: append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** The first entry of `entries` whose term disagrees with ours (or that we lack), or 0 if all match. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term` (the backtracking probe),
   * stopping at the compaction point.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let probe = Math.min(index, this.lastIndex());
    for (;;) {
      const probeTerm = this.term(probe);
      if (probeTerm === undefined) return { index: probe, term: 0 };
      if (probeTerm <= term) return { index: probe, term: probeTerm };
      if (probe <= this.firstIndex() - 1) return { index: probe, term: probeTerm };
      probe -= 1;
    }
  }

  /**
   * Follower side of AppendEntries: if we hold (index, logTerm), adopt
   * `entries` (truncating any conflicting suffix) and return the last index the
   * message vouches for; otherwise undefined.
   */
  maybeAppend(options: { index: number; logTerm: number; commit: number; entries: readonly Entry[] }): number | undefined {
    if (!this.matchTerm(options.index, options.logTerm)) return undefined;
    const lastNewIndex = options.index + options.entries.length;
    const conflict = this.findConflict(options.entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `log: conflict at ${conflict} is within commit ${this.committed}`);
      this.append(options.entries.slice(conflict - options.index - 1));
    }
    // Paper Fig. 2: commitIndex = min(leaderCommit, index of last new entry).
    this.commitTo(Math.min(options.commit, lastNewIndex));
    return lastNewIndex;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `log: commit ${index} beyond last ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Entries in [lo, hi) from storage and the unstable tail; undefined if lo is compacted. */
  slice(lo: number, hi: number, maxBytes: number): readonly Entry[] | undefined {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return undefined;
    assert(hi <= this.lastIndex() + 1, `log: slice ${hi} beyond last ${this.lastIndex()}`);
    const result: Entry[] = [];
    let bytes = 0;
    const unstableFrom = Math.max(lo, this.unstable.offset);
    if (lo < this.unstable.offset && this.unstable.snapshot === undefined) {
      const stored = this.storage.entries(lo, Math.min(hi, this.unstable.offset), maxBytes);
      for (const entry of stored) {
        bytes += entryBytes(entry);
        result.push(entry);
      }
      if (result.length < Math.min(hi, this.unstable.offset) - lo) return result;
    }
    for (let index = unstableFrom; index < hi; index++) {
      const entry = this.unstable.entries[index - this.unstable.offset];
      assert(entry !== undefined, `log: unstable hole at ${index}`);
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > maxBytes) break;
      result.push(entry);
    }
    return result;
  }

  /** The snapshot to send to a follower that needs compacted entries. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Committed entries not yet handed to the host (after any pending snapshot), capped by bytes. */
  nextCommittedEntries(maxBytes: number): readonly Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, maxBytes) ?? [];
  }

  /** Replaces the log with a snapshot received from the leader (paper §7). */
  restore(snapshot: Snapshot): void {
    assert(snapshot.metadata.index > this.committed, 'log: restoring a snapshot not past commit');
    this.unstable.restore(snapshot);
    this.committed = snapshot.metadata.index;
  }
}
