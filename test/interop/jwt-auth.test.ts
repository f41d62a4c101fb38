/**
 * Operator mode (decentralized JWT auth) with the official nats.js client
 * (`credsAuthenticator` reading a `.creds` file) and raw bytes. Operator, account
 * and user nkeys and JWTs are made at test time (helpers/nats-jwt.ts). Covered: the
 * user → account → operator chain with signing keys (plain and scoped), every broken
 * link refused with -ERR 'Authorization Violation' and a log reason, permissions from
 * the user JWT with the exact Permissions Violation texts, bearer tokens, revocations,
 * expiry while connected, and the config errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  nkeys,
  PermissionViolationError,
  UserAuthenticationExpiredError,
  wsconnect,
  type NatsConnection,
} from '@nats-io/transport-node';
import { WebSocket } from 'ws';
import { resolveServerOptions } from '../../core/server/options.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { assertConfigError } from '../helpers/config-error.ts';
import { eventually } from '../helpers/eventually.ts';
import { decoratedOperatorJwt, encodeJwt, newTrustChain, newUser, nowSeconds, signNonce, type KeyPair, type TrustChain } from '../helpers/nats-jwt.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { recordingLogger, type LogRecord } from '../helpers/recording-logger.ts';

const VIOLATION = "-ERR 'Authorization Violation'\r\n";
/** Listeners the auth tests do not need stay off. */
const LEAN = { jetstream: false, http_port: 0, websocket_port: 0 };

const tempDir = mkdtempSync(join(tmpdir(), 'canopy-jwt-'));
after(() => rmSync(tempDir, { recursive: true, force: true }));

/** Writes `text` to a new file in the test's temp dir and returns its path. */
function tempFile(name: string, text: string): string {
  const path = join(tempDir, name);
  writeFileSync(path, text);
  return path;
}

function operatorConfig(chain: TrustChain, accounts: Record<string, string> = { [chain.account.getPublicKey()]: chain.accountJwt }): Record<string, unknown> {
  return { operator: tempFile(`operator-${chain.operator.getPublicKey()}.jwt`, decoratedOperatorJwt(chain.operatorJwt)), resolver: 'MEMORY', resolver_preload: accounts };
}

function creds(text: string): ReturnType<typeof credsAuthenticator> {
  return credsAuthenticator(new TextEncoder().encode(text));
}

function warnings(records: LogRecord[]): LogRecord[] {
  return records.filter((record) => record.level === 'warn' && record.msg === 'authorization violation');
}

/** A publish-subscribe round trip proves the connection works past CONNECT. */
async function assertRoundTrip(nc: NatsConnection, subject = 'jwt.check'): Promise<void> {
  const sub = nc.subscribe(subject, { max: 1 });
  nc.publish(subject, 'ok');
  for await (const message of sub) assert.equal(message.string(), 'ok');
}

