/**
 * The hub's link connections over real sockets (core/link/README.md "Connection"): hello and
 * welcome with and without tokens, refusals, heartbeats, and hostile bytes that must cost the
 * sender its connection and nobody else anything.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { encodeFrame } from '../../../core/link/codec.ts';
import { LinkTestClient, messages, newIncarnation, startTestHub, type TestHub } from './link-test-client.ts';

describe('link connections without tokens', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub();
  });
  after(async () => {
    await hub.close();
  });

  test('hello gets welcome: the hub name, version 1, the larger heartbeat, compression only when asked for', async (t) => {
    const client = await LinkTestClient.open(hub.linkUrl);
    t.after(() => client.close());
    const welcome = await client.hello('plain-leaf', { heartbeatMs: 7000, compression: true });
    assert.deepEqual({ ...welcome }, { t: 'welcome', version: 1, hub: 'hub-test', compression: true, heartbeatMs: 7000, windowBytes: 2 * 1024 * 1024 });
    const other = await LinkTestClient.open(hub.linkUrl);
    t.after(() => other.close());
    const second = await other.hello('plain-leaf-2', { heartbeatMs: 1000 });
    assert.equal(second.t === 'welcome' && second.compression, false);
    assert.equal(second.t === 'welcome' && second.heartbeatMs, 5000);
  });

  test('a compressed session: deflated frames both ways', async (t) => {
    const client = await LinkTestClient.connect(hub.linkUrl, 'deflater', { compression: true });
    t.after(() => client.close());
    const key = { stream: 'DEFLATED', incarnation: newIncarnation() };
    client.send({ t: 'offer', ...key, firstSeq: 1, lastSeq: 200 }, { compress: true });
    await client.expect('cursor');
    client.send({ t: 'batch', ...key, id: 1, msgs: messages(1, 200, 'json.reading') }, { compress: true });
    assert.equal((await client.cursorAt(key, 200)).seq, 200);
  });

  test('a leaf name that is not one subject token is refused with auth', async () => {
    for (const name of ['a.b', 'star*', 'x'.repeat(65)]) {
      const client = await LinkTestClient.open(hub.linkUrl);
      const answer = await client.hello(name);
      assert.equal(answer.t, 'error');
      assert.equal(answer.t === 'error' && answer.code, 'auth');
      await client.waitClosed();
    }
  });

  test('anything before hello is a protocol error', async () => {
    const client = await LinkTestClient.open(hub.linkUrl);
    client.send({ t: 'offer', stream: 'S', incarnation: 'ab', firstSeq: 1, lastSeq: 1 });
    const error = await client.expect('error');
    assert.equal(error.code, 'protocol');
    await client.waitClosed();
  });

  test('a version the hub does not speak is refused with version', async () => {
    const client = await LinkTestClient.open(hub.linkUrl);
    client.send({ t: 'hello', versions: [7, 9], leaf: 'future', token: undefined, compression: false, heartbeatMs: 5000, windowBytes: 65536 });
    const error = await client.expect('error');
    assert.equal(error.code, 'version');
    await client.waitClosed();
  });

  test('hostile bytes (random, truncated, a text message, a bad envelope) get error protocol and a close while another leaf keeps syncing', async (t) => {
    const good = await LinkTestClient.connect(hub.linkUrl, 'steady');
    t.after(() => good.close());
    const key = { stream: 'STEADY', incarnation: newIncarnation() };
    good.offer(key, 1, 1000);
    await good.expect('cursor');
    let seq = 0;
    const hostile: { name: string; send(client: LinkTestClient): void }[] = [
      { name: 'random bytes', send: (client) => client.sendRaw(Buffer.concat([Buffer.from([0]), randomBytes(300)])) },
      {
        name: 'a truncated batch',
        send: (client) => {
          const bytes = encodeFrame({ t: 'batch', stream: 'S', incarnation: 'ab', id: 1, msgs: messages(1, 10) });
          client.sendRaw(bytes.subarray(0, bytes.length - 7));
        },
      },
      { name: 'a text message', send: (client) => client.sendRaw('{"t":"hello"}') },
      { name: 'an unknown envelope', send: (client) => client.sendRaw(Buffer.from([9, 1, 2, 3])) },
      { name: 'a deflate envelope of garbage', send: (client) => client.sendRaw(Buffer.concat([Buffer.from([1]), randomBytes(64)])) },
    ];
    for (const attack of hostile) {
      for (const isAfterWelcome of [false, true]) {
        const client = isAfterWelcome ? await LinkTestClient.connect(hub.linkUrl, `mallory-${seq}`, { keepAliveMs: 0 }) : await LinkTestClient.open(hub.linkUrl);
        attack.send(client);
        const error = await client.expect('error');
        assert.equal(error.code, 'protocol', `${attack.name} (after welcome: ${isAfterWelcome})`);
        await client.waitClosed();
        // Meanwhile the good leaf's batches are stored and acknowledged.
        seq += 1;
        good.batch(key, messages(seq, seq));
        await good.cursorAt(key, seq);
      }
    }
    assert.equal(hub.hub.broker.jetstream!.streams.get('STEADY')!.store.state().messages, seq);
  });
});

describe('link connections with tokens', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub({ tokens: { 'gw-1': 's3cret', 'gw-2': 'other' } });
  });
  after(async () => {
    await hub.close();
  });

  test('the right token gets welcome', async (t) => {
    const client = await LinkTestClient.connect(hub.linkUrl, 'gw-1', { token: 's3cret' });
    t.after(() => client.close());
    const key = { stream: 'TOKENS', incarnation: newIncarnation() };
    client.offer(key, 1, 1);
    assert.equal((await client.expect('cursor')).seq, 0);
  });

  test('a wrong token, no token, another leaf\'s token or an unknown leaf get error auth and a close', async () => {
    const attempts: { leaf: string; token: string | undefined }[] = [
      { leaf: 'gw-1', token: 'wrong' },
      { leaf: 'gw-1', token: undefined },
      { leaf: 'gw-2', token: 's3cret' },
      { leaf: 'gw-3', token: 's3cret' },
    ];
    for (const attempt of attempts) {
      const client = await LinkTestClient.open(hub.linkUrl);
      const answer = await client.hello(attempt.leaf, attempt.token === undefined ? {} : { token: attempt.token });
      assert.equal(answer.t, 'error', JSON.stringify(attempt));
      assert.equal(answer.t === 'error' && answer.code, 'auth');
      assert.equal(answer.t === 'error' && answer.text, 'unknown leaf or wrong token');
      await client.waitClosed();
    }
    assert.equal(hub.hub.acceptor!.status().some((status) => status.leaf === 'gw-3'), false);
  });
});

describe('heartbeats', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub({ heartbeat: '200ms' });
  });
  after(async () => {
    await hub.close();
  });

  test('a client silent after welcome is pinged, then closed after two intervals', async () => {
    const client = await LinkTestClient.connect(hub.linkUrl, 'quiet', { heartbeatMs: 200, keepAliveMs: 0 });
    const startedMs = Date.now();
    await client.waitClosed(3000);
    const elapsedMs = Date.now() - startedMs;
    assert.ok(elapsedMs >= 350 && elapsedMs < 4000, `closed after ${elapsedMs} ms`);
    assert.ok(client.pings.length >= 1, 'the hub pinged first');
    const status = hub.hub.acceptor!.status().find((entry) => entry.leaf === 'quiet')!;
    assert.equal(status.connected, false);
    assert.equal(status.lastDownReason, 'heartbeat timeout');
  });

  test('a client that never says hello is closed after two intervals', async () => {
    const client = await LinkTestClient.open(hub.linkUrl);
    const startedMs = Date.now();
    await client.waitClosed(3000);
    const elapsedMs = Date.now() - startedMs;
    assert.ok(elapsedMs >= 350 && elapsedMs < 4000, `closed after ${elapsedMs} ms`);
  });

  test('a client that pings stays connected', async (t) => {
    const client = await LinkTestClient.connect(hub.linkUrl, 'chatty', { heartbeatMs: 200, keepAliveMs: 100 });
    t.after(() => client.close());
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(client.isClosed, false);
  });
});
