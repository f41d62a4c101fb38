/**
 * Goal: cursors, gap records and incarnation history survive a hub restart, so a leaf resumes
 * where the hub's disk says and nothing is stored twice (core/link/README.md "Cursor": the
 * cursor is written in the same transaction as the data it covers).
 * Method: sync through a raw link client, close the hub, start a new one on the same store_dir,
 * look at status() before any leaf connects, then offer again and carry on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { LinkTestClient, messages, newIncarnation, startTestHub, type TestHub } from './link-test-client.ts';

test('a restarted hub answers offers with the durable cursors and keeps gaps and incarnation changes', async (t) => {
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-hub-restart-'));
  let hub: TestHub | undefined;
  t.after(async () => {
    await hub?.close();
    rmSync(storeDir, { recursive: true, force: true });
  });
  const old = { stream: 'TELEMETRY', incarnation: newIncarnation() };
  const current = { stream: 'TELEMETRY', incarnation: newIncarnation() };

  hub = await startTestHub({ storeDir });
  const before = await LinkTestClient.connect(hub.linkUrl, 'gw-r');
  before.offer(old, 1, 9);
  await before.expect('cursor');
  before.batch(old, messages(1, 5));
  before.gap(old, 6, 7, 'purged');
  before.batch(old, messages(8, 9));
  await before.cursorAt(old, 9);
  before.offer(current, 1, 2);
  await before.expect('cursor');
  before.batch(current, messages(1, 2));
  await before.cursorAt(current, 2);
  before.close();
  await hub.close();

  hub = await startTestHub({ storeDir });
  // Before the leaf is back, status() shows what the disk holds.
  const [status] = hub.hub.acceptor!.status();
  assert.equal(status?.leaf, 'gw-r');
  assert.equal(status?.connected, false);
  const oldStatus = status!.streams.find((entry) => entry.incarnation === old.incarnation)!;
  assert.deepEqual(
    { cursor: oldStatus.cursor, gaps: oldStatus.gaps, gapMsgs: oldStatus.gapMsgs, isCurrent: oldStatus.isCurrent, recent: oldStatus.recentGaps.map((gap) => [gap.from, gap.to, gap.reason]) },
    { cursor: 9, gaps: 1, gapMsgs: 2, isCurrent: false, recent: [[6, 7, 'purged']] },
  );
  const currentStatus = status!.streams.find((entry) => entry.incarnation === current.incarnation)!;
  assert.equal(currentStatus.cursor, 2);
  assert.equal(currentStatus.isCurrent, true);
  assert.equal(currentStatus.incarnationChanges, 1);

  const after = await LinkTestClient.connect(hub.linkUrl, 'gw-r');
  t.after(() => after.close());
  after.offer(current, 1, 4);
  assert.equal((await after.expect('cursor')).seq, 2);
  after.offer(old, 1, 9);
  assert.equal((await after.expect('cursor')).seq, 9);
  // A resend of what the hub has is ignored; the rest is stored once.
  after.batch(current, messages(1, 4));
  await after.cursorAt(current, 4);

  const nc = await connect({ servers: hub.natsUrl });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info('TELEMETRY');
  assert.equal(info.state.messages, 7 + 4);
  const origins: string[] = [];
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const message = await jsm.streams.getMessage('TELEMETRY', { seq });
    origins.push(`${message?.header.get('Canopy-Origin-Incarnation') === old.incarnation ? 'old' : 'new'}:${message?.header.get('Canopy-Origin-Seq')}`);
  }
  assert.deepEqual(origins, ['old:1', 'old:2', 'old:3', 'old:4', 'old:5', 'old:8', 'old:9', 'new:1', 'new:2', 'new:3', 'new:4']);
});
