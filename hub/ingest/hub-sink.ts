/**
 * The hub's {@link ReceiverSink} for one leaf (core/link/README.md "Where synced data lands"):
 * leaf stream S lands in hub stream S, each subject prefixed with `<leaf>.`, each message
 * carrying `Canopy-Origin-*` headers (hub/ingest/README.md). The mechanics (cursors atomic with
 * the data, turns, refusals, stale sinks, target creation) are core/link-host's
 * {@link JetStreamSink}; this file holds the hub's role: the subject mapping, the origin
 * headers, the config of a created target, and the refusal of a target that syncs down to
 * leaves (hub/ingest/downstream.ts): leaf data in it would be sent back down.
 */
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import { JetStreamSink, type SinkRole } from '../../core/link-host/jetstream-sink.ts';
import type { LinkMessage, StreamKey } from '../../core/link/index.ts';
import { assert } from '../../core/util/assert.ts';
import type { Clock } from '../../core/util/clock.ts';
import type { Logger } from '../../core/util/logger.ts';
import { DOWNSTREAM_METADATA_KEY, isDownstreamStream } from './downstream.ts';
import { ingestSubjectOf, ingestTargetOf, ingestTemplateRefusal } from './ingest-target.ts';

/** Headers the hub adds to every synced message (README "Where synced data lands"). */
export const OriginHeader = {
  leaf: 'Canopy-Origin-Leaf',
  stream: 'Canopy-Origin-Stream',
  incarnation: 'Canopy-Origin-Incarnation',
  seq: 'Canopy-Origin-Seq',
  /** The origin store time, Unix ns. */
  time: 'Canopy-Origin-Time',
} as const;

export type HubSinkOptions = {
  /** The leaf's name (already validated: a subject token without '/'). */
  readonly leaf: string;
  readonly jetstream: JetStream;
  readonly clock: Clock;
  /** The leaf's child logger. */
  readonly log: Logger;
};


/** The hub's role as the receiver of one leaf's streams. */
function hubRole(leaf: string, jetstream: JetStream): SinkRole {
  return {
    self: 'hub',
    peer: 'leaf',
    subjectOf: (subject, target) => ingestSubjectOf(target, leaf, subject),
    targetOf: (stream) => ingestTargetOf(jetstream, stream),
    originHeaders: (key: StreamKey, msg: LinkMessage) => [
      [OriginHeader.leaf, leaf],
      [OriginHeader.stream, key.stream],
      [OriginHeader.incarnation, key.incarnation],
      [OriginHeader.seq, String(msg.seq)],
      [OriginHeader.time, msg.timestampNs.toString()],
    ],
    // Default subjects [stream], as nats-server.
    newStreamConfig: (stream) => ({ name: stream, storage: 'file' }),
    refuseTarget: (target) =>
      isDownstreamStream(target)
        ? `hub stream ${target.name} syncs down to leaves ("${DOWNSTREAM_METADATA_KEY}": "true"): it cannot take leaf streams (they would come back down)`
        : ingestTemplateRefusal(target),
  };
}

/** One leaf's sink on the hub: its name is fixed, so it writes only `<leaf>.` subjects and `<leaf>/…` link states. */
export class HubSink extends JetStreamSink {
  constructor(options: HubSinkOptions) {
    assert(options.leaf.length > 0 && !options.leaf.includes('/') && !options.leaf.includes('.'), `leaf name ${options.leaf} must be one subject token`);
    super({ peer: options.leaf, role: hubRole(options.leaf, options.jetstream), jetstream: options.jetstream, clock: options.clock, log: options.log });
  }
}
