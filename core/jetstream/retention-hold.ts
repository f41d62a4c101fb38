/**
 * Retention holds: someone who copies a stream (the leaf's link to its hub) may hold back what
 * limits and retention remove until the copy has it (leaf/README.md "Retention").
 *
 * JetStream asks the hold for a stream's **floor**: the highest sequence that limits and
 * retention may remove now. Everything above it stays:
 * - max_msgs / max_bytes with discard old: a publish that would have to remove a message above
 *   the floor is refused with the discard-new errors instead (10077 "maximum messages
 *   exceeded" / "maximum bytes exceeded"): the publisher hears of it, nothing is lost;
 * - max_msgs_per_subject, max_age, work-queue and interest retention: the removal is deferred
 *   and happens once the floor passes the message (the holder calls `Stream.applyRetention`).
 *
 * What a user asks for explicitly still happens at once: API deletes and purges, and a
 * `Nats-Rollup` (a publisher's request to replace the history, like a purge).
 *
 * Without a hold (a plain `canopy server`, a hub) nothing changes: the floor is
 * {@link RETENTION_FLOOR_NONE} and JetStream behaves as nats-server does.
 */
import type { JsApiError } from './api/errors.generated.ts';
import type { StreamConfig } from './api/types.ts';
import type { Stream } from './stream.ts';

/** The floor of a stream nothing holds: limits and retention remove whatever they want. */
export const RETENTION_FLOOR_NONE = Number.POSITIVE_INFINITY;

export interface RetentionHold {
  /**
   * The highest sequence limits and retention may remove from `stream` now, or
   * {@link RETENTION_FLOOR_NONE}. Called on every removal decision and publish at a limit: must
   * be cheap and must not throw. It never goes down for one stream incarnation while its config
   * stays (a config update may change it: Stream.update runs limits and retention again).
   */
  floor(stream: Stream): number;
  /** Checks a stream config on create and update (the hold's own settings); an API error refuses it. */
  checkConfig(config: StreamConfig): JsApiError | undefined;
}
