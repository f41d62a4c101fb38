/**
 * Leaf → hub sync over wss:// (issue 4 "Security"): a real leaf and a real hub in this process
 * (real sockets, LMDB in temp dirs), certificates made by openssl at test time. The leaf
 * publishes with the official nats.js clients and the hub's stream is read with them too.
 * Failures must be clear on both sides and harmless: a leaf that cannot verify the hub, or
 * that the hub refuses, logs why, keeps retrying with backoff and never crashes; the hub logs
 * and counts its failed handshakes and shows each leaf's TLS and authentication in /leafz.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { resolveLinkOptions, type LeafLinkOptions } from '../../core/server/link-options.ts';
import { resolveServerOptions } from '../../core/server/options.ts';
import { startHub, type Hub } from '../../hub/main.ts';
import { RecordingLogger } from '../hub/ingest/link-test-client.ts';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../helpers/certs.ts';
import { eventually } from '../helpers/eventually.ts';
import { startTestLeaf, type TestLeaf } from '../leaf/link/helpers.ts';

const skip = skipWithoutOpenssl();
const STREAM = 'TELEMETRY';

type TlsHub = { readonly hub: Hub; readonly url: string; readonly monitorPort: number; readonly log: RecordingLogger; close(): Promise<void> };

/** A hub with JetStream, monitoring and a wss:// leaf listener with the given leaf_tls block. */
async function startTlsHub(leafTls: Record<string, unknown>): Promise<TlsHub> {
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-hub-tls-'));
  const options = resolveServerOptions({ store_dir: storeDir, addr: '127.0.0.1', port: -1, http_host: '127.0.0.1', http_port: -1, websocket_port: 0, server_name: 'hub-tls' });
  const link = resolveLinkOptions('hub', { leaf_port: -1, leaf_host: '127.0.0.1', leaf_tls: leafTls });
  const log = new RecordingLogger();
  const hub = await startHub({ options, link, log });
  return {
    hub,
    url: `wss://127.0.0.1:${hub.acceptor!.port}`,
    monitorPort: hub.broker.monitor!.port,
    log,
    async close() {
      await hub.close();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/** A leaf named `name` dialing `url` with a hub_tls block (file paths), and no token. */
async function startTlsLeaf(t: TestContext, url: string, name: string, hubTls: Record<string, unknown>): Promise<TestLeaf> {
  const link: LeafLinkOptions = resolveLinkOptions('leaf', { hub: url, leaf_name: name, hub_tls: hubTls, link_heartbeat: '500ms' });
  const leaf = await startTestLeaf({ hubUrl: url, link: { ...link, hubToken: undefined }, tuning: { backoffBaseMs: 20, backoffMaxMs: 100 } });
  t.after(() => leaf.close());
  return leaf;
}

function clientCert(pki: TestPki, ca: CertFiles, cn: string): Record<string, string> {
  const files = pki.client(ca, cn);
  return { cert_file: files.certFile, key_file: files.keyFile };
}

/** The leaf dialed again and again without coming up, and says why at error. */
async function assertRetriesWithTlsError(leaf: TestLeaf, expected: { code: string; reason: RegExp }): Promise<void> {
  await eventually(() => assert.ok(leaf.leaf.link.status().dials >= 3, `dials: ${leaf.leaf.link.status().dials}`), { timeoutMs: 10_000 });
  assert.notEqual(leaf.leaf.link.status().state, 'up');
  const errors = leaf.log.records.filter((record) => record.level === 'error' && record.msg?.startsWith('link TLS handshake failed'));
  assert.equal(errors.length, 1, 'one error line for a series of the same failure');
  assert.equal(errors[0]?.fields['tls_code'], expected.code);
  assert.match(String(errors[0]?.fields['reason']), expected.reason);
  assert.match(String(errors[0]?.fields['url']), /^wss:\/\/127\.0\.0\.1:\d+$/);
}

describe('leaf ↔ hub over wss:// with client certificates (leaf_tls verify)', { skip }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let hub: TlsHub;

  before(async () => {
    pki = new TestPki();
    ca = pki.ca('link-ca');
    const server = pki.server(ca, 'hub');
    hub = await startTlsHub({ cert_file: server.certFile, key_file: server.keyFile, ca_file: ca.certFile, verify: true });
  });
  after(async () => {
    await hub?.close();
    pki?.remove();
  });

  test('a stream published on the leaf with nats.js reaches the hub; /leafz and /metrics show TLS and certificate auth', async (t) => {
    const leaf = await startTlsLeaf(t, hub.url, 'gw-tls', { ca_file: ca.certFile, ...clientCert(pki, ca, 'gw-tls') });
    await leaf.jsm.streams.add({ name: STREAM, subjects: ['telemetry.>'] });
    for (let i = 1; i <= 20; i++) await leaf.js.publish(`telemetry.t${i % 2}`, `reading ${i}`);

    const hubNc = await connect({ servers: `nats://127.0.0.1:${hub.hub.broker.server.addresses.port}` });
    t.after(() => hubNc.close());
    const hubJsm = await jetstreamManager(hubNc);
    await eventually(async () => assert.equal((await hubJsm.streams.info(STREAM)).state.messages, 20), { timeoutMs: 10_000 });
    const last = await hubJsm.streams.getMessage(STREAM, { seq: 20 });
    assert.equal(last?.subject, 'gw-tls.telemetry.t0');
    assert.equal(last?.string(), 'reading 20');
    assert.equal(last?.header.get('Canopy-Origin-Leaf'), 'gw-tls');

    const leafz = (await (await fetch(`http://127.0.0.1:${hub.monitorPort}/leafz`)).json()) as Record<string, any>;
    const row = leafz['leafs'].find((entry: { leaf: string }) => entry.leaf === 'gw-tls');
    assert.deepEqual([row.connected, row.tls, row.authMethod], [true, true, 'cert']);
    assert.deepEqual(leafz['listener'], { port: hub.hub.acceptor!.port, tls: true, verify: true, tlsFailures: 0 });
    const metrics = await (await fetch(`http://127.0.0.1:${hub.monitorPort}/metrics`)).text();
    assert.match(metrics, /# TYPE canopy_hub_link_tls_failures_total counter\ncanopy_hub_link_tls_failures_total \d+/);
    assert.match(metrics, /canopy_hub_leaf_tls\{leaf="gw-tls"\} 1/);
    assert.equal(leaf.log.records.filter((record) => record.msg === 'link up').length, 1);
  });

  test('a leaf that trusts another CA does not connect, says why at error, keeps retrying and does not crash', async (t) => {
    const otherCa = pki.ca('other-ca');
    const failuresBefore = hub.hub.acceptor!.listenerStatus().tlsFailures;
    const leaf = await startTlsLeaf(t, hub.url, 'gw-wrong-ca', { ca_file: otherCa.certFile, ...clientCert(pki, ca, 'gw-wrong-ca') });
    await assertRetriesWithTlsError(leaf, { code: 'SELF_SIGNED_CERT_IN_CHAIN', reason: /the hub's certificate is not accepted: self-signed certificate in certificate chain/ });
    // The hub sees a client that hung up in the handshake (at least once: a dial the leaf drops
    // before its hello reached the hub's TLS layer ends as a plain reset there, not a TLS failure).
    await eventually(() => assert.ok(hub.hub.acceptor!.listenerStatus().tlsFailures >= failuresBefore + 1, 'a failed handshake counted on the hub'), { timeoutMs: 10_000 });
    assert.ok(hub.log.find('leaf TLS handshake failed', 'warn').some((record) => /hung up|closed the connection/.test(String(record.fields['reason']))));
    assert.equal(hub.hub.acceptor!.status().find((entry) => entry.leaf === 'gw-wrong-ca'), undefined);
    // Still a working broker.
    await leaf.jsm.streams.add({ name: 'LOCAL_OK', subjects: ['local.>'] });
  });

  test('a leaf without a client certificate is refused in the handshake and says the hub wants one', async (t) => {
    const leaf = await startTlsLeaf(t, hub.url, 'gw-no-cert', { ca_file: ca.certFile });
    await assertRetriesWithTlsError(leaf, { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', reason: /requires a client certificate/ });
    assert.ok(hub.log.find('leaf TLS handshake failed', 'warn').some((record) => record.fields['reason'] === 'no client certificate (leaf_tls verify requires one)'));
  });

  test('a client certificate for another leaf name is refused with auth, and the leaf backs off', async (t) => {
    const leaf = await startTlsLeaf(t, hub.url, 'gw-claimed', { ca_file: ca.certFile, ...clientCert(pki, ca, 'gw-real') });
    await eventually(() => {
      const refused = leaf.log.records.find((record) => record.msg === 'link refused by the hub');
      assert.equal(refused?.fields['code'], 'auth');
      assert.match(String(refused?.fields['text']), /certificate is for leaf "gw-real", not "gw-claimed"/);
    }, { timeoutMs: 10_000 });
    assert.notEqual(leaf.leaf.link.status().state, 'up');
  });
});

test('a hub certificate without the dialed address in its names is a TLS error on the leaf, retried', { skip }, async (t) => {
  const pki = new TestPki();
  t.after(() => pki.remove());
  const ca = pki.ca('link-ca');
  const server = pki.server(ca, 'hub-elsewhere', ['DNS:hub.example.org']);
  const hub = await startTlsHub({ cert_file: server.certFile, key_file: server.keyFile });
  t.after(() => hub.close());
  const leaf = await startTlsLeaf(t, hub.url, 'gw-hostname', { ca_file: ca.certFile });
  await assertRetriesWithTlsError(leaf, { code: 'ERR_TLS_CERT_ALTNAME_INVALID', reason: /IP: 127\.0\.0\.1 is not in the cert's list/ });
});
