/**
 * The injected time source (STYLE.md house rule 10): state machines that need "now" for
 * bookkeeping (last ack time, gap record time) take a `Clock` instead of calling the system, so
 * the simulator runs them on virtual time and replays them from a seed.
 */

/** Milliseconds; monotonic within a process. Only differences and display use it. */
export interface Clock {
  nowMs(): number;
}

/** The real clock: wall-clock milliseconds since the epoch that never step backwards. */
export const SYSTEM_CLOCK: Clock = {
  nowMs(): number {
    return performance.timeOrigin + performance.now();
  },
};
