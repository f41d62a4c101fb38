/** Starts a real canopy broker on free loopback ports for one test file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerOptions, type ServerOptions } from '../../core/server/options.ts';
import type { ReloadOutcome } from '../../core/server/server.ts';
import { startBroker, type Broker } from '../../core/start.ts';
import { silentLogger, type Logger } from '../../core/util/logger.ts';

export type TestBroker = {
  readonly broker: Broker;
  readonly port: number;
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  /** ws://127.0.0.1:<port> when the WebSocket listener is on. */
  readonly websocketUrl: string;
  /** http://127.0.0.1:<port> when monitoring is on. */
  readonly httpUrl: string;
  /** JetStream's store_dir (a temp dir removed by close() unless the caller passed its own). */
  readonly storeDir: string;
  /** Broker.reload with `config` resolved as at start (same store_dir, loopback, free ports). */
  reload(config: Record<string, unknown>): ReloadOutcome;
  close(): Promise<void>;
};

/** The options startTestBroker resolves `config` to: loopback, free ports (unless `config` says otherwise). */
function testBrokerOptions(config: Record<string, unknown>, storeDir: string): ServerOptions {
  return resolveServerOptions({
    store_dir: storeDir,
    addr: '127.0.0.1',
    port: -1,
    http_host: '127.0.0.1',
    http_port: -1,
    websocket_host: '127.0.0.1',
    websocket_port: -1,
    ...config,
  });
}

/** Config keys as in a config file (nats-server names); every listener on a free loopback port. */
export async function startTestBroker(config: Record<string, unknown> = {}, log: Logger = silentLogger): Promise<TestBroker> {
  const isOwnStoreDir = config['store_dir'] === undefined;
  const storeDir = isOwnStoreDir ? mkdtempSync(join(tmpdir(), 'canopy-test-')) : String(config['store_dir']);
  const options = testBrokerOptions(config, storeDir);
  const broker = await startBroker({ options, log });
  const { port, websocketPort } = broker.server.addresses;
  return {
    broker,
    port,
    url: `nats://127.0.0.1:${port}`,
    websocketUrl: websocketPort === undefined ? '' : `ws://127.0.0.1:${websocketPort}`,
    httpUrl: broker.monitor === undefined ? '' : `http://127.0.0.1:${broker.monitor.port}`,
    storeDir,
    reload: (next) => broker.reload(testBrokerOptions(next, storeDir)),
    close: async () => {
      await broker.close();
      if (isOwnStoreDir) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
