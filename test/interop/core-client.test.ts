/**
 * The official nats.js client (@nats-io/transport-node) against a real canopy
 * server on loopback: the core protocol as users' code exercises it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, headers, RequestError, wsconnect, type NatsConnection, type Msg } from '@nats-io/transport-node';
import { WebSocket } from 'ws';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { eventually } from '../helpers/eventually.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Collects `count` messages from a subscription; rejects after `timeoutMs`. */
async function collect(iterable: AsyncIterable<Msg>, count: number, timeoutMs = 3000): Promise<Msg[]> {
  const messages: Msg[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`only ${messages.length} of ${count} messages arrived`)), timeoutMs);
  });
  const reading = (async () => {
    for await (const message of iterable) {
      messages.push(message);
      if (messages.length === count) break;
    }
    return messages;
  })();
  try {
    return await Promise.race([reading, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('nats.js core client against canopy', () => {
  let broker: TestBroker;
  const connections: NatsConnection[] = [];
  const open = async (options: Record<string, unknown> = {}): Promise<NatsConnection> => {
    const nc = await connect({ servers: broker.url, ...options });
    connections.push(nc);
    return nc;
  };

  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('connects and sees the advertised server info', async () => {
    const nc = await open();
    const info = nc.info;
    assert.ok(info);
    assert.equal(info.version, '2.10.29');
    assert.equal(info.headers, true);
    assert.equal(info.max_payload, 1024 * 1024);
    assert.equal(info.proto, 1);
  });

  test('publish and subscribe, payload bytes intact', async () => {
    const nc = await open();
    const sub = nc.subscribe('greet.joe', { max: 2 });
    await nc.flush();
    const binary = new Uint8Array([0, 13, 10, 255, 1, 2]);
    nc.publish('greet.joe', 'hello');
    nc.publish('greet.joe', binary);
    const messages = await collect(sub, 2);
    assert.equal(messages[0]!.string(), 'hello');
    assert.deepEqual(Buffer.from(messages[1]!.data), Buffer.from(binary));
    assert.equal(messages[0]!.subject, 'greet.joe');
  });

  test('wildcards: * matches one token, > one or more', async () => {
    const nc = await open();
    const star = nc.subscribe('a.*.c');
    const full = nc.subscribe('a.>');
    await nc.flush();
    for (const subject of ['a.b.c', 'a.b.d', 'a.x.c', 'a', 'b.b.c', 'a.b.c.d']) nc.publish(subject, subject);
    await nc.flush();
    const starGot = (await collect(star, 2)).map((m) => m.subject);
    const fullGot = (await collect(full, 4)).map((m) => m.subject);
    assert.deepEqual(starGot, ['a.b.c', 'a.x.c']);
    assert.deepEqual(fullGot, ['a.b.c', 'a.b.d', 'a.x.c', 'a.b.c.d']);
  });

  test('queue group: each message reaches exactly one member', async () => {
    const nc = await open();
    const counts = [0, 0, 0, 0];
    const subs = counts.map((_, index) =>
      nc.subscribe('work', { queue: 'workers', callback: () => {
        counts[index]!++;
      } }),
    );
    const plain = nc.subscribe('work');
    let plainCount = 0;
    (async () => {
      for await (const _message of plain) plainCount++;
    })();
    await nc.flush();
    const publisher = await open();
    for (let i = 0; i < 400; i++) publisher.publish('work', `${i}`);
    await publisher.flush();
    await eventually(() => assert.equal(counts.reduce((a, b) => a + b, 0), 400));
    await eventually(() => assert.equal(plainCount, 400));
    for (const count of counts) assert.ok(count > 0, `every member got some: ${counts.join(',')}`);
    for (const sub of subs) sub.unsubscribe();
    plain.unsubscribe();
  });

  test('request-reply', async () => {
    const nc = await open();
    nc.subscribe('echo', { callback: (_err, message) => {
        message.respond(encoder.encode(`re: ${message.string()}`));
      } });
    await nc.flush();
    const requester = await open();
    const reply = await requester.request('echo', 'ping', { timeout: 2000 });
    assert.equal(reply.string(), 're: ping');
  });

  test('request with no responders fails fast with the no-responders error', async () => {
    const nc = await open();
    const started = Date.now();
    await assert.rejects(nc.request('nobody.home', 'x', { timeout: 5000 }), (err: unknown) => {
      assert.ok(err instanceof RequestError, `got ${String(err)}`);
      assert.equal(err.isNoResponders(), true);
      return true;
    });
    assert.ok(Date.now() - started < 4000, 'no-responders must not wait for the timeout');
  });

  test('headers round trip, including repeated keys and case', async () => {
    const nc = await open();
    const sub = nc.subscribe('hdr');
    await nc.flush();
    const h = headers();
    h.append('X-Trace', 'abc');
    h.append('X-Multi', '1');
    h.append('X-Multi', '2');
    nc.publish('hdr', 'body', { headers: h });
    const [message] = await collect(sub, 1);
    assert.equal(message!.headers?.get('X-Trace'), 'abc');
    assert.deepEqual(message!.headers?.values('X-Multi'), ['1', '2']);
    assert.equal(message!.string(), 'body');
  });

  test('a message with headers reaches a client without header support with the headers stripped', async () => {
    const nc = await open();
    const sub = nc.subscribe('strip');
    await nc.flush();
    const { RawClient } = await import('../helpers/raw-client.ts');
    const raw = await RawClient.connected(broker.port, { headers: false });
    raw.send('SUB strip 1\r\nPING\r\n');
    assert.equal(await raw.readLine(), 'PONG');
    const h = headers();
    h.set('K', 'V');
    nc.publish('strip', 'data', { headers: h });
    assert.equal(await raw.readLine(), 'MSG strip 1 4');
    assert.equal(await raw.readLine(), 'data');
    const [withHeaders] = await collect(sub, 1);
    assert.equal(withHeaders!.headers?.get('K'), 'V');
    raw.close();
  });

  test('UNSUB with max stops delivery after max messages', async () => {
    const nc = await open();
    const sub = nc.subscribe('limited', { max: 3 });
    await nc.flush();
    for (let i = 0; i < 10; i++) nc.publish('limited', `${i}`);
    await nc.flush();
    const messages = await collect(sub, 3);
    assert.deepEqual(messages.map((m) => m.string()), ['0', '1', '2']);
    const limitedSubs = (): number =>
      [...broker.broker.server.connections.values()].flatMap((c) => [...c.subscriptions.values()]).filter((s) => s.subject === 'limited').length;
    await eventually(() => assert.equal(limitedSubs(), 0));
  });

  test('drain delivers what is in flight, then closes', async () => {
    const nc = await open();
    let received = 0;
    nc.subscribe('drain.me', { callback: () => {
        received++;
      } });
    await nc.flush();
    const publisher = await open();
    for (let i = 0; i < 1000; i++) publisher.publish('drain.me', 'x');
    await publisher.flush();
    await nc.drain();
    assert.equal(received, 1000);
    assert.equal(nc.isClosed(), true);
  });

  test('flush round-trips a PING', async () => {
    const nc = await open();
    const rtt = await nc.rtt();
    assert.ok(rtt >= 0 && rtt < 1000);
  });

  test('a payload over max_payload is refused by the client before sending', async () => {
    const nc = await open();
    assert.throws(() => nc.publish('big', new Uint8Array(1024 * 1024 + 1)), /max_payload/);
    nc.publish('big', new Uint8Array(1024 * 1024 - 100));
    await nc.flush();
  });

  test('echo: false does not deliver a connection its own messages', async () => {
    const nc = await open({ noEcho: true });
    const other = await open();
    let own = 0;
    nc.subscribe('echo.test', { callback: () => {
        own++;
      } });
    const otherSub = other.subscribe('echo.test', { max: 1 });
    await nc.flush();
    await other.flush();
    nc.publish('echo.test', 'x');
    await collect(otherSub, 1);
    await nc.flush();
    assert.equal(own, 0);
  });
});

describe('nats.js reconnect', () => {
  test('a client reconnects across a server restart on the same port and keeps its subscription', async (t) => {
    let broker = await startTestBroker();
    const port = broker.port;
    t.after(() => broker.close());
    const nc = await connect({ servers: broker.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    t.after(() => nc.close());
    const sub = nc.subscribe('after.restart', { max: 1 });
    await nc.flush();
    await broker.close();
    broker = await startTestBroker({ port });
    const isResubscribed = (): boolean =>
      [...broker.broker.server.connections.values()].some((c) => [...c.subscriptions.values()].some((s) => s.subject === 'after.restart'));
    await eventually(() => assert.ok(isResubscribed()), { timeoutMs: 10_000 });
    const publisher = await connect({ servers: broker.url });
    t.after(() => publisher.close());
    publisher.publish('after.restart', 'back');
    const [message] = await collect(sub, 1);
    assert.equal(message!.string(), 'back');
  });
});

describe('nats.js WebSocket client', () => {
  test('wsconnect publishes and subscribes, also with a TCP client on the other side', async (t) => {
    const broker = await startTestBroker();
    t.after(() => broker.close());
    (globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;
    const ws = await wsconnect({ servers: broker.websocketUrl });
    t.after(() => ws.close());
    const tcp = await connect({ servers: broker.url });
    t.after(() => tcp.close());
    const wsSub = ws.subscribe('mixed.>', { max: 2 });
    await ws.flush();
    tcp.publish('mixed.one', 'from tcp');
    const big = new Uint8Array(256 * 1024).fill(7);
    tcp.publish('mixed.two', big);
    const messages = await collect(wsSub, 2);
    assert.equal(messages[0]!.string(), 'from tcp');
    assert.deepEqual(Buffer.from(messages[1]!.data), Buffer.from(big));
    tcp.subscribe('svc', { callback: (_err, m) => {
        m.respond(encoder.encode(decoder.decode(m.data).toUpperCase()));
      } });
    await tcp.flush();
    const reply = await ws.request('svc', 'loud', { timeout: 2000 });
    assert.equal(reply.string(), 'LOUD');
  });
});
