/**
 * Connection churn (issue 6 "connection floods"; the timed version is `npm run bench:flood`):
 * while a few thousand clients connect (INFO, CONNECT, PING/PONG) and go away, some cleanly and
 * some with a reset, an existing official client keeps getting its requests answered, and the
 * server ends with only the clients that stayed. Nothing here depends on speed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { openFloodClient } from '../../scripts/bench/flood-client.ts';
import { CLOSED_CONNECTIONS_MAX } from '../../core/server/server.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { eventually } from '../helpers/eventually.ts';

const CHURNED_CONNECTIONS = 3000;
/** Clients connecting at once. */
const CHURN_CONCURRENCY = 100;

let broker: TestBroker;
let responder: NatsConnection;
let requester: NatsConnection;

before(async () => {
  broker = await startTestBroker({ jetstream: false });
  responder = await connect({ servers: broker.url });
  responder.subscribe('churn.echo', {
    callback: (err, msg) => {
      if (err === null) msg.respond(msg.data);
    },
  });
  await responder.flush();
  requester = await connect({ servers: broker.url });
});
after(async () => {
  await requester?.close();
  await responder?.close();
  await broker?.close();
});

test('an existing client is answered while thousands of connections open and close', async () => {
  let churned = 0;
  let next = 0;
  const churnOne = async (): Promise<void> => {
    while (next < CHURNED_CONNECTIONS) {
      const index = next++;
      const socket = await openFloodClient(broker.port);
      if (index % 2 === 0) socket.end();
      else socket.resetAndDestroy();
      churned++;
    }
  };
  const churning = Promise.all(Array.from({ length: CHURN_CONCURRENCY }, churnOne));
  let isChurning = true;
  void churning.finally(() => (isChurning = false));
  let answered = 0;
  while (isChurning || answered === 0) {
    const reply = await requester.request('churn.echo', `request ${answered}`, { timeout: 30_000 });
    assert.equal(reply.string(), `request ${answered}`);
    answered++;
  }
  await churning;
  assert.equal(churned, CHURNED_CONNECTIONS);
  assert.ok(answered > 0);
  // Every churned client is gone; the two that stayed are served as before.
  await eventually(() => assert.equal(broker.broker.server.connections.size, 2), { timeoutMs: 30_000 });
  assert.equal(broker.broker.server.closedConnectionsCount, Math.min(CHURNED_CONNECTIONS, CLOSED_CONNECTIONS_MAX));
  const reply = await requester.request('churn.echo', 'after', { timeout: 30_000 });
  assert.equal(reply.string(), 'after');
});
