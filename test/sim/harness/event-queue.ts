/**
 * The simulator's agenda: a binary min-heap of events ordered by (time, seq).
 * `seq` is the insertion counter, so events at the same virtual time run in
 * the order they were scheduled: one seed, one schedule.
 */
export type Scheduled<T> = { readonly time: number; readonly seq: number; readonly event: T };

export class EventQueue<T> {
  #heap: Scheduled<T>[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(time: number, event: T): void {
    const item: Scheduled<T> = { time, seq: this.#seq++, event };
    const heap = this.#heap;
    heap.push(item);
    let index = heap.length - 1;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!isBefore(item, parent)) break;
      heap[index] = parent;
      index = parentIndex;
    }
    heap[index] = item;
  }

  peekTime(): number | undefined {
    return this.#heap[0]?.time;
  }

  pop(): Scheduled<T> | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    if (heap.length === 0) return top;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      let child = left;
      if (right < heap.length && isBefore(heap[right]!, heap[left]!)) child = right;
      if (!isBefore(heap[child]!, last)) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = last;
    return top;
  }
}

function isBefore<T>(a: Scheduled<T>, b: Scheduled<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