/** INFO, then a CONNECT built from its nonce; returns INFO and the first line answered (PONG on success). */
async function rawJwtConnect(port: number, fields: (nonce: string) => Record<string, unknown>): Promise<{ client: RawClient; info: Record<string, unknown>; line: string }> {
  const client = await RawClient.open(port);
  const info = JSON.parse((await client.readLine()).slice('INFO '.length)) as Record<string, unknown>;
  client.send(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, headers: true, ...fields(String(info['nonce'])) })}\r\nPING\r\n`);
  return { client, info, line: await client.readLine(5000) };
}

/** A raw CONNECT as `user` with its JWT and the nonce signature, as credsAuthenticator sends it. */
function signedConnect(user: KeyPair, jwt: string): (nonce: string) => Record<string, unknown> {
  return (nonce) => ({ jwt, nkey: user.getPublicKey(), sig: signNonce(user, nonce) });
}

describe('operator mode: users with .creds files', () => {
  const chain = newTrustChain();
  const records: LogRecord[] = [];
  const connections: NatsConnection[] = [];
  let broker: TestBroker;
  const open = async (credsText: string): Promise<NatsConnection> => {
    const nc = await connect({ servers: broker.url, reconnect: false, authenticator: creds(credsText) });
    connections.push(nc);
    return nc;
  };
  /** Connecting is refused with an AuthorizationError, and the server logs `reason`. */
  const assertRefused = async (credsText: string, reason: RegExp): Promise<void> => {
    const before = broker.broker.server.stats.authorizationViolations;
    await assert.rejects(open(credsText), AuthorizationError);
    assert.equal(broker.broker.server.stats.authorizationViolations, before + 1);
    assert.match(String(warnings(records).at(-1)?.fields['reason']), reason);
  };

  before(async () => {
    broker = await startTestBroker({ ...LEAN, ...operatorConfig(chain) }, recordingLogger(records));
  });
  after(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await broker.close();
  });

  test('credsAuthenticator connects; the connection belongs to the account; INFO has auth_required and a nonce', async () => {
    const { user, creds: credsText } = newUser({ signer: chain.account });
    const nc = await open(credsText);
    assert.equal(nc.info?.auth_required, true);
    assert.equal(typeof nc.info?.nonce, 'string');
    await assertRoundTrip(nc);
    const connection = [...broker.broker.server.connections.values()].find((c) => c.authorizedUser?.name === user.getPublicKey());
    assert.equal(connection?.authorizedUser?.kind, 'jwt');
    assert.equal(connection?.authorizedUser?.account, chain.account.getPublicKey());
  });

  test('a user of an account the resolver does not know is refused', async () => {
    const stranger = nkeys.createAccount();
    await assertRefused(newUser({ signer: stranger }).creds, /unknown account/);
  });

  test('a user signed by a signing key the account does not list is refused', async () => {
    const unlisted = nkeys.createAccount();
    const { creds: credsText } = newUser({ signer: unlisted, nats: { issuer_account: chain.account.getPublicKey() } });
    await assertRefused(credsText, /not signed by its account or one of its signing keys/);
  });

  test('an expired user JWT is refused, and so is one not valid yet', async () => {
    await assertRefused(newUser({ signer: chain.account, claims: { exp: nowSeconds() - 60 } }).creds, /^the user JWT is expired$/);
    await assertRefused(newUser({ signer: chain.account, claims: { nbf: nowSeconds() + 3600 } }).creds, /^the user JWT is not yet valid$/);
  });

  test('a .creds file whose seed is not the JWT user\'s key fails the nonce signature', async () => {
    const { jwt } = newUser({ signer: chain.account });
    const other = newUser({ signer: chain.account });
    await assertRefused(other.creds.replace(other.jwt, jwt), /^nonce signature does not verify$/);
  });

  test('raw bytes: a wrong nonce signature, a JWT without sig, and no JWT at all get the exact -ERR', async () => {
    const { user, jwt } = newUser({ signer: chain.account });
    const cases: [string, (nonce: string) => Record<string, unknown>, RegExp][] = [
      ['signature of another nonce', (nonce) => ({ jwt, sig: signNonce(user, `${nonce}x`) }), /^nonce signature does not verify$/],
      ['no sig', () => ({ jwt, nkey: user.getPublicKey() }), /^no nonce signature given$/],
      ['a user and password instead', () => ({ user: 'alice', pass: 'pw' }), /^no user JWT given/],
      ['not a JWT', () => ({ jwt: 'not-a-jwt', sig: 'c2ln' }), /is not a JWT/],
    ];
    for (const [name, fields, reason] of cases) {
      const { client, line } = await rawJwtConnect(broker.port, fields);
      assert.equal(`${line}\r\n`, VIOLATION, name);
      assert.equal(await client.readUntilClosed(), '', name);
      assert.match(String(warnings(records).at(-1)?.fields['reason']), reason, name);
    }
    const closed = broker.broker.server.closedConnections.at(-1);
    assert.equal(closed?.closedReason, 'Authentication Failure');
  });

  test('a tampered user JWT (claims changed after signing) is refused, and the JWT is never logged', async () => {
    const { user, jwt } = newUser({ signer: chain.account, nats: { pub: { allow: ['only.this'] } } });
    const [header, claims, signature] = jwt.split('.');
    const changed = JSON.parse(Buffer.from(claims ?? '', 'base64url').toString('utf8')) as { nats: Record<string, unknown> };
    changed.nats['pub'] = {};
    const tampered = `${header}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${signature}`;
    const { line } = await rawJwtConnect(broker.port, signedConnect(user, tampered));
    assert.equal(`${line}\r\n`, VIOLATION);
    assert.equal(warnings(records).at(-1)?.fields['reason'], 'the user JWT has a signature that does not verify');
    assert.equal(warnings(records).at(-1)?.fields['user'], undefined);
    assert.ok(!JSON.stringify(records).includes(claims ?? '-'), 'no JWT in the log');
  });

  test('a user JWT that sets a restriction canopy does not enforce (times, a payload limit) is refused, not widened', async () => {
    await assertRefused(newUser({ signer: chain.account, nats: { times: [{ start: '08:00:00', end: '17:00:00' }] } }).creds, /sets "times", which canopy does not enforce/);
    await assertRefused(newUser({ signer: chain.account, nats: { payload: 1024 } }).creds, /sets a "payload" limit/);
  });

  test('src: a client inside one of the CIDRs connects; one outside, or a malformed src, is refused', async () => {
    await assertRoundTrip(await open(newUser({ signer: chain.account, nats: { src: ['10.0.0.0/8', '127.0.0.0/8'] } }).creds));
    await assertRoundTrip(await open(newUser({ signer: chain.account, nats: { src: ['127.0.0.1'] } }).creds));
    await assertRefused(newUser({ signer: chain.account, nats: { src: ['10.0.0.0/8', '::1/128'] } }).creds, /^the client address is not in the user JWT's src$/);
    await assertRefused(newUser({ signer: chain.account, nats: { src: ['127.0.0.0/33'] } }).creds, /^the user JWT's src is not a list of CIDRs$/);
  });

  test('allowed_connection_types: STANDARD admits a TCP client, WEBSOCKET alone refuses it', async () => {
    await assertRoundTrip(await open(newUser({ signer: chain.account, nats: { allowed_connection_types: ['STANDARD', 'WEBSOCKET'] } }).creds));
    await assertRefused(newUser({ signer: chain.account, nats: { allowed_connection_types: ['WEBSOCKET'] } }).creds, /^the user JWT does not allow STANDARD connections$/);
  });

  test('a user JWT with malformed permissions (a bad subject, a pub that is not a list or object) is refused', async () => {
    await assertRefused(newUser({ signer: chain.account, nats: { pub: { allow: ['a..b'] } } }).creds, /^the user JWT's permissions are invalid: .*"a\.\.b" is not a valid subject/);
    await assertRefused(newUser({ signer: chain.account, nats: { sub: 7 } }).creds, /^the user JWT's permissions are invalid/);
  });

  test('a bearer-token user JWT connects without a nonce signature', async () => {
    const { jwt } = newUser({ signer: chain.account, nats: { bearer_token: true } });
    const { client, line } = await rawJwtConnect(broker.port, () => ({ jwt }));
    assert.equal(line, 'PONG');
    client.close();
  });
});

describe('operator mode over WebSocket', () => {
  test('a .creds user connects over ws:// the same way; a user of an unknown account is refused', async (t) => {
    const chain = newTrustChain();
    const broker = await startTestBroker({ ...LEAN, websocket_port: -1, ...operatorConfig(chain) });
    t.after(() => broker.close());
    (globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;
    const ws = await wsconnect({ servers: broker.websocketUrl, authenticator: creds(newUser({ signer: chain.account }).creds), reconnect: false });
    await assertRoundTrip(ws);
    await ws.close();
    const stranger = newUser({ signer: nkeys.createAccount() });
    await assert.rejects(wsconnect({ servers: broker.websocketUrl, authenticator: creds(stranger.creds), reconnect: false }), AuthorizationError);
    // allowed_connection_types: WEBSOCKET admits this client, STANDARD alone refuses it.
    const wsOnly = await wsconnect({ servers: broker.websocketUrl, authenticator: creds(newUser({ signer: chain.account, nats: { allowed_connection_types: ['WEBSOCKET'] } }).creds), reconnect: false });
    await wsOnly.close();
    const tcpOnly = newUser({ signer: chain.account, nats: { allowed_connection_types: ['STANDARD'] } });
    await assert.rejects(wsconnect({ servers: broker.websocketUrl, authenticator: creds(tcpOnly.creds), reconnect: false }), AuthorizationError);
  });
});

describe('operator mode: a user JWT must fit max_control_line', () => {
  test('a CONNECT whose JWT is longer than max_control_line gets -ERR \'maximum control line exceeded\'; a larger limit admits it', async (t) => {
    const chain = newTrustChain();
    // 120 subjects of 20 bytes: a JWT of about 4 KB in base64url, past the 4096-byte default once in CONNECT.
    const allow = Array.from({ length: 120 }, (_unused, i) => `telemetry.site${String(i).padStart(4, '0')}.>`);
    const { user, jwt } = newUser({ signer: chain.account, nats: { pub: { allow } } });
    assert.ok(jwt.length > 4096, `the JWT is ${jwt.length} bytes`);
    const small = await startTestBroker({ ...LEAN, ...operatorConfig(chain) });
    t.after(() => small.close());
    const { line } = await rawJwtConnect(small.port, signedConnect(user, jwt));
    assert.equal(line, "-ERR 'maximum control line exceeded'");
    const large = await startTestBroker({ ...LEAN, ...operatorConfig(chain), max_control_line: '16KB' });
    t.after(() => large.close());
    const nc = await connect({ servers: large.url, reconnect: false, authenticator: creds(newUser({ signer: chain.account, nats: { pub: { allow } } }).creds) });
    t.after(() => nc.close());
    await nc.flush();
  });
});

describe('operator mode: the trust chain', () => {
  test('an account signed by another operator is refused at CONNECT (the preload itself is accepted, as in nats-server)', async (t) => {
    const chain = newTrustChain();
    const other = newTrustChain();
    const records: LogRecord[] = [];
    const broker = await startTestBroker({ ...LEAN, ...operatorConfig(chain, { [other.account.getPublicKey()]: other.accountJwt }) }, recordingLogger(records));
    t.after(() => broker.close());
    await assert.rejects(connect({ servers: broker.url, reconnect: false, authenticator: creds(newUser({ signer: other.account }).creds) }), AuthorizationError);
    assert.equal(warnings(records).at(-1)?.fields['reason'], 'the account JWT is not signed by a trusted operator');
  });

  test('operator and account signing keys: the account signed by an operator signing key, the user by an account signing key (issuer_account)', async (t) => {
    const operator = nkeys.createOperator();
    const operatorSigner = nkeys.createOperator();
    const account = nkeys.createAccount();
    const accountSigner = nkeys.createAccount();
    const operatorJwt = encodeJwt({ type: 'operator', signer: operator, subject: operator.getPublicKey(), nats: { signing_keys: [operatorSigner.getPublicKey()] } });
    const accountJwt = encodeJwt({ type: 'account', signer: operatorSigner, subject: account.getPublicKey(), nats: { signing_keys: [accountSigner.getPublicKey()] } });
    // The operator JWT given inline, not as a file.
    const broker = await startTestBroker({ ...LEAN, operator: operatorJwt, resolver: 'MEMORY', resolver_preload: { [account.getPublicKey()]: accountJwt } });
    t.after(() => broker.close());
    const { user, creds: credsText } = newUser({ signer: accountSigner, nats: { issuer_account: account.getPublicKey() } });
    const nc = await connect({ servers: broker.url, reconnect: false, authenticator: creds(credsText) });
    t.after(() => nc.close());
    await assertRoundTrip(nc);
    const connection = [...broker.broker.server.connections.values()].find((c) => c.authorizedUser?.name === user.getPublicKey());
    assert.equal(connection?.authorizedUser?.account, account.getPublicKey());
  });

  test('an account that revoked a user (or all users issued until a time) refuses them; later users still connect', async (t) => {
    const operatorless = newTrustChain();
    const revoked = newUser({ signer: operatorless.account, claims: { iat: nowSeconds() - 100 } });
    const all = newUser({ signer: operatorless.account, claims: { iat: nowSeconds() - 100 } });
    const fresh = newUser({ signer: operatorless.account, claims: { iat: nowSeconds() + 60 } });
    const accountJwt = encodeJwt({
      type: 'account',
      signer: operatorless.operator,
      subject: operatorless.account.getPublicKey(),
      nats: { revocations: { [revoked.user.getPublicKey()]: nowSeconds(), '*': nowSeconds() - 50 } },
    });
    const records: LogRecord[] = [];
    const broker = await startTestBroker({ ...LEAN, ...operatorConfig(operatorless, { [operatorless.account.getPublicKey()]: accountJwt }) }, recordingLogger(records));
    t.after(() => broker.close());
    for (const refused of [revoked, all]) {
      await assert.rejects(connect({ servers: broker.url, reconnect: false, authenticator: creds(refused.creds) }), AuthorizationError);
      assert.equal(warnings(records).at(-1)?.fields['reason'], 'the user JWT is revoked by its account');
    }
    const nc = await connect({ servers: broker.url, reconnect: false, authenticator: creds(fresh.creds) });
    await nc.close();
  });

  test('an expired account refuses its users; an account that disallows bearer tokens refuses bearer users', async (t) => {
    const expired = newTrustChain({ accountClaims: { exp: nowSeconds() - 10 } });
    const noBearer = newTrustChain({ accountNats: { limits: { disallow_bearer: true } } });
    const records: LogRecord[] = [];
    const broker = await startTestBroker({ ...LEAN, ...operatorConfig(expired), resolver_preload: { [expired.account.getPublicKey()]: expired.accountJwt } }, recordingLogger(records));
    t.after(() => broker.close());
    await assert.rejects(connect({ servers: broker.url, reconnect: false, authenticator: creds(newUser({ signer: expired.account }).creds) }), AuthorizationError);
    assert.equal(warnings(records).at(-1)?.fields['reason'], 'the account JWT is expired');
    const second = await startTestBroker({ ...LEAN, ...operatorConfig(noBearer) }, recordingLogger(records));
    t.after(() => second.close());
    const { jwt } = newUser({ signer: noBearer.account, nats: { bearer_token: true } });
    const { line } = await rawJwtConnect(second.port, () => ({ jwt }));
    assert.equal(`${line}\r\n`, VIOLATION);
    assert.equal(warnings(records).at(-1)?.fields['reason'], 'the account does not allow bearer tokens');
  });
});

describe('operator mode: permissions from the user JWT', () => {
  const scopedSigner = nkeys.createAccount();
  const chain = newTrustChain({
    accountNats: { signing_keys: [{ kind: 'user_scope', key: scopedSigner.getPublicKey(), role: 'readers', template: { pub: { allow: ['scoped.>'] }, sub: { allow: ['scoped.>', '_INBOX.>'] }, subs: -1, data: -1, payload: -1 } }] },
  });
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ ...LEAN, ...operatorConfig(chain) });
  });
  after(() => broker.close());

  test('raw bytes: pub and sub allow/deny from the JWT give the exact Permissions Violation texts; allowed subjects flow', async (t) => {
    const { user, jwt } = newUser({
      signer: chain.account,
      nats: { pub: { allow: ['allowed.>'], deny: ['allowed.secret'] }, sub: { allow: ['allowed.>', 'jobs.* workers'], deny: ['allowed.hidden'] } },
    });
    const { client, line } = await rawJwtConnect(broker.port, signedConnect(user, jwt));
    t.after(() => client.close());
    assert.equal(line, 'PONG');
    client.send('SUB other 1\r\nSUB allowed.hidden 2\r\nSUB jobs.a others 3\r\nSUB allowed.> 4\r\nPUB other 2\r\nhi\r\nPUB allowed.secret 2\r\nhi\r\nPUB allowed.x 2\r\nok\r\nPING\r\n');
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Subscription to "other"'`);
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Subscription to "allowed.hidden"'`);
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Subscription to "jobs.a" using queue "others"'`);
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Publish to "other"'`);
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Publish to "allowed.secret"'`);
    assert.equal(await client.readLine(), 'MSG allowed.x 4 2');
    assert.equal(await client.readLine(), 'ok');
    assert.equal(await client.readLine(), 'PONG');
    assert.equal(client.isClosed, false);
  });

  test('nats.js: a denied subscription closes with a PermissionViolationError; empty allow lists in the JWT restrict nothing', async (t) => {
    const restricted = newUser({ signer: chain.account, nats: { sub: { allow: ['feed.>', '_INBOX.>'] } } });
    const open = newUser({ signer: chain.account, nats: { pub: { allow: [], deny: [] }, sub: { allow: [] } } });
    const nc = await connect({ servers: broker.url, reconnect: false, authenticator: creds(restricted.creds) });
    t.after(() => nc.close());
    const denied = nc.subscribe('other.topic');
    const err = await denied.closed;
    assert.ok(err instanceof PermissionViolationError, String(err));
    assert.equal(err.operation, 'subscription');
    assert.equal(err.subject, 'other.topic');
    await assertRoundTrip(nc, 'feed.x');
    const unrestricted = await connect({ servers: broker.url, reconnect: false, authenticator: creds(open.creds) });
    t.after(() => unrestricted.close());
    await assertRoundTrip(unrestricted, 'anything.at.all');
  });

  test('resp (allow_responses): a service user that may publish nothing else answers a request once', async (t) => {
    const service = newUser({ signer: chain.account, nats: { sub: { allow: ['svc.>'] }, resp: { max: 1, ttl: 0 } } });
    const client = newUser({ signer: chain.account });
    const serviceConnection = await connect({ servers: broker.url, reconnect: false, authenticator: creds(service.creds) });
    t.after(() => serviceConnection.close());
    serviceConnection.subscribe('svc.echo', { callback: (_err, message) => void message.respond(message.data) });
    await serviceConnection.flush();
    const requester = await connect({ servers: broker.url, reconnect: false, authenticator: creds(client.creds) });
    t.after(() => requester.close());
    const reply = await requester.request('svc.echo', 'ping', { timeout: 5000 });
    assert.equal(reply.string(), 'ping');
    const { client: raw, line } = await rawJwtConnect(broker.port, signedConnect(service.user, service.jwt));
    t.after(() => raw.close());
    assert.equal(line, 'PONG');
    raw.send('PUB svc.other 2\r\nhi\r\nPING\r\n');
    assert.equal(await raw.readLine(), `-ERR 'Permissions Violation for Publish to "svc.other"'`);
  });

  test('a user without permissions of its own gets the account\'s default_permissions; one with its own keeps them', async (t) => {
    const defaults = newTrustChain({ accountNats: { default_permissions: { pub: { deny: ['admin.>'] }, sub: {} } } });
    const second = await startTestBroker({ ...LEAN, ...operatorConfig(defaults) });
    t.after(() => second.close());
    const plain = newUser({ signer: defaults.account });
    const own = newUser({ signer: defaults.account, nats: { pub: { allow: ['admin.>'] } } });
    const { client, line } = await rawJwtConnect(second.port, signedConnect(plain.user, plain.jwt));
    t.after(() => client.close());
    assert.equal(line, 'PONG');
    client.send('PUB admin.reset 2\r\nhi\r\nPING\r\n');
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Publish to "admin.reset"'`);
    const admin = await rawJwtConnect(second.port, signedConnect(own.user, own.jwt));
    t.after(() => admin.client.close());
    admin.client.send('PUB admin.reset 2\r\nhi\r\nPUB other 2\r\nhi\r\nPING\r\n');
    assert.equal(await admin.client.readLine(), `-ERR 'Permissions Violation for Publish to "other"'`);
    assert.equal(await admin.client.readLine(), 'PONG');
  });

  test('a user signed by a scoped signing key gets the scope\'s permissions, not its own', async (t) => {
    const { user, jwt } = newUser({ signer: scopedSigner, nats: { issuer_account: chain.account.getPublicKey(), pub: {} } });
    const { client, line } = await rawJwtConnect(broker.port, signedConnect(user, jwt));
    t.after(() => client.close());
    assert.equal(line, 'PONG');
    client.send('PUB elsewhere 2\r\nhi\r\nSUB scoped.> 1\r\nPUB scoped.a 2\r\nok\r\nPING\r\n');
    assert.equal(await client.readLine(), `-ERR 'Permissions Violation for Publish to "elsewhere"'`);
    assert.equal(await client.readLine(), 'MSG scoped.a 1 2');
    assert.equal(await client.readLine(), 'ok');
    assert.equal(await client.readLine(), 'PONG');
  });
});

