/**
 * Authorization with the official nats.js client and raw bytes: publish and
 * subscribe allow/deny lists with wildcards and queue groups, the exact -ERR
 * texts (the connection stays open), the subscribe deny list applied at
 * delivery, allow_responses for a service user, default_permissions, and
 * JetStream API calls obeying publish permissions.
 *
 * nats.js reports a violation as a `PermissionViolationError`: on the status
 * iterator (`{type: "error"}`) always; a SUB violation also closes the matching
 * subscription with it (`sub.closed` resolves to the error); a publish violation
 * on a request's subject rejects that request with a `RequestError` whose `cause`
 * is the violation (JetStream API calls included).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, PermissionViolationError, RequestError, type ConnectionOptions, type NatsConnection, type Status } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { resolveServerOptions } from '../../core/server/options.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { assertConfigError } from '../helpers/config-error.ts';
import { eventually } from '../helpers/eventually.ts';
import { rejectsWithCode } from '../helpers/jetstream-client.ts';
import { RawClient } from '../helpers/raw-client.ts';

const USERS = [
  { user: 'admin', password: 'pw', permissions: {} },
  // No permissions of its own: default_permissions apply.
  { user: 'plain', password: 'pw' },
  { user: 'pub', password: 'pw', permissions: { publish: { allow: ['allowed.>'], deny: ['allowed.secret'] } } },
  { user: 'sub', password: 'pw', permissions: { subscribe: { allow: ['feed.*', 'jobs.* workers', '_INBOX.>'], deny: ['feed.secret'] } } },
  { user: 'reader', password: 'pw', permissions: { subscribe: { deny: ['events.secret', 'tasks.secret'] } } },
  { user: 'service', password: 'pw', permissions: { subscribe: ['svc.>'], allow_responses: true } },
  { user: 'nojs', password: 'pw', permissions: { publish: { deny: ['$JS.API.>'] } } },
  { user: 'jsinfo', password: 'pw', permissions: { publish: ['$JS.API.STREAM.INFO.*'] } },
];

function isPermissionError(err: unknown, operation: 'publish' | 'subscription', subject: string, queue?: string): boolean {
  assert.ok(err instanceof PermissionViolationError, `expected a PermissionViolationError, got ${String(err)}`);
  assert.equal(err.operation, operation);
  assert.equal(err.subject, subject);
  assert.equal(err.queue, queue);
  return true;
}

/** nats.js rejects a request (JetStream API calls included) whose publish was denied with a RequestError caused by the violation. */
function isDeniedRequest(err: unknown, subject: string): boolean {
  assert.ok(err instanceof RequestError, `expected a RequestError, got ${String(err)}`);
  return isPermissionError(err.cause, 'publish', subject);
}

/** The first error status nats.js reports on `nc` after `run`. */
async function nextErrorStatus(nc: NatsConnection, run: () => void): Promise<unknown> {
  const statuses = nc.status();
  run();
  for await (const status of statuses as AsyncIterable<Status>) {
    if (status.type === 'error') return status.error;
  }
  throw new Error('status iterator ended');
}

