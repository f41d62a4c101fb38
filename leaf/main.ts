/**
 * Starts a leaf: the standalone broker (core/start.ts: client port, JetStream, monitoring) plus
 * its link to the hub (leaf/link/ws-link.ts), which syncs the leaf's streams upstream. The one
 * entry `canopy leaf` calls.
 */
import { LINK_TOKEN_BYTES_MAX } from '../core/link/codec.ts';
import { LINK_HEARTBEAT_MS_MAX } from '../core/link/index.ts';
import type { LeafLinkOptions } from '../core/server/link-options.ts';
import { ConfigError, type ServerOptions } from '../core/server/options.ts';
import { startBroker, type Broker } from '../core/start.ts';
import type { JetStream } from '../core/jetstream/jetstream.ts';
import type { Logger } from '../core/util/logger.ts';
import { HubRetention } from './link/hub-retention.ts';
import { LeafLink, type LeafLinkHostOptions } from './link/ws-link.ts';

export type Leaf = {
  readonly broker: Broker;
  readonly link: LeafLink;
  /** Graceful stop: the link first (nothing more is read from the streams), then the broker. */
  close(): Promise<void>;
};

/** Host settings tests and embedders may change (the CLI uses the defaults). */
export type LeafLinkTuning = Partial<Pick<LeafLinkHostOptions, 'clock' | 'prng' | 'stallMs' | 'backoffBaseMs' | 'backoffMaxMs' | 'windowBytes'>>;

export async function startLeaf(options: {
  readonly options: ServerOptions;
  readonly link: LeafLinkOptions;
  readonly log: Logger;
  readonly tuning?: LeafLinkTuning;
  /** What the device's setup found wrong in its settings (leaf/README.md "On a gateway"): logged at error, shown on /leafz. */
  readonly configProblems?: readonly string[];
}): Promise<Leaf> {
  if (!options.options.isJetStreamEnabled) throw new ConfigError('jetstream', 'canopy leaf syncs its JetStream streams to the hub: JetStream must be on');
  // link-options.ts checks the minimum; the link machines also have a maximum, and the codec a token size.
  if (options.link.heartbeatMs > LINK_HEARTBEAT_MS_MAX) throw new ConfigError('link_heartbeat', `must be at most ${LINK_HEARTBEAT_MS_MAX / 1000}s`);
  const token = options.link.hubToken;
  if (token !== undefined && (token === '' || Buffer.byteLength(token, 'utf8') > LINK_TOKEN_BYTES_MAX)) {
    throw new ConfigError('hub_token', `must be 1 to ${LINK_TOKEN_BYTES_MAX} bytes`);
  }
  // The retention hold goes in before JetStream recovers its streams, so that no limit or
  // retention removes unsynced data before the link exists (leaf/README.md "Retention").
  const configProblems = options.configProblems ?? [];
  for (const problem of configProblems) options.log.error({ problem }, 'config problem');
  let retention: HubRetention | undefined;
  const retentionHold = (jetstream: JetStream): HubRetention => (retention = new HubRetention({ jetstream, log: options.log.child({ component: 'retention' }) }));
  const broker = await startBroker({ options: options.options, log: options.log, extensions: { retentionHold } });
  const jetstream = broker.jetstream;
  if (jetstream === undefined || retention === undefined) {
    await broker.close();
    throw new ConfigError('jetstream', 'JetStream did not start');
  }
  let link: LeafLink;
  try {
    link = new LeafLink({ ...options.tuning, jetstream, retention, link: options.link, log: options.log.child({ component: 'link' }) });
    link.start();
    const started = link;
    broker.monitor?.setLeafz(() => ({
      role: 'leaf',
      leaf: options.link.leafName,
      ...(configProblems.length > 0 ? { config_problems: configProblems } : {}),
      link: started.status(),
    }));
  } catch (err) {
    await broker.close().catch(() => undefined);
    throw err;
  }
  return {
    broker,
    link,
    async close() {
      await link.stop();
      await broker.close();
    },
  };
}
