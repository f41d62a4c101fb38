/**
 * Accounts with the official clients (@nats-io/transport-node, @nats-io/jetstream,
 * @nats-io/kv) against a real canopy server: isolation of core pub/sub, queue groups,
 * request-reply, JetStream streams and consumers and KV buckets between accounts;
 * stream and service imports; persistence into the right account across a restart; an
 * existing single-account store opening under an accounts config; and the config errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  RequestError,
  type ConnectionOptions,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { AccountConfig } from '../../core/server/account-config.ts';
import { resolveServerOptions } from '../../core/server/options.ts';
import { startBroker } from '../../core/start.ts';
import { silentLogger } from '../../core/util/logger.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { assertConfigError } from '../helpers/config-error.ts';
import { rejectsWithCode } from '../helpers/jetstream-client.ts';
import { eventually } from '../helpers/eventually.ts';
import { decoratedOperatorJwt, encodeJwt, newTrustChain, newUser } from '../helpers/nats-jwt.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { IMPORT_HOPS_MAX, SERVICE_RESPONSES_PENDING_MAX } from '../../core/server/account-imports.ts';
import { recordingLogger, type LogRecord } from '../helpers/recording-logger.ts';

/** JetStream API codes (NATS-SPEC.md): stream not found, consumer not found. */
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

/** Two tenants that share a server, a third without JetStream, and the global account's user. */
const ACCOUNTS_CONFIG = {
  authorization: { users: [{ user: 'g', password: 'pg' }] },
  accounts: {
    A: {
      users: [{ user: 'a', password: 'pa' }],
      jetstream: 'enabled',
      exports: [{ stream: 'pub.>' }, { service: 'svc.>' }, { stream: 'priv.>', accounts: ['B'] }],
    },
    B: {
      users: [{ user: 'b', password: 'pb' }],
      jetstream: 'enabled',
      imports: [
        { stream: { account: 'A', subject: 'pub.>' }, prefix: 'fromA' },
        { stream: { account: 'A', subject: 'priv.>' } },
        { service: { account: 'A', subject: 'svc.echo' }, to: 'echo' },
        { service: { account: 'A', subject: 'svc.none' }, to: 'none' },
        { service: { account: 'A', subject: 'svc.*.upper' }, to: 'upper.*' },
      ],
    },
    C: {
      users: [{ user: 'c', password: 'pc' }],
      imports: [{ stream: { account: 'A', subject: 'pub.*.x' }, to: 'in.*' }],
    },
  },
};

const CREDENTIALS = { a: 'pa', b: 'pb', c: 'pc', g: 'pg' } as const;
type UserName = keyof typeof CREDENTIALS;