describe('operator mode: expiry while connected', () => {
  /** Seconds of validity left when connecting: the connection is made well before, the close follows at exp. */
  const VALID_S = 3;
  const chain = newTrustChain();
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ ...LEAN, ...operatorConfig(chain) });
  });
  after(() => broker.close());

  test('raw bytes: at the user JWT\'s exp the server sends -ERR \'User Authentication Expired\' and closes (Authentication Expired)', async () => {
    const { user, jwt } = newUser({ signer: chain.account, claims: { exp: nowSeconds() + VALID_S } });
    const { client, line } = await rawJwtConnect(broker.port, signedConnect(user, jwt));
    assert.equal(line, 'PONG');
    // readLine answers and skips the server's first PING, which may come before the expiry.
    assert.equal(await client.readLine(30_000), "-ERR 'User Authentication Expired'");
    assert.equal(await client.readUntilClosed(), '');
    await eventually(() => {
      const closed = broker.broker.server.closedConnections.find((c) => c.authorizedUser?.name === user.getPublicKey());
      assert.equal(closed?.closedReason, 'Authentication Expired');
    });
  });

  test('an expiry beyond setTimeout\'s range (40 days) keeps the connection open, with no timer overflow', async (t) => {
    // Node fires a timer over 2^31-1 ms after 1 ms, with a TimeoutOverflowWarning: the server must wait in steps.
    const overflows: string[] = [];
    const onWarning = (warning: Error): void => {
      if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning.message);
    };
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    const { user, jwt } = newUser({ signer: chain.account, claims: { exp: nowSeconds() + 40 * 24 * 3600 } });
    const { client, line } = await rawJwtConnect(broker.port, signedConnect(user, jwt));
    t.after(() => client.close());
    assert.equal(line, 'PONG');
    assert.equal(await client.drainFor(200), '');
    client.send('PING\r\n');
    assert.equal(await client.readLine(), 'PONG');
    assert.equal(client.isClosed, false);
    assert.deepEqual(overflows, []);
  });

  test('nats.js: the connection closes with a UserAuthenticationExpiredError', async () => {
    const { creds: credsText } = newUser({ signer: chain.account, claims: { exp: nowSeconds() + VALID_S } });
    const nc = await connect({ servers: broker.url, reconnect: false, authenticator: creds(credsText) });
    const err = await nc.closed();
    assert.ok(err instanceof UserAuthenticationExpiredError, String(err));
  });
});

