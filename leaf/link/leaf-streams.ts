/**
 * The leaf's JetStream streams as the link sender reads them (upstream sync): every stream,
 * file and memory, unless its config metadata says `"canopy.sync": "false"`
 * ({@link SYNC_METADATA_KEY}; any other value, or none, syncs), or its name cannot cross the
 * link (logged once at error). A memory stream gets a new incarnation at every start, so the hub
 * keeps each run apart. The reads, gaps and damaged records are core/link-host's
 * (`JetStreamStreams`, unfiltered); the leaf only chooses the streams.
 *
 * Local copies of downstream hub streams are created with `"canopy.sync": "false"`
 * (leaf/link/leaf-sink.ts), so they never sync back up.
 */
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import type { Stream } from '../../core/jetstream/stream.ts';
import type { DurableSeqs } from '../../core/link-host/durable-seqs.ts';
import { JetStreamStreams } from '../../core/link-host/jetstream-streams.ts';
import type { Logger } from '../../core/util/logger.ts';

/** Stream config metadata key: `"false"` keeps the stream off the link (it stays local). */
export const SYNC_METADATA_KEY = 'canopy.sync';

/** Whether a stream goes over the link (not opted out with `"canopy.sync": "false"`). */
export function isSyncedStream(stream: Stream): boolean {
  return stream.config.metadata?.[SYNC_METADATA_KEY] !== 'false';
}

export type LeafStreamsOptions = {
  readonly jetstream: JetStream;
  readonly log: Logger;
  /** What is on disk (the link host passes it: nothing goes up before it is durable here). */
  readonly durable?: DurableSeqs;
};

/** `SenderStreams` over the leaf's local JetStream: every synced stream, whole. */
export class LeafStreams extends JetStreamStreams {
  constructor(options: LeafStreamsOptions) {
    super({ jetstream: options.jetstream, log: options.log, isSynced: isSyncedStream, ...(options.durable === undefined ? {} : { durable: options.durable }) });
  }
}
