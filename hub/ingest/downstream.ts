/**
 * Downstream sync (issue 4 item 4): which hub streams sync down to leaves, and what of them
 * each leaf gets (hub/ingest/README.md "Downstream").
 *
 * A hub stream syncs down when its config metadata says `"canopy.downstream": "true"`
 * ({@link DOWNSTREAM_METADATA_KEY}). A message is addressed to leaf L when its subject's first
 * token is L (the mirror of upstream, where leaf L's subjects get the prefix `L.` on the hub);
 * it reaches L without that token (`gw1.cmd.reboot` → `cmd.reboot`). A single-token subject, or
 * one addressed to another leaf, is not sent to L: L's view of the stream has holes there,
 * which its sender sends as 'filtered' gaps (no loss).
 */
import type { JetStream } from '../../core/jetstream/jetstream.ts';
import type { Stream } from '../../core/jetstream/stream.ts';
import type { DurableSeqs } from '../../core/link-host/durable-seqs.ts';
import { JetStreamStreams } from '../../core/link-host/jetstream-streams.ts';
import type { Logger } from '../../core/util/logger.ts';

/** Stream config metadata key: `"true"` syncs the stream down to the leaves. */
export const DOWNSTREAM_METADATA_KEY = 'canopy.downstream';

/** Whether a hub stream syncs down to leaves. */
export function isDownstreamStream(stream: Stream): boolean {
  return stream.config.metadata?.[DOWNSTREAM_METADATA_KEY] === 'true';
}

/** The downstream streams as one leaf's sender reads them: only the messages addressed to it, subjects without its name. */
export function downstreamStreamsOf(options: { readonly jetstream: JetStream; readonly leaf: string; readonly durable: DurableSeqs; readonly log: Logger }): JetStreamStreams {
  return new JetStreamStreams({ jetstream: options.jetstream, log: options.log, isSynced: isDownstreamStream, subjectToken: options.leaf, durable: options.durable });
}
