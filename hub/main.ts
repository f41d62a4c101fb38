/**
 * `startHub`: a broker with JetStream plus the leaf listener (hub/ingest). The one entry
 * `canopy hub` calls; tests call it too.
 */
import { startBroker, type Broker } from '../core/start.ts';
import type { HubLinkOptions } from '../core/server/link-options.ts';
import { ConfigError, type ServerOptions } from '../core/server/options.ts';
import type { Logger } from '../core/util/logger.ts';
import { LeafAcceptor } from './ingest/leaf-acceptor.ts';

export type Hub = {
  readonly broker: Broker;
  /** The leaf listener; undefined when `leaf_port` is 0 (off). Its `port` is the bound one. */
  readonly acceptor: LeafAcceptor | undefined;
  /** Graceful stop: leaf connections close first, then the broker (which flushes the store). */
  close(): Promise<void>;
};

export async function startHub(options: { options: ServerOptions; link: HubLinkOptions; log: Logger }): Promise<Hub> {
  const { link, log } = options;
  // Synced leaf streams land in JetStream streams: a hub without JetStream has nowhere to put them.
  if (!options.options.isJetStreamEnabled) throw new ConfigError('jetstream', 'canopy hub needs JetStream (leaf streams land in hub streams)');
  const broker = await startBroker({ options: options.options, log });
  const jetstream = broker.jetstream;
  let acceptor: LeafAcceptor | undefined;
  try {
    if (jetstream === undefined) throw new ConfigError('jetstream', 'canopy hub needs JetStream');
    if (link.port === undefined) {
      log.warn({}, 'the leaf listener is off (leaf_port 0): no leaf can sync to this hub');
    } else {
      acceptor = await LeafAcceptor.start({ jetstream, link, hubName: broker.server.serverName, log: log.child({ component: 'link' }) });
      const started = acceptor;
      broker.monitor?.setLeafz(() => ({ role: 'hub', listener: started.listenerStatus(), leafs: started.status() }));
    }
  } catch (err) {
    await broker.close().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    broker,
    acceptor,
    close() {
      closing ??= (async () => {
        await acceptor?.close();
        await broker.close();
      })();
      return closing;
    },
  };
}
