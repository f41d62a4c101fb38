/**
 * Client authentication with the official nats.js client (@nats-io/transport-node)
 * and raw bytes: token, users with plain and bcrypt passwords, nkey users (the
 * nonce signature), auth_timeout, and the exact -ERR nats-server sends.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  wsconnect,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { WebSocket } from 'ws';
import { ConfigError } from '../../core/server/options.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { eventually } from '../helpers/eventually.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { recordingLogger, type LogRecord } from '../helpers/recording-logger.ts';

/** bcrypt of "s3cr3t" and of "tok3n" at cost 4 (made with libxcrypt's crypt(3); nats-server 2.9 accepts them). */
const S3CR3T_BCRYPT = '$2b$04$0123456789ABCDEFGHIJK.1zMXhY2mrjt3Mf/FfGrVEVz6v3myPOm';
const TOK3N_BCRYPT = '$2a$04$0123456789ABCDEFGHIJK.xk/vuBR/6tJYDkUoGPnhpEr/U2Fdoay';
const VIOLATION = "-ERR 'Authorization Violation'\r\n";
/** Listeners the auth tests do not need stay off. */
const LEAN = { jetstream: false, http_port: 0, websocket_port: 0 };

async function startAuthBroker(config: Record<string, unknown>, records: LogRecord[] = []): Promise<TestBroker> {
  return startTestBroker({ ...LEAN, ...config }, recordingLogger(records));
}

