/**
 * The log storage seam (STYLE.md §2.3): Raft only reads; the host writes
 * what each Ready tells it to persist, and only then calls advance().
 *
 * Index conventions (etcd's): storage holds a snapshot, or a dummy position,
 * at `firstIndex() - 1`, whose term `term()` still answers, followed by
 * entries `firstIndex() … lastIndex()`. An empty log has firstIndex 1,
 * lastIndex 0 and term(0) = 0.
 */
import { assert } from '../../core/util/assert.ts';
import { EMPTY_CONF_STATE } from './conf-state.ts';
import type { ConfState, Entry, HardState, NodeId, Snapshot, SnapshotMetadata } from './messages.ts';
import { entryBytes, NO_NODE } from './messages.ts';

export type InitialState = {
  readonly hardState: HardState;
  /** The configuration at the snapshot (configuration entries after it are replayed from the log). */
  readonly confState: ConfState;
};

/** Read-only view of the durable log. Returned arrays and objects are shared: never mutate them. */
export interface LogStorage {
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), stopping early once their size exceeds `maxBytes`
   * but always returning at least one entry. Requires
   * firstIndex() ≤ lo < hi ≤ lastIndex() + 1 (the caller checks compaction).
   */
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[];
  /** Term of the entry at `index` for index ∈ [firstIndex() - 1, lastIndex()]; otherwise undefined. */
  term(index: number): number | undefined;
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot (index 0 with the bootstrap configuration if none was taken). */
  snapshot(): Snapshot;
}

const EMPTY_DATA = new Uint8Array(0);

/** The log prefix every initial replica of a new cluster starts with (see {@link MemoryLogStorage.bootstrap}). */
export function bootstrapEntries(voters: readonly NodeId[]): Entry[] {
  const sorted = [...voters].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) assert(sorted[i] !== sorted[i - 1], 'bootstrap: duplicate voter');
  return sorted.map((nodeId, i) => ({
    kind: 'conf-change',
    index: i + 1,
    term: 1,
    change: { type: 'add-voter', nodeId, context: EMPTY_DATA },
  }));
}

/** The checks of `entries(lo, hi)` every LogStorage makes (the caller checks compaction first). */
export function assertEntriesRange(storage: LogStorage, lo: number, hi: number): void {
  assert(lo >= storage.firstIndex(), `storage entries: lo ${lo} is compacted (first ${storage.firstIndex()})`);
  assert(hi <= storage.lastIndex() + 1, `storage entries: hi ${hi} beyond last ${storage.lastIndex()}`);
  assert(lo < hi, `storage entries: empty range [${lo}, ${hi})`);
}

/**
 * Entries in [lo, hi) as LogStorage.entries returns them (the range checked,
 * stopping once past `maxBytes`, at least one), each from `entryAt`.
 */
export function collectEntries(storage: LogStorage, range: { lo: number; hi: number; maxBytes: number }, entryAt: (index: number) => Entry | undefined): Entry[] {
  const { lo, hi, maxBytes } = range;
  assertEntriesRange(storage, lo, hi);
  const result: Entry[] = [];
  let bytes = 0;
  for (let index = lo; index < hi; index++) {
    const entry = entryAt(index);
    assert(entry !== undefined && entry.index === index, `storage entries: hole at ${index}`);
    bytes += entryBytes(entry);
    if (result.length > 0 && bytes > maxBytes) break;
    result.push(entry);
  }
  return result;
}

/**
 * The checks of an append every LogStorage makes before changing anything:
 * contiguous entries starting within [firstIndex, lastIndex + 1].
 */
export function assertAppendable(storage: LogStorage, entries: readonly Entry[]): void {
  const first = entries[0];
  if (first === undefined) return;
  assert(first.index >= storage.firstIndex(), `storage append: ${first.index} below first ${storage.firstIndex()}`);
  assert(first.index <= storage.lastIndex() + 1, `storage append: gap before ${first.index} (last ${storage.lastIndex()})`);
  for (let i = 0; i < entries.length; i++) assert(entries[i]!.index === first.index + i, 'storage append: entries not contiguous');
}

/** The snapshot metadata a host's snapshot at `index` gets, with the checks every LogStorage makes (not older than the snapshot, within the log). */
export function snapshotMetadataAt(storage: LogStorage, options: { index: number; confState: ConfState }): SnapshotMetadata {
  const { index } = options;
  assert(index >= storage.snapshot().metadata.index, `storage createSnapshot: ${index} older than snapshot`);
  assert(index <= storage.lastIndex(), `storage createSnapshot: ${index} beyond last ${storage.lastIndex()}`);
  const term = storage.term(index);
  assert(term !== undefined, `storage createSnapshot: no term at ${index}`);
  return { index, term, confState: options.confState };
}

