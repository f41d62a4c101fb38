/**
 * TLS on the broker's own listeners (issue 6 items 1 and 6): the client port with the official
 * client (@nats-io/transport-node, `tls: { caFile, certFile, keyFile }`), the WebSocket port as
 * wss:// (the official wsconnect, whose wsFactory hands the `ws` package the CA, and `ws` as a raw client), the
 * monitoring port over HTTPS and its token. Certificates are made by TestPki (openssl).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { connect, nkeyAuthenticator, nkeys, wsconnect, type NatsConnection } from '@nats-io/transport-node';
import { WebSocket } from 'ws';
import { eventually } from '../helpers/eventually.ts';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../helpers/certs.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { recordingLogger, type LogRecord } from '../helpers/recording-logger.ts';

const skip = skipWithoutOpenssl();

type HttpAnswer = { status: number; headers: IncomingMessage['headers']; body: string };

/** GET over http or https (with `ca`), optional headers; resolves with status and body. */
function fetchText(url: string, options: { ca?: Buffer | string; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  const getter = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const request = getter(url, { headers: options.headers ?? {}, ...(options.ca === undefined ? {} : { ca: options.ca }) }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
  });
}

function tlsFailures(records: readonly LogRecord[]): LogRecord[] {
  return records.filter((record) => record.msg === 'client TLS handshake failed');
}

