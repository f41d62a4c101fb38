/**
 * PeerTransport (hub/raft-host/peer-transport.ts) over real loopback WebSockets: messages
 * arrive from an authenticated peer; a wrong secret, another cluster, a forged sender or
 * a malformed frame is refused and counted; and the frame decoder (wire.ts) answers any
 * bytes with a frame or a reason, never an exception.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { encode } from 'cbor-x';
import { WebSocket } from 'ws';
import { silentLogger } from '../../../core/util/logger.ts';
import { PeerTransport } from '../../../hub/raft-host/peer-transport.ts';
import { decodePeerFrame, encodePeerFrame } from '../../../hub/raft-host/wire.ts';
import type { Message } from '../../../hub/raft/index.ts';
import { eventually } from '../../helpers/eventually.ts';

const SECRET = new TextEncoder().encode('the-cluster-secret-for-tests');

async function transport(t: TestContext, nodeId: number, options: { secret?: Uint8Array; clusterId?: string } = {}): Promise<{ peer: PeerTransport; received: Message[] }> {
  const received: Message[] = [];
  const peer = await PeerTransport.listen({
    clusterId: options.clusterId ?? 'c1',
    nodeId,
    secret: options.secret ?? SECRET,
    host: '127.0.0.1',
    port: 0,
    log: silentLogger,
    onMessages: (messages) => received.push(...messages),
  });
  t.after(() => peer.close());
  return { peer, received };
}

const heartbeat = (from: number, to: number, commit: number): Message => ({ type: 'heartbeat', from, to, term: 3, commit, context: 0 });

test('PeerTransport: an authenticated peer delivers batches, entries and snapshots intact', async (t) => {
  const a = await transport(t, 1);
  const b = await transport(t, 2);
  a.peer.setPeer(2, `ws://127.0.0.1:${b.peer.port}`);
  const append: Message = {
    type: 'append',
    from: 1,
    to: 2,
    term: 3,
    index: 7,
    logTerm: 2,
    commit: 7,
    entries: [
      { kind: 'normal', index: 8, term: 3, data: new Uint8Array([1, 2, 3]) },
      { kind: 'conf-change', index: 9, term: 3, change: { type: 'add-learner', nodeId: 4, context: new TextEncoder().encode('ws://x:1') } },
    ],
  };
  const snapshot: Message = { type: 'snapshot', from: 1, to: 2, term: 3, snapshot: { metadata: { index: 9, term: 3, confState: { voters: [1, 2], learners: [4] } }, data: new Uint8Array([9]) } };
  await eventually(() => {
    a.peer.send([heartbeat(1, 2, 1), append, snapshot]);
    assert.ok(b.received.length >= 3, 'all three messages arrived');
  });
  const [first, second, third] = b.received;
  assert.deepEqual(first, heartbeat(1, 2, 1));
  assert.deepEqual(normalizeBytes(second), normalizeBytes(append));
  assert.equal((third as typeof snapshot).snapshot.metadata.index, 9);
  assert.deepEqual([...(third as typeof snapshot).snapshot.data], [9]);
  assert.equal(b.peer.stats.authFailures, 0);
});

/** `value` with every byte array (Buffer or Uint8Array) as a plain number list, so deepEqual compares bytes, not classes. */
function normalizeBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(normalizeBytes);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, normalizeBytes(item)]));
  return value;
}

test('PeerTransport: a wrong secret or another cluster is refused and counted; nothing is delivered', async (t) => {
  const server = await transport(t, 2);
  const wrongSecret = await transport(t, 1, { secret: new TextEncoder().encode('another-secret-of-some-length') });
  const otherCluster = await transport(t, 3, { clusterId: 'c2' });
  wrongSecret.peer.setPeer(2, `ws://127.0.0.1:${server.peer.port}`);
  otherCluster.peer.setPeer(2, `ws://127.0.0.1:${server.peer.port}`);
  await eventually(() => {
    wrongSecret.peer.send([heartbeat(1, 2, 1)]);
    otherCluster.peer.send([heartbeat(3, 2, 1)]);
    assert.ok(server.peer.stats.authFailures >= 2, 'both refused');
  });
  assert.equal(server.received.length, 0);
});

/** A raw WebSocket client that answers the challenge correctly through a real PeerTransport's MAC. */
async function rawClient(port: number): Promise<WebSocket> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return socket;
}

test('PeerTransport: a peer sending as another node, or sending garbage, is cut off; the server keeps serving', async (t) => {
  const server = await transport(t, 2);
  const honest = await transport(t, 1);
  honest.peer.setPeer(2, `ws://127.0.0.1:${server.peer.port}`);
  // A forged sender: node 1 is authenticated but its frame carries a message from node 3.
  await eventually(() => {
    honest.peer.send([heartbeat(1, 2, 1)]);
    assert.ok(server.received.length > 0, 'the honest peer is heard');
  });
  const before = server.received.length;
  honest.peer.send([heartbeat(3, 2, 99)]);
  // Garbage before authenticating.
  const garbage = await rawClient(server.peer.port);
  const closed = new Promise((resolve) => garbage.once('close', resolve));
  garbage.send(Buffer.from([0xff, 0x00, 0x13, 0x37]));
  await closed;
  // A frame before hello.
  const early = await rawClient(server.peer.port);
  const earlyClosed = new Promise((resolve) => early.once('close', resolve));
  early.send(encodePeerFrame({ t: 'msgs', msgs: [heartbeat(1, 2, 5)] }));
  await earlyClosed;
  assert.ok(!server.received.some((message) => message.from === 3 || (message.type === 'heartbeat' && message.commit >= 5)), 'no forged or unauthenticated message was delivered');
  // The honest peer reconnects and is served again.
  await eventually(() => {
    honest.peer.send([heartbeat(1, 2, 2)]);
    assert.ok(server.received.length > before, 'the honest peer is heard again');
  });
});

test('decodePeerFrame: any bytes give a frame or a reason, never an exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      const result = decodePeerFrame(bytes);
      assert.ok(typeof result === 'string' || typeof result === 'object', 'a frame or a reason');
    }),
    { numRuns: 2000 },
  );
  // Structured but wrong: CBOR maps with the right keys and wrong values.
  fc.assert(
    fc.property(fc.anything(), fc.constantFrom('challenge', 'hello', 'msgs'), (value, type) => {
      const shapes = [
        { t: type, msgs: [value] },
        { t: type, msgs: [{ type: 'append', from: 1, to: 2, term: 1, index: 1, logTerm: 1, commit: 1, entries: [value] }] },
        { t: type, cluster: value, from: value, mac: value, nonce: value },
      ];
      for (const shape of shapes) {
        let bytes: Uint8Array;
        try {
          bytes = encode(shape);
        } catch {
          continue;
        }
        const result = decodePeerFrame(bytes);
        if (typeof result !== 'string' && result.t === 'msgs') {
          for (const message of result.msgs) assert.ok(Number.isSafeInteger(message.from) && message.from > 0, 'a checked sender');
        }
      }
    }),
    { numRuns: 1000 },
  );
});
