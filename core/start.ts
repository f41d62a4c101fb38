/**
 * Starts a standalone broker: the core server, JetStream and monitoring. The one entry the CLIs call.
 * JetStream is per account: `$G` keeps the store at `<store_dir>/jetstream` (the layout from before
 * accounts), every other JetStream-enabled account has its own at `<store_dir>/accounts/<name>/jetstream`
 * (accountStoreDir), so its streams and consumers are invisible to the others and survive restarts
 * in their account. The leaf↔hub link syncs `$G`'s streams only.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createConsumerLayer } from './jetstream/consumers.ts';
import { answerJetStreamNotEnabled, JetStream } from './jetstream/jetstream.ts';
import type { RetentionHold } from './jetstream/retention-hold.ts';
import { startMonitor, type Monitor } from './monitor/http.ts';
import { GLOBAL_ACCOUNT, type Account } from './server/accounts.ts';
import type { ServerOptions } from './server/options.ts';
import { Server, type ReloadOutcome } from './server/server.ts';
import { DeferredJetStreamStorage } from './store/deferred-jetstream-storage.ts';
import { LmdbJetStreamStorage } from './store/lmdb/lmdb-jetstream-storage.ts';
import type { Logger } from './util/logger.ts';

export type Broker = {
  readonly server: Server;
  /** The global account's (`$G`) JetStream: the one links, /jsz and /healthz read. */
  readonly jetstream: JetStream | undefined;
  /** JetStream of every account that has it, by account name (`$G` included). */
  readonly accountJetStreams: ReadonlyMap<string, JetStream>;
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

/**
 * An account's JetStream store directory: `store_dir` itself for `$G`, else
 * `<store_dir>/accounts/<name>` with every character but letters, digits, `_` and `-`
 * percent-encoded (UTF-8), so any account name is one safe, distinct directory name.
 */
export function accountStoreDir(storeDir: string, account: string): string {
  if (account === GLOBAL_ACCOUNT) return storeDir;
  const encoded = Array.from(Buffer.from(account, 'utf8'), (byte) => {
    const char = String.fromCharCode(byte);
    return /[A-Za-z0-9_-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
  return join(storeDir, 'accounts', encoded);
}

async function startJetStream(options: { server: Server; account: Account; options: ServerOptions; log: Logger; extensions: BrokerExtensions }): Promise<JetStream> {
  const { server, account, log } = options;
  const storeDir = accountStoreDir(options.options.storeDir, account.name);
  const syncPolicy = options.options.syncPolicy;
  mkdirSync(storeDir, { recursive: true });
  // An existing store is opened now (its streams are recovered); a new one waits for its first file stream.
  const storage = existsSync(join(storeDir, 'jetstream')) ? LmdbJetStreamStorage.open(storeDir, syncPolicy) : new DeferredJetStreamStorage(storeDir, syncPolicy);
  const isGlobal = account.name === GLOBAL_ACCOUNT;
  const jetstream = new JetStream({
    client: server.createInternalClient('jetstream', account),
    storage,
    log: log.child(isGlobal ? { component: 'jetstream' } : { component: 'jetstream', account: account.name }),
    storeDir,
    payloadBytesMax: options.options.payloadBytesMax,
  });
  jetstream.consumers = createConsumerLayer(jetstream);
  // The link (the retention hold's owner) syncs the global account's streams only.
  if (isGlobal) jetstream.retentionHold = options.extensions.retentionHold?.(jetstream);
  await jetstream.start();
  return jetstream;
}

/**
 * Starts the JetStream of `$G` and of every configured account with `jetstream: enabled`,
 * and of accounts created later (operator mode) that have it.
 */
async function startAccountJetStreams(options: {
  server: Server;
  options: ServerOptions;
  log: Logger;
  extensions: BrokerExtensions;
  jetstreams: Map<string, JetStream>;
  starting: Set<Promise<unknown>>;
}): Promise<void> {
  const { server, log, jetstreams, starting } = options;
  if (options.options.syncPolicy !== 'always') {
    log.warn(
      { sync_interval_ms: options.options.syncPolicy.intervalMs },
      'sync is an interval: PubAcks do not wait for fsync; an OS crash or power cut can lose the last acknowledged messages',
    );
  }
  const start = async (account: Account): Promise<void> => {
    jetstreams.set(account.name, await startJetStream({ ...options, account }));
  };
  // Operator mode: the preloaded accounts' JetStreams recover before clients connect, as configured accounts' do.
  for (const key of options.options.auth?.operatorMode?.accounts.keys() ?? []) server.accounts.resolve(key, { isJetStreamEnabled: true });
  for (const account of server.accounts.values()) {
    if (account === server.accounts.global || account.config.isJetStreamEnabled) await start(account);
    else answerJetStreamNotEnabled(account.client);
  }
  server.accounts.onCreated((account) => {
    if (!account.config.isJetStreamEnabled) {
      answerJetStreamNotEnabled(account.client);
      return;
    }
    const pending = start(account).catch((err: unknown) => log.error({ err, account: account.name }, 'jetstream of a new account did not start'));
    starting.add(pending);
    void pending.finally(() => starting.delete(pending));
  });
}

export async function startBroker(options: { options: ServerOptions; log: Logger; extensions?: BrokerExtensions }): Promise<Broker> {
  const server = new Server(options);
  const jetstreams = new Map<string, JetStream>();
  /** JetStreams of accounts created after start, still recovering. */
  const starting = new Set<Promise<unknown>>();
  let jetstream: JetStream | undefined;
  let monitor: Monitor | undefined;
  /** Stops every account's JetStream; rethrows the first failure once all were tried. */
  const stopJetStreams = async (): Promise<void> => {
    await Promise.all(starting);
    const results = await Promise.allSettled([...jetstreams.values()].map((each) => each.stop()));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  };
  try {
    // JetStream recovers its streams before clients can connect and publish.
    if (options.options.isJetStreamEnabled) {
      await startAccountJetStreams({ server, options: options.options, log: options.log, extensions: options.extensions ?? {}, jetstreams, starting });
      jetstream = jetstreams.get(GLOBAL_ACCOUNT);
    }
    await server.start();
    const monitorPort = options.options.httpPort ?? options.options.httpsPort;
    if (monitorPort !== undefined) {
      monitor = await startMonitor({
        server,
        jetstream,
        accountJetStreams: jetstreams,
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
    await stopJetStreams().catch(() => undefined);
    throw err;
  }
  return {
    server,
    jetstream,
    accountJetStreams: jetstreams,
    monitor,
    reload(next) {
      const outcome = server.reload(next);
      if (outcome.isApplied && outcome.changed.includes('tls') && next.httpsPort !== undefined && next.tls !== undefined) monitor?.setTls(next.tls);
      return outcome;
    },
    async close() {
      await monitor?.close();
      await server.shutdown();
      await stopJetStreams();
    },
  };
}
