/**
 * A fresh store_dir opens no LMDB environment (and loads no lmdb) until the first file
 * stream; memory streams made before keep working after; a restart recovers the file
 * stream through the eager path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { DeferredJetStreamStorage } from '../../../core/store/deferred-jetstream-storage.ts';
import { startTestBroker } from '../../helpers/broker.ts';

test('LMDB opens with the first file stream, not before; everything survives a restart', async (t) => {
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-deferred-'));
  t.after(() => rmSync(storeDir, { recursive: true, force: true }));
  let broker = await startTestBroker({ store_dir: storeDir });
  const storage = broker.broker.jetstream?.storage;
  assert.ok(storage instanceof DeferredJetStreamStorage, 'a fresh store_dir gets the deferred storage');
  let nc = await connect({ servers: broker.url });
  let jsm = await jetstreamManager(nc);
  let js = jetstream(nc);
  await jsm.streams.add({ name: 'MEM', subjects: ['mem'], storage: 'memory' as never });
  await js.publish('mem', 'in memory');
  assert.equal(storage.isLmdbOpen, false, 'a memory stream opens no LMDB');
  assert.equal(existsSync(join(storeDir, 'jetstream')), false);
  await jsm.streams.add({ name: 'FILE', subjects: ['file'] });
  assert.equal(storage.isLmdbOpen, true, 'the first file stream opens LMDB');
  await js.publish('file', 'on disk');
  await js.publish('mem', 'still in memory');
  assert.equal((await jsm.streams.info('MEM')).state.messages, 2);
  assert.equal((await jsm.streams.getMessage('FILE', { seq: 1 }))?.string(), 'on disk');
  await nc.close();
  await broker.close();

  broker = await startTestBroker({ store_dir: storeDir });
  t.after(() => broker.close());
  assert.ok(!(broker.broker.jetstream?.storage instanceof DeferredJetStreamStorage), 'an existing store opens at start');
  nc = await connect({ servers: broker.url });
  t.after(() => nc.close());
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
  assert.equal((await jsm.streams.getMessage('FILE', { seq: 1 }))?.string(), 'on disk');
  const names: string[] = [];
  for await (const name of jsm.streams.names()) names.push(name);
  assert.deepEqual(names, ['FILE'], 'memory streams do not survive a restart, as in nats-server');
});
