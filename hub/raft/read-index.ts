/**
 * ReadIndex bookkeeping on the leader (thesis §6.4). A read is safe to serve
 * at index `index` (the leader's commit index when the request arrived) once
 * a majority has answered a heartbeat sent after the request: that proves no
 * newer leader existed at that moment. Heartbeat rounds are numbered; an
 * answer to round r confirms every read registered in rounds ≤ r.
 */
import { assert } from '../../core/util/assert.ts';
import type { NodeId } from './messages.ts';

export type PendingRead = {
  readonly requestId: number;
  /** Who asked: the leader itself or a follower that forwarded it. */
  readonly from: NodeId;
  readonly index: number;
  readonly round: number;
  readonly acks: Set<NodeId>;
};

export class ReadIndexQueue {
  #reads: PendingRead[] = [];
  #round = 0;

  get length(): number {
    return this.#reads.length;
  }

  /** The round of the newest pending read (0 if none): heartbeats carry it. */
  latestRound(): number {
    const last = this.#reads[this.#reads.length - 1];
    return last === undefined ? 0 : last.round;
  }

  add(options: { requestId: number; from: NodeId; index: number; self: NodeId }): number {
    this.#round += 1;
    this.#reads.push({ requestId: options.requestId, from: options.from, index: options.index, round: this.#round, acks: new Set([options.self]) });
    return this.#round;
  }

  /** Records that `from` answered heartbeat round `round`. */
  ack(from: NodeId, round: number): void {
    if (round <= 0) return;
    for (const read of this.#reads) {
      if (read.round > round) break;
      read.acks.add(from);
    }
  }

  /** Removes and returns the oldest reads whose acks satisfy `isConfirmed`, in order. */
  takeConfirmed(isConfirmed: (acks: ReadonlySet<NodeId>) => boolean): PendingRead[] {
    let count = 0;
    while (count < this.#reads.length) {
      const read = this.#reads[count];
      assert(read !== undefined, 'read index: hole in queue');
      if (!isConfirmed(read.acks)) break;
      count += 1;
    }
    return this.#reads.splice(0, count);
  }

  clear(): void {
    this.#reads = [];
  }
}