/** Connects as `user`; closes it after the test file. */
function opener(broker: () => TestBroker, connections: NatsConnection[]) {
  return async (user: UserName, options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> => {
    const nc = await connect({ servers: broker().url, reconnect: false, user, pass: CREDENTIALS[user], ...options });
    connections.push(nc);
    return nc;
  };
}

/**
 * Every message `sub` received up to the marker published on `markerSubject` by
 * `marker`: routing is synchronous, so a message of another connection that was
 * flushed before the marker was sent would have arrived before it.
 */
async function receivedBefore(sub: Subscription, marker: NatsConnection, markerSubject: string): Promise<string[]> {
  marker.publish(markerSubject, 'marker');
  await marker.flush();
  const seen: string[] = [];
  for await (const message of sub) {
    if (message.subject === markerSubject && message.string() === 'marker') break;
    seen.push(`${message.subject} ${message.string()}`);
  }
  return seen;
}

describe('accounts: isolation, imports and exports', () => {
  let broker: TestBroker;
  const connections: NatsConnection[] = [];
  const open = opener(() => broker, connections);
  before(async () => {
    broker = await startTestBroker({ ...ACCOUNTS_CONFIG, http_port: 0, websocket_port: 0 });
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('each connection records its account; the authorization block\'s users are in $G', async () => {
    await open('a');
    await open('g');
    const accountOf = (name: string): string | undefined =>
      [...broker.broker.server.connections.values()].find((c) => c.authorizedUser?.name === name)?.account.name;
    assert.equal(accountOf('a'), 'A');
    assert.equal(accountOf('g'), '$G');
  });

  test('a ">" subscriber in another account sees nothing of A: plain, queue group or request', async () => {
    const a = await open('a');
    const b = await open('b');
    const g = await open('g');
    const bAll = b.subscribe('>');
    const gAll = g.subscribe('>');
    const bQueue = b.subscribe('secret.*', { queue: 'workers' });
    const aOwn = a.subscribe('secret.*');
    await Promise.all([b.flush(), g.flush(), a.flush()]);
    a.publish('secret.x', 'for A only');
    a.publish('_INBOX.guess', 'a reply subject');
    await assert.rejects(a.request('lonely.req', 'hello', { timeout: 5000 }), (err: unknown) => err instanceof RequestError && err.isNoResponders());
    await a.flush();
    assert.deepEqual(await receivedBefore(bAll, b, 'b.marker'), []);
    assert.deepEqual(await receivedBefore(gAll, g, 'g.marker'), []);
    b.publish('secret.marker', 'marker');
    await b.flush();
    for await (const message of bQueue) {
      assert.equal(message.subject, 'secret.marker', 'the queue group in B got a message of A');
      break;
    }
    // A's own subscriber did get its message (the negative results above are not a broken publish).
    for await (const message of aOwn) {
      assert.equal(message.string(), 'for A only');
      break;
    }
    // Later tests count on B having no ">" subscriber.
    await Promise.all([a.close(), b.close(), g.close()]);
  });

  test('the same subject in two accounts are two subjects: each side gets only its own', async () => {
    const a = await open('a');
    const b = await open('b');
    const aSub = a.subscribe('same.subject');
    const bSub = b.subscribe('same.subject');
    await Promise.all([a.flush(), b.flush()]);
    a.publish('same.subject', 'from A');
    await a.flush();
    b.publish('same.subject', 'from B');
    await b.flush();
    assert.deepEqual(await receivedBefore(aSub, a, 'same.subject'), ['same.subject from A']);
    assert.deepEqual(await receivedBefore(bSub, b, 'same.subject'), ['same.subject from B']);
  });

  test('a stream import delivers A\'s messages into B under its prefix, and into C through "to"', async () => {
    const a = await open('a');
    const b = await open('b');
    const c = await open('c');
    const bImported = b.subscribe('fromA.pub.>');
    const bPrivate = b.subscribe('priv.>');
    const cImported = c.subscribe('in.*');
    await Promise.all([b.flush(), c.flush()]);
    a.publish('pub.orders.x', 'one');
    a.publish('pub.orders.y', 'two');
    a.publish('priv.note', 'for B');
    a.publish('other.subject', 'not exported');
    await a.flush();
    assert.deepEqual(await receivedBefore(bImported, b, 'fromA.pub.marker'), ['fromA.pub.orders.x one', 'fromA.pub.orders.y two']);
    assert.deepEqual(await receivedBefore(bPrivate, b, 'priv.marker'), ['priv.note for B']);
    // C imported pub.*.x only, mapped to in.*.
    assert.deepEqual(await receivedBefore(cImported, c, 'in.marker'), ['in.orders one']);
  });

  test('a service import answers B\'s request from A, and the reply comes back to B', async () => {
    const a = await open('a');
    const b = await open('b');
    const seen: Msg[] = [];
    a.subscribe('svc.>', {
      callback: (_err, message) => {
        seen.push(message);
        message.respond(`echo: ${message.string()}`);
      },
    });
    await a.flush();
    const reply = await b.request('echo', 'hi', { timeout: 5000 });
    assert.equal(reply.string(), 'echo: hi');
    assert.equal(seen[0]?.subject, 'svc.echo');
    assert.match(seen[0]?.reply ?? '', /^_R_\./, 'the responder sees a reply subject of its own account');
    // Wildcard service import: upper.<word> in B is svc.<word>.upper in A.
    const upper = await b.request('upper.word', 'x', { timeout: 5000 });
    assert.equal(upper.string(), 'echo: x');
    assert.equal(seen[1]?.subject, 'svc.word.upper');
    // In B the exported subject itself means nothing: only the imported "echo" reaches A.
    await assert.rejects(b.request('svc.echo', 'hi', { timeout: 5000 }), (err: unknown) => err instanceof RequestError && err.isNoResponders());
    // The next test counts on nobody answering svc.> in A.
    await a.close();
  });

  test('a service import with nobody answering in A gives B the no-responders error', async () => {
    const b = await open('b');
    await assert.rejects(b.request('none', 'anyone?', { timeout: 5000 }), (err: unknown) => err instanceof RequestError && err.isNoResponders());
  });

  test('streams and consumers: same name in A and B holds different data; neither sees the other\'s', async () => {
    const jsmA = await jetstreamManager(await open('a'));
    const jsmB = await jetstreamManager(await open('b'));
    const jsmG = await jetstreamManager(await open('g'));
    await jsmA.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    await jsmA.streams.add({ name: 'ONLY_A', subjects: ['only.a'] });
    await jsmB.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    const jsA = jetstream(connections.at(-3)!);
    const jsB = jetstream(connections.at(-2)!);
    await jsA.publish('orders.1', 'a1');
    await jsA.publish('orders.2', 'a2');
    await jsB.publish('orders.1', 'b1');
    assert.equal((await jsmA.streams.info('ORDERS')).state.messages, 2);
    assert.equal((await jsmB.streams.info('ORDERS')).state.messages, 1);
    assert.equal((await jsmB.streams.getMessage('ORDERS', { seq: 1 }))?.string(), 'b1');
    await rejectsWithCode(jsmB.streams.info('ONLY_A'), STREAM_NOT_FOUND);
    await rejectsWithCode(jsmG.streams.info('ORDERS'), STREAM_NOT_FOUND);
    const names = async (jsm: JetStreamManager): Promise<string[]> => (await jsm.streams.names().next()).sort();
    assert.deepEqual(await names(jsmA), ['ONLY_A', 'ORDERS']);
    assert.deepEqual(await names(jsmB), ['ORDERS']);
    assert.deepEqual(await names(jsmG), []);
    await jsmA.consumers.add('ORDERS', { durable_name: 'dur', ack_policy: 'explicit' });
    await rejectsWithCode(jsmB.consumers.info('ORDERS', 'dur'), CONSUMER_NOT_FOUND);
    assert.deepEqual(await jsmB.consumers.list('ORDERS').next(), []);
    // $JS.API.INFO counts per account.
    assert.deepEqual([(await jsmA.getAccountInfo()).streams, (await jsmA.getAccountInfo()).consumers], [2, 1]);
    assert.deepEqual([(await jsmB.getAccountInfo()).streams, (await jsmB.getAccountInfo()).consumers], [1, 0]);
    // A message published in B on orders.> is not captured by A's stream.
    assert.equal((await jsmA.streams.info('ORDERS')).state.messages, 2);
  });

  test('KV buckets are per account', async () => {
    const kvmA = new Kvm(await open('a'));
    const kvmB = new Kvm(await open('b'));
    const kvA = await kvmA.create('settings');
    const kvB = await kvmB.create('settings');
    await kvA.put('color', 'red');
    await kvB.put('color', 'blue');
    assert.equal((await kvA.get('color'))?.string(), 'red');
    assert.equal((await kvB.get('color'))?.string(), 'blue');
    await kvmA.create('a_only');
    await rejectsWithCode((await jetstreamManager(await open('b'))).streams.info('KV_a_only'), STREAM_NOT_FOUND);
  });

  test('an account without JetStream is told so: 10039 "JetStream not enabled for account"', async () => {
    const c = await open('c');
    await assert.rejects(jetstreamManager(c), (err: unknown) => err instanceof Error && /not enabled/i.test(err.message));
    const reply = await c.request('$JS.API.INFO', '', { timeout: 5000 });
    assert.deepEqual(reply.json(), {
      type: 'io.nats.jetstream.api.v1.account_info_response',
      error: { code: 503, err_code: 10039, description: 'JetStream not enabled for account' },
    });
    // Other API subjects reach nobody in C (its stream names are its own: none).
    await assert.rejects(c.request('$JS.API.STREAM.NAMES', '', { timeout: 5000 }), (err: unknown) => err instanceof RequestError && err.isNoResponders());
  });

  test('with auth configured, SUB before CONNECT is an Authorization Violation (it would otherwise land in $G)', async () => {
    const client = await RawClient.open(broker.port);
    await client.readLine();
    client.send('SUB > 1\r\n');
    assert.equal(await client.readUntilClosed(), "-ERR 'Authorization Violation'\r\n");
  });
});

/** Users x and y in accounts X and Y, without imports (the cycle test adds them past the config check). */
const CYCLE_USERS = { accounts: { X: { users: [{ user: 'x', password: 'x' }] }, Y: { users: [{ user: 'y', password: 'y' }] } } };

describe('accounts: service response types, response_threshold, import cycles, accounts made on demand', () => {
  let broker: TestBroker;
  const records: LogRecord[] = [];
  const connections: NatsConnection[] = [];
  const users = (name: string) => ({ users: [{ user: name, password: name }] });
  const connectAs = async (user: string): Promise<NatsConnection> => {
    const nc = await connect({ servers: broker.url, reconnect: false, user, pass: user });
    connections.push(nc);
    return nc;
  };
  before(async () => {
    broker = await startTestBroker({
      http_port: 0,
      websocket_port: 0,
      accounts: {
        SVC: {
          ...users('svc'),
          exports: [{ service: 'one.>' }, { service: 'many.>', response_type: 'Stream' }, { service: 'slow.>', response_threshold: '100ms' }, { service: 'hold.>' }],
        },
        CLIENT: {
          ...users('client'),
          imports: [
            { service: { account: 'SVC', subject: 'one.x' }, to: 'one' },
            { service: { account: 'SVC', subject: 'many.x' }, to: 'many' },
            { service: { account: 'SVC', subject: 'slow.x' }, to: 'slow' },
            { service: { account: 'SVC', subject: 'hold.x' }, to: 'hold' },
          ],
        },
      },
    }, recordingLogger(records));
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  /** The responses that reach `inbox` in CLIENT when SVC answers a request to `subject` twice. */
  async function twoResponses(service: NatsConnection, client: NatsConnection, subject: string, inbox: string): Promise<string[]> {
    const answered = new Promise<void>((resolve) => {
      const sub = service.subscribe(`${subject}.x`, {
        max: 1,
        callback: (_err, message) => {
          message.respond('first');
          message.respond('second');
          void service.flush().then(() => resolve());
          void sub;
        },
      });
    });
    await service.flush();
    const replies = client.subscribe(inbox);
    await client.flush();
    client.publish(subject, 'request', { reply: inbox });
    await answered;
    return receivedBefore(replies, client, inbox);
  }

  test('a Singleton service export lets one response back; a Stream export lets every one', async () => {
    const service = await connectAs('svc');
    const client = await connectAs('client');
    assert.deepEqual(await twoResponses(service, client, 'one', 'inbox.one'), ['inbox.one first']);
    assert.deepEqual(await twoResponses(service, client, 'many', 'inbox.many'), ['inbox.many first', 'inbox.many second']);
  });

  test('a response after response_threshold is dropped', async () => {
    const service = await connectAs('svc');
    const client = await connectAs('client');
    service.subscribe('slow.x', {
      callback: (_err, message) => {
        // Answer well after the export's 100 ms threshold: a slower machine only answers later.
        setTimeout(() => message.respond('too late'), 600);
      },
    });
    await service.flush();
    await assert.rejects(client.request('slow', 'hurry', { timeout: 2500 }), (err: unknown) => err instanceof Error && /timeout/i.test(err.message));
  });

  test(`past SERVICE_RESPONSES_PENDING_MAX (${SERVICE_RESPONSES_PENDING_MAX}) unanswered requests the oldest is forgotten, with a warning`, async () => {
    const service = await connectAs('svc');
    const client = await connectAs('client');
    const total = SERVICE_RESPONSES_PENDING_MAX + 1;
    let received = 0;
    let first: Msg | undefined;
    let last: Msg | undefined;
    service.subscribe('hold.x', {
      callback: (_err, message) => {
        received++;
        if (received === 1) first = message;
        if (received === total) last = message;
      },
    });
    await service.flush();
    const replies = client.subscribe('held.>');
    await client.flush();
    for (let i = 1; i <= total; i++) {
      client.publish('hold', '', { reply: `held.${i}` });
      if (i % 10_000 === 0) await client.flush();
    }
    await client.flush();
    await eventually(() => assert.equal(received, total, 'every request reached SVC'), { timeoutMs: 60_000 });
    first?.respond('to the first');
    last?.respond('to the last');
    await service.flush();
    assert.deepEqual(await receivedBefore(replies, client, 'held.marker'), [`held.${total} to the last`]);
    assert.ok(
      records.some((record) => record.level === 'warn' && /too many requests awaiting responses/.test(record.msg ?? '')),
      'a warning says requests were dropped',
    );
  });

  test('imports that form a cycle anyway (a config value the file check did not see) stop after IMPORT_HOPS_MAX accounts', async () => {
    // The config file check refuses this cycle (see the config errors below); operator mode or a
    // reload may hand the server account configs directly, so the router has its own bound.
    const options = resolveServerOptions({ addr: '127.0.0.1', port: -1, http_port: 0, websocket_port: 0, jetstream: false, ...CYCLE_USERS });
    const loop = (name: string, from: string): AccountConfig => ({
      name,
      isJetStreamEnabled: false,
      exports: [{ kind: 'stream', subject: 'loop.>', accounts: undefined }],
      imports: [{ kind: 'stream', account: from, subject: 'loop.>', localSubject: 'loop.>' }],
    });
    const cyclic = await startBroker({ options: { ...options, accounts: new Map([['X', loop('X', 'Y')], ['Y', loop('Y', 'X')]]) }, log: silentLogger });
    const url = `nats://127.0.0.1:${cyclic.server.addresses.port}`;
    const x = await connect({ servers: url, reconnect: false, user: 'x', pass: 'x' });
    const y = await connect({ servers: url, reconnect: false, user: 'y', pass: 'y' });
    connections.push(x, y);
    try {
      const ySub = y.subscribe('loop.>');
      await y.flush();
      x.publish('loop.1', 'round and round');
      await x.flush();
      const seen = await receivedBefore(ySub, y, 'loop.marker');
      assert.ok(seen.length >= 1 && seen.length <= IMPORT_HOPS_MAX, `Y got ${seen.length} copies`);
      // The server is still serving.
      await x.flush();
    } finally {
      await Promise.all([x.close(), y.close()]);
      await cyclic.close();
    }
  });

  test('an account made on first use (operator mode) with JetStream gets its own JetStream and store directory', async () => {
    const account = broker.broker.server.accounts.resolve('ADYNAMIC', { isJetStreamEnabled: true });
    assert.equal(broker.broker.server.accounts.resolve('ADYNAMIC'), account, 'resolve finds it the second time');
    const jetstream = await eventually(() => {
      const found = broker.broker.accountJetStreams.get('ADYNAMIC');
      assert.ok(found !== undefined, 'the new account has no JetStream yet');
      return found;
    });
    assert.equal(jetstream.options.storeDir, join(broker.storeDir, 'accounts', 'ADYNAMIC'));
    assert.equal(broker.broker.server.accounts.resolve('NOJS').config.isJetStreamEnabled, false);
    assert.equal(broker.broker.accountJetStreams.has('NOJS'), false);
  });
});

describe('accounts: monitoring', () => {
  let broker: TestBroker;
  const connections: NatsConnection[] = [];
  const open = opener(() => broker, connections);
  before(async () => {
    broker = await startTestBroker({ ...ACCOUNTS_CONFIG, websocket_port: 0 });
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });
  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`${broker.httpUrl}${path}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  type Row = { cid: number; authorized_user?: string; account?: string };

  test('/connz?auth=1 shows authorized_user and account (not for $G); acc and user filter', async () => {
    const a = await open('a', { name: 'conn-a' });
    const b = await open('b', { name: 'conn-b' });
    await open('g', { name: 'conn-g' });
    a.subscribe('x.y');
    b.subscribe('x.y');
    b.subscribe('x.z');
    await Promise.all([a.flush(), b.flush()]);
    const all = (await get('/connz?auth=1')).body['connections'] as Row[];
    assert.deepEqual(
      all.map((row) => [row.authorized_user, row.account]),
      [
        ['a', 'A'],
        ['b', 'B'],
        ['g', undefined],
      ],
    );
    const plain = (await get('/connz')).body['connections'] as Row[];
    assert.ok(plain.every((row) => row.account === undefined && row.authorized_user === undefined), 'without auth=1 neither field appears');
    const inB = (await get('/connz?acc=B&auth=1')).body;
    assert.equal(inB['total'], 1);
    assert.deepEqual((inB['connections'] as Row[]).map((row) => row.authorized_user), ['b']);
    assert.deepEqual(((await get('/connz?user=a&auth=1')).body['connections'] as Row[]).map((row) => row.account), ['A']);
    // /subsz?acc lists that account's sublist: B has x.y and x.z, A only x.y.
    const listed = async (query: string): Promise<unknown[]> => ((await get(`/subsz?subs=1&${query}`)).body['subscriptions_list'] as unknown[] | undefined) ?? [];
    assert.deepEqual((await listed('acc=B&test=x.z')).map((entry) => (entry as { account: string }).account), ['B']);
    assert.deepEqual(await listed('acc=A&test=x.z'), []);
    assert.equal((await listed('acc=A&test=x.y')).length, 1);
  });

  test('/jsz counts every account\'s JetStream; accounts=true and acc=<name> give per-account details', async () => {
    const jsm = await jetstreamManager(await open('a'));
    await jsm.streams.add({ name: 'MONITORED', subjects: ['monitored.>'] });
    const jsz = (await get('/jsz')).body;
    assert.deepEqual([jsz['accounts'], jsz['streams']], [3, 1]);
    const names = ((await get('/jsz?accounts=true')).body['account_details'] as { name: string }[]).map((detail) => detail.name);
    assert.deepEqual(names, ['$G', 'A', 'B']);
    const inA = (await get('/jsz?acc=A&streams=true')).body['account_details'] as { name: string; stream_detail?: { name: string }[] }[];
    assert.deepEqual(inA.map((detail) => [detail.name, detail.stream_detail?.map((stream) => stream.name)]), [['A', ['MONITORED']]]);
    const inB = (await get('/jsz?acc=B&streams=true')).body['account_details'] as { name: string; stream_detail?: unknown[] }[];
    assert.deepEqual(inB.map((detail) => [detail.name, detail.stream_detail]), [['B', undefined]]);
    // /healthz finds the stream in its account, not in another.
    assert.equal((await get('/healthz?account=A&stream=MONITORED')).status, 200);
    const elsewhere = await get('/healthz?account=B&stream=MONITORED');
    assert.equal(elsewhere.status, 404);
  });

  test('/accountz lists the accounts; acc=<name> gives its detail; an unknown one is an error', async () => {
    assert.deepEqual((await get('/accountz')).body['accounts'], ['$G', 'A', 'B', 'C']);
    await open('c');
    const detail = (await get('/accountz?acc=C')).body['account_detail'] as Record<string, unknown>;
    assert.equal(detail['account_name'], 'C');
    assert.equal(detail['jetstream_enabled'], false);
    assert.equal(detail['client_connections'], 1);
    assert.equal(((await get('/accountz?acc=A')).body['account_detail'] as Record<string, unknown>)['jetstream_enabled'], true);
    const unknown = await get('/accountz?acc=NOPE');
    assert.equal(unknown.status, 400);
    assert.match(String(unknown.body['error']), /Account NOPE does not exist/);
  });
});

describe('accounts: persistence and store layout', () => {
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-accounts-'));
  const connections: NatsConnection[] = [];
  let broker: TestBroker | undefined;
  const open = opener(() => broker!, connections);
  const start = async (config: Record<string, unknown>): Promise<void> => {
    broker = await startTestBroker({ ...config, store_dir: storeDir, http_port: 0, websocket_port: 0 });
  };
  const stop = async (): Promise<void> => {
    for (const nc of connections.splice(0)) if (!nc.isClosed()) await nc.close();
    await broker?.close();
    broker = undefined;
  };
  after(async () => {
    await stop();
    rmSync(storeDir, { recursive: true, force: true });
  });

  test('a single-account store opens under an accounts config; each account\'s streams come back in its account', async () => {
    // Before accounts: one $G stream in <store_dir>/jetstream.
    await start({});
    const legacy = await connect({ servers: broker!.url, reconnect: false });
    connections.push(legacy);
    await (await jetstreamManager(legacy)).streams.add({ name: 'LEGACY', subjects: ['legacy.>'] });
    await jetstream(legacy).publish('legacy.1', 'kept');
    await stop();

    await start(ACCOUNTS_CONFIG);
    const jsmG = await jetstreamManager(await open('g'));
    assert.equal((await jsmG.streams.info('LEGACY')).state.messages, 1);
    const jsmA = await jetstreamManager(await open('a'));
    const jsmB = await jetstreamManager(await open('b'));
    await rejectsWithCode(jsmA.streams.info('LEGACY'), STREAM_NOT_FOUND);
    await jsmA.streams.add({ name: 'DATA', subjects: ['data.>'] });
    await jsmB.streams.add({ name: 'DATA', subjects: ['data.>'] });
    await jsmA.consumers.add('DATA', { durable_name: 'reader', ack_policy: 'explicit' });
    await jetstream(connections.at(-2)!).publish('data.1', 'a');
    await jetstream(connections.at(-1)!).publish('data.1', 'b');
    await jetstream(connections.at(-1)!).publish('data.2', 'b');
    await stop();
    assert.ok(existsSync(join(storeDir, 'jetstream')), '$G keeps <store_dir>/jetstream');
    assert.ok(existsSync(join(storeDir, 'accounts', 'A', 'jetstream')), 'A has <store_dir>/accounts/A/jetstream');
    assert.ok(existsSync(join(storeDir, 'accounts', 'B', 'jetstream')), 'B has <store_dir>/accounts/B/jetstream');

    await start(ACCOUNTS_CONFIG);
    const afterA = await jetstreamManager(await open('a'));
    const afterB = await jetstreamManager(await open('b'));
    const afterG = await jetstreamManager(await open('g'));
    assert.equal((await afterA.streams.info('DATA')).state.messages, 1);
    assert.equal((await afterB.streams.info('DATA')).state.messages, 2);
    assert.equal((await afterB.streams.getMessage('DATA', { seq: 2 }))?.string(), 'b');
    assert.equal((await afterA.consumers.info('DATA', 'reader')).name, 'reader');
    await rejectsWithCode(afterB.consumers.info('DATA', 'reader'), CONSUMER_NOT_FOUND);
    assert.equal((await afterG.streams.info('LEGACY')).state.messages, 1);
    await rejectsWithCode(afterG.streams.info('DATA'), STREAM_NOT_FOUND);
  });
});

describe('accounts: nkey users, and exports of the global account', () => {
  const nkeyUser = nkeys.createUser();
  let broker: TestBroker;
  const connections: NatsConnection[] = [];
  before(async () => {
    broker = await startTestBroker({
      http_port: 0,
      websocket_port: 0,
      authorization: { users: [{ user: 'g', password: 'pg' }] },
      accounts: {
        $G: { exports: [{ stream: 'shared.>' }] },
        N: { users: [{ nkey: nkeyUser.getPublicKey() }], imports: [{ stream: { account: '$G', subject: 'shared.>' } }] },
      },
    });
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('an nkey user of an account signs the nonce and joins its account, which imports from $G', async () => {
    const n = await connect({ servers: broker.url, reconnect: false, authenticator: nkeyAuthenticator(nkeyUser.getSeed()) });
    const g = await connect({ servers: broker.url, reconnect: false, user: 'g', pass: 'pg' });
    connections.push(n, g);
    assert.equal(typeof n.info?.nonce, 'string');
    const connection = [...broker.broker.server.connections.values()].find((c) => c.authorizedUser?.kind === 'nkey');
    assert.equal(connection?.account.name, 'N');
    const shared = n.subscribe('>');
    await n.flush();
    g.publish('shared.news', 'for everyone');
    g.publish('private.news', 'for $G');
    await g.flush();
    assert.deepEqual(await receivedBefore(shared, n, 'n.marker'), ['shared.news for everyone']);
  });
});

describe('accounts: operator mode (JWT users)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-accounts-jwt-'));
  const chain = newTrustChain();
  const second = nkeys.createAccount();
  const secondJwt = encodeJwt({ type: 'account', signer: chain.operator, subject: second.getPublicKey(), name: 'second', nats: { limits: { subs: -1, conn: -1, data: -1, payload: -1 } } });
  let broker: TestBroker;
  const connections: NatsConnection[] = [];
  const openAs = async (signer: typeof second): Promise<NatsConnection> => {
    const { creds } = newUser({ signer });
    const nc = await connect({ servers: broker.url, reconnect: false, authenticator: credsAuthenticator(new TextEncoder().encode(creds)) });
    connections.push(nc);
    return nc;
  };
  before(async () => {
    const operatorPath = join(dir, 'operator.jwt');
    writeFileSync(operatorPath, decoratedOperatorJwt(chain.operatorJwt));
    broker = await startTestBroker({
      http_port: 0,
      websocket_port: 0,
      operator: operatorPath,
      resolver: 'MEMORY',
      resolver_preload: { [chain.account.getPublicKey()]: chain.accountJwt, [second.getPublicKey()]: secondJwt },
    });
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the preloaded accounts\' JetStreams start with the server, before any user connects', () => {
    assert.equal(broker.broker.server.connections.size, 0);
    assert.deepEqual([...broker.broker.accountJetStreams.keys()].sort(), ['$G', chain.account.getPublicKey(), second.getPublicKey()].sort());
  });

  test('users of two account JWTs are isolated, each account with its own JetStream', async () => {
    const first = await openAs(chain.account);
    const other = await openAs(second);
    const otherAll = other.subscribe('>');
    await other.flush();
    first.publish('hello', 'from the first account');
    await first.flush();
    assert.deepEqual(await receivedBefore(otherAll, other, 'marker'), []);
    const accountOf = (nc: NatsConnection): string | undefined =>
      [...broker.broker.server.connections.values()].find((c) => c.cid === nc.info?.client_id)?.account.name;
    assert.equal(accountOf(first), chain.account.getPublicKey());
    assert.equal(accountOf(other), second.getPublicKey());
    const jsmFirst = await jetstreamManager(first);
    const jsmOther = await jetstreamManager(other);
    await jsmFirst.streams.add({ name: 'JWT_STREAM', subjects: ['jwt.>'] });
    await rejectsWithCode(jsmOther.streams.info('JWT_STREAM'), STREAM_NOT_FOUND);
    assert.equal(broker.broker.accountJetStreams.get(chain.account.getPublicKey())?.options.storeDir, join(broker.storeDir, 'accounts', chain.account.getPublicKey()));
  });

  test('"accounts" next to "operator" is a config error', () => {
    assertConfigError(
      () => resolveServerOptions({ operator: join(dir, 'operator.jwt'), resolver: 'MEMORY', accounts: { A: {} } }),
      'accounts',
      /operators do not allow Accounts to be configured directly/,
    );
  });
});

describe('accounts: no_auth_user', () => {
  let broker: TestBroker;
  const connections: NatsConnection[] = [];
  before(async () => {
    broker = await startTestBroker({ ...ACCOUNTS_CONFIG, no_auth_user: 'b', http_port: 0, websocket_port: 0 });
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('a client without credentials is no_auth_user, in that user\'s account', async () => {
    const anonymous = await connect({ servers: broker.url, reconnect: false });
    connections.push(anonymous);
    const b = await connect({ servers: broker.url, reconnect: false, user: 'b', pass: 'pb' });
    connections.push(b);
    const sub = b.subscribe('hello');
    await b.flush();
    anonymous.publish('hello', 'from nobody');
    await anonymous.flush();
    assert.deepEqual(await receivedBefore(sub, b, 'hello'), ['hello from nobody']);
    const connection = [...broker.broker.server.connections.values()].find((c) => c.authorizedUser?.name === 'b' && c.subscriptions.size === 0);
    assert.equal(connection?.account.name, 'B');
  });
});

describe('accounts: config errors name what is wrong', () => {
  const resolve = (config: Record<string, unknown>) => () => resolveServerOptions(config);
  const userA = { users: [{ user: 'a', password: 'pa' }] };

  test('a user or nkey defined twice', () => {
    assertConfigError(resolve({ authorization: { users: [{ user: 'a', password: 'x' }] }, accounts: { A: userA } }), 'accounts.A.users[0].user', /user "a" is defined twice \(also at authorization\.users\[0\]\)/);
    assertConfigError(resolve({ accounts: { A: userA, B: userA } }), 'accounts.B.users[0].user', /user "a" is defined twice \(also at accounts\.A\.users\[0\]\)/);
    const nkey = 'UC2NTY77PA6RZ6HYYWO42JQXEE5W36NXFBRNSCLKGNZI2PFM2BQPWXRW';
    assertConfigError(resolve({ accounts: { A: { users: [{ nkey }] }, B: { users: [{ nkey }] } } }), 'accounts.B.users[0].nkey', new RegExp(`nkey "${nkey}" is defined twice`));
  });

  test('importing what is not exported, or from an unknown account', () => {
    const exporter = { exports: [{ stream: 'pub.>' }, { service: 'svc.x' }, { stream: 'priv.>', accounts: ['B'] }] };
    assertConfigError(
      resolve({ accounts: { A: exporter, C: { imports: [{ stream: { account: 'A', subject: 'secret.>' } }] } } }),
      'accounts.C.imports[0].stream.subject',
      /stream "secret\.>" is not exported by account "A"/,
    );
    assertConfigError(
      resolve({ accounts: { A: exporter, C: { imports: [{ service: { account: 'A', subject: 'svc.>' } }] } } }),
      'accounts.C.imports[0].service.subject',
      /service "svc\.>" is not exported by account "A"/,
    );
    assertConfigError(
      resolve({ accounts: { A: exporter, C: { imports: [{ service: { account: 'A', subject: 'pub.x' } }] } } }),
      'accounts.C.imports[0].service.subject',
      /service "pub\.x" is not exported/,
    );
    assertConfigError(
      resolve({ accounts: { A: exporter, C: { imports: [{ stream: { account: 'A', subject: 'priv.x' } }] } } }),
      'accounts.C.imports[0].stream.subject',
      /stream "priv\.x" of account "A" is not exported to account "C"/,
    );
    assertConfigError(
      resolve({ accounts: { C: { imports: [{ stream: { account: 'Z', subject: 'x' } }] } } }),
      'accounts.C.imports[0].stream.account',
      /account "Z" is not defined/,
    );
    assertConfigError(
      resolve({ accounts: { A: exporter, C: { imports: [{ stream: { account: 'A', subject: 'pub.>' }, to: 'in.*' }] } } }),
      'accounts.C.imports[0].to',
      /same wildcards/,
    );
  });

  test('imports that form a cycle (nats-server: "import forms a cycle")', () => {
    const loop = (from: string) => ({ exports: [{ stream: 'loop.>' }, { service: 'svc.>' }], imports: [{ stream: { account: from, subject: 'loop.>' } }] });
    assertConfigError(resolve({ accounts: { X: loop('Y'), Y: loop('X') } }), 'accounts.X.imports[0].stream', /import forms a cycle: accounts\.X\.imports\[0\]\.stream -> accounts\.Y\.imports\[0\]\.stream/);
    // Through three accounts, with services: X's "a" goes to Y's svc.a, Y's svc.a to Z's svc.b, Z's svc.b back to X's a.
    const services = {
      X: { exports: [{ service: 'a' }], imports: [{ service: { account: 'Y', subject: 'svc.a' }, to: 'a' }] },
      Y: { exports: [{ service: 'svc.>' }], imports: [{ service: { account: 'Z', subject: 'svc.b' }, to: 'svc.a' }] },
      Z: { exports: [{ service: 'svc.>' }], imports: [{ service: { account: 'X', subject: 'a' }, to: 'svc.b' }] },
    };
    assertConfigError(resolve({ accounts: services }), 'accounts.X.imports[0].service', /import forms a cycle/);
    // A prefix that takes the messages out of the exported subjects breaks the loop: no error.
    const prefixed = (from: string) => ({ exports: [{ stream: 'loop.>' }], imports: [{ stream: { account: from, subject: 'loop.>' }, prefix: 'from' }] });
    resolveServerOptions({ accounts: { X: prefixed('Y'), Y: prefixed('X') } });
  });

  test('bad shapes and no_auth_user', () => {
    assertConfigError(resolve({ accounts: [] }), 'accounts', /must be an object/);
    assertConfigError(resolve({ accounts: { A: { jetstream: 'maybe' } } }), 'accounts.A.jetstream', /"enabled" or "disabled"/);
    assertConfigError(resolve({ accounts: { A: { exports: [{ stream: 'a b' }] } } }), 'accounts.A.exports[0].stream', /valid subject/);
    assertConfigError(resolve({ accounts: { A: { exports: [{ service: 'x', response_type: 'many' }] } } }), 'accounts.A.exports[0].response_type', /Singleton/);
    assertConfigError(resolve({ accounts: { A: { imports: [{ stream: { account: 'A', subject: 'x' } }] } } }), 'accounts.A.imports[0].stream.account', /cannot import from itself/);
    assertConfigError(resolve({ accounts: { A: { owner: 'me' } } }), 'accounts.A.owner', /unknown key/);
    assertConfigError(resolve({ accounts: { A: userA }, no_auth_user: 'nobody' }), 'no_auth_user', /"nobody" is not a user/);
    assertConfigError(resolve({ accounts: { A: userA }, authorization: { token: 't' } }), 'authorization.token', /cannot be combined with users/);
  });
});
