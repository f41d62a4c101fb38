/**
 * @nats-io/kv 3.x against canopy: buckets are streams, keys are subjects,
 * revisions are sequences (NATS-SPEC.md §6).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';

async function collect<T>(iterable: AsyncIterable<T>, count: number, timeoutMs = 3000): Promise<T[]> {
  const items: T[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`only ${items.length} of ${count} arrived`)), timeoutMs);
  });
  const reading = (async () => {
    for await (const item of iterable) {
      items.push(item);
      if (items.length === count) break;
    }
    return items;
  })();
  try {
    return await Promise.race([reading, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('KV with @nats-io/kv', () => {
  let broker: TestBroker;
  let nc: NatsConnection;
  let kvm: Kvm;
  let kv: KV;

  before(async () => {
    broker = await startTestBroker();
    nc = await connect({ servers: broker.url });
    kvm = new Kvm(nc);
    kv = await kvm.create('settings', { history: 5 });
  });
  after(async () => {
    await nc.close();
    await broker.close();
  });

  test('the bucket is a KV_ stream with direct get and discard new', async () => {
    const status = await kv.status();
    assert.equal(status.bucket, 'settings');
    assert.equal(status.history, 5);
    assert.equal(status.streamInfo.config.name, 'KV_settings');
    assert.equal(status.streamInfo.config.allow_direct, true);
    assert.equal(status.streamInfo.config.discard, 'new');
  });

  test('put and get, revisions are sequences', async () => {
    const r1 = await kv.put('color', 'red');
    const r2 = await kv.put('color', 'blue');
    assert.equal(r2, r1 + 1);
    const entry = await kv.get('color');
    assert.equal(entry?.string(), 'blue');
    assert.equal(entry?.revision, r2);
    assert.equal(entry?.operation, 'PUT');
    const old = await kv.get('color', { revision: r1 });
    assert.equal(old?.string(), 'red');
    assert.equal(await kv.get('missing'), null);
  });

  test('create only when absent; update only at the expected revision', async () => {
    const revision = await kv.create('size', 'small');
    await assert.rejects(kv.create('size', 'large'), /wrong last sequence|exists/);
    const updated = await kv.update('size', 'medium', revision);
    assert.equal(updated, revision + 1);
    await assert.rejects(kv.update('size', 'huge', revision), /wrong last sequence/);
  });

  test('delete and purge leave markers; create works again after delete', async () => {
    await kv.put('temp', '1');
    await kv.delete('temp');
    const deleted = await kv.get('temp');
    assert.equal(deleted?.operation, 'DEL');
    await kv.create('temp', 'again');
    assert.equal((await kv.get('temp'))?.string(), 'again');
    await kv.purge('temp');
    const purged = await kv.get('temp');
    assert.equal(purged?.operation, 'PURGE');
  });

  test('history lists the revisions of a key', async () => {
    await kv.put('h', '1');
    await kv.put('h', '2');
    await kv.put('h', '3');
    const iterator = await kv.history({ key: 'h' });
    const values: string[] = [];
    for await (const entry of iterator) values.push(entry.string());
    assert.deepEqual(values, ['1', '2', '3']);
  });

  test('keys lists the live keys', async () => {
    const iterator = await kv.keys();
    const keys: string[] = [];
    for await (const key of iterator) keys.push(key);
    assert.ok(keys.includes('color') && keys.includes('size'), keys.join(','));
    assert.ok(!keys.includes('temp'), 'a purged key is not listed');
  });

  test('watch sees the current values, then updates', async () => {
    const watcher = await kv.watch({ key: 'w.*' });
    await kv.put('w.a', 'x');
    await kv.put('w.b', 'y');
    const entries: KvWatchEntry[] = await collect(watcher, 2);
    assert.deepEqual(entries.map((e) => [e.key, e.string()]), [['w.a', 'x'], ['w.b', 'y']]);
    watcher.stop();
  });

  test('list buckets and destroy', async () => {
    const names: string[] = [];
    for await (const status of kvm.list()) names.push(status.bucket);
    assert.ok(names.includes('settings'));
    const doomed = await kvm.create('doomed');
    await doomed.put('k', 'v');
    assert.equal(await doomed.destroy(), true);
  });
});
