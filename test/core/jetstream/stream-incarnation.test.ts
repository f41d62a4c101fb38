/**
 * Every stream has an incarnation id (core/link/README.md "Incarnation"): kept across
 * restarts for file streams, new for a re-created stream and for a memory stream after a
 * restart (its data is gone, so whoever copied it must not resume from the old cursor).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startTestBroker, type TestBroker } from '../../helpers/broker.ts';

function incarnationOf(server: TestBroker, stream: string): string {
  const found = server.broker.jetstream?.streams.get(stream);
  assert.ok(found !== undefined, `stream ${stream} exists`);
  return found.incarnation;
}

test('stream incarnation: kept across a restart for file streams, new on re-create and for memory streams', async (t) => {
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-incarnation-'));
  t.after(() => rmSync(storeDir, { recursive: true, force: true }));
  let server = await startTestBroker({ store_dir: storeDir });
  let nc = await connect({ servers: server.url });
  let jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'F', subjects: ['f.>'], storage: StorageType.File });
  await jsm.streams.add({ name: 'M', subjects: ['m.>'], storage: StorageType.Memory });
  const file = incarnationOf(server, 'F');
  const memory = incarnationOf(server, 'M');
  assert.match(file, /^[0-9a-f]{32}$/);
  assert.notEqual(file, memory);
  await nc.close();
  await server.close();

  server = await startTestBroker({ store_dir: storeDir });
  t.after(() => server.close());
  assert.equal(incarnationOf(server, 'F'), file, 'a file stream keeps its incarnation across a restart');
  nc = await connect({ servers: server.url });
  t.after(() => nc.close());
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'M', subjects: ['m.>'], storage: StorageType.Memory });
  assert.notEqual(incarnationOf(server, 'M'), memory, 'a memory stream after a restart is a new incarnation');
  await jsm.streams.delete('F');
  await jsm.streams.add({ name: 'F', subjects: ['f.>'], storage: StorageType.File });
  assert.notEqual(incarnationOf(server, 'F'), file, 'a re-created stream is a new incarnation');
});
