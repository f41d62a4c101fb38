/** Starts a real leaf (broker + LMDB in a temp dir + link) against a test hub, with a nats.js client. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Stream } from '../../../core/jetstream/stream.ts';
import type { LeafLinkOptions } from '../../../core/server/link-options.ts';
import { resolveServerOptions } from '../../../core/server/options.ts';
import type { Logger } from '../../../core/util/logger.ts';
import { startLeaf, type Leaf, type LeafLinkTuning } from '../../../leaf/main.ts';
import { recordingLogger, type LogRecord } from '../../helpers/recording-logger.ts';

export type TestLeaf = {
  readonly leaf: Leaf;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  readonly log: Logger & { readonly records: LogRecord[] };
  /** The leaf's JetStream stream by name (throws when absent). */
  stream(name: string): Stream;
  close(): Promise<void>;
};

/** `storeDir`: an existing store to open (kept on close); default a new temp dir removed on close. */
export async function startTestLeaf(options: {
  readonly hubUrl: string;
  readonly link?: Partial<LeafLinkOptions>;
  readonly tuning?: LeafLinkTuning;
  readonly storeDir?: string;
}): Promise<TestLeaf> {
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'canopy-leaf-test-'));
  const serverOptions = resolveServerOptions({ store_dir: storeDir, addr: '127.0.0.1', port: -1, http_port: 0, websocket_port: 0 });
  const link: LeafLinkOptions = {
    role: 'leaf',
    hubUrls: [options.hubUrl],
    leafName: 'pi1',
    hubToken: 'secret',
    heartbeatMs: 1000,
    isCompressionWanted: false,
    ...options.link,
  };
  const log = recordingLogger();
  const leaf = await startLeaf({ options: serverOptions, link, log, tuning: { backoffBaseMs: 20, backoffMaxMs: 100, ...options.tuning } });
  const nc = await connect({ servers: `nats://127.0.0.1:${leaf.broker.server.addresses.port}` });
  const jsm = await jetstreamManager(nc);
  let closing: Promise<void> | undefined;
  return {
    leaf,
    nc,
    jsm,
    js: jetstream(nc),
    log,
    stream(name) {
      const stream = leaf.broker.jetstream?.streams.get(name);
      if (stream === undefined) throw new Error(`no stream ${name}`);
      return stream;
    },
    close() {
      closing ??= (async () => {
        await nc.close();
        await leaf.close();
        if (options.storeDir === undefined) rmSync(storeDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
