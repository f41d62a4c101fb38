/**
 * "Keep until the hub has it" (leaf/README.md "Retention"; issue 4 item 5): the leaf's
 * {@link RetentionHold}. A synced stream's retention floor is the hub's durable cursor for the
 * stream's current incarnation, so limits and retention (core/jetstream/retention-hold.ts)
 * remove nothing the hub does not have yet.
 *
 * Policy per stream, in its config metadata under {@link RETAIN_METADATA_KEY}:
 * - `"hub"` (the default for a synced stream): held as above;
 * - `"limits"`: plain NATS behaviour; what limits or retention remove before the hub had it
 *   reaches the hub as a gap.
 * Any other value is refused on create and update (10052). A stream that does not sync (opted
 * out with `"canopy.sync": "false"`, or a name that cannot cross the link) is never held.
 *
 * The floor per (stream, incarnation) is kept in memory, raised by the link's acknowledged
 * cursors ({@link HubRetention.acknowledged}), and persisted lazily in the stream's link states
 * under origin {@link HUB_ACK_ORIGIN} ({@link HubRetention.persist}, called by the link host about
 * once a second and at stop). Persisting late only keeps more data; a floor is never written
 * ahead of what the hub acknowledged. At start the persisted floor is read back on first use,
 * so a restarted leaf knows it before the link is up. A new incarnation starts at 0 (the record
 * names its incarnation; deleting a stream deletes its link states).
 */
import { newStreamInvalidConfigError, type JsApiError } from '../../core/jetstream/api/errors.generated.ts';
import type { StreamConfig } from '../../core/jetstream/api/types.ts';
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import { RETENTION_FLOOR_NONE, type RetentionHold } from '../../core/jetstream/retention-hold.ts';
import type { Stream } from '../../core/jetstream/stream.ts';
import type { AckedCursor } from '../../core/link/index.ts';
import type { Logger } from '../../core/util/logger.ts';
import { isLinkStreamName } from '../../core/link-host/jetstream-streams.ts';
import { isSyncedStream } from './leaf-streams.ts';

/** Stream config metadata key: `"hub"` (default) or `"limits"`. */
export const RETAIN_METADATA_KEY = 'canopy.sync.retain';

export const RetainPolicy = {
  /** Nothing the hub has not acknowledged is removed by limits or retention. */
  hub: 'hub',
  /** Limits and retention as configured (NATS behaviour); unsynced removals become gaps on the hub. */
  limits: 'limits',
} as const;
export type RetainPolicy = (typeof RetainPolicy)[keyof typeof RetainPolicy];

/** The link-state origin under which a stream's floor is persisted (hub origins are `<leaf>/…`, so never this). */
export const HUB_ACK_ORIGIN = 'hub';

/** The stream's policy (a value the API would refuse, as in a config stored before this check, reads as the default). */
export function retainPolicyOf(config: StreamConfig): RetainPolicy {
  return config.metadata?.[RETAIN_METADATA_KEY] === RetainPolicy.limits ? RetainPolicy.limits : RetainPolicy.hub;
}

/** What the hold does to one stream now, for the link's status(). */
export type StreamRetentionStatus = {
  readonly retain: RetainPolicy;
  /** The retention floor: the hub's durable cursor as this leaf knows it (persisted); undefined with `limits`. */
  readonly floorSeq: number | undefined;
  /**
   * Messages (bytes) after the floor up to the newest one whose removal by limits or retention
   * the floor deferred: an estimate (Stream.retentionHeld); bytes are the stream's average.
   */
  readonly heldMsgs: number;
  readonly heldBytes: number;
  /** Publishes refused since start because the limits would have had to remove unsynced messages. */
  readonly refusedPublishes: number;
};

type Floor = { readonly incarnation: string; seq: number; persistedSeq: number };

export class HubRetention implements RetentionHold {
  readonly #jetstream: JetStream;
  readonly #log: Logger;
  /** Floor per stream name, for the incarnation it names. */
  readonly #floors = new Map<string, Floor>();

  constructor(options: { readonly jetstream: JetStream; readonly log: Logger }) {
    this.#jetstream = options.jetstream;
    this.#log = options.log;
  }