/** Connects with the official client; closes it after the test file. */
function opener(broker: () => TestBroker, connections: NatsConnection[]) {
  return async (options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> => {
    const nc = await connect({ servers: broker().url, reconnect: false, ...options });
    connections.push(nc);
    return nc;
  };
}

/** A publish-subscribe round trip proves the connection works past CONNECT. */
async function assertRoundTrip(nc: NatsConnection): Promise<void> {
  const sub = nc.subscribe('auth.check', { max: 1 });
  nc.publish('auth.check', 'ok');
  for await (const message of sub) assert.equal(message.string(), 'ok');
}

/** The raw CONNECT exchange: what the server sends after INFO, up to its close. */
async function rawConnect(port: number, connect: Record<string, unknown>): Promise<{ info: Record<string, unknown>; answer: string }> {
  const client = await RawClient.open(port);
  const info = JSON.parse((await client.readLine()).slice('INFO '.length)) as Record<string, unknown>;
  client.send(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, headers: true, ...connect })}\r\nPING\r\n`);
  const answer = await client.readUntilClosed();
  return { info, answer };
}

function warnings(records: LogRecord[]): LogRecord[] {
  return records.filter((record) => record.level === 'warn' && record.msg === 'authorization violation');
}

describe('token authentication', () => {
  let broker: TestBroker;
  const records: LogRecord[] = [];
  const connections: NatsConnection[] = [];
  const open = opener(() => broker, connections);
  before(async () => {
    broker = await startAuthBroker({ authorization: { token: 'tok3n' } }, records);
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('the right token connects; INFO says auth_required without a nonce', async () => {
    const nc = await open({ token: 'tok3n' });
    assert.equal(nc.info?.auth_required, true);
    assert.equal(nc.info?.nonce, undefined);
    await assertRoundTrip(nc);
    const connection = [...broker.broker.server.connections.values()].find((c) => c.authorizedUser !== undefined);
    assert.deepEqual(connection?.authorizedUser, { kind: 'token', name: '[REDACTED]', permissions: undefined, account: '$G' });
  });

  test('a wrong or missing token is refused with an AuthorizationError', async () => {
    await assert.rejects(open({ token: 'nope' }), AuthorizationError);
    await assert.rejects(open(), AuthorizationError);
  });

  test('raw bytes: -ERR Authorization Violation, then the close; a warn log without the secret; a counter', async () => {
    const before = broker.broker.server.stats.authorizationViolations;
    const { info, answer } = await rawConnect(broker.port, { auth_token: 'wrong-token-value' });
    assert.equal(info['auth_required'], true);
    assert.equal(answer, VIOLATION);
    assert.equal(broker.broker.server.stats.authorizationViolations, before + 1);
    const last = warnings(records).at(-1);
    assert.equal(last?.fields['reason'], 'wrong token');
    assert.ok(typeof last?.fields['remote'] === 'string' && last.fields['remote'].startsWith('127.0.0.1:'));
    assert.ok(!JSON.stringify(records).includes('wrong-token-value'), 'the secret is not logged');
    const closed = broker.broker.server.closedConnections.at(-1);
    assert.equal(closed?.closedReason, 'Authentication Failure');
  });

  test('a CONNECT with a jwt (credentials) is refused: without operator mode JWTs are not accepted', async () => {
    const { answer } = await rawConnect(broker.port, { auth_token: 'tok3n', jwt: 'eyJ0eXAiOiJKV1QifQ.e30.sig' });
    assert.equal(answer, VIOLATION);
    assert.match(String(warnings(records).at(-1)?.fields['reason']), /operator mode is off/);
  });
});

describe('bcrypt token', () => {
  test('a bcrypt-hashed token accepts the plain token and refuses others', async (t) => {
    const broker = await startAuthBroker({ authorization: { token: TOK3N_BCRYPT } });
    t.after(() => broker.close());
    const nc = await connect({ servers: broker.url, token: 'tok3n', reconnect: false });
    await assertRoundTrip(nc);
    await nc.close();
    await assert.rejects(connect({ servers: broker.url, token: TOK3N_BCRYPT, reconnect: false }), AuthorizationError);
  });
});

describe('users with passwords', () => {
  let broker: TestBroker;
  const records: LogRecord[] = [];
  const connections: NatsConnection[] = [];
  const open = opener(() => broker, connections);
  before(async () => {
    broker = await startAuthBroker(
      {
        authorization: {
          users: [
            { user: 'alice', password: 'plain-pw', permissions: { publish: ['a.>'] } },
            { user: 'bob', password: S3CR3T_BCRYPT },
          ],
        },
      },
      records,
    );
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('a plain password connects and the identity (with its parsed permissions) is on the connection', async () => {
    const nc = await open({ user: 'alice', pass: 'plain-pw', name: 'alice-client' });
    const connection = [...broker.broker.server.connections.values()].find((c) => c.name === 'alice-client');
    assert.equal(connection?.authorizedUser?.kind, 'password');
    assert.equal(connection?.authorizedUser?.name, 'alice');
    assert.deepEqual(connection?.authorizedUser?.permissions?.publish?.allow, [{ subject: 'a.>', queue: '' }]);
    await nc.close();
  });

  test('a bcrypt password connects with the plain password', async () => {
    const nc = await open({ user: 'bob', pass: 's3cr3t' });
    await assertRoundTrip(nc);
    // A second connect hits the cache of passed bcrypt checks and still works.
    await assertRoundTrip(await open({ user: 'bob', pass: 's3cr3t' }));
  });

  test('wrong passwords, unknown users and a missing user are refused', async () => {
    await assert.rejects(open({ user: 'alice', pass: 'wrong' }), AuthorizationError);
    await assert.rejects(open({ user: 'bob', pass: 'wrong' }), AuthorizationError);
    await assert.rejects(open({ user: 'bob', pass: S3CR3T_BCRYPT }), AuthorizationError);
    await assert.rejects(open({ user: 'carol', pass: 'plain-pw' }), AuthorizationError);
    await assert.rejects(open(), AuthorizationError);
    const reasons = warnings(records).map((record) => [record.fields['user'], record.fields['reason']]);
    assert.deepEqual(reasons.slice(-5), [
      ['alice', 'wrong password'],
      ['bob', 'wrong password'],
      ['bob', 'wrong password'],
      ['carol', 'unknown user'],
      ['', 'no user given'],
    ]);
  });

  test('raw bytes: the violation comes before anything else and the connection closes', async () => {
    const { info, answer } = await rawConnect(broker.port, { user: 'alice', pass: 'nope' });
    assert.equal(info['auth_required'], true);
    assert.equal(info['nonce'], undefined);
    assert.equal(answer, VIOLATION);
  });
});

describe('single user from flags (--user, --pass)', () => {
  test('user and pass given as flags work like authorization { user, password }', async (t) => {
    const broker = await startAuthBroker({ user: 'ops', pass: S3CR3T_BCRYPT });
    t.after(() => broker.close());
    const nc = await connect({ servers: broker.url, user: 'ops', pass: 's3cr3t', reconnect: false });
    await assertRoundTrip(nc);
    await nc.close();
    await assert.rejects(connect({ servers: broker.url, user: 'ops', pass: 'x', reconnect: false }), AuthorizationError);
  });

  test('--auth sets a token', async (t) => {
    const broker = await startAuthBroker({ auth: 'flag-token' });
    t.after(() => broker.close());
    const nc = await connect({ servers: broker.url, token: 'flag-token', reconnect: false });
    await nc.close();
    await assert.rejects(connect({ servers: broker.url, reconnect: false }), AuthorizationError);
  });
});

describe('nkey users', () => {
  let broker: TestBroker;
  const records: LogRecord[] = [];
  const connections: NatsConnection[] = [];
  const open = opener(() => broker, connections);
  const user = nkeys.createUser();
  const stranger = nkeys.createUser();
  before(async () => {
    broker = await startAuthBroker({ authorization: { users: [{ nkey: user.getPublicKey() }, { user: 'alice', password: 'pw' }] } }, records);
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test("nkeyAuthenticator with the user's seed connects; INFO carries a 15-character nonce", async () => {
    const nc = await open({ authenticator: nkeyAuthenticator(user.getSeed()), name: 'nkey-client' });
    assert.equal(nc.info?.auth_required, true);
    assert.match(String(nc.info?.nonce), /^[A-Za-z0-9_-]{15}$/);
    await assertRoundTrip(nc);
    const connection = [...broker.broker.server.connections.values()].find((c) => c.name === 'nkey-client');
    assert.deepEqual(connection?.authorizedUser, { kind: 'nkey', name: user.getPublicKey(), permissions: undefined, account: '$G' });
  });

  test('each connection gets its own nonce', async () => {
    const first = await RawClient.open(broker.port);
    const second = await RawClient.open(broker.port);
    const nonceOf = async (client: RawClient): Promise<unknown> => (JSON.parse((await client.readLine()).slice(5)) as Record<string, unknown>)['nonce'];
    assert.notEqual(await nonceOf(first), await nonceOf(second));
    first.close();
    second.close();
  });

  test('a seed that is not configured is refused', async () => {
    await assert.rejects(open({ authenticator: nkeyAuthenticator(stranger.getSeed()) }), AuthorizationError);
    assert.equal(warnings(records).at(-1)?.fields['reason'], 'unknown nkey');
  });

  test("the configured nkey with another key's signature is refused", async () => {
    const forged = (nonce?: string) => ({
      nkey: user.getPublicKey(),
      sig: Buffer.from(stranger.sign(new TextEncoder().encode(nonce ?? ''))).toString('base64url'),
    });
    await assert.rejects(open({ authenticator: forged }), AuthorizationError);
    assert.equal(warnings(records).at(-1)?.fields['reason'], 'nonce signature does not verify');
  });

  test('raw bytes: a base64url signature of the nonce is accepted; a missing one is a violation', async () => {
    const client = await RawClient.open(broker.port);
    const info = JSON.parse((await client.readLine()).slice(5)) as Record<string, unknown>;
    const sig = Buffer.from(user.sign(new TextEncoder().encode(String(info['nonce'])))).toString('base64url');
    client.send(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, nkey: user.getPublicKey(), sig })}\r\nPING\r\n`);
    assert.equal(await client.readLine(), 'PONG');
    client.close();
    const { answer } = await rawConnect(broker.port, { nkey: user.getPublicKey() });
    assert.equal(answer, VIOLATION);
  });

  test('credsAuthenticator (a .creds file: JWT plus seed) is refused even for a configured nkey: JWTs need operator mode (jwt-auth.test.ts)', async () => {
    const creds = [
      '-----BEGIN NATS USER JWT-----',
      'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln',
      '------END NATS USER JWT------',
      '',
      '-----BEGIN USER NKEY SEED-----',
      new TextDecoder().decode(user.getSeed()),
      '------END USER NKEY SEED------',
      '',
    ].join('\n');
    await assert.rejects(open({ authenticator: credsAuthenticator(new TextEncoder().encode(creds)) }), AuthorizationError);
    assert.equal(warnings(records).at(-1)?.fields['reason'], 'a JWT (credentials) was given, but operator mode is off (no "operator" configured)');
  });

  test('password users next to nkey users still work', async () => {
    await assertRoundTrip(await open({ user: 'alice', pass: 'pw' }));
  });
});