/**
 * An in-memory LogStorage. The host (or the simulator's disk model) writes it
 * through the mutating methods below, in Ready order: snapshot, entries,
 * hard state.
 */
export class MemoryLogStorage implements LogStorage {
  #hardState: HardState = { term: 0, vote: NO_NODE, commit: 0 };
  #snapshot: Snapshot;
  /** Index and term of the position just before #entries (the compaction point, ≤ the snapshot index). */
  #dummyIndex = 0;
  #dummyTerm = 0;
  /** #entries[i].index === #dummyIndex + 1 + i. */
  #entries: Entry[] = [];

  constructor(options: { confState: ConfState } = { confState: EMPTY_CONF_STATE }) {
    this.#snapshot = { metadata: { index: 0, term: 0, confState: options.confState }, data: EMPTY_DATA };
  }

  initialState(): InitialState {
    return { hardState: this.#hardState, confState: this.#snapshot.metadata.confState };
  }

  firstIndex(): number {
    return this.#dummyIndex + 1;
  }

  lastIndex(): number {
    return this.#dummyIndex + this.#entries.length;
  }

  term(index: number): number | undefined {
    if (index === this.#dummyIndex) return this.#dummyTerm;
    if (index < this.#dummyIndex || index > this.lastIndex()) return undefined;
    return this.#entries[index - this.#dummyIndex - 1]?.term;
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    const offset = this.#dummyIndex + 1;
    return collectEntries(this, { lo, hi, maxBytes }, (index) => this.#entries[index - offset]);
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  hardState(): HardState {
    return this.#hardState;
  }

  /**
   * Storage for a replica of a NEW cluster: the initial voters are written as
   * configuration entries 1…n of term 1, already committed, exactly as on every
   * other initial replica. The log is then self-describing: a replica that
   * joins later with a blank disk learns the whole membership history from
   * these entries (or from a snapshot), never from a guess.
   */
  static bootstrap(voters: readonly NodeId[]): MemoryLogStorage {
    assert(voters.length > 0, 'storage bootstrap: no voters');
    const storage = new MemoryLogStorage();
    storage.append(bootstrapEntries(voters));
    storage.setHardState({ term: 1, vote: NO_NODE, commit: voters.length });
    return storage;
  }

  // ---- host-side writes ----

  setHardState(hardState: HardState): void {
    this.#hardState = hardState;
  }

  /** Appends entries, first discarding any existing suffix from `entries[0].index` (a follower's conflict truncation). */
  append(entries: readonly Entry[]): void {
    // Checked before anything changes: a refused append leaves the log as it was.
    assertAppendable(this, entries);
    const first = entries[0];
    if (first === undefined) return;
    this.#entries.length = first.index - this.#dummyIndex - 1;
    for (let i = 0; i < entries.length; i++) this.#entries.push(entries[i]!);
  }

  /** Replaces the whole log with `snapshot` (a follower installing a leader's snapshot). */
  applySnapshot(snapshot: Snapshot): void {
    assert(snapshot.metadata.index >= this.#snapshot.metadata.index, 'storage applySnapshot: older than current');
    this.#snapshot = snapshot;
    this.#dummyIndex = snapshot.metadata.index;
    this.#dummyTerm = snapshot.metadata.term;
    this.#entries = [];
  }

  /** Records a snapshot the host took of its state machine at `index`, which it has applied. The log is kept; see {@link compact}. */
  createSnapshot(options: { index: number; confState: ConfState; data: Uint8Array }): Snapshot {
    this.#snapshot = { metadata: snapshotMetadataAt(this, options), data: options.data };
    return this.#snapshot;
  }

  /** Drops entries up to and including `index`, which must not pass the snapshot. */
  compact(index: number): void {
    if (index <= this.#dummyIndex) return;
    assert(index <= this.#snapshot.metadata.index, `storage compact: ${index} beyond snapshot ${this.#snapshot.metadata.index}`);
    const term = this.term(index);
    assert(term !== undefined, `storage compact: no term at ${index}`);
    this.#entries = this.#entries.slice(index - this.#dummyIndex);
    this.#dummyIndex = index;
    this.#dummyTerm = term;
  }

  /** A copy sharing the immutable entries (the simulator's disk images). */
  clone(): MemoryLogStorage {
    const copy = new MemoryLogStorage({ confState: this.#snapshot.metadata.confState });
    copy.#hardState = this.#hardState;
    copy.#snapshot = this.#snapshot;
    copy.#dummyIndex = this.#dummyIndex;
    copy.#dummyTerm = this.#dummyTerm;
    copy.#entries = this.#entries.slice();
    return copy;
  }
}
