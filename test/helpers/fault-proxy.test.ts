import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';

/** An echo server; resolves its port. */
async function startEcho(t: { after(fn: () => Promise<void> | void): void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

async function withProxy(t: { after(fn: () => Promise<void> | void): void }): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: await startEcho(t) });
  t.after(() => proxy.close());
  return proxy;
}

/** A client that collects what it receives and how it ended. */
async function connectClient(port: number): Promise<{ socket: net.Socket; received: () => Buffer; ended: Promise<string> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<string>((resolve) => {
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    socket.on('close', () => resolve('close'));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), ended };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('fault proxy forwards bytes both ways unchanged and in order', async (t) => {
  const proxy = await withProxy(t);
  const client = await connectClient(proxy.port);
  const sent = randomBytes(1024 * 1024);
  for (let offset = 0; offset < sent.length; offset += 7919) client.socket.write(sent.subarray(offset, offset + 7919));
  await until(() => client.received().length >= sent.length);
  assert.ok(client.received().equals(sent));
  assert.equal(proxy.stats.bytesUp, sent.length);
  assert.equal(proxy.stats.bytesDown, sent.length);
  client.socket.destroy();
});

test('reset: open connections are reset, new ones work', async (t) => {
  const proxy = await withProxy(t);
  const client = await connectClient(proxy.port);
  client.socket.write('a');
  await until(() => client.received().length === 1);
  proxy.reset();
  assert.equal(await client.ended, 'ECONNRESET');
  assert.equal(proxy.stats.resets, 1);
  const again = await connectClient(proxy.port);
  again.socket.write('b');
  await until(() => again.received().toString() === 'b');
  again.socket.destroy();
});

test('blackhole: nothing is forwarded while on; the held bytes arrive in order after', async (t) => {
  const proxy = await withProxy(t);
  const client = await connectClient(proxy.port);
  proxy.blackhole(true);
  client.socket.write('one,');
  client.socket.write('two');
  await sleep(200);
  assert.equal(client.received().length, 0, 'nothing crosses a blackhole');
  assert.equal(proxy.openConnections, 1, 'the connection stays open');
  proxy.blackhole(false);
  await until(() => client.received().toString() === 'one,two');
  client.socket.destroy();
});

test('delay: every chunk arrives at least the delay later, each way', async (t) => {
  const proxy = await withProxy(t);
  const client = await connectClient(proxy.port);
  proxy.setDelayMs(100);
  const startedAt = Date.now();
  client.socket.write('x');
  await until(() => client.received().length === 1);
  assert.ok(Date.now() - startedAt >= 195, `round trip ${Date.now() - startedAt} ms with 100 ms each way`);
  client.socket.destroy();
});

test('throttle: bytes per second are bounded', async (t) => {
  const proxy = await withProxy(t);
  const client = await connectClient(proxy.port);
  proxy.setThrottle(100_000);
  const startedAt = Date.now();
  client.socket.write(Buffer.alloc(150_000, 1));
  await until(() => client.received().length === 150_000, 10_000);
  // 100 kB of budget at most at the start, the other 50 kB at 100 kB/s each way: ≥ 0.5 s.
  assert.ok(Date.now() - startedAt >= 450, `150 kB through 100 kB/s took ${Date.now() - startedAt} ms`);
  client.socket.destroy();
});

test('cut: open connections are reset and new ones refused until restored', async (t) => {
  const proxy = await withProxy(t);
  const client = await connectClient(proxy.port);
  proxy.cut(true);
  assert.equal(await client.ended, 'ECONNRESET');
  const refused = net.connect({ host: '127.0.0.1', port: proxy.port });
  const how = await new Promise<string>((resolve) => {
    refused.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    refused.on('close', () => resolve('close'));
  });
  assert.ok(how === 'ECONNRESET' || how === 'close', how);
  assert.ok(proxy.stats.refused >= 1);
  proxy.cut(false);
  const again = await connectClient(proxy.port);
  again.socket.write('back');
  await until(() => again.received().toString() === 'back');
  again.socket.destroy();
});
