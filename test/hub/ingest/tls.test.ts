/**
 * The hub's leaf listener over TLS (issue 4 "Security"; hub/ingest/README.md "Authorization",
 * "Transport"): real sockets, certificates made by openssl at test time. With `verify` a leaf
 * needs a client certificate signed by ca_file (the handshake refuses others, logged with the
 * remote address and counted), and that certificate names the leaf in place of its token.
 * Without `verify` the link is encrypted and tokens work as before.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ClientOptions } from 'ws';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../../helpers/certs.ts';
import { eventually } from '../../helpers/eventually.ts';
import { LinkTestClient, messages, newIncarnation, RecordingLogger, startTestHub, type TestHub } from './link-test-client.ts';

const skip = skipWithoutOpenssl();

/** Socket options of a leaf that trusts `ca` and presents `client` (if any). */
function leafTls(ca: CertFiles, client?: CertFiles): ClientOptions {
  return {
    ca: readFileSync(ca.certFile),
    ...(client === undefined ? {} : { cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) }),
  };
}

/** Opening must fail at the TLS or socket level (no WebSocket). */
async function assertNoConnection(url: string, tls: ClientOptions): Promise<void> {
  await assert.rejects(async () => {
    const client = await LinkTestClient.open(url, tls);
    // TLS 1.3: the client may finish its side before the hub refused its certificate; the hub then drops it.
    await client.waitClosed();
    throw new Error('closed after opening');
  });
}

/** A suite's PKI (a CA and the hub's server certificate) and a hub serving wss:// with it; `leafTlsMore` adds to its leaf_tls block. */
function tlsHubForSuite(leafTlsMore: (ca: CertFiles) => Record<string, unknown>): { pki: TestPki; ca: CertFiles; hub: TestHub; log: RecordingLogger } {
  const world = { log: new RecordingLogger() } as { pki: TestPki; ca: CertFiles; hub: TestHub; log: RecordingLogger };
  before(async () => {
    world.pki = new TestPki();
    world.ca = world.pki.ca('link-ca');
    const server = world.pki.server(world.ca, 'hub');
    // A token for gw-tok only: gw-cert has none.
    const tls = { cert_file: server.certFile, key_file: server.keyFile, ...leafTlsMore(world.ca) };
    world.hub = await startTestHub({ log: world.log, tokens: { 'gw-tok': 'tok' }, tls });
  });
  after(async () => {
    await world.hub?.close();
    world.pki?.remove();
  });
  return world;
}