describe('permissions', { timeout: 20_000 }, () => {
  let broker: TestBroker;
  const connections: NatsConnection[] = [];
  const open = async (user: string, options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> => {
    const nc = await connect({ servers: broker.url, user, pass: 'pw', reconnect: false, ...options });
    connections.push(nc);
    return nc;
  };
  const raw = (user: string): Promise<RawClient> => RawClient.connected(broker.port, { user, pass: 'pw' });

  before(async () => {
    broker = await startTestBroker({
      http_port: 0,
      websocket_port: 0,
      authorization: { default_permissions: { publish: { deny: ['restricted.>'] } }, users: USERS },
    });
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('raw bytes: a denied PUB gets the exact -ERR, is dropped, and the connection stays open without +OK', async (t) => {
    const client = await RawClient.connected(broker.port, { user: 'pub', pass: 'pw', verbose: true });
    t.after(() => client.close());
    const watcher = await raw('admin');
    t.after(() => watcher.close());
    watcher.send('SUB > 1\r\nPING\r\n');
    assert.equal(await watcher.readLine(), 'PONG');
    client.send('PUB other 2\r\nhi\r\nHPUB allowed.secret 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB allowed.x 2\r\nok\r\nPING\r\n');
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Publish to "other"'`);
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Publish to "allowed.secret"'`);
    assert.equal(await client.readLine(), '+OK');
    assert.equal(await client.readLine(), 'PONG');
    assert.equal(client.isClosed, false);
    // Only the allowed message reached the subscriber.
    assert.equal(await watcher.readLine(), 'MSG allowed.x 1 2');
    assert.equal(await watcher.readLine(), 'ok');
    assert.equal(await watcher.drainFor(100), '');
  });

  test('raw bytes: a denied SUB gets the exact -ERR (with the queue group when there is one) and no subscription is made', async (t) => {
    const client = await raw('sub');
    t.after(() => client.close());
    client.send('SUB other 1\r\nSUB jobs.a others 2\r\nSUB feed.secret 3\r\nSUB feed.* 4\r\nSUB jobs.a workers 5\r\nPING\r\n');
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Subscription to "other"'`);
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Subscription to "jobs.a" using queue "others"'`);
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Subscription to "feed.secret"'`);
    assert.equal(await client.readLine(), 'PONG');
    const connection = [...broker.broker.server.connections.values()].find((c) => c.authorizedUser?.name === 'sub' && c.subscriptions.size > 0);
    assert.deepEqual([...(connection?.subscriptions.keys() ?? [])].sort(), ['4', '5']);
  });

  test('nats.js: a publish violation is an error status; the connection keeps working', async () => {
    const nc = await open('pub');
    const err = await nextErrorStatus(nc, () => nc.publish('other', 'x'));
    isPermissionError(err, 'publish', 'other');
    // A request to a denied subject rejects with a RequestError whose cause is the violation.
    await assert.rejects(nc.request('other.svc', 'x', { timeout: 1000 }), (e) => isDeniedRequest(e, 'other.svc'));
    const sub = nc.subscribe('allowed.check', { max: 1 });
    nc.publish('allowed.check', 'ok');
    for await (const message of sub) assert.equal(message.string(), 'ok');
    assert.equal(nc.isClosed(), false);
  });

  test('nats.js: a subscription violation closes that subscription with the error; allowed wildcard and queue SUBs work', async () => {
    const nc = await open('sub');
    const denied = nc.subscribe('feed.a.b');
    isPermissionError(await denied.closed, 'subscription', 'feed.a.b');
    const deniedByDeny = nc.subscribe('feed.secret');
    isPermissionError(await deniedByDeny.closed, 'subscription', 'feed.secret');
    const deniedQueue = nc.subscribe('jobs.a', { queue: 'others' });
    isPermissionError(await deniedQueue.closed, 'subscription', 'jobs.a', 'others');
    const feed = nc.subscribe('feed.*', { max: 1 });
    const jobs = nc.subscribe('jobs.*', { queue: 'workers', max: 1 });
    await nc.flush();
    const admin = await open('admin');
    admin.publish('feed.news', 'n');
    admin.publish('jobs.build', 'b');
    for await (const message of feed) assert.equal(message.subject, 'feed.news');
    for await (const message of jobs) assert.equal(message.subject, 'jobs.build');
  });

  test('the subscribe deny list also filters delivery to an allowed wildcard subscription', async () => {
    const nc = await open('reader');
    const received: string[] = [];
    const sub = nc.subscribe('events.>', { callback: (_err, message) => void received.push(message.subject) });
    await nc.flush();
    const admin = await open('admin');
    for (const subject of ['events.a', 'events.secret', 'events.secret.deeper', 'events.b']) admin.publish(subject, '');
    await admin.flush();
    await eventually(() => assert.deepEqual(received, ['events.a', 'events.secret.deeper', 'events.b']));
    isPermissionError(await nextErrorStatus(nc, () => nc.subscribe('events.secret')), 'subscription', 'events.secret');
    sub.unsubscribe();
  });

  test('a queue member whose deny list refuses a message passes it to another member of the group', async () => {
    const reader = await open('reader');
    const admin = await open('admin');
    const byReader: string[] = [];
    const byAdmin: string[] = [];
    reader.subscribe('tasks.*', { queue: 'g', callback: (_err, message) => void byReader.push(message.subject) });
    admin.subscribe('tasks.*', { queue: 'g', callback: (_err, message) => void byAdmin.push(message.subject) });
    await reader.flush();
    await admin.flush();
    for (let i = 0; i < 20; i++) admin.publish('tasks.secret', '');
    for (let i = 0; i < 20; i++) admin.publish('tasks.open', '');
    await eventually(() => assert.equal(byReader.length + byAdmin.length, 40));
    assert.equal(byReader.includes('tasks.secret'), false);
    assert.equal(byAdmin.filter((subject) => subject === 'tasks.secret').length, 20);
    assert.ok(byReader.length > 0, 'the reader still gets its share of tasks.open');
  });

  test('allow_responses: a service user without publish permission answers each request once', async () => {
    const service = await open('service');
    const statuses: unknown[] = [];
    void (async () => {
      for await (const status of service.status()) if (status.type === 'error') statuses.push(status.error);
    })();
    service.subscribe('svc.echo', {
      callback: (_err, message) => {
        message.respond(`echo ${message.string()}`);
        message.respond('a second answer is over the limit');
      },
    });
    await service.flush();
    const client = await open('admin');
    assert.equal((await client.request('svc.echo', 'one', { timeout: 2000 })).string(), 'echo one');
    assert.equal((await client.request('svc.echo', 'two', { timeout: 2000 })).string(), 'echo two');
    service.publish('svc.elsewhere', 'not a response');
    await eventually(() => assert.equal(statuses.length, 3));
    assert.ok(statuses.every((err) => err instanceof PermissionViolationError && err.operation === 'publish'));
    assert.equal((statuses[2] as PermissionViolationError).subject, 'svc.elsewhere');
  });

  test('default_permissions apply to users without their own; an empty permissions block is unrestricted', async () => {
    const plain = await open('plain');
    isPermissionError(await nextErrorStatus(plain, () => plain.publish('restricted.x', '')), 'publish', 'restricted.x');
    const admin = await open('admin', { name: 'admin-unrestricted' });
    const connection = [...broker.broker.server.connections.values()].find((c) => c.name === 'admin-unrestricted');
    assert.equal(connection?.permissions, undefined, 'no per-connection checks for an empty block');
    const sub = admin.subscribe('restricted.x', { max: 1 });
    admin.publish('restricted.x', 'fine');
    for await (const message of sub) assert.equal(message.string(), 'fine');
  });

  test('JetStream API calls obey publish permissions: no $JS.API publish, no stream', async () => {
    const nc = await open('nojs');
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    await assert.rejects(jsm.streams.add({ name: 'NOPE', subjects: ['nope.>'] }), (e) => isDeniedRequest(e, '$JS.API.STREAM.CREATE.NOPE'));
    const adminJsm = await jetstreamManager(await open('admin'));
    await rejectsWithCode(adminJsm.streams.info('NOPE'), 10059);
  });

  test('a user allowed $JS.API.STREAM.INFO.* only reads stream info but cannot create streams', async () => {
    const adminJsm = await jetstreamManager(await open('admin'));
    await adminJsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    const jsm = await jetstreamManager(await open('jsinfo'), { checkAPI: false });
    assert.equal((await jsm.streams.info('ORDERS')).config.name, 'ORDERS');
    await assert.rejects(jsm.streams.add({ name: 'MINE', subjects: ['mine.>'] }), (e) => isDeniedRequest(e, '$JS.API.STREAM.CREATE.MINE'));
    await rejectsWithCode(adminJsm.streams.info('MINE'), 10059);
  });
});

test('bad permissions are ConfigErrors naming the key', () => {
  const users = (permissions: unknown) => ({ authorization: { users: [{ user: 'a', password: 'b', permissions }] } });
  assertConfigError(() => resolveServerOptions(users({ publish: ['a..b'] })), 'authorization.users[0].permissions.publish[0]', /not a valid subject/);
  assertConfigError(() => resolveServerOptions(users({ subscribe: { allow: 'x', deny: ['y', 7] } })), 'authorization.users[0].permissions.subscribe.deny[1]', /subject/);
  assertConfigError(() => resolveServerOptions(users({ allow_responses: { max: 'x' } })), 'authorization.users[0].permissions.allow_responses.max', /whole number/);
  assertConfigError(
    () => resolveServerOptions({ authorization: { token: 't', default_permissions: { sub: ['>'], pub: 'a b' } } }),
    'authorization.default_permissions.pub',
    /one subject/,
  );
});
