/**
 * Goal: when the hub's store cannot commit (disk full), no cursor covers data that is not on
 * disk, the leaf is told (error 'store') and disconnected, and after space returns its next
 * connection resumes from the durable cursor: every message stored once, in order
 * (hub/ingest/README.md "A failed flush").
 * Method: the hub's store_dir on an 8 MiB tmpfs with a filler file (needs root; skipped with
 * the reason otherwise); a raw link client sends 256 KiB batches, each after the previous
 * cursor, until the hub answers error 'store'; then the filler goes and the leaf reconnects.
 */
import assert from 'node:assert/strict';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LinkMessage } from '../../../core/link/index.ts';
import { mountTmpfs } from '../../helpers/tmpfs.ts';
import { LinkTestClient, newIncarnation, startTestHub, type TestHub } from './link-test-client.ts';

const MSG_BYTES = 4096;
const BATCH_MSGS = 64;
/** Batches at most before giving up on filling 8 MiB (each is 256 KiB). */
const BATCHES_MAX = 200;

function bigMessages(from: number, count: number): LinkMessage[] {
  const msgs: LinkMessage[] = [];
  for (let seq = from; seq < from + count; seq++) {
    const data = Buffer.alloc(MSG_BYTES, seq % 251);
    data.write(`m${seq}:`);
    msgs.push({ seq, subject: 'bulk', headers: undefined, data, timestampNs: BigInt(seq) });
  }
  return msgs;
}

test('a failed commit: error store and a close, nothing acknowledged that is not on disk; after space returns the leaf resends and all is stored once', async (t) => {
  let hub: TestHub | undefined;
  const mountDir = mountTmpfs(t, 8 * 1024 * 1024, async () => {
    await hub?.close();
  });
  if (mountDir === undefined) return;
  const filler = join(mountDir, 'filler');
  writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024, 0xa5));
  const storeDir = join(mountDir, 'store');
  mkdirSync(storeDir);
  hub = await startTestHub({ storeDir });

  const key = { stream: 'BULK', incarnation: newIncarnation() };
  const client = await LinkTestClient.connect(hub.linkUrl, 'gw-full');
  client.offer(key, 1, BATCHES_MAX * BATCH_MSGS);
  await client.expect('cursor');
  let cursor = 0;
  let failure: string | undefined;
  for (let batch = 0; batch < BATCHES_MAX && failure === undefined; batch++) {
    client.batch(key, bigMessages(cursor + 1, BATCH_MSGS));
    const answer = await client.next(20_000);
    if (answer.t === 'cursor') {
      assert.equal(answer.seq, cursor + BATCH_MSGS);
      cursor = answer.seq;
    } else {
      assert.equal(answer.t, 'error');
      assert.equal(answer.t === 'error' && answer.code, 'store', JSON.stringify(answer));
      failure = answer.t === 'error' ? answer.text : '';
    }
  }
  assert.ok(failure !== undefined, 'the disk filled up');
  await client.waitClosed();
  t.diagnostic(`durable cursor ${cursor} when the store refused a commit`);
  assert.ok(cursor > 0, 'batches were stored before the disk was full');

  // Only what was acknowledged is stored, and the hub's cursor says so.
  const stream = hub.hub.broker.jetstream!.streams.get('BULK')!;
  assert.equal(stream.store.state().messages, cursor);
  const status = hub.hub.acceptor!.status().find((entry) => entry.leaf === 'gw-full')!;
  assert.equal(status.streams[0]?.cursor, cursor);
  assert.equal(status.connected, false);

  // Space comes back; the leaf reconnects, is told the durable cursor and resends from there.
  unlinkSync(filler);
  const again = await LinkTestClient.connect(hub.linkUrl, 'gw-full');
  t.after(() => again.close());
  again.offer(key, 1, cursor + 2 * BATCH_MSGS);
  assert.equal((await again.expect('cursor')).seq, cursor);
  again.batch(key, bigMessages(cursor + 1, BATCH_MSGS));
  again.batch(key, bigMessages(cursor + 1 + BATCH_MSGS, BATCH_MSGS));
  await again.cursorAt(key, cursor + 2 * BATCH_MSGS, 20_000);
  const total = cursor + 2 * BATCH_MSGS;
  assert.equal(stream.store.state().messages, total);
  // Every origin sequence once, in order (hub sequences of the failed commit read as deleted).
  let origin = 0;
  for (let seq = stream.store.state().firstSeq; seq <= stream.store.state().lastSeq; seq++) {
    const message = stream.store.load(seq);
    if (message === undefined) continue;
    origin += 1;
    assert.equal(message.data.subarray(0, `m${origin}:`.length).toString(), `m${origin}:`, `hub seq ${seq}`);
  }
  assert.equal(origin, total);
});
