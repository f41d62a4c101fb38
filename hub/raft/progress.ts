/**
 * The leader's view of each follower (paper Fig. 2 nextIndex/matchIndex) and
 * the flow control around it, in etcd's three states:
 *
 * - `probe`: we do not know where the follower's log matches ours; send one
 *   append per heartbeat interval and wait for its answer.
 * - `replicate`: the follower is matching; stream appends optimistically, at
 *   most {@link RAFT_INFLIGHT_MSGS_MAX} unacknowledged messages at a time.
 * - `snapshot`: a snapshot is on its way; send nothing else until the
 *   follower answers or the attempt times out.
 */
import { assert } from '../../core/util/assert.ts';

/**
 * At most this many append messages may be unacknowledged per follower in
 * `replicate` state. Bounds the memory a slow follower can pin on the leader
 * and the burst a reconnecting follower receives (STYLE.md house rule 4).
 * 64 × a 64 KiB message cap ≈ 4 MiB per follower.
 */
export const RAFT_INFLIGHT_MSGS_MAX = 64;

/** A ring of the last index carried by each unacknowledged append. */
export class Inflights {
  readonly capacity: number;
  #buffer: number[];
  #start = 0;
  #count = 0;

  constructor(capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, `inflights: bad capacity ${capacity}`);
    this.capacity = capacity;
    this.#buffer = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this.#count;
  }

  isFull(): boolean {
    return this.#count === this.capacity;
  }

  add(lastIndex: number): void {
    assert(!this.isFull(), 'inflights: add when full');
    const slot = (this.#start + this.#count) % this.capacity;
    this.#buffer[slot] = lastIndex;
    this.#count += 1;
  }

  /** Acknowledges every message whose last index is ≤ `index`. */
  freeLE(index: number): void {
    while (this.#count > 0 && (this.#buffer[this.#start] ?? 0) <= index) {
      this.#start = (this.#start + 1) % this.capacity;
      this.#count -= 1;
    }
  }

  freeFirstOne(): void {
    if (this.#count === 0) return;
    this.#start = (this.#start + 1) % this.capacity;
    this.#count -= 1;
  }

  reset(): void {
    this.#start = 0;
    this.#count = 0;
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known replicated durably on the follower. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = 'probe';
  /** In `probe`: an append was sent this heartbeat interval; wait. */
  isProbeSent = false;
  /** In `snapshot`: the index of the snapshot sent, and ticks since. */
  pendingSnapshot = 0;
  snapshotElapsedTicks = 0;
  /** Heard from since the last activity round (one per election timeout). */
  isRecentActive = false;
  /** Heard from during the previous activity round. */
  wasActiveLastRound = false;
  readonly inflights: Inflights;
  readonly isLearner: boolean;

  constructor(options: { next: number; inflightMsgsMax: number; isLearner: boolean }) {
    this.next = options.next;
    this.inflights = new Inflights(options.inflightMsgsMax);
    this.isLearner = options.isLearner;
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.isProbeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.isProbeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = snapshotIndex;
    this.snapshotElapsedTicks = 0;
    this.inflights.reset();
  }

  /** A successful append response for `index`. Returns false if it told us nothing new. */
  maybeUpdate(index: number): boolean {
    let isUpdated = false;
    if (index > this.match) {
      this.match = index;
      isUpdated = true;
      this.isProbeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return isUpdated;
  }

  /**
   * A rejection of the append at `rejected`; `matchHint` is where the follower
   * suggests we try. Returns false if the rejection is stale (out of order).
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // probe / snapshot: only the answer to the append we are waiting for counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.isProbeSent = false;
    return true;
  }

  /** Whether sending more appends now would exceed the flow-control limits. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.isProbeSent;
      case 'replicate':
        return this.inflights.isFull();
      case 'snapshot':
        return true;
    }
  }

  /** Records that an append ending at `lastIndex` carrying `count` entries was sent. */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.isProbeSent = true;
    } else {
      assert(false, 'progress: sending entries in snapshot state');
    }
  }

  describe(): string {
    return `${this.state} match=${this.match} next=${this.next}${this.isLearner ? ' learner' : ''}`;
  }
}