describe('leaf listener with leaf_tls verify', { skip }, () => {
  const world = tlsHubForSuite((ca) => ({ ca_file: ca.certFile, verify: true }));
  let pki: TestPki;
  let ca: CertFiles;
  let otherCa: CertFiles;
  let hub: TestHub;
  const log = world.log;
  before(() => {
    ({ pki, ca, hub } = world);
    otherCa = pki.ca('other-ca');
  });

  test('a client certificate whose CN is the leaf name authenticates it without a token, and the link syncs', async (t) => {
    assert.match(hub.linkUrl, /^wss:\/\//);
    const client = await LinkTestClient.connect(hub.linkUrl, 'gw-cert', { tls: leafTls(ca, pki.client(ca, 'gw-cert')) });
    t.after(() => client.close());
    const key = { stream: 'TLS_SYNC', incarnation: newIncarnation() };
    client.offer(key, 1, 3);
    await client.expect('cursor');
    client.batch(key, messages(1, 3));
    assert.equal((await client.cursorAt(key, 3)).seq, 3);
    const status = hub.hub.acceptor!.status().find((leaf) => leaf.leaf === 'gw-cert');
    assert.equal(status?.tls, true);
    assert.equal(status?.authMethod, 'cert');
    const up = log.find('leaf link up', 'info').find((record) => record.fields['leaf'] === 'gw-cert');
    assert.equal(up?.fields['auth'], 'cert');
    assert.equal(up?.fields['tls'], true);
  });

  test('the certificate is the credential even for a leaf that has a token: none is asked for', async (t) => {
    const client = await LinkTestClient.connect(hub.linkUrl, 'gw-tok', { tls: leafTls(ca, pki.client(ca, 'gw-tok')) });
    t.after(() => client.close());
    assert.equal(hub.hub.acceptor!.status().find((leaf) => leaf.leaf === 'gw-tok')?.authMethod, 'cert');
  });

  test('a certificate whose CN is another leaf is refused with auth', async () => {
    const client = await LinkTestClient.open(hub.linkUrl, leafTls(ca, pki.client(ca, 'gw-other')));
    const answer = await client.hello('gw-impostor');
    assert.equal(answer.t, 'error');
    assert.equal(answer.t === 'error' && answer.code, 'auth');
    assert.match(answer.t === 'error' ? answer.text : '', /certificate is for leaf "gw-other", not "gw-impostor"/);
    await client.waitClosed();
    const refused = log.find('leaf refused', 'warn').at(-1);
    assert.equal(refused?.fields['auth'], 'cert');
    assert.ok(typeof refused?.fields['remote'] === 'string' && refused.fields['remote'].startsWith('127.0.0.1:'));
  });

  test('no client certificate, one from another CA, and plain ws are refused in the handshake, logged with the address and reason, and counted', async () => {
    const failuresBefore = hub.hub.acceptor!.listenerStatus().tlsFailures;
    const warningsBefore = log.find('leaf TLS handshake failed', 'warn').length;
    await assertNoConnection(hub.linkUrl, leafTls(ca));
    await assertNoConnection(hub.linkUrl, leafTls(ca, pki.client(otherCa, 'gw-foreign')));
    await assertNoConnection(hub.linkUrl.replace('wss://', 'ws://'), {});
    await eventually(() => assert.equal(hub.hub.acceptor!.listenerStatus().tlsFailures, failuresBefore + 3));
    const warnings = log.find('leaf TLS handshake failed', 'warn').slice(warningsBefore);
    const reasons = warnings.map((record) => String(record.fields['reason']));
    assert.deepEqual(reasons, [
      'no client certificate (leaf_tls verify requires one)',
      'client certificate not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'plain HTTP on the TLS port (the leaf must use wss://)',
    ]);
    for (const record of warnings) assert.match(String(record.fields['remote']), /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(hub.hub.acceptor!.listenerStatus(), { port: hub.hub.acceptor!.port, tls: true, verify: true, tlsFailures: failuresBefore + 3 });
  });

  test('the start line says the listener is TLS with verify, and no warning about missing tokens', () => {
    const [listening] = log.find('listening for leaf connections', 'info');
    assert.equal(listening?.fields['tls'], true);
    assert.equal(listening?.fields['verify'], true);
    assert.equal(log.find('no leaf tokens configured: any client can connect as any leaf (use leaf_tokens or leaf_tls verify)', 'warn').length, 0);
  });
});

describe('leaf listener with leaf_tls, verify off', { skip }, () => {
  const world = tlsHubForSuite(() => ({}));
  let pki: TestPki;
  let ca: CertFiles;
  let hub: TestHub;
  before(() => {
    ({ pki, ca, hub } = world);
  });

  test('the link is encrypted and the token is still required', async (t) => {
    const refused = await LinkTestClient.open(hub.linkUrl, leafTls(ca));
    const answer = await refused.hello('gw-tok');
    assert.equal(answer.t === 'error' && answer.code, 'auth');
    await refused.waitClosed();
    const client = await LinkTestClient.connect(hub.linkUrl, 'gw-tok', { token: 'tok', tls: leafTls(ca) });
    t.after(() => client.close());
    const status = hub.hub.acceptor!.status().find((leaf) => leaf.leaf === 'gw-tok');
    assert.deepEqual([status?.tls, status?.authMethod], [true, 'token']);
    assert.deepEqual(hub.hub.acceptor!.listenerStatus(), { port: hub.hub.acceptor!.port, tls: true, verify: false, tlsFailures: 0 });
  });

  test('a client certificate is not asked for, so it names nobody: the token decides', async (t) => {
    const client = await LinkTestClient.open(hub.linkUrl, leafTls(ca, pki.client(ca, 'gw-tok')));
    t.after(() => client.close());
    const answer = await client.hello('gw-tok');
    assert.equal(answer.t === 'error' && answer.code, 'auth');
  });
});

test('a plain listener reports tls false and authMethod none without tokens', async (t) => {
  const hub = await startTestHub();
  t.after(() => hub.close());
  const client = await LinkTestClient.connect(hub.linkUrl, 'gw-plain');
  t.after(() => client.close());
  const status = hub.hub.acceptor!.status().find((leaf) => leaf.leaf === 'gw-plain');
  assert.deepEqual([status?.tls, status?.authMethod], [false, 'none']);
  assert.deepEqual(hub.hub.acceptor!.listenerStatus(), { port: hub.hub.acceptor!.port, tls: false, verify: false, tlsFailures: 0 });
});
