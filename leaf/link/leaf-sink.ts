/**
 * The leaf's {@link ReceiverSink} for its hub (downstream sync, hub/ingest/downstream.ts): hub
 * stream S lands in local stream S, created on first offer if absent (file storage, default
 * subjects [S], metadata `"canopy.sync": "false"` so it never syncs back up: it would loop).
 * Messages arrive with the hub's subject prefix (this leaf's name) already removed and are stored
 * as they come, with `Canopy-Origin-Hub`, `-Stream`, `-Incarnation`, `-Seq` and `-Time` first.
 * The cursor per (hub stream, incarnation) is a link state of the local stream under the peer
 * name `hub` (the hub's nodes share the stream's incarnation, whichever one the leaf reaches),
 * written atomically with the data. The mechanics are core/link-host's {@link JetStreamSink}.
 */
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import { JetStreamSink, type SinkRole } from '../../core/link-host/jetstream-sink.ts';
import type { LinkMessage, StreamKey } from '../../core/link/index.ts';
import type { Clock } from '../../core/util/clock.ts';
import type { Logger } from '../../core/util/logger.ts';
import { isSyncedStream, SYNC_METADATA_KEY } from './leaf-streams.ts';

/** The peer name of the hub in the leaf's link-state keys (`hub/<stream>/<incarnation>`). */
export const HUB_PEER = 'hub';

/** Headers the leaf adds to every message that came down from the hub. */
export const HubOriginHeader = {
  hub: 'Canopy-Origin-Hub',
  stream: 'Canopy-Origin-Stream',
  incarnation: 'Canopy-Origin-Incarnation',
  seq: 'Canopy-Origin-Seq',
  /** The hub's store time, Unix ns. */
  time: 'Canopy-Origin-Time',
} as const;

export type LeafSinkOptions = {
  readonly jetstream: JetStream;
  readonly clock: Clock;
  /** The hub's name as its welcome gave it (for `Canopy-Origin-Hub`). */
  readonly hubName: () => string;
  readonly log: Logger;
};

function leafRole(hubName: () => string): SinkRole {
  return {
    self: 'leaf',
    peer: 'hub',
    subjectOf: (subject) => subject,
    isPeerFiltered: true,
    originHeaders: (key: StreamKey, msg: LinkMessage) => [
      [HubOriginHeader.hub, hubName()],
      [HubOriginHeader.stream, key.stream],
      [HubOriginHeader.incarnation, key.incarnation],
      [HubOriginHeader.seq, String(msg.seq)],
      [HubOriginHeader.time, msg.timestampNs.toString()],
    ],
    newStreamConfig: (stream) => ({ name: stream, storage: 'file', metadata: { [SYNC_METADATA_KEY]: 'false' } }),
    refuseTarget: (target) =>
      isSyncedStream(target)
        ? `local stream ${target.name} is synced up to the hub (its "${SYNC_METADATA_KEY}" is not "false"): a downstream stream cannot land in it (it would go back up)`
        : undefined,
  };
}

/** The sink of the hub's downstream streams on a leaf. */
export class LeafSink extends JetStreamSink {
  constructor(options: LeafSinkOptions) {
    super({ peer: HUB_PEER, role: leafRole(options.hubName), jetstream: options.jetstream, clock: options.clock, log: options.log });
  }
}