describe('operator mode: config', () => {
  const chain = newTrustChain();
  const account = chain.account.getPublicKey();
  const base = (): Record<string, unknown> => ({ ...LEAN, ...operatorConfig(chain) });

  test('a valid config resolves: the operator file (decorated, as nsc writes it), the preloaded account, the system account', () => {
    const options = resolveServerOptions({ ...base(), system_account: account });
    const mode = options.auth?.operatorMode;
    assert.deepEqual(mode?.operators.map((operator) => operator.publicKey), [chain.operator.getPublicKey()]);
    assert.equal(mode?.systemAccount, account);
    assert.deepEqual([...(mode?.accounts.keys() ?? [])], [account]);
  });

  test('operator mode and users or a token are exclusive, naming both', () => {
    assertConfigError(() => resolveServerOptions({ ...base(), authorization: { users: [{ user: 'a', password: 'b' }] } }), 'operator', /authorization.*operators do not allow users to be configured directly/);
    assertConfigError(() => resolveServerOptions({ ...base(), authorization: { token: 't' } }), 'operator', /authorization/);
  });

  test('a resolver is required and must be MEMORY; resolver keys need an operator', () => {
    const { resolver: _resolver, ...withoutResolver } = base();
    assertConfigError(() => resolveServerOptions(withoutResolver), 'resolver', /operators require an account resolver to be configured/);
    assertConfigError(() => resolveServerOptions({ ...base(), resolver: 'URL(http://localhost:9090/jwt/v1/accounts/)' }), 'resolver', /only "MEMORY"/);
    assertConfigError(() => resolveServerOptions({ ...LEAN, resolver: 'MEMORY' }), 'resolver', /needs "operator"/);
  });

  test('system_account must be an account key, the same as the operator JWT\'s', () => {
    assertConfigError(() => resolveServerOptions({ ...base(), system_account: 'SYS' }), 'system_account', /account public key/);
    const withSystem = encodeJwt({ type: 'operator', signer: chain.operator, subject: chain.operator.getPublicKey(), nats: { system_account: account } });
    const other = nkeys.createAccount().getPublicKey();
    assertConfigError(() => resolveServerOptions({ ...base(), operator: withSystem, system_account: other }), 'system_account', /system_account in config and operator JWT must be identical/);
    assert.equal(resolveServerOptions({ ...base(), operator: withSystem }).auth?.operatorMode?.systemAccount, account);
  });

  test('bad operator values: unreadable file, an account JWT, a tampered JWT, an expired operator', () => {
    assertConfigError(() => resolveServerOptions({ ...base(), operator: join(tempDir, 'missing.jwt') }), 'operator', /cannot read/);
    assertConfigError(() => resolveServerOptions({ ...base(), operator: [chain.operatorJwt, chain.accountJwt] }), 'operator[1]', /is a "account" JWT, not a operator JWT/);
    const [header, , signature] = chain.operatorJwt.split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify({ iss: chain.operator.getPublicKey(), sub: chain.operator.getPublicKey(), nats: { type: 'operator', version: 2 } })).toString('base64url')}.${signature}`;
    assertConfigError(() => resolveServerOptions({ ...base(), operator: forged }), 'operator', /signature that does not verify/);
    const expired = encodeJwt({ type: 'operator', signer: chain.operator, subject: chain.operator.getPublicKey(), claims: { exp: nowSeconds() - 1 } });
    assertConfigError(() => resolveServerOptions({ ...base(), operator: expired }), 'operator', /is expired/);
  });

  test('bad resolver_preload entries: not an account key, the JWT of another account, not a JWT', () => {
    const other = newTrustChain();
    assertConfigError(() => resolveServerOptions({ ...base(), resolver_preload: { NOTAKEY: chain.accountJwt } }), 'resolver_preload.NOTAKEY', /account public key/);
    assertConfigError(() => resolveServerOptions({ ...base(), resolver_preload: { [account]: other.accountJwt } }), `resolver_preload.${account}`, /for another account/);
    assertConfigError(() => resolveServerOptions({ ...base(), resolver_preload: { [account]: 'nope' } }), `resolver_preload.${account}`, /is not a JWT/);
  });
});