  /** Whether the hold applies to the stream: it syncs and its policy is `hub`. */
  isHeld(stream: Stream): boolean {
    return isSyncedStream(stream) && isLinkStreamName(stream.name) && retainPolicyOf(stream.config) === RetainPolicy.hub;
  }

  floor(stream: Stream): number {
    return this.isHeld(stream) ? this.#floorOf(stream).seq : RETENTION_FLOOR_NONE;
  }

  checkConfig(config: StreamConfig): JsApiError | undefined {
    const value = config.metadata?.[RETAIN_METADATA_KEY];
    if (value === undefined || value === RetainPolicy.hub || value === RetainPolicy.limits) return undefined;
    return newStreamInvalidConfigError({ err: `stream metadata "${RETAIN_METADATA_KEY}" must be "hub" or "limits", not ${JSON.stringify(value)}` });
  }

  /**
   * The hub has `cursor` durably: raises the floor of that stream incarnation. Returns the stream
   * when its floor moved (the caller runs its limits and retention again), else undefined.
   */
  acknowledged(cursor: AckedCursor): Stream | undefined {
    const stream = this.#jetstream.streams.get(cursor.stream);
    if (stream === undefined || stream.incarnation !== cursor.incarnation) return undefined;
    const floor = this.#floorOf(stream);
    if (cursor.seq <= floor.seq) return undefined; // a cursor that went back (a restored hub) does not lower it
    floor.seq = cursor.seq;
    return this.isHeld(stream) ? stream : undefined;
  }

  /** Writes the floors that moved since the last call (with the storage's next commit); forgets those of gone incarnations. */
  persist(): void {
    for (const [name, floor] of this.#floors) {
      const stream = this.#jetstream.streams.get(name);
      if (stream === undefined || stream.incarnation !== floor.incarnation) {
        this.#floors.delete(name);
        continue;
      }
      if (floor.seq === floor.persistedSeq) continue;
      try {
        this.#jetstream.storage.saveLinkState(name, HUB_ACK_ORIGIN, { incarnation: floor.incarnation, seq: floor.seq });
        floor.persistedSeq = floor.seq;
      } catch (err) {
        // Not persisted now: tried again next time; until then a restart keeps more data.
        this.#log.error({ err, stream: name }, 'saving the retention floor failed');
      }
    }
  }

  /** The hold on one stream now (status and metrics; reads the store's counters only). */
  status(stream: Stream): StreamRetentionStatus {
    const refusedPublishes = stream.retentionHeld().refusedPublishes;
    if (!this.isHeld(stream)) return { retain: retainPolicyOf(stream.config), floorSeq: undefined, heldMsgs: 0, heldBytes: 0, refusedPublishes };
    const floorSeq = this.#floorOf(stream).seq;
    const state = stream.store.state();
    const throughSeq = Math.min(stream.retentionHeld().throughSeq, state.lastSeq);
    const afterSeq = Math.max(floorSeq, state.firstSeq - 1);
    const heldMsgs = state.messages === 0 ? 0 : Math.min(state.messages, Math.max(0, throughSeq - afterSeq));
    const heldBytes = heldMsgs === 0 ? 0 : Math.round((state.bytes * heldMsgs) / state.messages);
    return { retain: RetainPolicy.hub, floorSeq, heldMsgs, heldBytes, refusedPublishes };
  }

  /** The floor of the stream's current incarnation: in memory, else the persisted one, else 0. */
  #floorOf(stream: Stream): Floor {
    const known = this.#floors.get(stream.name);
    if (known !== undefined && known.incarnation === stream.incarnation) return known;
    const seq = this.#persistedSeq(stream);
    const floor: Floor = { incarnation: stream.incarnation, seq, persistedSeq: seq };
    this.#floors.set(stream.name, floor);
    return floor;
  }

  #persistedSeq(stream: Stream): number {
    let record: Record<string, unknown> | undefined;
    try {
      record = this.#jetstream.storage.loadLinkStates(stream.name).get(HUB_ACK_ORIGIN);
    } catch (err) {
      // 0 holds everything: safe; logged because the floor then only moves with the hub's next cursor.
      this.#log.error({ err, stream: stream.name }, 'reading the retention floor failed');
      return 0;
    }
    if (record?.['incarnation'] !== stream.incarnation) return 0;
    const seq = record['seq'];
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : 0;
  }
}
