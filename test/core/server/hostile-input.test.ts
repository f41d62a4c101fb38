/**
 * Bad input never crashes the process and never disturbs other connections.
 * Method: while a bystander runs request-reply through nats.js, many raw TCP and
 * WebSocket connections send generated garbage, near-valid protocol and
 * oversized or truncated frames; afterwards the server still serves, the
 * bystander saw every reply, and no garbage connection left a subscription behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connect } from '@nats-io/transport-node';
import { WebSocket } from 'ws';
import { startTestBroker } from '../../helpers/broker.ts';
import { eventually } from '../../helpers/eventually.ts';
import { RawClient } from '../../helpers/raw-client.ts';

const FRAGMENTS = [
  'CONNECT {"verbose":false,"headers":true}\r\n', 'CONNECT {"protocol":9}\r\n', 'CONNECT [1]\r\n', 'CONNECT {\r\n',
  'PUB a 1\r\nx\r\n', 'PUB a 5\r\nx\r\n', 'PUB\r\n', 'PUB a b c d e\r\n', 'PUB a 99999999999\r\n', 'PUB a -1\r\n',
  'HPUB a 3 2\r\n', 'HPUB a 0 0\r\n\r\n', 'HPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n', 'SUB a 1\r\n', 'SUB a.> q 2\r\n',
  'SUB ..a 3\r\n', 'SUB\r\n', 'UNSUB 1\r\n', 'UNSUB 1 abc\r\n', 'UNSUB\r\n', 'PING\r\n', 'PONG\r\n', '+OK\r\n',
  '-ERR x\r\n', 'INFO {}\r\n', 'MSG a 1 1\r\nx\r\n', '\r\n', ' ', '\x00\xff\x7f', 'P', 'PU', 'PUB a ',
];

test('generated hostile streams over TCP and WebSocket leave the server and a bystander unharmed', async (t) => {
  const broker = await startTestBroker({ max_payload: '64KB', max_control_line: 512 });
  t.after(() => broker.close());
  // The server's own (internal) subscriptions, e.g. JetStream's API, are there from the start.
  const internalSubscriptions = broker.broker.server.sublist.count;
  const bystander = await connect({ servers: broker.url });
  t.after(() => bystander.close());
  bystander.subscribe('bystander.echo', { callback: (_err, message) => { message.respond(message.data); } });
  const requester = await connect({ servers: broker.url });
  t.after(() => requester.close());
  let replies = 0;
  let isRunning = true;
  const requests = (async () => {
    while (isRunning) {
      const reply = await requester.request('bystander.echo', `r${replies}`, { timeout: 5000 });
      assert.equal(reply.string(), `r${replies}`);
      replies++;
    }
  })();

  const stream = fc.array(
    fc.oneof(
      fc.constantFrom(...FRAGMENTS).map((text) => Buffer.from(text, 'latin1')),
      fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    ),
    { maxLength: 24 },
  );
  await fc.assert(
    fc.asyncProperty(stream, fc.boolean(), async (pieces, overWebSocket) => {
      if (overWebSocket) {
        const socket = new WebSocket(broker.websocketUrl);
        await new Promise((resolve, reject) => {
          socket.once('open', resolve);
          socket.once('error', reject);
        });
        for (const piece of pieces) if (socket.readyState === socket.OPEN) socket.send(piece);
        await new Promise((resolve) => setTimeout(resolve, 5));
        socket.terminate();
      } else {
        const client = await RawClient.open(broker.port);
        for (const piece of pieces) if (!client.isClosed) client.send(piece);
        await client.drainFor(5);
        client.close();
      }
    }),
    { numRuns: 150 },
  );

  // Oversized and malformed WebSocket frames: text frames, a frame over the ws limit.
  const socket = new WebSocket(broker.websocketUrl);
  await new Promise((resolve) => socket.once('open', resolve));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.send('CONNECT {}\r\nPING\r\n');
  socket.send(Buffer.alloc(9 * 1024 * 1024, 65));
  await closed;

  isRunning = false;
  await requests;
  assert.ok(replies > 0, 'the bystander kept getting replies');
  await eventually(() => assert.equal(broker.broker.server.connections.size, 2));
  const leftover = [...broker.broker.server.connections.values()].reduce((n, c) => n + c.subscriptions.size, 0);
  assert.equal(broker.broker.server.sublist.count, internalSubscriptions + leftover, 'no subscription of a closed connection stays in the sublist');
  const reply = await requester.request('bystander.echo', 'still here', { timeout: 2000 });
  assert.equal(reply.string(), 'still here');
});
