import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderStatus } from '../../scripts/cli/status-command.ts';
import { freePort, runCanopy } from '../helpers/processes.ts';

test('canopy status renders a leaf\'s link, a hub\'s leaves and a plain server', () => {
  const now = 1_000_000;
  const leaf = renderStatus(
    {
      role: 'leaf',
      leaf: 'gw-01',
      link: {
        state: 'up',
        hubUrl: 'ws://hub:7422',
        reconnects: 3,
        stalled: true,
        streams: [{ stream: 'SENSORS', state: 'syncing', ackedSeq: 90, lastSeq: 100, backlogMsgs: 10, backlogBytes: 1280, lastAckMs: now - 2500, stalled: true, heldMsgs: 7, refusedPublishes: 2 }],
      },
    },
    now,
  );
  assert.match(leaf, /^leaf gw-01: link up to ws:\/\/hub:7422, reconnects 3, STALLED$/m);
  assert.match(leaf, /^stream\s+state\s+acked\s+last\s+backlog\s+bytes\s+last ack\s+stalled\s+held\s+refused$/m);
  assert.match(leaf, /^SENSORS\s+syncing\s+90\s+100\s+10\s+1280\s+2\.5s\s+yes\s+7\s+2$/m);
  const hub = renderStatus({ role: 'hub', leafs: [{ leaf: 'gw-01', connected: false, streams: [{ stream: 'SENSORS', cursor: 90, gaps: 1, incarnationChanges: 0, lastBatchMs: now - 300_000 }] }] }, now);
  assert.match(hub, /^hub: 1 leaves$/m);
  assert.match(hub, /^gw-01\s+down\s+SENSORS\s+90\s+1\s+0\s+5m$/m);
  assert.match(renderStatus({ links: 'off' }, now), /no links/);
});

test('canopy status shows downstream streams (hub streams synced down) on both sides', () => {
  const now = 1_000_000;
  const leaf = renderStatus(
    { role: 'leaf', leaf: 'gw-01', link: { state: 'up', hubUrl: 'ws://hub:7422', reconnects: 0, streams: [], downstream: [{ stream: 'CMDS', cursor: 42, gaps: 0, incarnationChanges: 0, lastBatchMs: now - 1000 }] } },
    now,
  );
  assert.match(leaf, /^downstream \(hub streams\)$/m);
  assert.match(leaf, /^CMDS\s+42\s+0\s+0\s+1\.0s$/m);
  const hub = renderStatus(
    { role: 'hub', leafs: [{ leaf: 'gw-01', connected: true, streams: [], downstream: [{ stream: 'CMDS', state: 'syncing', ackedSeq: 42, backlogMsgs: 3, lastAckMs: now - 500 }] }] },
    now,
  );
  assert.match(hub, /^gw-01\s+CMDS\s+syncing\s+42\s+3\s+0\.5s$/m);
});

test('canopy status exits 1 with a clear line when the monitor cannot be reached', async () => {
  const port = await freePort();
  const run = runCanopy(['status', '-m', `http://127.0.0.1:${port}`]);
  assert.equal(await run.exited, 1);
  assert.match(run.stderr(), new RegExp(`canopy status: cannot read http://127.0.0.1:${port}/leafz`));
});
