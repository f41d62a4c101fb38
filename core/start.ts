/** Starts a standalone broker: the core server, JetStream and monitoring. The one entry the CLIs call. */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createConsumerLayer } from './jetstream/consumers.ts';
import { JetStream } from './jetstream/jetstream.ts';
import type { RetentionHold } from './jetstream/retention-hold.ts';
import { startMonitor, type Monitor } from './monitor/http.ts';
import type { ServerOptions } from './server/options.ts';
import { Server, type ReloadOutcome } from './server/server.ts';
import { DeferredJetStreamStorage } from './store/deferred-jetstream-storage.ts';
import { LmdbJetStreamStorage } from './store/lmdb/lmdb-jetstream-storage.ts';
import type { Logger } from './util/logger.ts';

export type Broker = {
  readonly server: Server;
  readonly jetstream: JetStream | undefined;
  readonly monitor: Monitor | undefined;
  /**
   * Applies a reloaded configuration (Server.reload; SIGHUP in the CLIs); monitoring over
   * `https_port` then serves the client port's renewed certificate too.
   */
  reload(options: ServerOptions): ReloadOutcome;
  /** Graceful stop: listeners close, connections flush and close, JetStream flushes its store. */
  close(): Promise<void>;
};

/** What an embedder (the leaf) adds to the broker. */
export type BrokerExtensions = {
  /** Makes the retention hold JetStream consults from its first stream on (before recovery and before clients connect). */
  readonly retentionHold?: (jetstream: JetStream) => RetentionHold;
};

async function startJetStream(server: Server, options: ServerOptions, log: Logger, extensions: BrokerExtensions): Promise<JetStream> {
  mkdirSync(options.storeDir, { recursive: true });
  if (options.syncPolicy !== 'always') {
    log.warn(
      { sync_interval_ms: options.syncPolicy.intervalMs },
      'sync is an interval: PubAcks do not wait for fsync; an OS crash or power cut can lose the last acknowledged messages',
    );
  }
  // An existing store is opened now (its streams are recovered); a new one waits for its first file stream.
  const storage = existsSync(join(options.storeDir, 'jetstream'))
    ? LmdbJetStreamStorage.open(options.storeDir, options.syncPolicy)
    : new DeferredJetStreamStorage(options.storeDir, options.syncPolicy);
  const jetstream = new JetStream({
    client: server.createInternalClient('jetstream'),
    storage,
    log: log.child({ component: 'jetstream' }),
    storeDir: options.storeDir,
    payloadBytesMax: options.payloadBytesMax,
  });
  jetstream.consumers = createConsumerLayer(jetstream);
  jetstream.retentionHold = extensions.retentionHold?.(jetstream);
  await jetstream.start();
  return jetstream;
}

export async function startBroker(options: { options: ServerOptions; log: Logger; extensions?: BrokerExtensions }): Promise<Broker> {
  const server = new Server(options);
  let jetstream: JetStream | undefined;
  let monitor: Monitor | undefined;
  try {
    // JetStream recovers its streams before clients can connect and publish.
    if (options.options.isJetStreamEnabled) jetstream = await startJetStream(server, options.options, options.log, options.extensions ?? {});
    await server.start();
    const monitorPort = options.options.httpPort ?? options.options.httpsPort;
    if (monitorPort !== undefined) {
      monitor = await startMonitor({
        server,
        jetstream,
        host: options.options.httpHost,
        port: monitorPort,
        log: options.log.child({ component: 'monitor' }),
        // nats-server parity: https_port serves with the client port's certificate (options.ts checks it is there).
        tls: options.options.httpsPort === undefined ? undefined : options.options.tls,
        token: options.options.monitorToken,
      });
    }
  } catch (err) {
    await server.shutdown().catch(() => undefined);
    await jetstream?.stop().catch(() => undefined);
    throw err;
  }
  return {
    server,
    jetstream,
    monitor,
    reload(next) {
      const outcome = server.reload(next);
      if (outcome.isApplied && outcome.changed.includes('tls') && next.httpsPort !== undefined && next.tls !== undefined) monitor?.setTls(next.tls);
      return outcome;
    },
    async close() {
      await monitor?.close();
      await server.shutdown();
      await jetstream?.stop();
    },
  };
}