describe('client port TLS with verify', { skip }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let otherCa: CertFiles;
  let client: CertFiles;
  let broker: TestBroker;
  const log = recordingLogger();

  before(async () => {
    pki = new TestPki();
    ca = pki.ca('ca');
    otherCa = pki.ca('other-ca');
    const server = pki.server(ca, 'server');
    client = pki.client(ca, 'client', 'sensor-7');
    broker = await startTestBroker(
      {
        jetstream: false,
        tls: { cert_file: server.certFile, key_file: server.keyFile, ca_file: ca.certFile, verify: true, timeout: 1 },
        websocket: { port: -1, host: '127.0.0.1', tls: { cert_file: server.certFile, key_file: server.keyFile } },
        http_port: 0,
        https_port: -1,
        monitor_token: 's3cret',
      },
      log,
    );
  });
  after(async () => {
    await broker?.close();
    pki?.remove();
  });

  test('the official client connects with the CA and its certificate; INFO says tls_required and tls_verify; pub/sub works', async (t) => {
    const nc = await connect({ servers: broker.url, tls: { caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile } });
    t.after(() => nc.close());
    assert.equal(nc.info?.tls_required, true);
    assert.equal(nc.info?.tls_verify, true);
    const sub = nc.subscribe('tls.>', { max: 1 });
    nc.publish('tls.hello', 'over TLS');
    for await (const message of sub) assert.equal(message.string(), 'over TLS');
    // The hook the auth work reads: the verified certificate's subject is on the connection.
    const connection = [...broker.broker.server.connections.values()].find((candidate) => candidate.cid === nc.info?.client_id);
    assert.equal(connection?.tlsPeer?.certCn, 'sensor-7');
    assert.equal(connection?.tlsPeer?.certSubject, 'CN=sensor-7');
    assert.match(connection?.tlsPeer?.version ?? '', /^TLSv1\.[23]$/);
  });

  test('without a client certificate, and with one from another CA, the handshake is refused, logged with remote and reason, and counted', async () => {
    const failuresBefore = broker.broker.server.stats.tlsHandshakeFailures;
    const loggedBefore = tlsFailures(log.records).length;
    await assert.rejects(connect({ servers: broker.url, reconnect: false, timeout: 3000, tls: { caFile: ca.certFile } }));
    const foreign = pki.client(otherCa, 'foreign');
    await assert.rejects(connect({ servers: broker.url, reconnect: false, timeout: 3000, tls: { caFile: ca.certFile, certFile: foreign.certFile, keyFile: foreign.keyFile } }));
    await eventually(() => assert.equal(broker.broker.server.stats.tlsHandshakeFailures, failuresBefore + 2));
    const logged = tlsFailures(log.records).slice(loggedBefore);
    assert.deepEqual(
      logged.map((record) => record.fields['reason']),
      ['no client certificate (tls verify requires one)', 'client certificate not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    );
    for (const record of logged) {
      assert.equal(record.level, 'warn');
      assert.equal(record.fields['listener'], 'client');
      assert.match(String(record.fields['remote']), /^127\.0\.0\.1:\d+$/);
    }
  });

  test('a client that does not trust the server\'s CA fails cleanly', async () => {
    await assert.rejects(
      connect({ servers: broker.url, reconnect: false, timeout: 3000, tls: { caFile: otherCa.certFile, certFile: client.certFile, keyFile: client.keyFile } }),
      /self-signed certificate|unable to verify|certificate/i,
    );
  });

  test('a plain client reads INFO with tls_required, then gets -ERR \'Secure Connection - TLS Required\'; the server keeps serving', async (t) => {
    const raw = await RawClient.open(broker.port);
    t.after(() => raw.socket.destroy());
    const info = JSON.parse((await raw.readLine()).slice('INFO '.length)) as Record<string, unknown>;
    assert.equal(info['tls_required'], true);
    assert.equal(info['tls_verify'], true);
    raw.send('CONNECT {"verbose":false}\r\nPING\r\n');
    assert.equal(await raw.readLine(), "-ERR 'Secure Connection - TLS Required'");
    await eventually(() => assert.equal(tlsFailures(log.records).at(-1)?.fields['reason'], 'plain text on the TLS port (the client must use TLS)'));
    const nc = await connect({ servers: broker.url, tls: { caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile } });
    await nc.flush();
    await nc.close();
  });

  test('a client that never starts the handshake is told in plain text after tls.timeout', async (t) => {
    const raw = await RawClient.open(broker.port);
    t.after(() => raw.socket.destroy());
    assert.match(await raw.readLine(), /^INFO /);
    assert.equal(await raw.readLine(), "-ERR 'Secure Connection - TLS Required'");
    assert.match(String(tlsFailures(log.records).at(-1)?.fields['reason']), /^no TLS handshake within 1000 ms$/);
  });

  test('wss:// on the WebSocket port: handshake with the CA, then INFO, CONNECT, PING/PONG', async (t) => {
    const port = broker.broker.server.addresses.websocketPort;
    const socket = new WebSocket(`wss://127.0.0.1:${port}`, { ca: readFileSync(ca.certFile) });
    t.after(() => socket.terminate());
    const lines: string[] = [];
    socket.on('message', (data: Buffer) => lines.push(...data.toString('latin1').split('\r\n').filter((line) => line !== '')));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    await eventually(() => assert.match(lines[0] ?? '', /^INFO /));
    socket.send(Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n'));
    await eventually(() => assert.ok(lines.includes('PONG'), lines.join(' | ')));
  });

  test('the official wsconnect over wss:// (its wsFactory gives the ws package the CA) publishes to a TLS TCP client', async (t) => {
    const port = broker.broker.server.addresses.websocketPort;
    const caPem = readFileSync(ca.certFile);
    const ws = await wsconnect({
      servers: `wss://127.0.0.1:${port}`,
      wsFactory: (url: string) => Promise.resolve({ socket: new WebSocket(url, { ca: caPem }) as never, encrypted: true }),
    });
    t.after(() => ws.close());
    const tcp = await connect({ servers: broker.url, tls: { caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile } });
    t.after(() => tcp.close());
    const sub = tcp.subscribe('from.ws', { max: 1 });
    await tcp.flush();
    ws.publish('from.ws', 'over wss');
    for await (const message of sub) assert.equal(message.string(), 'over wss');
  });

  test('a plain ws:// client on the wss port is refused and counted', async () => {
    const failuresBefore = broker.broker.server.stats.tlsHandshakeFailures;
    const port = broker.broker.server.addresses.websocketPort;
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    await new Promise<void>((resolve) => {
      socket.once('error', () => resolve());
      socket.once('close', () => resolve());
    });
    await eventually(() => assert.equal(broker.broker.server.stats.tlsHandshakeFailures, failuresBefore + 1));
    assert.equal(tlsFailures(log.records).at(-1)?.fields['listener'], 'websocket');
  });

  test('monitoring over HTTPS with the CA needs the token: 401 without or with a wrong one, 200 with it; a plain /healthz is open', async () => {
    const monitor = `https://127.0.0.1:${broker.broker.monitor?.port}`;
    const caPem = readFileSync(ca.certFile);
    const missing = await fetchText(`${monitor}/varz`, { ca: caPem });
    assert.equal(missing.status, 401);
    assert.match(missing.body, /Authorization: Bearer/);
    assert.equal((await fetchText(`${monitor}/varz`, { ca: caPem, headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetchText(`${monitor}/connz`, { ca: caPem, headers: { authorization: 'Basic czNjcmV0' } })).status, 401);
    const varz = await fetchText(`${monitor}/varz`, { ca: caPem, headers: { authorization: 'Bearer s3cret' } });
    assert.equal(varz.status, 200);
    const fields = JSON.parse(varz.body) as Record<string, unknown>;
    assert.equal(fields['https_port'], broker.broker.monitor?.port);
    assert.equal(fields['http_port'], 0);
    assert.equal(fields['tls_required'], true);
    assert.equal(fields['tls_verify'], true);
    assert.equal(fields['tls_timeout'], 1);
    assert.equal(fields['tls_handshake_failures'], broker.broker.server.stats.tlsHandshakeFailures);
    const connz = await fetchText(`${monitor}/connz?state=all`, { ca: caPem, headers: { authorization: 'Bearer s3cret' } });
    const tlsRow = (JSON.parse(connz.body) as { connections: Record<string, unknown>[] }).connections.find((row) => row['tls_version'] !== undefined);
    assert.match(String(tlsRow?.['tls_version']), /^1\.[23]$/);
    assert.match(String(tlsRow?.['tls_cipher_suite']), /^TLS_/);
    assert.deepEqual((fields['websocket'] as Record<string, unknown>)['no_tls'], false);
    const metrics = await fetchText(`${monitor}/metrics`, { ca: caPem, headers: { authorization: 'Bearer s3cret' } });
    assert.match(metrics.body, /^gnatsd_varz_tls_handshake_failures\{server_id="\w+"\} [1-9]\d*$/m);
    assert.equal((await fetchText(`${monitor}/healthz`, { ca: caPem })).status, 200);
    // A query tells which streams exist: the token is needed then.
    assert.equal((await fetchText(`${monitor}/healthz?js-enabled-only=true`, { ca: caPem })).status, 401);
    assert.equal((await fetchText(`${monitor}/nope`, { ca: caPem })).status, 401);
    // And the certificate is checked: without the CA the HTTPS request fails.
    await assert.rejects(fetchText(`${monitor}/healthz`));
  });
});

describe('client port TLS without verify', { skip }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let broker: TestBroker;
  let nc: NatsConnection | undefined;

  before(async () => {
    pki = new TestPki();
    ca = pki.ca('ca');
    const server = pki.server(ca, 'server');
    broker = await startTestBroker({ jetstream: false, tlscert: server.certFile, tlskey: server.keyFile, websocket_port: 0 });
  });
  after(async () => {
    await nc?.close();
    await broker?.close();
    pki?.remove();
  });

  test('the flags turn TLS on; a client with only the CA connects; INFO has no tls_verify; plain HTTP monitoring stays', async () => {
    nc = await connect({ servers: broker.url, tls: { caFile: ca.certFile } });
    assert.equal(nc.info?.tls_required, true);
    assert.equal(nc.info?.tls_verify, undefined);
    nc.subscribe('echo', { callback: (_err, message) => {
        message.respond(message.data);
      },
    });
    assert.equal((await nc.request('echo', 'ping', { timeout: 2000 })).string(), 'ping');
    const varz = await fetchText(`${broker.httpUrl}/varz`);
    assert.equal(varz.status, 200);
    assert.equal((JSON.parse(varz.body) as Record<string, unknown>)['tls_verify'], undefined);
  });
});

describe('client port TLS with handshake_first', { skip }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let broker: TestBroker;

  before(async () => {
    pki = new TestPki();
    ca = pki.ca('ca');
    const server = pki.server(ca, 'server');
    broker = await startTestBroker({ jetstream: false, websocket_port: 0, tls: { cert_file: server.certFile, key_file: server.keyFile, handshake_first: true, timeout: 1 } });
  });
  after(async () => {
    await broker?.close();
    pki?.remove();
  });

  test('nats.js with tls.handshakeFirst connects and reads INFO over TLS; a client waiting for a plain INFO gets the -ERR after tls.timeout', async () => {
    const nc = await connect({ servers: broker.url, tls: { caFile: ca.certFile, handshakeFirst: true } });
    assert.equal(nc.info?.tls_required, true);
    await nc.flush();
    await nc.close();
    const raw = await RawClient.open(broker.port);
    assert.equal(await raw.readLine(), "-ERR 'Secure Connection - TLS Required'");
    raw.socket.destroy();
  });
});

describe('client port TLS with authorization', { skip }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let broker: TestBroker;
  const user = nkeys.createUser();

  before(async () => {
    pki = new TestPki();
    ca = pki.ca('ca');
    const server = pki.server(ca, 'server');
    broker = await startTestBroker({
      jetstream: false,
      websocket_port: 0,
      tls: { cert_file: server.certFile, key_file: server.keyFile },
      authorization: { users: [{ nkey: user.getPublicKey() }, { user: 'alice', password: 'pw' }] },
    });
  });
  after(async () => {
    await broker?.close();
    pki?.remove();
  });

  test('the plain-text INFO before the handshake carries the nonce the nkey user signs; passwords travel inside TLS', async (t) => {
    const raw = await RawClient.open(broker.port);
    t.after(() => raw.socket.destroy());
    const info = JSON.parse((await raw.readLine()).slice('INFO '.length)) as Record<string, unknown>;
    assert.equal(info['auth_required'], true);
    assert.match(String(info['nonce']), /^[\w-]{15}$/);
    const byNkey = await connect({ servers: broker.url, tls: { caFile: ca.certFile }, authenticator: nkeyAuthenticator(user.getSeed()) });
    await byNkey.flush();
    await byNkey.close();
    const byPassword = await connect({ servers: broker.url, tls: { caFile: ca.certFile }, user: 'alice', pass: 'pw' });
    await byPassword.flush();
    await byPassword.close();
    await assert.rejects(connect({ servers: broker.url, tls: { caFile: ca.certFile }, user: 'alice', pass: 'wrong', reconnect: false }), /authorization violation/i);
  });
});