describe('WebSocket clients', () => {
  test('are authenticated the same way (nkey over ws, wrong password refused)', async (t) => {
    const user = nkeys.createUser();
    const broker = await startAuthBroker({ websocket_port: -1, authorization: { users: [{ nkey: user.getPublicKey() }, { user: 'alice', password: 'pw' }] } });
    t.after(() => broker.close());
    (globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;
    const ws = await wsconnect({ servers: broker.websocketUrl, authenticator: nkeyAuthenticator(user.getSeed()), reconnect: false });
    await assertRoundTrip(ws);
    await ws.close();
    await assert.rejects(wsconnect({ servers: broker.websocketUrl, user: 'alice', pass: 'wrong', reconnect: false }), AuthorizationError);
  });
});

describe('auth_timeout with auth configured', () => {
  test('a client that never sends CONNECT gets -ERR Authentication Timeout, then the close', async (t) => {
    const broker = await startAuthBroker({ authorization: { token: 'tok3n', timeout: 0.2 } });
    t.after(() => broker.close());
    assert.equal(broker.broker.server.options.authTimeoutMs, 200);
    const silent = await RawClient.open(broker.port);
    await silent.readLine();
    assert.equal(await silent.readUntilClosed(), "-ERR 'Authentication Timeout'\r\n");
    await eventually(() => assert.equal(broker.broker.server.closedConnections.at(-1)?.closedReason, 'Authentication Timeout'));
  });

  test('a CONNECT with the right token that comes too late finds the connection closed', async (t) => {
    const broker = await startAuthBroker({ authorization: { token: 'tok3n' }, auth_timeout: '150ms' });
    t.after(() => broker.close());
    const late = await RawClient.open(broker.port);
    await late.readLine();
    await new Promise((resolve) => setTimeout(resolve, 300));
    late.send('CONNECT {"verbose":false,"auth_token":"tok3n"}\r\nPING\r\n');
    assert.equal(await late.readUntilClosed(), "-ERR 'Authentication Timeout'\r\n");
  });
});

describe('config errors', () => {
  test('a bad authorization block fails the start with a ConfigError naming the key', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ authorization: 'tok3n' }, 'authorization'],
      [{ authorization: { users: [{ user: 'a' }] } }, 'authorization.users[0].password'],
      [{ authorization: { users: [{ nkey: 'UNOTAKEY' }] } }, 'authorization.users[0].nkey'],
      [{ authorization: { token: 'x', users: [{ user: 'a', password: 'b' }] } }, 'authorization.token'],
      [{ authorization: { users: [{ user: 'a', password: 'b', account: 'A' }] } }, 'authorization.users[0].account'],
    ];
    for (const [config, key] of cases) {
      await assert.rejects(startAuthBroker(config), (err: unknown) => err instanceof ConfigError && err.key === key, key);
    }
  });
});

describe('no auth configured', () => {
  test('INFO has neither auth_required nor nonce, and any credentials are accepted', async (t) => {
    const broker = await startAuthBroker({});
    t.after(() => broker.close());
    const client = await RawClient.open(broker.port);
    const info = JSON.parse((await client.readLine()).slice(5)) as Record<string, unknown>;
    assert.equal(info['auth_required'], undefined);
    assert.equal(info['nonce'], undefined);
    client.close();
    const nc = await connect({ servers: broker.url, token: 'anything', reconnect: false });
    await assertRoundTrip(nc);
    await nc.close();
    assert.equal(broker.broker.server.stats.authorizationViolations, 0);
  });
});
