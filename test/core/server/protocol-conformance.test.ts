/**
 * The wire as a raw client sees it: exact -ERR texts, which errors close the
 * connection, verbose/pedantic, CONNECT validation, and every connection limit.
 * Each test also checks that a second, well-behaved connection is undisturbed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBroker, type TestBroker } from '../../helpers/broker.ts';
import { eventually } from '../../helpers/eventually.ts';
import { RawClient } from '../../helpers/raw-client.ts';
import { recordingLogger } from '../../helpers/recording-logger.ts';

/** A bystander connection that must keep working while others misbehave. */
async function assertBystanderWorks(port: number): Promise<void> {
  const client = await RawClient.connected(port);
  client.send('SUB bystander 1\r\nPUB bystander 2\r\nhi\r\nPING\r\n');
  assert.equal(await client.readLine(), 'MSG bystander 1 2');
  assert.equal(await client.readLine(), 'hi');
  assert.equal(await client.readLine(), 'PONG');
  client.close();
}

describe('protocol conformance', () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ max_subscriptions: 5 });
  });
  after(() => broker.close());

  test('INFO comes first and carries the fields clients need', async () => {
    const client = await RawClient.open(broker.port);
    const line = await client.readLine();
    assert.match(line, /^INFO \{.*\}$/);
    const info = JSON.parse(line.slice(5)) as Record<string, unknown>;
    assert.equal(info['version'], '2.10.29');
    assert.equal(info['proto'], 1);
    assert.equal(info['headers'], true);
    assert.equal(info['max_payload'], 1048576);
    assert.equal(typeof info['server_id'], 'string');
    assert.equal(typeof info['client_id'], 'number');
    assert.equal(info['client_ip'], '127.0.0.1');
    client.close();
  });

  test('CONNECT then PING is answered by PONG and nothing before it', async () => {
    const client = await RawClient.open(broker.port);
    await client.readLine();
    client.send('CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true,"no_responders":true}\r\nPING\r\n');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('verbose: +OK after each well-formed op, none after PING', async () => {
    const client = await RawClient.open(broker.port);
    await client.readLine();
    client.send('CONNECT {"verbose":true}\r\nSUB v 1\r\nPUB v 1\r\nx\r\nUNSUB 1\r\nPING\r\n');
    assert.equal(await client.readLine(), '+OK');
    assert.equal(await client.readLine(), '+OK');
    assert.equal(await client.readLine(), 'MSG v 1 1');
    assert.equal(await client.readLine(), 'x');
    assert.equal(await client.readLine(), '+OK');
    assert.equal(await client.readLine(), '+OK');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('absent CONNECT fields default to verbose and pedantic, as in nats-server', async () => {
    const client = await RawClient.open(broker.port);
    await client.readLine();
    client.send('CONNECT {}\r\nPUB foo.* 0\r\n\r\nPING\r\n');
    assert.equal(await client.readLine(), '+OK');
    assert.equal(await client.readLine(), "-ERR 'Invalid Publish Subject'");
    assert.equal(await client.readLine(), '+OK');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('pedantic: a wildcard publish subject gets -ERR (and, as in nats-server, is still routed); the connection stays', async () => {
    const client = await RawClient.connected(broker.port, { pedantic: true });
    client.send('SUB foo.> 1\r\nPUB foo.* 1\r\na\r\nPUB foo.bar 1\r\nb\r\nPING\r\n');
    assert.equal(await client.readLine(), "-ERR 'Invalid Publish Subject'");
    assert.equal(await client.readLine(), 'MSG foo.* 1 1');
    assert.equal(await client.readLine(), 'a');
    assert.equal(await client.readLine(), 'MSG foo.bar 1 1');
    assert.equal(await client.readLine(), 'b');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('non-pedantic: a wildcard token in a publish subject is routed literally', async () => {
    const client = await RawClient.connected(broker.port);
    client.send('SUB $JS.API.CONSUMER.CREATE.S.C.> 1\r\nPUB $JS.API.CONSUMER.CREATE.S.C.orders.* 2\r\nok\r\nPING\r\n');
    assert.equal(await client.readLine(), 'MSG $JS.API.CONSUMER.CREATE.S.C.orders.* 1 2');
    assert.equal(await client.readLine(), 'ok');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('HPUB with header length 0 is a message without headers', async () => {
    const client = await RawClient.connected(broker.port);
    client.send('SUB h 1\r\nHPUB h 0 5\r\nhello\r\nPING\r\n');
    assert.equal(await client.readLine(), 'MSG h 1 5');
    assert.equal(await client.readLine(), 'hello');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('HPUB with headers arrives as HMSG with the same sizes, reply kept', async () => {
    const client = await RawClient.connected(broker.port);
    const header = 'NATS/1.0\r\nA: b\r\n\r\n';
    const body = 'payload';
    client.send(`SUB h2 9\r\nHPUB h2 r.1 ${header.length} ${header.length + body.length}\r\n${header}${body}\r\nPING\r\n`);
    assert.equal(await client.readLine(), `HMSG h2 9 r.1 ${header.length} ${header.length + body.length}`);
    const bytes = await client.readBytes(header.length + body.length + 2);
    assert.equal(bytes.toString('latin1'), `${header}${body}\r\n`);
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('no responders: a request nobody hears gets a 503 on the requester\'s reply subscription', async () => {
    const client = await RawClient.connected(broker.port, { no_responders: true });
    client.send('SUB _INBOX.abc.* 7\r\nPUB nobody _INBOX.abc.1 2\r\nhi\r\nPING\r\n');
    assert.equal(await client.readLine(), 'HMSG _INBOX.abc.1 7 16 16');
    assert.equal(await client.readLine(), 'NATS/1.0 503');
    assert.equal(await client.readLine(), '');
    assert.equal(await client.readLine(), '');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('no 503 for a client that did not ask for no_responders', async () => {
    const client = await RawClient.connected(broker.port);
    client.send('SUB _INBOX.abc.* 7\r\nPUB nobody _INBOX.abc.1 2\r\nhi\r\nPING\r\n');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('any queue group name is accepted, as in nats-server', async () => {
    const client = await RawClient.connected(broker.port);
    client.send('SUB q.sub v1.* 1\r\nPUB q.sub 1\r\nq\r\nPING\r\n');
    assert.equal(await client.readLine(), 'MSG q.sub 1 1');
    assert.equal(await client.readLine(), 'q');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('SUB with an invalid subject: -ERR, connection stays open', async () => {
    const client = await RawClient.connected(broker.port);
    for (const subject of ['foo..bar', '.foo', 'foo.', 'foo.>.bar']) {
      client.send(`SUB ${subject} 1\r\n`);
      assert.equal(await client.readLine(), "-ERR 'Invalid Subject'");
    }
    client.send('PING\r\n');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('max_subscriptions: -ERR past the limit, earlier subscriptions keep working', async () => {
    const client = await RawClient.connected(broker.port);
    for (let sid = 1; sid <= 5; sid++) client.send(`SUB s.${sid} ${sid}\r\n`);
    client.send('SUB s.6 6\r\nPUB s.5 1\r\nz\r\nPING\r\n');
    assert.equal(await client.readLine(), "-ERR 'maximum subscriptions exceeded'");
    assert.equal(await client.readLine(), 'MSG s.5 5 1');
    assert.equal(await client.readLine(), 'z');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  test('UNSUB <sid> <max>: delivery stops after max in total', async () => {
    const client = await RawClient.connected(broker.port);
    client.send('SUB u 1\r\nPUB u 1\r\na\r\nUNSUB 1 2\r\nPUB u 1\r\nb\r\nPUB u 1\r\nc\r\nPING\r\n');
    assert.equal(await client.readLine(), 'MSG u 1 1');
    assert.equal(await client.readLine(), 'a');
    assert.equal(await client.readLine(), 'MSG u 1 1');
    assert.equal(await client.readLine(), 'b');
    assert.equal(await client.readLine(), 'PONG');
    client.close();
  });

  const HEADERS_ON = 'CONNECT {"verbose":false,"headers":true}\r\n';
  const closingCases: { name: string; send: string; err: string | undefined }[] = [
    { name: 'unknown verb', send: 'FOO bar\r\n', err: 'Unknown Protocol Operation' },
    { name: 'PUB over max_payload', send: 'PUB foo 1048577\r\n', err: 'Maximum Payload Violation' },
    { name: 'HPUB total over max_payload', send: `${HEADERS_ON}HPUB foo 12 1048577\r\n`, err: 'Maximum Payload Violation' },
    { name: 'control line over 4096 bytes', send: `PUB ${'a'.repeat(5000)} 1\r\n`, err: 'maximum control line exceeded' },
    { name: 'wrong terminator after payload', send: 'PUB foo 2\r\nabXY\r\n', err: 'Unknown Protocol Operation' },
    { name: 'protocol 2 in CONNECT', send: 'CONNECT {"protocol":2}\r\n', err: 'invalid client protocol' },
    { name: 'no_responders without headers', send: 'CONNECT {"no_responders":true}\r\n', err: 'no responders requires headers support' },
    { name: 'PUB with one argument', send: 'PUB foo\r\n', err: undefined },
    { name: 'HPUB header size over total', send: `${HEADERS_ON}HPUB foo 10 5\r\n`, err: undefined },
    { name: 'HPUB from a client that did not say headers:true', send: 'CONNECT {"verbose":false}\r\nHPUB foo 0 1\r\nx\r\n', err: undefined },
    { name: 'CONNECT with invalid JSON', send: 'CONNECT {nope\r\n', err: undefined },
  ];
  for (const { name, send, err } of closingCases) {
    test(`${name}: ${err === undefined ? 'closed without -ERR' : `-ERR '${err}' and closed`}`, async () => {
      const client = await RawClient.open(broker.port);
      await client.readLine();
      client.send(send);
      const rest = await client.readUntilClosed();
      if (err === undefined) assert.doesNotMatch(rest, /-ERR/);
      else assert.equal(rest, `-ERR '${err}'\r\n`);
      await assertBystanderWorks(broker.port);
    });
  }
});

describe('connection limits', () => {
  test('max_connections: the connection past the limit gets INFO then -ERR and is closed', async (t) => {
    const broker = await startTestBroker({ max_connections: 2 });
    t.after(() => broker.close());
    const first = await RawClient.connected(broker.port);
    const second = await RawClient.connected(broker.port);
    const third = await RawClient.open(broker.port);
    assert.match(await third.readLine(), /^INFO /);
    assert.equal(await third.readLine(), "-ERR 'maximum connections exceeded'");
    await third.readUntilClosed();
    first.send('PING\r\n');
    assert.equal(await first.readLine(), 'PONG');
    first.close();
    second.close();
    await eventually(() => assert.equal(broker.broker.server.connections.size, 0));
    const again = await RawClient.connected(broker.port);
    again.close();
  });

  test('auth_timeout: a client that never sends CONNECT is closed with Authentication Timeout', async (t) => {
    const broker = await startTestBroker({ auth_timeout: '200ms' });
    t.after(() => broker.close());
    const silent = await RawClient.open(broker.port);
    await silent.readLine();
    const started = Date.now();
    assert.equal(await silent.readUntilClosed(), "-ERR 'Authentication Timeout'\r\n");
    assert.ok(Date.now() - started >= 150);
    await assertBystanderWorks(broker.port);
  });

  test('ping_interval / ping_max: a client that never answers PING is stale and closed', async (t) => {
    const broker = await startTestBroker({ ping_interval: '100ms', ping_max: 2 });
    t.after(() => broker.close());
    const client = await RawClient.connected(broker.port);
    client.arePingsVisible = true;
    const lines = (await client.readUntilClosed()).split('\r\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.pop(), "-ERR 'Stale Connection'");
    assert.ok(lines.length >= 1 && lines.length <= 3, `PINGs before the close: ${lines.join(',')}`);
    assert.ok(lines.every((line) => line === 'PING'), lines.join(','));
    assert.equal(broker.broker.server.stats.staleConnections, 1);
  });

  test('ping_interval: a client that answers PINGs stays connected', async (t) => {
    const broker = await startTestBroker({ ping_interval: '50ms', ping_max: 1 });
    t.after(() => broker.close());
    const client = await RawClient.connected(broker.port);
    client.arePingsVisible = true;
    for (let i = 0; i < 4; i++) {
      assert.equal(await client.readLine(), 'PING');
      client.send('PONG\r\n');
    }
    assert.equal(client.isClosed, false);
    client.close();
  });

  test('a PUB whose payload never arrives (or trickles in, PONGs and all) is stale and closed; bystanders unaffected', async (t) => {
    const log = recordingLogger();
    const broker = await startTestBroker({ ping_interval: '100ms', ping_max: 2 }, log);
    t.after(() => broker.close());
    const silent = await RawClient.connected(broker.port);
    silent.send('PUB never 10\r\n');
    const partial = await RawClient.connected(broker.port);
    partial.send('PUB half 10\r\nabc');
    // A client that keeps sending: a byte at a time, well within the ping interval, and PONG
    // to every PING. All of it is payload of a PUB of 1000 bytes that is never complete.
    const trickle = await RawClient.connected(broker.port);
    trickle.arePingsVisible = true;
    trickle.send('PUB trickle 1000\r\n');
    const dripping = setInterval(() => trickle.send('x'), 20);
    t.after(() => clearInterval(dripping));
    trickle.socket.on('data', (chunk: Buffer) => {
      if (chunk.includes('PING')) trickle.send('PONG\r\n');
    });
    for (const client of [silent, partial]) assert.match(await client.readUntilClosed(10_000), /-ERR 'Stale Connection'\r\n$/);
    assert.match(await trickle.readUntilClosed(10_000), /-ERR 'Stale Connection'\r\n$/);
    clearInterval(dripping);
    const warnings = log.records.filter((record) => record.msg === 'stale connection: an operation (a PUB payload or a control line) never completed');
    assert.equal(warnings.length, 3);
    assert.deepEqual(warnings.map((record) => record.fields['state']).sort(), ['MSG_PAYLOAD', 'MSG_PAYLOAD', 'MSG_PAYLOAD']);
    assert.equal(broker.broker.server.stats.staleConnections, 3);
    await assertBystanderWorks(broker.port);
  });

  test('max_pending: a subscriber that stops reading is a slow consumer, closed and counted; others unaffected', async (t) => {
    const broker = await startTestBroker({ max_pending: '256KB', max_payload: '64KB' });
    t.after(() => broker.close());
    const slow = await RawClient.connected(broker.port);
    slow.send('SUB flood 1\r\nPING\r\n');
    assert.equal(await slow.readLine(), 'PONG');
    slow.socket.pause();
    const publisher = await RawClient.connected(broker.port);
    const payload = 'x'.repeat(60_000);
    const batch = `PUB flood ${payload.length}\r\n${payload}\r\n`.repeat(20);
    for (let i = 0; i < 60 && broker.broker.server.stats.slowConsumers === 0; i++) {
      publisher.send(batch);
      publisher.send('PING\r\n');
      assert.equal(await publisher.readLine(), 'PONG');
    }
    assert.equal(broker.broker.server.stats.slowConsumers, 1);
    const closed = broker.broker.server.closedConnections.at(-1);
    assert.equal(closed?.closedReason, 'Slow Consumer (Pending Bytes)');
    publisher.send('PING\r\n');
    assert.equal(await publisher.readLine(), 'PONG');
    publisher.close();
    slow.close();
  });
});
