/**
 * Config reload (issue 6): Server.reload() on an in-process broker, and SIGHUP to a real
 * `canopy server` process started with a config file. Users, passwords, tokens and permissions
 * change under live connections (exact -ERR texts on raw sockets, the official client keeps
 * working); options that need a restart and files that do not validate are refused whole.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { startCanopyServer, type CanopyServer } from '../helpers/canopy-server.ts';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../helpers/certs.ts';
import { eventually } from '../helpers/eventually.ts';
import { decoratedOperatorJwt, encodeJwt, newTrustChain, newUser, nowSeconds } from '../helpers/nats-jwt.ts';
import { freePort } from '../helpers/processes.ts';
import { RawClient } from '../helpers/raw-client.ts';

const RELOAD_WAIT_MS = 20_000;

function authorization(users: readonly Record<string, unknown>[]): Record<string, unknown> {
  return { authorization: { users } };
}

const BEFORE = authorization([
  { user: 'alice', password: 'a1', permissions: { subscribe: ['feed.>', 'jobs.>'] } },
  { user: 'bob', password: 'b1' },
  { user: 'carol', password: 'c1' },
]);
const AFTER = authorization([
  // alice keeps feed.> only; bob's password changes; carol is gone; dave is new.
  { user: 'alice', password: 'a1', permissions: { subscribe: ['feed.>'] } },
  { user: 'bob', password: 'b2' },
  { user: 'dave', password: 'd1' },
]);

describe('Server.reload', () => {
  let broker: TestBroker;

  before(async () => {
    broker = await startTestBroker(BEFORE);
  });
  after(async () => {
    await broker.close();
  });

  test('users, passwords and permissions change under live connections', async () => {
    const alice = await RawClient.connected(broker.port, { user: 'alice', pass: 'a1' });
    alice.send('SUB feed.news 1\r\nSUB jobs.new q 2\r\nPING\r\n');
    assert.equal(await alice.readLine(), 'PONG');
    const bob = await RawClient.connected(broker.port, { user: 'bob', pass: 'b1' });
    const carol = await RawClient.connected(broker.port, { user: 'carol', pass: 'c1' });
    const official = await connect({ servers: broker.url, user: 'alice', pass: 'a1' });
    const connz = (await (await fetch(`${broker.httpUrl}/connz?auth=true`)).json()) as { connections: { authorized_user?: string }[] };
    assert.deepEqual(connz.connections.map((info) => info.authorized_user).sort(), ['alice', 'alice', 'bob', 'carol']);

    const outcome = broker.reload(AFTER);
    assert.deepEqual({ isApplied: outcome.isApplied, changed: outcome.changed, refused: outcome.refused, closed: outcome.closedConnections }, {
      isApplied: true,
      changed: ['authorization'],
      refused: [],
      closed: 2,
    });
    // bob's old password and carol's user are no longer valid (nats-server reload.go: authViolation).
    assert.equal(await bob.readUntilClosed(), "-ERR 'Authorization Violation'\r\n");
    assert.equal(await carol.readUntilClosed(), "-ERR 'Authorization Violation'\r\n");
    // alice stays, loses jobs.>, keeps feed.news (client.go processSubsOnConfigReload).
    assert.equal(await alice.readLine(), `-ERR 'Permissions Violation for Subscription to "jobs.new" (sid "2")'`);
    alice.send('PUB feed.news 2\r\nhi\r\nPUB jobs.new 2\r\nno\r\nPING\r\n');
    assert.equal(await alice.readLine(), 'MSG feed.news 1 2');
    assert.equal(await alice.readLine(), 'hi');
    assert.equal(await alice.readLine(), 'PONG');
    alice.send('SUB jobs.new 3\r\nPING\r\n');
    assert.equal(await alice.readLine(), `-ERR 'Permissions Violation for Subscription to "jobs.new"'`);
    assert.equal(await alice.readLine(), 'PONG');
    // The official client still works, and new logins follow the new users.
    assert.equal(official.isClosed(), false);
    await official.flush();
    await assert.rejects(connect({ servers: broker.url, user: 'bob', pass: 'b1', reconnect: false }), /Authorization Violation/i);
    const newBob = await connect({ servers: broker.url, user: 'bob', pass: 'b2' });
    const dave = await connect({ servers: broker.url, user: 'dave', pass: 'd1' });
    await Promise.all([newBob.close(), dave.close(), official.close()]);
    alice.close();
    broker.reload(BEFORE);
  });

  test('turning auth off keeps everyone; turning a token on closes those without it', async () => {
    const alice = await RawClient.connected(broker.port, { user: 'alice', pass: 'a1' });
    assert.equal(broker.reload({}).closedConnections, 0);
    const anonymous = await RawClient.connected(broker.port);
    alice.send('SUB jobs.x 1\r\nPING\r\n');
    assert.equal(await alice.readLine(), 'PONG', 'no permissions once auth is off');
    const outcome = broker.reload({ authorization: { token: 'tok' } });
    assert.equal(outcome.closedConnections, 2);
    assert.equal(await anonymous.readUntilClosed(), "-ERR 'Authorization Violation'\r\n");
    assert.equal(await alice.readUntilClosed(), "-ERR 'Authorization Violation'\r\n");
    const withToken = await RawClient.connected(broker.port, { auth_token: 'tok' });
    const connz = (await (await fetch(`${broker.httpUrl}/connz?auth=true`)).json()) as { connections: { authorized_user?: string }[] };
    // nats-server parity: getRawAuthUser shows a token as [REDACTED].
    assert.deepEqual(connz.connections.map((info) => info.authorized_user), ['[REDACTED]']);
    withToken.close();
    broker.reload(BEFORE);
  });

  test('limits change: max_payload reaches INFO of new connections, max_connections applies at once', async () => {
    await eventually(() => assert.equal(broker.broker.server.connections.size, 0));
    const outcome = broker.reload({ ...BEFORE, max_payload: 4096, max_connections: 1 });
    assert.deepEqual(outcome.changed, ['max_payload', 'max_connections']);
    const first = await RawClient.open(broker.port);
    const info = JSON.parse((await first.readLine()).slice('INFO '.length)) as { max_payload: number };
    assert.equal(info.max_payload, 4096);
    const second = await RawClient.open(broker.port);
    assert.match(await second.readUntilClosed(), /-ERR 'maximum connections exceeded'/);
    first.close();
    broker.reload(BEFORE);
  });

  test('an option that needs a restart refuses the whole reload', async () => {
    const alice = await RawClient.connected(broker.port, { user: 'alice', pass: 'a1' });
    const outcome = broker.reload({ ...AFTER, store_dir: join(broker.storeDir, 'elsewhere'), max_payload: 4096 });
    assert.equal(outcome.isApplied, false);
    assert.deepEqual(outcome.refused, ['store_dir']);
    assert.equal(broker.broker.server.options.payloadBytesMax, 1024 * 1024);
    // Nothing applied: carol is still a user, alice keeps jobs.>.
    const carol = await RawClient.connected(broker.port, { user: 'carol', pass: 'c1' });
    alice.send('SUB jobs.y 1\r\nPING\r\n');
    assert.equal(await alice.readLine(), 'PONG');
    carol.close();
    alice.close();
  });
});

describe('SIGHUP to a canopy server process', () => {
  let dir: string;
  let configFile: string;
  let server: CanopyServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-reload-'));
    configFile = join(dir, 'canopy.json');
    writeFileSync(configFile, JSON.stringify({ ...BEFORE, log_level: 'info' }));
    server = await startCanopyServer(await freePort(), join(dir, 'store'), { extraArgs: ['-c', configFile] });
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const linesWith = (msg: string): Record<string, unknown>[] => server.logLines().filter((line) => line['msg'] === msg);

  test('reloads users and log_level; refuses a bad file and a server_name change, and keeps running', async () => {
    const carol = await RawClient.connected(server.port, { user: 'carol', pass: 'c1' });
    const alice = await connect({ servers: `127.0.0.1:${server.port}`, user: 'alice', pass: 'a1' });

    writeFileSync(configFile, JSON.stringify({ ...AFTER, log_level: 'debug' }));
    process.kill(server.pid, 'SIGHUP');
    assert.equal(await carol.readUntilClosed(RELOAD_WAIT_MS), "-ERR 'Authorization Violation'\r\n");
    const reloaded = await eventually(() => {
      const [line] = linesWith('configuration reloaded');
      assert.ok(line !== undefined, 'a reload line');
      return line;
    }, { timeoutMs: RELOAD_WAIT_MS });
    assert.deepEqual(reloaded['changed'], ['log_level', 'authorization']);
    // log_level debug now: a new client's connect is logged at debug.
    const dave = await connect({ servers: `127.0.0.1:${server.port}`, user: 'dave', pass: 'd1', name: 'dave-after-reload' });
    await eventually(() => assert.ok(server.logLines().some((line) => line['msg'] === 'client connected' && line['name'] === 'dave-after-reload'), 'a debug line for the new client'), { timeoutMs: RELOAD_WAIT_MS });

    writeFileSync(configFile, '{ "authorization": ');
    process.kill(server.pid, 'SIGHUP');
    await eventually(() => assert.equal(linesWith('configuration reload refused: the config file is not valid; the running configuration is kept').length, 1), { timeoutMs: RELOAD_WAIT_MS });

    // The test's flags (-p, --store_dir) win over the file, as at start: server_name is the file's own.
    writeFileSync(configFile, JSON.stringify({ ...BEFORE, server_name: 'renamed' }));
    process.kill(server.pid, 'SIGHUP');
    const refused = await eventually(() => {
      const [line] = linesWith('configuration reload refused: these options need a restart; the running configuration is kept');
      assert.ok(line !== undefined, 'a refusal line');
      return line;
    }, { timeoutMs: RELOAD_WAIT_MS });
    assert.deepEqual(refused['refused'], ['server_name']);
    // Still running on the reloaded (second) config: dave logs in, carol does not.
    assert.ok(server.isAlive());
    await dave.flush();
    await alice.flush();
    await assert.rejects(connect({ servers: `127.0.0.1:${server.port}`, user: 'carol', pass: 'c1', reconnect: false }), /Authorization Violation/i);
    await Promise.all([dave.close(), alice.close()]);
  });
});

test('SIGHUP to a canopy server started without a config file: one warning, and it keeps serving', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-reload-noconfig-'));
  const server = await startCanopyServer(await freePort(), join(dir, 'store'));
  t.after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  process.kill(server.pid, 'SIGHUP');
  await eventually(
    () => assert.ok(server.logLines().some((line) => line['msg'] === 'configuration reload ignored: the server was started without a config file (-c)'), 'a warning line'),
    { timeoutMs: RELOAD_WAIT_MS },
  );
  const client = await RawClient.connected(server.port);
  client.close();
  assert.ok(server.isAlive());
});

describe('SIGHUP to a canopy hub process', () => {
  let dir: string;
  let configFile: string;
  let hub: CanopyServer;
  const hubConfig = (tokens: Record<string, string>, users: Record<string, unknown>): Record<string, unknown> => ({
    leaf_port: -1,
    leaf_host: '127.0.0.1',
    leaf_tokens: tokens,
    ...users,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-reload-hub-'));
    configFile = join(dir, 'hub.json');
    writeFileSync(configFile, JSON.stringify(hubConfig({ 'gw-1': 'secret-1' }, BEFORE)));
    hub = await startCanopyServer(await freePort(), join(dir, 'store'), { command: 'hub', extraArgs: ['-c', configFile] });
  });
  after(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a change of the link options is refused whole; a change of the users is applied', async () => {
    const carol = await RawClient.connected(hub.port, { user: 'carol', pass: 'c1' });
    writeFileSync(configFile, JSON.stringify(hubConfig({ 'gw-1': 'secret-2' }, AFTER)));
    process.kill(hub.pid, 'SIGHUP');
    const refused = await eventually(() => {
      const line = hub.logLines().find((record) => record['msg'] === 'configuration reload refused: these options need a restart; the running configuration is kept');
      assert.ok(line !== undefined, 'a refusal line');
      return line;
    }, { timeoutMs: RELOAD_WAIT_MS });
    assert.deepEqual(refused['refused'], ['link.tokens']);
    carol.send('PING\r\n');
    assert.equal(await carol.readLine(), 'PONG', 'nothing applied: carol stays');

    writeFileSync(configFile, JSON.stringify(hubConfig({ 'gw-1': 'secret-1' }, AFTER)));
    process.kill(hub.pid, 'SIGHUP');
    assert.equal(await carol.readUntilClosed(RELOAD_WAIT_MS), "-ERR 'Authorization Violation'\r\n");
    await eventually(() => assert.ok(hub.logLines().some((record) => record['msg'] === 'configuration reloaded'), 'a reload line'), { timeoutMs: RELOAD_WAIT_MS });
  });
});

describe('Server.reload of TLS files', { skip: skipWithoutOpenssl() }, () => {
  test('new handshakes on the client and https monitoring ports use the renewed certificate; established clients keep going', async (t) => {
    const pki = new TestPki();
    t.after(() => pki.remove());
    const [oldCa, newCa] = [pki.ca('old-ca'), pki.ca('new-ca')];
    const [oldCert, newCert] = [pki.server(oldCa, 'old-server'), pki.server(newCa, 'new-server')];
    const config = (cert: CertFiles): Record<string, unknown> => ({ jetstream: false, tls: { cert_file: cert.certFile, key_file: cert.keyFile }, http_port: 0, https_port: -1 });
    const broker = await startTestBroker(config(oldCert));
    t.after(() => broker.close());
    const monitorUrl = `https://127.0.0.1:${broker.broker.monitor!.port}/varz`;
    const established = await connect({ servers: broker.url, tls: { caFile: oldCa.certFile } });
    assert.equal(await httpsStatus(monitorUrl, oldCa), 200);

    assert.deepEqual(broker.reload(config(newCert)).changed, ['tls']);
    await assert.rejects(connect({ servers: broker.url, reconnect: false, tls: { caFile: oldCa.certFile } }));
    const renewed = await connect({ servers: broker.url, reconnect: false, tls: { caFile: newCa.certFile } });
    await assert.rejects(httpsStatus(monitorUrl, oldCa));
    assert.equal(await httpsStatus(monitorUrl, newCa), 200);
    await established.flush();
    await Promise.all([established.close(), renewed.close()]);
  });

  test('turning TLS off needs a restart', async (t) => {
    const pki = new TestPki();
    t.after(() => pki.remove());
    const cert = pki.server(pki.ca('ca'), 'server');
    const broker = await startTestBroker({ jetstream: false, tls: { cert_file: cert.certFile, key_file: cert.keyFile } });
    t.after(() => broker.close());
    const outcome = broker.reload({ jetstream: false, max_payload: 2048 });
    assert.deepEqual({ isApplied: outcome.isApplied, refused: outcome.refused }, { isApplied: false, refused: ['tls'] });
  });
});

function httpsStatus(url: string, ca: CertFiles): Promise<number> {
  return new Promise((resolve, reject) => {
    // No keep-alive agent: each check is a new handshake.
    httpsGet(url, { ca: readFileSync(ca.certFile), agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    }).on('error', reject);
  });
}

describe('Server.reload in operator mode', () => {
  test('an account that leaves resolver_preload closes its users; a revoked user goes, the others stay', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'canopy-reload-jwt-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const chain = newTrustChain();
    const operatorFile = join(dir, 'operator.jwt');
    writeFileSync(operatorFile, decoratedOperatorJwt(chain.operatorJwt));
    const config = (accounts: Record<string, string>): Record<string, unknown> => ({ jetstream: false, operator: operatorFile, resolver: 'MEMORY', resolver_preload: accounts });
    const accountKey = chain.account.getPublicKey();
    const broker = await startTestBroker(config({ [accountKey]: chain.accountJwt }));
    t.after(() => broker.close());
    const kept = newUser({ signer: chain.account });
    const revoked = newUser({ signer: chain.account });
    const keptConnection = await connect({ servers: broker.url, authenticator: credsAuthenticator(new TextEncoder().encode(kept.creds)) });
    const revokedConnection = await connect({ servers: broker.url, reconnect: false, authenticator: credsAuthenticator(new TextEncoder().encode(revoked.creds)) });
    const revokedClosed = revokedConnection.closed();

    // The account JWT, re-issued with the user revoked (nats-server: account revocations, checked by reloadAuthorization).
    const revokingJwt = encodeJwt({
      type: 'account',
      signer: chain.operator,
      subject: accountKey,
      name: 'test-account',
      nats: { limits: { subs: -1, conn: -1, data: -1, payload: -1 }, revocations: { [revoked.user.getPublicKey()]: nowSeconds() + 60 } },
    });
    const outcome = broker.reload(config({ [accountKey]: revokingJwt }));
    assert.deepEqual({ changed: outcome.changed, closed: outcome.closedConnections }, { changed: ['authorization'], closed: 1 });
    assert.match(String(await revokedClosed), /Authorization Violation/i);
    await keptConnection.flush();

    assert.equal(broker.reload(config({})).closedConnections, 1);
    await keptConnection.closed();
  });
});
