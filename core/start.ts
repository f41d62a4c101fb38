/** Starts a standalone broker: the core server plus monitoring. The one entry the CLIs call. */
import { startMonitor, type Monitor } from './monitor/http.ts';
import type { ServerOptions } from './server/options.ts';
import { Server } from './server/server.ts';
import type { Logger } from './util/logger.ts';

export type Broker = {
  readonly server: Server;
  readonly monitor: Monitor | undefined;
  /** Graceful stop: listeners close, connections flush and close. */
  close(): Promise<void>;
};

export async function startBroker(options: { options: ServerOptions; log: Logger }): Promise<Broker> {
  const server = new Server(options);
  await server.start();
  let monitor: Monitor | undefined;
  try {
    if (options.options.httpPort !== undefined) {
      monitor = await startMonitor({
        server,
        host: options.options.httpHost,
        port: options.options.httpPort,
        log: options.log.child({ component: 'monitor' }),
      });
    }
  } catch (err) {
    await server.shutdown();
    throw err;
  }
  return {
    server,
    monitor,
    async close() {
      await monitor?.close();
      await server.shutdown();
    },
  };
}
